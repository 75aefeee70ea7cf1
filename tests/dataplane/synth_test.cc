// Unit tests for dataplane/synth.cc (DNS REFUSED, held TCP data, TFO payload strip):
// tables of real frames in, the synthesized or rewritten frame parsed back, every field
// and checksum checked (checksums with DPDK's own helpers, not egw's).
// rte_ip.h's checksum verify helpers are experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API 1

#include "dataplane/synth.h"

#include <gtest/gtest.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/dns_msg.h"
#include "tests/support/frames.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

using test::build_frame;
using test::dns_cat;
using test::dns_question;
using test::FrameSpec;
using Bytes = std::vector<uint8_t>;

struct MbufFree {
  void operator()(rte_mbuf* m) const { rte_pktmbuf_free(m); }
};
using MbufPtr = std::unique_ptr<rte_mbuf, MbufFree>;

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b.at(off) << 8 | b.at(off + 1));
}
uint32_t get32(const Bytes& b, size_t off) {
  return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}
Bytes slice(const Bytes& b, size_t off, size_t n) {
  return Bytes(b.begin() + static_cast<std::ptrdiff_t>(off),
               b.begin() + static_cast<std::ptrdiff_t>(off + n));
}

// The bytes of m, a single segment.
Bytes bytes_of(const rte_mbuf* m) {
  EXPECT_EQ(m->nb_segs, 1);
  return test::bytes_of_first(m);
}

ParsedPacket parse_ok(const Bytes& f) {
  ParsedPacket p;
  const ParseResult r = parse_frame(f.data(), f.size(), &p);
  EXPECT_EQ(r.status, ParseStatus::ok) << drop_reason_name(r.reason);
  return p;
}

// IPv4 header checksum and TCP/UDP checksum of a parsed frame, with DPDK's helpers
// (the IPv6 one only knows headers without extensions: those are summed here).
bool checksums_ok(const Bytes& f, const ParsedPacket& p) {
  const uint8_t* ip = f.data() + p.l3_offset;
  const uint8_t* l4 = f.data() + p.l4_offset;
  if (p.l34.family == 4) {
    const size_t hl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    return rte_raw_cksum(ip, hl) == 0xffff &&
           rte_ipv4_udptcp_cksum_verify(reinterpret_cast<const rte_ipv4_hdr*>(ip), l4) == 0;
  }
  if (p.l4_offset == p.l3_offset + 40) {
    return rte_ipv6_udptcp_cksum_verify(reinterpret_cast<const rte_ipv6_hdr*>(ip), l4) == 0;
  }
  const size_t l4_len = p.l3_offset + p.l3_len - p.l4_offset;
  const Bytes src(p.l34.src, p.l34.src + 16), dst(p.l34.dst, p.l34.dst + 16);
  const uint32_t ph = test::detail::pseudo_sum(6, src, dst, p.l34.proto, l4_len);
  return test::detail::sum16(l4, l4_len, ph) == 0xffff;
}

// Where a frame goes: the resolver or the web server, by family.
struct Server {
  const char* v4;
  const char* v6;
  uint16_t port;
};
const Server kResolver{"192.0.2.53", "2001:db8:53::1", 53};
const Server kWebServer{"198.51.100.7", "2001:db8:443::1", 443};

// A frame from the client (10.1.2.3 or 2001:db8::10, port sport) to `to`.
FrameSpec client_frame(const Server& to, uint8_t proto, uint16_t sport, uint8_t family = 4) {
  FrameSpec s;
  s.family = family;
  s.src = family == 4 ? "10.1.2.3" : "2001:db8::10";
  s.dst = family == 4 ? to.v4 : to.v6;
  s.proto = proto;
  s.sport = sport;
  s.dport = to.port;
  return s;
}

// The same in a case's L2/L3 shape: its family, VLAN tags, IPv4 options, IPv6 extensions.
template <typename Case>
FrameSpec case_frame(const Case& c, const Server& to, uint8_t proto, uint16_t sport) {
  FrameSpec s = client_frame(to, proto, sport, c.family);
  s.vlans = c.vlans;
  s.ip_options = c.ip_options;
  s.v6_ext = c.v6_ext;
  return s;
}

