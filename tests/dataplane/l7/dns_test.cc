// Unit tests for dataplane/l7/dns.cc: tables of {description, message, expected status,
// error and name}, truncation at every length, DNS over TCP framing, public captures.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/parse.h"
#include "tests/support/dns_msg.h"

namespace egw::l7 {
namespace {

using test::dns_cat;
using test::dns_header;
using test::dns_name;
using test::dns_query;
using test::dns_tcp_framed;
using test::dns_u16;
using Bytes = std::vector<uint8_t>;

// ---- message builder (the rest is tests/support/dns_msg.h) -------------------------
Bytes ptr(uint16_t off) {
  return dns_u16(static_cast<uint16_t>(0xC000 | off));
}
Bytes qtail(uint16_t qtype = 1, uint16_t qclass = 1) {
  return dns_cat({dns_u16(qtype), dns_u16(qclass)});
}

// An EDNS0 OPT record whose rdata holds one option (code 65001) with `data` (none if
// empty and `with_option` is false).
Bytes opt(const Bytes& data = {}, bool with_option = false, uint16_t udp = 1232) {
  const bool any = with_option || !data.empty();
  // Root owner, type 41, UDP size, ttl (extended rcode, version, flags), rdlength.
  Bytes b = dns_cat({Bytes{0}, dns_u16(41), dns_u16(udp), dns_u16(0), dns_u16(0),
                     dns_u16(static_cast<uint16_t>(any ? data.size() + 4 : 0))});
  if (any) b = dns_cat({b, dns_u16(65001), dns_u16(static_cast<uint16_t>(data.size())), data});
  return b;
}
constexpr uint16_t kOptData = 12 + 2 + 4 + 11 + 4;  // rdata of opt() after "ptr + qtail"

std::string label_of(size_t n, char c = 'a') {
  return std::string(n, c);
}

// A record without its root owner byte.
Bytes no_owner(Bytes b) {
  b.erase(b.begin());
  return b;
}

// Wire labels without the root byte: the name continues at a pointer.
Bytes no_root(Bytes b) {
  b.pop_back();
  return b;
}

// ---- runner ----------------------------------------------------------------------
struct Case {
  const char* desc;
  Bytes msg;
  Status want;
  Error err = Error::none;
  std::string name = {};
  uint16_t qtype = 1;
};

Case good(const char* desc, Bytes msg, std::string name, uint16_t qtype = 1) {
  return {desc, std::move(msg), Status::ok, Error::none, std::move(name), qtype};
}
Case bad(const char* desc, Bytes msg, Error err) {
  return {desc, std::move(msg), Status::bad, err};
}

// Parses an exact-size heap copy, so ASan sees any over-read.
Status parse_exact(const Bytes& m, size_t len, DnsQuery* q, Error* err) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);
  if (len != 0) std::memcpy(copy.get(), m.data(), len);
  return parse_dns_query(copy.get(), len, q, err);
}

void check(const Case& c, const Bytes& msg) {
  DnsQuery q;
  Error err = Error::none;
  const Status st = parse_exact(msg, msg.size(), &q, &err);
  EXPECT_EQ(st, c.want) << c.desc;
  EXPECT_EQ(err, c.err) << c.desc;
  if (c.want == Status::ok && st == Status::ok) {
    EXPECT_EQ(std::string(q.name.buf, q.name.len), c.name) << c.desc;
    EXPECT_EQ(q.name.buf[q.name.len], '\0') << c.desc;
    EXPECT_EQ(q.qtype, c.qtype) << c.desc;
    EXPECT_EQ(q.qclass, 1) << c.desc;
    EXPECT_EQ(q.id, (msg[0] << 8) | msg[1]) << c.desc;
  }
}

