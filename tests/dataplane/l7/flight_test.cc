// Unit tests for dataplane/l7/flight.cc: tables of {description, port, client bytes,
// expected status, error, name}, truncation at every byte, and a differential test: the
// bytes grown in every way through repeated calls decide like the unsplit input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/l7/reasm.h"
#include "tests/support/dns_msg.h"
#include "tests/support/tls_hello.h"

namespace egw::l7 {
namespace {

using test::alert_record;
using test::app_data_record;
using test::ccs_record;
using test::dns_header;
using test::dns_query;
using test::dns_question;
using test::dns_tcp_framed;
using test::dns_u16;
using test::ech_ext;
using test::handshake_record;
using test::hello_msg;
using test::hello_stream;
using test::HelloSpec;
using test::pq1024_spec;
using test::pq_spec;
using test::records;
using test::records_of;
using test::retry_spec;
using test::sni_ext;
using test::sni_list_ext;
using test::tls12_spec;
using test::tls13_spec;
using test::TlsExt;
using Bytes = std::vector<uint8_t>;

constexpr uint16_t kHttps = 443;
constexpr uint16_t kDns = 53;

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes str(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

// An encrypted record of `type` (version 3.3): `start`, then ciphertext-like bytes up to
// `n` bytes of content (TLS 1.2's Finished with AES-GCM: 40).
Bytes sealed(uint8_t type, Bytes start, size_t n = 40) {
  for (size_t i = start.size(); i < n; ++i) start.push_back(static_cast<uint8_t>(i * 151 + 7));
  return records(start, {}, type, 0x0303);
}

// ---- running the parser ------------------------------------------------------------
struct Outcome {
  Status status = Status::need_more;
  Error err = Error::none;
  FlowName name;
  FlightState st;
  size_t calls = 0;
};

std::string text(const FlowName& n) {
  return std::string(n.name.buf, n.name.len);
}

// One call over an exact-size heap copy of b[0, len), so ASan flags any read past len.
void call(const Bytes& b, size_t len, uint16_t port, Outcome* r) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len > 0) std::memcpy(copy.get(), b.data(), len);
  r->status =
      parse_tcp_flight(len == 0 ? nullptr : copy.get(), len, port, &r->st, &r->name, &r->err);
  ++r->calls;
}

Outcome one_shot(const Bytes& b, uint16_t port) {
  Outcome r;
  call(b, b.size(), port, &r);
  return r;
}

// Feeds b grown to each cut in turn (ascending, the last one b.size()), calling only once
// len >= st.want as the caller does, and once more at the end whatever want says.
Outcome grown(const Bytes& b, uint16_t port, const std::vector<size_t>& cuts) {
  Outcome r;
  for (size_t cut : cuts) {
    if (cut < r.st.want) continue;
    call(b, cut, port, &r);
    if (r.status == Status::bad) return r;
  }
  call(b, b.size(), port, &r);
  return r;
}

void expect_same(const Outcome& got, const Outcome& want, const std::string& how) {
  SCOPED_TRACE(how);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.err, want.err);
  EXPECT_EQ(got.st.done, want.st.done);
  EXPECT_EQ(got.name.app, want.name.app);
  EXPECT_EQ(got.name.has_name, want.name.has_name);
  EXPECT_EQ(got.name.ip_literal, want.name.ip_literal);
  EXPECT_EQ(text(got.name), text(want.name));
  EXPECT_EQ(got.name.ech, want.name.ech);
  EXPECT_EQ(std::string(got.name.alpn, got.name.alpn_len),
            std::string(want.name.alpn, want.name.alpn_len));
}

// ---- the table ---------------------------------------------------------------------
struct Case {
  std::string desc;
  uint16_t port;
  Bytes in;
  Status status;
  Error err = Error::none;
  AppProto app = AppProto::unknown;
  std::string name = {};  // the name, or the literal when ip
  bool ip = false;
  bool done = false;
};

Case ok(std::string desc, uint16_t port, Bytes in, AppProto app, std::string name,
        bool done = false) {
  return {std::move(desc), port,  std::move(in), Status::ok, Error::none, app,
          std::move(name), false, done};
}
Case literal(std::string desc, uint16_t port, Bytes in, AppProto app, std::string ip,
             bool done = false) {
  return {std::move(desc), port, std::move(in), Status::ok, Error::none, app,
          std::move(ip),   true, done};
}
Case bad(std::string desc, uint16_t port, Bytes in, Error err) {
  return {std::move(desc), port, std::move(in), Status::bad, err};
}
Case more(std::string desc, uint16_t port, Bytes in) {
  return {std::move(desc), port, std::move(in), Status::need_more};
}

const std::string kGet = "GET / HTTP/1.1\r\n";
std::string get(const std::string& host) {
  return kGet + "Host: " + host + "\r\n\r\n";
}

