// Test-only frame builder: real, checksummed Ethernet frames (VLAN/QinQ, IPv4/IPv6,
// TCP/UDP/ICMP/ICMPv6, ICMP errors, fragments, ARP, NDP) as byte vectors.
// Header-only; used by unit tests on the test thread (allocates freely).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace egw::test {

using Mac = std::array<uint8_t, 6>;
inline constexpr Mac kInsideMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kOutsideMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherArp = 0x0806,
                          kEtherVlan = 0x8100, kEtherQinq = 0x88a8;

// One IPv6 extension header: type (0 hop-by-hop, 43 routing, 44 fragment, 60 dest opts,
// 51 AH) and body after the next-header/length bytes; padded to the unit by the builder.
struct Ipv6Ext {
  uint8_t type = 60;
  std::vector<uint8_t> body;
};

struct FrameSpec {
  uint8_t family = 4;
  std::string src, dst;  // textual IPs
  uint8_t proto = 6;     // 1 with family 6 means ICMPv6 (58)
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0x02;
  uint32_t seq = 1000, ack = 0;
  uint16_t window = 65535;
  std::vector<uint8_t> payload;
  std::vector<uint16_t> vlans;           // 0, 1 or 2 tags, outer first
  uint8_t icmp_type = 8, icmp_code = 0;  // for ICMPv6 set the v6 type (echo request 128)
  uint16_t icmp_id = 0;
  uint8_t ttl = 64;
  // Extras beyond the basic API.
  uint16_t icmp_seq = 1;
  uint16_t ip_id = 1;
  bool dont_fragment = false;
  std::vector<uint8_t> ip_options;   // IPv4 options, padded with EOL to 4 bytes
  std::vector<uint8_t> tcp_options;  // TCP options, padded with EOL to 4 bytes
  std::vector<Ipv6Ext> v6_ext;       // IPv6 extension headers, in order
  Mac src_mac = kInsideMac, dst_mac = kOutsideMac;
};

namespace detail {

inline void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
inline void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}
inline void set16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v[off] = static_cast<uint8_t>(x >> 8);
  v[off + 1] = static_cast<uint8_t>(x);
}
inline uint16_t get16(const std::vector<uint8_t>& v, size_t off) {
  return static_cast<uint16_t>(v[off] << 8 | v[off + 1]);
}

// One's-complement sum folded, not inverted.
inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}
inline uint16_t checksum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  return static_cast<uint16_t>(~sum16(p, n, acc) & 0xffff);
}

// Textual address to 4 or 16 bytes; aborts on a typo (test bug).
inline std::vector<uint8_t> addr_bytes(uint8_t family, const std::string& s) {
  std::vector<uint8_t> out(family == 6 ? 16 : 4);
  if (inet_pton(family == 6 ? AF_INET6 : AF_INET, s.c_str(), out.data()) != 1) {
    fprintf(stderr, "frames.h: bad IPv%u address '%s'\n", family, s.c_str());
    abort();
  }
  return out;
}

inline std::vector<uint8_t> l2_header(const Mac& dst, const Mac& src,
                                      const std::vector<uint16_t>& vlans, uint16_t ethertype) {
  std::vector<uint8_t> f(dst.begin(), dst.end());
  f.insert(f.end(), src.begin(), src.end());
  for (size_t i = 0; i < vlans.size(); ++i) {
    put16(f, vlans.size() >= 2 && i == 0 ? kEtherQinq : kEtherVlan);
    put16(f, vlans[i] & 0x0fff);
  }
  put16(f, ethertype);
  return f;
}

inline uint8_t wire_proto(const FrameSpec& s) {
  return s.family == 6 && s.proto == 1 ? 58 : s.proto;
}

// Pseudo-header sum for TCP/UDP/ICMPv6 checksums.
inline uint32_t pseudo_sum(uint8_t family, const std::vector<uint8_t>& src,
                           const std::vector<uint8_t>& dst, uint8_t proto, size_t l4_len) {
  uint32_t acc = sum16(src.data(), src.size());
  acc = sum16(dst.data(), dst.size(), acc);
  if (family == 6) acc += static_cast<uint32_t>(l4_len >> 16);
  acc += static_cast<uint32_t>(l4_len & 0xffff) + proto;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}

