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
};
// Parses one request head (request line + headers up to the empty line). Rules of
// RFC 9112: exactly one Host in HTTP/1.1, no obs-fold, no whitespace before ':';
// an absolute-form target's authority wins over Host; CONNECT uses its authority.
// *consumed = bytes of the head (the body, if any, is not parsed: see docs/l7.md).
Status parse_http_request(const uint8_t* data, size_t len, HttpRequest* out, Error* err,
                          size_t* consumed);

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

}  // namespace egw::l7
