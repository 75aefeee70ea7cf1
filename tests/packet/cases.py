# The packet suite's table of synthetic cases: each one a policy, packets built with
# scapy, and the exact outcome (flow records, pass pcap, drop counters).
# Read by tests/packet/run_packet_tests.py.
import copy

from scapy.all import (ARP, DNS, DNSQR, Dot1AD, Dot1Q, Ether, GRE, ICMP, IP, IPv6,
                       IPv6ExtHdrFragment, Raw, TCP, UDP, fragment, fragment6)
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS
from scapy.layers.ipsec import ESP

LINK_NULL, LINK_RAW, LINK_LOOP, LINK_SLL, LINK_SLL2 = 0, 101, 108, 113, 276

IN_MAC, OUT_MAC = '02:00:00:00:00:01', '02:00:00:00:00:02'
C, C2, S, S2 = '198.18.1.7', '198.18.1.8', '198.19.5.5', '198.19.5.6'
DNS4, R4 = '198.19.0.53', '198.19.0.1'
C6, S6, DNS6, R6 = '2001:2:0:1::7', '2001:2:0:ff::5', '2001:2:0:ff::53', 'fe80::1'

POLICY = {
    'schema': 1,
    'default_action': 'deny',
    'services': {'app': {'cidrs': ['198.18.1.0/24', '2001:2:0:1::/64']}},
    'rulesets': [{'name': 'egress', 'rules': [
        {'id': 'web', 'from': ['app'], 'proto': 'tcp', 'ports': [80, 443], 'action': 'allow'},
        {'id': 'dns', 'from': ['any'], 'proto': 'udp', 'ports': [53],
         'to': {'cidrs': ['198.19.0.53/32', '2001:2:0:ff::53/128']}, 'action': 'allow'},
        {'id': 'ping', 'from': ['any'], 'proto': 'icmp', 'action': 'allow'},
        {'id': 'smtp', 'from': ['app'], 'proto': 'tcp', 'ports': [25], 'action': 'reject'},
        {'id': 'syslog', 'from': ['app'], 'proto': 'udp', 'ports': [514], 'action': 'reject'},
    ]}],
}

POLICY_TUNNELS = copy.deepcopy(POLICY)
POLICY_TUNNELS['rulesets'][0]['rules'].append(
    {'id': 'tunnels', 'from': ['app'], 'proto': 'any', 'to': {'cidrs': ['198.19.9.0/24']},
     'action': 'allow'})

# Inspect rules: the contract's AWS key rule (reject) and a deny rule for UDP payload.
POLICY_INSPECT = copy.deepcopy(POLICY)
POLICY_INSPECT['rulesets'][0]['rules'].append(
    {'id': 'udp-app', 'from': ['app'], 'proto': 'udp', 'ports': [5000], 'action': 'allow'})
POLICY_INSPECT['inspect'] = [
    {'id': 'no-aws-keys', 'from': ['any'], 'patterns': ['AKIA[0-9A-Z]{16}'], 'action': 'reject'},
    {'id': 'no-udp-secrets', 'from': ['app'], 'patterns': ['secret=[0-9a-f]{8}'],
     'action': 'deny'},
]


def out(pkt, vlan=None):
    """An outbound frame (from the inside host), optionally VLAN tagged (vid or (outer, inner))."""
    return _eth(IN_MAC, OUT_MAC, pkt, vlan)


def inb(pkt, vlan=None):
    """An inbound frame (towards the inside host)."""
    return _eth(OUT_MAC, IN_MAC, pkt, vlan)


def _eth(src, dst, pkt, vlan):
    if vlan is None:
        return Ether(src=src, dst=dst) / pkt
    if isinstance(vlan, tuple):
        return Ether(src=src, dst=dst) / Dot1AD(vlan=vlan[0]) / Dot1Q(vlan=vlan[1]) / pkt
    return Ether(src=src, dst=dst) / Dot1Q(vlan=vlan) / pkt


def ip(src, dst, **kw):
    return IPv6(src=src, dst=dst, **kw) if ':' in src else IP(src=src, dst=dst, **kw)


def handshake(c, s, sport, dport, vlan=None, iss=1000, irs=5000):
    """SYN, SYN-ACK, ACK."""
    return [out(ip(c, s) / TCP(sport=sport, dport=dport, flags='S', seq=iss, window=64240), vlan),
            inb(ip(s, c) / TCP(sport=dport, dport=sport, flags='SA', seq=irs, ack=iss + 1,
                               window=65160), vlan),
            out(ip(c, s) / TCP(sport=sport, dport=dport, flags='A', seq=iss + 1, ack=irs + 1,
                               window=64240), vlan)]