std::vector<Case> tls_cases() {
  const Bytes g = hello_stream(tls13_spec("www.example.com"));
  const Bytes evil = hello_stream(tls13_spec("evil.example"));
  const HelloSpec first = tls13_spec("www.example.com");
  const Bytes retry_same = hello_stream(retry_spec(first));
  const Bytes retry_evil = hello_stream(retry_spec(tls13_spec("evil.example")));
  const Bytes retry_none = hello_stream(retry_spec(tls13_spec("")));
  const Bytes retry_split = records(hello_msg(retry_spec(tls13_spec("evil.example"))), {50});
  const Bytes tls12 = hello_stream(tls12_spec("api.example"));
  const Bytes none = hello_stream(tls13_spec(""));
  HelloSpec ech = tls13_spec("public.example");
  ech.exts.push_back(ech_ext());
  const Bytes pq = hello_msg(pq_spec("pq.example.org"));
  const Bytes pq1024 = hello_msg(pq1024_spec("kyber.example.org"));
  Bytes too_long = g;
  too_long[3] = 0x48;  // record length 0x48xx > 2^14 + 2048
  Bytes sslv2 = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
  Bytes hs_over_record = records(hello_msg(tls13_spec("a.example")), {40});  // 2 records
  hs_over_record.resize(45);                                  // the first record only ...
  hs_over_record = cat({hs_over_record, app_data_record()});  // ... then application data
  HelloSpec two_sni = tls13_spec("");
  two_sni.exts.push_back(sni_ext("a.example"));
  two_sni.exts.push_back(sni_ext("b.example"));
  return {
      ok("TLS 1.3 hello, more records may follow", kHttps, g, AppProto::tls, "www.example.com"),
      ok("TLS 1.2 hello", kHttps, tls12, AppProto::tls, "api.example"),
      ok("any port: TLS is found by its bytes", 8443, g, AppProto::tls, "www.example.com"),
      ok("hello then ChangeCipherSpec: a second hello may follow", kHttps, cat({g, ccs_record()}),
         AppProto::tls, "www.example.com"),
      ok("hello, ChangeCipherSpec, application data: done", kHttps,
         cat({g, ccs_record(), app_data_record()}), AppProto::tls, "www.example.com", true),
      ok("hello then application data (0-RTT): done", kHttps, cat({g, app_data_record()}),
         AppProto::tls, "www.example.com", true),
      ok("hello then a plaintext alert: servers may read on", kHttps, cat({g, alert_record()}),
         AppProto::tls, "www.example.com"),
      ok("hello, CCS, an encrypted alert: done", kHttps, cat({g, ccs_record(), sealed(21, {}, 26)}),
         AppProto::tls, "www.example.com", true),
      ok("hello, CCS, a record of another type: done", kHttps,
         cat({g, ccs_record(), sealed(24, {}, 30)}), AppProto::tls, "www.example.com", true),
      ok("hello then TLS 1.2 ClientKeyExchange: done", kHttps,
         cat({g, handshake_record(16, 70), ccs_record()}), AppProto::tls, "www.example.com", true),
      ok("no SNI: no name", kHttps, none, AppProto::tls, ""),
      ok("ECH: the outer name (checklist 8)", kHttps, hello_stream(ech), AppProto::tls,
         "public.example"),
      ok("upper case and trailing dot normalised (checklist 9)", kHttps,
         hello_stream(tls13_spec("WWW.Example.COM.")), AppProto::tls, "www.example.com"),
      literal("IP-literal SNI: logged, not a name", kHttps, hello_stream(tls13_spec("192.0.2.1")),
              AppProto::tls, "192.0.2.1"),
      ok("post-quantum hello, one record (checklist 6)", kHttps, records(pq), AppProto::tls,
         "pq.example.org"),
      ok("post-quantum hello over 300-byte records (checklist 2)", kHttps, records_of(pq, 300),
         AppProto::tls, "pq.example.org"),
      ok("~1.7 KB key share over 1-byte records", kHttps, records_of(pq1024, 1), AppProto::tls,
         "kyber.example.org"),
      ok("retry: second hello with the same SNI, then nothing to watch", kHttps,
         cat({g, retry_same}), AppProto::tls, "www.example.com", true),
      ok("a third hello is not read (one HelloRetryRequest at most)", kHttps,
         cat({g, retry_same, evil}), AppProto::tls, "www.example.com", true),
      ok("retry: second hello, same SNI, then CCS", kHttps, cat({g, retry_same, ccs_record()}),
         AppProto::tls, "www.example.com", true),
      bad("retry: second hello with another SNI (checklist 11)", kHttps, cat({g, retry_evil}),
          Error::name_mismatch),
      bad("retry: second hello without SNI", kHttps, cat({g, retry_none}), Error::name_mismatch),
      bad("retry: first without SNI, second with one", kHttps, cat({none, retry_same}),
          Error::name_mismatch),
      bad("retry: second hello over records, another SNI", kHttps,
          cat({g, records_of(hello_msg(tls13_spec("evil.example")), 50)}), Error::name_mismatch),
      // Middlebox-compatibility mode: ChangeCipherSpec before the second hello.
      ok("retry after CCS, same SNI", kHttps, cat({g, ccs_record(), retry_same}), AppProto::tls,
         "www.example.com", true),
      bad("retry after CCS, another SNI (checklist 11)", kHttps, cat({g, ccs_record(), retry_evil}),
          Error::name_mismatch),
      bad("retry after CCS, without SNI", kHttps, cat({g, ccs_record(), retry_none}),
          Error::name_mismatch),
      bad("retry after CCS over 50-byte records, another SNI", kHttps,
          cat({g, ccs_record(), records_of(hello_msg(retry_spec(tls13_spec("evil.example"))), 50)}),
          Error::name_mismatch),
      bad("retry after CCS, handshake header over 1-byte records", kHttps,
          cat({g, ccs_record(), records_of(hello_msg(retry_spec(tls13_spec("evil.example"))), 1)}),
          Error::name_mismatch),
      bad("retry after two CCS records (servers drop every one)", kHttps,
          cat({g, ccs_record(), ccs_record(), retry_evil}), Error::name_mismatch),
      bad("retry after a plaintext alert (user_canceled), another SNI", kHttps,
          cat({g, Bytes{21, 3, 3, 0, 2, 1, 90}, retry_evil}), Error::name_mismatch),
      bad("retry after CCS, malformed", kHttps, cat({g, ccs_record(), hello_stream(two_sni)}),
          Error::duplicate),
      bad("retry after CCS, a CCS between its records", kHttps,
          cat({g, ccs_record(), Bytes(retry_split.begin(), retry_split.begin() + 55), ccs_record(),
               Bytes(retry_split.begin() + 55, retry_split.end())}),
          Error::not_handshake),
      bad("retry after CCS, a plaintext alert between its records", kHttps,
          cat({g, ccs_record(), Bytes(retry_split.begin(), retry_split.begin() + 55),
               alert_record(), Bytes(retry_split.begin() + 55, retry_split.end())}),
          Error::not_handshake),
      bad("after CCS, a ChangeCipherSpec of another version", kHttps,
          cat({g, ccs_record(), Bytes{20, 2, 0, 0, 1, 1}}), Error::bad_version),
      // TLS 1.2 resumption: CCS, then the encrypted Finished (a handshake record).
      ok("TLS 1.2: CCS, encrypted Finished: done", kHttps,
         cat({tls12, ccs_record(), sealed(22, {0x9c, 0x41})}), AppProto::tls, "api.example", true),
      ok("TLS 1.2: CCS, encrypted Finished starting with 1, no hello's length: done", kHttps,
         cat({tls12, ccs_record(), sealed(22, {1, 0xa7, 0x3c, 0x05})}), AppProto::tls,
         "api.example", true),
      ok("TLS 1.2: CCS, encrypted Finished starting with 1 and 40 (too short): done", kHttps,
         cat({tls12, ccs_record(), sealed(22, {1, 0, 0, 40})}), AppProto::tls, "api.example", true),
      ok("TLS 1.2: CCS, encrypted Finished reading as a hello's start, then application data: "
         "done",
         kHttps, cat({tls12, ccs_record(), sealed(22, {1, 0, 1, 0x20}), app_data_record()}),
         AppProto::tls, "api.example", true),
      ok("TLS 1.2: Finished reading as a hello's start, then an encrypted alert: done", kHttps,
         cat({tls12, ccs_record(), sealed(22, {1, 0, 1, 0x20}), sealed(21, {}, 26)}), AppProto::tls,
         "api.example", true),
      ok("TLS 1.2: encrypted Finished reading as a hello's start, nothing after it yet", kHttps,
         cat({tls12, ccs_record(), sealed(22, {1, 0, 1, 0x20})}), AppProto::tls, "api.example"),
      bad("TLS 1.2: encrypted Finished reading as a hello that fits its record (p ~ 5e-9)", kHttps,
          cat({tls12, ccs_record(), sealed(22, {1, 0, 0, 50}, 64)}), Error::not_handshake),
      ok("after CCS, a 1-byte record 01 then application data: done", kHttps,
         cat({g, ccs_record(), records(Bytes{1}, {}, 22, 0x0303), app_data_record()}),
         AppProto::tls, "www.example.com", true),
      bad("retry: second hello malformed", kHttps, cat({g, hello_stream(two_sni)}),
          Error::duplicate),
      bad("after the hello, an unknown record type", kHttps, cat({g, Bytes{24, 3, 3, 0, 1, 1}}),
          Error::not_handshake),
      bad("after the hello, a record of another version", kHttps,
          cat({g, Bytes{22, 2, 0, 0, 1, 1}}), Error::bad_version),
      // Checklist 9.
      bad("two server_name extensions", kHttps, hello_stream(two_sni), Error::duplicate),
      bad("two host names in one list", kHttps, hello_stream([] {
            HelloSpec s = tls13_spec("");
            s.exts.push_back(sni_list_ext({"a.example", "b.example"}));
            return s;
          }()),
          Error::duplicate),
      bad("NUL in the SNI", kHttps, hello_stream(tls13_spec(std::string("a\0b.example", 11))),
          Error::bad_name),
      bad("SNI over 255 bytes", kHttps, hello_stream(tls13_spec(std::string(256, 'a'))),
          Error::bad_name),
      bad("invalid characters in the SNI", kHttps, hello_stream(tls13_spec("a b.example")),
          Error::bad_name),
      bad("numeric SNI read as IPv4 by clients", kHttps, hello_stream(tls13_spec("127.1")),
          Error::bad_name),
      // Checklist 12.
      bad("record length over 2^14+2048", kHttps, too_long, Error::record_too_long),
      bad("handshake length beyond its record", kHttps, hs_over_record, Error::not_handshake),
      bad("next record of the hello: its first byte is not handshake", kHttps,
          cat({Bytes(hs_over_record.begin(), hs_over_record.begin() + 45), Bytes{23}}),
          Error::not_handshake),
      bad("next record of the hello: its second byte is not version 3", kHttps,
          cat({Bytes(hs_over_record.begin(), hs_over_record.begin() + 45), Bytes{22, 4}}),
          Error::bad_version),
      bad("SSLv2-format hello", kHttps, sslv2, Error::unsupported),
      bad("first message not a ClientHello", kHttps, handshake_record(2, 40), Error::not_handshake),
      bad("first record of length 0", kHttps, Bytes{22, 3, 1, 0, 0}, Error::not_handshake),
      more("hello not complete", kHttps, Bytes(g.begin(), g.end() - 1)),
  };
}