// ---- cases -----------------------------------------------------------------------
std::vector<Case> good_cases() {
  const std::string l63 = label_of(63), l61 = label_of(61);
  // Forward chain of 16 pointers inside the OPT option data, ending on a name.
  auto chain = [](size_t jumps) {
    Bytes data;
    for (size_t i = 1; i < jumps; ++i) {
      Bytes p = ptr(static_cast<uint16_t>(kOptData + 2 * i));
      data.insert(data.end(), p.begin(), p.end());
    }
    Bytes name = dns_name("chain.example");
    data.insert(data.end(), name.begin(), name.end());
    return dns_cat({dns_header(0x0100, 1, 0, 0, 1), ptr(kOptData), qtail(), opt(data)});
  };
  return {
      good("A query", dns_query("example.com"), "example.com"),
      good("AAAA query", dns_query("www.example.com", 28), "www.example.com", 28),
      good("RD clear, AD and CD set (flags other than QR/opcode are free)",
           dns_cat({dns_header(0x0030), dns_name("example.org"), qtail()}), "example.org"),
      good("EDNS0 OPT without options",
           dns_cat({dns_header(0x0100, 1, 0, 0, 1), dns_name("example.com"), qtail(), opt()}),
           "example.com"),
      good("EDNS0 OPT with a cookie-sized option",
           dns_cat({dns_header(0x0100, 1, 0, 0, 1), dns_name("example.com"), qtail(),
                    opt(Bytes(8, 0xAB))}),
           "example.com"),
      good("EDNS0 OPT with an empty option",
           dns_cat(
               {dns_header(0x0100, 1, 0, 0, 1), dns_name("example.com"), qtail(), opt({}, true)}),
           "example.com"),
      good("mixed case is lowered", dns_query("WwW.ExAmPlE.COM"), "www.example.com"),
      good("underscore labels (SRV)", dns_query("_sip._tcp.example.com", 33),
           "_sip._tcp.example.com", 33),
      good("digits and hyphens", dns_query("a-1.b2.example"), "a-1.b2.example"),
      good("single label", dns_query("localhost"), "localhost"),
      good("63-byte label", dns_query(l63 + ".com"), l63 + ".com"),
      good("name of exactly 255 wire bytes (253 characters)",
           dns_query(l63 + "." + l63 + "." + l63 + "." + l61),
           l63 + "." + l63 + "." + l63 + "." + l61),
      good("forward pointer into the OPT option data (as in the public capture)",
           dns_cat({dns_header(0x0100, 1, 0, 0, 1), ptr(kOptData), qtail(),
                    opt(dns_name("codemonkey.net"))}),
           "codemonkey.net"),
      good("labels then a forward pointer",
           dns_cat({dns_header(0x0100, 1, 0, 0, 1), Bytes{3, 'w', 'w', 'w'}, ptr(kOptData + 4),
                    qtail(), opt(dns_name("example.net"))}),
           "www.example.net"),
      good("backward pointer into the header (id 0x0161, flags 0 spell the name \"a\")",
           dns_cat(
               {dns_header(0x0000, 1, 0, 0, 0, 0x0161), Bytes{3, 'w', 'w', 'w'}, ptr(0), qtail()}),
           "www.a"),
      good("chain of exactly 16 pointers", chain(16), "chain.example"),
      good("qclass CH and qtype TXT are passed through",
           dns_cat({dns_header(), dns_name("version.bind"), qtail(16, 1)}), "version.bind", 16),
  };
}

