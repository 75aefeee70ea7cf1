// Packets egw synthesizes for `reject`: TCP RST and ICMP/ICMPv6 errors.
// Worker lcores: mbufs come from the worker's mempool; no other allocation.
#include "dataplane/synth.h"

#include <algorithm>
#include <cstring>

namespace egw {
namespace {

constexpr uint16_t kIpv4HeaderLen = 20;
constexpr uint16_t kIpv6HeaderLen = 40;
constexpr uint16_t kTcpHeaderLen = 20;
constexpr uint16_t kIcmpHeaderLen = 8;
constexpr size_t kIcmp4MaxPacket = 576;   // RFC 1812 4.3.2.3
constexpr size_t kIcmp6MaxPacket = 1280;  // RFC 4443 2.4 (c)

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// Partial (unfolded) sum of the pseudo-header for an upper-layer checksum.
uint32_t pseudo_sum(uint8_t family, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                    uint32_t l4_len) {
  const size_t alen = family == 4 ? 4 : 16;
  uint32_t sum = 0;
  for (size_t i = 0; i < alen; i += 2) {
    sum += static_cast<uint32_t>(src[i] << 8 | src[i + 1]);
    sum += static_cast<uint32_t>(dst[i] << 8 | dst[i + 1]);
  }
  sum += proto;
  sum += l4_len >> 16;
  sum += l4_len & 0xffff;
  return sum;
}

// Starts a frame in m: the L2 header of `frame` (VLAN tags kept), MACs swapped when
// `swap_macs`, then an IP header from src to dst carrying l4_len bytes of proto.
// Returns the L4 start, or nullptr when the mbuf is too small.
uint8_t* start_frame(rte_mbuf* m, const uint8_t* frame, const ParsedPacket& orig, bool swap_macs,
                     const uint8_t* src, const uint8_t* dst, uint8_t proto, uint16_t l4_len) {
  const uint16_t l2 = orig.l3_offset;
  const uint16_t l3 = orig.l34.family == 4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, l2 + l3 + l4_len));
  if (p == nullptr) return nullptr;
  std::memcpy(p, frame, l2);
  if (swap_macs) {
    std::memcpy(p, frame + 6, 6);
    std::memcpy(p + 6, frame, 6);
  }
  uint8_t* ip = p + l2;
  if (orig.l34.family == 4) {
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, static_cast<uint16_t>(l3 + l4_len));
    put16(ip + 4, 0);       // id
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = proto;
    put16(ip + 10, 0);
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    put16(ip + 10, inet_checksum(ip, kIpv4HeaderLen));
  } else {
    put32(ip, 0x60000000u);
    put16(ip + 4, l4_len);
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, src, 16);
    std::memcpy(ip + 24, dst, 16);
  }
  return ip + l3;
}

rte_mbuf* build_rst(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig, bool reply,
                    uint32_t seq, uint32_t ack, uint8_t flags) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  const L34& o = orig.l34;
  const uint8_t* src = reply ? o.dst : o.src;
  const uint8_t* dst = reply ? o.src : o.dst;
  uint8_t* tcp = start_frame(m, frame, orig, reply, src, dst, kProtoTcp, kTcpHeaderLen);
  if (tcp == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  put16(tcp, reply ? o.dport : o.sport);
  put16(tcp + 2, reply ? o.sport : o.dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  tcp[12] = (kTcpHeaderLen / 4) << 4;
  tcp[13] = flags;
  put16(tcp + 14, 0);  // window
  put16(tcp + 16, 0);
  put16(tcp + 18, 0);
  put16(tcp + 16, inet_checksum(tcp, kTcpHeaderLen,
                                pseudo_sum(o.family, src, dst, kProtoTcp, kTcpHeaderLen)));
  return m;
}

}  // namespace

rte_mbuf* synth_rst_reply(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig) {
  if (orig.tcp_flags & kTcpAck) return build_rst(pool, frame, orig, true, orig.tcp_ack, 0, kTcpRst);
  uint32_t seg_len = orig.payload_len;
  if (orig.tcp_flags & kTcpSyn) ++seg_len;
  if (orig.tcp_flags & kTcpFin) ++seg_len;
  return build_rst(pool, frame, orig, true, 0, orig.tcp_seq + seg_len, kTcpRst | kTcpAck);
}

rte_mbuf* synth_rst_forward(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& orig,
                            uint32_t seq) {
  return build_rst(pool, frame, orig, false, seq, 0, kTcpRst);
}

rte_mbuf* synth_icmp_unreachable(rte_mempool* pool, const uint8_t* frame,
                                 const ParsedPacket& orig) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  const L34& o = orig.l34;
  const bool v4 = o.family == 4;
  const size_t max_quote =
      (v4 ? kIcmp4MaxPacket - kIpv4HeaderLen : kIcmp6MaxPacket - kIpv6HeaderLen) - kIcmpHeaderLen;
  const size_t quote = std::min<size_t>(orig.l3_len, max_quote);
  const uint8_t proto = v4 ? kProtoIcmp : kProtoIcmpv6;
  const uint16_t l4_len = static_cast<uint16_t>(kIcmpHeaderLen + quote);
  uint8_t* icmp = start_frame(m, frame, orig, true, o.dst, o.src, proto, l4_len);
  if (icmp == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  const bool udp = o.proto == kProtoUdp;
  icmp[0] = v4 ? 3 : 1;                                // destination unreachable
  icmp[1] = v4 ? (udp ? 3 : 13) : (udp ? 4 : 1);       // port unreachable / prohibited
  put16(icmp + 2, 0);
  put32(icmp + 4, 0);
  std::memcpy(icmp + kIcmpHeaderLen, frame + orig.l3_offset, quote);
  const uint32_t initial = v4 ? 0 : pseudo_sum(6, o.dst, o.src, kProtoIcmpv6, l4_len);
  put16(icmp + 2, inet_checksum(icmp, l4_len, initial));
  return m;
}

}  // namespace egw
