// Unit tests for dataplane/parse.cc: tables of {description, frame, expected verdict and
// fields}, truncation at every length, and the public captures in ../shared/pcaps.
#include "dataplane/parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/frames.h"

namespace egw {
namespace {

using test::build_frame;
using test::FrameSpec;
using Bytes = std::vector<uint8_t>;

// Expected outcome; unset optionals are not checked.
struct Expect {
  ParseStatus status = ParseStatus::ok;
  DropReason reason = DropReason::truncated;
  std::optional<FrameKind> kind;
  std::optional<uint32_t> vlan;
  std::optional<uint8_t> family, proto;
  std::optional<std::string> src, dst;
  std::optional<uint16_t> sport, dport;
  std::optional<bool> has_l4;
  std::optional<uint16_t> l3_len, payload_len;
  std::optional<bool> is_fragment, more_fragments;
  std::optional<uint16_t> frag_offset;
  std::optional<uint32_t> frag_id;
  std::optional<uint16_t> frag_payload_len;
  std::optional<uint8_t> tcp_flags;
  std::optional<uint32_t> tcp_seq;
  std::optional<uint8_t> tcp_wscale;
  std::optional<uint8_t> icmp_type;
  std::optional<bool> icmp_is_error;
  std::optional<uint8_t> inner_family, inner_proto;
  std::optional<std::string> inner_src, inner_dst;
  std::optional<uint16_t> inner_sport, inner_dport;
};

struct Case {
  std::string desc;
  Bytes frame;
  Expect want;
};

Expect dropped(DropReason r) {
  return Expect{.status = ParseStatus::drop, .reason = r};
}

std::string addr_str(uint8_t family, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
  return buf;
}

// Parses a heap copy of exactly the frame's size, so ASan sees any over-read.
ParseResult parse_exact(const Bytes& f, ParsedPacket* p) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[f.size() ? f.size() : 1]);
  if (!f.empty()) std::memcpy(copy.get(), f.data(), f.size());
  return parse_frame(copy.get(), f.size(), p);
}

void check(const Case& c) {
  SCOPED_TRACE(c.desc);
  ParsedPacket p;
  const ParseResult r = parse_exact(c.frame, &p);
  // The fast path for common frames agrees with the general parser on every case.
  ParsedPacket g;
  const ParseResult rg = parse_frame_general(c.frame.data(), c.frame.size(), &g);
  ASSERT_EQ(rg.status, r.status);
  if (r.status == ParseStatus::drop) {
    EXPECT_STREQ(drop_reason_name(rg.reason), drop_reason_name(r.reason));
  } else {
    EXPECT_TRUE(same_parse(p, g)) << "the fast path filled the packet differently";
  }
  const Expect& w = c.want;
  ASSERT_EQ(r.status, w.status) << "reason " << drop_reason_name(r.reason);
  if (w.status == ParseStatus::drop) {
    EXPECT_STREQ(drop_reason_name(r.reason), drop_reason_name(w.reason));
    return;
  }
  if (w.kind) {
    EXPECT_EQ(p.kind, *w.kind);
  }
  if (w.vlan) {
    EXPECT_EQ(p.vlan, *w.vlan);
  }
  if (w.family) {
    EXPECT_EQ(p.l34.family, *w.family);
  }
  if (w.proto) {
    EXPECT_EQ(p.l34.proto, *w.proto);
  }
  if (w.src) {
    EXPECT_EQ(addr_str(p.l34.family, p.l34.src), *w.src);
  }
  if (w.dst) {
    EXPECT_EQ(addr_str(p.l34.family, p.l34.dst), *w.dst);
  }
  if (w.sport) {
    EXPECT_EQ(p.l34.sport, *w.sport);
  }
  if (w.dport) {
    EXPECT_EQ(p.l34.dport, *w.dport);
  }
  if (w.has_l4) {
    EXPECT_EQ(p.l4_offset != 0, *w.has_l4);
  }
  if (w.l3_len) {
    EXPECT_EQ(p.l3_len, *w.l3_len);
  }
  if (w.payload_len) {
    EXPECT_EQ(p.payload_len, *w.payload_len);
  }
  if (w.is_fragment) {
    EXPECT_EQ(p.is_fragment, *w.is_fragment);
  }
  if (w.more_fragments) {
    EXPECT_EQ(p.more_fragments, *w.more_fragments);
  }
  if (w.frag_offset) {
    EXPECT_EQ(p.frag_offset, *w.frag_offset);
  }
  if (w.frag_id) {
    EXPECT_EQ(p.frag_id, *w.frag_id);
  }
  if (w.frag_payload_len) {
    EXPECT_EQ(p.frag_payload_len, *w.frag_payload_len);
  }
  if (w.tcp_flags) {
    EXPECT_EQ(p.tcp_flags, *w.tcp_flags);
  }
  if (w.tcp_seq) {
    EXPECT_EQ(p.tcp_seq, *w.tcp_seq);
  }
  if (w.tcp_wscale) {
    EXPECT_EQ(p.tcp_wscale, *w.tcp_wscale);
  }
  if (w.icmp_type) {
    EXPECT_EQ(p.icmp_type, *w.icmp_type);
  }
  if (w.icmp_is_error) {
    EXPECT_EQ(p.icmp_is_error, *w.icmp_is_error);
  }
  if (w.inner_family) {
    EXPECT_EQ(p.inner.family, *w.inner_family);
  }
  if (w.inner_proto) {
    EXPECT_EQ(p.inner.proto, *w.inner_proto);
  }
  if (w.inner_src) {
    EXPECT_EQ(addr_str(p.inner.family, p.inner.src), *w.inner_src);
  }
  if (w.inner_dst) {
    EXPECT_EQ(addr_str(p.inner.family, p.inner.dst), *w.inner_dst);
  }
  if (w.inner_sport) {
    EXPECT_EQ(p.inner.sport, *w.inner_sport);
  }
  if (w.inner_dport) {
    EXPECT_EQ(p.inner.dport, *w.inner_dport);
  }
  // Whatever parsed ok stays inside the frame.
  EXPECT_LE(p.l3_offset + size_t{p.l3_len}, c.frame.size());
  if (p.payload_len) {
    EXPECT_LE(p.payload_offset + size_t{p.payload_len}, c.frame.size());
  }
}

// ---- frame specs and mutations ----

FrameSpec v4(uint8_t proto, uint16_t sport = 40000, uint16_t dport = 443) {
  FrameSpec s;
  s.src = "10.0.0.1";
  s.dst = "192.0.2.7";
  s.proto = proto;
  s.sport = sport;
  s.dport = dport;
  return s;
}
FrameSpec v6(uint8_t proto, uint16_t sport = 40000, uint16_t dport = 443) {
  FrameSpec s = v4(proto, sport, dport);
  s.family = 6;
  s.src = "fd00::1";
  s.dst = "2001:db8::7";
  return s;
}
template <class F>
FrameSpec with(FrameSpec s, F f) {
  f(s);
  return s;
}
Bytes payload(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>('a' + i % 26);
  return b;
}

// Copy of f with byte l3+k set to v (and the IPv4 header checksum fixed when asked).
Bytes set_l3(Bytes f, size_t k, uint8_t v, bool fix = true) {
  f[test::l3_offset_of(f) + k] = v;
  if (fix) test::fix_ipv4_checksum(f);
  return f;
}
Bytes set_l3_16(Bytes f, size_t k, uint16_t v, bool fix = true) {
  f[test::l3_offset_of(f) + k] = static_cast<uint8_t>(v >> 8);
  return set_l3(f, k + 1, static_cast<uint8_t>(v), fix);
}
// Byte at l4 offset k of a frame without IP options / IPv6 extension headers.
Bytes set_l4(Bytes f, size_t k, uint8_t v) {
  const size_t l3 = test::l3_offset_of(f);
  const size_t hl = (f[l3] >> 4) == 4 ? (f[l3] & 0x0f) * 4u : 40u;
  f[l3 + hl + k] = v;
  return f;
}
Bytes at(const std::vector<Bytes>& v, size_t i) {
  return v.at(i);
}
Bytes add_third_tag(Bytes f) {
  const Bytes tag = {0x81, 0x00, 0x00, 0x05};
  f.insert(f.begin() + 12, tag.begin(), tag.end());
  return f;
}
Bytes outer_tpid_8100(Bytes f) {
  f[12] = 0x81, f[13] = 0x00;
  return f;
}
Bytes truncate_to(Bytes f, size_t n) {
  f.resize(n);
  return f;
}
// Shortens the IP datagram to n bytes of L4 (IPv4 total length fixed up).
Bytes cut_l4_v4(Bytes f, size_t n) {
  const size_t l3 = test::l3_offset_of(f);
  const size_t hl = (f[l3] & 0x0f) * 4u;
  f.resize(l3 + hl + n);
  return set_l3_16(f, 2, static_cast<uint16_t>(hl + n));
}
Bytes build_arp_request_frame() {
  return test::build_arp_request("10.0.0.1", "10.0.0.2");
}
Bytes vlan_arp() {
  Bytes f = build_arp_request_frame();
  const Bytes tag = {0x81, 0x00, 0x00, 33};
  f.insert(f.begin() + 12, tag.begin(), tag.end());
  return f;
}