// The fresh IP header of a synthesized frame (no options, no extension headers): its
// family, protocol, length (`l4_len` bytes after it), hop limit; not a fragment.
void expect_fresh_ip(const Bytes& a, const ParsedPacket& p, uint8_t family, uint8_t proto,
                     size_t l4_len, uint8_t ttl) {
  const size_t l3 = p.l3_offset;
  EXPECT_EQ(p.l34.family, family);
  EXPECT_EQ(p.l34.proto, proto);
  EXPECT_FALSE(p.is_fragment);
  if (family == 4) {
    EXPECT_EQ(a[l3], 0x45);
    EXPECT_EQ(get16(a, l3 + 2), 20 + l4_len);
    EXPECT_EQ(a[l3 + 8], ttl);
    EXPECT_EQ(p.l4_offset, l3 + 20);
  } else {
    EXPECT_EQ(get16(a, l3 + 4), l4_len);
    EXPECT_EQ(a[l3 + 6], proto);
    EXPECT_EQ(a[l3 + 7], ttl);
    EXPECT_EQ(p.l4_offset, l3 + 40);
  }
}

class SynthTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("synth_test", 255)); }
  static void TearDownTestSuite() { suite_.tear_down(); }
  void SetUp() override { free_ = rte_mempool_avail_count(suite_.pool); }
  void TearDown() override {
    EXPECT_EQ(rte_mempool_avail_count(suite_.pool), free_) << "mbuf leak";
  }

  static MbufPtr mbuf_of(const Bytes& f) { return MbufPtr(test::mbuf_of(suite_.pool, f)); }

  static inline test::SuiteState suite_;
  unsigned free_ = 0;
};

// ---- synth_dns_refused ----

// A DNS message: header (id, flag bytes, question and additional counts) and raw body.
Bytes dns_msg(uint16_t id, uint8_t f2, uint8_t f3, uint16_t qd, uint16_t ar, const Bytes& body) {
  return dns_cat({test::dns_header(static_cast<uint16_t>(f2 << 8 | f3), qd, 0, 0, ar, id), body});
}
// EDNS OPT pseudo-RR (root name, type 41, 1232-byte UDP payload), for the additional section.
const Bytes kOpt = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
const Bytes kWww = dns_question("www.example.com", 1);

struct DnsCase {
  std::string desc;
  uint8_t family = 4;
  std::vector<uint16_t> vlans;
  Bytes dns;     // the query's UDP payload
  Bytes want_q;  // the question the answer must carry; empty: no answer (nullptr)
  uint8_t proto = 17;
  std::vector<uint8_t> ip_options = {};
  std::vector<test::Ipv6Ext> v6_ext = {};
};

