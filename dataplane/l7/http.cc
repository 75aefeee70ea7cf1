// HTTP/1.x request-head parser (RFC 9112): request line, target forms, Host rules and
// the flow's authority. Worker lcores: pure function over bytes, no allocation.
#include <arpa/inet.h>

#include <cstring>

#include "dataplane/l7/l7.h"

namespace egw::l7 {
namespace {

constexpr size_t kMaxMethod = 15;  // HttpRequest::method holds 15 bytes and a NUL
constexpr size_t kMaxIpText = 45;  // longest IPv6 text (with an embedded IPv4)

// An authority (host[:port]) reduced to what policy sees: a name or an IP literal.
struct Authority {
  bool has_name = false;
  Name name;
  bool ip_literal = false;
  char ip[kMaxIpText + 1] = {};
};

// A byte range inside the caller's buffer.
struct Span {
  const uint8_t* p = nullptr;
  size_t n = 0;
};

// tchar of RFC 9110 5.6.2: the bytes of a method or a field name.
bool is_tchar(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Control bytes never valid anywhere in a head (CR and LF are handled as line ends).
bool is_bad_ctl(uint8_t c) {
  return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

bool is_hex(uint8_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool span_eq(Span s, const char* lit) {
  const size_t n = std::strlen(lit);
  return s.n == n && std::memcmp(s.p, lit, n) == 0;
}

// Case-insensitive comparison with a lower-case literal (field names).
bool span_ieq(Span s, const char* lit) {
  const size_t n = std::strlen(lit);
  if (s.n != n) return false;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = s.p[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
    if (c != static_cast<uint8_t>(lit[i])) return false;
  }
  return true;
}

// port = 1*5DIGIT with a value of 1..65535.
bool valid_port(Span s) {
  if (s.n == 0 || s.n > 5) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < s.n; ++i) {
    if (!is_digit(s.p[i])) return false;
    v = v * 10 + (s.p[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

// Strict dotted quad: four decimal parts 0..255, no leading zeros.
bool is_dotted_quad(Span s) {
  size_t parts = 0, i = 0;
  while (i <= s.n) {
    size_t digits = 0;
    uint32_t v = 0;
    while (i < s.n && is_digit(s.p[i]) && digits < 4) {
      v = v * 10 + (s.p[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s.p[i - digits] == '0'))
      return false;
    ++parts;
    if (i == s.n) break;
    if (s.p[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

// WHATWG URL "ends in a number": the last label is decimal or 0x-hex. Such hosts are
// read as IPv4 numbers by browsers and inet_aton ("127.1", "0x7f.1"): never a name.
bool ends_in_number(Span s) {
  size_t start = s.n;
  while (start > 0 && s.p[start - 1] != '.') --start;
  const Span last{s.p + start, s.n - start};
  if (last.n == 0) return false;
  size_t i = 0;
  if (last.n >= 2 && last.p[0] == '0' && (last.p[1] == 'x' || last.p[1] == 'X')) {
    for (i = 2; i < last.n; ++i)
      if (!is_hex(last.p[i])) return false;
    return true;
  }
  for (; i < last.n; ++i)
    if (!is_digit(last.p[i])) return false;
  return true;
}

void copy_ip(Span s, Authority* a) {
  for (size_t i = 0; i < s.n; ++i) {
    uint8_t c = s.p[i];
    if (c >= 'A' && c <= 'F') c = static_cast<uint8_t>(c - 'A' + 'a');
    a->ip[i] = static_cast<char>(c);
  }
  a->ip[s.n] = '\0';
  a->ip_literal = true;
}

// Parses host[:port] of a Host value or a target (RFC 9110 4.2.1, RFC 3986 3.2).
Error parse_authority(Span s, bool need_port, Authority* a) {
  *a = Authority{};
  if (s.n == 0) return Error::bad_name;
  // Userinfo is deprecated for http(s) (RFC 9110 4.2.4) and is how "ok@evil" smuggles a
  // decoy name past a naive reader; parsers disagree on which '@' ends it (and on '\'),
  // so any '@' in an authority is refused rather than guessed.
  if (std::memchr(s.p, '@', s.n) != nullptr) return Error::bad_name;
  Span host = s, port{};
  bool bracketed = false;
  if (s.p[0] == '[') {
    const auto* close = static_cast<const uint8_t*>(std::memchr(s.p, ']', s.n));
    if (close == nullptr) return Error::bad_name;
    host = Span{s.p + 1, static_cast<size_t>(close - s.p) - 1};
    const size_t after = static_cast<size_t>(close - s.p) + 1;
    if (after < s.n) {
      if (s.p[after] != ':') return Error::bad_name;
      port = Span{s.p + after + 1, s.n - after - 1};
      if (!valid_port(port)) return Error::bad_syntax;
    }
    bracketed = true;
  } else if (const auto* colon = static_cast<const uint8_t*>(std::memchr(s.p, ':', s.n))) {
    host = Span{s.p, static_cast<size_t>(colon - s.p)};
    port = Span{colon + 1, s.n - host.n - 1};
    if (std::memchr(port.p, ':', port.n) != nullptr) return Error::bad_name;  // bare IPv6
    if (!valid_port(port)) return Error::bad_syntax;
  }
  if (need_port && port.p == nullptr) return Error::bad_syntax;
  if (host.n == 0) return Error::bad_name;

  if (bracketed) {
    // IP-literal: IPv6address only (IPvFuture and zone ids are refused by inet_pton).
    if (host.n > kMaxIpText) return Error::bad_name;
    char text[kMaxIpText + 1];
    std::memcpy(text, host.p, host.n);
    text[host.n] = '\0';
    in6_addr addr;
    if (inet_pton(AF_INET6, text, &addr) != 1) return Error::bad_name;
    copy_ip(host, a);
    return Error::none;
  }
  Span bare = host;  // a numeric host may carry the absolute-form trailing dot
  if (bare.p[bare.n - 1] == '.') --bare.n;
  switch (numeric_host(bare.p, bare.n)) {
    case NumericHost::dotted_quad:
      copy_ip(bare, a);
      return Error::none;
    case NumericHost::other:
      return Error::bad_name;
    case NumericHost::no:
      break;
  }
  if (!normalize_name(host.p, host.n, &a->name)) return Error::bad_name;
  a->has_name = true;
  return Error::none;
}

// What the request line says about the flow's authority.
struct RequestLine {
  bool http11 = false;
  bool target_authority = false;  // absolute-form or CONNECT: it wins over Host
  Authority authority;
};

// Parses "method SP request-target SP HTTP-version" (RFC 9112 3).
Error parse_request_line(Span line, HttpRequest* req, RequestLine* rl) {
  const auto* sp1 = static_cast<const uint8_t*>(std::memchr(line.p, ' ', line.n));
  if (sp1 == nullptr) return Error::bad_syntax;
  const Span method{line.p, static_cast<size_t>(sp1 - line.p)};
  if (method.n == 0 || method.n > kMaxMethod) return Error::bad_syntax;
  for (size_t i = 0; i < method.n; ++i)
    if (!is_tchar(method.p[i])) return Error::bad_syntax;
  std::memcpy(req->method, method.p, method.n);
  req->method[method.n] = '\0';
  req->method_len = static_cast<uint8_t>(method.n);

  const Span rest{sp1 + 1, line.n - method.n - 1};
  const auto* sp2 = static_cast<const uint8_t*>(std::memchr(rest.p, ' ', rest.n));
  if (sp2 == nullptr) return Error::bad_version;  // HTTP/0.9 "GET /path": no version
  const Span target{rest.p, static_cast<size_t>(sp2 - rest.p)};
  const Span version{sp2 + 1, rest.n - target.n - 1};
  // Version first: "PRI * HTTP/2.0" (h2 prior knowledge) must be refused as a version.
  if (span_eq(version, "HTTP/1.1")) {
    rl->http11 = true;
  } else if (!span_eq(version, "HTTP/1.0")) {
    return version.n >= 5 && std::memcmp(version.p, "HTTP/", 5) == 0 ? Error::bad_version
                                                                     : Error::bad_syntax;
  }
  if (target.n == 0) return Error::bad_syntax;
  for (size_t i = 0; i < target.n; ++i)
    if (target.p[i] < 0x21 || target.p[i] > 0x7e) return Error::bad_syntax;

  if (span_eq(method, "CONNECT")) {  // authority-form: host:port, the tunnel target
    if (target.p[0] == '/' || target.p[0] == '*') return Error::bad_syntax;
    req->connect = true;
    rl->target_authority = true;
    return parse_authority(target, true, &rl->authority);
  }
  if (target.p[0] == '/') return Error::none;  // origin-form
  if (target.n == 1 && target.p[0] == '*')     // asterisk-form
    return span_eq(method, "OPTIONS") ? Error::none : Error::bad_syntax;
  // absolute-form: scheme "://" authority [ "/" path ] [ "?" query ]
  size_t i = 0;
  const auto alpha = [](uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(target.p[0])) return Error::bad_syntax;
  while (i < target.n && (alpha(target.p[i]) || is_digit(target.p[i]) || target.p[i] == '+' ||
                          target.p[i] == '-' || target.p[i] == '.'))
    ++i;
  if (target.n - i < 3 || std::memcmp(target.p + i, "://", 3) != 0) return Error::bad_syntax;
  i += 3;
  size_t end = i;
  while (end < target.n && target.p[end] != '/' && target.p[end] != '?' && target.p[end] != '#')
    ++end;
  rl->target_authority = true;
  return parse_authority(Span{target.p + i, end - i}, false, &rl->authority);
}

// Checks the bytes after the last complete line: anything that can never become a
// valid head is refused now rather than after kMaxHttpHead bytes (a TLS hello on :80).
Error check_tail(Span tail, bool in_request_line) {
  for (size_t i = 0; i < tail.n; ++i) {
    if (is_bad_ctl(tail.p[i])) return Error::bad_syntax;
    // The tail holds no LF, so a CR followed by any byte is a bare CR.
    if (tail.p[i] == '\r' && i + 1 < tail.n) return Error::bad_syntax;
  }
  if (in_request_line && tail.n > 0 && tail.p[0] != '\r') {
    size_t k = 0;
    while (k < tail.n && tail.p[k] != ' ' && tail.p[k] != '\r') {
      if (!is_tchar(tail.p[k]) || k >= kMaxMethod) return Error::bad_syntax;
      ++k;
    }
  }
  return Error::none;
}

// Content-Length = 1*DIGIT, possibly repeated as a list ("5, 5") or over several field
// lines (RFC 9110 8.6): every value must be the same.
constexpr size_t kMaxLengthDigits = 18;  // below 2^63; no real body is longer

Error parse_content_length(Span value, HttpRequest* req) {
  size_t i = 0;
  for (;;) {
    size_t digits = 0;
    uint64_t v = 0;
    while (i < value.n && is_digit(value.p[i])) {
      if (++digits > kMaxLengthDigits) return Error::bad_syntax;
      v = v * 10 + (value.p[i++] - '0');
    }
    if (digits == 0) return Error::bad_syntax;
    if (req->has_content_length && v != req->content_length) return Error::duplicate;
    req->has_content_length = true;
    req->content_length = v;
    while (i < value.n && (value.p[i] == ' ' || value.p[i] == '\t')) ++i;
    if (i == value.n) return Error::none;
    if (value.p[i++] != ',') return Error::bad_syntax;
    while (i < value.n && (value.p[i] == ' ' || value.p[i] == '\t')) ++i;
  }
}

// Parses one header field line (RFC 9112 5): name ":" OWS value OWS.
Error parse_field(Span line, HttpRequest* req, int* host_count, Authority* host) {
  if (line.p[0] == ' ' || line.p[0] == '\t') return Error::bad_syntax;  // obs-fold
  const auto* colon = static_cast<const uint8_t*>(std::memchr(line.p, ':', line.n));
  if (colon == nullptr || colon == line.p) return Error::bad_syntax;
  const Span name{line.p, static_cast<size_t>(colon - line.p)};
  for (size_t i = 0; i < name.n; ++i)  // also refuses "Host :" (RFC 9112 5.1)
    if (!is_tchar(name.p[i])) return Error::bad_syntax;
  Span value{colon + 1, line.n - name.n - 1};
  while (value.n > 0 && (value.p[0] == ' ' || value.p[0] == '\t')) ++value.p, --value.n;
  while (value.n > 0 && (value.p[value.n - 1] == ' ' || value.p[value.n - 1] == '\t')) --value.n;
  if (span_ieq(name, "host")) {
    if (++*host_count > 1) return Error::duplicate;  // even when both are equal
    return parse_authority(value, false, host);
  }
  if (span_ieq(name, "upgrade")) req->upgrade = true;
  if (span_ieq(name, "content-length")) return parse_content_length(value, req);
  if (span_ieq(name, "transfer-encoding")) req->transfer_encoding = true;
  return Error::none;
}

Status fail(Error e, Error* err) {
  *err = e;
  return Status::bad;
}

}  // namespace

NumericHost numeric_host(const uint8_t* host, size_t len) {
  const Span s{host, len};
  if (len == 0) return NumericHost::no;
  if (is_dotted_quad(s)) return NumericHost::dotted_quad;
  return ends_in_number(s) ? NumericHost::other : NumericHost::no;
}

// Pipelining: a caller with more bytes after *consumed calls again on data + consumed
// for the next request (a request body, if any, must be skipped by the caller first).
Status parse_http_request(const uint8_t* data, size_t len, HttpRequest* out, Error* err,
                          size_t* consumed) {
  *out = HttpRequest{};
  *err = Error::none;
  *consumed = 0;
  if (data == nullptr || len == 0) return Status::need_more;
  const size_t window = len < kMaxHttpHead ? len : kMaxHttpHead;
  HttpRequest req;
  RequestLine rl;
  Authority host;
  int host_count = 0;
  bool have_request_line = false;
  size_t pos = 0;
  for (;;) {
    const auto* lf = static_cast<const uint8_t*>(std::memchr(data + pos, '\n', window - pos));
    if (lf == nullptr) {
      const Error e = check_tail(Span{data + pos, window - pos}, !have_request_line);
      if (e != Error::none) return fail(e, err);
      return len >= kMaxHttpHead ? fail(Error::too_large, err) : Status::need_more;
    }
    const size_t next = static_cast<size_t>(lf - data) + 1;
    Span line{data + pos, next - 1 - pos};
    if (line.n > 0 && line.p[line.n - 1] == '\r') --line.n;  // CRLF; a bare LF is accepted
    pos = next;
    for (size_t i = 0; i < line.n; ++i)
      if (line.p[i] == '\r' || is_bad_ctl(line.p[i])) return fail(Error::bad_syntax, err);
    if (!have_request_line) {
      if (line.n == 0) continue;  // empty lines before a request line are ignored (9112 2.2)
      const Error e = parse_request_line(line, &req, &rl);
      if (e != Error::none) return fail(e, err);
      have_request_line = true;
      continue;
    }
    if (line.n == 0) break;  // the empty line ending the head
    const Error e = parse_field(line, &req, &host_count, &host);
    if (e != Error::none) return fail(e, err);
  }
  if (rl.http11 && host_count == 0) return fail(Error::bad_syntax, err);  // RFC 9112 3.2
  // Both framings: which one a server obeys decides where the next request starts
  // (request smuggling); RFC 9112 6.3 lets a server refuse such a request.
  if (req.has_content_length && req.transfer_encoding) return fail(Error::bad_syntax, err);
  const Authority& a = rl.target_authority ? rl.authority : host;
  req.has_name = a.has_name;
  req.name = a.name;
  req.ip_literal = a.ip_literal;
  std::memcpy(req.ip, a.ip, sizeof(req.ip));
  *out = req;
  *consumed = pos;
  return Status::ok;
}

}  // namespace egw::l7
