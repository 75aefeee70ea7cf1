// Packets egw synthesizes for `reject`: TCP RST and ICMP/ICMPv6 errors.
// Worker lcores: mbufs come from the worker's mempool; no other allocation.
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
rte_mbuf* synth_icmp_unreachable(rte_mempool* pool, const uint8_t* frame,
                                 const ParsedPacket& orig);

}  // namespace egw