std::vector<Case> bad_cases() {
  const std::string l63 = label_of(63);
  auto chain17 = [] {
    Bytes data;
    for (size_t i = 1; i < 17; ++i) {
      Bytes p = ptr(static_cast<uint16_t>(kOptData + 2 * i));
      data.insert(data.end(), p.begin(), p.end());
    }
    Bytes name = dns_name("chain.example");
    data.insert(data.end(), name.begin(), name.end());
    return dns_cat({dns_header(0x0100, 1, 0, 0, 1), ptr(kOptData), qtail(), opt(data)});
  };
  const Bytes name = dns_name("example.com");
  return {
      // Header.
      bad("empty message", {}, Error::truncated_field),
      bad("11-byte header", Bytes(11, 0), Error::truncated_field),
      bad("response (QR=1) from inside", dns_cat({dns_header(0x8180), name, qtail()}),
          Error::bad_syntax),
      bad("opcode 1 (IQUERY)", dns_cat({dns_header(0x0900), name, qtail()}), Error::bad_syntax),
      bad("opcode 2 (STATUS)", dns_cat({dns_header(0x1100), name, qtail()}), Error::bad_syntax),
      bad("opcode 4 (NOTIFY)", dns_cat({dns_header(0x2100), name, qtail()}), Error::bad_syntax),
      bad("opcode 5 (UPDATE)", dns_cat({dns_header(0x2800), name, qtail()}), Error::bad_syntax),
      bad("QDCOUNT 0", dns_cat({dns_header(0x0100, 0)}), Error::count_not_one),
      bad("QDCOUNT 2", dns_cat({dns_header(0x0100, 2), name, qtail(), name, qtail()}),
          Error::count_not_one),
      bad("QDCOUNT 65535", dns_cat({dns_header(0x0100, 0xFFFF), name, qtail()}),
          Error::count_not_one),
      bad("ANCOUNT 1 in a query", dns_cat({dns_header(0x0100, 1, 1), name, qtail()}),
          Error::bad_syntax),
      bad("NSCOUNT 1 in a query", dns_cat({dns_header(0x0100, 1, 0, 1), name, qtail()}),
          Error::bad_syntax),
      bad("ARCOUNT 2", dns_cat({dns_header(0x0100, 1, 0, 0, 2), name, qtail(), opt(), opt()}),
          Error::bad_syntax),
      // Bytes after the question.
      bad("trailing byte without ARCOUNT", dns_cat({dns_header(), name, qtail(), Bytes{0}}),
          Error::bad_syntax),
      bad("OPT record not declared by ARCOUNT", dns_cat({dns_header(), name, qtail(), opt()}),
          Error::bad_syntax),
      bad("ARCOUNT 1 but nothing follows", dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail()}),
          Error::truncated_field),
      bad(
          "additional record is not OPT (type A)",
          [&] {
            Bytes o = opt();
            o[2] = 1;
            return dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), o});
          }(),
          Error::bad_syntax),
      bad("OPT owner is not the root",
          dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), Bytes{1, 'x'}, opt()}),
          Error::bad_syntax),
      bad("OPT owner is a pointer",
          dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), ptr(12), no_owner(opt())}),
          Error::bad_syntax),
      bad(
          "OPT rdlength past the message",
          [&] {
            Bytes o = opt(Bytes(4, 0));
            o[10] = 0x01;  // rdlength 256 + 8
            return dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), o});
          }(),
          Error::truncated_field),
      bad(
          "EDNS option length past its rdata",
          [&] {
            Bytes o = opt(Bytes(4, 0));
            o[14] = 5;  // option length 5 in 4 bytes of data
            return dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), o});
          }(),
          Error::truncated_field),
      bad(
          "EDNS rdata shorter than an option header",
          [&] {
            Bytes o = opt();
            o[10] = 2;  // rdlength 2
            return dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), o, Bytes{0, 0}});
          }(),
          Error::truncated_field),
      bad("trailing byte after OPT",
          dns_cat({dns_header(0x0100, 1, 0, 0, 1), name, qtail(), opt(), Bytes{0}}),
          Error::bad_syntax),
      // Compression pointers (checklist 19, 20).
      bad("self-pointer", dns_cat({dns_header(), ptr(12), qtail()}), Error::pointer_loop),
      bad("two pointers to each other", dns_cat({dns_header(), ptr(14), ptr(12), dns_u16(1)}),
          Error::pointer_loop),
      bad("label then a pointer back to it",
          dns_cat({dns_header(), Bytes{1, 'a'}, ptr(12), qtail()}), Error::pointer_loop),
      bad("63-byte label then a pointer back to it",
          dns_cat({dns_header(), Bytes{63}, Bytes(63, 'a'), ptr(12), qtail()}),
          Error::pointer_loop),
      bad("chain of 17 pointers (over the limit)", chain17(), Error::pointer_loop),
      bad("pointer past the end", dns_cat({dns_header(), ptr(0xFF), qtail()}),
          Error::truncated_field),
      bad("pointer to offset 0x3FFF", dns_cat({dns_header(), ptr(0x3FFF), qtail()}),
          Error::truncated_field),
      bad("pointer to its own length (one past the end)",
          dns_cat({dns_header(), Bytes{3, 'w', 'w', 'w'}, ptr(23), qtail()}),
          Error::truncated_field),
      // Labels.
      bad("reserved label type 0x40 (extended label)",
          dns_cat({dns_header(), Bytes{0x41, 1, 'a'}, Bytes{0}, qtail()}), Error::bad_name),
      bad("reserved label type 0x80", dns_cat({dns_header(), Bytes{0x81, 'a', 0}, qtail()}),
          Error::bad_name),
      bad("label of 64 (length byte 0x40)",
          dns_cat({dns_header(), Bytes{64}, Bytes(64, 'a'), Bytes{0}, qtail()}), Error::bad_name),
      bad("name over 255 wire bytes", dns_query(l63 + "." + l63 + "." + l63 + "." + label_of(62)),
          Error::bad_name),
      bad("name over 255 bytes across a pointer",
          dns_cat({dns_header(0x0100, 1, 0, 0, 1), no_root(dns_name(l63 + "." + l63 + "." + l63)),
                   ptr(static_cast<uint16_t>(kOptData + 3 * 64)), qtail(),
                   opt(dns_name(label_of(62)))}),
          Error::bad_name),
      bad("root name", dns_cat({dns_header(), Bytes{0}, qtail()}), Error::bad_name),
      bad("NUL byte in a label",
          dns_cat({dns_header(), Bytes{3, 'a', 0, 'b', 3, 'c', 'o', 'm', 0}, qtail()}),
          Error::bad_name),
      bad("control bytes in a label",
          dns_query("www.allyourba\x04\x05\x06"
                    "arebelongto.cn"),
          Error::bad_name),
      bad("space in a label", dns_query("ex ample.com"), Error::bad_name),
      bad("wildcard label", dns_query("*.example.com"), Error::bad_name),
      bad("dot inside a label (\"evil.com\" as one label)",
          dns_cat({dns_header(), Bytes{8, 'e', 'v', 'i', 'l', '.', 'c', 'o', 'm', 0}, qtail()}),
          Error::bad_name),
      bad("byte 0xFF in a label", dns_cat({dns_header(), Bytes{2, 'a', 0xFF, 0}, qtail()}),
          Error::bad_name),
      // Question tail.
      bad("QTYPE/QCLASS missing", dns_cat({dns_header(), name}), Error::truncated_field),
      bad("QCLASS cut", dns_cat({dns_header(), name, Bytes{0, 1, 0}}), Error::truncated_field),
      bad("name without its root byte", dns_cat({dns_header(), Bytes{3, 'c', 'o', 'm'}}),
          Error::truncated_field),
  };
}

