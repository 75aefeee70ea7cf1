// Packets egw synthesizes or rewrites: RST, ICMP errors, DNS REFUSED, held TCP data.
// Worker lcores: mbufs come from the worker's mempool; no other allocation.
#include "dataplane/synth.h"

#include <algorithm>
#include <cstring>

#include "dataplane/bytes.h"

namespace egw {
namespace {

constexpr uint16_t kIpv4HeaderLen = 20;
constexpr uint16_t kIpv6HeaderLen = 40;
constexpr uint16_t kTcpHeaderLen = 20;
constexpr uint16_t kIcmpHeaderLen = 8;
constexpr uint16_t kUdpHeaderLen = 8;
constexpr uint16_t kDnsHeaderLen = 12;
constexpr size_t kDnsMaxName = 255;  // RFC 1035 2.3.4: wire form, terminating zero included
constexpr uint8_t kDnsRcodeRefused = 5;
constexpr size_t kIcmp4MaxPacket = 576;   // RFC 1812 4.3.2.3
constexpr size_t kIcmp6MaxPacket = 1280;  // RFC 4443 2.4 (c)

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
    put_be16(ip + 2, static_cast<uint16_t>(l3 + l4_len));
    put_be16(ip + 4, 0);       // id
    put_be16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = proto;
    put_be16(ip + 10, 0);
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    put_be16(ip + 10, inet_checksum(ip, kIpv4HeaderLen));
  } else {
    put_be32(ip, 0x60000000u);
    put_be16(ip + 4, l4_len);
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
  put_be16(tcp, reply ? o.dport : o.sport);
  put_be16(tcp + 2, reply ? o.sport : o.dport);
  put_be32(tcp + 4, seq);
  put_be32(tcp + 8, ack);
  tcp[12] = (kTcpHeaderLen / 4) << 4;
  tcp[13] = flags;
  put_be16(tcp + 14, 0);  // window
  put_be16(tcp + 16, 0);
  put_be16(tcp + 18, 0);
  put_be16(tcp + 16, inet_checksum(tcp, kTcpHeaderLen,
                                pseudo_sum(o.family, src, dst, kProtoTcp, kTcpHeaderLen)));
  return m;
}

// Bytes of the first question (name, qtype, qclass) of the DNS message msg[0, len), or 0
// when it is cut short, too long, or its name holds a compression pointer or a label of
// a reserved type (a query's first name has nothing earlier to point to).
size_t dns_question_len(const uint8_t* msg, size_t len) {
  size_t i = kDnsHeaderLen;
  for (;;) {
    if (i >= len) return 0;
    const uint8_t label = msg[i];
    if (label == 0) break;
    if (label & 0xc0) return 0;
    i += 1 + static_cast<size_t>(label);
    if (i - kDnsHeaderLen >= kDnsMaxName) return 0;
  }
  ++i;  // the root label
  if (len - i < 4) return 0;
  return i + 4 - kDnsHeaderLen;
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
  icmp[0] = v4 ? 3 : 1;                           // destination unreachable
  icmp[1] = v4 ? (udp ? 3 : 13) : (udp ? 4 : 1);  // port unreachable / prohibited
  put_be16(icmp + 2, 0);
  put_be32(icmp + 4, 0);
  std::memcpy(icmp + kIcmpHeaderLen, frame + orig.l3_offset, quote);
  const uint32_t initial = v4 ? 0 : pseudo_sum(6, o.dst, o.src, kProtoIcmpv6, l4_len);
  put_be16(icmp + 2, inet_checksum(icmp, l4_len, initial));
  return m;
}

rte_mbuf* synth_dns_refused(rte_mempool* pool, const uint8_t* frame, const ParsedPacket& p) {
  const L34& o = p.l34;
  if (o.proto != kProtoUdp || p.l4_offset == 0 || p.payload_len < kDnsHeaderLen) return nullptr;
  const uint8_t* q = frame + p.payload_offset;
  if ((q[2] & 0x80) != 0 || be16(q + 4) == 0) return nullptr;  // a response, or no question
  const size_t qlen = dns_question_len(q, p.payload_len);
  if (qlen == 0) return nullptr;
  const uint16_t udp_len = static_cast<uint16_t>(kUdpHeaderLen + kDnsHeaderLen + qlen);
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  uint8_t* udp = start_frame(m, frame, p, true, o.dst, o.src, kProtoUdp, udp_len);
  if (udp == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  put_be16(udp, o.dport);
  put_be16(udp + 2, o.sport);
  put_be16(udp + 4, udp_len);
  put_be16(udp + 6, 0);
  uint8_t* d = udp + kUdpHeaderLen;
  d[0] = q[0];  // id
  d[1] = q[1];
  d[2] = static_cast<uint8_t>(0x80 | (q[2] & 0x79));  // QR; opcode and RD copied; AA, TC clear
  d[3] = kDnsRcodeRefused;                            // RA, Z, AD, CD clear
  put_be16(d + 4, 1);
  put_be16(d + 6, 0);
  put_be16(d + 8, 0);
  put_be16(d + 10, 0);
  std::memcpy(d + kDnsHeaderLen, q + kDnsHeaderLen, qlen);
  uint16_t sum =
      inet_checksum(udp, udp_len, pseudo_sum(o.family, o.dst, o.src, kProtoUdp, udp_len));
  put_be16(udp + 6, sum == 0 ? 0xffff : sum);  // RFC 768: 0 means no checksum
  return m;
}

rte_mbuf* synth_tcp_data(rte_mempool* pool, const uint8_t* tmpl_frame, const ParsedPacket& tmpl,
                         uint32_t seq, const uint8_t* payload, uint16_t len) {
  const L34& o = tmpl.l34;
  if (o.proto != kProtoTcp || tmpl.l4_offset == 0 || tmpl.is_fragment) return nullptr;
  const bool v4 = o.family == 4;
  const uint32_t l2 = tmpl.l3_offset;
  const uint32_t l3 = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const uint32_t tcp_hl = tmpl.payload_offset - tmpl.l4_offset;
  const uint32_t l4_len = tcp_hl + len;
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  // The room of one mbuf (under 64 KiB) bounds the IP length too.
  if (l2 + l3 + l4_len > rte_pktmbuf_tailroom(m)) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  uint8_t* f =
      reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(l2 + l3 + l4_len)));
  std::memcpy(f, tmpl_frame, l2);
  const uint8_t* tip = tmpl_frame + l2;
  uint8_t* ip = f + l2;
  if (v4) {
    std::memcpy(ip, tip, kIpv4HeaderLen);
    ip[0] = 0x45;
    put_be16(ip + 2, static_cast<uint16_t>(l3 + l4_len));
    put_be16(ip + 6, be16(tip + 6) & 0x4000);  // DF kept; the template is no fragment
    put_be16(ip + 10, 0);
    put_be16(ip + 10, inet_checksum(ip, kIpv4HeaderLen));
  } else {
    std::memcpy(ip, tip, kIpv6HeaderLen);  // traffic class and flow label kept
    put_be16(ip + 4, static_cast<uint16_t>(l4_len));
    ip[6] = kProtoTcp;
  }
  uint8_t* tcp = ip + l3;
  std::memcpy(tcp, tmpl_frame + tmpl.l4_offset, tcp_hl);
  put_be32(tcp + 4, seq);
  tcp[12] &= 0xf0;  // data offset kept; reserved bits and AE clear
  tcp[13] = kTcpAck | kTcpPsh;
  put_be16(tcp + 16, 0);
  put_be16(tcp + 18, 0);  // no urgent data
  if (len != 0) std::memcpy(tcp + tcp_hl, payload, len);
  put_be16(tcp + 16,
        inet_checksum(tcp, l4_len, pseudo_sum(o.family, o.src, o.dst, kProtoTcp, l4_len)));
  return m;
}

