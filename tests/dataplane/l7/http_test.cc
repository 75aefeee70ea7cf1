// Unit tests for dataplane/l7/http.cc: tables of {description, request bytes, expected
// verdict and fields}, truncation at every byte, pipelining, size bounds and captures.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/l7/l7.h"

namespace egw::l7 {
namespace {

using namespace std::string_literals;

// Expected outcome; for ok, has_name == !name.empty() and ip_literal == !ip.empty().
struct Want {
  Status status = Status::ok;
  Error err = Error::none;
  std::string name;
  std::string ip;
  bool connect = false;
  bool upgrade = false;
  std::string method;
  size_t consumed = 0;          // 0: the whole input
  int64_t content_length = -1;  // -1: no Content-Length
  bool transfer_encoding = false;
};

struct Case {
  std::string desc;
  std::string input;
  Want want;
};

Want named(const std::string& n) {
  return Want{.name = n};
}
Want literal(const std::string& ip) {
  return Want{.ip = ip};
}
Want bad(Error e) {
  return Want{.status = Status::bad, .err = e};
}

const char* status_str(Status s) {
  return s == Status::ok ? "ok" : s == Status::bad ? "bad" : "need_more";
}

Status parse(const std::string& in, HttpRequest* r, Error* e, size_t* consumed) {
  return parse_http_request(reinterpret_cast<const uint8_t*>(in.data()), in.size(), r, e, consumed);
}

void check(const Case& c) {
  SCOPED_TRACE(c.desc);
  HttpRequest r;
  Error e = Error::truncated_field;
  size_t consumed = 12345;
  const Status s = parse(c.input, &r, &e, &consumed);
  ASSERT_EQ(s, c.want.status) << status_str(s) << " err " << int(e);
  EXPECT_EQ(e, c.want.err);
  if (s != Status::ok) {
    EXPECT_EQ(consumed, 0u);
    EXPECT_FALSE(r.has_name);
    return;
  }
  EXPECT_EQ(consumed, c.want.consumed ? c.want.consumed : c.input.size());
  EXPECT_EQ(r.has_name, !c.want.name.empty());
  EXPECT_EQ(std::string(r.name.buf, r.name.len), c.want.name);
  EXPECT_EQ(r.ip_literal, !c.want.ip.empty());
  EXPECT_EQ(std::string(r.ip), c.want.ip);
  EXPECT_EQ(r.connect, c.want.connect);
  EXPECT_EQ(r.upgrade, c.want.upgrade);
  if (!c.want.method.empty()) {
    EXPECT_EQ(std::string(r.method, r.method_len), c.want.method);
  }
  EXPECT_EQ(r.has_content_length, c.want.content_length >= 0);
  EXPECT_EQ(r.content_length, c.want.content_length >= 0 ? uint64_t(c.want.content_length) : 0);
  EXPECT_EQ(r.transfer_encoding, c.want.transfer_encoding);
}

// Every strict prefix of an ok input needs more; of a bad input, needs more or is bad
// (a verdict, once reached, never changes as bytes arrive).
void check_prefixes(const Case& c) {
  SCOPED_TRACE(c.desc);
  for (size_t n = 0; n < c.input.size(); ++n) {
    HttpRequest r;
    Error e;
    size_t consumed;
    const Status s = parse(c.input.substr(0, n), &r, &e, &consumed);
    if (c.want.status == Status::ok && c.want.consumed == 0) {
      ASSERT_EQ(s, Status::need_more) << "prefix " << n;
    } else if (c.want.status == Status::bad) {
      ASSERT_NE(s, Status::ok) << "prefix " << n;
    }
  }
}

const std::string kGet = "GET / HTTP/1.1\r\n";
const std::string kPost = "POST /f HTTP/1.1\r\nHost: p.example\r\n";

std::vector<Case> cases() {
  return {
      // ---- well-formed ----
      {"origin-form with Host",
       kGet + "Host: example.com\r\n\r\n",
       {.name = "example.com", .method = "GET"}},
      {"many headers", kGet + "Host: a.example\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
       named("a.example")},
      {"HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n", named("example.com")},
      {"HTTP/1.0 without Host: no name", "GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n", Want{}},
      {"HTTP/1.0 no headers at all", "GET / HTTP/1.0\r\n\r\n", Want{}},
      {"bare LF line ends (RFC 9112 2.2)", "GET / HTTP/1.1\nHost: lf.example\n\n",
       named("lf.example")},
      {"mixed CRLF and LF", "GET / HTTP/1.1\r\nHost: mix.example\n\r\n", named("mix.example")},
      {"leading empty lines are skipped", "\r\n\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
       named("a.example")},
      {"body after the head is not consumed",
       "POST /f HTTP/1.1\r\nHost: p.example\r\nContent-Length: 4\r\n\r\nabcd",
       {.name = "p.example", .method = "POST", .consumed = 56, .content_length = 4}},
      {"Host value with OWS around it", kGet + "Host: \t ows.example \t\r\n\r\n",
       named("ows.example")},
      {"field name case-insensitive", kGet + "hOsT: c.example\r\n\r\n", named("c.example")},
      {"empty value of another field", kGet + "Host: a.example\r\nX-Empty:\r\n\r\n",
       named("a.example")},
      {"obs-text in another field value", kGet + "Host: a.example\r\nX: caf\xc3\xa9\r\n\r\n",
       named("a.example")},
      {"15-byte method",
       "ABCDEFGHIJKLMNO / HTTP/1.1\r\nHost: m.example\r\n\r\n",
       {.name = "m.example", .method = "ABCDEFGHIJKLMNO"}},
      {"lower-case method is a token",
       "get / HTTP/1.1\r\nHost: m.example\r\n\r\n",
       {.name = "m.example", .method = "get"}},
      {"OPTIONS asterisk-form",
       "OPTIONS * HTTP/1.1\r\nHost: o.example\r\n\r\n",
       {.name = "o.example", .method = "OPTIONS"}},
      {"underscore in name", kGet + "Host: my_host.example\r\n\r\n", named("my_host.example")},

      // ---- checklist 14: absolute-form target wins over Host ----
      {"absolute target wins over a different Host",
       "GET http://evil.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n", named("evil.example")},
      {"absolute target with port, path and query",
       "GET http://Evil.Example:8080/a/b?c=d HTTP/1.1\r\nHost: ok.example\r\n\r\n",
       named("evil.example")},
      {"absolute target ends at '?'", "GET http://q.example?x=/ HTTP/1.1\r\nHost: ok\r\n\r\n",
       named("q.example")},
      {"absolute target with no path", "GET http://np.example HTTP/1.1\r\nHost: ok\r\n\r\n",
       named("np.example")},
      {"absolute https target", "GET https://s.example/ HTTP/1.1\r\nHost: s.example\r\n\r\n",
       named("s.example")},
      {"'@' in the path is not userinfo", "GET http://ok.example/@evil HTTP/1.1\r\nHost: x\r\n\r\n",
       named("ok.example")},
      {"absolute target, HTTP/1.0 without Host", "GET http://a.example/ HTTP/1.0\r\n\r\n",
       named("a.example")},
      {"absolute target to an IPv4 literal",
       "GET http://192.0.2.7:81/ HTTP/1.1\r\nHost: ok.example\r\n\r\n", literal("192.0.2.7")},
      {"absolute target still needs a Host in 1.1", "GET http://a.example/ HTTP/1.1\r\n\r\n",
       bad(Error::bad_syntax)},
      {"absolute target with a malformed Host",
       "GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n", bad(Error::bad_name)},
      {"absolute target with userinfo",
       "GET http://ok.example@evil.example/ HTTP/1.1\r\nHost: ok\r\n\r\n", bad(Error::bad_name)},
      {"absolute target with backslash before '@'",
       "GET http://evil.example\\@ok.example/ HTTP/1.1\r\nHost: ok\r\n\r\n", bad(Error::bad_name)},
      {"absolute target with empty authority", "GET http:///x HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_name)},
      {"scheme without //", "GET http:/evil/ HTTP/1.1\r\nHost: ok\r\n\r\n", bad(Error::bad_syntax)},
      {"authority-form with GET", "GET evil.example:80 HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_syntax)},
      {"target not starting with a scheme", "GET 1http://a/ HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_syntax)},

      // ---- checklist 15: Host rules ----
      {"two Host headers", kGet + "Host: a.example\r\nHost: b.example\r\n\r\n",
       bad(Error::duplicate)},
      {"two equal Host headers", kGet + "Host: a.example\r\nHost: a.example\r\n\r\n",
       bad(Error::duplicate)},
      {"two Host headers, different case", kGet + "Host: a.example\r\nhost: a.example\r\n\r\n",
       bad(Error::duplicate)},
      {"two Host in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
       bad(Error::duplicate)},
      {"'Host :' whitespace before colon", kGet + "Host : a.example\r\n\r\n",
       bad(Error::bad_syntax)},
      {"'Host\\t:' tab before colon", kGet + "Host\t: a.example\r\n\r\n", bad(Error::bad_syntax)},
      {"obs-fold of Host", kGet + "Host: a.example\r\n b.example\r\n\r\n", bad(Error::bad_syntax)},
      {"obs-fold with HTAB", kGet + "X-A: 1\r\n\t2\r\nHost: a.example\r\n\r\n",
       bad(Error::bad_syntax)},
      {"whitespace line right after the request line", kGet + " Host: a.example\r\n\r\n",
       bad(Error::bad_syntax)},
      {"no Host in HTTP/1.1", kGet + "Accept: */*\r\n\r\n", bad(Error::bad_syntax)},
      {"no headers in HTTP/1.1", kGet + "\r\n", bad(Error::bad_syntax)},
      {"empty Host value", kGet + "Host:\r\n\r\n", bad(Error::bad_name)},
      {"Host of spaces only", kGet + "Host:   \r\n\r\n", bad(Error::bad_name)},
      {"field line without colon", kGet + "Host a.example\r\n\r\n", bad(Error::bad_syntax)},
      {"empty field name", kGet + ": a.example\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},

      // ---- checklist 16: normalisation of the authority ----
      {"Host with port", kGet + "Host: example.com:8080\r\n\r\n", named("example.com")},
      {"Host with trailing dot", kGet + "Host: example.com.\r\n\r\n", named("example.com")},
      {"Host with trailing dot and port", kGet + "Host: example.com.:80\r\n\r\n",
       named("example.com")},
      {"Host in mixed case", kGet + "Host: ExAmPlE.CoM\r\n\r\n", named("example.com")},
      {"Host [v6]:port", kGet + "Host: [::1]:8000\r\n\r\n", literal("::1")},
      {"Host [v6] without port", kGet + "Host: [2001:DB8::1]\r\n\r\n", literal("2001:db8::1")},
      {"Host [v6] with embedded IPv4", kGet + "Host: [::ffff:192.0.2.1]:80\r\n\r\n",
       literal("::ffff:192.0.2.1")},
      {"Host IPv4 with port", kGet + "Host: 10.1.2.3:8080\r\n\r\n", literal("10.1.2.3")},
      {"Host userinfo ok@evil", kGet + "Host: ok.example@evil.example\r\n\r\n",
       bad(Error::bad_name)},
      {"Host userinfo with password", kGet + "Host: u:p@evil.example:80\r\n\r\n",
       bad(Error::bad_name)},
      {"Host port 0", kGet + "Host: a.example:0\r\n\r\n", bad(Error::bad_syntax)},
      {"Host port 65536", kGet + "Host: a.example:65536\r\n\r\n", bad(Error::bad_syntax)},
      {"Host port 65535", kGet + "Host: a.example:65535\r\n\r\n", named("a.example")},
      {"Host empty port", kGet + "Host: a.example:\r\n\r\n", bad(Error::bad_syntax)},
      {"Host port with letters", kGet + "Host: a.example:8o\r\n\r\n", bad(Error::bad_syntax)},
      {"Host port too long", kGet + "Host: a.example:000080\r\n\r\n", bad(Error::bad_syntax)},
      {"Host two colons", kGet + "Host: a.example:80:81\r\n\r\n", bad(Error::bad_name)},
      {"Host only a port", kGet + "Host: :80\r\n\r\n", bad(Error::bad_name)},
      {"unbracketed IPv6", kGet + "Host: ::1\r\n\r\n", bad(Error::bad_name)},
      {"unclosed bracket", kGet + "Host: [::1\r\n\r\n", bad(Error::bad_name)},
      {"junk after bracket", kGet + "Host: [::1]x\r\n\r\n", bad(Error::bad_name)},
      {"IPv6 zone id", kGet + "Host: [fe80::1%25eth0]\r\n\r\n", bad(Error::bad_name)},
      {"IPvFuture", kGet + "Host: [v1.fe]\r\n\r\n", bad(Error::bad_name)},
      {"bracketed IPv4", kGet + "Host: [192.0.2.1]\r\n\r\n", bad(Error::bad_name)},
      {"empty brackets", kGet + "Host: []\r\n\r\n", bad(Error::bad_name)},
      {"shorthand IPv4 127.1", kGet + "Host: 127.1\r\n\r\n", bad(Error::bad_name)},
      {"hex IPv4 0x7f000001", kGet + "Host: 0x7f000001\r\n\r\n", bad(Error::bad_name)},
      {"IPv4 part over 255", kGet + "Host: 1.2.3.256\r\n\r\n", bad(Error::bad_name)},
      {"IPv4 leading zero (octal)", kGet + "Host: 010.1.1.1\r\n\r\n", bad(Error::bad_name)},
      {"five-part numeric", kGet + "Host: 1.2.3.4.5\r\n\r\n", bad(Error::bad_name)},
      {"percent-encoded host", kGet + "Host: ex%61mple.com\r\n\r\n", bad(Error::bad_name)},
      {"space inside host", kGet + "Host: a b.example\r\n\r\n", bad(Error::bad_name)},
      {"comma list in Host", kGet + "Host: a.example, b.example\r\n\r\n", bad(Error::bad_name)},
      {"empty label", kGet + "Host: a..example\r\n\r\n", bad(Error::bad_name)},
      {"label over 63", kGet + "Host: " + std::string(64, 'a') + ".example\r\n\r\n",
       bad(Error::bad_name)},
      {"wildcard in Host", kGet + "Host: *.example\r\n\r\n", bad(Error::bad_name)},
      {"obs-text in Host", kGet + "Host: caf\xc3\xa9.example\r\n\r\n", bad(Error::bad_name)},

      // ---- checklist 18: CONNECT, Upgrade, HTTP/2 ----
      {"CONNECT authority wins over Host",
       "CONNECT evil.example:443 HTTP/1.1\r\nHost: ok.example:443\r\n\r\n",
       {.name = "evil.example", .connect = true, .method = "CONNECT"}},
      {"CONNECT to [v6]:port",
       "CONNECT [2001:db8::2]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
       {.ip = "2001:db8::2", .connect = true}},
      {"CONNECT in HTTP/1.0 without Host",
       "CONNECT c.example:443 HTTP/1.0\r\n\r\n",
       {.name = "c.example", .connect = true}},
      {"CONNECT without port", "CONNECT evil.example HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_syntax)},
      {"CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_syntax)},
      {"CONNECT with userinfo", "CONNECT ok@evil.example:443 HTTP/1.1\r\nHost: ok\r\n\r\n",
       bad(Error::bad_name)},
      {"Upgrade: websocket",
       kGet + "Host: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
       {.name = "ws.example", .upgrade = true}},
      {"Upgrade: h2c lower case",
       kGet + "Host: h.example\r\nupgrade: h2c\r\n\r\n",
       {.name = "h.example", .upgrade = true}},
      {"Connection: Upgrade alone is not Upgrade",
       kGet + "Host: h.example\r\nConnection: Upgrade\r\n\r\n", named("h.example")},
      {"HTTP/2 prior-knowledge preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
       bad(Error::bad_version)},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", bad(Error::bad_version)},
      {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", bad(Error::bad_version)},
      {"HTTP/0.9 simple request", "GET /\r\n\r\n", bad(Error::bad_version)},
      {"version in lower case", "GET / http/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
       bad(Error::bad_version)},

      // ---- framing: Content-Length and Transfer-Encoding (RFC 9112 6) ----
      {"Content-Length parsed",
       kPost + "Content-Length: 5\r\n\r\n",
       {.name = "p.example", .content_length = 5}},
      {"Content-Length 0",
       kPost + "Content-Length: 0\r\n\r\n",
       {.name = "p.example", .content_length = 0}},
      {"Content-Length with leading zeros",
       kPost + "Content-Length: 007\r\n\r\n",
       {.name = "p.example", .content_length = 7}},
      {"Content-Length with OWS around it",
       kPost + "Content-Length: \t 12 \t\r\n\r\n",
       {.name = "p.example", .content_length = 12}},
      {"Content-Length field name in lower case",
       kPost + "content-length: 3\r\n\r\n",
       {.name = "p.example", .content_length = 3}},
      {"Content-Length list of equal values",
       kPost + "Content-Length: 5, 5,5\r\n\r\n",
       {.name = "p.example", .content_length = 5}},
      {"two equal Content-Length lines",
       kPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
       {.name = "p.example", .content_length = 5}},
      {"largest Content-Length: 18 digits",
       kPost + "Content-Length: 999999999999999999\r\n\r\n",
       {.name = "p.example", .content_length = 999999999999999999}},
      {"differing duplicate Content-Length lines",
       kPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", bad(Error::duplicate)},
      {"differing values in one Content-Length list", kPost + "Content-Length: 5, 6\r\n\r\n",
       bad(Error::duplicate)},
      {"Content-Length then Transfer-Encoding",
       kPost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad(Error::bad_syntax)},
      {"Transfer-Encoding then Content-Length",
       kPost + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", bad(Error::bad_syntax)},
      {"Content-Length with a plus sign", kPost + "Content-Length: +5\r\n\r\n",
       bad(Error::bad_syntax)},
      {"Content-Length with a minus sign", kPost + "Content-Length: -5\r\n\r\n",
       bad(Error::bad_syntax)},
      {"Content-Length with a space inside", kPost + "Content-Length: 1 2\r\n\r\n",
       bad(Error::bad_syntax)},
      {"Content-Length empty", kPost + "Content-Length:\r\n\r\n", bad(Error::bad_syntax)},
      {"Content-Length in hex", kPost + "Content-Length: 0x10\r\n\r\n", bad(Error::bad_syntax)},
      {"Content-Length list with a trailing comma", kPost + "Content-Length: 5,\r\n\r\n",
       bad(Error::bad_syntax)},
      {"Content-Length of 19 digits (over the bound, below 2^63)",
       kPost + "Content-Length: 1000000000000000000\r\n\r\n", bad(Error::bad_syntax)},
      {"Content-Length 2^63", kPost + "Content-Length: 9223372036854775808\r\n\r\n",
       bad(Error::bad_syntax)},
      {"Content-Length 2^64 + 5 (5 once wrapped to 64 bits)",
       kPost + "Content-Length: 18446744073709551621\r\n\r\n", bad(Error::bad_syntax)},
      {"Transfer-Encoding: chunked recognised",
       kPost + "Transfer-Encoding: chunked\r\n\r\n",
       {.name = "p.example", .transfer_encoding = true}},
      {"Transfer-Encoding: gzip, chunked",
       kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n",
       {.name = "p.example", .transfer_encoding = true}},
      {"transfer-encoding in lower case",
       kPost + "transfer-encoding: chunked\r\n\r\n",
       {.name = "p.example", .transfer_encoding = true}},
      {"TE is not Transfer-Encoding", kPost + "TE: trailers\r\n\r\n", named("p.example")},

      // ---- request-line syntax ----
      {"16-byte method", "ABCDEFGHIJKLMNOP / HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"non-token method", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"HTAB separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"obs-text in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
       bad(Error::bad_syntax)},
      {"asterisk-form with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"request line without spaces", "GARBAGE\r\n\r\n", bad(Error::bad_syntax)},
      {"TLS ClientHello on port 80", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s,
       bad(Error::bad_syntax)},

      // ---- control characters and bare CR ----
      {"NUL in Host value", kGet + "Host: a\0.example\r\n\r\n"s, bad(Error::bad_syntax)},
      {"NUL in another value", kGet + "Host: a.example\r\nX: \0\r\n\r\n"s, bad(Error::bad_syntax)},
      {"DEL in a value", kGet + "Host: a.example\r\nX: \x7f\r\n\r\n", bad(Error::bad_syntax)},
      {"ESC in the target", "GET /\x1b HTTP/1.1\r\nHost: a\r\n\r\n", bad(Error::bad_syntax)},
      {"bare CR inside a header", kGet + "Host: a.example\rX-B: 1\r\n\r\n", bad(Error::bad_syntax)},
      {"bare CR ending the request line", "GET / HTTP/1.1\rHost: a.example\r\n\r\n",
       bad(Error::bad_syntax)},
      {"CR CR LF", kGet + "Host: a.example\r\r\n\r\n", bad(Error::bad_syntax)},
      {"bare CR as the empty line", kGet + "Host: a.example\r\n\r\r\n", bad(Error::bad_syntax)},
  };
}

TEST(HttpParse, Table) {
  for (const Case& c : cases()) check(c);
}

// Checklist 17: a request split across segments at any byte is undecided until whole.
TEST(HttpParse, EveryTruncationNeedsMore) {
  for (const Case& c : cases()) check_prefixes(c);
}

// Bad bytes are refused as soon as they arrive, not after kMaxHttpHead bytes.
TEST(HttpParse, EarlyRefusal) {
  const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"TLS record byte", "\x16"},
      {"method over 15 bytes", "ABCDEFGHIJKLMNOP"},
      {"NUL in a header being received", kGet + "Host: a\0"s},
      {"bare CR followed by a byte", kGet + "Host: a\rb"},
      {"two Host headers, head not finished", kGet + "Host: a\r\nHost: a\r\n"},
      {"obs-fold, head not finished", kGet + "Host: a\r\n b\r\n"},
  };
  for (const auto& [desc, in] : prefixes) {
    SCOPED_TRACE(desc);
    HttpRequest r;
    Error e;
    size_t consumed;
    EXPECT_EQ(parse(in, &r, &e, &consumed), Status::bad);
  }
}

// Checklist 17: pipelined requests are parsed one after the other, each with its name.
TEST(HttpParse, Pipelined) {
  const std::string first = "GET /a HTTP/1.1\r\nHost: ok.example\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: evil.example\r\n\r\n";
  const std::string third = "HEAD http://third.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n";
  const std::string stream = first + second + third;
  const auto* p = reinterpret_cast<const uint8_t*>(stream.data());
  size_t off = 0;
  const std::vector<std::pair<std::string, std::string>> want = {
      {"ok.example", "GET"}, {"evil.example", "GET"}, {"third.example", "HEAD"}};
  for (const auto& [name, method] : want) {
    SCOPED_TRACE(name);
    HttpRequest r;
    Error e;
    size_t consumed = 0;
    ASSERT_EQ(parse_http_request(p + off, stream.size() - off, &r, &e, &consumed), Status::ok);
    EXPECT_EQ(std::string(r.name.buf, r.name.len), name);
    EXPECT_EQ(std::string(r.method, r.method_len), method);
    off += consumed;
  }
  EXPECT_EQ(off, stream.size());
  // The second request half-received: the first is decided, the second needs more.
  HttpRequest r;
  Error e;
  size_t consumed = 0;
  const std::string partial = first + second.substr(0, 20);
  ASSERT_EQ(parse(partial, &r, &e, &consumed), Status::ok);
  EXPECT_EQ(consumed, first.size());
  EXPECT_EQ(parse(partial.substr(consumed), &r, &e, &consumed), Status::need_more);
}

// Heads up to kMaxHttpHead bytes (with the empty line) parse; one byte more is too large.
TEST(HttpParse, SizeBound) {
  const std::string head = kGet + "Host: big.example\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  const std::string at_limit =
      head + std::string(kMaxHttpHead - head.size() - end.size(), 'p') + end;
  ASSERT_EQ(at_limit.size(), kMaxHttpHead);
  const std::string over =
      head + std::string(kMaxHttpHead - head.size() - end.size() + 1, 'p') + end;
  const std::vector<Case> table = {
      {"head of exactly kMaxHttpHead", at_limit, named("big.example")},
      {"head one byte over", over, bad(Error::too_large)},
      {"kMaxHttpHead bytes without an end", head + std::string(kMaxHttpHead, 'p'),
       bad(Error::too_large)},
      {"many small headers over the bound",
       [] {
         std::string s = kGet + "Host: a.example\r\n";
         while (s.size() <= kMaxHttpHead) s += "X-A: 1\r\n";
         return s + "\r\n";
       }(),
       bad(Error::too_large)},
      {"endless empty lines before a request", std::string(kMaxHttpHead, '\n'),
       bad(Error::too_large)},
  };
  for (const Case& c : table) check(c);
  // Just under the bound without an end: still waiting.
  HttpRequest r;
  Error e;
  size_t consumed;
  EXPECT_EQ(parse(head + std::string(kMaxHttpHead - head.size() - 1, 'p'), &r, &e, &consumed),
            Status::need_more);
}

// Every control byte is refused in a header value and in the target; HTAB only in values.
TEST(HttpParse, ControlCharacters) {
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\n' || c == '\r') continue;
    const std::string ch(1, static_cast<char>(c));
    HttpRequest r;
    Error e;
    size_t consumed;
    const Status in_value =
        parse(kGet + "Host: a.example\r\nX: a" + ch + "b\r\n\r\n", &r, &e, &consumed);
    EXPECT_EQ(in_value, c == '\t' ? Status::ok : Status::bad) << "byte " << c;
    EXPECT_EQ(parse("GET /" + ch + " HTTP/1.1\r\nHost: a\r\n\r\n", &r, &e, &consumed), Status::bad)
        << "byte " << c;
    EXPECT_EQ(parse(kGet + "Host: a" + ch + "b\r\n\r\n", &r, &e, &consumed), Status::bad)
        << "byte " << c;
  }
}

// ---- public captures: the client's TCP payload, in sequence order ----

// Reads the client side of the first TCP connection of ../shared/pcaps/NAME (Ethernet with
// VLAN tags, BSD loopback, IPv4/IPv6, GTP-U tunnels): the payload concatenated by sequence.
class ClientStream {
 public:
  bool read(const std::string& name) {
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline(("../shared/pcaps/" + name).c_str(), err);
    if (p == nullptr) return false;
    const int dlt = pcap_datalink(p);
    pcap_pkthdr* h;
    const u_char* d;
    while (pcap_next_ex(p, &h, &d) == 1) frame(dlt, d, h->caplen);
    pcap_close(p);
    return true;
  }
  std::string payload() const {
    std::string out;
    uint32_t next = have_isn_ ? isn_ + 1 : (segs_.empty() ? 0 : segs_.begin()->first);
    for (const auto& [seq, data] : segs_) {
      const uint32_t off = next - seq;  // bytes already taken (retransmission overlap)
      if (static_cast<int32_t>(seq - next) > 0) break;  // a hole
      if (off >= data.size()) continue;
      out += data.substr(off);
      next += static_cast<uint32_t>(data.size() - off);
    }
    return out;
  }

 private:
  void frame(int dlt, const uint8_t* d, size_t n) {
    if (dlt == DLT_NULL || dlt == DLT_LOOP) {
      if (n >= 4) ip(d + 4, n - 4, 0);
      return;
    }
    if (dlt != DLT_EN10MB || n < 14) return;
    size_t off = 12;
    uint16_t type = be16(d + off);
    while ((type == 0x8100 || type == 0x88a8) && off + 6 <= n) {
      off += 4;
      type = be16(d + off);
    }
    off += 2;
    if (type == 0x0800 || type == 0x86dd) ip(d + off, n - off, 0);
  }
  void ip(const uint8_t* d, size_t n, int depth) {
    if (n < 20 || depth > 2) return;
    const uint8_t* l4;
    size_t l4n;
    uint8_t proto;
    std::string src;
    if ((d[0] >> 4) == 4) {
      const size_t ihl = (d[0] & 15u) * 4u;
      const size_t total = std::min<size_t>(be16(d + 2), n);
      if (ihl < 20 || total < ihl) return;
      proto = d[9];
      src.assign(reinterpret_cast<const char*>(d + 12), 4);
      l4 = d + ihl;
      l4n = total - ihl;
    } else if ((d[0] >> 4) == 6 && n >= 40) {
      proto = d[6];
      src.assign(reinterpret_cast<const char*>(d + 8), 16);
      l4 = d + 40;
      l4n = std::min<size_t>(be16(d + 4), n - 40);
    } else {
      return;
    }
    if (proto == 17 && l4n >= 8 + 8 && (be16(l4) == 2152 || be16(l4 + 2) == 2152)) {
      gtp(l4 + 8, l4n - 8, depth);
    } else if (proto == 6 && l4n >= 20) {
      tcp(src, l4, l4n);
    }
  }
  // GTP-U (3GPP TS 29.281): 8-byte header, 4 more when E/S/PN, then extension headers.
  void gtp(const uint8_t* d, size_t n, int depth) {
    if (n < 8 || d[1] != 0xff) return;
    size_t off = 8;
    if (d[0] & 0x07) {
      if (n < 12) return;
      off = 12;
      uint8_t next = (d[0] & 0x04) ? d[11] : 0;
      while (next != 0) {
        if (off >= n || d[off] == 0 || off + d[off] * 4u > n) return;
        off += d[off] * 4u;
        next = d[off - 1];
      }
    }
    ip(d + off, n - off, depth + 1);
  }
  void tcp(const std::string& src, const uint8_t* t, size_t n) {
    const size_t doff = (t[12] >> 4) * 4u;
    if (doff < 20 || doff > n) return;
    const uint8_t flags = t[13];
    const std::string from = src + std::string(reinterpret_cast<const char*>(t), 2);
    const uint32_t seq = be32(t + 4);
    if ((flags & 0x12) == 0x02 && client_.empty()) {  // SYN without ACK: the client
      client_ = from;
      isn_ = seq;
      have_isn_ = true;
    }
    if (n == doff) return;
    if (client_.empty()) client_ = from;  // no handshake captured: first sender of data
    if (from == client_)
      segs_.emplace(seq, std::string(reinterpret_cast<const char*>(t + doff), n - doff));
  }
  static uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
  static uint32_t be32(const uint8_t* p) { return uint32_t{be16(p)} << 16 | be16(p + 2); }

  std::string client_;
  uint32_t isn_ = 0;
  bool have_isn_ = false;
  std::map<uint32_t, std::string> segs_;
};

// Each capture: what Wireshark's http.host shows, as egw normalises it (INDEX.md).
TEST(HttpParse, Captures) {
  const std::vector<std::pair<std::string, Want>> captures = {
      {"http_origin_different_than_host.pcap",
       {.name = "csb.performgroup.io", .upgrade = true, .method = "GET"}},
      {"http-ipv6_input.pcap", {.ip = "::1", .method = "GET"}},
  };
  for (const auto& [file, want] : captures) {
    SCOPED_TRACE(file);
    ClientStream cs;
    if (!cs.read(file)) GTEST_SKIP() << "missing ../shared/pcaps/" << file;
    const std::string stream = cs.payload();
    ASSERT_FALSE(stream.empty());
    HttpRequest r;
    Error e;
    size_t consumed = 0;
    ASSERT_EQ(parse(stream, &r, &e, &consumed), Status::ok) << "err " << int(e);
    check({file, stream.substr(0, consumed), want});
    check_prefixes({file, stream.substr(0, consumed), want});
  }
}

}  // namespace
}  // namespace egw::l7