TEST(DnsQuery, WellFormed) {
  for (const Case& c : good_cases()) check(c, c.msg);
}

TEST(DnsQuery, Malformed) {
  for (const Case& c : bad_cases()) check(c, c.msg);
}

// Every proper prefix of a well-formed query is bad (truncated), never ok: a length
// field never lets the parser read past the copy.
TEST(DnsQuery, TruncatedAtEveryLength) {
  for (const Case& c : good_cases()) {
    for (size_t n = 0; n < c.msg.size(); ++n) {
      DnsQuery q;
      Error err = Error::none;
      const Status st = parse_exact(c.msg, n, &q, &err);
      EXPECT_EQ(st, Status::bad) << c.desc << " cut at " << n;
      EXPECT_EQ(err, Error::truncated_field) << c.desc << " cut at " << n;
    }
  }
  for (const Case& c : bad_cases()) {  // no over-read on the bad ones either
    for (size_t n = 0; n < c.msg.size(); ++n) {
      DnsQuery q;
      Error err = Error::none;
      EXPECT_NE(parse_exact(c.msg, n, &q, &err), Status::need_more) << c.desc;
    }
  }
}

// ---- DNS over TCP ----------------------------------------------------------------
struct FrameCase {
  const char* desc;
  Bytes stream;
  Status want;
  size_t msg_len = 0;
};