std::vector<DnsCase> dns_cases() {
  const std::string l63(63, 'a');
  const std::string l63_3 = l63 + "." + l63 + "." + l63 + ".";
  const Bytes max_name = dns_question(l63_3 + std::string(61, 'b'), 1);  // 255 bytes
  const Bytes long_name = dns_question(l63_3 + std::string(62, 'b'), 1);
  const Bytes aaaa = dns_question("ipv6.example.org", 28);
  return {
      {"v4, RD, EDNS not echoed",
       4,
       {},
       dns_msg(0x1234, 0x01, 0x20, 1, 1, dns_cat({kWww, kOpt})),
       kWww},
      {"v4 VLAN, RD clear", 4, {100}, dns_msg(0xbeef, 0x00, 0x00, 1, 0, kWww), kWww},
      {"v4 QinQ", 4, {100, 200}, dns_msg(1, 0x01, 0, 1, 0, kWww), kWww},
      {"v4 with IP options: answer without",
       4,
       {},
       dns_msg(2, 0x01, 0, 1, 0, kWww),
       kWww,
       17,
       {0x94, 0x04, 0, 0}},
      {"v6 AAAA", 6, {}, dns_msg(0xffff, 0x01, 0, 1, 1, dns_cat({aaaa, kOpt})), aaaa},
      {"v6 VLAN", 6, {7}, dns_msg(3, 0x01, 0, 1, 0, aaaa), aaaa},
      {"v6 QinQ", 6, {7, 4095}, dns_msg(4, 0x01, 0, 1, 0, aaaa), aaaa},
      {"v6 with a destination options header: plain answer",
       6,
       {},
       dns_msg(5, 0x01, 0, 1, 0, aaaa),
       aaaa,
       17,
       {},
       {{60, {1, 4, 0, 0, 0, 0}}}},
      {"root name, NS", 4, {}, dns_msg(6, 0x00, 0, 1, 0, dns_question("", 2)), dns_question("", 2)},
      {"opcode NOTIFY copied, AA/TC/AD/CD cleared",
       4,
       {},
       dns_msg(7, 0x27, 0x30, 1, 0, kWww),
       kWww},
      {"two questions: the first copied",
       4,
       {},
       dns_msg(8, 0x01, 0, 2, 0, dns_cat({kWww, dns_question("x", 16)})),
       kWww},
      {"255-byte name", 6, {}, dns_msg(9, 0x01, 0, 1, 0, max_name), max_name},
      {"odd lengths, CH class",
       4,
       {},
       dns_msg(10, 0x01, 0, 1, 0, dns_question("ab", 16, 3)),
       dns_question("ab", 16, 3)},
      // Refused to answer.
      {"compression pointer at the name start",
       4,
       {},
       dns_msg(11, 0x01, 0, 1, 0, {0xc0, 0x0c, 0, 1, 0, 1}),
       {}},
      {"compression pointer after a label",
       6,
       {},
       dns_msg(12, 0x01, 0, 1, 0, {3, 'w', 'w', 'w', 0xc0, 0x0c, 0, 1, 0, 1}),
       {}},
      // Read as label lengths, these would reach a root label in the padding after them.
      {"compression pointer, followed by 200 bytes",
       4,
       {},
       dns_msg(11, 0x01, 0, 1, 0, dns_cat({{0xc0, 0x0c}, Bytes(200, 0)})),
       {}},
      {"extended label type 0x40, followed by 80 bytes",
       6,
       {},
       dns_msg(13, 0x01, 0, 1, 0, dns_cat({{0x41}, Bytes(80, 0)})),
       {}},
      {"extended label type 0x40",
       4,
       {},
       dns_msg(13, 0x01, 0, 1, 0, {0x41, 'x', 0, 0, 1, 0, 1}),
       {}},
      {"reserved label type 0x80",
       4,
       {},
       dns_msg(13, 0x01, 0, 1, 0, {0x81, 'x', 0, 0, 1, 0, 1}),
       {}},
      {"256-byte name", 4, {}, dns_msg(14, 0x01, 0, 1, 0, long_name), {}},
      {"header only", 4, {}, dns_msg(15, 0x01, 0, 1, 0, {}), {}},
      {"shorter than a header", 4, {}, Bytes{0, 1, 1, 0, 0}, {}},
      {"empty payload", 6, {}, {}, {}},
      {"cut inside a label", 4, {}, dns_msg(16, 0x01, 0, 1, 0, slice(kWww, 0, 6)), {}},
      {"cut before the root label", 4, {}, dns_msg(16, 0x01, 0, 1, 0, slice(kWww, 0, 16)), {}},
      {"qclass cut short", 6, {}, dns_msg(17, 0x01, 0, 1, 0, slice(kWww, 0, kWww.size() - 1)), {}},
      {"a response (QR set)", 4, {}, dns_msg(18, 0x81, 0x80, 1, 0, kWww), {}},
      {"no question (QDCOUNT 0)", 4, {}, dns_msg(19, 0x01, 0, 0, 0, kWww), {}},
      {"TCP, not UDP", 4, {}, dns_msg(20, 0x01, 0, 1, 0, kWww), {}, 6},
  };
}

