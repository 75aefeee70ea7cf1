#!/usr/bin/python3
# Seeds the L7 fuzzers' corpora from the public captures of ../shared/pcaps (see its
# INDEX.md). Per TCP flow it takes the client's first flight (what the client sent before
# the server's first data, reassembled in sequence order, at most 16 KiB) and the
# client's segments as sent; per UDP/53 packet, the DNS message. Each is written in the
# input format of the fuzzers that take it (see tests/fuzz/fuzz_l7_*.cc):
#   l7_tls     TLS flights, and their ClientHello alone as one handshake message
#   l7_http    the other flights (HTTP requests, or anything neither TLS nor port 53)
#   l7_dns     DNS messages (queries and responses), DNS-over-TCP flights
#   l7_flight  a port byte (1: port 53, 0: any other) + a flight or a framed UDP/53 query
#   l7_reasm   limit, base sequence number and the segments (offset, length, mode, fill)
# as tests/fuzz/corpus/l7_NAME/pcap-CAPTURE-N: deduplicated by content and by shape (the
# ClientHello's extension types; the HTTP method and header names), at most --per-capture
# per capture and fuzzer, each under 20 KB. A re-run replaces the pcap-* seeds it wrote before.
#   tests/fuzz/seeds_from_pcaps.py [--pcaps DIR] [--corpus DIR] [--per-capture N]
import argparse
import glob
import hashlib
import os
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from scapy.all import conf, rdpcap  # noqa: E402
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,  # noqa: E402
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback  # noqa

# Dissect no further than TCP/UDP: payloads stay raw bytes, never rebuilt from fields.
conf.layers.filter([Ether, Dot1Q, Dot1AD, CookedLinux, CookedLinuxV2, Loopback, IP, IPv6,
                    IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt,
                    IPv6ExtHdrFragment, UDP, TCP, GTP_U_Header, GTPPDUSessionContainer])

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
FLIGHT_MAX = 16384   # bytes of a flight kept
SEED_MAX = 20000     # bytes of a seed file
REASM_LIMIT = 4096   # the stream limit written into reasm seeds (fuzz_l7_reasm's kBytesEach)
REASM_SEGS = 512     # segments per reasm seed
SYN, ACK = 0x02, 0x10


def l4_of(pkt):
    """(ip, l4) of the innermost TCP or UDP header of pkt, or None (also for fragments)."""
    if Loopback in pkt and pkt[Loopback].payload.name == 'Raw':  # BSD loopback, IPv6
        raw = bytes(pkt[Loopback].payload)
        pkt = IPv6(raw) if raw[:1] and raw[0] >> 4 == 6 else IP(raw)
    l4, layer = None, pkt
    while layer and layer.name not in ('Raw', 'Padding'):
        if isinstance(layer, IPv6ExtHdrFragment) or (isinstance(layer, IP) and
                                                     (layer.frag or layer.flags.MF)):
            return None
        if isinstance(layer, (TCP, UDP)):
            l4 = layer
        layer = layer.payload
    if l4 is None:
        return None
    ip = l4.underlayer
    while not isinstance(ip, (IP, IPv6)):
        ip = ip.underlayer
    return ip, l4


def payload_of(l4):
    """The bytes after the L4 header, without link-layer padding."""
    data = bytes(l4.payload)
    pad = l4.payload.getlayer('Padding')
    return data[:len(data) - len(pad.load)] if pad is not None else data


def rel(seq, base):
    """seq - base as a signed 32-bit distance."""
    d = (seq - base) & 0xffffffff
    return d - (1 << 32) if d & 0x80000000 else d


class Flow:
    def __init__(self):
        self.client = None        # (addr, port) of the side that opened it
        self.server = None
        self.isn = None           # client ISN, when its SYN was captured
        self.segs = []            # client data segments in capture order: (seq, bytes)
        self.flight = 0           # how many of segs came before the server's first data
        self.server_spoke = False