def session(c, s, sport, dport, vlan=None):
    """A whole TCP connection: handshake, a request and an answer, FIN both ways (10 packets,
    6 outbound, 4 inbound)."""
    i, r = 1001, 5001
    req, resp = b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', b'HTTP/1.1 200 OK\r\n\r\n'
    o = lambda **kw: out(ip(c, s) / TCP(sport=sport, dport=dport, window=64240, **kw), vlan)
    n = lambda **kw: inb(ip(s, c) / TCP(sport=dport, dport=sport, window=65160, **kw), vlan)
    return handshake(c, s, sport, dport, vlan) + [
        o(flags='PA', seq=i, ack=r) / req,
        n(flags='A', seq=r, ack=i + len(req)),
        n(flags='PA', seq=r, ack=i + len(req)) / resp,
        o(flags='A', seq=i + len(req), ack=r + len(resp)),
        o(flags='FA', seq=i + len(req), ack=r + len(resp)),
        n(flags='FA', seq=r + len(resp), ack=i + len(req) + 1),
        o(flags='A', seq=i + len(req) + 1, ack=r + len(resp) + 1),
    ]


def syn(c, s, sport, dport, vlan=None, seq=1000):
    return out(ip(c, s) / TCP(sport=sport, dport=dport, flags='S', seq=seq), vlan)


def udp_out(c, s, sport, dport, payload=b'q' * 20):
    return out(ip(c, s) / UDP(sport=sport, dport=dport) / payload)


def udp_in(s, c, sport, dport, payload=b'a' * 20):
    return inb(ip(s, c) / UDP(sport=sport, dport=dport) / payload)


def rec(src, dst, sport, dport, proto, verdict, rule_id, pkts, **more):
    r = {'src': src, 'dst': dst, 'sport': sport, 'dport': dport, 'proto': proto,
         'verdict': verdict, 'rule_id': rule_id, 'pkts': pkts}
    r.update(more)
    return r


def rst_to(client, server, cport, sport, ack=None):
    w = {'kind': 'rst', 'src': server, 'dst': client, 'sport': sport, 'dport': cport}
    if ack is not None:
        w['ack'] = ack
    return w


def unreach_to(client, server, cport, sport):
    return {'kind': 'unreach', 'src': server, 'dst': client, 'sport': cport, 'dport': sport}


def rst_forward(client, server, cport, sport, seq):
    """egw's RST on to the server, at the first byte the server was not sent."""
    return {'kind': 'rst', 'src': client, 'dst': server, 'sport': cport, 'dport': sport,
            'seq': seq}


def key_split_case(c, s, sport, pieces):
    """An allowed tcp/443 connection whose client sends an AWS key id split over the
    segments `pieces` (the key completes in the last one), then retransmits that segment
    (rejected again, like any packet of a rejected flow); the server's data after egw
    reset the flow is dropped."""
    o = lambda seq, data: out(ip(c, s) / TCP(sport=sport, dport=443, flags='PA', seq=seq,
                                              ack=5001, window=64240) / data)
    pkts, seq = handshake(c, s, sport, 443), 1001
    for data in pieces[:-1]:
        pkts += [o(seq, data), inb(ip(s, c) / TCP(sport=443, dport=sport, flags='A', seq=5001,
                                                  ack=seq + len(data), window=65160))]
        seq += len(data)
    last = o(seq, pieces[-1])
    late = inb(ip(s, c) / TCP(sport=443, dport=sport, flags='PA', seq=5001, ack=seq,
                              window=65160) / b'HTTP/1.1 100 Continue\r\n\r\n')
    n = len(pkts)
    return {
        'description': 'IPv%d: an AWS key id split over %d segments is found: the flow is reset '
                       '(inspect reject), the segment completing it never reaches the server' % (
                           6 if ':' in c else 4, len(pieces)),
        'policy': POLICY_INSPECT,
        'packets': pkts + [last, last, late],
        'records': [rec(c, s, sport, 443, 'TCP', 'reject', 'no-aws-keys',
                        (2 + len(pieces) + 1, len(pieces) + 1))],
        # Everything before the last segment, then for it and its retransmission (one
        # burst: egw-replay writes what goes onward first) a RST on to the server, the
        # first at the first byte the server was not sent, and one back to the client at
        # the segment's ack.
        'pass': list(range(n)) + [rst_forward(c, s, sport, 443, seq),
                                  {'kind': 'rst', 'src': c, 'dst': s, 'sport': sport, 'dport': 443},
                                  dict(rst_to(c, s, sport, 443), seq=5001),
                                  dict(rst_to(c, s, sport, 443), seq=5001)],
        'drops': {'inspect_match': 1, 'policy_reject': 1, 'policy_deny': 1}}