// Builds the L4 header + payload for the spec (checksum filled later).
inline std::vector<uint8_t> l4_bytes(const FrameSpec& s) {
  std::vector<uint8_t> l4;
  uint8_t proto = wire_proto(s);
  if (proto == 6) {
    std::vector<uint8_t> opts = s.tcp_options;
    while (opts.size() % 4) opts.push_back(0);
    put16(l4, s.sport);
    put16(l4, s.dport);
    put32(l4, s.seq);
    put32(l4, s.ack);
    l4.push_back(static_cast<uint8_t>(((20 + opts.size()) / 4) << 4));
    l4.push_back(s.tcp_flags);
    put16(l4, s.window);
    put16(l4, 0);  // checksum
    put16(l4, 0);  // urgent pointer
    l4.insert(l4.end(), opts.begin(), opts.end());
  } else if (proto == 17) {
    put16(l4, s.sport);
    put16(l4, s.dport);
    put16(l4, static_cast<uint16_t>(8 + s.payload.size()));
    put16(l4, 0);
  } else if (proto == 1 || proto == 58) {
    l4.push_back(s.icmp_type);
    l4.push_back(s.icmp_code);
    put16(l4, 0);
    put16(l4, s.icmp_id);
    put16(l4, s.icmp_seq);
  }
  l4.insert(l4.end(), s.payload.begin(), s.payload.end());
  return l4;
}

inline void fill_l4_checksum(uint8_t family, uint8_t proto, const std::vector<uint8_t>& src,
                             const std::vector<uint8_t>& dst, std::vector<uint8_t>& l4) {
  size_t off;
  bool pseudo = true;
  if (proto == 6 && l4.size() >= 20)
    off = 16;
  else if (proto == 17 && l4.size() >= 8)
    off = 6;
  else if (proto == 58 && l4.size() >= 4)
    off = 2;
  else if (proto == 1 && l4.size() >= 4)
    off = 2, pseudo = false;
  else
    return;
  set16(l4, off, 0);
  uint32_t acc = pseudo ? pseudo_sum(family, src, dst, proto, l4.size()) : 0;
  uint16_t c = checksum(l4.data(), l4.size(), acc);
  if (proto == 17 && c == 0) c = 0xffff;
  set16(l4, off, c);
}

// Wraps L4 bytes (checksum already set) into IP + Ethernet for the spec.
inline std::vector<uint8_t> ip_frame(const FrameSpec& s, uint8_t proto,
                                     const std::vector<uint8_t>& l4) {
  auto src = addr_bytes(s.family, s.src), dst = addr_bytes(s.family, s.dst);
  std::vector<uint8_t> f =
      l2_header(s.dst_mac, s.src_mac, s.vlans, s.family == 6 ? kEtherIpv6 : kEtherIpv4);
  size_t l3 = f.size();
  if (s.family == 6) {
    std::vector<uint8_t> ext;
    for (size_t i = 0; i < s.v6_ext.size(); ++i) {
      uint8_t next = i + 1 < s.v6_ext.size() ? s.v6_ext[i + 1].type : proto;
      const Ipv6Ext& e = s.v6_ext[i];
      size_t start = ext.size();
      ext.push_back(next);
      ext.push_back(0);
      ext.insert(ext.end(), e.body.begin(), e.body.end());
      size_t unit = e.type == 51 ? 4 : 8;
      while ((ext.size() - start) % unit || ext.size() - start < 8) ext.push_back(0);
      size_t len = ext.size() - start;
      if (e.type == 51)
        ext[start + 1] = static_cast<uint8_t>(len / 4 - 2);
      else if (e.type != 44)
        ext[start + 1] = static_cast<uint8_t>(len / 8 - 1);
    }
    put32(f, 0x60000000);
    put16(f, static_cast<uint16_t>(ext.size() + l4.size()));
    f.push_back(s.v6_ext.empty() ? proto : s.v6_ext[0].type);
    f.push_back(s.ttl);
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    f.insert(f.end(), ext.begin(), ext.end());
  } else {
    std::vector<uint8_t> opts = s.ip_options;
    while (opts.size() % 4) opts.push_back(0);
    size_t hl = 20 + opts.size();
    f.push_back(static_cast<uint8_t>(0x40 | (hl / 4)));
    f.push_back(0);
    put16(f, static_cast<uint16_t>(hl + l4.size()));
    put16(f, s.ip_id);
    put16(f, s.dont_fragment ? 0x4000 : 0);
    f.push_back(s.ttl);
    f.push_back(proto);
    put16(f, 0);
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    f.insert(f.end(), opts.begin(), opts.end());
    set16(f, l3 + 10, checksum(&f[l3], hl));
  }
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

}  // namespace detail

