"""The captures of the fast-path benchmarks (perf/run.sh): F established TCP flows, one
capture per port, replayed by net_pcap with infinite_rx; and the figures of one run of
egw-dataplane on them, with the drops that layout explains (`count`).

  PREFIX.in.pcap   outbound packets (198.18.x.x -> 198.19.x.x), replayed on port 0
  PREFIX.out.pcap  inbound packets (the answers), replayed on port 1
  PREFIX.json      the layout run.sh needs to count drops exactly (see below)

The dataplane starts with no flow, so every flow's handshake is in the capture, and
replaying it in a loop makes each later pass's SYN and SYN-ACK hit an established flow
(dropped: tcp_invalid); ROUNDS data segments per direction keep that share small.

Layout. Both captures have the same length L = ROUNDS * F, and both ports give the
worker (and testpmd) 32 packets per burst, so the two replays advance in lockstep:
packet i of one is received in the same worker iteration as packet i of the other. Slot r*F + f of
the outbound capture holds flow f's r-th outbound packet (r=0 SYN, r=1 the handshake's
ACK, then data); the inbound capture is the same grid rotated by H = F/2 slots (r=0
SYN-ACK, then data). So each packet of a flow comes F/2 slots after the one it answers,
and misalignment of up to F/2 slots would still keep every flow's order. Seq/ack are
in window on every pass: a replayed segment is an old retransmission, less than one
window (65535, unscaled) behind.

In the first pass, inbound slots 0..H-1 (the last data of flows H..F-1, rotated to the
front) arrive before those flows exist: H inbound_no_flow drops. Later passes drop
exactly the replayed SYN (outbound slots 0..F-1) and SYN-ACK (inbound slots H..H+F-1).

Frames: sizes count the 4-byte FCS (a "64-byte frame" is 60 bytes captured), valid
IPv4 and TCP checksums, zero payload; the handshake's frames are padded to 64 bytes.
--imix gives the data segments a 7:4:1 mix of 64/570/1518-byte frames.

Usage: /usr/bin/python3 perf/gen_pcaps.py write PREFIX [--flows F] [--rounds R] [--imix]
       /usr/bin/python3 perf/gen_pcaps.py count PREFIX DATAPLANE_STDOUT WALL_S CPU_S
"""

import argparse
import json
import struct
from array import array

FCS = 4
MIN_FRAME = 64
ETH = 14
HDRS = ETH + 20 + 20  # Ethernet, IPv4 and TCP without options
IMIX = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 570, 64]  # 7:4:1
MAC_IN, MAC_OUT = bytes.fromhex('020000000001'), bytes.fromhex('020000000002')
SYN, ACK, PSH = 0x02, 0x10, 0x08


def csum_fold(words):
    """RFC 1071 sum of native-order 16-bit words; the result packs back with '=H'
    (the ones-complement sum does not depend on byte order)."""
    s = sum(words)
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(src, dst, sport, dport, seq, ack, flags, payload, eth_dst, eth_src):
    """One Ethernet/IPv4/TCP frame with a zero payload of `payload` bytes."""
    ip_len = 40 + payload
    ip = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, 0, ip_len, 0, 0x4000, 64, 6, 0, src, dst))
    struct.pack_into('=H', ip, 10, csum_fold(array('H', bytes(ip))))
    tcp = bytearray(struct.pack('!HHIIBBHHH', sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                                5 << 4, flags, 65535, 0, 0))
    pseudo = src + dst + struct.pack('!BBH', 0, 6, 20 + payload)
    struct.pack_into('=H', tcp, 16, csum_fold(array('H', pseudo + bytes(tcp))))
    f = eth_dst + eth_src + b'\x08\x00' + bytes(ip) + bytes(tcp) + bytes(payload)
    return f + bytes(MIN_FRAME - FCS - len(f)) if len(f) < MIN_FRAME - FCS else f  # Ethernet padding


def data_len(imix, f, k):
    """Payload of flow f's k-th data segment (both directions counted together)."""
    size = IMIX[(f * 5 + k) % len(IMIX)] if imix else 64
    return size - FCS - HDRS


def flow_packets(f, rounds, imix):
    """Flow f's outbound and inbound packets, ROUNDS each, in the order sent."""
    cli = struct.pack('!I', (198 << 24 | 18 << 16) + 1 + f)
    srv = struct.pack('!I', (198 << 24 | 19 << 16 | (1 + f % 250) << 8) + 10)
    sport, dport = 10000 + f % 50000, 80
    ci = (f * 2654435761) & 0xffffffff
    si = (f * 40503 + 0x9e3779b9) & 0xffffffff
    c_next, s_next = ci + 1, si + 1
    out = [frame(cli, srv, sport, dport, ci, 0, SYN, 0, MAC_OUT, MAC_IN)]
    inb = [frame(srv, cli, dport, sport, si, c_next, SYN | ACK, 0, MAC_IN, MAC_OUT)]
    out.append(frame(cli, srv, sport, dport, c_next, s_next, ACK, 0, MAC_OUT, MAC_IN))
    k = 0
    # Inbound round r follows outbound round r (and precedes outbound round r+1).
    for r in range(1, rounds):
        n = data_len(imix, f, k)
        k += 1
        inb.append(frame(srv, cli, dport, sport, s_next, c_next, PSH | ACK, n, MAC_IN, MAC_OUT))
        s_next += n
        if r + 1 < rounds:
            n = data_len(imix, f, k)
            k += 1
            out.append(frame(cli, srv, sport, dport, c_next, s_next, PSH | ACK, n, MAC_OUT, MAC_IN))
            c_next += n
    return out, inb