TEST_F(SynthTest, DnsRefused) {
  for (const DnsCase& c : dns_cases()) {
    SCOPED_TRACE(c.desc);
    FrameSpec s = case_frame(c, kResolver, c.proto, 40123);
    s.tcp_flags = kTcpAck | kTcpPsh;
    s.payload = c.dns;
    s.ttl = 17;
    const Bytes qf = test::pad_ethernet(build_frame(s));
    const ParsedPacket q = parse_ok(qf);
    MbufPtr m(synth_dns_refused(suite_.pool, qf.data(), q));
    if (c.want_q.empty()) {
      EXPECT_EQ(m, nullptr);
      continue;
    }
    ASSERT_NE(m, nullptr);
    const Bytes a = bytes_of(m.get());
    const ParsedPacket p = parse_ok(a);
    // L2: MACs swapped, tags and ethertype kept.
    ASSERT_EQ(p.l3_offset, q.l3_offset);
    EXPECT_EQ(slice(a, 0, 6), slice(qf, 6, 6));
    EXPECT_EQ(slice(a, 6, 6), slice(qf, 0, 6));
    EXPECT_EQ(slice(a, 12, q.l3_offset - 12), slice(qf, 12, q.l3_offset - 12));
    EXPECT_EQ(p.vlan, q.vlan);
    // L3: addresses swapped, a fresh header.
    EXPECT_EQ(p.kind, FrameKind::ip);
    EXPECT_EQ(std::memcmp(p.l34.src, q.l34.dst, 16), 0);
    EXPECT_EQ(std::memcmp(p.l34.dst, q.l34.src, 16), 0);
    const size_t l3 = p.l3_offset;
    const size_t udp_len = 8 + 12 + c.want_q.size();
    expect_fresh_ip(a, p, c.family, kProtoUdp, udp_len, 64);
    if (c.family == 4) {
      EXPECT_EQ(a[l3 + 1], 0);
      EXPECT_EQ(get16(a, l3 + 6), 0x4000);  // DF
    } else {
      EXPECT_EQ(get32(a, l3), 0x60000000u);
    }
    // UDP: ports swapped, length, checksum present and right.
    EXPECT_EQ(p.l34.sport, 53);
    EXPECT_EQ(p.l34.dport, 40123);
    EXPECT_EQ(get16(a, p.l4_offset + 4), udp_len);
    EXPECT_NE(get16(a, p.l4_offset + 6), 0);
    EXPECT_TRUE(checksums_ok(a, p));
    EXPECT_EQ(a.size(), p.payload_offset + p.payload_len);
    // DNS.
    ASSERT_EQ(p.payload_len, 12 + c.want_q.size());
    const Bytes d = slice(a, p.payload_offset, p.payload_len);
    EXPECT_EQ(get16(d, 0), get16(c.dns, 0)) << "id";
    EXPECT_EQ(d[2], 0x80 | (c.dns[2] & 0x79)) << "QR, opcode, RD";
    EXPECT_EQ(d[3], 5) << "RA, Z, AD, CD clear; REFUSED";
    EXPECT_EQ(get16(d, 4), 1);
    EXPECT_EQ(get16(d, 6), 0);
    EXPECT_EQ(get16(d, 8), 0);
    EXPECT_EQ(get16(d, 10), 0);
    EXPECT_EQ(slice(d, 12, d.size() - 12), c.want_q);
  }
}

// A first fragment holds the question: answered from it; a later fragment: no answer.
TEST_F(SynthTest, DnsRefusedFragments) {
  FrameSpec s = client_frame(kResolver, kProtoUdp, 40000);
  s.payload = dns_msg(1, 0x01, 0, 1, 0, dns_cat({kWww, Bytes(200, 0)}));
  const auto frags = test::fragment_ipv4(build_frame(s), 96);
  ASSERT_GE(frags.size(), 2u);
  const ParsedPacket first = parse_ok(frags[0]);
  MbufPtr m(synth_dns_refused(suite_.pool, frags[0].data(), first));
  ASSERT_NE(m, nullptr);
  const Bytes a = bytes_of(m.get());
  EXPECT_EQ(slice(a, parse_ok(a).payload_offset + 12, kWww.size()), kWww);
  const ParsedPacket second = parse_ok(frags[1]);
  EXPECT_EQ(synth_dns_refused(suite_.pool, frags[1].data(), second), nullptr);
}