TEST(DnsTcp, Frame) {
  const std::vector<FrameCase> cases = {
      {"nothing yet", {}, Status::need_more},
      {"one byte of the prefix", {0}, Status::need_more},
      {"length 0", {0, 0}, Status::bad},
      {"length 0 with bytes after it", {0, 0, 1, 2}, Status::bad},
      {"prefix only", {0, 3}, Status::need_more},
      {"one byte short", {0, 3, 1, 2}, Status::need_more},
      {"exactly one message", {0, 3, 1, 2, 3}, Status::ok, 3},
      {"a message and the start of the next", {0, 1, 9, 0, 5}, Status::ok, 1},
      {"largest length, incomplete", {0xFF, 0xFF, 1}, Status::need_more},
  };
  for (const FrameCase& c : cases) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[c.stream.size()]);
    if (!c.stream.empty()) std::memcpy(copy.get(), c.stream.data(), c.stream.size());
    size_t off = 99, len = 99;
    EXPECT_EQ(dns_tcp_frame(copy.get(), c.stream.size(), &off, &len), c.want) << c.desc;
    if (c.want == Status::ok) {
      EXPECT_EQ(off, 2u) << c.desc;
      EXPECT_EQ(len, c.msg_len) << c.desc;
    }
  }
}

// Frames every message of `stream` in turn and parses it; stops at need_more/bad.
std::vector<Case> run_stream(const Bytes& stream, Status* last) {
  std::vector<Case> got;
  size_t pos = 0;
  for (;;) {
    size_t off = 0, len = 0;
    *last = dns_tcp_frame(stream.data() + pos, stream.size() - pos, &off, &len);
    if (*last != Status::ok) return got;
    Bytes msg(stream.begin() + pos + off, stream.begin() + pos + off + len);
    DnsQuery q;
    Case c{"", msg, Status::bad};
    c.want = parse_exact(msg, msg.size(), &q, &c.err);
    c.name.assign(q.name.buf, q.name.len);
    got.push_back(c);
    pos += off + len;
  }
}

// Checklist 22: a query split over segments (the stream so far, one more byte at a
// time) is need_more until complete, then gives the UDP verdict.
TEST(DnsTcp, SplitAcrossSegmentsGivesTheUdpVerdict) {
  std::vector<Case> all = good_cases();
  for (Case& c : bad_cases()) {
    if (!c.msg.empty()) all.push_back(c);
  }
  for (const Case& c : all) {
    const Bytes stream = dns_tcp_framed(c.msg);
    for (size_t n = 0; n < stream.size(); ++n) {
      Status last;
      EXPECT_TRUE(run_stream(Bytes(stream.begin(), stream.begin() + n), &last).empty());
      EXPECT_EQ(last, Status::need_more) << c.desc << " at " << n;
    }
    Status last;
    const std::vector<Case> got = run_stream(stream, &last);
    ASSERT_EQ(got.size(), 1u) << c.desc;
    EXPECT_EQ(last, Status::need_more) << c.desc;  // nothing after the message
    EXPECT_EQ(got[0].want, c.want) << c.desc;
    EXPECT_EQ(got[0].err, c.err) << c.desc;
    if (c.want == Status::ok) {
      EXPECT_EQ(got[0].name, c.name) << c.desc;
    }
  }
}