def read_flows(path):
    """TCP flows (in order of first packet) and UDP/53 payloads of one capture."""
    flows, dns = {}, []
    for pkt in rdpcap(path):
        found = l4_of(pkt)
        if found is None:
            continue
        ip, l4 = found
        data = payload_of(l4)
        src, dst = (ip.src, l4.sport), (ip.dst, l4.dport)
        if isinstance(l4, UDP):
            if 53 in (l4.sport, l4.dport) and data:
                dns.append((l4.dport == 53, data))
            continue
        f = flows.setdefault(frozenset((src, dst)), Flow())
        flags = int(l4.flags)
        if f.client is None:
            # The SYN's sender opened the flow, the SYN-ACK's received it; mid-flow
            # captures: the side on the lower port is taken as the server.
            if flags & SYN:
                f.client = dst if flags & ACK else src
            else:
                f.client = src if l4.sport > l4.dport else dst
            f.server = dst if f.client == src else src
        if src != f.client:
            f.server_spoke = f.server_spoke or bool(data)
            continue
        if flags & SYN and not flags & ACK:
            f.isn = l4.seq
        if data:
            # Data on a SYN (TCP Fast Open) starts one past its sequence number.
            f.segs.append(((l4.seq + (1 if flags & SYN else 0)) & 0xffffffff, data))
            if not f.server_spoke:
                f.flight = len(f.segs)
    return [f for f in flows.values() if f.segs], dns


def base_of(f):
    """The sequence number of the client's first byte (or of the lowest one captured)."""
    if f.isn is not None:
        return (f.isn + 1) & 0xffffffff
    first = f.segs[0][0]
    return min((s for s, _ in f.segs), key=lambda s: rel(s, first))


def flight_of(f):
    """The first flight in sequence order: the contiguous bytes from its lowest offset."""
    base, have = base_of(f), {}
    for seq, data in f.segs[:f.flight]:
        off = rel(seq, base)
        for i, b in enumerate(data):
            if 0 <= off + i < FLIGHT_MAX:
                have.setdefault(off + i, b)  # the first copy wins, as in reasm
    if not have:
        return b''
    out, at = bytearray(), min(have)
    while at in have and len(out) < FLIGHT_MAX:
        out.append(have[at])
        at += 1
    return bytes(out)


def reasm_seed(f):
    """fuzz_l7_reasm's input for the client's segments as captured: limit (u16), base
    (u32), then offset (i16), length (u16), mode, fill per segment of at most 1023 bytes.
    Mode 1|8: bytes already present are copied, the others a stride-1 pattern; +4 when
    the capture's bytes differ from those present, with fill pointing at the first such."""
    base, have = base_of(f), {}
    out = bytearray(struct.pack('<HI', REASM_LIMIT, base))
    for seq, data in f.segs:
        off = rel(seq, base)
        for start in range(0, len(data), 1023):
            piece = data[start:start + 1023]
            o = off + start
            if not -32768 <= o < FLIGHT_MAX or len(out) + 6 > SEED_MAX:
                continue
            if (len(out) - 6) // 6 >= REASM_SEGS:
                break
            differ = [i for i, b in enumerate(piece) if have.get(o + i, b) != b]
            mode, fill = 1 | 8, piece[0]
            if differ:
                fills = [v for v in range(256) if v % len(piece) == differ[0]]
                if fills:
                    mode, fill = mode | 4, fills[0]
            else:
                for i, b in enumerate(piece):
                    have[o + i] = b
            out += struct.pack('<hHBB', o, len(piece), mode, fill)
    return bytes(out) if len(out) > 6 else None


def hello_message(stream):
    """The ClientHello handshake message carried by the stream's first records, or None."""
    msg, pos = bytearray(), 0
    while pos + 5 <= len(stream) and stream[pos] == 22:
        n = stream[pos + 3] << 8 | stream[pos + 4]
        msg += stream[pos + 5:pos + 5 + n]
        pos += 5 + n
        if len(msg) >= 4 and msg[0] == 1 and len(msg) >= 4 + int.from_bytes(msg[1:4], 'big'):
            return bytes(msg[:4 + int.from_bytes(msg[1:4], 'big')])
    return None


