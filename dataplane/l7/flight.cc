// A TCP flow's name from the client's first flight: protocol detection, then every TLS
// ClientHello, HTTP/1.x request head or DNS-over-TCP query in turn, incrementally as the
// in-order prefix grows. Worker lcores: no allocation, every length checked, each byte
// looked at a bounded number of times over all calls (docs/l7.md).
#include <cstring>

#include "dataplane/l7/l7.h"
#include "dataplane/bytes.h"

namespace egw::l7 {
namespace {

constexpr uint16_t kDnsPort = 53;
constexpr uint8_t kTlsHandshake = 22;
constexpr uint8_t kTlsChangeCipherSpec = 20;
constexpr uint8_t kTlsAlert = 21;
constexpr uint8_t kTlsApplicationData = 23;
constexpr uint8_t kClientHello = 1;
constexpr size_t kTlsRecordHeader = 5;
constexpr size_t kPlainAlert = 2;  // level and description
// The smallest ClientHello body a server accepts: version, random, session id length,
// one cipher suite, one compression method; tls.cc refuses bodies over 2^16.
constexpr size_t kMinHelloBody = 2 + 32 + 1 + 2 + 2 + 1 + 1;
constexpr size_t kMaxHelloBody = size_t{1} << 16;
constexpr size_t kMaxDetectMethod = 16;  // longest method token recognised as HTTP
constexpr uint32_t kNever = UINT32_MAX;  // st->want once nothing more is watched

// The HTTP/2 prior-knowledge preface's request line (RFC 9113 3.4).
constexpr char kH2Preface[] = "PRI * HTTP/2.0";

uint32_t sat_add(uint32_t a, size_t b) {
  return b >= kNever - a ? kNever : static_cast<uint32_t>(a + b);
}

// Status for a unit still incomplete: need_more before the flow has a name, ok after.
Status pending(const FlightState* st) {
  return st->decided ? Status::ok : Status::need_more;
}

Status fail(FlightState* st, Error* err, Error why) {
  st->error = why;
  st->done = true;
  st->want = kNever;
  *err = why;
  return Status::bad;
}

Status finish(FlightState* st) {
  st->done = true;
  st->want = kNever;
  return Status::ok;
}

bool same_name(const FlowName& a, const FlowName& b) {
  return a.has_name == b.has_name && a.ip_literal == b.ip_literal && a.name.len == b.name.len &&
         std::memcmp(a.name.buf, b.name.buf, a.name.len) == 0;
}

// The first unit names the flow; every later one must name the same.
Status judge(const FlowName& unit, FlightState* st, FlowName* out, Error* err) {
  if (!st->decided) {
    *out = unit;
    st->decided = true;
    return Status::ok;
  }
  if (!same_name(*out, unit)) return fail(st, err, Error::name_mismatch);
  return Status::ok;
}

// Skips the empty lines a request may start with (RFC 9112 2.2): "\n" or "\r\n", from
// `pos`. Returns where they end; *wait when a CR at the end may still become "\r\n".
size_t skip_empty_lines(const uint8_t* d, size_t len, size_t pos, size_t limit, bool* wait) {
  *wait = false;
  while (pos < len && pos < limit) {
    if (d[pos] == '\n') {
      ++pos;
    } else if (d[pos] == '\r' && pos + 1 >= len) {
      *wait = true;
      break;
    } else if (d[pos] == '\r' && d[pos + 1] == '\n') {
      pos += 2;
    } else {
      break;
    }
  }
  return pos;
}

enum class Detect : uint8_t { need_more, yes, no };

// An HTTP/1.x request starts with a method token: upper-case letters ('-' and '_' after
// the first), at most kMaxDetectMethod, then SP.
Detect http_method(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (c == ' ') return i == 0 ? Detect::no : Detect::yes;
    if (i == kMaxDetectMethod) return Detect::no;
    const bool upper = c >= 'A' && c <= 'Z';
    if (!upper && !(i > 0 && (c == '-' || c == '_'))) return Detect::no;
  }
  return Detect::need_more;
}

// ---- TLS ---------------------------------------------------------------------------

// FlightState::head for TLS: set once the client's ChangeCipherSpec was walked.
constexpr uint8_t kTlsAfterCcs = 1;

// The k-th handshake byte (k < 4) of the unit whose records start at `pos`; those
// records were walked, so they are present and each holds at least one byte.
uint8_t handshake_byte(const uint8_t* d, size_t pos, size_t k) {
  for (;;) {
    const size_t n = be16(d + pos + 3);
    if (k < n) return d[pos + kTlsRecordHeader + k];
    k -= n;
    pos += kTlsRecordHeader + n;
  }
}

// The SNI as the flow's name: an IP literal (RFC 6066 3 forbids it) is logged, never a
// name; other numeric forms read as IPv4 by clients are refused.
Status tls_name(const TlsHello& h, FlowName* fn, Error* err) {
  *fn = FlowName{};
  fn->app = AppProto::tls;
  fn->ech = h.has_ech;
  fn->alpn_len = h.alpn_len;
  std::memcpy(fn->alpn, h.alpn, sizeof(fn->alpn));
  if (!h.has_sni) return Status::ok;
  fn->name = h.sni;
  switch (numeric_host(reinterpret_cast<const uint8_t*>(h.sni.buf), h.sni.len)) {
    case NumericHost::no:
      fn->has_name = true;
      return Status::ok;
    case NumericHost::dotted_quad:
      fn->ip_literal = true;
      return Status::ok;
    case NumericHost::other:
      break;
  }
  *err = Error::bad_name;
  return Status::bad;
}

// The declared body length of the unit's hello (its handshake header is walked).
size_t hello_body(const uint8_t* d, const FlightState* st) {
  return (size_t{handshake_byte(d, st->unit_start, 1)} << 16) |
         (size_t{handshake_byte(d, st->unit_start, 2)} << 8) | handshake_byte(d, st->unit_start, 3);
}

// Whether the unit's walked records hold its whole hello (the length its header declares).
bool hello_walked(const uint8_t* d, const FlightState* st) {
  return st->body_left >= 4 && st->body_left >= 4 + hello_body(d, st);
}

// The hello whose records are data[unit_start, end): parsed once, then judged. A flow
// has two hellos at most (one HelloRetryRequest, RFC 8446 4.1.4): after the second one
// nothing is left to watch.
Status tls_hello_done(const uint8_t* d, size_t end, FlightState* st, FlowName* out, Error* err) {
  TlsHello h;
  size_t consumed = 0;
  const Status s =
      parse_tls_client_hello(d + st->unit_start, end - st->unit_start, &h, err, &consumed);
  if (s == Status::bad) return fail(st, err, *err);
  FlowName fn;
  if (tls_name(h, &fn, err) != Status::ok) return fail(st, err, *err);
  const bool second = st->decided;
  const Status j = judge(fn, st, out, err);
  if (j != Status::ok) return j;
  if (second) return finish(st);
  st->unit_start = static_cast<uint32_t>(end);
  st->scan = st->unit_start;
  st->body_left = 0;
  return Status::ok;
}

// Reads the record header at st->scan (its first byte is present): ok with *rec_len,
// need_more with st->want set (the type and version bytes are judged as they come, the
// length once whole), or bad. A record of any content type is checked as a handshake
// record is (version 3.x, length 1..2^14+2048) unless `handshake` asks for that type.
Status record_header(const uint8_t* d, size_t len, bool handshake, FlightState* st, size_t* rec_len,
                     Error* err) {
  const size_t scan = st->scan;
  const size_t have = len - scan < kTlsRecordHeader ? len - scan : kTlsRecordHeader;
  uint8_t any[kTlsRecordHeader];
  const uint8_t* hdr = d + scan;
  if (!handshake) {
    std::memcpy(any, hdr, have);
    any[0] = kTlsHandshake;
    hdr = any;
  }
  const Status s = check_tls_record_header(hdr, have, rec_len, err);
  if (s == Status::bad) return fail(st, err, *err);
  if (s == Status::need_more) {
    st->want = sat_add(static_cast<uint32_t>(scan), have < 2 ? have + 1 : kTlsRecordHeader);
  }
  return s;
}

// A record other than handshake at st->scan, after the first hello (docs/l7.md). Inside
// a hello's records nothing may come between them (RFC 8446 5.1), except that after the
// client's ChangeCipherSpec application data or an encrypted alert says the "hello" was
// TLS 1.2's encrypted Finished: done. Between hellos, application data ends the watch
// (encrypted from here on); a ChangeCipherSpec or a plaintext alert is skipped, as
// servers read on after both (RFC 8446 5; user_canceled). *skipped: the walk goes on.
Status tls_other_record(const uint8_t* d, size_t len, FlightState* st, Error* err, bool* skipped) {
  *skipped = false;
  const size_t scan = st->scan;
  const uint8_t type = d[scan];
  const bool after_ccs = (st->head & kTlsAfterCcs) != 0;
  const bool in_hello = st->body_left > 0;
  if (in_hello && !after_ccs) return fail(st, err, Error::not_handshake);
  if (type == kTlsApplicationData) return finish(st);
  if (type != kTlsChangeCipherSpec && type != kTlsAlert) {
    // After the ChangeCipherSpec: encrypted records of another type, not ours to read.
    return after_ccs && !in_hello ? finish(st) : fail(st, err, Error::not_handshake);
  }
  if (in_hello && type == kTlsChangeCipherSpec) return fail(st, err, Error::not_handshake);
  size_t rec_len = 0;
  const Status hs = record_header(d, len, false, st, &rec_len, err);
  if (hs == Status::bad) return hs;
  if (hs == Status::need_more) return Status::ok;  // st->want is set
  // An alert is 2 bytes in clear; any other length is encrypted (after the
  // ChangeCipherSpec) or refused by every server.
  if (type == kTlsAlert && rec_len != kPlainAlert) return finish(st);
  if (in_hello) return fail(st, err, Error::not_handshake);  // a plaintext alert inside it
  if (type == kTlsChangeCipherSpec) st->head |= kTlsAfterCcs;
  st->scan = sat_add(static_cast<uint32_t>(scan), kTlsRecordHeader + rec_len);
  st->unit_start = st->scan;  // its body is never read: the next record may start there
  *skipped = true;
  return Status::ok;
}

// Walks the client's TLS records one at a time (each record header read once); the hello
// parser runs when a hello's handshake header is in (to judge its type and length early)
// and when all its records are.
Status tls_step(const uint8_t* d, size_t len, FlightState* st, FlowName* out, Error* err) {
  for (;;) {
    const size_t scan = st->scan;
    const size_t seen = st->body_left;
    if (hello_walked(d, st)) {
      const Status s = tls_hello_done(d, scan, st, out, err);
      if (s != Status::ok || st->done) return s;
      continue;
    }
    if (len <= scan) {
      st->want = sat_add(static_cast<uint32_t>(scan), 1);
      return pending(st);
    }
    if (st->decided && d[scan] != kTlsHandshake) {
      bool skipped = false;
      const Status s = tls_other_record(d, len, st, err, &skipped);
      if (!skipped) return s;
      continue;
    }
    size_t rec_len = 0;
    const Status hs = record_header(d, len, true, st, &rec_len, err);
    if (hs == Status::bad) return hs;
    if (hs == Status::need_more) return pending(st);
    if (seen == 0) {  // the unit's first handshake byte: its message type
      if (len - scan <= kTlsRecordHeader) {
        st->want = sat_add(static_cast<uint32_t>(scan), kTlsRecordHeader + 1);
        return pending(st);
      }
      if (d[scan + kTlsRecordHeader] != kClientHello) {
        // After a hello, other handshake messages are TLS 1.2's second flight
        // (Certificate, ClientKeyExchange) or, after the ChangeCipherSpec, its encrypted
        // Finished: nothing to read.
        if (st->decided) return finish(st);
        return fail(st, err, Error::not_handshake);
      }
    }
    if (len - scan - kTlsRecordHeader < rec_len) {
      st->want = sat_add(static_cast<uint32_t>(scan), kTlsRecordHeader + rec_len);
      return pending(st);
    }
    const size_t next = scan + kTlsRecordHeader + rec_len;
    st->scan = static_cast<uint32_t>(next);
    st->body_left = static_cast<uint32_t>(seen + rec_len);
    if (seen < 4 && seen + rec_len >= 4) {  // the handshake header is in
      if ((st->head & kTlsAfterCcs) != 0) {
        // After the ChangeCipherSpec, a handshake record starting with 1 is a hello only
        // with a length a server can accept; else it is TLS 1.2's encrypted Finished.
        const size_t body = hello_body(d, st);
        if (body < kMinHelloBody || body > kMaxHelloBody) return finish(st);
      }
      if (!hello_walked(d, st)) {
        // Not the whole hello yet: the parser refuses a length over its bound (or bytes
        // after the hello in its last record) now.
        TlsHello h;
        size_t consumed = 0;
        const Status s =
            parse_tls_client_hello(d + st->unit_start, next - st->unit_start, &h, err, &consumed);
        if (s == Status::bad) return fail(st, err, *err);
      }
    }
  }
}

// ---- HTTP/1.x ----------------------------------------------------------------------

// FlightState::head: where the unit at unit_start is.
constexpr uint8_t kBeforeLine = 0;  // skipping empty lines before the request line
constexpr uint8_t kInLine = 1;      // in the request line
constexpr uint8_t kInFields = 2;    // in the header fields

bool is_bad_ctl(uint8_t c) {
  return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

void http_name(const HttpRequest& r, FlowName* fn) {
  *fn = FlowName{};
  fn->app = AppProto::http;
  if (r.has_name) {
    fn->has_name = true;
    fn->name = r.name;
  } else if (r.ip_literal) {
    fn->ip_literal = true;
    const size_t n = std::strlen(r.ip);  // at most 45: r.ip is NUL-terminated
    std::memcpy(fn->name.buf, r.ip, n);
    fn->name.buf[n] = '\0';
    fn->name.len = static_cast<uint8_t>(n);
  }
}

// data[unit_start, upto) holds a byte no head may hold, or kMaxHttpHead bytes without an
// end: let the parser say why (need_more, never expected: it sees no fault).
Status http_refuse(const uint8_t* d, size_t upto, FlightState* st, Error* err) {
  HttpRequest r;
  size_t consumed = 0;
  const size_t n = upto - st->unit_start;
  const Status s = parse_http_request(d + st->unit_start, n < kMaxHttpHead ? n : kMaxHttpHead, &r,
                                      err, &consumed);
  if (s == Status::bad) return fail(st, err, *err);
  *err = Error::none;
  return Status::need_more;
}

// The request line ends at data[end - 1]: refuse HTTP/2's preface, and whatever the
// parser refuses in the line (HTTP/0.9, another version, a bad method or target), now.
Status http_line_done(const uint8_t* d, size_t end, FlightState* st, Error* err) {
  bool wait = false;
  const size_t line = skip_empty_lines(d, end, st->unit_start, end, &wait);
  const size_t pre = sizeof(kH2Preface) - 1;
  if (end - line > pre && std::memcmp(d + line, kH2Preface, pre) == 0 &&
      (d[line + pre] == '\r' || d[line + pre] == '\n')) {
    return fail(st, err, Error::unsupported);  // HTTP/2 prior knowledge
  }
  return http_refuse(d, end, st, err);
}

// The head data[unit_start, end) is complete: parse it, judge its name, set up the body.
Status http_head_done(const uint8_t* d, size_t end, FlightState* st, FlowName* out, Error* err) {
  const size_t start = st->unit_start;
  HttpRequest r;
  size_t consumed = 0;
  const Status s = parse_http_request(d + start, end - start, &r, err, &consumed);
  if (s == Status::bad) return fail(st, err, *err);
  if (s != Status::ok) return Status::need_more;  // not a whole head to the parser: scan on
  FlowName fn;
  http_name(r, &fn);
  const Status j = judge(fn, st, out, err);
  if (j != Status::ok) return j;
  end = start + consumed;
  st->unit_start = static_cast<uint32_t>(end);
  st->scan = st->unit_start;
  st->head = kBeforeLine;
  // The stream stops being HTTP/1.x (a tunnel, another protocol), or the body's end is
  // unknown here (chunked): later requests cannot be found, so none is checked.
  if (r.connect || r.upgrade || r.transfer_encoding) return finish(st);
  if (r.has_content_length) {
    if (r.content_length >= kNever - end) return finish(st);  // ends beyond any buffer
    st->body_left = static_cast<uint32_t>(r.content_length);
  }
  return Status::ok;
}

// Finds each head's end by scanning every byte once (st->scan), skips bodies by their
// Content-Length, and runs the parser on a head's request line and on the whole head
// (or where a byte refuses it, or at kMaxHttpHead).
Status http_step(const uint8_t* d, size_t len, FlightState* st, FlowName* out, Error* err) {
  for (;;) {
    if (st->body_left > 0) {
      const size_t avail = len - st->unit_start;
      if (avail < st->body_left) {
        st->body_left -= static_cast<uint32_t>(avail);
        st->unit_start = static_cast<uint32_t>(len);
        st->scan = st->unit_start;
        st->want = sat_add(st->unit_start, size_t{st->body_left} + 1);
        return pending(st);
      }
      st->unit_start += st->body_left;
      st->scan = st->unit_start;
      st->body_left = 0;
    }
    const size_t limit = size_t{st->unit_start} + kMaxHttpHead;  // leading empty lines too
    if (st->head == kBeforeLine) {
      bool wait = false;
      const size_t pos = skip_empty_lines(d, len, st->scan, limit, &wait);
      st->scan = static_cast<uint32_t>(pos);
      if (pos >= limit) {
        if (http_refuse(d, limit, st, err) == Status::bad) return Status::bad;
        return fail(st, err, Error::too_large);  // (never: the parser refuses it first)
      }
      if (pos >= len || wait) {
        st->want = sat_add(static_cast<uint32_t>(len), 1);
        return pending(st);
      }
      st->head = kInLine;
    }
    // Events, in byte order: the request line's end; the head's end (an LF right after
    // "\n" or "\n\r": past the request line, looking back stays inside the head); a byte
    // no head may hold. Each byte is scanned once over all calls.
    const size_t stop = len < limit ? len : limit;
    size_t i = st->scan;
    size_t event = 0;  // 0: none yet; else one past the bytes that end or refuse the head
    for (; i < stop; ++i) {
      const uint8_t c = d[i];
      if (c == '\n') {
        if (st->head == kInLine || d[i - 1] == '\n' || (d[i - 1] == '\r' && d[i - 2] == '\n')) {
          event = i + 1;
          break;
        }
      } else if (c == '\r') {
        if (i + 1 >= len) break;  // the next byte says whether this CR is bare
        if (d[i + 1] != '\n') {
          event = i + 2;
          break;
        }
      } else if (is_bad_ctl(c)) {
        event = i + 1;
        break;
      }
    }
    if (event == 0) {
      st->scan = static_cast<uint32_t>(i);
      if (i >= limit) {
        if (http_refuse(d, limit, st, err) == Status::bad) return Status::bad;
        return fail(st, err, Error::too_large);  // (never: the parser refuses it first)
      }
      st->want = sat_add(static_cast<uint32_t>(len), 1);
      return pending(st);
    }
    st->scan = static_cast<uint32_t>(i + 1);
    if (d[i] != '\n') {
      if (http_refuse(d, event, st, err) == Status::bad) return Status::bad;
      continue;  // (never: the parser sees no fault there) scan on
    }
    if (st->head == kInLine) {
      if (http_line_done(d, event, st, err) == Status::bad) return Status::bad;
      st->head = kInFields;
      continue;
    }
    const Status s = http_head_done(d, event, st, out, err);
    if (s == Status::bad || st->done) return s;
  }
}

// ---- DNS over TCP ------------------------------------------------------------------

// Every query message on the flow is parsed and must ask for the same name.
Status dns_step(const uint8_t* d, size_t len, FlightState* st, FlowName* out, Error* err) {
  for (;;) {
    const size_t start = st->unit_start;
    size_t off = 0, n = 0;
    const Status f = dns_tcp_frame(d + start, len - start, &off, &n);
    if (f == Status::bad) return fail(st, err, Error::bad_syntax);
    if (f == Status::need_more) {
      const size_t need = len - start < 2 ? 2 : 2 + size_t{be16(d + start)};
      st->want = sat_add(static_cast<uint32_t>(start), need);
      return pending(st);
    }
    DnsQuery q;
    if (parse_dns_query(d + start + off, n, &q, err) != Status::ok) return fail(st, err, *err);
    FlowName fn;
    fn.app = AppProto::dns;
    fn.has_name = true;
    fn.name = q.name;
    const Status j = judge(fn, st, out, err);
    if (j != Status::ok) return j;
    st->unit_start = static_cast<uint32_t>(start + off + n);
  }
}

}  // namespace

const char* app_proto_name(AppProto a) {
  switch (a) {
    case AppProto::unknown:
      return "unknown";
    case AppProto::tls:
      return "tls";
    case AppProto::http:
      return "http";
    case AppProto::dns:
      return "dns";
    case AppProto::quic:
      return "quic";
  }
  return "unknown";
}

Status parse_tcp_flight(const uint8_t* data, size_t len, uint16_t remote_port, FlightState* st,
                        FlowName* out, Error* err) {
  *err = Error::none;
  if (st->error != Error::none) {
    *err = st->error;
    return Status::bad;
  }
  if (st->done) return Status::ok;
  if (data == nullptr) len = 0;
  if (len >= kNever) len = kNever - 1;  // offsets are 32-bit; no flight is that long
  if (len < st->unit_start || len < st->scan) return pending(st);  // never shrinks
  if (len < st->want) return pending(st);

  if (st->app == AppProto::unknown) {
    if (remote_port == kDnsPort) {
      st->app = AppProto::dns;
    } else if (len == 0) {
      st->want = 1;
      return Status::need_more;
    } else if (data[0] == kTlsHandshake) {
      st->app = AppProto::tls;
    } else if ((data[0] & 0x80) != 0) {
      return fail(st, err, Error::unsupported);  // SSLv2-format hello
    } else {
      bool wait = false;
      const size_t pos = skip_empty_lines(data, len, st->scan, kMaxHttpHead, &wait);
      st->scan = static_cast<uint32_t>(pos);
      const Detect m = pos >= kMaxHttpHead ? Detect::yes
                       : wait              ? Detect::need_more
                                           : http_method(data + pos, len - pos);
      if (m == Detect::need_more) {
        st->want = static_cast<uint32_t>(len + 1);
        return Status::need_more;
      }
      if (m == Detect::no) {
        *out = FlowName{};
        st->decided = true;
        return finish(st);
      }
      st->app = AppProto::http;
      st->head = pos < kMaxHttpHead ? kInLine : kBeforeLine;
    }
  }
  switch (st->app) {
    case AppProto::tls:
      return tls_step(data, len, st, out, err);
    case AppProto::http:
      return http_step(data, len, st, out, err);
    case AppProto::dns:
      return dns_step(data, len, st, out, err);
    default:
      return finish(st);
  }
}

}  // namespace egw::l7