TEST(DnsTcp, SeveralMessagesInOneSegment) {
  const Bytes a = dns_query("first.example"), b = dns_query("second.example", 28);
  const Bytes bad_msg = dns_cat({dns_header(0x8180), dns_name("third.example"), qtail()});
  const Bytes stream = dns_cat({dns_tcp_framed(a), dns_tcp_framed(b), dns_tcp_framed(bad_msg)});
  Status last;
  const std::vector<Case> got = run_stream(stream, &last);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(last, Status::need_more);
  EXPECT_EQ(got[0].want, Status::ok);
  EXPECT_EQ(got[0].name, "first.example");
  EXPECT_EQ(got[1].want, Status::ok);
  EXPECT_EQ(got[1].name, "second.example");
  EXPECT_EQ(got[2].want, Status::bad);
  EXPECT_EQ(got[2].err, Error::bad_syntax);
  // A zero length prefix after good messages stops the stream as bad.
  const Bytes zero = dns_cat({dns_tcp_framed(a), Bytes{0, 0}});
  EXPECT_EQ(run_stream(zero, &last).size(), 1u);
  EXPECT_EQ(last, Status::bad);
}

// ---- responses ---------------------------------------------------------------------
// An A answer for the question at offset 12: a pointer owner, type, class, ttl, 4 bytes.
Bytes answer_a() {
  return dns_cat(
      {ptr(12), dns_u16(1), dns_u16(1), dns_u16(0), dns_u16(300), dns_u16(4), Bytes{192, 0, 2, 1}});
}

Bytes response(const std::string& name, uint16_t flags = 0x8180, uint16_t qtype = 1,
               uint16_t id = 0x1234) {
  return dns_cat({dns_header(flags, 1, 1, 0, 0, id), dns_name(name), qtail(qtype), answer_a()});
}

struct ResponseCase {
  const char* desc;
  Bytes msg;
  Status want;
  Error err = Error::none;
  std::string name = {};
  uint16_t id = 0x1234;
  uint16_t qtype = 1;
};

Status parse_response_exact(const Bytes& m, size_t len, DnsQuery* q, Error* err) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len != 0) std::memcpy(copy.get(), m.data(), len);
  return parse_dns_response(copy.get(), len, q, err);
}