def tls_shape(stream):
    """A ClientHello's extension types (hellos differing only in random, session id, key
    shares or name are one shape); other streams: their first byte."""
    msg = hello_message(stream)
    try:
        p = 4 + 2 + 32
        p += 1 + msg[p]
        p += 2 + (msg[p] << 8 | msg[p + 1])
        p += 1 + msg[p]
        end, p = p + 2 + (msg[p] << 8 | msg[p + 1]), p + 2
        types = []
        while p + 4 <= end:
            t, n = msg[p] << 8 | msg[p + 1], msg[p + 2] << 8 | msg[p + 3]
            types.append(t)
            p += 4 + n
        return ('hello', tuple(types))
    except (TypeError, IndexError):
        return ('tls', stream[:1])


def http_shape(stream):
    """The request's method and header names."""
    head = stream.split(b'\r\n\r\n', 1)[0].split(b'\r\n')
    return ('http', head[0].split(b' ', 1)[0],
            tuple(h.split(b':', 1)[0].lower() for h in head[1:]))


def is_tls(stream):
    return stream[:1] in (b'\x14', b'\x15', b'\x16', b'\x17', b'\x80')


def candidates(path):
    """(fuzzer, bytes, shape) for every seed one capture yields, in capture order."""
    flows, dns = read_flows(path)
    out = []
    for f in flows:
        stream = flight_of(f)
        if stream:
            if f.server[1] == 53:
                out.append(('l7_dns', stream, None))
                out.append(('l7_flight', b'\x01' + stream, None))
            elif is_tls(stream):
                out.append(('l7_tls', stream, tls_shape(stream)))
                out.append(('l7_flight', b'\x00' + stream, tls_shape(stream)))
                msg = hello_message(stream)
                if msg:
                    out.append(('l7_tls', msg, ('msg',) + tls_shape(stream)))
            else:
                out.append(('l7_http', stream, http_shape(stream)))
                out.append(('l7_flight', b'\x00' + stream, http_shape(stream)))
        seed = reasm_seed(f)
        if seed:
            out.append(('l7_reasm', seed, None))
    for query, msg in dns:
        out.append(('l7_dns', msg, None))
        if query:
            out.append(('l7_flight', b'\x01' + struct.pack('>H', len(msg)) + msg, None))
    return out


def main():
    ap = argparse.ArgumentParser(
        description='Seeds the L7 fuzz corpora from the shared captures.')
    ap.add_argument('--pcaps', default=os.path.join(REPO, '..', 'shared', 'pcaps'))
    ap.add_argument('--corpus', default=os.path.join(REPO, 'tests', 'fuzz', 'corpus'))
    ap.add_argument('--per-capture', type=int, default=10)
    args = ap.parse_args()
    fuzzers = ('l7_tls', 'l7_http', 'l7_dns', 'l7_flight', 'l7_reasm')
    seen = {}  # per fuzzer: content hashes and shapes already in its corpus
    for name in fuzzers:
        d = os.path.join(args.corpus, name)
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, 'pcap-*')):
            os.remove(old)
        seen[name] = {hashlib.sha256(open(os.path.join(d, e), 'rb').read()).digest()
                      for e in os.listdir(d)}
    captures = sorted(glob.glob(os.path.join(args.pcaps, '*.pcap')) +
                      glob.glob(os.path.join(args.pcaps, '*.pcapng')))
    if not captures:
        sys.exit(f'no captures in {args.pcaps}')
    for path in captures:
        stem = os.path.basename(path).rsplit('.', 1)[0]
        written = {name: 0 for name in fuzzers}
        for name, data, shape in candidates(path):
            key = hashlib.sha256(data).digest()
            if (len(data) >= SEED_MAX or written[name] >= args.per_capture or
                    key in seen[name] or (shape is not None and shape in seen[name])):
                continue
            seen[name] |= {key} | ({shape} if shape is not None else set())
            written[name] += 1
            with open(os.path.join(args.corpus, name, f'pcap-{stem}-{written[name]}'), 'wb') as out:
                out.write(data)
        print(f'{stem}:', ', '.join(f'{n} {c}' for n, c in written.items() if c) or 'nothing')


if __name__ == '__main__':
    main()
