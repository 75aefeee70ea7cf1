// Frame parser: a pure function over a byte span, bounds checked, no allocation.
// Runs on worker lcores; also called directly by unit tests and the fuzzer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/counters.h"

namespace egw {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmpv6 = 58;

// TCP flag bits as on the wire.
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                  kTcpAck = 0x10, kTcpUrg = 0x20;

enum class FrameKind : uint8_t {
  ip,        // IPv4 or IPv6 packet: see the rest of ParsedPacket
  arp,       // ARP: bridged both ways
  ndp,       // link control bridged both ways: RFC 4861 ND (133..137, hop limit 255) and
             // MLD (130..132, 143: hop limit 1, link-local source, ff02::/16)
};

// L3/L4 header fields of one IP packet (the outer one, or the packet quoted inside
// an ICMP error). Addresses are 16 bytes; IPv4 uses the first 4 (rest zero).
struct L34 {
  uint8_t family = 0;  // 4 or 6
  uint8_t proto = 0;   // final upper-layer protocol (after IPv6 extension headers)
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
  uint16_t sport = 0;  // host order; ICMP echo: the identifier in sport, 0 in dport
  uint16_t dport = 0;
};

struct ParsedPacket {
  FrameKind kind = FrameKind::ip;
  uint32_t vlan = 0;       // (outer VID << 12) | inner VID; 0 when untagged
  uint16_t l3_offset = 0;  // from the frame start
  uint16_t l4_offset = 0;  // 0 when no L4 header is present (non-first fragment)
  uint16_t l3_len = 0;     // IP header + payload as declared by the IP header
  uint16_t payload_offset = 0;  // L4 payload start (TCP/UDP), from the frame start
  uint16_t payload_len = 0;     // L4 payload bytes, bounded by the IP length
  L34 l34;

  // Fragments (IPv4 flags/offset or IPv6 fragment header).
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t frag_offset = 0;  // in bytes
  uint32_t frag_id = 0;
  uint16_t frag_payload_len = 0;  // bytes of fragmentable payload in this fragment

  // TCP
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint16_t tcp_window = 0;
  uint8_t tcp_wscale = 0xff;  // window scale option on SYN, 0xff when absent

  // ICMP / ICMPv6
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  bool icmp_is_error = false;  // destination unreachable, time exceeded, ... (quotes a packet)
  L34 inner;                   // the quoted packet's header when icmp_is_error
};

enum class ParseStatus : uint8_t { ok, drop };

struct ParseResult {
  ParseStatus status;
  DropReason reason;  // meaningful when status == drop
};

// Parses one Ethernet frame. On ok, *out describes it; on drop, reason says why.
// Never reads outside [data, data + len). ipv4_csum_good: the NIC verified the outer
// IPv4 header checksum (RX offload), so it is not summed again.
ParseResult parse_frame(const uint8_t* data, size_t len, ParsedPacket* out,
                        bool ipv4_csum_good = false);

// parse_frame without its straight-line path for the common frame: the reference that
// path must agree with, field for field (the fuzzer and the parse tests check it).
ParseResult parse_frame_general(const uint8_t* data, size_t len, ParsedPacket* out,
                                bool ipv4_csum_good = false);

// The fields of two parses that parse_frame fills: all of them, `inner` only when it
// holds an ICMP error's quoted packet.
bool same_parse(const ParsedPacket& a, const ParsedPacket& b);

// One's-complement Internet checksum over a buffer (for tests and packet synthesis).
uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial = 0);

}  // namespace egw