// ---- synth_tcp_data ----

// Timestamps option with NOP padding, as Linux sends it on every segment.
const std::vector<uint8_t> kTsOpt = {1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78};

constexpr int kFillRoom = -1;   // len: exactly the mbuf's room after the headers
constexpr int kOverRoom = -2;   // len: one byte more
constexpr int kOverIpLen = -3;  // len: 65535, beyond any IP packet with its headers

struct DataCase {
  std::string desc;
  uint8_t family = 4;
  std::vector<uint16_t> vlans;
  std::vector<uint8_t> tcp_options;
  int len;
  bool want = true;
  uint8_t tmpl_flags = kTcpAck;
  bool dont_fragment = true;
  std::vector<uint8_t> ip_options = {};
  std::vector<test::Ipv6Ext> v6_ext = {};
  uint8_t tmpl_proto = 6;
};

std::vector<DataCase> data_cases() {
  return {
      {"v4, timestamps, 1 byte", 4, {}, kTsOpt, 1},
      {"v4, timestamps, 1400 bytes", 4, {}, kTsOpt, 1400},
      {"v4 VLAN, no options, 1400 bytes", 4, {10}, {}, 1400},
      {"v4 QinQ, timestamps, 1 byte, DF clear", 4, {10, 20}, kTsOpt, 1, true, kTcpAck, false},
      {"v4, template FIN|PSH|URG|ACK|CWR: flags ACK|PSH", 4, {}, kTsOpt, 100, true, 0xb9},
      {"v4, template all flags", 4, {}, kTsOpt, 7, true, 0xff},
      {"v4, IP options dropped", 4, {}, kTsOpt, 300, true, kTcpAck, true, {0x94, 0x04, 0, 0}},
      {"v4, exactly the mbuf's room", 4, {}, kTsOpt, kFillRoom},
      {"v4, one byte over the mbuf's room", 4, {}, kTsOpt, kOverRoom, false},
      {"v4, beyond an IP packet", 4, {}, kTsOpt, kOverIpLen, false},
      {"v6, timestamps, 1 byte", 6, {}, kTsOpt, 1},
      {"v6, timestamps, 1400 bytes", 6, {}, kTsOpt, 1400},
      {"v6 VLAN, 1400 bytes", 6, {10}, kTsOpt, 1400},
      {"v6 QinQ, 1400 bytes", 6, {10, 20}, kTsOpt, 1400},
      {"v6, extension header left out",
       6,
       {},
       kTsOpt,
       64,
       true,
       kTcpAck,
       true,
       {},
       {{60, {1, 4, 0, 0, 0, 0}}}},
      {"v6 QinQ, exactly the mbuf's room", 6, {10, 20}, kTsOpt, kFillRoom},
      {"v6 QinQ, one byte over the mbuf's room", 6, {10, 20}, kTsOpt, kOverRoom, false},
      {"UDP template", 4, {}, {}, 10, false, kTcpAck, true, {}, {}, 17},
  };
}

