// Frame parser: Ethernet/VLAN, ARP, IPv4/IPv6 (+ extension headers, fragments), TCP,
// UDP, ICMP/ICMPv6 (+ the packet quoted by an error). Pure, bounds checked, no allocation;
// runs on worker lcores, in unit tests and in the fuzzer.
#include "dataplane/parse.h"
#include "dataplane/bytes.h"

#include <cstddef>
#include <cstring>

namespace egw {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherArp = 0x0806,
                   kEtherVlan = 0x8100, kEtherQinq = 0x88a8;
constexpr size_t kEthHeaderLen = 14, kVlanTagLen = 4, kMaxVlanTags = 2;
constexpr size_t kIpv4MinHeader = 20, kIpv6HeaderLen = 40;
constexpr size_t kTcpMinHeader = 20, kUdpHeaderLen = 8, kIcmpHeaderLen = 8;
constexpr size_t kQuotedL4Min = 8;  // an ICMP error quotes at least 8 bytes of L4
constexpr unsigned kMaxIpv6ExtHeaders = 8;
constexpr size_t kMaxIpLen = 65535;

// IPv6 next-header values.
constexpr uint8_t kNhHopByHop = 0, kNhRouting = 43, kNhFragment = 44, kNhAh = 51, kNhDestOpts = 60;

constexpr ParseResult kOk{ParseStatus::ok, DropReason::truncated};
ParseResult drop(DropReason r) {
  return {ParseStatus::drop, r};
}

// Every field but `inner` back to its default, copied from a default-constructed packet
// so that new fields keep their initialisers. `inner` (38 bytes) is reset only where an
// ICMP error fills it: the rest of the time nobody reads it.
constexpr ParsedPacket kBlank{};
static_assert(offsetof(ParsedPacket, inner) + sizeof(L34) == sizeof(ParsedPacket),
              "inner must be the last field: reset() copies everything before it");
inline void reset(ParsedPacket* out) {
  std::memcpy(static_cast<void*>(out), &kBlank, offsetof(ParsedPacket, inner));
}

// Extension headers that exist but that we do not walk: fail closed on them.
bool is_unwalked_ext_header(uint8_t nh) {
  return nh == 135 || nh == 139 || nh == 140 || nh == 253 || nh == 254;
}

bool is_icmp_error(uint8_t family, uint8_t type) {
  if (family == 4) return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  return type >= 1 && type <= 4;
}

bool is_icmp_echo(uint8_t family, uint8_t type) {
  return family == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

enum class Ipv4Options : uint8_t { ok, malformed, source_route };

// IPv4 options: EOL ends the list, NOP is one byte, others carry a length >= 2 that
// stays inside the header. A loose or strict source route (LSRR 131, SSRR 137) makes
// the destination field a waypoint, not the address the policy must judge.
Ipv4Options check_ipv4_options(const uint8_t* opt, size_t n) {
  constexpr uint8_t kOptLsrr = 131, kOptSsrr = 137;
  bool source_route = false;
  size_t i = 0;
  while (i < n && opt[i] != 0) {
    if (opt[i] == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return Ipv4Options::malformed;
    const size_t olen = opt[i + 1];
    if (olen < 2 || olen > n - i) return Ipv4Options::malformed;
    if (opt[i] == kOptLsrr || opt[i] == kOptSsrr) source_route = true;
    i += olen;
  }
  return source_route ? Ipv4Options::source_route : Ipv4Options::ok;
}

// TLV options of a hop-by-hop or destination options header: Pad1 is one byte, all
// others carry a length that stays inside the header.
bool ipv6_tlv_options_valid(const uint8_t* opt, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (opt[i] == 0) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return false;
    const size_t olen = 2 + static_cast<size_t>(opt[i + 1]);
    if (olen > n - i) return false;
    i += olen;
  }
  return true;
}

// True when a (valid) hop-by-hop option area holds a Router Alert for MLD (RFC 2711
// value 0) and nothing else but padding, as MLD senders emit it (RFC 2710 3, RFC 3810 5).
bool hbh_is_mld_router_alert(const uint8_t* opt, size_t n) {
  constexpr uint8_t kOptPad1 = 0, kOptPadN = 1, kOptRouterAlert = 5;
  bool alert = false;
  size_t i = 0;
  while (i < n) {
    if (opt[i] == kOptPad1) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return false;
    const size_t olen = 2 + static_cast<size_t>(opt[i + 1]);
    if (olen > n - i) return false;
    if (opt[i] == kOptRouterAlert) {
      if (alert || olen != 4 || be16(opt + i + 2) != 0) return false;
      alert = true;
    } else if (opt[i] != kOptPadN) {
      return false;
    }
    i += olen;
  }
  return alert;
}

// Result of walking an IPv6 extension-header chain.
struct Ipv6Chain {
  uint8_t proto = 0;        // final next-header value
  unsigned ext_count = 0;   // extension headers walked
  bool mld_alert = false;   // the first header is hop-by-hop with only an MLD Router Alert
  size_t l4_off = 0;        // where the upper-layer header starts; 0 for a non-first fragment
  bool has_frag = false;    // a fragment header was seen
  bool first_frag = false;  // ... and it is the first fragment of a fragmented datagram
  uint16_t frag_offset = 0;
  bool more_fragments = false;
  uint32_t frag_id = 0;
  size_t frag_payload = 0;
};

// Walks the chain starting with next-header nh at off, within [off, end). On failure,
// *reason is set; a chain cut short inside a first fragment is frag_no_l4.
bool walk_ipv6_chain(const uint8_t* d, size_t off, size_t end, uint8_t nh, Ipv6Chain* c,
                     DropReason* reason) {
  for (unsigned count = 0;; ++count) {
    const bool ext = nh == kNhHopByHop || nh == kNhRouting || nh == kNhFragment || nh == kNhAh ||
                     nh == kNhDestOpts;
    if (!ext) {
      if (is_unwalked_ext_header(nh)) {
        *reason = DropReason::ipv6_ext_headers;
        return false;
      }
      c->proto = nh;
      c->l4_off = off;
      return true;
    }
    if (count >= kMaxIpv6ExtHeaders || (nh == kNhHopByHop && count != 0)) {
      *reason = DropReason::ipv6_ext_headers;
      return false;
    }
    if (end - off < 8) {
      *reason = c->first_frag ? DropReason::frag_no_l4 : DropReason::ipv6_ext_headers;
      return false;
    }
    const uint8_t* h = d + off;
    size_t hlen;
    if (nh == kNhFragment) {
      hlen = 8;
    } else if (nh == kNhAh) {
      hlen = (static_cast<size_t>(h[1]) + 2) * 4;
    } else {
      hlen = (static_cast<size_t>(h[1]) + 1) * 8;
    }
    if (hlen > end - off) {
      *reason = c->first_frag ? DropReason::frag_no_l4 : DropReason::ipv6_ext_headers;
      return false;
    }
    if (nh == kNhRouting) {
      // A routing header with segments left != 0 sends the packet on to an address that
      // is not its destination field; only Mobile IPv6 type 2 (one segment: the home
      // address, RFC 6275 6.4) is delivered locally. Segments left 0: already final.
      const uint8_t type = h[2], segments_left = h[3];
      if (type == 0) {
        *reason = DropReason::ipv6_routing_type0;
        return false;
      }
      if (segments_left != 0 && !(type == 2 && segments_left == 1)) {
        *reason = DropReason::source_route;
        return false;
      }
    }
    if ((nh == kNhHopByHop || nh == kNhDestOpts) && !ipv6_tlv_options_valid(h + 2, hlen - 2)) {
      *reason = DropReason::ipv6_ext_headers;
      return false;
    }
    if (nh == kNhHopByHop) c->mld_alert = hbh_is_mld_router_alert(h + 2, hlen - 2);
    c->ext_count = count + 1;
    if (nh == kNhFragment) {
      if (c->has_frag) {  // two fragment headers in one chain
        *reason = DropReason::ipv6_ext_headers;
        return false;
      }
      c->has_frag = true;
      c->frag_offset = static_cast<uint16_t>(be16(h + 2) & 0xfff8);
      c->more_fragments = (h[3] & 1) != 0;
      c->frag_id = be32(h + 4);
      c->frag_payload = end - off - 8;
      // RFC 8200 4.5: non-last fragments are multiples of 8; no datagram beyond 65535.
      if ((c->more_fragments && c->frag_payload % 8 != 0) ||
          c->frag_offset + c->frag_payload > kMaxIpLen) {
        *reason = DropReason::ipv6_ext_headers;
        return false;
      }
      if (c->frag_offset != 0) {  // the rest is fragment data, not headers
        c->proto = h[0];
        c->l4_off = 0;
        return true;
      }
      c->first_frag = c->more_fragments;
    }
    nh = h[0];
    off += hlen;
  }
}

enum class Quote : uint8_t { ok, too_short, malformed };

// Parses the IP packet quoted by an ICMP error: IP header (+ IPv6 extension headers)
// and the first 8 bytes of L4. The quote may be truncated; its checksums are not checked.
Quote parse_quote(const uint8_t* d, size_t off, size_t end, uint8_t family, L34* in) {
  if (end - off < kIpv4MinHeader) return Quote::too_short;
  const uint8_t* ip = d + off;
  if ((ip[0] >> 4) != family) return Quote::malformed;
  size_t l4;
  uint8_t proto;
  bool ports = true;
  if (family == 4) {
    const size_t hl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (hl < kIpv4MinHeader) return Quote::malformed;
    if (hl > end - off) return Quote::too_short;
    proto = ip[9];
    std::memcpy(in->src, ip + 12, 4);
    std::memcpy(in->dst, ip + 16, 4);
    ports = (be16(ip + 6) & 0x1fff) == 0;  // a quoted non-first fragment has no ports
    l4 = off + hl;
  } else {
    if (end - off < kIpv6HeaderLen) return Quote::too_short;
    std::memcpy(in->src, ip + 8, 16);
    std::memcpy(in->dst, ip + 24, 16);
    Ipv6Chain c;
    DropReason r;
    if (!walk_ipv6_chain(d, off + kIpv6HeaderLen, end, ip[6], &c, &r)) return Quote::malformed;
    proto = c.proto;
    ports = c.l4_off != 0;
    l4 = c.l4_off;
  }
  in->family = family;
  in->proto = proto;
  if (!ports) return Quote::ok;
  if (end - l4 < kQuotedL4Min) return Quote::too_short;
  const uint8_t* q = d + l4;
  if (proto == kProtoTcp || proto == kProtoUdp) {
    in->sport = be16(q);
    in->dport = be16(q + 2);
  } else if ((family == 4 && proto == kProtoIcmp) || (family == 6 && proto == kProtoIcmpv6)) {
    if (is_icmp_echo(family, q[0])) in->sport = be16(q + 4);
  }
  return Quote::ok;
}

// Parses the L4 header at [off, end) (end = IP payload end). first_frag: the packet is
// the first fragment of a larger datagram (missing header -> frag_no_l4, UDP length
// refers to the whole datagram).
ParseResult parse_l4(const uint8_t* d, size_t off, size_t end, bool first_frag, ParsedPacket* out) {
  const DropReason short_reason = first_frag ? DropReason::frag_no_l4 : DropReason::bad_l4_header;
  const size_t avail = end - off;
  const uint8_t* p = d + off;
  const uint8_t family = out->l34.family;
  const uint8_t proto = out->l34.proto;
  out->l4_offset = static_cast<uint16_t>(off);

  if (proto == kProtoTcp) {
    if (avail < kTcpMinHeader) return drop(short_reason);
    const size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
    if (doff < kTcpMinHeader) return drop(DropReason::bad_l4_header);
    if (doff > avail) return drop(short_reason);
    out->l34.sport = be16(p);
    out->l34.dport = be16(p + 2);
    out->tcp_seq = be32(p + 4);
    out->tcp_ack = be32(p + 8);
    out->tcp_flags = p[13];
    out->tcp_window = be16(p + 14);
    if (p[13] & kTcpSyn) {
      // Options: stop at EOL or at the first malformed option (stacks ignore the rest).
      size_t i = kTcpMinHeader;
      while (i < doff && p[i] != 0) {
        if (p[i] == 1) {
          ++i;
          continue;
        }
        if (i + 1 >= doff) break;
        const size_t olen = p[i + 1];
        if (olen < 2 || olen > doff - i) break;
        if (p[i] == 3 && olen == 3) out->tcp_wscale = p[i + 2] > 14 ? 14 : p[i + 2];
        i += olen;
      }
    }
    out->payload_offset = static_cast<uint16_t>(off + doff);
    out->payload_len = static_cast<uint16_t>(avail - doff);
    return kOk;
  }

  if (proto == kProtoUdp) {
    if (avail < kUdpHeaderLen) return drop(short_reason);
    const size_t ulen = be16(p + 4);
    if (ulen < kUdpHeaderLen) return drop(DropReason::bad_l4_header);
    out->l34.sport = be16(p);
    out->l34.dport = be16(p + 2);
    out->payload_offset = static_cast<uint16_t>(off + kUdpHeaderLen);
    if (first_frag) {
      if (ulen < avail) return drop(DropReason::bad_l4_header);  // datagram shorter than this part
      out->payload_len = static_cast<uint16_t>(avail - kUdpHeaderLen);
    } else {
      if (ulen > avail) return drop(DropReason::bad_l4_header);
      out->payload_len = static_cast<uint16_t>(ulen - kUdpHeaderLen);
    }
    return kOk;
  }

  const bool icmp = (family == 4 && proto == kProtoIcmp) || (family == 6 && proto == kProtoIcmpv6);
  if (!icmp) return kOk;  // other protocols (GRE, ESP, IPIP, 6in4, ...): no ports

  if (avail < kIcmpHeaderLen) return drop(short_reason);
  out->icmp_type = p[0];
  out->icmp_code = p[1];
  if (is_icmp_echo(family, p[0])) {
    out->l34.sport = be16(p + 4);
  } else if (is_icmp_error(family, p[0])) {
    out->icmp_is_error = true;
    out->inner = L34{};
    const Quote q = parse_quote(d, off + kIcmpHeaderLen, end, family, &out->inner);
    if (q == Quote::too_short) return drop(short_reason);
    if (q == Quote::malformed) return drop(DropReason::bad_l4_header);
  }
  return kOk;
}

// ICMPv6 link-scope control messages that a transparent bridge passes without policy
// (FrameKind::ndp). Only messages that cannot have crossed a router qualify; anything
// else with these types stays an ordinary ICMPv6 packet (kind ip) for the policy.
//  - Neighbour discovery (RS 133, RA 134, NS 135, NA 136, Redirect 137; RFC 4861 6.1,
//    7.1, 8.1): hop limit 255, code 0, no extension header at all, the message at least
//    its fixed size, every option with a non-zero length inside the message.
//  - MLD (query 130, v1 report 131, done 132, v2 report 143; RFC 2710 3, RFC 3810 5):
//    hop limit 1, code 0, exactly one extension header, hop-by-hop, holding a Router
//    Alert for MLD and only padding besides; link-local source (fe80::/10), or the
//    unspecified source :: for a v2 report; destination link-scope multicast ff02::/16.
// Fragments never qualify: they carry a fragment header.
bool is_link_control(const uint8_t* ip, const Ipv6Chain& c, const uint8_t* icmp, size_t len) {
  const uint8_t hop_limit = ip[7], type = icmp[0];
  const uint8_t* src = ip + 8;
  const uint8_t* dst = ip + 24;
  if (icmp[1] != 0) return false;
  if (type >= 133 && type <= 137) {
    if (hop_limit != 255 || c.ext_count != 0) return false;
    constexpr size_t kFixed[] = {8, 16, 24, 24, 40};  // RS, RA, NS, NA, Redirect
    const size_t fixed = kFixed[type - 133];
    if (len < fixed) return false;
    for (size_t i = fixed; i < len;) {  // options: type, length in units of 8 bytes
      if (len - i < 2) return false;
      const size_t olen = static_cast<size_t>(icmp[i + 1]) * 8;
      if (olen == 0 || olen > len - i) return false;
      i += olen;
    }
    return true;
  }
  if (type == 130 || type == 131 || type == 132 || type == 143) {
    constexpr uint8_t kUnspecified[16] = {};
    const bool link_local = src[0] == 0xfe && (src[1] & 0xc0) == 0x80;
    const bool unspecified = type == 143 && std::memcmp(src, kUnspecified, 16) == 0;
    const size_t fixed = type == 143 ? 8 : 24;
    return hop_limit == 1 && c.ext_count == 1 && c.mld_alert && (link_local || unspecified) &&
           dst[0] == 0xff && dst[1] == 0x02 && len >= fixed;
  }
  return false;
}

// The IPv4 header checksum verifies when the one's-complement sum of the whole header,
// checksum included, is 0xffff. hl is a multiple of 4 (IHL): native 32-bit words, the
// fixed 20 bytes unrolled (the per-packet case), options after.
inline bool ipv4_checksum_ok(const uint8_t* ip, size_t hl) {
  uint32_t w[5];
  std::memcpy(w, ip, sizeof w);
  uint64_t sum = uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
  for (size_t off = sizeof w; off < hl; off += 4) {
    uint32_t o;
    std::memcpy(&o, ip + off, 4);
    sum += o;
  }
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

ParseResult parse_ipv4(const uint8_t* d, size_t len, size_t l3, ParsedPacket* out, bool csum_good) {
  if (len - l3 < kIpv4MinHeader) return drop(DropReason::truncated);
  const uint8_t* ip = d + l3;
  const size_t hl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  const size_t total = be16(ip + 2);
  if ((ip[0] >> 4) != 4 || hl < kIpv4MinHeader || total < hl || total > len - l3) {
    return drop(DropReason::bad_ipv4_header);
  }
  if (!csum_good && !ipv4_checksum_ok(ip, hl)) return drop(DropReason::bad_ipv4_checksum);
  switch (check_ipv4_options(ip + kIpv4MinHeader, hl - kIpv4MinHeader)) {
    case Ipv4Options::ok:
      break;
    case Ipv4Options::malformed:
      return drop(DropReason::bad_ipv4_options);
    case Ipv4Options::source_route:
      return drop(DropReason::source_route);
  }
  const uint16_t frag = be16(ip + 6);
  const size_t frag_off = static_cast<size_t>(frag & 0x1fff) * 8;
  const bool mf = (frag & 0x2000) != 0;
  const size_t payload = total - hl;
  // A datagram beyond 65535 bytes (ping of death) or a non-last fragment whose size is
  // not a multiple of 8 cannot be reassembled correctly.
  if (frag_off + payload > kMaxIpLen || (mf && payload % 8 != 0)) {
    return drop(DropReason::bad_ipv4_header);
  }

  out->l3_len = static_cast<uint16_t>(total);
  out->l34.family = 4;
  out->l34.proto = ip[9];
  std::memcpy(out->l34.src, ip + 12, 4);
  std::memcpy(out->l34.dst, ip + 16, 4);
  out->is_fragment = mf || frag_off != 0;
  if (out->is_fragment) {
    out->more_fragments = mf;
    out->frag_offset = static_cast<uint16_t>(frag_off);
    out->frag_id = be16(ip + 4);
    out->frag_payload_len = static_cast<uint16_t>(payload);
    if (frag_off != 0) return kOk;  // no L4 header in a non-first fragment
  }
  return parse_l4(d, l3 + hl, l3 + total, out->is_fragment, out);
}

ParseResult parse_ipv6(const uint8_t* d, size_t len, size_t l3, ParsedPacket* out) {
  if (len - l3 < kIpv6HeaderLen) return drop(DropReason::truncated);
  const uint8_t* ip = d + l3;
  const size_t plen = be16(ip + 4);
  if ((ip[0] >> 4) != 6 || plen > len - l3 - kIpv6HeaderLen || kIpv6HeaderLen + plen > kMaxIpLen) {
    return drop(DropReason::bad_ipv6_header);
  }
  const size_t end = l3 + kIpv6HeaderLen + plen;
  out->l3_len = static_cast<uint16_t>(kIpv6HeaderLen + plen);
  out->l34.family = 6;
  std::memcpy(out->l34.src, ip + 8, 16);
  std::memcpy(out->l34.dst, ip + 24, 16);

  Ipv6Chain c;
  DropReason reason = DropReason::ipv6_ext_headers;
  if (!walk_ipv6_chain(d, l3 + kIpv6HeaderLen, end, ip[6], &c, &reason)) return drop(reason);
  out->l34.proto = c.proto;
  // An atomic fragment (offset 0, M clear) is processed as an unfragmented packet.
  out->is_fragment = c.has_frag && (c.frag_offset != 0 || c.more_fragments);
  if (out->is_fragment) {
    out->more_fragments = c.more_fragments;
    out->frag_offset = c.frag_offset;
    out->frag_id = c.frag_id;
    out->frag_payload_len = static_cast<uint16_t>(c.frag_payload);
    if (c.l4_off == 0) return kOk;  // non-first fragment
  }
  const ParseResult r = parse_l4(d, c.l4_off, end, out->is_fragment, out);
  // parse_l4 checked that the whole 8-byte ICMPv6 header is present.
  if (r.status == ParseStatus::ok && c.proto == kProtoIcmpv6 && !out->icmp_is_error &&
      is_link_control(ip, c, d + c.l4_off, end - c.l4_off)) {
    out->kind = FrameKind::ndp;
  }
  return r;
}

// The frame of nearly every packet: untagged IPv4 without options or fragmentation,
// carrying UDP or TCP other than a SYN (whose options the general path reads). Straight
// line; it only accepts: any other frame, malformed ones included, returns false and
// goes through the general path, which alone decides drops and their reasons. What it
// fills is exactly what the general path would fill for the same frame.
inline bool parse_fast(const uint8_t* d, size_t len, ParsedPacket* out, bool csum_good) {
  constexpr size_t l3 = kEthHeaderLen, l4 = l3 + kIpv4MinHeader;
  if (d == nullptr || len < l4 + kUdpHeaderLen) return false;
  const uint8_t* ip = d + l3;
  const size_t total = be16(ip + 2);
  if (be16(d + 12) != kEtherIpv4 || ip[0] != 0x45 || total < kIpv4MinHeader || total > len - l3 ||
      (be16(ip + 6) & 0x3fff) != 0) {  // MF or an offset: a fragment
    return false;
  }
  const uint8_t proto = ip[9];
  const uint8_t* p = ip + kIpv4MinHeader;
  const size_t avail = total - kIpv4MinHeader;
  size_t hdr, payload;
  if (proto == kProtoTcp) {
    if (avail < kTcpMinHeader || (p[13] & kTcpSyn)) return false;
    hdr = static_cast<size_t>(p[12] >> 4) * 4;
    if (hdr < kTcpMinHeader || hdr > avail) return false;
    payload = avail - hdr;
  } else if (proto == kProtoUdp) {
    if (avail < kUdpHeaderLen) return false;
    const size_t ulen = be16(p + 4);
    if (ulen < kUdpHeaderLen || ulen > avail) return false;
    hdr = kUdpHeaderLen;
    payload = ulen - kUdpHeaderLen;
  } else {
    return false;
  }
  if (!csum_good && !ipv4_checksum_ok(ip, kIpv4MinHeader)) return false;

  reset(out);
  out->l3_offset = static_cast<uint16_t>(l3);
  out->l4_offset = static_cast<uint16_t>(l4);
  out->l3_len = static_cast<uint16_t>(total);
  out->payload_offset = static_cast<uint16_t>(l4 + hdr);
  out->payload_len = static_cast<uint16_t>(payload);
  out->l34.family = 4;
  out->l34.proto = proto;
  std::memcpy(out->l34.src, ip + 12, 4);
  std::memcpy(out->l34.dst, ip + 16, 4);
  out->l34.sport = be16(p);
  out->l34.dport = be16(p + 2);
  if (proto == kProtoTcp) {
    out->tcp_seq = be32(p + 4);
    out->tcp_ack = be32(p + 8);
    out->tcp_flags = p[13];
    out->tcp_window = be16(p + 14);
  }
  return true;
}

// Every frame parse_fast does not take. Kept out of line: inlined, its register
// pressure would make parse_frame save and restore registers on the fast path too.
[[gnu::noinline]] ParseResult parse_general(const uint8_t* data, size_t len, ParsedPacket* out,
                                            bool ipv4_csum_good) {
  reset(out);
  if (data == nullptr || len < kEthHeaderLen) return drop(DropReason::truncated);
  size_t off = 12;  // ethertype / TPID position
  uint16_t type = be16(data + off);
  for (size_t tags = 0; type == kEtherVlan || type == kEtherQinq; ++tags) {
    if (tags == kMaxVlanTags) return drop(DropReason::vlan_too_deep);
    if (len - off < kVlanTagLen + 2) return drop(DropReason::truncated);
    out->vlan = (out->vlan << 12) | (be16(data + off + 2) & 0x0fffu);
    off += kVlanTagLen;
    type = be16(data + off);
  }
  const size_t l3 = off + 2;
  out->l3_offset = static_cast<uint16_t>(l3);

  switch (type) {
    case kEtherIpv4:
      return parse_ipv4(data, len, l3, out, ipv4_csum_good);
    case kEtherIpv6:
      return parse_ipv6(data, len, l3, out);
    case kEtherArp: {
      // Fixed part, then sender/target hardware and protocol addresses.
      if (len - l3 < 8) return drop(DropReason::truncated);
      const size_t alen = 8 + 2 * (static_cast<size_t>(data[l3 + 4]) + data[l3 + 5]);
      if (len - l3 < alen) return drop(DropReason::truncated);
      out->kind = FrameKind::arp;
      return kOk;
    }
    default:
      return drop(DropReason::non_ip);
  }
}

}  // namespace

ParseResult parse_frame(const uint8_t* data, size_t len, ParsedPacket* out, bool ipv4_csum_good) {
  if (parse_fast(data, len, out, ipv4_csum_good)) return kOk;
  return parse_general(data, len, out, ipv4_csum_good);
}

ParseResult parse_frame_general(const uint8_t* data, size_t len, ParsedPacket* out,
                                bool ipv4_csum_good) {
  return parse_general(data, len, out, ipv4_csum_good);
}

bool same_parse(const ParsedPacket& a, const ParsedPacket& b) {
  // Every field before `inner` (reset() gives the padding a defined value), then inner.
  if (std::memcmp(&a, &b, offsetof(ParsedPacket, inner)) != 0) return false;
  return !a.icmp_is_error || std::memcmp(&a.inner, &b.inner, sizeof(L34)) == 0;
}

uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial) {
  // The one's-complement sum does not depend on byte order: add native 32-bit words,
  // fold, then swap to the big-endian value the header stores (RFC 1071, 2.(B)).
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "host order assumed little endian");
  uint64_t sum = 0;
  for (; len >= 4; data += 4, len -= 4) {
    uint32_t w;
    std::memcpy(&w, data, 4);
    sum += w;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, data, 2);
    sum += w;
    data += 2;
    len -= 2;
  }
  if (len != 0) sum += *data;  // a lone last byte is the high byte of a big-endian word
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint32_t be = __builtin_bswap16(static_cast<uint16_t>(sum));
  be += initial & 0xffff;
  be += initial >> 16;
  while (be >> 16) be = (be & 0xffff) + (be >> 16);
  return static_cast<uint16_t>(~be & 0xffff);
}

}  // namespace egw