std::vector<Case> http_cases() {
  const std::string post = "POST /f HTTP/1.1\r\nHost: ok.example\r\nContent-Length: ";
  const std::string chunked =
      "POST /f HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string big = kGet + "Host: big.example\r\nX-Pad: ";
  big += std::string(kMaxHttpHead - big.size() - 4, 'p') + "\r\n\r\n";
  return {
      ok("GET with Host", 80, str(get("www.example.com")), AppProto::http, "www.example.com"),
      ok("any port: HTTP is found by its method", 8080, str(get("a.example")), AppProto::http,
         "a.example"),
      ok("absolute target wins over Host (checklist 14)", 80,
         str("GET http://evil.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n"), AppProto::http,
         "evil.example"),
      bad("two Host headers (checklist 15)", 80,
          str(kGet + "Host: a.example\r\nHost: b.example\r\n\r\n"), Error::duplicate),
      bad("'Host :' (checklist 15)", 80, str(kGet + "Host : a.example\r\n\r\n"), Error::bad_syntax),
      bad("obs-fold (checklist 15)", 80, str(kGet + "Host: a.example\r\n b\r\n\r\n"),
          Error::bad_syntax),
      bad("no Host in HTTP/1.1 (checklist 15)", 80, str(kGet + "Accept: */*\r\n\r\n"),
          Error::bad_syntax),
      ok("Host with port, trailing dot, mixed case (checklist 16)", 80,
         str(get("WWW.Example.COM.:8080")), AppProto::http, "www.example.com"),
      literal("Host [v6]:port (checklist 16)", 80, str(get("[2001:DB8::1]:8080")), AppProto::http,
              "2001:db8::1"),
      literal("Host IPv4 literal", 80, str(get("192.0.2.7")), AppProto::http, "192.0.2.7"),
      bad("Host userinfo ok@evil (checklist 16)", 80, str(get("ok.example@evil.example")),
          Error::bad_name),
      ok("pipelined, same host (checklist 17)", 80,
         str(get("a.example") + "GET /2 HTTP/1.1\r\nHost: A.example:80\r\n\r\n"), AppProto::http,
         "a.example"),
      bad("pipelined, another host (checklist 17)", 80, str(get("a.example") + get("evil.example")),
          Error::name_mismatch),
      bad("pipelined, third request to another host", 80,
          str(get("a.example") + get("a.example") + get("evil.example")), Error::name_mismatch),
      bad("pipelined, a name then an IP literal", 80, str(get("a.example") + get("192.0.2.1")),
          Error::name_mismatch),
      bad("pipelined, no Host (HTTP/1.0) then a name", 80,
          str("GET / HTTP/1.0\r\n\r\n" + get("a.example")), Error::name_mismatch),
      bad("pipelined, absolute target to another host", 80,
          str(get("a.example") + "GET http://evil.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
          Error::name_mismatch),
      bad("pipelined, second request malformed", 80, str(get("a.example") + "GET /\r\n\r\n"),
          Error::bad_version),
      ok("body skipped by Content-Length, then the same host", 80,
         str(post + "5\r\n\r\nhello" + get("ok.example")), AppProto::http, "ok.example"),
      bad("body skipped by Content-Length, then another host", 80,
          str(post + "5\r\n\r\nhello" + get("evil.example")), Error::name_mismatch),
      ok("a request inside a body is body", 80, str(post + "40\r\n\r\n" + get("evil.example")),
         AppProto::http, "ok.example"),
      ok("Content-Length list of equal values", 80, str(post + "2, 2\r\n\r\nhi"), AppProto::http,
         "ok.example"),
      ok("Content-Length 0", 80, str(post + "0\r\n\r\n" + get("ok.example")), AppProto::http,
         "ok.example"),
      bad("differing Content-Length values", 80, str(post + "2\r\nContent-Length: 3\r\n\r\nhi"),
          Error::duplicate),
      bad("differing values in one Content-Length", 80, str(post + "2, 3\r\n\r\nhi"),
          Error::duplicate),
      bad("Content-Length not a number", 80, str(post + "-1\r\n\r\n"), Error::bad_syntax),
      bad("Content-Length and Transfer-Encoding", 80,
          str(post + "5\r\nTransfer-Encoding: chunked\r\n\r\nhello"), Error::bad_syntax),
      ok("chunked body: done, later requests not checked", 80,
         str(chunked + "5\r\nhello\r\n0\r\n\r\n" + get("evil.example")), AppProto::http,
         "ok.example", true),
      ok("huge Content-Length: done", 80, str(post + "99999999999\r\n\r\nabc"), AppProto::http,
         "ok.example", true),
      ok("CONNECT: done, named by its authority (checklist 18)", 80,
         str("CONNECT evil.example:443 HTTP/1.1\r\nHost: ok.example\r\n\r\n\x16\x03\x01"),
         AppProto::http, "evil.example", true),
      ok("Upgrade: done (checklist 18)", 80,
         str(kGet + "Host: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81"),
         AppProto::http, "ws.example", true),
      bad("HTTP/2 prior knowledge (checklist 18)", 80, str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
          Error::unsupported),
      bad("HTTP/2 preface after a request", 80,
          str(get("a.example") + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Error::unsupported),
      ok("empty lines before the request", 80, str("\r\n\n" + get("a.example")), AppProto::http,
         "a.example"),
      ok("empty lines between requests", 80, str(get("a.example") + "\r\n" + get("a.example")),
         AppProto::http, "a.example"),
      ok("head of exactly kMaxHttpHead", 80, str(big), AppProto::http, "big.example"),
      bad("head one byte over kMaxHttpHead", 80, str(big.substr(0, 30) + "p" + big.substr(30)),
          Error::too_large),
      bad("head without an end over kMaxHttpHead", 80,
          str(kGet + "Host: a\r\nX: " + std::string(kMaxHttpHead, 'x')), Error::too_large),
      bad("empty lines only, over kMaxHttpHead", 80, str(std::string(kMaxHttpHead + 2, '\n')),
          Error::too_large),
      bad("NUL in a header, head unfinished", 80, str(kGet + std::string("Host: a\0", 8)),
          Error::bad_syntax),
      bad("bare CR, head unfinished", 80, str(kGet + "Host: a\rb"), Error::bad_syntax),
      more("head unfinished", 80, str(kGet + "Host: a.example\r\n")),
  };
}

std::vector<Case> dns_cases() {
  const Bytes q = dns_query("www.example.com");
  const Bytes fq = dns_tcp_framed(q);
  const Bytes loop = cat({dns_header(), dns_u16(0xC00C), dns_u16(1), dns_u16(1)});
  Bytes long_label = dns_query(std::string(64, 'a') + ".com");
  const Bytes reserved = cat({dns_header(), Bytes{0x80, 1, 'a', 0}, dns_u16(1), dns_u16(1)});
  const Bytes past_end = cat({dns_header(), dns_u16(0xC0FF), dns_u16(1), dns_u16(1)});
  return {
      ok("one query", kDns, dns_tcp_framed(q), AppProto::dns, "www.example.com"),
      ok("two queries for the same name in one segment (checklist 22)", kDns,
         cat({dns_tcp_framed(q), dns_tcp_framed(dns_query("WWW.example.com", 1, 0x4321))}),
         AppProto::dns, "www.example.com"),
      bad("a second query for another name", kDns,
          cat({dns_tcp_framed(q), dns_tcp_framed(dns_query("evil.example"))}),
          Error::name_mismatch),
      bad("a second message that is a response", kDns,
          cat({dns_tcp_framed(q),
               dns_tcp_framed(cat({dns_header(0x8180), dns_question("www.example.com")}))}),
          Error::bad_syntax),
      bad("two questions (checklist 21)", kDns,
          dns_tcp_framed(
              cat({dns_header(0x0100, 2), dns_question("a.example"), dns_question("b.example")})),
          Error::count_not_one),
      bad("no question (checklist 21)", kDns, dns_tcp_framed(dns_header(0x0100, 0)),
          Error::count_not_one),
      bad("pointer loop (checklist 19)", kDns, dns_tcp_framed(loop), Error::pointer_loop),
      bad("pointer past the end (checklist 20)", kDns, dns_tcp_framed(past_end),
          Error::truncated_field),
      bad("reserved label type (checklist 20)", kDns, dns_tcp_framed(reserved), Error::bad_name),
      bad("label over 63 (checklist 20)", kDns, dns_tcp_framed(long_label), Error::bad_name),
      bad("message length 0", kDns, Bytes{0, 0}, Error::bad_syntax),
      bad("port 53 is DNS whatever the bytes", kDns, Bytes{0, 5, 'h', 'e', 'l', 'l', 'o'},
          Error::truncated_field),
      more("query not complete", kDns, Bytes(fq.begin(), fq.end() - 1)),
  };
}

std::vector<Case> other_cases() {
  return {
      more("nothing yet", kHttps, {}),
      ok("SSH banner: unknown", 22, str("SSH-2.0-OpenSSH_9.6\r\n"), AppProto::unknown, "", true),
      ok("binary: unknown", 5432, Bytes{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f}, AppProto::unknown, "",
         true),
      ok("application data record first: unknown", kHttps, app_data_record(), AppProto::unknown, "",
         true),
      ok("17-letter token: unknown", 80, str("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n"), AppProto::unknown,
         "", true),
      ok("lower-case method: unknown (documented)", 80, str("get / HTTP/1.1\r\n"),
         AppProto::unknown, "", true),
      ok("a space first: unknown", 80, str(" GET / HTTP/1.1\r\n"), AppProto::unknown, "", true),
      bad("16-letter method token: HTTP, refused by the parser", 80,
          str("ABCDEFGHIJKLMNOP / HTTP/1.1\r\nHost: a\r\n\r\n"), Error::bad_syntax),
      bad("an upper-case word and a space: HTTP, refused", 6379, str("AUTH secret\r\n"),
          Error::bad_version),
      bad("first byte with the high bit set", 8000, Bytes{0xff, 0xfe, 0}, Error::unsupported),
      more("method token unfinished", 80, str("OPTIONS")),
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (auto* f : {tls_cases, http_cases, dns_cases, other_cases}) {
    for (Case& c : f()) v.push_back(std::move(c));
  }
  return v;
}

void check(const Case& c, const Outcome& r) {
  ASSERT_EQ(r.status, c.status) << "err " << static_cast<int>(r.err);
  EXPECT_EQ(r.err, c.err);
  if (c.status == Status::bad) {
    EXPECT_TRUE(r.st.done);
    return;
  }
  EXPECT_EQ(r.st.done, c.done);
  if (c.status == Status::need_more) {
    EXPECT_FALSE(r.st.decided);
    EXPECT_GT(r.st.want, c.in.size());
    return;
  }
  EXPECT_TRUE(r.st.decided);
  EXPECT_EQ(r.name.app, c.app);
  EXPECT_EQ(r.name.has_name, !c.ip && !c.name.empty());
  EXPECT_EQ(r.name.ip_literal, c.ip);
  EXPECT_EQ(text(r.name), c.name);
  EXPECT_EQ(r.name.name.buf[r.name.name.len], '\0');
  if (!c.done) {
    EXPECT_GT(r.st.want, c.in.size());
  }
}

TEST(Flight, Table) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.desc);
    check(c, one_shot(c.in, c.port));
  }
}

