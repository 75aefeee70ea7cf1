// Test-only: builds TLS ClientHello messages (SNI list, ALPN, ECH, key_share sized like a
// post-quantum hello, padding to a target size, the second hello after a retry), wraps
// them in records split at will, and the records a client sends after its hello.
// Header-only; used by the L7 unit tests and the fuzz corpus writer (any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace egw::test {

using TlsBytes = std::vector<uint8_t>;

inline void put8(TlsBytes* b, size_t v) {
  b->push_back(static_cast<uint8_t>(v));
}
inline void put16(TlsBytes* b, size_t v) {
  put8(b, v >> 8);
  put8(b, v);
}
inline void put24(TlsBytes* b, size_t v) {
  put8(b, v >> 16);
  put16(b, v);
}
inline void append(TlsBytes* b, const TlsBytes& v) {
  b->insert(b->end(), v.begin(), v.end());
}
inline void append(TlsBytes* b, const std::string& v) {
  b->insert(b->end(), v.begin(), v.end());
}

// One extension: type and raw body (the 4-byte header is added by the builder).
struct TlsExt {
  uint16_t type;
  TlsBytes body;
};

constexpr uint16_t kExtSni = 0;
constexpr uint16_t kExtGroups = 10;
constexpr uint16_t kExtSigAlgs = 13;
constexpr uint16_t kExtAlpnType = 16;
constexpr uint16_t kExtPadding = 21;
constexpr uint16_t kExtVersions = 43;
constexpr uint16_t kExtKeyShare = 51;
constexpr uint16_t kExtEchType = 0xfe0d;

// server_name with one host_name entry per name, list length computed.
inline TlsExt sni_list_ext(const std::vector<std::string>& names) {
  TlsBytes list;
  for (const std::string& n : names) {
    put8(&list, 0);
    put16(&list, n.size());
    append(&list, n);
  }
  TlsExt e{kExtSni, {}};
  put16(&e.body, list.size());
  append(&e.body, list);
  return e;
}
inline TlsExt sni_ext(const std::string& name) {
  return sni_list_ext({name});
}

// ALPN with the given protocols, list length computed.
inline TlsExt alpn_ext(const std::vector<std::string>& protos) {
  TlsBytes list;
  for (const std::string& p : protos) {
    put8(&list, p.size());
    append(&list, p);
  }
  TlsExt e{kExtAlpnType, {}};
  put16(&e.body, list.size());
  append(&e.body, list);
  return e;
}

// supported_versions offering TLS 1.3 and 1.2.
inline TlsExt versions13_ext() {
  return {kExtVersions, {4, 0x03, 0x04, 0x03, 0x03}};
}

// supported_groups: X25519MLKEM768, x25519, secp256r1.
inline TlsExt groups_ext() {
  return {kExtGroups, {0, 6, 0x11, 0xec, 0x00, 0x1d, 0x00, 0x17}};
}

// signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
inline TlsExt sigalgs_ext() {
  return {kExtSigAlgs, {0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01}};
}

// key_share with one entry of `key_len` bytes of group `group` (X25519MLKEM768: 1216).
inline TlsExt key_share_ext(size_t key_len, uint16_t group = 0x11ec) {
  TlsBytes entry;
  put16(&entry, group);
  put16(&entry, key_len);
  entry.resize(entry.size() + key_len, 0x5a);
  TlsExt e{kExtKeyShare, {}};
  put16(&e.body, entry.size());
  append(&e.body, entry);
  return e;
}

// encrypted_client_hello (outer): opaque payload of `len` bytes (content not parsed).
inline TlsExt ech_ext(size_t len = 200) {
  TlsExt e{kExtEchType, {0x00, 0x00, 0x01, 0x00, 0x01, 0x2a}};  // outer, suite, config id
  e.body.resize(e.body.size() + len, 0xec);
  return e;
}

struct HelloSpec {
  uint16_t legacy_version = 0x0303;
  size_t session_id_len = 32;
  std::vector<uint16_t> ciphers = {0x1301, 0x1302, 0x1303, 0xc02f, 0xc030};
  TlsBytes compression = {0};
  bool no_extensions = false;  // omit the extensions block entirely
  std::vector<TlsExt> exts;
  size_t pad_to = 0;  // if set: a padding extension grows the handshake message to this size
};

// The extensions block's content (without its 2-byte length).
inline TlsBytes ext_bytes(const std::vector<TlsExt>& exts) {
  TlsBytes b;
  for (const TlsExt& e : exts) {
    put16(&b, e.type);
    put16(&b, e.body.size());
    append(&b, e.body);
  }
  return b;
}

// The ClientHello handshake message: type 1, 24-bit length, body.
inline TlsBytes hello_msg(const HelloSpec& s) {
  TlsBytes body;
  put16(&body, s.legacy_version);
  body.resize(body.size() + 32, 0x11);  // random
  put8(&body, s.session_id_len);
  body.resize(body.size() + s.session_id_len, 0x22);
  put16(&body, s.ciphers.size() * 2);
  for (uint16_t c : s.ciphers) put16(&body, c);
  put8(&body, s.compression.size());
  append(&body, s.compression);
  if (!s.no_extensions) {
    TlsBytes ext = ext_bytes(s.exts);
    const size_t so_far = 4 + body.size() + 2 + ext.size();
    if (s.pad_to > so_far + 4) {
      put16(&ext, kExtPadding);
      put16(&ext, s.pad_to - so_far - 4);
      ext.resize(ext.size() + (s.pad_to - so_far - 4), 0);
    }
    put16(&body, ext.size());
    append(&body, ext);
  }
  TlsBytes msg;
  put8(&msg, 1);
  put24(&msg, body.size());
  append(&msg, body);
  return msg;
}

