// Unit tests for dataplane/l7/tls.cc: tables of well-formed and malformed ClientHellos,
// truncation at every length, a differential test over record splits, public captures.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/parse.h"
#include "tests/support/tls_hello.h"

namespace egw::l7 {
namespace {

using test::alpn_ext;
using test::ech_ext;
using test::hello_msg;
using test::hello_stream;
using test::HelloSpec;
using test::key_share_ext;
using test::pq_spec;
using test::records;
using test::records_of;
using test::sni_ext;
using test::sni_list_ext;
using test::tls12_spec;
using test::tls13_spec;
using test::TlsExt;
using Bytes = std::vector<uint8_t>;

struct Result {
  Status status;
  Error err;
  TlsHello hello;
  size_t consumed;
};

// Parses an exact-size heap copy, so ASan flags any read past the end.
Result parse(const Bytes& b, size_t len) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);
  if (len > 0) std::memcpy(copy.get(), b.data(), len);
  Result r{};
  r.status = parse_tls_client_hello(copy.get(), len, &r.hello, &r.err, &r.consumed);
  return r;
}
Result parse(const Bytes& b) {
  return parse(b, b.size());
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Sets the handshake message's 24-bit length.
Bytes with_hs_len(Bytes msg, size_t n) {
  msg[1] = static_cast<uint8_t>(n >> 16);
  msg[2] = static_cast<uint8_t>(n >> 8);
  msg[3] = static_cast<uint8_t>(n);
  return msg;
}

std::string repeat(char c, size_t n) {
  return std::string(n, c);
}
// A valid name of exactly n characters (n >= 1): 63-character labels.
std::string long_name(size_t n) {
  std::string s;
  while (s.size() < n) {
    if (!s.empty()) s += '.';
    const size_t label = std::min<size_t>(63, n - s.size());
    s += repeat('a' + static_cast<char>(s.size() % 26), label);
  }
  return s;
}

HelloSpec with_exts(HelloSpec s, const std::vector<TlsExt>& extra) {
  s.exts.insert(s.exts.end(), extra.begin(), extra.end());
  return s;
}

const Bytes kAppData = {23, 3, 3, 0, 3, 1, 2, 3};

// ---- well-formed ----

struct GoodCase {
  const char* desc;
  Bytes stream;
  std::string sni;  // "" = no SNI
  std::string alpn;
  bool ech;
  uint16_t version;
  size_t consumed;  // 0 = the whole stream
};

std::vector<GoodCase> good_cases() {
  std::vector<GoodCase> v;
  const Bytes g13 = hello_stream(tls13_spec("www.google.com"));
  v.push_back({"TLS 1.3 style, SNI and ALPN", g13, "www.google.com", "h2", false, 0x0303, 0});
  v.push_back({"TLS 1.2 style, no session id", hello_stream(tls12_spec("api.stripe.com")),
               "api.stripe.com", "http/1.1", false, 0x0303, 0});
  v.push_back({"no SNI", hello_stream(tls13_spec("")), "", "h2", false, 0x0303, 0});
  HelloSpec bare;
  bare.no_extensions = true;
  bare.legacy_version = 0x0301;
  v.push_back({"TLS 1.0, no extensions block", hello_stream(bare), "", "", false, 0x0301, 0});
  HelloSpec empty_block;
  v.push_back({"empty extensions block", hello_stream(empty_block), "", "", false, 0x0303, 0});
  v.push_back({"upper case and trailing dot normalised",
               hello_stream(tls13_spec("WWW.Example.COM.")), "www.example.com", "h2", false, 0x0303,
               0});
  HelloSpec ech = tls13_spec("performance.radar.cloudflare.com");
  ech.exts.push_back(ech_ext());
  v.push_back({"ECH: the outer SNI", hello_stream(ech), "performance.radar.cloudflare.com", "h2",
               true, 0x0303, 0});
  HelloSpec pq = pq_spec("pq.example.org");
  const Bytes pq_msg = hello_msg(pq);
  v.push_back({"post-quantum key_share, one record", records(pq_msg), "pq.example.org", "h2", false,
               0x0303, 0});
  v.push_back({"post-quantum key_share over 300-byte records", records_of(pq_msg, 300),
               "pq.example.org", "h2", false, 0x0303, 0});
  HelloSpec padded = tls13_spec("pad.example", 32);
  padded.pad_to = 1700;
  v.push_back({"padded to 1700 bytes, split 1000+700", records(hello_msg(padded), {1000}),
               "pad.example", "h2", false, 0x0303, 0});
  HelloSpec alpn_long = tls13_spec("a.b");
  alpn_long.exts.back() = alpn_ext({repeat('x', 40), "h2"});
  v.push_back({"ALPN first protocol truncated to 32", hello_stream(alpn_long), "a.b",
               repeat('x', 32), false, 0x0303, 0});
  HelloSpec alpn_bin = tls13_spec("a.b");
  alpn_bin.exts.back() = alpn_ext({std::string("h\x01\xff", 3)});
  v.push_back(
      {"ALPN control bytes shown as ?", hello_stream(alpn_bin), "a.b", "h??", false, 0x0303, 0});
  v.push_back({"name of 253 characters", hello_stream(tls13_spec(long_name(253))), long_name(253),
               "h2", false, 0x0303, 0});
  v.push_back({"name of 253 characters plus trailing dot",
               hello_stream(tls13_spec(long_name(253) + ".")), long_name(253), "h2", false, 0x0303,
               0});
  v.push_back({"underscore and digits", hello_stream(tls13_spec("_dmarc.x-1.example")),
               "_dmarc.x-1.example", "h2", false, 0x0303, 0});
  v.push_back({"application data after the hello is not consumed", cat(g13, kAppData),
               "www.google.com", "h2", false, 0x0303, g13.size()});
  v.push_back({"a second hello after the first is left to the caller", cat(g13, g13),
               "www.google.com", "h2", false, 0x0303, g13.size()});
  HelloSpec big = tls13_spec("big.example");
  big.pad_to = (1u << 14) + 2048;
  v.push_back({"record of exactly 2^14+2048 bytes", records(hello_msg(big)), "big.example", "h2",
               false, 0x0303, 0});
  v.push_back({"record version 0x0303", records(hello_msg(tls13_spec("v.example")), {}, 22, 0x0303),
               "v.example", "h2", false, 0x0303, 0});
  HelloSpec grease = tls13_spec("g.example");
  grease.exts.insert(grease.exts.begin(), TlsExt{0x0a0a, {}});
  grease.exts.push_back(TlsExt{0x1a1a, {0}});
  v.push_back({"GREASE extensions of distinct types", hello_stream(grease), "g.example", "h2",
               false, 0x0303, 0});
  return v;
}

TEST(TlsHello, WellFormed) {
  for (const GoodCase& c : good_cases()) {
    SCOPED_TRACE(c.desc);
    const Result r = parse(c.stream);
    ASSERT_EQ(r.status, Status::ok) << static_cast<int>(r.err);
    EXPECT_EQ(r.err, Error::none);
    EXPECT_EQ(r.hello.has_sni, !c.sni.empty());
    EXPECT_EQ(std::string(r.hello.sni.buf, r.hello.sni.len), c.sni);
    EXPECT_EQ(std::string(r.hello.alpn, r.hello.alpn_len), c.alpn);
    EXPECT_EQ(r.hello.alpn[r.hello.alpn_len], '\0');
    EXPECT_EQ(r.hello.has_ech, c.ech);
    EXPECT_EQ(r.hello.legacy_version, c.version);
    EXPECT_EQ(r.consumed, c.consumed == 0 ? c.stream.size() : c.consumed);
  }
}

// ---- malformed ----

struct BadCase {
  const char* desc;
  Bytes stream;
  Error err;
};

std::vector<BadCase> bad_cases() {
  std::vector<BadCase> v;
  const HelloSpec base = tls13_spec("");
  auto sni_raw = [&](const Bytes& body) {
    return hello_stream(with_exts(base, {TlsExt{0, body}}));
  };
  const Bytes msg = hello_msg(tls13_spec("ok.example"));
  // Checklist 9: server_name evasions.
  v.push_back({"two server_name extensions",
               hello_stream(with_exts(base, {sni_ext("a.example"), sni_ext("b.example")})),
               Error::duplicate});
  v.push_back({"two host_name entries in one list",
               hello_stream(with_exts(base, {sni_list_ext({"a.example", "b.example"})})),
               Error::duplicate});
  v.push_back({"same host_name twice",
               hello_stream(with_exts(base, {sni_list_ext({"a.example", "a.example"})})),
               Error::duplicate});
  v.push_back({"NUL byte inside the name",
               hello_stream(tls13_spec(std::string("ok.example\0.evil.net", 20))),
               Error::bad_name});
  v.push_back({"NUL byte at the end", hello_stream(tls13_spec(std::string("ok.example\0", 11))),
               Error::bad_name});
  v.push_back({"name of 256 bytes", hello_stream(tls13_spec(long_name(256))), Error::bad_name});
  v.push_back(
      {"name of 254 characters", hello_stream(tls13_spec(long_name(254))), Error::bad_name});
  v.push_back({"label of 64", hello_stream(tls13_spec(repeat('a', 64) + ".com")), Error::bad_name});
  v.push_back({"empty name", sni_raw({0, 3, 0, 0, 0}), Error::bad_name});
  for (const char* n :
       {"a b.com", "*.example.com", "ex/ample.com", "example.com:443", "a..b", ".example.com",
        "example.com..", "\xc3\xa9.com", "a\x7f.com", "[::1]", "ok.example\r\n"}) {
    v.push_back({"invalid characters or labels", hello_stream(tls13_spec(n)), Error::bad_name});
  }
  v.push_back({"server_name of name_type 1", sni_raw({0, 6, 1, 0, 3, 'a', '.', 'b'}),
               Error::bad_extension});
  v.push_back({"host_name then name_type 1",
               sni_raw({0, 12, 0, 0, 3, 'a', '.', 'b', 1, 0, 3, 'c', '.', 'd'}),
               Error::bad_extension});
  v.push_back({"list length beyond the extension", sni_raw({0, 7, 0, 0, 3, 'a', '.', 'b'}),
               Error::bad_extension});
  v.push_back({"list length short of the extension", sni_raw({0, 5, 0, 0, 3, 'a', '.', 'b'}),
               Error::bad_extension});
  v.push_back({"name length beyond the list", sni_raw({0, 6, 0, 0, 4, 'a', '.', 'b'}),
               Error::bad_extension});
  v.push_back({"entry header cut", sni_raw({0, 2, 0, 0}), Error::bad_extension});
  v.push_back({"empty server_name extension", sni_raw({}), Error::bad_extension});
  v.push_back({"empty server_name list", sni_raw({0, 0}), Error::bad_extension});
  v.push_back({"one-byte server_name extension", sni_raw({0}), Error::bad_extension});
  // Checklist 12: records, handshake lengths, SSLv2.
  v.push_back(
      {"record length 2^14+2049", {22, 3, 1, 0x48, 0x01, 1, 0, 0x48}, Error::record_too_long});
  v.push_back({"record length 0xffff", {22, 3, 1, 0xff, 0xff}, Error::record_too_long});
  v.push_back({"second record too long",
               cat(records(Bytes(msg.begin(), msg.begin() + 10)), Bytes{22, 3, 1, 0x48, 0x01}),
               Error::record_too_long});
  v.push_back({"zero-length record", {22, 3, 1, 0, 0}, Error::not_handshake});
  v.push_back({"handshake beyond its record, then application data",
               cat(records(Bytes(msg.begin(), msg.begin() + 50)), kAppData), Error::not_handshake});
  v.push_back({"handshake beyond its record, then change_cipher_spec",
               cat(records(Bytes(msg.begin(), msg.begin() + 50)), Bytes{20, 3, 3, 0, 1, 1}),
               Error::not_handshake});
  v.push_back({"handshake length short of its record (trailing bytes)",
               records(with_hs_len(msg, msg.size() - 5)), Error::not_handshake});
  v.push_back({"handshake length beyond the body (extensions block short)",
               records(with_hs_len(cat(msg, Bytes{0, 0, 0}), msg.size() - 1)),
               Error::bad_extension});
  v.push_back({"handshake length over 64 KiB", {22, 3, 1, 0, 4, 1, 1, 0, 1}, Error::too_large});
  v.push_back({"handshake length 2^24-1", {22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, Error::too_large});
  v.push_back(
      {"SSLv2 ClientHello", {0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15}, Error::bad_version});
  v.push_back({"SSLv2 with 3-byte header", {0x00 | 0x80, 0x2e}, Error::bad_version});
  v.push_back({"record major version 2", {22, 2, 0, 0, 4}, Error::bad_version});
  v.push_back({"first record application data", kAppData, Error::not_handshake});
  v.push_back({"first record alert", {21, 3, 1, 0, 2, 2, 40}, Error::not_handshake});
  v.push_back({"plain HTTP on the port", {'G', 'E', 'T', ' ', '/'}, Error::not_handshake});
  v.push_back({"ServerHello first", {22, 3, 3, 0, 4, 2, 0, 0, 0}, Error::not_handshake});
  v.push_back({"hello header split, then an alert record",
               cat(Bytes{22, 3, 1, 0, 2, 1, 0}, Bytes{21, 3, 1, 0, 2, 2, 40}),
               Error::not_handshake});
  // ClientHello body fields.
  HelloSpec s = tls13_spec("ok.example");
  s.legacy_version = 0x0200;
  v.push_back({"legacy_version 2.0", hello_stream(s), Error::bad_version});
  s = tls13_spec("ok.example");
  s.session_id_len = 33;
  v.push_back({"session id of 33", hello_stream(s), Error::truncated_field});
  s = tls13_spec("ok.example");
  s.ciphers.clear();
  v.push_back({"no cipher suites", hello_stream(s), Error::truncated_field});
  s = tls13_spec("ok.example");
  s.compression.clear();
  v.push_back({"no compression methods", hello_stream(s), Error::truncated_field});
  Bytes odd = msg;  // cipher suites length made odd: 4+2+32+1+32 = offset 71
  odd[72] = static_cast<uint8_t>(odd[72] | 1);
  v.push_back({"odd cipher suites length", records(odd), Error::truncated_field});
  v.push_back({"body shorter than the fixed fields", records(Bytes{1, 0, 0, 3, 3, 3, 0x11}),
               Error::truncated_field});
  // Extensions block.
  Bytes ext_long = msg;  // extensions block length: the 2 bytes before the first extension
  const size_t ext_at = 4 + 2 + 32 + 1 + 32 + 2 + 10 + 1 + 1;
  ext_long[ext_at + 1] = static_cast<uint8_t>(ext_long[ext_at + 1] + 1);
  v.push_back({"extensions block longer than the body", records(ext_long), Error::bad_extension});
  Bytes ext_short = msg;
  ext_short[ext_at + 1] = static_cast<uint8_t>(ext_short[ext_at + 1] - 1);
  v.push_back({"extensions block shorter than the body", records(ext_short), Error::bad_extension});
  HelloSpec cut;
  cut.exts.push_back(TlsExt{0x1234, {}});
  Bytes cut_msg = hello_msg(cut);  // the only extension's length made 1 (beyond the block)
  cut_msg.back() = 1;
  v.push_back({"extension length beyond the block", records(cut_msg), Error::bad_extension});
  v.push_back({"duplicate ALPN", hello_stream(with_exts(tls13_spec("a.b"), {alpn_ext({"h2"})})),
               Error::duplicate});
  v.push_back({"duplicate unknown extension",
               hello_stream(with_exts(base, {TlsExt{0x4444, {}}, TlsExt{0x4444, {1}}})),
               Error::duplicate});
  v.push_back(
      {"duplicate ECH", hello_stream(with_exts(base, {ech_ext(), ech_ext()})), Error::duplicate});
  v.push_back({"duplicate key_share", hello_stream(with_exts(base, {key_share_ext(32)})),
               Error::duplicate});
  std::vector<TlsExt> many;
  for (uint16_t t = 0x3000; t < 0x3000 + 129; ++t) many.push_back(TlsExt{t, {}});
  v.push_back({"129 extensions", hello_stream(with_exts(base, many)), Error::too_large});
  HelloSpec a = base;
  a.exts.back() = alpn_ext({"h2", ""});
  v.push_back({"ALPN empty protocol", hello_stream(a), Error::bad_extension});
  a.exts.back() = TlsExt{16, {0, 0}};
  v.push_back({"ALPN empty list", hello_stream(a), Error::bad_extension});
  a.exts.back() = TlsExt{16, {0, 4, 2, 'h', '2'}};
  v.push_back({"ALPN list length beyond the extension", hello_stream(a), Error::bad_extension});
  a.exts.back() = TlsExt{16, {0, 3, 5, 'h', '2'}};
  v.push_back({"ALPN protocol beyond the list", hello_stream(a), Error::bad_extension});
  a.exts.back() = TlsExt{16, {0}};
  v.push_back({"ALPN one byte", hello_stream(a), Error::bad_extension});
  return v;
}

TEST(TlsHello, Malformed) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.desc);
    const Result r = parse(c.stream);
    EXPECT_EQ(r.status, Status::bad);
    EXPECT_EQ(r.err, c.err) << "got error " << static_cast<int>(r.err);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_FALSE(r.hello.has_sni);
  }
}