// A bad verdict sticks: calling again (with the same or more bytes) says bad again.
TEST(Flight, BadSticks) {
  for (const Case& c : all_cases()) {
    if (c.status != Status::bad) continue;
    SCOPED_TRACE(c.desc);
    Outcome r = one_shot(c.in, c.port);
    Bytes more_bytes = cat({c.in, str(get("x.example"))});
    call(more_bytes, more_bytes.size(), c.port, &r);
    EXPECT_EQ(r.status, Status::bad);
    EXPECT_EQ(r.err, c.err);
  }
}

// Every strict prefix, fresh: never bad for an input that is not bad, never a crash or an
// over-read; once a prefix is decided it names what the whole input names.
TEST(Flight, EveryTruncation) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.desc);
    const Outcome full = one_shot(c.in, c.port);
    const size_t step = c.in.size() > 4096 ? 61 : 1;  // the 16 KB heads: a sample of cuts
    for (size_t n = 0; n < c.in.size(); n += step) {
      const Outcome r = one_shot(Bytes(c.in.begin(), c.in.begin() + n), c.port);
      if (c.status != Status::bad) {
        ASSERT_NE(r.status, Status::bad) << "prefix " << n << " err " << static_cast<int>(r.err);
      } else if (r.status == Status::bad) {
        EXPECT_EQ(r.err, c.err) << "prefix " << n;
      }
      if (r.status == Status::ok && full.status == Status::ok) {
        EXPECT_EQ(text(r.name), text(full.name)) << "prefix " << n;
        EXPECT_EQ(r.name.app, full.name.app) << "prefix " << n;
      }
    }
  }
}