// Offset of the IP header: after the Ethernet header and any 0x8100/0x88a8 tags.
inline size_t l3_offset_of(const std::vector<uint8_t>& frame) {
  size_t off = 12;
  while (off + 2 <= frame.size()) {
    uint16_t et = detail::get16(frame, off);
    if (et != kEtherVlan && et != kEtherQinq) break;
    off += 4;
  }
  return off + 2;
}

// Recomputes the IPv4 header checksum (after a test mutated the header).
inline void fix_ipv4_checksum(std::vector<uint8_t>& frame) {
  size_t l3 = l3_offset_of(frame);
  if (l3 + 20 > frame.size()) return;
  size_t hl = static_cast<size_t>(frame[l3] & 0x0f) * 4;
  if (hl < 20 || l3 + hl > frame.size()) hl = 20;
  detail::set16(frame, l3 + 10, 0);
  detail::set16(frame, l3 + 10, detail::checksum(&frame[l3], hl));
}

// Appends zero padding up to min_len bytes (Ethernet minimum 60 without FCS).
inline std::vector<uint8_t> pad_ethernet(std::vector<uint8_t> frame, size_t min_len = 60) {
  if (frame.size() < min_len) frame.resize(min_len, 0);
  return frame;
}

// Ethernet + optional VLAN/QinQ + IPv4/IPv6 (+ ext headers) + TCP/UDP/ICMP/ICMPv6 or
// raw payload for other protocols; all checksums right.
inline std::vector<uint8_t> build_frame(const FrameSpec& s) {
  auto src = detail::addr_bytes(s.family, s.src), dst = detail::addr_bytes(s.family, s.dst);
  uint8_t proto = detail::wire_proto(s);
  std::vector<uint8_t> l4 = detail::l4_bytes(s);
  detail::fill_l4_checksum(s.family, proto, src, dst, l4);
  return detail::ip_frame(s, proto, l4);
}

// ICMP/ICMPv6 error (outer.icmp_type/code) from outer.src to outer.dst quoting the IP
// packet of quoted_frame (its Ethernet/VLAN header stripped), at most max_quote bytes
// of it (default: whole packet, capped at 548 bytes for v4 and 1184 for v6).
inline std::vector<uint8_t> build_icmp_error(const FrameSpec& outer,
                                             const std::vector<uint8_t>& quoted_frame,
                                             size_t max_quote = SIZE_MAX) {
  size_t l3 = std::min(l3_offset_of(quoted_frame), quoted_frame.size());
  size_t cap = std::min(max_quote, outer.family == 6 ? size_t{1184} : size_t{548});
  size_t n = std::min(quoted_frame.size() - l3, cap);
  FrameSpec s = outer;
  s.proto = outer.family == 6 ? 58 : 1;
  uint8_t proto = s.proto;
  std::vector<uint8_t> l4 = {outer.icmp_type, outer.icmp_code, 0, 0, 0, 0, 0, 0};
  if (outer.family == 6 && outer.icmp_type == 2) detail::set16(l4, 6, 1280);  // MTU
  if (outer.family == 4 && outer.icmp_type == 3 && outer.icmp_code == 4)
    detail::set16(l4, 6, 576);  // next-hop MTU
  l4.insert(l4.end(), quoted_frame.begin() + static_cast<std::ptrdiff_t>(l3),
            quoted_frame.begin() + static_cast<std::ptrdiff_t>(l3 + n));
  auto src = detail::addr_bytes(s.family, s.src), dst = detail::addr_bytes(s.family, s.dst);
  detail::fill_l4_checksum(s.family, proto, src, dst, l4);
  return detail::ip_frame(s, proto, l4);
}

