// DNS query parser (one question, optional EDNS0 OPT record), the question of a response
// (to match it with its query) and DNS-over-TCP framing.
// Worker lcores: pure functions over bytes, no allocation, every length checked.
#include "dataplane/l7/l7.h"
#include "dataplane/bytes.h"

namespace egw::l7 {
namespace {

constexpr size_t kHeaderLen = 12;
constexpr size_t kMaxJumps = 16;      // compression pointers followed per name
constexpr size_t kMaxWireName = 255;  // RFC 1035 3.1: labels + length bytes + root
constexpr size_t kRrFixedLen = 10;    // type, class, ttl, rdlength
constexpr uint16_t kTypeOpt = 41;

Status fail(Error* err, Error why) {
  *err = why;
  return Status::bad;
}

// Reads the name at msg[pos], following compression pointers to any offset inside the
// message (forward pointers occur in real traffic and resolvers follow them), with at
// most kMaxJumps jumps and no target visited twice (a loop). Writes the dotted text to text[]
// (*text_len) and the offset just past the name's bytes in place to *end.
Error read_name(const uint8_t* msg, size_t len, size_t pos, char* text, size_t* text_len,
                size_t* end) {
  size_t targets[kMaxJumps];
  size_t jumps = 0;
  size_t wire = 1;  // the root label's length byte
  size_t n = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= len) return Error::truncated_field;
    const uint8_t b = msg[pos];
    const uint8_t kind = b & 0xC0;
    if (kind == 0xC0) {
      if (pos + 1 >= len) return Error::truncated_field;
      const size_t target = static_cast<size_t>(be16(msg + pos) & 0x3FFF);
      if (target >= len) return Error::truncated_field;  // pointer past the end
      for (size_t i = 0; i < jumps; ++i) {
        if (targets[i] == target) return Error::pointer_loop;
      }
      if (jumps == kMaxJumps) return Error::pointer_loop;  // chain over the limit
      targets[jumps++] = target;
      if (!jumped) *end = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if (kind != 0) return Error::bad_name;  // 0x40 extended / 0x80 reserved label types
    if (b == 0) break;
    const size_t label = b;  // 1..63
    if (pos + 1 + label > len) return Error::truncated_field;
    wire += 1 + label;
    if (wire > kMaxWireName) return Error::bad_name;
    if (n != 0) text[n++] = '.';
    for (size_t i = 0; i < label; ++i) {
      const uint8_t c = msg[pos + 1 + i];
      // A '.' inside a label would read as a label boundary once dotted: refuse it.
      if (c == '.') return Error::bad_name;
      text[n++] = static_cast<char>(c);
    }
    pos += 1 + label;
  }
  if (!jumped) *end = pos + 1;
  *text_len = n;
  return Error::none;
}

// Walks one EDNS0 OPT record at msg[pos] (root owner, type 41, options inside rdata).
Error walk_opt(const uint8_t* msg, size_t len, size_t pos, size_t* end) {
  if (pos >= len) return Error::truncated_field;
  if (msg[pos] != 0) return Error::bad_syntax;  // owner must be the root, no pointer
  ++pos;
  if (len - pos < kRrFixedLen) return Error::truncated_field;
  if (be16(msg + pos) != kTypeOpt) return Error::bad_syntax;
  const size_t rdlen = be16(msg + pos + 8);
  pos += kRrFixedLen;
  if (len - pos < rdlen) return Error::truncated_field;
  const size_t rd_end = pos + rdlen;
  while (pos < rd_end) {  // options: code(2) length(2) data
    if (rd_end - pos < 4) return Error::truncated_field;
    const size_t olen = be16(msg + pos + 2);
    pos += 4;
    if (rd_end - pos < olen) return Error::truncated_field;
    pos += olen;
  }
  *end = rd_end;
  return Error::none;
}

// The header fields both directions check: QR, opcode QUERY, exactly one question.
Error check_header(const uint8_t* msg, size_t len, bool response) {
  if (len < kHeaderLen) return Error::truncated_field;
  const uint16_t flags = be16(msg + 2);
  if (((flags & 0x8000) != 0) != response) return Error::bad_syntax;  // QR
  if (((flags >> 11) & 0xF) != 0) return Error::bad_syntax;           // opcode not QUERY
  if (be16(msg + 4) != 1) return Error::count_not_one;
  return Error::none;
}

// The question after the header: its name as dotted text (not yet normalised), qtype and
// qclass; *end = the offset just past it.
Error read_question(const uint8_t* msg, size_t len, char* text, size_t* text_len, DnsQuery* q,
                    size_t* end) {
  size_t pos = 0;
  const Error e = read_name(msg, len, kHeaderLen, text, text_len, &pos);
  if (e != Error::none) return e;
  if (*text_len == 0) return Error::bad_name;  // the root is not a name to match
  if (len - pos < 4) return Error::truncated_field;
  q->qtype = be16(msg + pos);
  q->qclass = be16(msg + pos + 2);
  *end = pos + 4;
  return Error::none;
}

Status finish(const uint8_t* msg, const char* text, size_t text_len, const DnsQuery& q,
              DnsQuery* out, Error* err) {
  if (!normalize_name(reinterpret_cast<const uint8_t*>(text), text_len, &out->name)) {
    return fail(err, Error::bad_name);
  }
  out->id = be16(msg);
  out->qtype = q.qtype;
  out->qclass = q.qclass;
  return Status::ok;
}

}  // namespace

Status parse_dns_query(const uint8_t* msg, size_t len, DnsQuery* out, Error* err) {
  *err = Error::none;
  Error e = check_header(msg, len, false);
  if (e != Error::none) return fail(err, e);
  if (be16(msg + 6) != 0 || be16(msg + 8) != 0) return fail(err, Error::bad_syntax);
  const uint16_t arcount = be16(msg + 10);
  if (arcount > 1) return fail(err, Error::bad_syntax);

  char text[kMaxWireName];
  size_t text_len = 0;
  size_t pos = 0;
  DnsQuery q;
  e = read_question(msg, len, text, &text_len, &q, &pos);
  if (e != Error::none) return fail(err, e);
  if (arcount == 1) {
    e = walk_opt(msg, len, pos, &pos);
    if (e != Error::none) return fail(err, e);
  }
  if (pos != len) return fail(err, Error::bad_syntax);  // bytes no section declares
  return finish(msg, text, text_len, q, out, err);
}

// The sections after the question are not read: only what matches it to its query.
Status parse_dns_response(const uint8_t* msg, size_t len, DnsQuery* out, Error* err) {
  *err = Error::none;
  Error e = check_header(msg, len, true);
  if (e != Error::none) return fail(err, e);
  char text[kMaxWireName];
  size_t text_len = 0;
  size_t pos = 0;
  DnsQuery q;
  e = read_question(msg, len, text, &text_len, &q, &pos);
  if (e != Error::none) return fail(err, e);
  return finish(msg, text, text_len, q, out, err);
}

Status dns_tcp_frame(const uint8_t* data, size_t len, size_t* msg_off, size_t* msg_len) {
  *msg_off = 0;
  *msg_len = 0;
  if (len < 2) return Status::need_more;
  const size_t n = be16(data);
  if (n == 0) return Status::bad;
  if (len - 2 < n) return Status::need_more;
  *msg_off = 2;
  *msg_len = n;
  return Status::ok;
}

}  // namespace egw::l7
