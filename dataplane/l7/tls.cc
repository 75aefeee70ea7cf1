// TLS ClientHello parser: records, handshake reassembly across records, extensions, SNI
// (RFC 6066), ALPN, ECH. Worker lcores (and tests/fuzzers): pure, no allocation, no locks.
#include <cstring>

#include "dataplane/l7/l7.h"

namespace egw::l7 {
namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecord = (1u << 14) + 2048;  // RFC 8446 5.2 ciphertext bound
constexpr size_t kMaxHelloBody = 1u << 16;        // handshake body bound for a ClientHello
constexpr size_t kMaxExtensions = 128;            // real hellos carry ~20
constexpr size_t kMaxSniLen = 255;
constexpr size_t kMaxAlpn = 32;

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtEch = 0xfe0d;

// Checks the bytes of a record header present at data[pos..len) (possibly fewer than 5).
// Returns ok when the whole header is present and valid (then *rec_len is set).
Status check_record_header(const uint8_t* data, size_t len, size_t pos, size_t* rec_len,
                           Error* err) {
  const size_t have = len - pos;
  if (pos == 0 && have >= 1 && (data[0] & 0x80) != 0) {  // SSLv2-format hello: msb set
    *err = Error::bad_version;
    return Status::bad;
  }
  return check_tls_record_header(data + pos, have < kRecordHeader ? have : kRecordHeader, rec_len,
                                 err);
}

// Phase 1: validates the record framing of the hello and finds where it ends. On ok,
// every byte of the hello's records lies in data[0..*end).
Status frame_hello(const uint8_t* data, size_t len, size_t* end, Error* err) {
  size_t pos = 0;   // stream position of the next unread byte
  size_t left = 0;  // handshake bytes left in the current record
  // The 4-byte handshake header, which may itself span records.
  uint8_t hdr[4];
  for (size_t i = 0; i < 4; ++i) {
    if (left == 0) {
      const Status s = check_record_header(data, len, pos, &left, err);
      if (s != Status::ok) return s;
      pos += kRecordHeader;
    }
    if (pos >= len) return Status::need_more;
    hdr[i] = data[pos++];
    --left;
    if (i == 0 && hdr[0] != kHandshakeClientHello) {
      *err = Error::not_handshake;
      return Status::bad;
    }
  }
  size_t need = (size_t{hdr[1]} << 16) | (size_t{hdr[2]} << 8) | hdr[3];
  if (need > kMaxHelloBody) {
    *err = Error::too_large;
    return Status::bad;
  }
  // Walk the record headers over the body; the body bytes are read in phase 2.
  while (need > 0) {
    if (left == 0) {
      if (pos >= len) return Status::need_more;
      const Status s = check_record_header(data, len, pos, &left, err);
      if (s != Status::ok) return s;
      pos += kRecordHeader;
    }
    const size_t take = need < left ? need : left;
    pos += take;
    left -= take;
    need -= take;
  }
  if (left != 0) {  // bytes after the hello inside its last record: nothing may follow
    *err = Error::not_handshake;
    return Status::bad;
  }
  if (pos > len) return Status::need_more;
  *end = pos;
  return Status::ok;
}

// Phase 2: a sequential reader over the hello body, hopping record headers that phase 1
// validated. Every read is bounded by the body bytes left (`remain`).
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t pos, size_t left, size_t remain)
      : d_(data), pos_(pos), left_(left), remain_(remain) {}

  size_t remain() const { return remain_; }
  void set_remain(size_t n) { remain_ = n; }

  bool u8(uint8_t* v) {
    if (remain_ == 0) return false;
    hop();
    *v = d_[pos_++];
    --left_;
    --remain_;
    return true;
  }
  bool u16(uint16_t* v) {
    uint8_t a, b;
    if (remain_ < 2 || !u8(&a) || !u8(&b)) return false;
    *v = static_cast<uint16_t>((a << 8) | b);
    return true;
  }
  // Copies n bytes to dst (nullptr: skips them).
  bool read(uint8_t* dst, size_t n) {
    if (n > remain_) return false;
    while (n > 0) {
      hop();
      const size_t take = n < left_ ? n : left_;
      if (dst != nullptr) {
        std::memcpy(dst, d_ + pos_, take);
        dst += take;
      }
      pos_ += take;
      left_ -= take;
      remain_ -= take;
      n -= take;
    }
    return true;
  }
  bool skip(size_t n) { return read(nullptr, n); }

 private:
  // Moves past a record header when the current record is used up.
  void hop() {
    if (left_ != 0) return;
    left_ = (size_t{d_[pos_ + 3]} << 8) | d_[pos_ + 4];
    pos_ += kRecordHeader;
  }

  const uint8_t* d_;
  size_t pos_;
  size_t left_;
  size_t remain_;
};

