#!/usr/bin/python3
# egw-replay against tshark: replays a capture with a policy that allows any name and
# compares, flow by flow, the name of each flow record (tls.sni, http.hostname,
# dns.rrname) with what tshark extracts from the client's ClientHello, request or query.
# Without --pcap: the shared captures of ../shared/pcaps (see its INDEX.md) that tshark
# parses cleanly; the others are skipped with their reason. Ends with "N passed, N failed".
import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

# Shared captures: file -> the client (inside) networks, or the reason it is skipped.
CAPTURES = [
    ('tls_tls-client-hello-frag-01_dump_mtu300.pcap', ['10.20.0.14/32'], None),
    ('tls_ech.pcapng', ['2001:b07:a3d:c112::/64'], None),
    ('no_sni.pcap', ['192.168.1.119/32'], None),
    ('exception-policy-defrag-01_ipv4frags.pcap', ['2.1.1.2/32'], None),
    ('firewall_tcp-session-syn-flood-drop-precedence_input.pcap', ['192.0.2.10/32'], None),
    ('http-ipv6_input.pcap', None,
     'both ends are ::1: egw-replay tells the sides apart by address, so the handshake '
     'never completes'),
    ('http_origin_different_than_host.pcap', None,
     'HTTP inside GTP-U (UDP 2152): egw does not decapsulate tunnels, tshark does'),
    ('dns_dns-forward-pointer_input.pcap', None,
     'the query has 2 questions: egw denies it without a name (contract), tshark lists both'),
    ('dns-invalid-chars.pcap', None,
     'control bytes in the query name: malformed, egw denies it without a name'),
    ('tls_missing_ch_frag.pcap', None,
     "the ClientHello's first segment is missing: neither tool can read a name"),
    ('eve-overlap-payload-01_tcp-overlap.pcap', None,
     'overlapping segments with different bytes: an evasion (checklist 4), no name'),
    ('tcp-fastopen-07_tcp_fastopen_segmentation.pcap', None,
     'data on the SYN (TCP Fast Open, checklist 5): tshark shows no Host for the first flow'),
    ('quic_frags_ch_in_multiple_packets.pcapng', None,
     'QUIC Initial SNI: not parsed by egw yet (contract: later)'),
    ('ipv6-evasion_ipv6-malformed-fragments-1_frag-1.pcap', None,
     'malformed IPv6 fragments (an evasion), no names'),
    ('defrag_bug-6887-defrag-eth-vlan-ipv4-tcp-syn_frag-eth-vlan-ip-tcp-syn.pcap', None,
     'a SYN in fragments too small for the TCP header (an evasion), no names'),
]

# Every valid name is allowed by "any-name"; flows without one by "no-name", so that
# egw-replay lets every flow run and records what it saw.
def names_policy(inside):
    return {'schema': 1, 'default_action': 'deny',
            'services': {'inside': {'cidrs': inside}},
            'rulesets': [{'name': 'names', 'rules': [
                {'id': 'any-name', 'from': ['any'], 'to': {'domains': ['*']},
                 'action': 'allow'},
                {'id': 'no-name', 'from': ['any'], 'action': 'allow'}]}]}


def norm_addr(a):
    return str(ipaddress.ip_address(a.strip('[]')))


def is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def norm_name(name):
    """Lower case, no trailing dot, no port, no brackets around an IPv6 literal."""
    name = name.strip().lower()
    if name.startswith('['):
        name = name[1:name.find(']')] if ']' in name else name[1:]
    elif name.count(':') == 1:
        name = name.split(':')[0]
    return name[:-1] if name.endswith('.') else name


ABSOLUTE = re.compile(r'^[a-z][a-z0-9+.-]*://([^/?#]*)', re.I)

FIELDS = ['ip.src', 'ipv6.src', 'ip.dst', 'ipv6.dst', 'tcp.srcport', 'tcp.dstport',
          'udp.srcport', 'udp.dstport', 'tls.handshake.extensions_server_name', 'http.host',
          'http.request.uri', 'dns.qry.name']


def tshark_names(pcap):
    """{(src, sport, dst, dport, proto): set of names} from the client's messages."""
    cmd = ['tshark', '-r', pcap, '-Y',
           'tls.handshake.type == 1 || http.request || dns.flags.response == 0',
           '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,']
    for f in FIELDS:
        cmd += ['-e', f]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError('tshark exited %d: %s' % (p.returncode, p.stderr.strip()))
    flows = {}
    for line in p.stdout.splitlines():
        v = dict(zip(FIELDS, line.split('\t')))
        src = (v['ip.src'] or v['ipv6.src']).split(',')[0]
        dst = (v['ip.dst'] or v['ipv6.dst']).split(',')[0]
        if v['tcp.srcport']:
            key = (norm_addr(src), int(v['tcp.srcport']), norm_addr(dst),
                   int(v['tcp.dstport']), 'TCP')
        else:
            key = (norm_addr(src), int(v['udp.srcport'].split(',')[0]), norm_addr(dst),
                   int(v['udp.dstport'].split(',')[0]), 'UDP')
        names = set()
        m = ABSOLUTE.match(v['http.request.uri'])
        if m:  # an absolute request-target's authority wins over Host (contract)
            names.add(norm_name(m.group(1).rsplit('@', 1)[-1]))
        else:
            for field in ('tls.handshake.extensions_server_name', 'http.host', 'dns.qry.name'):
                names.update(norm_name(n) for n in v[field].split(',') if n)
        flows.setdefault(key, set()).update(names)
    return flows


