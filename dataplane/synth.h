// Packets egw synthesizes or rewrites: for `reject` (TCP RST, ICMP/ICMPv6 errors, DNS
// REFUSED) and for flows held while they wait for their name (data re-segmented, TFO data
// stripped). Worker lcores: mbufs come from the worker's mempool; no other allocation.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/parse.h"

namespace egw {

// A RST answering the segment in `orig` (frame bytes + its parse), sent back to its
// sender: addresses, ports and MACs swapped, VLAN tags kept. seq/ack follow RFC 9293
// (ACK of the offending segment). Returns nullptr when the pool is empty.
rte_mbuf* synth_rst_reply(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig);

// A RST sent onward to the segment's receiver (the other end of the flow), from the
// segment's sender, with sequence number `seq` (the sender's next sequence number).
rte_mbuf* synth_rst_forward(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig,
                            uint32_t seq);

// An ICMP (IPv4: type 3) or ICMPv6 (type 1) destination-unreachable error back to
// the sender of `orig`, from its destination, quoting as much of the original
// packet as RFC 792 / RFC 4443 allow. code: port unreachable for UDP, administratively
// prohibited otherwise.
rte_mbuf* synth_icmp_unreachable(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig);

// A DNS answer to the UDP query `p` (frame bytes + its parse), back to the client:
// MACs, addresses and ports swapped, VLAN tags kept; the query's id, opcode and RD,
// RCODE REFUSED, its first question copied byte for byte, no other record (no EDNS OPT).
// Returns nullptr when the message is not a query, its question is truncated, compressed
// or malformed, or the pool is empty.
rte_mbuf* synth_dns_refused(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& p);

// A TCP segment carrying payload[0, len) at sequence number seq, built on the template
// segment `tmpl` (frame bytes + its parse; same direction, an ACK-bearing segment of the
// flow): its L2 header, its IP header (IPv4 options and IPv6 extension headers left out;
// IPv4 id, TTL/hop limit, DSCP/ECN kept), its TCP header with options, ack and window;
// flags ACK|PSH. Returns nullptr when tmpl is not an unfragmented TCP segment, the
// result does not fit one mbuf, or the pool is empty.
rte_mbuf* synth_tcp_data(rte_mempool* pool, const uint8_t* tmpl_frame, const ParsedPacket& tmpl,
                         uint32_t seq, const uint8_t* payload, uint16_t len);

// Removes in place the payload of the TCP segment in m (parsed as p), e.g. the data of a
// TCP Fast Open SYN: trims the mbuf (Ethernet padding too), fixes the IP length, the IPv4
// header checksum and, incrementally, the TCP checksum (a wrong one stays wrong).
// Returns false, m untouched, when p is not an unfragmented TCP segment or m is not one
// contiguous segment holding it.
bool strip_tcp_payload(rte_mbuf* m, const ParsedPacket& p);

}  // namespace egw