const Bytes kTcpSynOptions = {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0};  // MSS, NOP, WS 7, SACK-OK

// ---- tables ----

std::vector<Case> basic_cases() {
  auto syn = with(v4(kProtoTcp), [](FrameSpec& s) {
    s.tcp_options = kTcpSynOptions;
    s.payload = payload(5);
    s.seq = 0xdeadbeef;
  });
  auto udp4 = with(v4(kProtoUdp, 5353, 53), [](FrameSpec& s) { s.payload = payload(12); });
  auto ping4 = with(v4(kProtoIcmp), [](FrameSpec& s) { s.icmp_id = 0x4242; });
  auto udp6 = with(v6(kProtoUdp, 5353, 53), [](FrameSpec& s) { s.payload = payload(3); });
  auto ping6 = with(v6(kProtoIcmpv6), [](FrameSpec& s) {
    s.icmp_type = 128;
    s.icmp_id = 7;
  });
  auto lldp = build_frame(udp4);
  lldp[12] = 0x88, lldp[13] = 0xcc;
  auto nd_type = [](uint8_t t) {
    return with(v6(kProtoIcmpv6), [t](FrameSpec& s) { s.icmp_type = t; });
  };
  auto padded_garbage =
      test::pad_ethernet(build_frame(with(udp4, [](FrameSpec& s) { s.payload = payload(2); })));
  for (size_t i = padded_garbage.size() - 10; i < padded_garbage.size(); ++i)
    padded_garbage[i] = 0xee;
  return {
      {"v4 TCP SYN with options",
       build_frame(syn),
       {.family = 4,
        .proto = 6,
        .src = "10.0.0.1",
        .dst = "192.0.2.7",
        .sport = 40000,
        .dport = 443,
        .has_l4 = true,
        .l3_len = 20 + 32 + 5,
        .payload_len = 5,
        .is_fragment = false,
        .tcp_flags = kTcpSyn,
        .tcp_seq = 0xdeadbeef,
        .tcp_wscale = 7}},
      {"v4 TCP ACK: window scale ignored without SYN",
       build_frame(with(syn, [](FrameSpec& s) { s.tcp_flags = kTcpAck; })),
       {.tcp_flags = kTcpAck, .tcp_wscale = 0xff}},
      {"v4 TCP SYN window scale above 14 clamped",
       build_frame(with(syn,
                        [](FrameSpec& s) {
                          s.tcp_options = {3, 3, 20};
                        })),
       {.tcp_wscale = 14}},
      {"v4 TCP SYN malformed option stops the walk",
       build_frame(with(syn,
                        [](FrameSpec& s) {
                          s.tcp_options = {8, 1, 3, 3, 7};
                        })),
       {.payload_len = 5, .tcp_wscale = 0xff}},
      {"v4 UDP",
       build_frame(udp4),
       {.proto = 17, .sport = 5353, .dport = 53, .l3_len = 40, .payload_len = 12}},
      {"v4 ICMP echo: id in sport",
       build_frame(ping4),
       {.proto = 1, .sport = 0x4242, .dport = 0, .icmp_type = 8, .icmp_is_error = false}},
      {"v4 ICMP echo reply",
       build_frame(with(ping4, [](FrameSpec& s) { s.icmp_type = 0; })),
       {.sport = 0x4242, .icmp_type = 0}},
      {"v4 ICMP timestamp: no ports",
       build_frame(with(ping4, [](FrameSpec& s) { s.icmp_type = 13; })),
       {.proto = 1, .sport = 0, .dport = 0, .icmp_type = 13, .icmp_is_error = false}},
      {"v6 TCP",
       build_frame(v6(kProtoTcp)),
       {.family = 6,
        .proto = 6,
        .src = "fd00::1",
        .dst = "2001:db8::7",
        .sport = 40000,
        .dport = 443,
        .l3_len = 60,
        .payload_len = 0}},
      {"v6 UDP", build_frame(udp6), {.family = 6, .proto = 17, .sport = 5353, .payload_len = 3}},
      {"v6 ICMPv6 echo",
       build_frame(ping6),
       {.kind = FrameKind::ip, .proto = 58, .sport = 7, .dport = 0, .icmp_type = 128}},
      {"one VLAN tag",
       build_frame(with(udp4, [](FrameSpec& s) { s.vlans = {10}; })),
       {.vlan = 10, .sport = 5353}},
      {"QinQ 0x88a8 + 0x8100",
       build_frame(with(udp6,
                        [](FrameSpec& s) {
                          s.vlans = {100, 200};
                        })),
       {.vlan = (100u << 12) | 200u, .family = 6, .sport = 5353}},
      {"two 0x8100 tags",
       outer_tpid_8100(build_frame(with(udp4,
                                        [](FrameSpec& s) {
                                          s.vlans = {4095, 1};
                                        }))),
       {.vlan = (4095u << 12) | 1u}},
      {"three VLAN tags",
       add_third_tag(build_frame(with(udp4,
                                      [](FrameSpec& s) {
                                        s.vlans = {100, 200};
                                      }))),
       dropped(DropReason::vlan_too_deep)},
      {"VLAN tag cut short",
       truncate_to(build_frame(with(udp4, [](FrameSpec& s) { s.vlans = {7}; })), 16),
       dropped(DropReason::truncated)},
      {"Ethernet padding ignored (v4)",
       test::pad_ethernet(build_frame(with(udp4, [](FrameSpec& s) { s.payload = payload(1); }))),
       {.l3_len = 29, .payload_len = 1}},
      {"non-zero Ethernet padding ignored", padded_garbage, {.l3_len = 30, .payload_len = 2}},
      {"Ethernet padding ignored (v6 TCP)",
       test::pad_ethernet(build_frame(v6(kProtoTcp)), 120),
       {.l3_len = 60, .payload_len = 0}},
      {"ARP request", build_arp_request_frame(), {.kind = FrameKind::arp}},
      {"ARP padded",
       test::pad_ethernet(test::build_arp_request("10.0.0.1", "10.0.0.2")),
       {.kind = FrameKind::arp}},
      {"ARP in a VLAN", vlan_arp(), {.kind = FrameKind::arp, .vlan = 33}},
      {"ARP cut short", truncate_to(test::build_arp_request("10.0.0.1", "10.0.0.2"), 41),
       dropped(DropReason::truncated)},
      {"ARP fixed header cut", truncate_to(test::build_arp_request("10.0.0.1", "10.0.0.2"), 20),
       dropped(DropReason::truncated)},
      {"NDP neighbour solicitation",
       test::build_ndp_ns("fe80::1", "fe80::2"),
       {.kind = FrameKind::ndp}},
      {"ICMPv6 138 is not NDP", build_frame(nd_type(138)), {.kind = FrameKind::ip}},
      {"LLDP ethertype", lldp, dropped(DropReason::non_ip)},
      {"empty frame", {}, dropped(DropReason::truncated)},
      {"13-byte frame", Bytes(13, 0), dropped(DropReason::truncated)},
      {"Ethernet header only", truncate_to(build_frame(udp4), 14), dropped(DropReason::truncated)},
  };
}