Status fail(Error* err, Error e) {
  *err = e;
  return Status::bad;
}

// server_name (RFC 6066 3): a list holding exactly one host_name.
Status parse_sni(Cursor* c, size_t elen, TlsHello* h, Error* err) {
  uint16_t list_len;
  if (elen < 2 || !c->u16(&list_len) || list_len != elen - 2 || list_len == 0) {
    return fail(err, Error::bad_extension);
  }
  size_t left = list_len;
  while (left > 0) {
    uint8_t type;
    uint16_t n;
    if (left < 3 || !c->u8(&type) || !c->u16(&n)) return fail(err, Error::bad_extension);
    left -= 3;
    if (type != 0) return fail(err, Error::bad_extension);  // only host_name is defined
    if (n > left) return fail(err, Error::bad_extension);
    if (h->has_sni) return fail(err, Error::duplicate);
    if (n == 0 || n > kMaxSniLen) return fail(err, Error::bad_name);
    uint8_t raw[kMaxSniLen];
    if (!c->read(raw, n)) return fail(err, Error::bad_extension);
    left -= n;
    if (!normalize_name(raw, n, &h->sni)) return fail(err, Error::bad_name);
    h->has_sni = true;
  }
  return Status::ok;
}

// application_layer_protocol_negotiation (RFC 7301 3.1): keeps the first protocol.
Status parse_alpn(Cursor* c, size_t elen, TlsHello* h, Error* err) {
  uint16_t list_len;
  if (elen < 2 || !c->u16(&list_len) || list_len != elen - 2 || list_len == 0) {
    return fail(err, Error::bad_extension);
  }
  size_t left = list_len;
  bool first = true;
  while (left > 0) {
    uint8_t n;
    if (!c->u8(&n) || n == 0 || size_t{n} + 1 > left) return fail(err, Error::bad_extension);
    left -= 1 + size_t{n};
    if (!first) {
      if (!c->skip(n)) return fail(err, Error::bad_extension);
      continue;
    }
    first = false;
    const size_t keep = n < kMaxAlpn ? n : kMaxAlpn;
    uint8_t tmp[kMaxAlpn];
    if (!c->read(tmp, keep) || !c->skip(n - keep)) return fail(err, Error::bad_extension);
    for (size_t i = 0; i < keep; ++i) {  // printable ASCII only: it goes to flow records
      h->alpn[i] = (tmp[i] >= 0x20 && tmp[i] < 0x7f) ? static_cast<char>(tmp[i]) : '?';
    }
    h->alpn[keep] = '\0';
    h->alpn_len = static_cast<uint8_t>(keep);
  }
  return Status::ok;
}