// Cut points: every byte; random ones (fixed seed); a single call.
std::vector<std::vector<size_t>> cut_plans(size_t size, std::mt19937* rng) {
  std::vector<std::vector<size_t>> plans;
  std::vector<size_t> every;
  for (size_t n = 0; n <= size; ++n) every.push_back(n);
  plans.push_back(every);
  for (int t = 0; t < 8; ++t) {
    std::vector<size_t> cuts;
    std::uniform_int_distribution<size_t> pick(0, size);
    const int k = 1 + static_cast<int>((*rng)() % 12);
    for (int i = 0; i < k; ++i) cuts.push_back(pick(*rng));
    std::sort(cuts.begin(), cuts.end());
    plans.push_back(cuts);
  }
  plans.push_back({size});
  return plans;
}

// Checklist 1, 2, 17, 22: every way the bytes can arrive gives the unsplit verdict.
TEST(Flight, DifferentialOverSplits) {
  std::vector<Case> inputs;
  for (const Case& c : all_cases()) {
    if (c.in.size() <= 4096) inputs.push_back(c);
  }
  std::mt19937 rng(20240607);
  for (const Case& c : inputs) {
    SCOPED_TRACE(c.desc);
    const Outcome whole = one_shot(c.in, c.port);
    for (const std::vector<size_t>& cuts : cut_plans(c.in.size(), &rng)) {
      expect_same(grown(c.in, c.port, cuts), whole, std::to_string(cuts.size()) + " cuts");
    }
  }
}