std::vector<Case> ipv4_header_cases() {
  const Bytes f = build_frame(
      with(v4(kProtoUdp, 1, 2), [](FrameSpec& s) { s.payload = payload(4); }));  // total length 32
  auto opts = [](Bytes o) {
    return build_frame(with(v4(kProtoUdp, 1, 2), [&](FrameSpec& s) { s.ip_options = o; }));
  };
  Bytes bad_sum = f;
  bad_sum[test::l3_offset_of(f) + 10] ^= 0x01;
  return {
      {"valid header", f, {.l3_len = 32, .payload_len = 4}},
      {"header checksum wrong", bad_sum, dropped(DropReason::bad_ipv4_checksum)},
      {"checksum wrong after TTL change", set_l3(f, 8, 63, false),
       dropped(DropReason::bad_ipv4_checksum)},
      {"version 5", set_l3(f, 0, 0x55), dropped(DropReason::bad_ipv4_header)},
      {"version 6 under the IPv4 ethertype", set_l3(f, 0, 0x65),
       dropped(DropReason::bad_ipv4_header)},
      {"IHL 4", set_l3(f, 0, 0x44), dropped(DropReason::bad_ipv4_header)},
      {"IHL 0", set_l3(f, 0, 0x40), dropped(DropReason::bad_ipv4_header)},
      {"IHL 15 beyond total length", set_l3(f, 0, 0x4f), dropped(DropReason::bad_ipv4_header)},
      {"total length beyond frame", set_l3_16(f, 2, 33), dropped(DropReason::bad_ipv4_header)},
      {"total length 65535", set_l3_16(f, 2, 65535), dropped(DropReason::bad_ipv4_header)},
      {"total length below header", set_l3_16(f, 2, 19), dropped(DropReason::bad_ipv4_header)},
      {"total length 0", set_l3_16(f, 2, 0), dropped(DropReason::bad_ipv4_header)},
      {"total length cuts the UDP header", set_l3_16(f, 2, 27), dropped(DropReason::bad_l4_header)},
      {"total length cuts the UDP payload", set_l3_16(f, 2, 30),
       dropped(DropReason::bad_l4_header)},  // UDP length 12 > IP payload 10
      {"19 bytes of IPv4", truncate_to(f, 14 + 19), dropped(DropReason::truncated)},
      {"options NOP NOP NOP EOL", opts({1, 1, 1, 0}), {.proto = 17, .sport = 1}},
      {"record route option", opts({7, 7, 4, 0, 0, 0, 0, 1}), {.sport = 1}},
      {"EOL then garbage", opts({0, 0xff, 0xff, 0xff}), {.sport = 1}},
      {"option length 1", opts({7, 1, 0, 0}), dropped(DropReason::bad_ipv4_options)},
      {"option length 0", opts({1, 1, 7, 0}), dropped(DropReason::bad_ipv4_options)},
      {"option length past header", opts({1, 7, 9, 4}), dropped(DropReason::bad_ipv4_options)},
      {"option length byte missing", opts({1, 1, 1, 7}), dropped(DropReason::bad_ipv4_options)},
      {"40 bytes of options", opts(Bytes(40, 1)), {.sport = 1, .payload_len = 0}},
  };
}

// Source routing: the destination field is a waypoint, not what the policy must judge.
std::vector<Case> source_route_cases() {
  auto opts = [](Bytes o) {
    return build_frame(with(v4(kProtoTcp), [&](FrameSpec& s) {
      s.ip_options = o;
      s.payload = payload(40);
    }));
  };
  const Bytes lsrr = {131, 7, 4, 198, 51, 100, 9}, ssrr = {137, 7, 4, 198, 51, 100, 9};
  const Bytes lsrr_done = {131, 7, 8, 198, 51, 100, 9};  // pointer past the last hop
  auto chain = [](std::vector<test::Ipv6Ext> e) {
    return build_frame(with(v6(kProtoTcp), [&](FrameSpec& s) {
      s.v6_ext = e;
      s.payload = payload(16);
    }));
  };
  auto rt = [](uint8_t type, uint8_t segments_left) {
    return test::Ipv6Ext{43, {type, segments_left, 0, 0, 0, 0}};
  };
  const test::Ipv6Ext hbh = {0, {1, 2, 0, 0}}, dst = {60, {}};
  FrameSpec e6 = v6(kProtoIcmpv6);
  e6.icmp_type = 1;
  return {
      {"v4 LSRR", opts(lsrr), dropped(DropReason::source_route)},
      {"v4 SSRR", opts(ssrr), dropped(DropReason::source_route)},
      {"v4 LSRR after NOPs and record route",
       opts({1, 1, 7, 7, 4, 0, 0, 0, 0, 131, 7, 4, 1, 2, 3, 4}), dropped(DropReason::source_route)},
      {"v4 LSRR with the route used up", opts(lsrr_done), dropped(DropReason::source_route)},
      {"v4 LSRR in a non-first fragment (options are copied)",
       at(test::fragment_ipv4(opts(lsrr), 24), 1), dropped(DropReason::source_route)},
      {"v4 LSRR after EOL is not an option", opts({0, 131, 7, 4, 1, 2, 3, 4}), {.sport = 40000}},
      {"v4 LSRR with length 1 is malformed", opts({131, 1, 0, 0}),
       dropped(DropReason::bad_ipv4_options)},
      {"v4 LSRR then a malformed option", opts({131, 7, 4, 1, 2, 3, 4, 7, 0}),
       dropped(DropReason::bad_ipv4_options)},
      {"v4 SSRR longer than the header", opts({137, 11, 4, 1, 2, 3, 4, 0}),
       dropped(DropReason::bad_ipv4_options)},
      {"v4 record route is not source routing",
       opts({7, 7, 4, 0, 0, 0, 0}),
       {.proto = 6, .sport = 40000, .dport = 443}},
      {"v6 routing type 0, segments left 0", chain({rt(0, 0)}),
       dropped(DropReason::ipv6_routing_type0)},
      {"v6 routing type 0, segments left 1", chain({rt(0, 1)}),
       dropped(DropReason::ipv6_routing_type0)},
      {"v6 routing type 2 (MIPv6), segments left 1",
       chain({rt(2, 1)}),
       {.proto = 6, .dst = "2001:db8::7", .sport = 40000}},
      {"v6 routing type 2, segments left 0", chain({rt(2, 0)}), {.proto = 6, .sport = 40000}},
      {"v6 routing type 2, segments left 2", chain({rt(2, 2)}), dropped(DropReason::source_route)},
      {"v6 routing type 1 (Nimrod), segments left 1", chain({rt(1, 1)}),
       dropped(DropReason::source_route)},
      {"v6 routing type 3 (RPL), segments left 1", chain({rt(3, 1)}),
       dropped(DropReason::source_route)},
      {"v6 segment routing (type 4), segments left 2", chain({rt(4, 2)}),
       dropped(DropReason::source_route)},
      {"v6 segment routing, segments left 255", chain({rt(4, 255)}),
       dropped(DropReason::source_route)},
      {"v6 segment routing, segments left 0: at its final destination",
       chain({rt(4, 0)}),
       {.proto = 6, .sport = 40000, .dport = 443}},
      {"v6 routing type 253 (experimental), segments left 1", chain({rt(253, 1)}),
       dropped(DropReason::source_route)},
      {"v6 routing type 255, segments left 0", chain({rt(255, 0)}), {.proto = 6}},
      {"v6 segment routing behind hop-by-hop and dest opts", chain({hbh, dst, rt(4, 1)}),
       dropped(DropReason::source_route)},
      {"v6 segment routing in a first fragment", at(test::fragment_ipv6(chain({rt(4, 1)}), 40), 0),
       dropped(DropReason::source_route)},
      {"v6 ICMP error quoting a source-routed packet",
       test::build_icmp_error(e6, chain({rt(4, 1)})), dropped(DropReason::bad_l4_header)},
  };
}

