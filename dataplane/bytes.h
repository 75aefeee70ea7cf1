// Big-endian (network order) loads from a byte pointer, for the parsers and packet
// builders. The caller has checked the bounds.
#pragma once

#include <cstdint>

namespace egw {

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

}  // namespace egw
