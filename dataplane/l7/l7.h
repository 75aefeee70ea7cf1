// L7 name extraction: pure parsers over the client's first bytes of a flow (TLS
// ClientHello SNI, HTTP/1.x request authority, DNS query name) and name normalisation.
// Worker lcores: no allocation, no locks, every length checked; also called directly
// by unit tests and fuzzers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace egw::l7 {

constexpr size_t kMaxName = 253;  // a DNS name without its trailing dot (RFC 1035 2.3.4)

// Outcome of a parser run over the bytes seen so far.
enum class Status : uint8_t {
  need_more,  // well-formed so far; more bytes are needed to decide
  ok,         // parsed: the result is filled in
  bad,        // malformed, ambiguous or an evasion: the flow must be denied
};

// Why a parser said bad (for counters and tests).
enum class Error : uint8_t {
  none,
  truncated_field,   // a length points past its container
  bad_version,       // SSLv2 hello, unknown record type, HTTP version
  record_too_long,   // TLS record over 2^14 + 2048
  not_handshake,     // first record is not a handshake / first message not ClientHello
  bad_extension,     // malformed extension block or SNI list
  duplicate,         // second server_name extension, second Host header, ...
  bad_name,          // invalid characters, empty label, label > 63, name > 253, NUL
  too_large,         // over the parser's bound (headers over the limit, ...)
  bad_syntax,        // HTTP request line / header syntax, DNS header
  pointer_loop,      // DNS compression loop or chain over the limit
  count_not_one,     // DNS question count other than 1
  name_mismatch,     // a later request/hello/message on the flow names another name
  unsupported,       // HTTP/2 prior knowledge, SSLv2, ...: refused, never skipped
};

// A normalised name: lower case, no trailing dot, only [a-z0-9-_] and dots, labels of
// 1..63, total 1..253. Not NUL-terminated unless `len < sizeof(buf)` (it always is).
struct Name {
  uint8_t len = 0;
  char buf[kMaxName + 1] = {};
};

// Normalises raw (case-insensitive, optional single trailing dot). Returns false (bad
// name) for anything else: empty labels, NUL or control bytes, spaces, '*' ...
bool normalize_name(const uint8_t* raw, size_t len, Name* out);

// ---- TLS ------------------------------------------------------------------------
struct TlsHello {
  bool has_sni = false;
  Name sni;                  // valid when has_sni
  bool has_ech = false;      // encrypted_client_hello (0xfe0d): the SNI is the outer one
  uint8_t alpn_len = 0;      // first ALPN protocol, truncated to 32 bytes
  char alpn[33] = {};
  uint16_t legacy_version = 0;
};
// Parses the client's first flight: TLS records (a ClientHello may span several
// records) up to the end of the ClientHello. `data` is the in-order byte stream from
// the flow's start. *consumed is set to the bytes of the hello's records on ok.
Status parse_tls_client_hello(const uint8_t* data, size_t len, TlsHello* out, Error* err,
                              size_t* consumed);
// Checks the first `have` bytes (up to 5) of a record header in the client's handshake
// flight: need_more while valid so far, ok with *rec_len once all 5 are there and valid
// (type 22, version 3.x, length 1..2^14+2048), bad otherwise.
Status check_tls_record_header(const uint8_t* hdr, size_t have, size_t* rec_len, Error* err);

// ---- HTTP/1.x -------------------------------------------------------------------
constexpr size_t kMaxHttpHead = 16384;  // request line + headers

struct HttpRequest {
  bool has_name = false;     // a DNS name was found (Host or the absolute target)
  Name name;                 // normalised, without port
  bool ip_literal = false;   // the authority is an IP literal (logged, never a name)
  char ip[46] = {};          // the literal, NUL-terminated, when ip_literal
  bool connect = false;      // CONNECT method: the authority is the tunnel target
  bool upgrade = false;      // Upgrade header present
  uint8_t method_len = 0;
  char method[16] = {};
  bool has_content_length = false;  // Content-Length present (every value equal)
  uint64_t content_length = 0;
  bool transfer_encoding = false;  // Transfer-Encoding present: the body's length is unknown
};
// Parses one request head (request line + headers up to the empty line). Rules of
// RFC 9112: exactly one Host in HTTP/1.1, no obs-fold, no whitespace before ':';
// an absolute-form target's authority wins over Host; CONNECT uses its authority.
// Framing: differing Content-Length values are bad (duplicate), Content-Length with
// Transfer-Encoding is bad (bad_syntax: the body's end would be ambiguous).
// *consumed = bytes of the head (the body, if any, is not parsed: see docs/l7.md).
Status parse_http_request(const uint8_t* data, size_t len, HttpRequest* out, Error* err,
                          size_t* consumed);