std::vector<Case> fragment_cases() {
  const auto tcp = with(v4(kProtoTcp), [](FrameSpec& s) {
    s.payload = payload(100);
    s.ip_id = 0x5151;
  });
  const auto frags24 = test::fragment_ipv4(build_frame(tcp), 24);
  const auto frags16 = test::fragment_ipv4(build_frame(tcp), 16);
  const auto frags8 = test::fragment_ipv4(build_frame(tcp), 8);
  const auto tcp_opts = test::fragment_ipv4(
      build_frame(with(tcp, [](FrameSpec& s) { s.tcp_options = kTcpSynOptions; })), 24);
  const auto udp8 = test::fragment_ipv4(
      build_frame(with(v4(kProtoUdp, 7, 9), [](FrameSpec& s) { s.payload = payload(64); })), 8);
  const auto ping = test::fragment_ipv4(build_frame(with(v4(kProtoIcmp),
                                                         [](FrameSpec& s) {
                                                           s.icmp_id = 99;
                                                           s.payload = payload(64);
                                                         })),
                                        8);
  const auto tcp6 = with(v6(kProtoTcp), [](FrameSpec& s) { s.payload = payload(100); });
  const auto f6_24 = test::fragment_ipv6(build_frame(tcp6), 24, 0xabcdef01);
  const auto f6_16 = test::fragment_ipv6(build_frame(tcp6), 16);
  const auto udp6 = test::fragment_ipv6(
      build_frame(with(v6(kProtoUdp, 7, 9), [](FrameSpec& s) { s.payload = payload(64); })), 8);
  auto v6_frag_hdr = [&](uint16_t off_m) {
    return build_frame(with(v6(kProtoTcp), [&](FrameSpec& s) {
      s.v6_ext = {
          {44, {static_cast<uint8_t>(off_m >> 8), static_cast<uint8_t>(off_m), 0, 0, 0, 9}}};
    }));
  };
  Bytes last_v4 = frags24.back();
  auto opts6 = [](size_t body) {
    return build_frame(with(v6(kProtoTcp), [&](FrameSpec& s) {
      s.v6_ext = {{60, Bytes(body, 0)}};
      s.payload = payload(40);
    }));
  };
  const auto cut_chain = test::fragment_ipv6(opts6(22), 16);  // 24-byte options header
  const auto cut_tcp = test::fragment_ipv6(opts6(6), 16);     // 8 + 8 bytes of TCP
  const auto whole = test::fragment_ipv6(opts6(6), 32);       // 8 + 24 bytes of TCP
  return {
      {"v4 first fragment with the whole TCP header",
       at(frags24, 0),
       {.proto = 6,
        .sport = 40000,
        .dport = 443,
        .has_l4 = true,
        .payload_len = 4,
        .is_fragment = true,
        .more_fragments = true,
        .frag_offset = 0,
        .frag_id = 0x5151,
        .frag_payload_len = 24}},
      {"v4 second fragment: no L4",
       at(frags24, 1),
       {.proto = 6,
        .sport = 0,
        .dport = 0,
        .has_l4 = false,
        .payload_len = 0,
        .is_fragment = true,
        .more_fragments = true,
        .frag_offset = 24,
        .frag_id = 0x5151}},
      {"v4 last fragment",
       last_v4,
       {.has_l4 = false,
        .is_fragment = true,
        .more_fragments = false,
        .frag_offset = 96,
        .frag_payload_len = 24}},
      {"v4 tiny first fragment (16 bytes of TCP)", at(frags16, 0), dropped(DropReason::frag_no_l4)},
      {"v4 tiny first fragment (8 bytes of TCP)", at(frags8, 0), dropped(DropReason::frag_no_l4)},
      {"v4 first fragment without the TCP options", at(tcp_opts, 0),
       dropped(DropReason::frag_no_l4)},
      {"v4 offset-8 fragment is not first",
       at(frags8, 1),
       {.has_l4 = false, .is_fragment = true, .frag_offset = 8}},
      {"v4 first fragment with the UDP header",
       at(udp8, 0),
       {.proto = 17, .sport = 7, .dport = 9, .payload_len = 0, .is_fragment = true}},
      {"v4 first fragment of an ICMP echo",
       at(ping, 0),
       {.proto = 1, .sport = 99, .is_fragment = true, .icmp_type = 8}},
      {"v4 MF with a size not a multiple of 8", cut_l4_v4(at(frags24, 0), 23),
       dropped(DropReason::bad_ipv4_header)},
      {"v4 ping of death offset", set_l3_16(at(frags24, 1), 6, 0x1fff),
       dropped(DropReason::bad_ipv4_header)},
      {"v4 last fragment at the highest legal offset",
       set_l3_16(last_v4, 6, 0x1ffc),
       {.is_fragment = true, .frag_offset = 65504}},
      {"v4 last fragment ending past 65535", set_l3_16(last_v4, 6, 0x1ffd),
       dropped(DropReason::bad_ipv4_header)},
      {"v6 first fragment with the whole TCP header",
       at(f6_24, 0),
       {.family = 6,
        .proto = 6,
        .sport = 40000,
        .has_l4 = true,
        .payload_len = 4,
        .is_fragment = true,
        .more_fragments = true,
        .frag_offset = 0,
        .frag_id = 0xabcdef01,
        .frag_payload_len = 24}},
      {"v6 second fragment: no L4",
       at(f6_24, 1),
       {.proto = 6,
        .sport = 0,
        .has_l4 = false,
        .is_fragment = true,
        .more_fragments = true,
        .frag_offset = 24}},
      {"v6 last fragment",
       f6_24.back(),
       {.has_l4 = false, .is_fragment = true, .more_fragments = false, .frag_offset = 96}},
      {"v6 tiny first fragment", at(f6_16, 0), dropped(DropReason::frag_no_l4)},
      {"v6 first fragment with UDP", at(udp6, 0), {.proto = 17, .sport = 7, .is_fragment = true}},
      {"v6 atomic fragment is not a fragment",
       v6_frag_hdr(0),
       {.proto = 6, .sport = 40000, .is_fragment = false}},
      {"v6 first fragment, size not multiple of 8", v6_frag_hdr(1),
       dropped(DropReason::ipv6_ext_headers)},
      {"v6 two fragment headers",
       build_frame(with(v6(kProtoUdp),
                        [](FrameSpec& s) {
                          s.v6_ext = {{44, {0, 0, 0, 0, 0, 1}}, {44, {0, 0, 0, 0, 0, 1}}};
                        })),
       dropped(DropReason::ipv6_ext_headers)},
      {"v6 fragment beyond 65535", v6_frag_hdr(0xfff8), dropped(DropReason::ipv6_ext_headers)},
      {"v6 first fragment cuts the ext-header chain", at(cut_chain, 0),
       dropped(DropReason::frag_no_l4)},
      {"v6 first fragment: chain whole, TCP cut", at(cut_tcp, 0), dropped(DropReason::frag_no_l4)},
      {"v6 first fragment: chain and TCP whole",
       at(whole, 0),
       {.proto = 6, .sport = 40000, .is_fragment = true, .frag_payload_len = 32}},
  };
}

std::vector<Case> ipv6_ext_cases() {
  auto chain = [](std::vector<test::Ipv6Ext> e, uint8_t proto = kProtoTcp) {
    return build_frame(with(v6(proto), [&](FrameSpec& s) { s.v6_ext = e; }));
  };
  const test::Ipv6Ext dst = {60, {}}, hbh = {0, {5, 2, 0, 0}}, rt2 = {43, {2, 1}},
                      rt0 = {43, {0, 1}}, ah = {51, Bytes(10, 0)};
  std::vector<test::Ipv6Ext> eight(8, dst), nine(9, dst);
  eight[0] = hbh;
  Bytes big_len = chain({dst});
  big_len[test::l3_offset_of(big_len) + 41] = 20;  // 168 bytes, beyond the payload
  Bytes f = build_frame(v6(kProtoUdp));
  return {
      {"HBH + DestOpts + routing type 2 + TCP",
       chain({hbh, dst, rt2}),
       {.proto = 6, .sport = 40000, .dport = 443, .l3_len = 40 + 24 + 20}},
      {"eight extension headers", chain(eight), {.proto = 6, .sport = 40000}},
      {"nine extension headers", chain(nine), dropped(DropReason::ipv6_ext_headers)},
      {"hop-by-hop not first", chain({dst, hbh}), dropped(DropReason::ipv6_ext_headers)},
      {"routing header type 0", chain({rt0}), dropped(DropReason::ipv6_routing_type0)},
      {"routing type 0 after options", chain({hbh, dst, rt0}),
       dropped(DropReason::ipv6_routing_type0)},
      {"AH then TCP", chain({ah}), {.proto = 6, .sport = 40000}},
      {"Mobility header (135)", chain({dst}, 135), dropped(DropReason::ipv6_ext_headers)},
      {"experimental 253", chain({}, 253), dropped(DropReason::ipv6_ext_headers)},
      {"no next header (59)", chain({dst}, 59), {.proto = 59, .sport = 0, .dport = 0}},
      {"header length beyond payload", big_len, dropped(DropReason::ipv6_ext_headers)},
      {"bad TLV option length", chain({{60, {1, 9}}}), dropped(DropReason::ipv6_ext_headers)},
      {"PadN and Pad1 options", chain({{60, {1, 1, 0, 0, 0, 0}}}), {.sport = 40000}},
      {"payload length beyond frame", set_l3_16(f, 4, 9, false),
       dropped(DropReason::bad_ipv6_header)},
      {"payload length shorter: padding",
       set_l3_16(test::pad_ethernet(f, 100), 4, 8, false),
       {.l3_len = 48, .payload_len = 0}},
      {"version 4 under the IPv6 ethertype", set_l3(f, 0, 0x40, false),
       dropped(DropReason::bad_ipv6_header)},
      {"39 bytes of IPv6", truncate_to(f, 14 + 39), dropped(DropReason::truncated)},
  };
}