bool strip_tcp_payload(rte_mbuf* m, const ParsedPacket& p) {
  if (p.kind != FrameKind::ip || p.l34.proto != kProtoTcp || p.l4_offset == 0 || p.is_fragment) {
    return false;
  }
  const uint32_t end = static_cast<uint32_t>(p.payload_offset) + p.payload_len;
  if (!rte_pktmbuf_is_contiguous(m) || rte_pktmbuf_data_len(m) < end) return false;
  if (p.payload_len == 0) return true;
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* ip = f + p.l3_offset;
  uint8_t* tcp = f + p.l4_offset;
  const uint16_t old_l4 = static_cast<uint16_t>(end - p.l4_offset);
  const uint16_t new_l4 = static_cast<uint16_t>(p.payload_offset - p.l4_offset);
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the payload's sum and the old length in
  // the pseudo-header, m' the new length. The payload starts at an even TCP offset.
  const uint16_t payload_sum =
      static_cast<uint16_t>(~inet_checksum(f + p.payload_offset, p.payload_len));
  uint32_t sum = static_cast<uint16_t>(~be16(tcp + 16));
  sum += static_cast<uint16_t>(~payload_sum);
  sum += static_cast<uint16_t>(~old_l4);
  sum += new_l4;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put_be16(tcp + 16, static_cast<uint16_t>(~sum));
  if (p.l34.family == 4) {
    const uint16_t hl = static_cast<uint16_t>((ip[0] & 0x0f) * 4);
    put_be16(ip + 2, static_cast<uint16_t>(p.payload_offset - p.l3_offset));
    put_be16(ip + 10, 0);
    put_be16(ip + 10, inet_checksum(ip, hl));
  } else {
    put_be16(ip + 4, static_cast<uint16_t>(p.payload_offset - p.l3_offset - kIpv6HeaderLen));
  }
  rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - p.payload_offset));
  return true;
}

}  // namespace egw