// Handshake length beyond what the stream holds so far: wait, never decide.
TEST(TlsHello, HandshakeBeyondStreamNeedsMore) {
  const Bytes msg = hello_msg(tls13_spec("ok.example"));
  const Bytes two = records(msg, {50});
  const struct {
    const char* desc;
    Bytes stream;
  } cases[] = {
      {"empty stream", {}},
      {"record header only", {22, 3, 1, 0x01, 0x00}},
      {"first of two records", records(Bytes(msg.begin(), msg.begin() + 50))},
      {"first record whole, second header cut", Bytes(two.begin(), two.begin() + 58)},
      {"handshake header split over 1-byte records", records(Bytes{1, 0, 1}, {1, 1, 1})},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    const Result r = parse(c.stream);
    EXPECT_EQ(r.status, Status::need_more);
    EXPECT_EQ(r.err, Error::none);
    EXPECT_EQ(r.consumed, 0u);
  }
}

// ---- truncation at every length ----

TEST(TlsHello, TruncatedAtEveryLengthNeedsMore) {
  const HelloSpec pq = pq_spec("pq.example.org");
  ASSERT_EQ(hello_msg(pq).size(), 1700u);  // the post-quantum size of checklist line 6
  HelloSpec ech = tls13_spec("outer.example");
  ech.exts.push_back(ech_ext(100));
  const struct {
    const char* desc;
    Bytes stream;
  } cases[] = {
      {"TLS 1.3 one record", hello_stream(tls13_spec("www.google.com"))},
      {"TLS 1.2 one record", hello_stream(tls12_spec("a.example"))},
      {"ECH", hello_stream(ech)},
      {"post-quantum over 300-byte records", records_of(hello_msg(pq), 300)},
      {"1-byte records", records_of(hello_msg(tls12_spec("a.example")), 1)},
      {"no extensions",
       [] {
         HelloSpec s;
         s.no_extensions = true;
         return hello_stream(s);
       }()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    for (size_t n = 0; n < c.stream.size(); ++n) {
      const Result r = parse(c.stream, n);
      ASSERT_EQ(r.status, Status::need_more) << "at length " << n;
      ASSERT_EQ(r.consumed, 0u);
    }
    EXPECT_EQ(parse(c.stream).status, Status::ok);
  }
}

// ---- differential: any record split gives the verdict of one record ----

std::string verdict(const Result& r) {
  std::string s =
      std::to_string(static_cast<int>(r.status)) + "/" + std::to_string(static_cast<int>(r.err));
  if (r.status == Status::ok) {
    s += "/" + std::string(r.hello.sni.buf, r.hello.sni.len) + "/" +
         std::to_string(r.hello.has_sni) + "/" + std::string(r.hello.alpn, r.hello.alpn_len) + "/" +
         std::to_string(r.hello.has_ech) + "/" + std::to_string(r.hello.legacy_version);
  }
  return s;
}

TEST(TlsHello, DifferentialRecordSplits) {
  HelloSpec ech = tls13_spec("outer.example");
  ech.exts.push_back(ech_ext());
  HelloSpec padded = tls13_spec("Pad.Example.");
  padded.pad_to = 1700;
  const HelloSpec base = tls13_spec("");
  const std::vector<std::pair<const char*, Bytes>> msgs = {
      {"TLS 1.3", hello_msg(tls13_spec("www.google.com"))},
      {"TLS 1.2", hello_msg(tls12_spec("api.stripe.com"))},
      {"no SNI", hello_msg(tls13_spec(""))},
      {"ECH", hello_msg(ech)},
      {"post-quantum 1.7 KB", hello_msg(pq_spec("pq.example.org"))},
      {"padded 1700", hello_msg(padded)},
      {"bad: duplicate SNI", hello_msg(with_exts(base, {sni_ext("a.b"), sni_ext("c.d")}))},
      {"bad: NUL in name", hello_msg(tls13_spec(std::string("a\0b.c", 5)))},
      {"bad: name_type 1", hello_msg(with_exts(base, {TlsExt{0, {0, 4, 1, 0, 1, 'a'}}}))},
      {"bad: duplicate extension", hello_msg(with_exts(base, {TlsExt{9, {}}, TlsExt{9, {}}}))},
  };
  std::mt19937 rng(4);
  for (const auto& [desc, msg] : msgs) {
    SCOPED_TRACE(desc);
    const std::string want = verdict(parse(records(msg)));
    std::vector<std::vector<size_t>> splits;
    for (size_t k : {1, 2, 3, 7, 64, 300, 1000}) {
      splits.push_back(std::vector<size_t>((msg.size() + k - 1) / k, k));
    }
    for (int i = 0; i < 60; ++i) {  // random cuts into 2..12 records
      std::vector<size_t> cuts;
      const size_t parts = 2 + rng() % 11;
      for (size_t p = 0; p + 1 < parts; ++p) cuts.push_back(1 + rng() % (msg.size() / 4 + 1));
      splits.push_back(cuts);
    }
    for (size_t at = 1; at < msg.size(); at += 1 + msg.size() / 50) splits.push_back({at});
    for (const std::vector<size_t>& sizes : splits) {
      const Bytes stream = records(msg, sizes);
      const Result r = parse(stream);
      ASSERT_EQ(verdict(r), want) << "records of " << sizes.front() << ", n=" << sizes.size();
      if (r.status == Status::ok) {
        ASSERT_EQ(r.consumed, stream.size());
      }
    }
  }
}

// ---- public captures ----

// The client's TCP payloads of every flow whose SYN is in ../shared/pcaps/NAME,
// concatenated in sequence order: one stream per flow, and how many segments carried the
// flow's first 300 bytes. False when the file is missing.
bool client_streams(const std::string& name, std::vector<Bytes>* out,
                    std::vector<size_t>* segments) {
  char errbuf[PCAP_ERRBUF_SIZE];
  const std::string path = "../shared/pcaps/" + name;
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  if (p == nullptr) return false;
  struct Flow {
    bool have_isn = false;
    uint32_t isn = 0;
    std::map<uint32_t, Bytes> segs;  // seq -> payload
  };
  std::map<std::string, Flow> flows;
  std::vector<std::string> order;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) {
    ParsedPacket pp;
    if (parse_frame(d, h->caplen, &pp).status != ParseStatus::ok) continue;
    if (pp.kind != FrameKind::ip || pp.l34.proto != 6 || pp.l4_offset == 0) continue;
    const bool syn = (pp.tcp_flags & 0x12) == 0x02;
    if (!syn && pp.l34.dport != 443) continue;  // the client side only
    const std::string key(reinterpret_cast<const char*>(pp.l34.src), 16);
    const std::string k = key + std::string(reinterpret_cast<const char*>(pp.l34.dst), 16) +
                          std::to_string(pp.l34.sport) + ":" + std::to_string(pp.l34.dport);
    if (flows.find(k) == flows.end()) order.push_back(k);
    Flow& f = flows[k];
    if (syn) {
      f.have_isn = true;
      f.isn = pp.tcp_seq + 1;
    }
    if (pp.payload_len > 0) {
      f.segs[pp.tcp_seq] = Bytes(d + pp.payload_offset, d + pp.payload_offset + pp.payload_len);
    }
  }
  pcap_close(p);
  for (const std::string& k : order) {
    Flow& f = flows[k];
    if (f.segs.empty() || !f.have_isn) continue;  // flows caught mid-way are not starts
    uint32_t next = f.isn;
    Bytes s;
    for (bool grew = true; grew;) {  // contiguous bytes from the start, in sequence order
      grew = false;
      for (const auto& [seq, b] : f.segs) {
        const uint32_t off = next - seq;
        if (off < b.size()) {
          s.insert(s.end(), b.begin() + off, b.end());
          next += static_cast<uint32_t>(b.size() - off);
          grew = true;
        }
      }
    }
    size_t n = 0;
    for (const auto& [seq, b] : f.segs) n += (seq - f.isn) < 300 ? 1 : 0;
    out->push_back(s);
    segments->push_back(n);
  }
  return true;
}