// The same hello in one record or split over records of every size from 1 byte, fed
// byte by byte: one verdict.
TEST(Flight, HelloOverAnyRecordSplit) {
  const std::vector<std::pair<std::string, Bytes>> hellos = {
      {"TLS 1.3", hello_msg(tls13_spec("split.example"))},
      {"post-quantum 1.7 KB", hello_msg(pq_spec("pq.example"))},
      {"SecP384r1MLKEM1024", hello_msg(pq1024_spec("kyber.example"))},
  };
  for (const auto& [desc, msg] : hellos) {
    SCOPED_TRACE(desc);
    const Outcome want = one_shot(records(msg), kHttps);
    ASSERT_EQ(want.status, Status::ok);
    for (size_t rec : {1, 2, 3, 4, 5, 7, 100, 1000}) {
      const Bytes b = records_of(msg, rec);
      std::vector<size_t> every(b.size() + 1);
      for (size_t n = 0; n <= b.size(); ++n) every[n] = n;
      expect_same(grown(b, kHttps, every), want, "records of " + std::to_string(rec));
    }
  }
}

// Respecting st->want, a hello over N records takes O(N) calls, not one per byte, and an
// HTTP head is scanned once: the scan resumes where it stopped.
TEST(Flight, WantBoundsTheCalls) {
  const Bytes msg = hello_msg(pq_spec("pq.example"));
  for (size_t rec : {1, 300, 5000}) {
    const Bytes b = records_of(msg, rec);
    const size_t nrec = (msg.size() + rec - 1) / rec;
    std::vector<size_t> every(b.size() + 1);
    for (size_t n = 0; n <= b.size(); ++n) every[n] = n;
    const Outcome r = grown(b, kHttps, every);
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_LE(r.calls, 4 * nrec + 6) << "records of " << rec;  // header bytes 1, 2, 5, end
  }
  const std::string head = kGet + "Host: a.example\r\nX-Long: " + std::string(3000, 'x');
  const Bytes b = str(head);
  Outcome r;
  for (size_t n = 1; n <= b.size(); ++n) {
    call(b, n, 80, &r);
    ASSERT_EQ(r.status, Status::need_more);
    ASSERT_EQ(r.st.want, n + 1);
    if (r.st.app != AppProto::http) continue;  // still reading the method
    // Scanned up to the last byte (a CR waits for the next byte).
    ASSERT_EQ(r.st.scan, b[n - 1] == '\r' ? n - 1 : n) << "at " << n;
  }
}