std::vector<Case> tunnel_and_l4_cases() {
  auto raw4 = [](uint8_t proto) {
    return build_frame(with(v4(proto), [](FrameSpec& s) { s.payload = payload(40); }));
  };
  auto raw6 = [](uint8_t proto) {
    return build_frame(with(v6(proto), [](FrameSpec& s) { s.payload = payload(40); }));
  };
  const Expect tunnel4 = {.family = 4, .sport = 0, .dport = 0, .has_l4 = true};
  auto t = [](Expect e, uint8_t p) {
    e.proto = p;
    return e;
  };
  const Bytes tcp = build_frame(with(v4(kProtoTcp), [](FrameSpec& s) { s.payload = payload(8); }));
  const Bytes udp = build_frame(with(v4(kProtoUdp), [](FrameSpec& s) { s.payload = payload(8); }));
  const Bytes udp6 = build_frame(with(v6(kProtoUdp), [](FrameSpec& s) { s.payload = payload(8); }));
  return {
      {"GRE over IPv4", raw4(47), t(tunnel4, 47)},
      {"IPIP", raw4(4), t(tunnel4, 4)},
      {"6in4", raw4(41), t(tunnel4, 41)},
      {"ESP over IPv4", raw4(50), t(tunnel4, 50)},
      {"GRE over IPv6", raw6(47), {.family = 6, .proto = 47, .sport = 0, .has_l4 = true}},
      {"ESP over IPv6", raw6(50), {.family = 6, .proto = 50, .sport = 0}},
      {"IPv4 in IPv6", raw6(4), {.family = 6, .proto = 4, .sport = 0}},
      {"IPv6 in IPv6", raw6(41), {.family = 6, .proto = 41, .sport = 0}},
      {"ICMPv6 number over IPv4: opaque", raw4(58), {.proto = 58, .sport = 0, .icmp_type = 0}},
      {"TCP data offset 4", set_l4(tcp, 12, 0x40), dropped(DropReason::bad_l4_header)},
      {"TCP data offset 0", set_l4(tcp, 12, 0x00), dropped(DropReason::bad_l4_header)},
      {"TCP data offset beyond payload", set_l4(tcp, 12, 0xf0), dropped(DropReason::bad_l4_header)},
      {"TCP data offset 7 = whole segment", set_l4(tcp, 12, 0x70), {.payload_len = 0}},
      {"TCP header cut at 19 bytes", cut_l4_v4(tcp, 19), dropped(DropReason::bad_l4_header)},
      {"TCP header cut at 0 bytes", cut_l4_v4(tcp, 0), dropped(DropReason::bad_l4_header)},
      {"UDP length 7", set_l4(udp, 5, 7), dropped(DropReason::bad_l4_header)},
      {"UDP length 0", set_l4(udp, 5, 0), dropped(DropReason::bad_l4_header)},
      {"UDP length beyond IP payload", set_l4(udp, 5, 17), dropped(DropReason::bad_l4_header)},
      {"UDP length shorter than IP payload", set_l4(udp, 5, 12), {.payload_len = 4}},
      {"UDP length exactly 8", set_l4(udp, 5, 8), {.payload_len = 0}},
      {"IPv6 UDP length beyond payload", set_l4(udp6, 5, 17), dropped(DropReason::bad_l4_header)},
      {"UDP header cut at 7 bytes", cut_l4_v4(udp, 7), dropped(DropReason::bad_l4_header)},
      {"ICMP cut at 7 bytes", cut_l4_v4(build_frame(v4(kProtoIcmp)), 7),
       dropped(DropReason::bad_l4_header)},
  };
}

std::vector<Case> icmp_error_cases() {
  const Bytes tcp =
      build_frame(with(v4(kProtoTcp, 40001, 443), [](FrameSpec& s) { s.payload = payload(30); }));
  const Bytes udp = build_frame(with(v4(kProtoUdp, 5000, 53), [](FrameSpec& s) {
    s.payload = payload(30);
    s.vlans = {5};
  }));
  const Bytes ping = build_frame(with(v4(kProtoIcmp), [](FrameSpec& s) { s.icmp_id = 321; }));
  const Bytes tcp_frag2 = at(test::fragment_ipv4(tcp, 24), 1);
  FrameSpec e4 = v4(kProtoIcmp);
  e4.src = "198.51.100.1";
  e4.dst = "10.0.0.1";
  e4.icmp_type = 3;
  e4.icmp_code = 3;
  auto err4 = [&](uint8_t type, const Bytes& q, size_t max = SIZE_MAX) {
    FrameSpec s = e4;
    s.icmp_type = type;
    return test::build_icmp_error(s, q, max);
  };
  const Bytes tcp6 =
      build_frame(with(v6(kProtoTcp, 40002, 80), [](FrameSpec& s) { s.payload = payload(10); }));
  const Bytes udp6_ext = build_frame(with(v6(kProtoUdp, 6000, 123), [](FrameSpec& s) {
    s.v6_ext = {{0, {1, 2, 0, 0}}, {60, {}}};
  }));
  const Bytes ping6 = build_frame(with(v6(kProtoIcmpv6), [](FrameSpec& s) {
    s.icmp_type = 128;
    s.icmp_id = 77;
  }));
  FrameSpec e6 = v6(kProtoIcmpv6);
  e6.src = "2001:db8::99";
  e6.dst = "fd00::1";
  auto err6 = [&](uint8_t type, const Bytes& q, size_t max = SIZE_MAX) {
    FrameSpec s = e6;
    s.icmp_type = type;
    return test::build_icmp_error(s, q, max);
  };
  const Expect inner_tcp = {.proto = 1,
                            .sport = 0,
                            .dport = 0,
                            .icmp_type = 3,
                            .icmp_is_error = true,
                            .inner_family = 4,
                            .inner_proto = 6,
                            .inner_src = "10.0.0.1",
                            .inner_dst = "192.0.2.7",
                            .inner_sport = 40001,
                            .inner_dport = 443};
  return {
      {"v4 port unreachable quoting TCP", err4(3, tcp), inner_tcp},
      {"v4 quote truncated to IP + 8", err4(3, tcp, 28), inner_tcp},
      {"v4 time exceeded quoting UDP",
       err4(11, udp),
       {.icmp_type = 11,
        .icmp_is_error = true,
        .inner_proto = 17,
        .inner_sport = 5000,
        .inner_dport = 53}},
      {"v4 source quench quoting ICMP echo",
       err4(4, ping),
       {.icmp_is_error = true, .inner_proto = 1, .inner_sport = 321, .inner_dport = 0}},
      {"v4 redirect is an error", err4(5, udp), {.icmp_is_error = true, .inner_sport = 5000}},
      {"v4 parameter problem is an error", err4(12, udp), {.icmp_is_error = true}},
      {"v4 quote of a non-first fragment: no inner ports",
       err4(3, tcp_frag2),
       {.icmp_is_error = true, .inner_proto = 6, .inner_sport = 0, .inner_dport = 0}},
      {"v4 quote with IP + 7 bytes", err4(3, tcp, 27), dropped(DropReason::bad_l4_header)},
      {"v4 quote with IP + 4 bytes", err4(3, tcp, 24), dropped(DropReason::bad_l4_header)},
      {"v4 quote with 10 bytes", err4(3, tcp, 10), dropped(DropReason::bad_l4_header)},
      {"v4 empty quote", err4(3, tcp, 0), dropped(DropReason::bad_l4_header)},
      {"v4 error quoting IPv6", err4(3, tcp6), dropped(DropReason::bad_l4_header)},
      {"v4 error in a first fragment, quote cut short",
       at(test::fragment_ipv4(err4(3, tcp), 32), 0), dropped(DropReason::frag_no_l4)},
      {"v4 error in a first fragment, quote whole",
       at(test::fragment_ipv4(err4(3, tcp), 40), 0),
       {.is_fragment = true, .icmp_is_error = true, .inner_sport = 40001}},
      {"v4 error in a first fragment quoting IPv6", at(test::fragment_ipv4(err4(3, tcp6), 48), 0),
       dropped(DropReason::bad_l4_header)},
      {"v4 quote with IHL 4", set_l4(err4(3, tcp), 8, 0x44), dropped(DropReason::bad_l4_header)},
      {"v4 quote IHL beyond the quote", set_l4(err4(3, tcp, 28), 8, 0x47),
       dropped(DropReason::bad_l4_header)},
      {"v6 dest unreachable quoting TCP",
       err6(1, tcp6),
       {.family = 6,
        .proto = 58,
        .icmp_type = 1,
        .icmp_is_error = true,
        .inner_family = 6,
        .inner_proto = 6,
        .inner_src = "fd00::1",
        .inner_dst = "2001:db8::7",
        .inner_sport = 40002,
        .inner_dport = 80}},
      {"v6 quote truncated to IP + 8",
       err6(1, tcp6, 48),
       {.icmp_is_error = true, .inner_sport = 40002}},
      {"v6 packet too big quoting ICMPv6 echo",
       err6(2, ping6),
       {.icmp_type = 2, .icmp_is_error = true, .inner_proto = 58, .inner_sport = 77}},
      {"v6 time exceeded quoting UDP behind ext headers",
       err6(3, udp6_ext),
       {.icmp_is_error = true, .inner_proto = 17, .inner_sport = 6000, .inner_dport = 123}},
      {"v6 parameter problem", err6(4, tcp6), {.icmp_type = 4, .icmp_is_error = true}},
      {"v6 quote with IP + 4 bytes", err6(1, tcp6, 44), dropped(DropReason::bad_l4_header)},
      {"v6 quote with 39 bytes", err6(1, tcp6, 39), dropped(DropReason::bad_l4_header)},
      {"v6 quote cuts the ext-header chain", err6(3, udp6_ext, 48),
       dropped(DropReason::bad_l4_header)},
      {"v6 error quoting IPv4", err6(1, tcp), dropped(DropReason::bad_l4_header)},
      {"v6 echo reply is not an error",
       build_frame(with(v6(kProtoIcmpv6),
                        [](FrameSpec& s) {
                          s.icmp_type = 129;
                          s.icmp_id = 5;
                        })),
       {.sport = 5, .icmp_is_error = false}},
  };
}