TEST_F(SynthTest, TcpData) {
  for (const DataCase& c : data_cases()) {
    SCOPED_TRACE(c.desc);
    FrameSpec s = case_frame(c, kWebServer, c.tmpl_proto, 51000);
    s.tcp_flags = c.tmpl_flags;
    s.seq = 1000;
    s.ack = 0xabcdef01;
    s.window = 502;
    s.tcp_options = c.tcp_options;
    s.payload = Bytes(10, 0xee);  // the template's own data is not carried
    s.ip_id = 0x4242;
    s.ttl = 57;
    s.dont_fragment = c.dont_fragment;
    Bytes tf = build_frame(s);
    const size_t tl3 = test::l3_offset_of(tf);
    if (c.family == 4) {
      tf[tl3 + 1] = 0x2a;  // DSCP/ECN
      test::fix_ipv4_checksum(tf);
    } else {
      tf[tl3 + 1] = 0xa1;  // traffic class and flow label bits
      tf[tl3 + 3] = 0x5c;
    }
    const ParsedPacket t = parse_ok(tf);

    const size_t hdrs = t.l3_offset + (c.family == 4 ? 20 : 40) + (t.payload_offset - t.l4_offset);
    size_t len = c.len;
    {
      MbufPtr probe(rte_pktmbuf_alloc(suite_.pool));
      const size_t room = rte_pktmbuf_tailroom(probe.get());
      if (c.len == kFillRoom) len = room - hdrs;
      if (c.len == kOverRoom) len = room - hdrs + 1;
      if (c.len == kOverIpLen) len = 65535;
    }
    Bytes payload(len);
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<uint8_t>(i * 7 + 1);
    const uint32_t seq = 0xfffffff0;
    MbufPtr m(
        synth_tcp_data(suite_.pool, tf.data(), t, seq, payload.data(), static_cast<uint16_t>(len)));
    if (!c.want) {
      EXPECT_EQ(m, nullptr);
      continue;
    }
    ASSERT_NE(m, nullptr);
    const Bytes a = bytes_of(m.get());
    const ParsedPacket p = parse_ok(a);
    // L2 as the template's.
    ASSERT_EQ(p.l3_offset, t.l3_offset);
    EXPECT_EQ(slice(a, 0, p.l3_offset), slice(tf, 0, t.l3_offset));
    EXPECT_EQ(p.vlan, t.vlan);
    // L3.
    EXPECT_EQ(std::memcmp(p.l34.src, t.l34.src, 16), 0);
    EXPECT_EQ(std::memcmp(p.l34.dst, t.l34.dst, 16), 0);
    const size_t l3 = p.l3_offset;
    const size_t tcp_hl = t.payload_offset - t.l4_offset;
    expect_fresh_ip(a, p, c.family, kProtoTcp, tcp_hl + len, 57);
    if (c.family == 4) {
      EXPECT_EQ(a[l3 + 1], 0x2a);
      EXPECT_EQ(get16(a, l3 + 4), 0x4242);
      EXPECT_EQ(get16(a, l3 + 6), c.dont_fragment ? 0x4000 : 0);
    } else {
      EXPECT_EQ(get32(a, l3), get32(tf, tl3));
    }
    // TCP: the template's header and options, our seq and flags.
    EXPECT_EQ(p.l34.sport, 51000);
    EXPECT_EQ(p.l34.dport, 443);
    EXPECT_EQ(p.tcp_seq, seq);
    EXPECT_EQ(p.tcp_ack, 0xabcdef01u);
    EXPECT_EQ(p.tcp_window, 502);
    EXPECT_EQ(p.tcp_flags, kTcpAck | kTcpPsh);
    EXPECT_EQ(p.payload_offset - p.l4_offset, tcp_hl);
    EXPECT_EQ(a[p.l4_offset + 12], tf[t.l4_offset + 12]);
    EXPECT_EQ(get16(a, p.l4_offset + 18), 0) << "urgent pointer";
    EXPECT_EQ(slice(a, p.l4_offset + 20, tcp_hl - 20), slice(tf, t.l4_offset + 20, tcp_hl - 20));
    EXPECT_TRUE(checksums_ok(a, p));
    ASSERT_EQ(p.payload_len, len);
    EXPECT_EQ(a.size(), p.payload_offset + len);
    EXPECT_EQ(slice(a, p.payload_offset, len), payload);
  }
}

TEST_F(SynthTest, TcpDataFragmentTemplate) {
  FrameSpec s = client_frame(kWebServer, kProtoTcp, 51000);
  s.tcp_flags = kTcpAck;
  s.payload = Bytes(100, 1);
  const auto frags = test::fragment_ipv4(build_frame(s), 64);
  const ParsedPacket first = parse_ok(frags[0]);
  ASSERT_TRUE(first.is_fragment);
  const uint8_t data[1] = {1};
  EXPECT_EQ(synth_tcp_data(suite_.pool, frags[0].data(), first, 1, data, 1), nullptr);
}