// How a host reads as an IPv4 address: a strict dotted quad, or another numeric form
// ("127.1", "0x7f.0.0.1": the last label is a number) that browsers and inet_aton read
// as IPv4 too, so it is never a name.
enum class NumericHost : uint8_t { no, dotted_quad, other };
NumericHost numeric_host(const uint8_t* host, size_t len);

// ---- DNS ------------------------------------------------------------------------
struct DnsQuery {
  uint16_t id = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  Name name;  // the question name, normalised ("." root: len 0 is bad)
};
// Parses a DNS query message (UDP payload, or one TCP message without its 2-byte
// length prefix). QR must be 0, QDCOUNT exactly 1; compression pointers are followed
// with a bound (no loops, at most 16 jumps, never forward past the message).
Status parse_dns_query(const uint8_t* msg, size_t len, DnsQuery* out, Error* err);

// Splits a DNS-over-TCP stream: *msg_len = the next message's length when the 2-byte
// prefix and the whole message are present (ok), need_more otherwise; bad on length 0.
Status dns_tcp_frame(const uint8_t* data, size_t len, size_t* msg_off, size_t* msg_len);

// ---- A flow's name, from its first flight -----------------------------------------
enum class AppProto : uint8_t { unknown = 0, tls, http, dns, quic };
const char* app_proto_name(AppProto a);  // "unknown", "tls", "http", "dns", "quic"

// What a flow's first bytes say about where it goes; kept per flow for the flow record.
struct FlowName {
  AppProto app = AppProto::unknown;
  bool has_name = false;    // `name` is a DNS name that rules with name conditions match
  bool ip_literal = false;  // the SNI/authority is an IP literal: its text is in `name`
                            // (logged), but it is not a name and never matches
  bool ech = false;         // TLS encrypted_client_hello present: `name` is the outer SNI
  uint8_t alpn_len = 0;     // TLS: first ALPN protocol (truncated to 32)
  char alpn[33] = {};
  Name name;
};

// Incremental state of parse_tcp_flight() for one flow (zero-initialised at the flow's
// first payload byte). Offsets are into the flow's in-order outbound byte stream.
struct FlightState {
  AppProto app = AppProto::unknown;  // detected protocol (unknown until detected)
  bool decided = false;              // the first unit was parsed: *out was filled
  bool done = false;                 // nothing more to watch on this flow
  uint8_t head = 0;                  // HTTP: where the unit is (before/in its request line,
                                     // in its header fields); TLS: the client's
                                     // ChangeCipherSpec was seen
  Error error = Error::none;         // a call said bad: later calls say so again
  uint32_t unit_start = 0;           // start of the unit (hello/request/message) not yet parsed
  uint32_t scan = 0;                 // HTTP: where the search for the end of the head resumes;
                                     // TLS: the next record header of the unit
  uint32_t want = 0;                 // call again once len >= want: no shorter prefix can
                                     // change the result (such calls return at once)
  uint32_t body_left = 0;            // HTTP: body bytes of the last request still to skip;
                                     // TLS: handshake bytes in the unit's records before scan
};

// Parses the client's in-order bytes of a TCP flow, data[0] being its first payload
// byte; call again with the same state and the same *out as the prefix grows (len never
// shrinks; *out keeps the first name, which later units are compared with).
// Detects the protocol: a TLS handshake record, an HTTP/1.x method, DNS over TCP when
// remote_port is 53; anything else is AppProto::unknown (ok, no name, done).
//   need_more: the first unit is not complete (st->want says when to call again).
//   ok:        *out holds the flow's name (from the first unit). Later complete units
//              are judged on later calls: another name -> bad (name_mismatch).
//              st->done: nothing more to watch (TLS after the second hello,
//              application data, an encrypted alert or a handshake message that is not
//              a hello; HTTP after CONNECT/Upgrade or a body whose length is unknown;
//              unknown protocols).
//   bad:       malformed, evasive or conflicting: the flow must be denied (*err says why).
// Work is amortised O(len) over all calls of a flow.
Status parse_tcp_flight(const uint8_t* data, size_t len, uint16_t remote_port,
                        FlightState* st, FlowName* out, Error* err);

// Reads the header and question of a DNS response (QR = 1, QDCOUNT = 1) for matching
// it with the query it answers: id, name (normalised), qtype, qclass.
Status parse_dns_response(const uint8_t* msg, size_t len, DnsQuery* out, Error* err);

}  // namespace egw::l7