// ---- link-scope control: neighbour discovery and MLD ----

// ICMPv6 message of type t with body bytes after the 4-byte checksum word's follower
// (the reserved/flags word is zero), from src to dst with the given hop limit.
FrameSpec icmp6(uint8_t t, Bytes body, uint8_t hop_limit, const char* src, const char* dst) {
  FrameSpec s = v6(kProtoIcmpv6);
  s.icmp_type = t;
  s.icmp_seq = 0;
  s.payload = std::move(body);
  s.ttl = hop_limit;
  s.src = src;
  s.dst = dst;
  return s;
}
Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Case> neighbour_discovery_cases() {
  const Bytes target = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66};
  const Bytes slla = {1, 1, 2, 0, 0, 0, 0, 1};  // source link-layer address option
  const Bytes prefix = cat({3, 4, 64, 0xc0}, Bytes(28, 0));
  const auto ns = icmp6(135, cat(target, slla), 255, "fe80::1", "ff02::1:ff00:66");
  const auto rs = icmp6(133, {}, 255, "fe80::1", "ff02::2");
  const auto ra =
      icmp6(134, cat(cat({0, 0, 0, 0, 0, 0, 0, 0}, prefix), slla), 255, "fe80::fe", "ff02::1");
  const auto na = icmp6(136, target, 255, "2001:db8::66", "fe80::1");
  const auto redirect = icmp6(137, cat(target, target), 255, "fe80::fe", "2001:db8::5");
  // The reported bypass: a 1200-byte "NS" that a router forwards, both ways.
  const auto exfil = icmp6(135, payload(1200), 64, "fd00::1", "2001:db8::66");
  const Expect ndp = {.kind = FrameKind::ndp, .family = 6, .proto = 58};
  auto icmp_ip = [](uint8_t type) {
    return Expect{.kind = FrameKind::ip, .family = 6, .proto = 58, .sport = 0, .icmp_type = type};
  };
  auto mod = [](FrameSpec s, auto f) {
    f(s);
    return build_frame(s);
  };
  return {
      {"NS built like a host does", test::build_ndp_ns("fe80::1", "fe80::2"), ndp},
      {"NS with target and SLLA option",
       build_frame(ns),
       {.kind = FrameKind::ndp, .icmp_type = 135}},
      {"NS from :: (duplicate address detection)", mod(ns, [](FrameSpec& s) { s.src = "::"; }),
       ndp},
      {"NS unicast to a global address", mod(ns, [](FrameSpec& s) { s.dst = "2001:db8::66"; }),
       ndp},
      {"RS, fixed part only", build_frame(rs), ndp},
      {"RA with prefix and SLLA options", build_frame(ra), ndp},
      {"NA", build_frame(na), ndp},
      {"redirect", build_frame(redirect), ndp},
      {"NS in QinQ",
       mod(ns,
           [](FrameSpec& s) {
             s.vlans = {3, 4};
           }),
       {.kind = FrameKind::ndp, .vlan = (3u << 12) | 4u}},
      {"1200-byte NS, hop limit 64, to a global address", build_frame(exfil), icmp_ip(135)},
      {"NS hop limit 254 (was forwarded)", mod(ns, [](FrameSpec& s) { s.ttl = 254; }),
       icmp_ip(135)},
      {"NS hop limit 1", mod(ns, [](FrameSpec& s) { s.ttl = 1; }), icmp_ip(135)},
      {"RS hop limit 64", mod(rs, [](FrameSpec& s) { s.ttl = 64; }), icmp_ip(133)},
      {"RA hop limit 0", mod(ra, [](FrameSpec& s) { s.ttl = 0; }), icmp_ip(134)},
      {"NA hop limit 128", mod(na, [](FrameSpec& s) { s.ttl = 128; }), icmp_ip(136)},
      {"redirect hop limit 64", mod(redirect, [](FrameSpec& s) { s.ttl = 64; }), icmp_ip(137)},
      {"NS code 1", mod(ns, [](FrameSpec& s) { s.icmp_code = 1; }), icmp_ip(135)},
      {"RA code 255", mod(ra, [](FrameSpec& s) { s.icmp_code = 255; }), icmp_ip(134)},
      {"NS behind a destination options header",
       mod(ns,
           [](FrameSpec& s) {
             s.v6_ext = {{60, {}}};
           }),
       icmp_ip(135)},
      {"NS behind a hop-by-hop router alert",
       mod(ns,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 2, 0, 0}}};
           }),
       icmp_ip(135)},
      {"NS behind a routing header with segments left 0",
       mod(ns,
           [](FrameSpec& s) {
             s.v6_ext = {{43, {4, 0}}};
           }),
       icmp_ip(135)},
      {"NS as an atomic fragment",
       mod(ns,
           [](FrameSpec& s) {
             s.v6_ext = {{44, {0, 0, 0, 0, 0, 1}}};
           }),
       {.kind = FrameKind::ip, .proto = 58, .is_fragment = false, .icmp_type = 135}},
      {"NS first fragment",
       at(test::fragment_ipv6(build_frame(ns), 16), 0),
       {.kind = FrameKind::ip, .is_fragment = true, .icmp_type = 135}},
      {"NS last fragment",
       test::fragment_ipv6(build_frame(ns), 16).back(),
       {.kind = FrameKind::ip, .has_l4 = false, .is_fragment = true}},
      {"NS without the target (8 bytes)", mod(ns, [](FrameSpec& s) { s.payload.clear(); }),
       icmp_ip(135)},
      {"NS with 20 bytes", mod(ns, [](FrameSpec& s) { s.payload = Bytes(12, 0); }), icmp_ip(135)},
      {"RA shorter than 16 bytes", mod(ra, [](FrameSpec& s) { s.payload = Bytes(7, 0); }),
       icmp_ip(134)},
      {"NA shorter than 24 bytes", mod(na, [](FrameSpec& s) { s.payload.resize(15); }),
       icmp_ip(136)},
      {"redirect shorter than 40 bytes", mod(redirect, [](FrameSpec& s) { s.payload.resize(31); }),
       icmp_ip(137)},
      {"NS option of length 0",
       mod(ns,
           [&](FrameSpec& s) {
             s.payload = cat(target, {1, 0});
           }),
       icmp_ip(135)},
      {"NS option running past the message",
       mod(ns,
           [&](FrameSpec& s) {
             s.payload = cat(target, {1, 2, 0, 0, 0, 0, 0, 0});
           }),
       icmp_ip(135)},
      {"NS with one stray byte after its options",
       mod(ns, [&](FrameSpec& s) { s.payload = cat(cat(target, slla), {1}); }), icmp_ip(135)},
      {"NS option length counted in the Ethernet padding",
       test::pad_ethernet(
           build_frame(icmp6(133, {1, 2, 0, 0, 0, 0, 0, 0}, 255, "fe80::1", "ff02::2")), 120),
       icmp_ip(133)},
      {"ICMPv6 echo with hop limit 255 stays ip",
       mod(ns, [](FrameSpec& s) { s.icmp_type = 128; }),
       {.kind = FrameKind::ip, .icmp_type = 128}},
  };
}