def write_pcap(path, frames):
    hdr = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    with open(path, 'wb') as f:
        f.write(hdr)
        f.write(b''.join(struct.pack('<IIII', 0, i, len(p), len(p)) + p
                         for i, p in enumerate(frames)))


def drops_expected(layout, rx_in, rx_out):
    """Drops a run must show, by reason, after rx_in packets of the outbound capture and
    rx_out of the inbound one (see the layout above)."""
    F, L, H = layout['flows'], layout['pass_len'], layout['rotation']

    def seen(rx, lo, hi):  # replayed packets that came from capture slots [lo, hi)
        return (rx // L) * (hi - lo) + min(max(rx % L - lo, 0), hi - lo)

    return {'tcp_invalid': max(seen(rx_in, 0, F) - F, 0) + max(seen(rx_out, H, H + F) - F, 0),
            'inbound_no_flow': min(rx_out, H)}


def count(a):
    """One run's figures from the dataplane's final counters (its last stdout line)."""
    layout = json.load(open(a.prefix + '.json'))
    d = json.loads(open(a.final).read().strip().splitlines()[-1])
    rx_in, rx_out = d['ports'][0]['rx_packets'], d['ports'][1]['rx_packets']
    expected = drops_expected(layout, rx_in, rx_out)
    drops = {k: v for k, v in d['drops'].items() if v}
    # Every drop beyond the replayed handshakes and the first pass is a packet of an
    # allowed, established flow that did not pass.
    lost = sum(max(v - expected.get(k, 0), 0) for k, v in drops.items())
    secs = d['cycles'] / d['tsc_hz']  # the worker loop's own time: one core, always busy
    rx = d['rx_packets']
    mpps = rx / secs / 1e6
    print(json.dumps({
        'mpps': round(mpps, 4), 'wall_mpps': round(rx / a.wall_s / 1e6, 4),
        'cpu_share': round(a.cpu_s / a.wall_s, 3),
        # Off its core the worker does nothing: the cycles it had, per packet.
        'cycles_per_pkt_on_cpu': round(d['cycles'] / rx * a.cpu_s / a.wall_s, 1),
        'cycles_per_pkt': round(d['cycles'] / rx, 1),
        'gbps': round(mpps * layout['mean_frame_bytes'] * 8 / 1e3, 3),
        'frame_bytes': round(layout['mean_frame_bytes'], 1),
        'passes': round(rx_in / layout['pass_len'], 1), 'seconds': round(secs, 3),
        'rx_packets': rx, 'tx_packets': d['tx_packets'], 'tsc_hz': d['tsc_hz'],
        'drop_share': round(sum(drops.values()) / rx, 4), 'drops': drops,
        'drops_expected': expected, 'lost': lost,
        'flows_created': d['flows_created'], 'flows_reclassified': d['flows_reclassified']}))


def write(a):
    """The two captures and their layout."""
    F, R = a.flows, a.rounds
    H = F // 2
    L = F * R
    outbound, inbound = [None] * L, [None] * L
    for f in range(F):
        out, inb = flow_packets(f, R, a.imix)
        for r in range(R):
            outbound[r * F + f] = out[r]
            inbound[(r * F + f + H) % L] = inb[r]
    write_pcap(a.prefix + '.in.pcap', outbound)
    write_pcap(a.prefix + '.out.pcap', inbound)
    nbytes = sum(len(p) + FCS for p in outbound) + sum(len(p) + FCS for p in inbound)
    with open(a.prefix + '.json', 'w') as fp:
        json.dump({'flows': F, 'rounds': R, 'pass_len': L, 'rotation': H,
                   'mean_frame_bytes': nbytes / (2 * L)}, fp)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('write', help='write PREFIX.{in,out}.pcap and PREFIX.json')
    p.add_argument('prefix')
    p.add_argument('--flows', type=int, default=10000)
    p.add_argument('--rounds', type=int, default=27, help='packets per flow and direction')
    p.add_argument('--imix', action='store_true')
    p = sub.add_parser('count', help="one run's figures, as JSON, from its final counters")
    p.add_argument('prefix', help='the captures replayed (their PREFIX.json layout)')
    p.add_argument('final', help="the dataplane's stdout (final counters on its last line)")
    p.add_argument('wall_s', type=float, help='seconds from the ready line to SIGINT')
    p.add_argument('cpu_s', type=float, help='CPU seconds of the worker lcore meanwhile')
    a = ap.parse_args()
    {'write': write, 'count': count}[a.cmd](a)


if __name__ == '__main__':
    main()
