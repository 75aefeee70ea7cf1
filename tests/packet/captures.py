# Packet-suite cases over real captures from ../shared/pcaps (see its INDEX.md): for
# each, a policy written for its addresses and the exact outcome. Missing files skip.
import os


def _policy(service_cidrs, rules, default='deny'):
    return {'schema': 1, 'default_action': default,
            'services': {'host': {'cidrs': service_cidrs}},
            'rulesets': [{'name': 'capture', 'rules': rules}]}


def _rec(src, dst, sport, dport, proto, verdict, rule_id, pkts):
    return {'src': src, 'dst': dst, 'sport': sport, 'dport': dport, 'proto': proto,
            'verdict': verdict, 'rule_id': rule_id, 'pkts': pkts}


ALLOW_ICMP = [{'id': 'ping', 'from': ['host'], 'proto': 'icmp', 'action': 'allow'}]


def cases(pcap_dir):
    p = lambda name: os.path.join(pcap_dir, name)
    vlan_frag = p('defrag_bug-6887-defrag-eth-vlan-ipv4-tcp-syn_frag-eth-vlan-ip-tcp-syn.pcap')
    v4frags = p('exception-policy-defrag-01_ipv4frags.pcap')
    v6frags = p('ipv6-evasion_ipv6-malformed-fragments-1_frag-1.pcap')
    synflood = p('firewall_tcp-session-syn-flood-drop-precedence_input.pcap')
    return [
        # 1.1.1.1:12345 -> 2.2.2.2:8080 SYN on VLAN 6, in three 8-byte fragments: the first
        # does not hold the whole TCP header, so it and its orphans are dropped even though
        # a rule would allow the flow (checklist 24).
        {'description': 'capture defrag_bug-6887: VLAN fragmented SYN with a tiny first fragment',
         'pcap_file': vlan_frag,
         'policy': _policy(['1.1.1.0/24'], [{'id': 'alt-http', 'from': ['host'], 'proto': 'tcp',
                                             'ports': [8080], 'action': 'allow'}]),
         'records': [], 'drops': {'frag_no_l4': 1, 'frag_orphan': 2},
         'summary': {'packets': 3, 'outbound': 3, 'passed': 0, 'flows_created': 0}},
        # 2.1.1.2 pings 2.1.1.1 with a two-fragment echo request; the reply is whole.
        {'description': 'capture ipv4frags: fragmented ICMP echo allowed, every packet passes',
         'pcap_file': v4frags, 'policy': _policy(['2.1.1.2/32'], ALLOW_ICMP),
         'records': [_rec('2.1.1.2', '2.1.1.1', 5058, 0, 'ICMP', 'allow', 'ping', (1, 1))],
         'drops': {}, 'summary': {'packets': 3, 'outbound': 2, 'inbound': 1, 'passed': 3}},
        {'description': 'capture ipv4frags: denied echo, its fragment and the reply dropped',
         'pcap_file': v4frags, 'policy': _policy(['2.1.1.2/32'], []),
         'records': [_rec('2.1.1.2', '2.1.1.1', 5058, 0, 'ICMP', 'deny', None, (1, 1))],
         'drops': {'policy_deny': 2, 'frag_orphan': 1}, 'summary': {'passed': 0}},
        # 2001:db8:1::2 pings 2001:db8:1::1; a fragmented echo request repeats its second
        # fragment (an exact overlap: the datagram's last fragment is then denied too); ND passes; MLD between link-local addresses is
        # neither inside nor ND, so it is skipped.
        {'description': 'capture ipv6-malformed-fragments: repeated fragment dropped, pings pass',
         'pcap_file': v6frags, 'policy': _policy(['2001:db8:1::2/128'], ALLOW_ICMP),
         'records': [_rec('2001:db8:1::2', '2001:db8:1::1', 0xface, 0, 'IPv6-ICMP', 'allow',
                          'ping', (3, 2))],
         'drops': {'frag_overlap': 1, 'frag_denied': 1},
         'summary': {'packets': 13, 'not_inside': 2, 'passed': 9}},
        # 200 SYNs 192.0.2.10:40000-40199 -> 198.51.100.5:443, 1 ms apart.
        {'description': 'capture syn-flood: allowed SYNs beyond --flows evict the oldest embryonic',
         'pcap_file': synflood, 'flows': 64,
         'policy': _policy(['192.0.2.10/32'], [{'id': 'https', 'from': ['host'], 'proto': 'tcp',
                                                'ports': [443], 'action': 'allow'}]),
         'drops': {}, 'summary': {'packets': 200, 'passed': 200, 'flows_created': 200},
         'record_counts': {'reason': {'evicted': 136, 'shutdown': 64},
                           'verdict': {'allow': 200}}},
        {'description': 'capture syn-flood: denied SYNs all dropped, one record each',
         'pcap_file': synflood, 'flows': 64, 'policy': _policy(['192.0.2.10/32'], []),
         'drops': {'policy_deny': 200}, 'summary': {'passed': 0, 'flows_created': 200},
         'record_counts': {'verdict': {'deny': 200}, 'reason': {'evicted': 136, 'shutdown': 64}}},
    ]