def frags4(pkt, size):
    """Ethernet-framed IPv4 fragments of pkt's IP datagram (outbound)."""
    return [out(f) for f in fragment(pkt[IP], fragsize=size)]


def frags6(c, s, l4, size, ident=7):
    return [out(f) for f in fragment6(IPv6(src=c, dst=s) / IPv6ExtHdrFragment(id=ident) / l4,
                                      size)]


def tcp_established_window_case():
    hs = handshake(C, S, 40010, 443)
    rst_far = inb(ip(S, C) / TCP(sport=443, dport=40010, flags='R', seq=5001 + 50000000))
    data_out = out(ip(C, S) / TCP(sport=40010, dport=443, flags='PA', seq=1001, ack=5001) / b'x')
    data_in = inb(ip(S, C) / TCP(sport=443, dport=40010, flags='A', seq=5001, ack=1002))
    return hs + [rst_far, data_out, data_in]


def overlapping_frags4():
    pkt = IP(src=C, dst=DNS4, id=77) / UDP(sport=5353, dport=53) / (b'o' * 1600)
    f = fragment(pkt, fragsize=800)  # offsets 0, 800, 1600 bytes
    over = IP(bytes(f[1]))
    over.frag = 150  # 1200 bytes: overlaps the second fragment's range
    del over.chksum
    return [out(f[0]), out(f[1]), out(over), out(f[2])]


def overlapping_frags6():
    l4 = UDP(sport=5353, dport=53) / (b'o' * 1600)
    f = fragment6(IPv6(src=C6, dst=DNS6) / IPv6ExtHdrFragment(id=9) / l4, 800)
    over = IPv6(bytes(f[1]))
    over[IPv6ExtHdrFragment].offset += 10  # 80 bytes later: overlaps the second fragment
    return [out(f[0]), out(f[1]), out(over)] + [out(x) for x in f[2:]]


def tiny_first_frag4():
    # 8 bytes of TCP header in the first fragment: ports, no flags.
    tcp = bytes(TCP(sport=40020, dport=443, flags='S', seq=1))
    return [out(IP(src=C, dst=S, id=5, flags='MF', frag=0, proto=6) / Raw(tcp[:8])),
            out(IP(src=C, dst=S, id=5, flags=0, frag=1, proto=6) / Raw(tcp[8:]))]


def bad_ipv4_frames():
    good = syn(C, S, 40030, 443)
    bad_sum = out(IP(src=C, dst=S, chksum=0x1234) / TCP(sport=40030, dport=443, flags='S', seq=1000))
    bad_ihl = Ether(bytes(good)[:14] + bytes([0x44]) + bytes(good)[15:])
    return [bad_sum, bad_ihl, Ether(bytes(good)[:30]), good]