std::vector<ResponseCase> response_cases() {
  const Bytes loop = dns_cat({dns_header(0x8180), ptr(12), qtail()});
  return {
      {"NOERROR with an answer", response("www.example.com"), Status::ok, Error::none,
       "www.example.com"},
      {"NXDOMAIN, no answer",
       dns_cat({dns_header(0x8183, 1, 0, 1), dns_name("nx.example"), qtail(28), opt()}), Status::ok,
       Error::none, "nx.example", 0x1234, 28},
      {"REFUSED", response("r.example", 0x8185), Status::ok, Error::none, "r.example"},
      {"truncated (TC) response", response("tc.example", 0x8380), Status::ok, Error::none,
       "tc.example"},
      {"mixed case (0x20 randomisation) is lowered", response("WwW.ExAmple.COM", 0x8180, 1, 7),
       Status::ok, Error::none, "www.example.com", 7},
      {"question name through a forward pointer into the answer's rdata",
       dns_cat({dns_header(0x8180, 1, 1), ptr(29), qtail(16), Bytes{0}, dns_u16(16), dns_u16(1),
                dns_u16(0), dns_u16(60),
                dns_u16(static_cast<uint16_t>(dns_name("fwd.example").size())),
                dns_name("fwd.example")}),
       Status::ok, Error::none, "fwd.example", 0x1234, 16},
      {"a query is not a response", dns_query("example.com"), Status::bad, Error::bad_syntax},
      {"opcode other than QUERY", response("a.example", 0x8980), Status::bad, Error::bad_syntax},
      {"no question", dns_cat({dns_header(0x8180, 0, 1), answer_a()}), Status::bad,
       Error::count_not_one},
      {"two questions",
       dns_cat(
           {dns_header(0x8180, 2), dns_name("a.example"), qtail(), dns_name("b.example"), qtail()}),
       Status::bad, Error::count_not_one},
      {"pointer loop in the question", loop, Status::bad, Error::pointer_loop},
      {"pointer past the end", dns_cat({dns_header(0x8180), ptr(0x3ff), qtail()}), Status::bad,
       Error::truncated_field},
      {"reserved label type", dns_cat({dns_header(0x8180), Bytes{0x40, 'a', 0}, qtail()}),
       Status::bad, Error::bad_name},
      {"label over 63", response(label_of(64) + ".com"), Status::bad, Error::bad_name},
      {"root question", dns_cat({dns_header(0x8180), Bytes{0}, qtail()}), Status::bad,
       Error::bad_name},
      {"invalid characters", response("a b.example"), Status::bad, Error::bad_name},
      {"question cut before qclass",
       dns_cat({dns_header(0x8180), dns_name("a.example"), dns_u16(1), Bytes{0}}), Status::bad,
       Error::truncated_field},
      {"header only", dns_header(0x8180), Status::bad, Error::truncated_field},
  };
}

TEST(DnsResponse, Table) {
  for (const ResponseCase& c : response_cases()) {
    SCOPED_TRACE(c.desc);
    DnsQuery q;
    Error err = Error::truncated_field;
    ASSERT_EQ(parse_response_exact(c.msg, c.msg.size(), &q, &err), c.want);
    EXPECT_EQ(err, c.err);
    if (c.want != Status::ok) continue;
    EXPECT_EQ(std::string(q.name.buf, q.name.len), c.name);
    EXPECT_EQ(q.id, c.id);
    EXPECT_EQ(q.qtype, c.qtype);
    EXPECT_EQ(q.qclass, 1);
  }
}

// Cut anywhere inside the header or question: bad, never a read past the end. The
// answer after the question is not read, so cuts there still match.
TEST(DnsResponse, Truncated) {
  for (const ResponseCase& c : response_cases()) {
    SCOPED_TRACE(c.desc);
    for (size_t n = 0; n < c.msg.size(); ++n) {
      DnsQuery q;
      Error err;
      const Status st = parse_response_exact(c.msg, n, &q, &err);
      if (st == Status::ok) {
        EXPECT_EQ(c.want, Status::ok) << n;
        EXPECT_EQ(std::string(q.name.buf, q.name.len), c.name) << n;
      }
    }
  }
  const Bytes r = response("cut.example");
  const size_t question_end = 12 + dns_name("cut.example").size() + 4;
  for (size_t n = 0; n < r.size(); ++n) {
    DnsQuery q;
    Error err;
    EXPECT_EQ(parse_response_exact(r, n, &q, &err), n < question_end ? Status::bad : Status::ok)
        << n;
  }
}

// Checklist 23: a response matches the query it answers by id, name and qtype.
TEST(DnsResponse, MatchesItsQuery) {
  const Bytes qmsg =
      dns_cat({dns_header(0x0100, 1, 0, 0, 0, 0xbeef), dns_name("Match.Example"), qtail(28)});
  DnsQuery q, r;
  Error err;
  ASSERT_EQ(parse_exact(qmsg, qmsg.size(), &q, &err), Status::ok);
  struct Row {
    const char* desc;
    Bytes msg;
    bool match;
  };
  const std::vector<Row> rows = {
      {"the answer", response("match.example", 0x8180, 28, 0xbeef), true},
      {"0x20 case differs", response("MATCH.example", 0x8180, 28, 0xbeef), true},
      {"another id", response("match.example", 0x8180, 28, 0xbeee), false},
      {"another name", response("other.example", 0x8180, 28, 0xbeef), false},
      {"another qtype", response("match.example", 0x8180, 1, 0xbeef), false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.desc);
    ASSERT_EQ(parse_response_exact(row.msg, row.msg.size(), &r, &err), Status::ok);
    const bool same = r.id == q.id && r.qtype == q.qtype && r.qclass == q.qclass &&
                      std::string(r.name.buf, r.name.len) == std::string(q.name.buf, q.name.len);
    EXPECT_EQ(same, row.match);
  }
}