// ---- strip_tcp_payload ----

// TFO: MSS, SACK permitted, window scale, fast open cookie (8 bytes).
const std::vector<uint8_t> kTfoOpts = {2,  4,  0x05, 0xb4, 4, 2, 1, 3, 3, 7,
                                       34, 10, 1,    2,    3, 4, 5, 6, 7, 8};

struct StripCase {
  std::string desc;
  uint8_t family = 4;
  std::vector<uint16_t> vlans;
  size_t payload = 100;
  bool want = true;
  std::vector<uint8_t> ip_options = {};
  std::vector<test::Ipv6Ext> v6_ext = {};
  uint8_t proto = 6;
  bool bad_checksum = false;
  bool tfo_options = true;
};

std::vector<StripCase> strip_cases() {
  return {
      {"v4 SYN, 100 bytes", 4, {}},
      {"v4 VLAN SYN, 100 bytes", 4, {5}},
      {"v4 QinQ SYN, 99 bytes", 4, {5, 6}, 99},
      {"v4 SYN, no options, 1 byte (Ethernet padding trimmed too)",
       4,
       {},
       1,
       true,
       {},
       {},
       6,
       false,
       false},
      {"v4 SYN, 1400 bytes", 4, {}, 1400},
      {"v4 SYN with IP options", 4, {}, 100, true, {0x94, 0x04, 0, 0}},
      {"v4 SYN without data: unchanged", 4, {}, 0},
      {"v6 SYN, 100 bytes", 6, {}},
      {"v6 VLAN SYN, 33 bytes", 6, {5}, 33},
      {"v6 QinQ SYN, 1400 bytes", 6, {5, 6}, 1400},
      {"v6 SYN after a destination options header",
       6,
       {},
       100,
       true,
       {},
       {{60, {1, 4, 0, 0, 0, 0}}}},
      {"v4 UDP", 4, {}, 100, false, {}, {}, 17},
      {"v6 UDP", 6, {}, 100, false, {}, {}, 17},
      {"v4 SYN with a wrong checksum: stays wrong", 4, {}, 100, true, {}, {}, 6, true},
      {"v6 SYN with a wrong checksum: stays wrong", 6, {5}, 77, true, {}, {}, 6, true},
  };
}

TEST_F(SynthTest, StripTcpPayload) {
  for (const StripCase& c : strip_cases()) {
    SCOPED_TRACE(c.desc);
    FrameSpec s = case_frame(c, kWebServer, c.proto, 51000);
    s.tcp_flags = kTcpSyn;
    s.seq = 777;
    if (c.tfo_options) s.tcp_options = kTfoOpts;
    for (size_t i = 0; i < c.payload; ++i) s.payload.push_back(static_cast<uint8_t>(i ^ 0x5a));
    Bytes in = test::pad_ethernet(build_frame(s));
    const ParsedPacket q = parse_ok(in);
    if (c.bad_checksum) in[q.l4_offset + 17] ^= 0x01;
    MbufPtr m = mbuf_of(in);
    const bool ok = strip_tcp_payload(m.get(), q);
    const Bytes a = bytes_of(m.get());
    ASSERT_EQ(ok, c.want);
    if (!c.want) {
      EXPECT_EQ(a, in) << "untouched";
      continue;
    }
    if (c.payload == 0) {
      EXPECT_EQ(a, in) << "untouched";
      continue;
    }
    const ParsedPacket p = parse_ok(a);
    EXPECT_EQ(a.size(), q.payload_offset);
    EXPECT_EQ(p.payload_len, 0);
    EXPECT_EQ(p.payload_offset, q.payload_offset);
    EXPECT_EQ(p.l3_len, q.l3_len - c.payload);
    EXPECT_EQ(p.vlan, q.vlan);
    EXPECT_EQ(p.l34.proto, kProtoTcp);
    EXPECT_EQ(p.tcp_flags, kTcpSyn);
    EXPECT_EQ(p.tcp_seq, 777u);
    EXPECT_EQ(p.tcp_wscale, c.tfo_options ? 7 : 0xff);
    // Everything up to the payload is the input's but for lengths and checksums.
    Bytes masked_in = slice(in, 0, q.payload_offset), masked_out = a;
    for (Bytes* b : {&masked_in, &masked_out}) {
      const size_t l3 = q.l3_offset;
      (*b)[q.l4_offset + 16] = (*b)[q.l4_offset + 17] = 0;
      if (c.family == 4) {
        (*b)[l3 + 2] = (*b)[l3 + 3] = (*b)[l3 + 10] = (*b)[l3 + 11] = 0;
      } else {
        (*b)[l3 + 4] = (*b)[l3 + 5] = 0;
      }
    }
    EXPECT_EQ(masked_out, masked_in);
    if (c.family == 4) {
      EXPECT_EQ(rte_raw_cksum(a.data() + p.l3_offset, p.l4_offset - p.l3_offset), 0xffff);
    }
    EXPECT_EQ(checksums_ok(a, p), !c.bad_checksum);
  }
}

