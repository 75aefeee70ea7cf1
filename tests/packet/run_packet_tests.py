#!/usr/bin/python3
# The packet suite: runs egw-replay over captures built with scapy (tests/packet/cases.py)
# and over the shared real captures (tests/packet/captures.py), and checks the flow
# records, the pass pcap and the summary's counters exactly. Run by `make packet`.
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import Ether, ICMP, IP, IPv6, TCP, UDP, rdpcap  # noqa: E402
from scapy.layers.inet import IPerror, TCPerror, UDPerror  # noqa: E402,F401
from scapy.layers.inet6 import ICMPv6DestUnreach  # noqa: E402

LINK_ETHERNET, LINK_NULL, LINK_RAW, LINK_LOOP, LINK_SLL, LINK_SLL2 = 1, 0, 101, 108, 113, 276
BASE_TIME = 1795798800.0  # 2026-11-27T17:00:00Z


class Skip(Exception):
    """A case that cannot run here (a shared capture is missing)."""


# ---------------------------------------------------------------- capture writing
def link_frame(frame, linktype):
    """The Ethernet frame `frame` (bytes) re-encapsulated for `linktype`."""
    if linktype == LINK_ETHERNET:
        return frame
    ethertype = struct.unpack('!H', frame[12:14])[0]
    payload, src = frame[14:], frame[6:12]
    v6 = ethertype == 0x86dd
    if linktype == LINK_SLL:
        return struct.pack('!HHH8sH', 4, 1, 6, src + b'\0\0', ethertype) + payload
    if linktype == LINK_SLL2:
        return struct.pack('!HHIHBB8s', ethertype, 0, 2, 1, 4, 6, src + b'\0\0') + payload
    if linktype == LINK_RAW:
        return payload
    if linktype == LINK_NULL:
        return struct.pack('<I', 30 if v6 else 2) + payload
    if linktype == LINK_LOOP:
        return struct.pack('!I', 24 if v6 else 2) + payload
    raise ValueError('link type %d' % linktype)