// The extensions block: every type at most once (RFC 8446 4.2), lengths within the block.
Status parse_extensions(Cursor* c, TlsHello* h, Error* err) {
  uint16_t block;
  if (!c->u16(&block) || block != c->remain()) return fail(err, Error::bad_extension);
  uint16_t seen[kMaxExtensions];
  size_t nseen = 0;
  size_t left = block;
  while (left > 0) {
    uint16_t type, elen;
    if (left < 4 || !c->u16(&type) || !c->u16(&elen)) return fail(err, Error::bad_extension);
    left -= 4;
    if (elen > left) return fail(err, Error::bad_extension);
    left -= elen;
    for (size_t i = 0; i < nseen; ++i) {
      if (seen[i] == type) return fail(err, Error::duplicate);
    }
    if (nseen == kMaxExtensions) return fail(err, Error::too_large);
    seen[nseen++] = type;
    const size_t before = c->remain();
    Status s = Status::ok;
    if (type == kExtServerName) {
      s = parse_sni(c, elen, h, err);
    } else if (type == kExtAlpn) {
      s = parse_alpn(c, elen, h, err);
    } else {
      if (type == kExtEch) h->has_ech = true;
      if (!c->skip(elen)) return fail(err, Error::bad_extension);
    }
    if (s != Status::ok) return s;
    if (before - c->remain() != elen) return fail(err, Error::bad_extension);
  }
  return Status::ok;
}

// The ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2).
Status parse_body(Cursor* c, TlsHello* h, Error* err) {
  uint16_t version;
  if (!c->u16(&version)) return fail(err, Error::truncated_field);
  if ((version >> 8) != 3) return fail(err, Error::bad_version);
  h->legacy_version = version;
  uint8_t sid_len;
  if (!c->skip(32) || !c->u8(&sid_len) || sid_len > 32 || !c->skip(sid_len)) {
    return fail(err, Error::truncated_field);
  }
  uint16_t cs_len;
  if (!c->u16(&cs_len) || cs_len == 0 || (cs_len & 1) != 0 || !c->skip(cs_len)) {
    return fail(err, Error::truncated_field);
  }
  uint8_t comp_len;
  if (!c->u8(&comp_len) || comp_len == 0 || !c->skip(comp_len)) {
    return fail(err, Error::truncated_field);
  }
  if (c->remain() == 0) return Status::ok;  // no extensions block (pre-TLS 1.2 clients)
  return parse_extensions(c, h, err);
}

}  // namespace

Status check_tls_record_header(const uint8_t* hdr, size_t have, size_t* rec_len, Error* err) {
  if (have >= 1 && hdr[0] != kContentHandshake) {
    *err = Error::not_handshake;
    return Status::bad;
  }
  if (have >= 2 && hdr[1] != 3) {
    *err = Error::bad_version;
    return Status::bad;
  }
  if (have < kRecordHeader) return Status::need_more;
  const size_t n = (size_t{hdr[3]} << 8) | hdr[4];
  if (n > kMaxRecord) {
    *err = Error::record_too_long;
    return Status::bad;
  }
  if (n == 0) {  // RFC 8446 5.1: no zero-length handshake fragments
    *err = Error::not_handshake;
    return Status::bad;
  }
  *rec_len = n;
  return Status::ok;
}

Status parse_tls_client_hello(const uint8_t* data, size_t len, TlsHello* out, Error* err,
                              size_t* consumed) {
  *out = TlsHello{};
  *err = Error::none;
  *consumed = 0;
  if (data == nullptr) len = 0;
  size_t end = 0;
  const Status framed = frame_hello(data, len, &end, err);
  if (framed != Status::ok) return framed;
  // Phase 1 proved the records valid and present: read them again through a cursor,
  // first the handshake header, then the body bounded by its declared length.
  Cursor c(data, kRecordHeader, (size_t{data[3]} << 8) | data[4], 4);
  uint8_t hdr[4];
  c.read(hdr, 4);
  c.set_remain((size_t{hdr[1]} << 16) | (size_t{hdr[2]} << 8) | hdr[3]);
  TlsHello h;
  const Status s = parse_body(&c, &h, err);
  if (s != Status::ok) return s;
  if (c.remain() != 0) return fail(err, Error::truncated_field);
  *out = h;
  *consumed = end;
  return Status::ok;
}

}  // namespace egw::l7