CASES = [
    {'description': 'allowed TCP connection passes entirely (handshake, data, FIN both ways)',
     'policy': POLICY, 'packets': session(C, S, 40000, 443),
     'records': [rec(C, S, 40000, 443, 'TCP', 'allow', 'web', (6, 4))],
     'pass': list(range(10)), 'drops': {}, 'summary': {'outbound': 6, 'inbound': 4}},
    {'description': 'denied TCP SYN and its retransmission dropped (default action: rule_id null)',
     'policy': POLICY, 'packets': [syn(C, S, 40001, 22), syn(C, S, 40001, 22)],
     'records': [rec(C, S, 40001, 22, 'TCP', 'deny', None, (2, 0))],
     'pass': [], 'drops': {'policy_deny': 2}},
    {'description': 'rejected TCP SYN: a RST answers the client',
     'policy': POLICY, 'packets': [syn(C, S, 40002, 25, seq=7000)],
     'records': [rec(C, S, 40002, 25, 'TCP', 'reject', 'smtp', (1, 0))],
     'pass': [rst_to(C, S, 40002, 25, ack=7001)], 'drops': {'policy_reject': 1}},
    {'description': 'rejected UDP datagram: ICMP port unreachable to the client',
     'policy': POLICY, 'packets': [udp_out(C, S, 6000, 514)],
     'records': [rec(C, S, 6000, 514, 'UDP', 'reject', 'syslog', (1, 0))],
     'pass': [unreach_to(C, S, 6000, 514)], 'drops': {'policy_reject': 1}},
    {'description': 'unsolicited inbound SYN, SYN-ACK, ACK, RST and UDP dropped, no flow (29)',
     'policy': POLICY,
     'packets': [inb(IP(src=S, dst=C) / TCP(sport=443, dport=40003, flags=f, seq=1, ack=1))
                 for f in ('S', 'SA', 'A', 'R')] + [udp_in(DNS4, C, 53, 5353)],
     'records': [], 'pass': [], 'drops': {'inbound_no_flow': 5}, 'summary': {'flows_created': 0}},
    {'description': 'reply from another remote address or port dropped (30)',
     'policy': POLICY,
     'packets': [syn(C, S, 40004, 443),
                 inb(IP(src=S2, dst=C) / TCP(sport=443, dport=40004, flags='SA', seq=5000, ack=1001)),
                 inb(IP(src=S, dst=C) / TCP(sport=444, dport=40004, flags='SA', seq=5000, ack=1001)),
                 inb(IP(src=S, dst=C) / TCP(sport=443, dport=40004, flags='SA', seq=5000, ack=1001))],
     'records': [rec(C, S, 40004, 443, 'TCP', 'allow', 'web', (1, 1))],
     'pass': [0, 3], 'drops': {'inbound_no_flow': 2}},
    {'description': 'ICMP error quoting an allowed flow passes; a forged inner header is dropped (31)',
     'policy': POLICY,
     'packets': [udp_out(C, DNS4, 5353, 53, bytes(DNS(id=7, rd=1, qd=DNSQR(qname='a.example')))),
                 inb(IP(src=R4, dst=C) / ICMP(type=3, code=3) /
                     IP(src=C, dst=DNS4) / UDP(sport=5353, dport=53) / (b'q' * 20)),
                 inb(IP(src=R4, dst=C) / ICMP(type=3, code=3) /
                     IP(src=C, dst=DNS4) / UDP(sport=5353, dport=54) / (b'q' * 20))],
     'records': [rec(C, DNS4, 5353, 53, 'UDP', 'allow', 'dns', (1, 1))],
     'pass': [0, 1], 'drops': {'icmp_error_no_flow': 1}},
    {'description': 'out-of-window RST dropped and the connection continues (32)',
     'policy': POLICY, 'packets': tcp_established_window_case(),
     'records': [rec(C, S, 40010, 443, 'TCP', 'allow', 'web', (3, 3))],
     'pass': [0, 1, 2, 4, 5], 'drops': {'tcp_out_of_window': 1}},
    {'description': 'mid-stream packets without a flow dropped and counted (33)',
     'policy': POLICY,
     'packets': [out(IP(src=C, dst=S) / TCP(sport=40011, dport=443, flags='PA', seq=9, ack=9) / b'x'),
                 out(IP(src=C, dst=S) / TCP(sport=40011, dport=443, flags='A', seq=10, ack=9))],
     'records': [], 'pass': [], 'drops': {'midstream_no_flow': 2}},
    {'description': 'SYN flood: embryonic flows evicted first, the established flow unaffected (34)',
     'policy': POLICY, 'flows': 8,
     'packets': handshake(C, S, 40100, 443) + [syn(C2, S, 41000 + i, 443) for i in range(20)] +
     [out(IP(src=C, dst=S) / TCP(sport=40100, dport=443, flags='PA', seq=1001, ack=5001) / b'y')],
     'pass': list(range(24)), 'drops': {},
     'summary': {'flows_created': 21},
     'record_counts': {'reason': {'evicted': 13, 'shutdown': 8}}},
    {'description': 'table full of established flows: a new flow is denied (fail closed) (34)',
     'policy': POLICY, 'flows': 2,
     'packets': handshake(C, S, 40200, 443) + handshake(C, S, 40201, 443) +
     [syn(C, S, 40202, 443),
      out(IP(src=C, dst=S) / TCP(sport=40200, dport=443, flags='PA', seq=1001, ack=5001) / b'z')],
     'records': [rec(C, S, 40200, 443, 'TCP', 'allow', 'web', (3, 1)),
                 rec(C, S, 40201, 443, 'TCP', 'allow', 'web', (2, 1))],
     'pass': [0, 1, 2, 3, 4, 5, 7], 'drops': {'flow_table_full': 1}},
    {'description': 'IPv6: allowed TCP connection passes entirely',
     'policy': POLICY, 'packets': session(C6, S6, 40000, 443),
     'records': [rec(C6, S6, 40000, 443, 'TCP', 'allow', 'web', (6, 4))],
     'pass': list(range(10)), 'drops': {}},
    {'description': 'IPv6: denied SYN, rejected SYN (RST), rejected UDP (ICMPv6 unreachable)',
     'policy': POLICY,
     'packets': [syn(C6, S6, 40001, 22), syn(C6, S6, 40002, 25, seq=7000), udp_out(C6, S6, 6000, 514)],
     'records': [rec(C6, S6, 40001, 22, 'TCP', 'deny', None, (1, 0)),
                 rec(C6, S6, 40002, 25, 'TCP', 'reject', 'smtp', (1, 0)),
                 rec(C6, S6, 6000, 514, 'UDP', 'reject', 'syslog', (1, 0))],
     'pass': [rst_to(C6, S6, 40002, 25, ack=7001), unreach_to(C6, S6, 6000, 514)],
     'drops': {'policy_deny': 1, 'policy_reject': 2}},
    {'description': 'IPv6: unsolicited inbound SYN and UDP dropped; ping and its reply pass',
     'policy': POLICY,
     'packets': [inb(IPv6(src=S6, dst=C6) / TCP(sport=443, dport=1, flags='S')),
                 udp_in(DNS6, C6, 53, 5353),
                 out(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=5, seq=1)),
                 inb(IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=5, seq=1))],
     'records': [rec(C6, S6, 5, 0, 'IPv6-ICMP', 'allow', 'ping', (1, 1))],
     'pass': [2, 3], 'drops': {'inbound_no_flow': 2}},
    {'description': 'VLAN is part of the flow key: a reply on another VLAN is dropped (26)',
     'policy': POLICY,
     'packets': [syn(C, S, 40300, 443, vlan=100),
                 inb(IP(src=S, dst=C) / TCP(sport=443, dport=40300, flags='SA', seq=5000, ack=1001), 200),
                 inb(IP(src=S, dst=C) / TCP(sport=443, dport=40300, flags='SA', seq=5000, ack=1001), 100)],
     'records': [rec(C, S, 40300, 443, 'TCP', 'allow', 'web', (1, 1), vlan=[100])],
     'pass': [0, 2], 'drops': {'inbound_no_flow': 1}},
    {'description': 'QinQ: both tags in the flow key; another inner tag is dropped (26)',
     'policy': POLICY,
     'packets': session(C, S, 40301, 443, vlan=(10, 20))[:3] +
     [inb(IP(src=S, dst=C) / TCP(sport=443, dport=40301, flags='A', seq=5001, ack=1001), (10, 21))],
     'records': [rec(C, S, 40301, 443, 'TCP', 'allow', 'web', (2, 1), vlan=[10, 20])],
     'pass': [0, 1, 2], 'drops': {'inbound_no_flow': 1}},
    {'description': 'IPv4 fragments of an allowed datagram pass',
     'policy': POLICY,
     'packets': frags4(IP(src=C, dst=DNS4, id=42) / UDP(sport=5353, dport=53) / (b'd' * 2000), 800),
     'records': [rec(C, DNS4, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [0, 1, 2], 'drops': {}},
    {'description': 'IPv4 fragments of an allowed datagram pass (10 ms apart: one burst each)',
     'policy': POLICY, 'spacing': 0.01,
     'packets': frags4(IP(src=C, dst=DNS4, id=44) / UDP(sport=5353, dport=53) / (b'd' * 2000), 800),
     'records': [rec(C, DNS4, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [0, 1, 2], 'drops': {}},
    {'description': 'IPv4 overlapping fragment dropped, then the rest of its datagram (24)',
     'policy': POLICY, 'packets': overlapping_frags4(),
     'records': [rec(C, DNS4, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [0, 1], 'drops': {'frag_overlap': 1, 'frag_denied': 1}},
    {'description': 'IPv4 tiny first fragment (no full TCP header) dropped, then its orphan (24)',
     'policy': POLICY, 'packets': tiny_first_frag4(),
     'records': [], 'pass': [], 'drops': {'frag_no_l4': 1, 'frag_orphan': 1}},
    {'description': 'IPv4 fragments of a denied datagram dropped',
     'policy': POLICY,
     'packets': frags4(IP(src=C, dst=S, id=43) / UDP(sport=5353, dport=9999) / (b'd' * 2000), 800),
     'records': [rec(C, S, 5353, 9999, 'UDP', 'deny', None, (1, 0))],
     'pass': [], 'drops': {'policy_deny': 1, 'frag_orphan': 2}},
    {'description': 'IPv6 fragments of an allowed datagram pass',
     'policy': POLICY, 'packets': frags6(C6, DNS6, UDP(sport=5353, dport=53) / (b'd' * 2000), 800),
     'records': [rec(C6, DNS6, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [0, 1, 2], 'drops': {}},
    {'description': 'IPv6 overlapping fragment dropped, then the rest of its datagram (24)',
     'policy': POLICY, 'packets': overlapping_frags6(),
     'records': [rec(C6, DNS6, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [0, 1], 'drops': {'frag_overlap': 1, 'frag_denied': 1}},
    {'description': 'tunnels (GRE, IPIP, ESP) outbound denied by default (28)',
     'policy': POLICY,
     'packets': [out(IP(src=C, dst=S) / GRE() / IP(src='10.0.0.1', dst='10.0.0.2') / ICMP()),
                 out(IP(src=C, dst=S, proto=4) / IP(src='10.0.0.1', dst='10.0.0.2') / ICMP()),
                 out(IP(src=C, dst=S) / ESP(spi=1, seq=1, data=b'e' * 32))],
     'records': [rec(C, S, 0, 0, '47', 'deny', None, (1, 0)),
                 rec(C, S, 0, 0, '4', 'deny', None, (1, 0)),
                 rec(C, S, 0, 0, '50', 'deny', None, (1, 0))],
     'pass': [], 'drops': {'policy_deny': 3}},
    {'description': 'tunnels allowed by a proto-any rule to their destination only (28)',
     'policy': POLICY_TUNNELS,
     'packets': [out(IP(src=C, dst='198.19.9.1') / GRE() / IP(src='10.0.0.1', dst='10.0.0.2') / ICMP()),
                 out(IP(src=C, dst='198.19.9.1') / ESP(spi=1, seq=1, data=b'e' * 32)),
                 out(IP(src=C, dst=S) / GRE() / IP(src='10.0.0.1', dst='10.0.0.2') / ICMP())],
     'records': [rec(C, '198.19.9.1', 0, 0, '47', 'allow', 'tunnels', (1, 0)),
                 rec(C, '198.19.9.1', 0, 0, '50', 'allow', 'tunnels', (1, 0)),
                 rec(C, S, 0, 0, '47', 'deny', None, (1, 0))],
     'pass': [0, 1], 'drops': {'policy_deny': 1}},
    {'description': 'ARP and IPv6 neighbour discovery pass both ways; other ethertypes dropped',
     'policy': POLICY,
     'packets': [Ether(src=IN_MAC, dst='ff:ff:ff:ff:ff:ff') / ARP(op=1, psrc=C, pdst='198.18.1.1'),
                 Ether(src=OUT_MAC, dst=IN_MAC) / ARP(op=2, psrc='198.18.1.1', pdst=C),
                 out(IPv6(src=C6, dst='ff02::1:ff00:1', hlim=255) / ICMPv6ND_NS(tgt='2001:2:0:1::1')),
                 inb(IPv6(src=R6, dst=C6, hlim=255) / ICMPv6ND_NA(tgt=R6, S=1)),
                 Ether(src=IN_MAC, dst='01:80:c2:00:00:0e', type=0x88cc) / (b'\0' * 46),
                 Ether(src=IN_MAC, dst=OUT_MAC, type=0x8137) / (b'\0' * 46)],
     'records': [], 'pass': [0, 1, 2, 3], 'drops': {'non_ip': 2}},
    {'description': 'bad IPv4 checksum, bad IHL and a truncated frame dropped before any state (27)',
     'policy': POLICY, 'packets': bad_ipv4_frames(),
     'records': [rec(C, S, 40030, 443, 'TCP', 'allow', 'web', (1, 0))],
     'pass': [3], 'drops': {'bad_ipv4_checksum': 1, 'bad_ipv4_header': 1, 'truncated': 1}},
    {'description': 'an IP packet with neither end inside is skipped and counted',
     'policy': POLICY, 'packets': [out(IP(src='10.1.1.1', dst='10.2.2.2') / UDP(sport=1, dport=53))],
     'records': [], 'pass': [], 'drops': {}, 'summary': {'not_inside': 1, 'packets': 1}},
    {'description': 'a frame longer than an mbuf holds is skipped and counted as oversize',
     'policy': POLICY,
     'packets': [out(IP(src=C, dst=DNS4) / UDP(sport=5353, dport=53) / (b'j' * 3000)),
                 udp_out(C, DNS4, 5353, 53, bytes(DNS(id=9, rd=1, qd=DNSQR(qname='b.example'))))],
     'records': [rec(C, DNS4, 5353, 53, 'UDP', 'allow', 'dns', (1, 0))],
     'pass': [1], 'drops': {}, 'summary': {'oversize': 1, 'outbound': 1, 'packets': 2}},
    key_split_case(C, S, 40500, [b'POST /k HTTP/1.1\r\nHost: x\r\n\r\nkey=AKIAABCDEF',
                                 b'GHIJKLMNOP&more']),
    key_split_case(C6, S6, 40501, [b'id=AK', b'I', b'AABCDEFGHIJKLMN', b'OP']),
    {'description': 'inspect: a key id that is not one (15 characters) passes; the flow stays '
                    'allowed',
     'policy': POLICY_INSPECT,
     'packets': session(C, S, 40502, 443)[:3] + [
         out(ip(C, S) / TCP(sport=40502, dport=443, flags='PA', seq=1001, ack=5001) /
             b'key=AKIAABCDEFGHIJKLMNO')],
     'records': [rec(C, S, 40502, 443, 'TCP', 'allow', 'web', (3, 1))],
     'pass': [0, 1, 2, 3], 'drops': {}},
    {'description': 'inspect deny on UDP: the datagram holding the pattern and all later ones '
                    'dropped silently; a pattern split over two datagrams is not one',
     'policy': POLICY_INSPECT,
     'packets': [udp_out(C, S, 6001, 5000, b'hello'),
                 udp_in(S, C, 5000, 6001),
                 udp_out(C, S, 6001, 5000, b'x secret=0123abcd y'),
                 udp_out(C, S, 6001, 5000, b'clean'),
                 udp_in(S, C, 5000, 6001),
                 udp_out(C, S, 6002, 5000, b'secret=0123'),
                 udp_out(C, S, 6002, 5000, b'abcd0000')],
     'records': [rec(C, S, 6001, 5000, 'UDP', 'deny', 'no-udp-secrets', (3, 2)),
                 rec(C, S, 6002, 5000, 'UDP', 'allow', 'udp-app', (2, 0))],
     'pass': [0, 1, 5, 6], 'drops': {'inspect_match': 1, 'policy_deny': 2}},
    {'description': '--inside replaces the service CIDRs',
     'policy': POLICY, 'inside': ['10.1.1.0/24'],
     'packets': [out(IP(src='10.1.1.1', dst=S) / TCP(sport=1234, dport=443, flags='S')),
                 syn(C, S, 40040, 443)],
     'records': [rec('10.1.1.1', S, 1234, 443, 'TCP', 'deny', None, (1, 0))],
     'pass': [], 'drops': {'policy_deny': 1}, 'summary': {'not_inside': 1}},
]

# The same connection in every supported link type, and in pcapng: the same outcome.
for _name, _lt in (('Linux cooked SLL', LINK_SLL), ('Linux cooked SLL2', LINK_SLL2),
                   ('raw IP', LINK_RAW), ('BSD loopback NULL', LINK_NULL),
                   ('OpenBSD loopback LOOP', LINK_LOOP)):
    for _c, _s in ((C, S), (C6, S6)):
        CASES.append({
            'description': 'link type %s (%d), IPv%d: same verdicts as Ethernet' % (
                _name, _lt, 6 if ':' in _c else 4),
            'policy': POLICY, 'linktype': _lt,
            'packets': session(_c, _s, 40000, 443) + [syn(_c, _s, 40001, 22)],
            'records': [rec(_c, _s, 40000, 443, 'TCP', 'allow', 'web', (6, 4)),
                        rec(_c, _s, 40001, 22, 'TCP', 'deny', None, (1, 0))],
            'pass': list(range(10)), 'drops': {'policy_deny': 1}})
CASES.append({
    'description': 'compiled policy (egwctl compile): same verdicts, inside CIDRs from the blob',
    'policy': POLICY, 'compiled': True,
    'packets': session(C6, S6, 40000, 443) + [syn(C, S, 40002, 25, seq=7000)],
    'records': [rec(C6, S6, 40000, 443, 'TCP', 'allow', 'web', (6, 4)),
                rec(C, S, 40002, 25, 'TCP', 'reject', 'smtp', (1, 0))],
    'pass': list(range(10)) + [rst_to(C, S, 40002, 25, ack=7001)],
    'drops': {'policy_reject': 1}, 'summary': {'outbound': 7, 'inbound': 4}})
CASES.append({
    'description': 'pcapng input: same verdicts as pcap',
    'policy': POLICY, 'pcapng': True,
    'packets': session(C, S, 40000, 443) + [syn(C, S, 40001, 22)],
    'records': [rec(C, S, 40000, 443, 'TCP', 'allow', 'web', (6, 4)),
                rec(C, S, 40001, 22, 'TCP', 'deny', None, (1, 0))],
    'pass': list(range(10)), 'drops': {'policy_deny': 1}})

# Rate limits on the capture's clock: a rule of 2 new flows a second (burst 2), five SYNs
# at 0, 0.1, 0.2, 0.3 and 0.6 s: the first two pass, the next two are over the rate (reset,
# `limited: rate`), the fifth finds a token again. A report-only rule that would reject
# them all changes nothing but their records.
POLICY_LIMITS = copy.deepcopy(POLICY)
POLICY_LIMITS['rulesets'][0]['rules'][0]['rate_limit'] = {'new_flows_per_s': 2, 'burst': 2}
POLICY_LIMITS['rulesets'].insert(0, {'name': 'candidates', 'mode': 'report', 'rules': [
    {'id': 'would-reject-web', 'from': ['app'], 'proto': 'tcp', 'ports': [443],
     'action': 'reject'}]})
_REPORT = {'report.rule_id': 'would-reject-web', 'report.verdict': 'reject'}
CASES.append({
    'description': 'rate limit on the capture clock: 2/s, burst 2; a report rule beside it',
    'policy': POLICY_LIMITS,
    'packets': [syn(C, S, 41000 + i, 443) for i in range(5)],
    'times': [1800000000.0 + t for t in (0, 0.1, 0.2, 0.3, 0.6)],
    'records': [rec(C, S, 41000, 443, 'TCP', 'allow', 'web', (1, 0), **_REPORT),
                rec(C, S, 41001, 443, 'TCP', 'allow', 'web', (1, 0), **_REPORT),
                rec(C, S, 41002, 443, 'TCP', 'reject', 'web', (1, 0), limited='rate', **_REPORT),
                rec(C, S, 41003, 443, 'TCP', 'reject', 'web', (1, 0), limited='rate', **_REPORT),
                rec(C, S, 41004, 443, 'TCP', 'allow', 'web', (1, 0), **_REPORT)],
    'pass': [0, 1, rst_to(C, S, 41002, 443, ack=1001), rst_to(C, S, 41003, 443, ack=1001), 4],
    'drops': {'policy_reject': 2}})

# Usage and input errors: exit 2 with a message naming what to fix.
_SYN = syn(C, S, 1, 443)
CASES += [
    {'description': 'error: missing policy file', 'policy': POLICY, 'policy_missing': True,
     'packets': [_SYN], 'exit': 2, 'stderr_has': ['--policy', 'missing-policy.json']},
    {'description': 'error: invalid policy document names the JSON path',
     'policy': {'schema': 1, 'default_action': 'maybe', 'rulesets': []},
     'packets': [_SYN], 'exit': 2, 'stderr_has': ['/default_action: ']},
    {'description': 'error: policy that is neither JSON nor a compiled blob',
     'policy': 'EGWX not a policy', 'packets': [_SYN], 'exit': 2, 'stderr_has': ['--policy']},
    {'description': 'error: corrupt compiled policy is refused',
     'policy': 'EGWP' + '\0' * 100, 'packets': [_SYN], 'exit': 2, 'stderr_has': ['--policy']},
    {'description': 'error: missing capture', 'policy': POLICY, 'pcap_missing': True,
     'packets': [_SYN], 'exit': 2, 'stderr_has': ['--pcap', 'missing.pcap']},
    {'description': 'error: unsupported link type names its number', 'policy': POLICY,
     'linktype': 105, 'packets': [_SYN], 'raw_frames': [bytes(_SYN)], 'exit': 2,
     'stderr_has': ['unsupported link type 105']},
    {'description': 'error: bad --inside CIDR', 'policy': POLICY, 'inside': ['198.18.1.1/24'],
     'packets': [_SYN], 'exit': 2, 'stderr_has': ['--inside 198.18.1.1/24']},
    {'description': 'error: a policy without services needs --inside',
     'policy': {'schema': 1, 'default_action': 'deny', 'rulesets': []},
     'packets': [_SYN], 'exit': 2, 'stderr_has': ['--inside']},
]
