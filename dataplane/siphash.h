// SipHash-1-3 (keyed 64-bit hash) over small fixed-size keys: flow and fragment tables.
// Pure inline functions; safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace egw {

namespace siphash_detail {
inline uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}
inline void round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = rotl(v1, 13);
  v1 ^= v0;
  v0 = rotl(v0, 32);
  v2 += v3;
  v3 = rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = rotl(v1, 17);
  v1 ^= v2;
  v2 = rotl(v2, 32);
}
}  // namespace siphash_detail

// SipHash-C-D of len bytes at data under the 128-bit key k (little-endian word loads).
template <int C, int D>
inline uint64_t siphash(const void* data, size_t len, const uint64_t k[2]) {
  using siphash_detail::round;
  uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
  uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t words = len / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t m;
    std::memcpy(&m, p + 8 * i, 8);
    v3 ^= m;
    for (int r = 0; r < C; ++r) round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(len & 0xff) << 56;
  for (size_t i = 0; i < (len & 7); ++i) last |= static_cast<uint64_t>(p[8 * words + i]) << (8 * i);
  v3 ^= last;
  for (int r = 0; r < C; ++r) round(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int r = 0; r < D; ++r) round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

// SipHash-1-3: the variant the tables use (fast; still keyed against hash flooding).
inline uint64_t siphash13(const void* data, size_t len, const uint64_t k[2]) {
  return siphash<1, 3>(data, len, k);
}

}  // namespace egw