// A TLS 1.3-style hello as browsers send it: SNI (when not empty), groups, sigalgs,
// versions, a key_share of `key_len` bytes, ALPN h2 + http/1.1.
inline HelloSpec tls13_spec(const std::string& sni, size_t key_len = 32) {
  HelloSpec s;
  if (!sni.empty()) s.exts.push_back(sni_ext(sni));
  s.exts.push_back(groups_ext());
  s.exts.push_back(sigalgs_ext());
  s.exts.push_back(versions13_ext());
  s.exts.push_back(key_share_ext(key_len, key_len == 32 ? 0x001d : 0x11ec));
  s.exts.push_back(alpn_ext({"h2", "http/1.1"}));
  return s;
}

// A post-quantum-sized hello like current browsers: X25519MLKEM768 key share (1216 +
// 32 bytes), padded so the handshake message is ~1.7 KB (always 2+ TCP segments).
inline HelloSpec pq_spec(const std::string& sni) {
  HelloSpec s = tls13_spec(sni, 1216 + 32);
  s.pad_to = 1700;
  return s;
}

// A hello whose key share alone is ~1.7 KB: SecP384r1MLKEM1024 (97 + 1568 bytes) as
// offered next to X25519 by post-quantum clients (the message is ~1.9 KB, no padding).
inline HelloSpec pq1024_spec(const std::string& sni) {
  HelloSpec s = tls13_spec(sni);
  s.exts[s.exts.size() - 2] = key_share_ext(97 + 1568, 0x11ed);
  return s;
}

// The second ClientHello after a HelloRetryRequest (RFC 8446 4.1.2): the same hello with
// the server's cookie echoed and a key share for the group the server asked for.
inline HelloSpec retry_spec(HelloSpec s, size_t cookie_len = 64) {
  TlsExt cookie{44, {}};
  put16(&cookie.body, cookie_len);
  cookie.body.resize(cookie.body.size() + cookie_len, 0xc0);
  for (TlsExt& e : s.exts) {
    if (e.type == kExtKeyShare) e = key_share_ext(65, 0x0017);
  }
  s.exts.push_back(cookie);
  return s;
}

// A TLS 1.2-style hello: no session id, SNI, ALPN http/1.1, no versions/key_share.
inline HelloSpec tls12_spec(const std::string& sni) {
  HelloSpec s;
  s.session_id_len = 0;
  s.ciphers = {0xc02f, 0xc030, 0x009e, 0x00ff};
  if (!sni.empty()) s.exts.push_back(sni_ext(sni));
  s.exts.push_back(groups_ext());
  s.exts.push_back(sigalgs_ext());
  s.exts.push_back(alpn_ext({"http/1.1"}));
  return s;
}

// Wraps `msg` in handshake records whose payload sizes are `sizes` (the last record takes
// whatever is left; empty: one record). Record version 0x0301 like real first flights.
inline TlsBytes records(const TlsBytes& msg, const std::vector<size_t>& sizes = {},
                        uint8_t content_type = 22, uint16_t version = 0x0301) {
  TlsBytes out;
  size_t pos = 0;
  size_t i = 0;
  while (pos < msg.size() || (msg.empty() && i == 0)) {
    size_t n = i < sizes.size() ? sizes[i] : msg.size() - pos;
    if (n > msg.size() - pos) n = msg.size() - pos;
    put8(&out, content_type);
    put16(&out, version);
    put16(&out, n);
    out.insert(out.end(), msg.begin() + static_cast<long>(pos),
               msg.begin() + static_cast<long>(pos + n));
    pos += n;
    ++i;
    if (msg.empty()) break;
  }
  return out;
}

// Wraps `msg` in records of at most `max` bytes each.
inline TlsBytes records_of(const TlsBytes& msg, size_t max) {
  std::vector<size_t> sizes((msg.size() + max - 1) / max, max);
  return records(msg, sizes);
}

// What a client sends after its hello: ChangeCipherSpec, an alert, application data, or
// another handshake message (e.g. TLS 1.2's ClientKeyExchange, type 16).
inline TlsBytes ccs_record() {
  return {20, 3, 3, 0, 1, 1};
}
inline TlsBytes alert_record() {
  return {21, 3, 3, 0, 2, 1, 0};  // close_notify
}
inline TlsBytes app_data_record(size_t n = 32) {
  TlsBytes b = {23, 3, 3};
  put16(&b, n);
  b.resize(b.size() + n, 0xad);
  return b;
}
inline TlsBytes handshake_record(uint8_t msg_type, size_t body_len) {
  TlsBytes msg;
  put8(&msg, msg_type);
  put24(&msg, body_len);
  msg.resize(msg.size() + body_len, 0x42);
  return records(msg, {}, 22, 0x0303);
}

// One record holding the hello built from `s`.
inline TlsBytes hello_stream(const HelloSpec& s) {
  return records(hello_msg(s));
}

}  // namespace egw::test