// Splits an unfragmented IPv4 frame into fragments of frag_payload bytes of IP payload
// (rounded down to a multiple of 8, at least 8); IP checksums recomputed.
inline std::vector<std::vector<uint8_t>> fragment_ipv4(const std::vector<uint8_t>& frame,
                                                       size_t frag_payload) {
  size_t l3 = l3_offset_of(frame);
  size_t hl = static_cast<size_t>(frame.at(l3) & 0x0f) * 4;
  size_t total = detail::get16(frame, l3 + 2);
  size_t step = std::max<size_t>(8, frag_payload / 8 * 8);
  std::vector<std::vector<uint8_t>> out;
  for (size_t off = 0; off < total - hl; off += step) {
    size_t n = std::min(step, total - hl - off);
    bool more = off + n < total - hl;
    std::vector<uint8_t> f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + hl));
    f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + hl + off),
             frame.begin() + static_cast<std::ptrdiff_t>(l3 + hl + off + n));
    detail::set16(f, l3 + 2, static_cast<uint16_t>(hl + n));
    detail::set16(f, l3 + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off / 8)));
    fix_ipv4_checksum(f);
    out.push_back(std::move(f));
  }
  return out;
}

// Splits an IPv6 frame (no extension headers) into fragments carrying a fragment header
// right after the fixed header; frag_payload rounded down to a multiple of 8.
inline std::vector<std::vector<uint8_t>> fragment_ipv6(const std::vector<uint8_t>& frame,
                                                       size_t frag_payload, uint32_t id = 0x1234) {
  size_t l3 = l3_offset_of(frame);
  uint8_t next = frame.at(l3 + 6);
  size_t plen = detail::get16(frame, l3 + 4);
  size_t step = std::max<size_t>(8, frag_payload / 8 * 8);
  std::vector<std::vector<uint8_t>> out;
  for (size_t off = 0; off < plen; off += step) {
    size_t n = std::min(step, plen - off);
    bool more = off + n < plen;
    std::vector<uint8_t> f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + 40));
    f[l3 + 6] = 44;
    detail::set16(f, l3 + 4, static_cast<uint16_t>(8 + n));
    f.push_back(next);
    f.push_back(0);
    detail::put16(f, static_cast<uint16_t>(off | (more ? 1 : 0)));
    detail::put32(f, id);
    f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + 40 + off),
             frame.begin() + static_cast<std::ptrdiff_t>(l3 + 40 + off + n));
    out.push_back(std::move(f));
  }
  return out;
}

// Broadcast ARP who-has target_ip from sender_ip (inside MAC), unpadded (42 bytes).
inline std::vector<uint8_t> build_arp_request(const std::string& sender_ip,
                                              const std::string& target_ip) {
  std::vector<uint8_t> f = detail::l2_header(kBroadcastMac, kInsideMac, {}, kEtherArp);
  detail::put16(f, 1);       // Ethernet
  detail::put16(f, 0x0800);  // IPv4
  f.push_back(6);
  f.push_back(4);
  detail::put16(f, 1);  // request
  auto spa = detail::addr_bytes(4, sender_ip), tpa = detail::addr_bytes(4, target_ip);
  f.insert(f.end(), kInsideMac.begin(), kInsideMac.end());
  f.insert(f.end(), spa.begin(), spa.end());
  f.insert(f.end(), 6, 0);
  f.insert(f.end(), tpa.begin(), tpa.end());
  return f;
}

// ICMPv6 neighbour solicitation for target from src to the solicited-node multicast
// address, with a source link-layer address option.
inline std::vector<uint8_t> build_ndp_ns(const std::string& src, const std::string& target) {
  auto t = detail::addr_bytes(6, target);
  char dst[64];
  snprintf(dst, sizeof dst, "ff02::1:ff%02x:%02x%02x", t[13], t[14], t[15]);
  FrameSpec s;
  s.family = 6;
  s.src = src;
  s.dst = dst;
  s.ttl = 255;
  s.dst_mac = {0x33, 0x33, 0xff, t[13], t[14], t[15]};
  std::vector<uint8_t> l4 = {135, 0, 0, 0, 0, 0, 0, 0};
  l4.insert(l4.end(), t.begin(), t.end());
  l4.push_back(1);  // option: source link-layer address
  l4.push_back(1);
  l4.insert(l4.end(), kInsideMac.begin(), kInsideMac.end());
  detail::fill_l4_checksum(6, 58, detail::addr_bytes(6, src), detail::addr_bytes(6, s.dst), l4);
  return detail::ip_frame(s, 58, l4);
}

}  // namespace egw::test