// ---- public captures ---------------------------------------------------------------
// UDP payloads of every frame of a capture in ../shared/pcaps.
bool read_payloads(const std::string& name, std::vector<Bytes>* out) {
  char errbuf[PCAP_ERRBUF_SIZE];
  const std::string path = "../shared/pcaps/" + name;
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  if (p == nullptr) return false;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) {
    ParsedPacket pp;
    if (parse_frame(d, h->caplen, &pp).status != ParseStatus::ok) continue;
    out->emplace_back(d + pp.payload_offset, d + pp.payload_offset + pp.payload_len);
  }
  pcap_close(p);
  return true;
}

struct PcapCase {
  const char* desc;
  size_t frame;
  Status want;
  Error err;
  std::string name = {};
};

void check_pcap(const std::string& file, size_t frames, const std::vector<PcapCase>& cases) {
  std::vector<Bytes> f;
  if (!read_payloads(file, &f)) GTEST_SKIP() << "missing ../shared/pcaps/" << file;
  ASSERT_EQ(f.size(), frames) << file;
  for (const PcapCase& c : cases) {
    DnsQuery q;
    Error err = Error::none;
    EXPECT_EQ(parse_exact(f.at(c.frame), f.at(c.frame).size(), &q, &err), c.want) << c.desc;
    EXPECT_EQ(err, c.err) << c.desc;
    if (c.want == Status::ok) {
      EXPECT_EQ(std::string(q.name.buf, q.name.len), c.name) << c.desc;
    }
  }
}

// The query holds TWO questions (QDCOUNT 2), the first a forward pointer to the
// second, both "codemonkey.net" in Wireshark. Checklist 21 denies QDCOUNT != 1; the
// forward pointer itself is accepted (see "forward pointer into the OPT option data").
TEST(DnsPcap, ForwardPointer) {
  check_pcap("dns_dns-forward-pointer_input.pcap", 2,
             {{"query: two questions", 0, Status::bad, Error::count_not_one},
              {"response", 1, Status::bad, Error::bad_syntax}});
  std::vector<Bytes> f;
  if (!read_payloads("dns_dns-forward-pointer_input.pcap", &f) || f.empty()) return;
  // The same bytes with the second question moved into an OPT record's option data:
  // the first question's forward pointer is then followed to "codemonkey.net".
  const Bytes& m = f[0];
  ASSERT_EQ(m.size(), 38u);
  ASSERT_EQ(m[12], 0xC0);
  ASSERT_EQ(m[13], 18);
  const Bytes second(m.begin() + 18, m.begin() + 34);  // 0a codemonkey 03 net 00
  Bytes fixed = dns_cat({Bytes(m.begin(), m.begin() + 12), ptr(kOptData), qtail(), opt(second)});
  fixed[5] = 1;   // QDCOUNT 1
  fixed[11] = 1;  // ARCOUNT 1
  check(good("capture's query with one question", fixed, "codemonkey.net"), fixed);
}

TEST(DnsPcap, InvalidChars) {
  check_pcap("dns-invalid-chars.pcap", 2,
             {{"query: control bytes 04 05 06 in a label", 0, Status::bad, Error::bad_name},
              {"response", 1, Status::bad, Error::bad_syntax}});
}

}  // namespace
}  // namespace egw::l7