// What Wireshark's tls.handshake.extensions_server_name shows for each client flow of a
// capture, in order of the flows' SYNs ("" = no server_name extension).
struct CaptureCase {
  const char* file;
  std::vector<std::string> snis;
  bool ech;        // the first flow offers encrypted_client_hello
  bool segmented;  // the first hello spans several TCP segments
};

TEST(TlsHelloCaptures, ExtractsTheNamesWiresharkShows) {
  const std::string cf = "951c558a-5e07-47ca-a0c0-225da1b33163.is-";
  const std::vector<CaptureCase> cases = {
      {"tls_tls-client-hello-frag-01_dump_mtu300.pcap", {"www.google.com"}, false, true},
      {"tls_ech.pcapng", {"performance.radar.cloudflare.com"}, true, false},
      {"no_sni.pcap",
       {"mozilla.cloudflare-dns.com", "", cf + "cf.help.every1dns.net",
        cf + "doh.help.every1dns.net", "", "", ""},
       false,
       false},
  };
  for (const CaptureCase& c : cases) {
    SCOPED_TRACE(c.file);
    std::vector<Bytes> streams;
    std::vector<size_t> segments;
    if (!client_streams(c.file, &streams, &segments))
      GTEST_SKIP() << "missing ../shared/pcaps/" << c.file;
    ASSERT_EQ(streams.size(), c.snis.size());
    for (size_t i = 0; i < streams.size(); ++i) {
      const Result r = parse(streams[i]);
      ASSERT_EQ(r.status, Status::ok) << "flow " << i << " error " << static_cast<int>(r.err);
      EXPECT_EQ(r.hello.has_sni, !c.snis[i].empty()) << "flow " << i;
      EXPECT_EQ(std::string(r.hello.sni.buf, r.hello.sni.len), c.snis[i]) << "flow " << i;
      EXPECT_EQ(r.hello.has_ech, i == 0 && c.ech) << "flow " << i;
      if (i == 0) {
        EXPECT_EQ(segments[0] > 1 && r.consumed > 300, c.segmented);
      }
      // Every prefix of the real hello waits for more.
      for (size_t n = 0; n < r.consumed; ++n) {
        ASSERT_EQ(parse(streams[i], n).status, Status::need_more) << "flow " << i << " at " << n;
      }
    }
  }
}

}  // namespace
}  // namespace egw::l7