std::vector<Case> mld_cases() {
  const test::Ipv6Ext alert = {0, {5, 2, 0, 0, 1, 0}};  // Router Alert (MLD) + PadN
  const Bytes record = {4, 0, 0, 0, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb};
  auto mld = [&](uint8_t t, Bytes body, const char* src, const char* dst) {
    FrameSpec s = icmp6(t, std::move(body), 1, src, dst);
    s.v6_ext = {alert};
    return s;
  };
  const Bytes group = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3};
  const auto report2 = mld(143, record, "fe80::223:55ff:fe9c:7326", "ff02::16");
  auto report2_with_count = report2;
  report2_with_count.icmp_seq = 1;  // number of group records
  const auto query = mld(130, cat(group, {0, 0, 0, 0}), "fe80::fe", "ff02::1");
  const auto report1 = mld(131, group, "fe80::1", "ff02::1:3");
  const auto done = mld(132, group, "fe80::1", "ff02::2");
  const Expect link = {.kind = FrameKind::ndp, .family = 6, .proto = 58};
  auto icmp_ip = [](uint8_t type) {
    return Expect{.kind = FrameKind::ip, .family = 6, .proto = 58, .icmp_type = type};
  };
  auto mod = [](FrameSpec s, auto f) {
    f(s);
    return build_frame(s);
  };
  return {
      {"MLDv2 report", build_frame(report2_with_count), {.kind = FrameKind::ndp, .icmp_type = 143}},
      {"MLDv2 report from ::", mod(report2, [](FrameSpec& s) { s.src = "::"; }), link},
      {"MLDv2 report with no group record", mod(report2, [](FrameSpec& s) { s.payload.clear(); }),
       link},
      {"MLDv2 query", build_frame(query), link},
      {"MLDv1 general query", mod(query, [](FrameSpec& s) { s.payload.resize(16); }), link},
      {"MLDv1 report", build_frame(report1), link},
      {"MLDv1 done", build_frame(done), link},
      {"MLD in a VLAN",
       mod(report1, [](FrameSpec& s) { s.vlans = {12}; }),
       {.kind = FrameKind::ndp, .vlan = 12}},
      {"MLD router alert padded with Pad1",
       mod(done,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 2, 0, 0}}};
           }),
       link},
      {"MLDv1 report from ::", mod(report1, [](FrameSpec& s) { s.src = "::"; }), icmp_ip(131)},
      {"MLD from a global source", mod(report2, [](FrameSpec& s) { s.src = "2001:db8::1"; }),
       icmp_ip(143)},
      {"MLD from a ULA source", mod(query, [](FrameSpec& s) { s.src = "fd00::1"; }), icmp_ip(130)},
      {"MLD from fec0::/10 (not link-local)", mod(done, [](FrameSpec& s) { s.src = "fec0::1"; }),
       icmp_ip(132)},
      {"MLD from febf:: (last of fe80::/10)", mod(done, [](FrameSpec& s) { s.src = "febf::1"; }),
       link},
      {"MLD to a site-scope group", mod(report1, [](FrameSpec& s) { s.dst = "ff05::1:3"; }),
       icmp_ip(131)},
      {"MLD to a unicast address", mod(query, [](FrameSpec& s) { s.dst = "fe80::2"; }),
       icmp_ip(130)},
      {"MLD to a global unicast address",
       mod(report2, [](FrameSpec& s) { s.dst = "2001:db8::66"; }), icmp_ip(143)},
      {"MLD hop limit 2", mod(report2, [](FrameSpec& s) { s.ttl = 2; }), icmp_ip(143)},
      {"MLD hop limit 255", mod(report1, [](FrameSpec& s) { s.ttl = 255; }), icmp_ip(131)},
      {"MLD hop limit 0", mod(report1, [](FrameSpec& s) { s.ttl = 0; }), icmp_ip(131)},
      {"MLD code 1", mod(report2, [](FrameSpec& s) { s.icmp_code = 1; }), icmp_ip(143)},
      {"MLD without hop-by-hop", mod(report2, [](FrameSpec& s) { s.v6_ext.clear(); }),
       icmp_ip(143)},
      {"MLD hop-by-hop without router alert",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {1, 2, 0, 0}}};
           }),
       icmp_ip(143)},
      {"MLD router alert for RSVP (value 1)",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 2, 0, 1}}};
           }),
       icmp_ip(143)},
      {"MLD router alert of length 4",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 4, 0, 0, 0, 0}}};
           }),
       icmp_ip(143)},
      {"MLD two router alerts",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 2, 0, 0, 5, 2, 0, 0, 1, 0}}};
           }),
       icmp_ip(143)},
      {"MLD hop-by-hop with another option besides the alert",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{0, {5, 2, 0, 0, 0x1e, 4, 'l', 'e', 'a', 'k'}}};
           }),
       icmp_ip(143)},
      {"MLD with a destination options header after hop-by-hop",
       mod(report2,
           [&](FrameSpec& s) {
             s.v6_ext = {alert, {60, {}}};
           }),
       icmp_ip(143)},
      {"MLD with a destination options header instead of hop-by-hop",
       mod(report2,
           [](FrameSpec& s) {
             s.v6_ext = {{60, {5, 2, 0, 0}}};
           }),
       icmp_ip(143)},
      {"MLD atomic fragment",
       mod(report2,
           [&](FrameSpec& s) {
             s.v6_ext = {alert, {44, {0, 0, 0, 0, 0, 1}}};
           }),
       icmp_ip(143)},
      {"MLDv1 report shorter than 24 bytes",
       mod(report1, [](FrameSpec& s) { s.payload.resize(8); }), icmp_ip(131)},
      {"MLD to ff02:: with NS type 135 stays ip (hop limit 1)",
       mod(report1, [](FrameSpec& s) { s.icmp_type = 135; }), icmp_ip(135)},
  };
}

void run_table(const std::vector<Case>& cases) {
  for (const Case& c : cases) check(c);
}

TEST(Parse, Basics) {
  run_table(basic_cases());
}
TEST(Parse, Ipv4Header) {
  run_table(ipv4_header_cases());
}
// The NIC's verdict on the IPv4 header checksum (RX offload) replaces the sum; every other
// check still runs.
TEST(Parse, Ipv4ChecksumOffload) {
  const Bytes f = build_frame(
      with(v4(kProtoUdp, 1, 2), [](FrameSpec& s) { s.payload = payload(4); }));
  Bytes bad_sum = f;
  bad_sum[test::l3_offset_of(f) + 10] ^= 0x01;
  const struct {
    const char* desc;
    Bytes frame;
    bool nic_good;
    ParseStatus want;
    DropReason reason;
  } cases[] = {
      {"good sum, no offload", f, false, ParseStatus::ok, DropReason::truncated},
      {"bad sum, no offload", bad_sum, false, ParseStatus::drop, DropReason::bad_ipv4_checksum},
      {"good sum, NIC says good", f, true, ParseStatus::ok, DropReason::truncated},
      {"bad sum, NIC says good: the NIC is trusted", bad_sum, true, ParseStatus::ok,
       DropReason::truncated},
      {"NIC says good, version 5 still dropped", set_l3(f, 0, 0x55), true, ParseStatus::drop,
       DropReason::bad_ipv4_header},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    std::unique_ptr<uint8_t[]> copy(new uint8_t[c.frame.size()]);
    std::memcpy(copy.get(), c.frame.data(), c.frame.size());
    ParsedPacket p;
    const ParseResult r = parse_frame(copy.get(), c.frame.size(), &p, c.nic_good);
    ASSERT_EQ(r.status, c.want);
    if (c.want == ParseStatus::drop) {
      EXPECT_STREQ(drop_reason_name(r.reason), drop_reason_name(c.reason));
    }
  }
}