// A caller that ignores want (calls at every byte) gets the same verdicts.
TEST(Flight, CallsBelowWantAreHarmless) {
  for (const Case& c : all_cases()) {
    if (c.in.size() > 4096) continue;
    SCOPED_TRACE(c.desc);
    Outcome r;
    for (size_t n = 0; n <= c.in.size(); ++n) {
      call(c.in, n, c.port, &r);
      if (r.status == Status::bad) break;
    }
    expect_same(r, one_shot(c.in, c.port), "every byte, want ignored");
  }
}

// Checklist 1, 3, 17: segments shuffled (and some sent twice) through the first-flight
// reassembly; the parser runs on the contiguous prefix after each segment, as the worker
// does, and decides like the unsplit bytes.
TEST(Flight, DifferentialThroughReassembly) {
  struct Input {
    std::string desc;
    uint16_t port;
    Bytes b;
  };
  const std::vector<Input> inputs = {
      {"post-quantum hello over records", kHttps,
       records_of(hello_msg(pq_spec("pq.example")), 700)},
      {"SecP384r1MLKEM1024 hello", kHttps, hello_stream(pq1024_spec("kyber.example"))},
      {"hello, retry with another SNI", kHttps,
       cat({hello_stream(tls13_spec("a.example")),
            hello_stream(retry_spec(tls13_spec("evil.example")))})},
      {"hello, CCS, retry with another SNI over records", kHttps,
       cat({hello_stream(tls13_spec("a.example")), ccs_record(),
            records_of(hello_msg(retry_spec(tls13_spec("evil.example"))), 90)})},
      {"TLS 1.2: CCS, encrypted Finished reading as a hello's start, application data", kHttps,
       cat({hello_stream(tls12_spec("a.example")), ccs_record(), sealed(22, {1, 0, 1, 0x20}),
            app_data_record(300)})},
      {"pipelined, same host", 80, str(get("a.example") + get("a.example") + get("a.example"))},
      {"pipelined, another host", 80, str(get("a.example") + get("evil.example"))},
      {"DNS over TCP, two queries", kDns,
       cat({dns_tcp_framed(dns_query("a.example")), dns_tcp_framed(dns_query("a.example", 1, 7))})},
  };
  ReasmPool pool;
  ASSERT_TRUE(pool.init(1, 8192));
  std::mt19937 rng(7);
  for (const auto& [desc, port, b] : inputs) {
    SCOPED_TRACE(desc);
    ASSERT_LE(b.size(), 8192u);
    const Outcome whole = one_shot(b, port);
    for (int trial = 0; trial < 20; ++trial) {
      // Segments of 1..200 bytes, shuffled, one in four sent twice.
      std::vector<std::pair<uint32_t, uint32_t>> segs;
      for (uint32_t off = 0; off < b.size();) {
        const uint32_t n = std::min<uint32_t>(1 + rng() % 200, b.size() - off);
        segs.push_back({off, n});
        if (rng() % 4 == 0) segs.push_back({off, n});
        off += n;
      }
      std::shuffle(segs.begin(), segs.end(), rng);
      const uint32_t isn1 = static_cast<uint32_t>(rng());  // any base, wrapping included
      ReasmStream st;
      ASSERT_TRUE(pool.open(&st, isn1, 8192));
      Outcome r;
      for (const auto& [off, n] : segs) {
        ASSERT_EQ(reasm_insert(&st, isn1 + off, b.data() + off, n), ReasmResult::ok);
        if (st.contiguous < r.st.want || r.status == Status::bad) continue;
        r.status = parse_tcp_flight(st.buf, st.contiguous, port, &r.st, &r.name, &r.err);
      }
      ASSERT_EQ(st.contiguous, b.size());
      if (r.status != Status::bad) {
        r.status = parse_tcp_flight(st.buf, st.contiguous, port, &r.st, &r.name, &r.err);
      }
      expect_same(r, whole, "trial " + std::to_string(trial));
      pool.close(&st);
    }
  }
}

TEST(Flight, AppProtoNames) {
  const std::vector<std::pair<AppProto, std::string>> names = {
      {AppProto::unknown, "unknown"}, {AppProto::tls, "tls"},   {AppProto::http, "http"},
      {AppProto::dns, "dns"},         {AppProto::quic, "quic"},
  };
  for (const auto& [a, n] : names) EXPECT_EQ(app_proto_name(a), n);
  EXPECT_STREQ(app_proto_name(static_cast<AppProto>(200)), "unknown");
}

TEST(Flight, TlsFields) {
  HelloSpec s = tls13_spec("ech.example");
  s.exts.push_back(ech_ext());
  const Outcome r = one_shot(hello_stream(s), kHttps);
  ASSERT_EQ(r.status, Status::ok);
  EXPECT_TRUE(r.name.ech);
  EXPECT_EQ(std::string(r.name.alpn, r.name.alpn_len), "h2");
  EXPECT_EQ(r.name.alpn[r.name.alpn_len], '\0');
}

}  // namespace
}  // namespace egw::l7