def record_name(r):
    for app, field in (('tls', 'sni'), ('http', 'hostname'), ('dns', 'rrname'), ('quic', 'sni')):
        name = r.get(app, {}).get(field) if isinstance(r.get(app), dict) else None
        if name is not None:
            return norm_name(name)
    return None


def compare(build, pcap, inside, work, doc=None):
    """(True, summary) when egw-replay's names equal tshark's flow by flow, else (False,
    what differs). `doc`: another policy document than names_policy(inside)."""
    policy = os.path.join(work, 'names-policy.json')
    with open(policy, 'w') as f:
        json.dump(doc or names_policy(inside), f)
    log = os.path.join(work, 'flows.jsonl')
    p = subprocess.run([os.path.join(build, 'egw-replay'), '--policy', policy, '--pcap', pcap,
                        '--log', log], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        err = ' | '.join(ln for ln in p.stderr.splitlines() if ln.strip())
        return False, 'egw-replay exited %d: %s' % (p.returncode, err)
    egw = {}
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            key = (norm_addr(r['src_ip']), r.get('src_port'), norm_addr(r['dest_ip']),
                   r.get('dest_port'), r.get('proto'))
            egw[key] = r
    want = tshark_names(pcap)
    problems = []
    named = 0
    for key in sorted(set(want) | set(egw), key=str):
        expected = want.get(key, set())
        r = egw.get(key)
        got = record_name(r) if r else None
        flow = '%s:%s -> %s:%s/%s' % key
        if len(expected) > 1:
            problems.append('%s: tshark sees several names %s (not a clean capture)' %
                            (flow, sorted(expected)))
        elif expected and r is None:
            problems.append('%s: tshark sees %s, egw-replay has no record' %
                            (flow, next(iter(expected))))
        elif expected != ({got} if got else set()):
            problems.append('%s: tshark sees %s, egw-replay recorded %s' %
                            (flow, next(iter(expected), 'no name'), got or 'no name'))
        elif got and not is_ip(got) and (r.get('verdict'), r.get('rule_id')) != \
                ('allow', 'any-name'):
            problems.append('%s: name %s but verdict %s by %s, want allow by any-name' %
                            (flow, got, r.get('verdict'), r.get('rule_id')))
        elif got:
            named += 1
    if problems:
        return False, '%d of %d flows differ: %s' % (len(problems), len(set(want) | set(egw)),
                                                     '; '.join(problems[:4]))
    return True, '%d named flows, %d records' % (named, len(egw))


def main():
    ap = argparse.ArgumentParser(description='egw-replay names vs tshark')
    ap.add_argument('--build', default='build', help='build directory holding egw-replay')
    ap.add_argument('--pcap', help='one capture instead of the shared ones')
    ap.add_argument('--inside', action='append', default=[], help='inside CIDR (with --pcap)')
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.path.join(repo, args.build) if not os.path.isabs(args.build) else args.build
    if args.pcap:
        if not args.inside:
            ap.error('--pcap needs --inside')
        runs = [(os.path.abspath(args.pcap), args.inside, None)]
    else:
        pcaps = os.path.join(repo, '..', 'shared', 'pcaps')
        runs = [(os.path.join(pcaps, f), inside, skip) for f, inside, skip in CAPTURES]
    passed = failed = 0
    for pcap, inside, skip in runs:
        desc = 'tshark vs egw-replay names: %s' % os.path.basename(pcap)
        if skip:
            print('SKIP %s: %s' % (desc, skip))
            continue
        if not os.path.exists(pcap):
            print('SKIP %s: capture not found' % desc)
            continue
        with tempfile.TemporaryDirectory(prefix='egw-tshark-') as work:
            try:
                ok, detail = compare(build, pcap, inside, work)
            except Exception as e:  # a broken run is a failure, never a crash of the suite
                ok, detail = False, '%s: %s' % (type(e).__name__, e)
        if ok:
            passed += 1
            print('PASS %s (%s)' % (desc, detail))
        else:
            failed += 1
            print('FAIL %s: %s' % (desc, detail))
        sys.stdout.flush()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
