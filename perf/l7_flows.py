"""Per-flow cost of waiting for a name, end to end through the worker (egw-replay).

Writes captures of N complete short TLS flows (handshake, a ClientHello naming a name,
the server's reply, the client's Finished, FIN both ways) and replays each under two
policies that allow the same flows: one whose rule needs the name (to.domains: every
flow waits, its hello is parsed, matched, released and watched) and one with a plain
L3/L4 rule (decided at the SYN; the first payload segment is still parsed once for the
flow record). The difference of the two is the L7 cost per flow. Two captures:
  one_seg  a 517-byte TLS 1.3 hello in one segment (it leaves as it came)
  two_seg  a 1705-byte post-quantum-sized hello over 2 segments (the first is held,
           both are re-segmented and released when the second completes it)
Flows run 32 at a time in lockstep, so the worker sees bursts of up to 32 packets.
Times are egw-replay's elapsed_s (the whole replay: reading the capture, the worker,
writing records to /dev/null), median of --reps runs, the variants interleaved.

Usage: /usr/bin/python3 perf/l7_flows.py BUILD_DIR [--flows N] [--reps R] [--keep DIR]
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile

WAVE = 32  # flows in lockstep
HOSTS = 1000  # distinct names, host<i>.svc.example.com
MSS = 1448


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload=b"", syn_opts=False):
    """Ethernet/IPv4/TCP with correct checksums; flags a string of S A P F."""
    bits = {"F": 0x01, "S": 0x02, "P": 0x08, "A": 0x10}
    fl = sum(bits[c] for c in flags)
    opts = struct.pack("!BBH", 2, 4, 1460) if syn_opts else b""
    off = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, fl, 65535, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    c = csum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6,
                     0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    mac_c, mac_s = b"\x02\0\0\0\0\x01", b"\x02\0\0\0\0\x02"
    to_server = src[0] == 10
    eth = (mac_s + mac_c if to_server else mac_c + mac_s) + b"\x08\x00"
    return eth + ip + tcp + payload


def ext(t, body):
    return struct.pack("!HH", t, len(body)) + body


def client_hello(name, key_len, pad_to):
    """A TLS 1.3 ClientHello record as browsers send it (SNI, groups, sigalgs,
    versions, key_share, ALPN), padded so the handshake message is pad_to bytes."""
    n = name.encode()
    sni = struct.pack("!HBH", len(n) + 3, 0, len(n)) + n
    group = 0x001D if key_len == 32 else 0x11EC
    ks_entry = struct.pack("!HH", group, key_len) + b"\x5a" * key_len
    alpn_list = b"\x02h2\x08http/1.1"
    exts = (ext(0, sni) + ext(10, bytes.fromhex("0006 11ec 001d 0017")) +
            ext(13, bytes.fromhex("0006 0403 0804 0401")) + ext(43, bytes.fromhex("04 0304 0303")) +
            ext(51, struct.pack("!H", len(ks_entry)) + ks_entry) +
            ext(16, struct.pack("!H", len(alpn_list)) + alpn_list))
    ciphers = bytes.fromhex("1301 1302 1303 c02f c030")
    body = (b"\x03\x03" + b"\x11" * 32 + b"\x20" + b"\x22" * 32 +
            struct.pack("!H", len(ciphers)) + ciphers + b"\x01\x00")
    so_far = 4 + len(body) + 2 + len(exts)
    if pad_to > so_far + 4:
        exts += ext(21, b"\0" * (pad_to - so_far - 4))
    body += struct.pack("!H", len(exts)) + exts
    msg = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg


# The server's first flight (ServerHello, ChangeCipherSpec, encrypted records) and the
# client's Finished (ChangeCipherSpec, an application-data record): contents are opaque.
SERVER_REPLY = (b"\x16\x03\x03\x00\x7a" + b"\x02" + b"\x00\x00\x76" + b"\x33" * 118 +
                b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x04\x00" + b"\xee" * 1024)
CLIENT_FINISHED = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x35" + b"\xad" * 53


def flow_packets(i, hello, split):
    """The packets of flow i as (step, outbound, frame): a step's packets of a wave are
    sent together."""
    n = i + 1  # 10.0.0.1 onwards: one client per flow
    c = bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])
    s = bytes([198, 51, 100, 1 + i % 200])
    cp, sp = 10000, 443
    ci, si = 1000 + i * 7, 5000000 + i * 13  # ISNs
    out = lambda seq, ack, fl, pl=b"", o=False: frame(c, s, cp, sp, seq, ack, fl, pl, o)
    inn = lambda seq, ack, fl, pl=b"", o=False: frame(s, c, sp, cp, seq, ack, fl, pl, o)
    c1, s1 = ci + 1, si + 1
    pk = [out(ci, 0, "S", o=True), inn(si, c1, "SA", o=True), out(c1, s1, "A")]
    if split:
        pk += [out(c1, s1, "A", hello[:MSS]), out(c1 + MSS, s1, "PA", hello[MSS:])]
    else:
        pk += [out(c1, s1, "PA", hello)]
    c2 = c1 + len(hello)
    pk.append(inn(s1, c2, "PA", SERVER_REPLY))
    s2 = s1 + len(SERVER_REPLY)
    pk.append(out(c2, s2, "PA", CLIENT_FINISHED))
    c3 = c2 + len(CLIENT_FINISHED)
    pk += [out(c3, s2, "FA"), inn(s2, c3 + 1, "FA"), out(c3 + 1, s2 + 1, "A")]
    return pk


def write_pcap(path, flows, hello_of, split):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))  # ns timestamps
        t = 0
        for w0 in range(0, flows, WAVE):
            wave = [flow_packets(i, hello_of(i), split) for i in range(w0, min(flows, w0 + WAVE))]
            for step in range(len(wave[0])):
                for k, pk in enumerate(wave):
                    p = pk[step]
                    ts = t + step * 100000 + k * 1000  # steps 100 us apart, packets 1 us
                    f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(p), len(p)) + p)
            t += 2000000  # a wave every 2 ms


def policy(names):
    to = {"domains": ["*.svc.example.com"]} if names else {"cidrs": ["198.51.100.0/24"]}
    return {"schema": 1, "default_action": "deny",
            "services": {"clients": {"cidrs": ["10.0.0.0/8"]}},
            "rulesets": [{"name": "l7cost", "rules": [
                {"id": "tls", "from": ["clients"], "proto": "tcp", "ports": [443], "to": to,
                 "action": "allow"}]}]}


def replay(build, pol, pcap, flows, check, names):
    r = subprocess.run([os.path.join(build, "egw-replay"), "--policy", pol, "--pcap", pcap,
                        "--log", "-" if check else "/dev/null"],
                       capture_output=True, text=True, check=True)
    summary = json.loads(r.stderr.strip().splitlines()[-1])
    if summary["flows_created"] != flows or summary["drops"]:
        sys.exit("l7_flows: unexpected replay of %s under %s: %s" % (pcap, pol, summary))
    if check:  # every flow allowed by the rule; named by its hello when it waited
        recs = [json.loads(line) for line in r.stdout.splitlines()]
        bad = [x for x in recs if x["verdict"] != "allow" or x["rule_id"] != "tls" or
               (names and not x.get("tls", {}).get("sni"))]
        if len(recs) != flows or bad:
            sys.exit("l7_flows: %s under %s: %d records, first unexpected: %s" %
                     (pcap, pol, len(recs), bad[:1]))
    return summary["elapsed_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--flows", type=int, default=20000,
                    help="flows per capture (at most 262144, egw-replay's default table)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--keep", help="write the captures and policies here and keep them")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="egw-l7cost-")
    os.makedirs(work, exist_ok=True)
    name = lambda i: "host%d.svc.example.com" % (i % HOSTS)
    small = [client_hello(name(i), 32, 512) for i in range(HOSTS)]
    pq = [client_hello(name(i), 1216 + 32, 1700) for i in range(HOSTS)]
    caps = {"one_seg": (lambda i: small[i % HOSTS], False, len(small[0])),
            "two_seg": (lambda i: pq[i % HOSTS], True, len(pq[0]))}
    pols = {}
    for kind, names in (("l3", False), ("names", True)):
        pols[kind] = os.path.join(work, "%s.json" % kind)
        with open(pols[kind], "w") as f:
            json.dump(policy(names), f, indent=1)
    times = {}
    for cap, (hello_of, split, _) in caps.items():
        pcap = os.path.join(work, cap + ".pcap")
        write_pcap(pcap, a.flows, hello_of, split)
        for kind in pols:
            replay(a.build, pols[kind], pcap, a.flows, True, kind == "names")
            times[cap, kind] = []
        for _ in range(a.reps):
            for kind in pols:
                times[cap, kind].append(
                    replay(a.build, pols[kind], pcap, a.flows, False, kind == "names"))
    print("| capture (%d flows) | hello bytes | L3/L4 rule us/flow | name rule us/flow | "
          "L7 cost ns/flow |" % a.flows)
    print("|---|---|---|---|---|")
    for cap, (_, split, hello_len) in caps.items():
        l3 = statistics.median(times[cap, "l3"]) / a.flows * 1e6
        nm = statistics.median(times[cap, "names"]) / a.flows * 1e6
        print("| %s | %d | %.2f | %.2f | %.0f |" % (cap, hello_len, l3, nm, (nm - l3) * 1e3))
    print("median of %d replays each (egw-replay elapsed_s / flows)%s" %
          (a.reps, "; files in " + work if a.keep else ""))
    if not a.keep:
        for f in os.listdir(work):
            os.remove(os.path.join(work, f))
        os.rmdir(work)


if __name__ == "__main__":
    main()