TEST_F(SynthTest, StripTcpPayloadRefusesFragmentsAndChains) {
  FrameSpec s = client_frame(kWebServer, kProtoTcp, 51000);  // a SYN
  s.payload = Bytes(100, 1);
  const Bytes whole = build_frame(s);
  const auto frags = test::fragment_ipv4(whole, 64);
  const ParsedPacket first = parse_ok(frags[0]);
  ASSERT_TRUE(first.is_fragment);
  MbufPtr f = mbuf_of(frags[0]);
  EXPECT_FALSE(strip_tcp_payload(f.get(), first));
  EXPECT_EQ(bytes_of(f.get()), frags[0]);

  // The same SYN split over two chained mbufs: not contiguous, left alone.
  const ParsedPacket p = parse_ok(whole);
  MbufPtr head = mbuf_of(slice(whole, 0, 60));
  MbufPtr tail = mbuf_of(slice(whole, 60, whole.size() - 60));
  ASSERT_EQ(rte_pktmbuf_chain(head.get(), tail.release()), 0);
  EXPECT_FALSE(strip_tcp_payload(head.get(), p));
  EXPECT_EQ(rte_pktmbuf_pkt_len(head.get()), whole.size());

  // The whole packet in the first mbuf, padding in a second one: still left alone.
  MbufPtr whole_head = mbuf_of(whole);
  ASSERT_EQ(rte_pktmbuf_chain(whole_head.get(), mbuf_of(Bytes(10, 0)).release()), 0);
  EXPECT_FALSE(strip_tcp_payload(whole_head.get(), p));
  EXPECT_EQ(rte_pktmbuf_pkt_len(whole_head.get()), whole.size() + 10);
  EXPECT_EQ(test::bytes_of_first(whole_head.get()), whole);
}

// An empty pool: nothing synthesized, nothing leaked.
TEST_F(SynthTest, EmptyPool) {
  rte_mempool* empty = test::make_pool("synth_test_empty", 1);
  ASSERT_NE(empty, nullptr);
  MbufPtr held(rte_pktmbuf_alloc(empty));
  ASSERT_NE(held, nullptr);
  FrameSpec s = client_frame(kResolver, kProtoUdp, 40000);
  s.payload = dns_msg(1, 0x01, 0, 1, 0, kWww);
  const Bytes qf = build_frame(s);
  EXPECT_EQ(synth_dns_refused(empty, qf.data(), parse_ok(qf)), nullptr);
  s.proto = 6;
  s.tcp_flags = kTcpAck;
  const Bytes tf = build_frame(s);
  const uint8_t data[3] = {1, 2, 3};
  EXPECT_EQ(synth_tcp_data(empty, tf.data(), parse_ok(tf), 5, data, 3), nullptr);
  held.reset();
  EXPECT_EQ(rte_mempool_avail_count(empty), 1u);
  rte_mempool_free(empty);
}

}  // namespace
}  // namespace egw