TEST(Parse, Fragments) {
  run_table(fragment_cases());
}
TEST(Parse, Ipv6ExtensionHeaders) {
  run_table(ipv6_ext_cases());
}
TEST(Parse, TunnelsAndL4) {
  run_table(tunnel_and_l4_cases());
}
TEST(Parse, IcmpErrors) {
  run_table(icmp_error_cases());
}
TEST(Parse, SourceRouting) {
  run_table(source_route_cases());
}
TEST(Parse, NeighbourDiscovery) {
  run_table(neighbour_discovery_cases());
}
TEST(Parse, Mld) {
  run_table(mld_cases());
}

// Every prefix of a valid frame is dropped (never parsed past its end); the full frame
// parses. ASan checks that no byte past the prefix is read.
TEST(Parse, TruncatedAtEveryLength) {
  struct Full {
    const char* desc;
    Bytes frame;
  };
  const std::vector<Full> frames = {
      {"v4 TCP in QinQ", build_frame(with(v4(kProtoTcp),
                                          [](FrameSpec& s) {
                                            s.vlans = {1, 2};
                                            s.tcp_options = kTcpSynOptions;
                                            s.ip_options = {1, 1, 7, 7, 4, 0, 0, 0, 0};
                                            s.payload = payload(9);
                                          }))},
      {"v6 UDP behind ext headers",
       build_frame(
           with(v6(kProtoUdp),
                [](FrameSpec& s) {
                  s.v6_ext = {{0, {}}, {60, {1, 4, 0, 0, 0, 0}}, {43, {2, 0}}, {51, Bytes(10, 0)}};
                  s.payload = payload(5);
                }))},
      {"v4 ICMP error quoting TCP",
       test::build_icmp_error(with(v4(kProtoIcmp), [](FrameSpec& s) { s.icmp_type = 3; }),
                              build_frame(v4(kProtoTcp)))},
      {"v6 ICMP error quoting UDP",
       test::build_icmp_error(with(v6(kProtoIcmpv6), [](FrameSpec& s) { s.icmp_type = 1; }),
                              build_frame(v6(kProtoUdp)))},
      {"v6 first fragment",
       at(test::fragment_ipv6(
              build_frame(with(v6(kProtoTcp), [](FrameSpec& s) { s.payload = payload(64); })), 32),
          0)},
      {"ARP", test::build_arp_request("10.0.0.1", "10.0.0.2")},
      {"NDP NS", test::build_ndp_ns("fe80::1", "fe80::2")},
      {"MLDv2 report", build_frame(with(v6(kProtoIcmpv6),
                                        [](FrameSpec& s) {
                                          s.icmp_type = 143;
                                          s.ttl = 1;
                                          s.src = "fe80::1";
                                          s.dst = "ff02::16";
                                          s.v6_ext = {{0, {5, 2, 0, 0, 1, 0}}};
                                        }))},
  };
  for (const Full& full : frames) {
    ParsedPacket p;
    ASSERT_EQ(parse_exact(full.frame, &p).status, ParseStatus::ok) << full.desc;
    for (size_t n = 0; n < full.frame.size(); ++n) {
      const ParseResult r = parse_exact(truncate_to(full.frame, n), &p);
      EXPECT_EQ(r.status, ParseStatus::drop) << full.desc << " cut to " << n;
      EXPECT_LT(static_cast<unsigned>(r.reason), kDropReasonCount);
    }
  }
}

TEST(Parse, InetChecksum) {
  const uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                         0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(inet_checksum(hdr, sizeof hdr), 0xb861);  // the classic Wikipedia example
  uint8_t odd[] = {0x01, 0x02, 0x03};
  EXPECT_EQ(inet_checksum(odd, 3), static_cast<uint16_t>(~(0x0102 + 0x0300)));
  EXPECT_EQ(inet_checksum(nullptr, 0), 0xffff);
  EXPECT_EQ(inet_checksum(odd, 0, 0x1fffe), static_cast<uint16_t>(~0xffff));  // folds initial
}

// ---- public captures ----

// Reads every frame of ../shared/pcaps/NAME; false when the file is missing.
bool read_pcap(const std::string& name, std::vector<Bytes>* out) {
  char err[PCAP_ERRBUF_SIZE];
  const std::string path = "../shared/pcaps/" + name;
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) return false;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) out->emplace_back(d, d + h->caplen);
  pcap_close(p);
  return true;
}

// Expectation for frame i of a capture.
struct PcapCase {
  size_t index;
  Expect want;
};

void check_pcap(const std::string& name, size_t frames, const std::vector<PcapCase>& cases) {
  std::vector<Bytes> f;
  if (!read_pcap(name, &f)) GTEST_SKIP() << "missing ../shared/pcaps/" << name;
  ASSERT_EQ(f.size(), frames);
  ParsedPacket p;
  for (const Bytes& b : f) parse_exact(b, &p);  // every frame: no crash, no over-read
  for (const PcapCase& c : cases) {
    check({name + " frame " + std::to_string(c.index + 1), f.at(c.index), c.want});
  }
}

TEST(ParsePcap, VlanTinyFirstFragment) {
  check_pcap("defrag_bug-6887-defrag-eth-vlan-ipv4-tcp-syn_frag-eth-vlan-ip-tcp-syn.pcap", 3,
             {{0, dropped(DropReason::frag_no_l4)},
              {1,
               {.vlan = 6,
                .proto = 6,
                .src = "1.1.1.1",
                .sport = 0,
                .has_l4 = false,
                .is_fragment = true,
                .more_fragments = true,
                .frag_offset = 8,
                .frag_id = 1}},
              {2,
               {.vlan = 6,
                .proto = 6,
                .has_l4 = false,
                .is_fragment = true,
                .more_fragments = false,
                .frag_offset = 16,
                .frag_id = 1}}});
}

TEST(ParsePcap, Ipv4IcmpFragments) {
  check_pcap("exception-policy-defrag-01_ipv4frags.pcap", 3,
             {{0,
               {.vlan = 0,
                .proto = 1,
                .src = "2.1.1.2",
                .sport = 5058,
                .is_fragment = true,
                .more_fragments = true,
                .frag_offset = 0,
                .frag_id = 46544,
                .frag_payload_len = 976,
                .icmp_type = 8}},
              {1,
               {.proto = 1,
                .sport = 0,
                .has_l4 = false,
                .is_fragment = true,
                .more_fragments = false,
                .frag_offset = 976,
                .frag_id = 46544}},
              {2, {.proto = 1, .sport = 5058, .is_fragment = false, .icmp_type = 0}}});
}

TEST(ParsePcap, Ipv6MalformedFragments) {
  const Expect ndp = {.kind = FrameKind::ndp};
  check_pcap("ipv6-evasion_ipv6-malformed-fragments-1_frag-1.pcap", 13,
             {{0, {.family = 6, .proto = 58, .sport = 64206, .is_fragment = false}},
              {2, ndp},
              {3, {.kind = FrameKind::ndp, .proto = 58, .icmp_type = 143}},  // MLDv2 report
              {4,
               {.proto = 58,
                .sport = 64206,
                .is_fragment = true,
                .more_fragments = true,
                .frag_offset = 0,
                .frag_id = 1,
                .frag_payload_len = 408,
                .icmp_type = 128}},
              {5, {.proto = 58, .has_l4 = false, .is_fragment = true, .frag_offset = 408}},
              {7, {.has_l4 = false, .is_fragment = true, .frag_offset = 408}},
              {6, {.kind = FrameKind::ndp, .icmp_type = 143}},
              {8, {.has_l4 = false, .is_fragment = true, .frag_offset = 808}},
              {11, ndp},
              {12, ndp}});
}

}  // namespace
}  // namespace egw