def write_pcap(path, frames, times, linktype=LINK_ETHERNET):
    """A classic pcap (microsecond timestamps)."""
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, linktype))
        for data, t in zip(frames, times):
            us = int(round(t * 1e6))
            f.write(struct.pack('<IIII', us // 1000000, us % 1000000, len(data), len(data)))
            f.write(data)


def write_pcapng(path, frames, times, linktype=LINK_ETHERNET):
    """A pcapng: section header, one interface (microseconds), enhanced packet blocks."""
    with open(path, 'wb') as f:
        f.write(struct.pack('<IIIHHqI', 0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0, -1, 28))
        f.write(struct.pack('<IIHHII', 1, 20, linktype, 0, 262144, 20))
        for data, t in zip(frames, times):
            us = int(round(t * 1e6))
            pad = (-len(data)) % 4
            total = 32 + len(data) + pad
            f.write(struct.pack('<IIIIIII', 6, total, 0, us >> 32, us & 0xffffffff,
                                len(data), len(data)))
            f.write(data + b'\0' * pad)
            f.write(struct.pack('<I', total))


# ---------------------------------------------------------------- checks
RECORD_FIELDS = {
    'src': ('src_ip',), 'dst': ('dest_ip',), 'sport': ('src_port',),
    'dport': ('dest_port',), 'proto': ('proto',), 'verdict': ('verdict',),
    'rule_id': ('rule_id',), 'vlan': ('vlan',), 'reason': ('flow', 'reason'),
    'state': ('flow', 'state'), 'app_proto': ('app_proto',), 'limited': ('limited',),
    'report.rule_id': ('report', 'rule_id'), 'report.verdict': ('report', 'verdict'),
}


def record_value(rec, key):
    if key == 'pkts':
        f = rec.get('flow', {})
        return (f.get('pkts_toserver'), f.get('pkts_toclient'))
    cur = rec
    for part in RECORD_FIELDS[key]:
        if not isinstance(cur, dict) or part not in cur:
            return '<absent>'
        cur = cur[part]
    return cur


def record_matches(rec, want):
    return all(record_value(rec, k) == (tuple(v) if k == 'pkts' else v)
               for k, v in want.items())


def check_records(records, want):
    """Every expected record (a subset of fields) matches a distinct actual one."""
    if len(records) != len(want):
        return 'expected %d flow records, got %d: %s' % (len(want), len(records), records)
    left = list(records)
    for w in want:
        for i, r in enumerate(left):
            if record_matches(r, w):
                del left[i]
                break
        else:
            return 'no flow record matches %s; records: %s' % (w, records)
    return None


def check_synth(pkt, want):
    """A synthesized packet: kind 'rst' or 'unreach', with addresses and ports."""
    ip = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
    if ip is None:
        return 'not an IP packet: %s' % pkt.summary()
    if ip.src != want['src'] or ip.dst != want['dst']:
        return 'addresses %s > %s, want %s > %s' % (ip.src, ip.dst, want['src'], want['dst'])
    if want['kind'] == 'rst':
        tcp = pkt.getlayer(TCP)
        if tcp is None or not tcp.flags.R:
            return 'not a TCP RST: %s' % pkt.summary()
        if (tcp.sport, tcp.dport) != (want['sport'], want['dport']):
            return 'RST ports %d > %d' % (tcp.sport, tcp.dport)
        if 'ack' in want and (not tcp.flags.A or tcp.ack != want['ack']):
            return 'RST ack %d (flags %s), want %d' % (tcp.ack, tcp.flags, want['ack'])
        if 'seq' in want and tcp.seq != want['seq']:
            return 'RST seq %d, want %d' % (tcp.seq, want['seq'])
        return None
    if want['kind'] == 'unreach':
        if IPv6 in pkt:
            err = pkt.getlayer(ICMPv6DestUnreach)
            if err is None or err.code != want.get('code6', 4):
                return 'not an ICMPv6 port unreachable: %s' % pkt.summary()
        else:
            icmp = pkt.getlayer(ICMP)
            if icmp is None or icmp.type != 3 or icmp.code != want.get('code', 3):
                return 'not an ICMP port unreachable: %s' % pkt.summary()
        quoted = pkt.getlayer(UDPerror) or pkt.getlayer(UDP)
        if quoted is None or (quoted.sport, quoted.dport) != (want['sport'], want['dport']):
            return 'the error does not quote the UDP datagram: %s' % pkt.summary()
        return None
    return 'unknown synthesized kind %s' % want['kind']


def check_pass(out_pkts, frames, want, compare_from):
    if len(out_pkts) != len(want):
        return 'pass pcap has %d packets, want %d: %s' % (
            len(out_pkts), len(want), [p.summary() for p in out_pkts])
    for n, (pkt, w) in enumerate(zip(out_pkts, want)):
        if isinstance(w, int):
            if bytes(pkt)[compare_from:] != frames[w][compare_from:]:
                return 'pass pcap packet %d is not input packet %d: %s' % (n, w, pkt.summary())
        else:
            why = check_synth(pkt, w)
            if why:
                return 'pass pcap packet %d: %s' % (n, why)
    return None


# ---------------------------------------------------------------- running
def run_replay(build, policy_path, pcap_path, work, inside=(), flows=None, extra=()):
    log = os.path.join(work, 'flows.jsonl')
    passp = os.path.join(work, 'pass.pcap')
    cmd = [os.path.join(build, 'egw-replay'), '--policy', policy_path, '--pcap', pcap_path,
           '--log', log, '--pass-pcap', passp]
    for c in inside:
        cmd += ['--inside', c]
    if flows:
        cmd += ['--flows', str(flows)]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    result = {'rc': p.returncode, 'stderr': p.stderr, 'stdout': p.stdout}
    if p.returncode != 0:
        return result
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith('{')]
    result['summary'] = json.loads(lines[-1]) if lines else None
    with open(log) as f:
        result['records'] = [json.loads(ln) for ln in f if ln.strip()]
    result['passed'] = list(rdpcap(passp)) if os.path.getsize(passp) > 24 else []
    return result


def run_case(build, case, work):
    """Runs one case; returns None when it passed, else why it failed."""
    policy_path = os.path.join(work, 'policy.json')
    with open(policy_path, 'w') as f:
        if isinstance(case.get('policy'), str):
            f.write(case['policy'])
        else:
            json.dump(case['policy'], f)
    if case.get('compiled'):  # the same policy as a compiled blob (egwctl compile)
        blob = os.path.join(work, 'policy.bin')
        c = subprocess.run([os.path.join(build, 'egwctl'), 'compile', policy_path, '-o', blob],
                           capture_output=True, text=True, timeout=60)
        if c.returncode != 0:
            return 'egwctl compile failed: %s' % c.stderr.strip()
        policy_path = blob
    if 'pcap_file' in case:
        pcap_path = case['pcap_file']
        if not os.path.exists(pcap_path):
            raise Skip('capture %s not found' % pcap_path)
        frames = [bytes(p) for p in rdpcap(pcap_path)]
    else:
        pkts = case['packets']
        frames = [bytes(p) for p in pkts]
        times = case.get('times') or [BASE_TIME + i * case.get('spacing', 0.0001)
                                      for i in range(len(frames))]
        linktype = case.get('linktype', LINK_ETHERNET)
        linked = case.get('raw_frames') or [link_frame(fr, linktype) for fr in frames]
        pcap_path = os.path.join(work, 'in.pcap')
        (write_pcapng if case.get('pcapng') else write_pcap)(pcap_path, linked, times, linktype)
    if case.get('policy_missing'):
        policy_path = os.path.join(work, 'missing-policy.json')
    if case.get('pcap_missing'):
        pcap_path = os.path.join(work, 'missing.pcap')
    res = run_replay(build, policy_path, pcap_path, work, case.get('inside', ()),
                     case.get('flows'), case.get('args', ()))

    if 'exit' in case:  # a usage/input error case
        if res['rc'] != case['exit']:
            return 'exit code %d, want %d; stderr: %s' % (res['rc'], case['exit'], res['stderr'])
        for text in case.get('stderr_has', ()):
            if text not in res['stderr']:
                return 'stderr lacks %r: %s' % (text, res['stderr'])
        return None
    if res['rc'] != 0:
        return 'egw-replay exited %d: %s' % (res['rc'], res['stderr'].strip())
    s = res['summary']
    if s is None:
        return 'no summary line on stderr'
    if 'drops' in case and s['drops'] != case['drops']:
        return 'drops %s, want %s' % (s['drops'], case['drops'])
    want_summary = dict(case.get('summary', {}))
    if 'pass' in case:
        want_summary.setdefault('passed', sum(1 for w in case['pass'] if isinstance(w, int)))
        want_summary.setdefault('synthesized',
                                sum(1 for w in case['pass'] if not isinstance(w, int)))
    for k, v in want_summary.items():
        if s.get(k) != v:
            return 'summary %s = %s, want %s (summary: %s)' % (k, s.get(k), v, s)
    # Every packet is accounted for: read = sides + skipped; arrived = passed + dropped.
    arrived = s['outbound'] + s['inbound']
    if s['packets'] != arrived + s['not_inside'] + s['oversize'] + s['bad_link_header'] + \
            s['no_mbuf']:
        return 'packets not accounted for by side: %s' % s
    if arrived != s['passed'] + sum(s['drops'].values()):
        return 'packets not accounted for: passed + drops != outbound + inbound: %s' % s
    if s['flow_records'] != s['flows_created']:
        return 'flows_created %d but %d records' % (s['flows_created'], s['flow_records'])
    if s.get('flow_records_lost'):
        return 'flow records lost: %s' % s
    if 'records' in case:
        why = check_records(res['records'], case['records'])
        if why:
            return why
    for key, counts in case.get('record_counts', {}).items():
        got = Counter(record_value(r, key) for r in res['records'])
        if dict(got) != counts:
            return 'records by %s: %s, want %s' % (key, dict(got), counts)
    if 'pass' in case:
        compare_from = 0 if case.get('linktype', LINK_ETHERNET) == LINK_ETHERNET else 12
        why = check_pass(res['passed'], frames, case['pass'], compare_from)
        if why:
            return why
    return None


def main():
    ap = argparse.ArgumentParser(description='egw packet tests (egw-replay over pcaps)')
    ap.add_argument('--build', default='build', help='build directory holding egw-replay')
    ap.add_argument('-k', default='', help='run only cases whose description contains this')
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.chdir(repo)
    import cases
    import captures
    all_cases = cases.CASES + captures.cases(os.path.join(repo, '..', 'shared', 'pcaps'))
    passed = failed = 0
    for case in all_cases:
        if args.k and args.k not in case['description']:
            continue
        work = tempfile.mkdtemp(prefix='egw-packet-')
        try:
            why = run_case(args.build, case, work)
        except Skip as e:
            print('SKIP %s: %s' % (case['description'], e))
            continue
        except Exception as e:  # a broken case is a failure, never a crash of the suite
            why = '%s: %s' % (type(e).__name__, e)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if why is None:
            passed += 1
            print('PASS %s' % case['description'])
        else:
            failed += 1
            print('FAIL %s: %s' % (case['description'], why))
        sys.stdout.flush()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
