// libFuzzer target for dataplane/l7/tls.cc: parse_tls_client_hello over arbitrary bytes
// never over-reads, reports a consistent result, and decides the same on any record split.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/l7/l7.h"

namespace {

using egw::l7::Error;
using egw::l7::Status;
using egw::l7::TlsHello;

struct Run {
  Status status;
  Error err;
  TlsHello h;
  size_t consumed;
};

Run run(const uint8_t* data, size_t len) {
  Run r{};
  r.status = egw::l7::parse_tls_client_hello(data, len, &r.h, &r.err, &r.consumed);
  return r;
}

bool same(const Run& a, const Run& b) {
  if (a.status != b.status || a.err != b.err) return false;
  if (a.status != Status::ok) return true;
  return a.h.has_sni == b.h.has_sni && a.h.sni.len == b.h.sni.len &&
         std::memcmp(a.h.sni.buf, b.h.sni.buf, a.h.sni.len) == 0 && a.h.has_ech == b.h.has_ech &&
         a.h.alpn_len == b.h.alpn_len && std::memcmp(a.h.alpn, b.h.alpn, a.h.alpn_len) == 0 &&
         a.h.legacy_version == b.h.legacy_version;
}

// The invariants every result must hold.
void check(const Run& r, size_t len) {
  switch (r.status) {
    case Status::need_more:
      if (r.err != Error::none || r.consumed != 0 || r.h.has_sni) __builtin_trap();
      return;
    case Status::bad:
      if (r.err == Error::none || r.consumed != 0 || r.h.has_sni) __builtin_trap();
      return;
    case Status::ok:
      break;
    default:
      __builtin_trap();
  }
  if (r.err != Error::none || r.consumed > len || r.consumed < 5 + 4 + 38) __builtin_trap();
  if (r.h.alpn_len > 32 || r.h.alpn[r.h.alpn_len] != '\0') __builtin_trap();
  for (size_t i = 0; i < r.h.alpn_len; ++i) {
    if (r.h.alpn[i] < 0x20 || r.h.alpn[i] > 0x7e) __builtin_trap();
  }
  if (!r.h.has_sni) {
    if (r.h.sni.len != 0) __builtin_trap();
    return;
  }
  // A valid SNI is already normal: normalising it again gives itself.
  const egw::l7::Name& n = r.h.sni;
  if (n.len == 0 || n.len > egw::l7::kMaxName || n.buf[n.len] != '\0') __builtin_trap();
  egw::l7::Name again;
  if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(n.buf), n.len, &again) ||
      again.len != n.len || std::memcmp(again.buf, n.buf, n.len) != 0) {
    __builtin_trap();
  }
}

// Wraps msg in handshake records of `chunk` bytes each.
std::vector<uint8_t> wrap(const uint8_t* msg, size_t len, size_t chunk) {
  std::vector<uint8_t> out;
  for (size_t pos = 0; pos < len; pos += chunk) {
    const size_t n = len - pos < chunk ? len - pos : chunk;
    out.insert(out.end(), {22, 3, 1, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    out.insert(out.end(), msg + pos, msg + pos + n);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The input as the client's stream.
  const Run r = run(data, size);
  check(r, size);
  if (!same(r, run(data, size))) __builtin_trap();  // pure: the same input, the same result
  // A hello is decided only once complete: one byte less of it must still wait.
  if (size > 0 &&
      (r.status == Status::need_more || (r.status == Status::ok && r.consumed == size))) {
    const Run shorter = run(data, size - 1);
    check(shorter, size - 1);
    if (shorter.status != Status::need_more) __builtin_trap();
  }
  // 2. The input, cut to the handshake length it declares, as one handshake message:
  // every record split decides like one record.
  if (size < 4) return 0;
  const size_t declared = 4 + ((size_t{data[1]} << 16) | (size_t{data[2]} << 8) | data[3]);
  if (declared < size) size = declared;
  if (size > 16384) return 0;
  const std::vector<uint8_t> one = wrap(data, size, size);
  const Run whole = run(one.data(), one.size());
  check(whole, one.size());
  const size_t chunk = 1 + data[size - 1] % 64;
  const std::vector<uint8_t> split = wrap(data, size, chunk);
  const Run parts = run(split.data(), split.size());
  check(parts, split.size());
  if (!same(whole, parts)) __builtin_trap();
  if (whole.status == Status::ok &&
      (whole.consumed != one.size() || parts.consumed != split.size())) {
    __builtin_trap();
  }
  return 0;
}
