// libFuzzer target for dataplane/l7/reasm.cc: a list of segments inserted into one
// stream agrees with a reference model (a vector of expected bytes) on every result,
// on contiguous/highest and on every stored byte; a neighbouring stream is untouched.
//
// Input: limit (u16), base_seq (u32), then 6-byte segments: offset (i16, relative to
// base_seq), length (u16, mod 1024), mode, fill. Mode bit 0: the bytes are a copy of
// what the model holds (fill elsewhere), bit 1: the offset is scaled by 2^16 (far
// offsets, wraparound), bit 2: one byte of the segment (at fill % length) is changed;
// the other bits are a stride for the fill pattern.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/l7/reasm.h"

namespace {

using egw::l7::ReasmPool;
using egw::l7::ReasmResult;
using egw::l7::ReasmStream;

constexpr uint32_t kBytesEach = 4096;

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool present(const ReasmStream& s, uint32_t i) {
  return (s.filled[i / 8] >> (i % 8) & 1) != 0;
}

// The model: what reasm_insert must answer and store (see reasm.h).
ReasmResult model_insert(std::vector<int16_t>* exp, uint32_t limit, int32_t off,
                         const uint8_t* data, uint32_t len) {
  if (len == 0) return ReasmResult::ok;
  const int64_t end = int64_t{off} + len;
  if (end <= 0) return ReasmResult::old;
  if (end > limit) return ReasmResult::over_limit;
  for (int64_t i = off < 0 ? 0 : off; i < end; ++i) {
    const int16_t have = (*exp)[i];
    if (have >= 0 && have != data[i - off]) return ReasmResult::conflict;
  }
  for (int64_t i = off < 0 ? 0 : off; i < end; ++i) (*exp)[i] = data[i - off];
  return ReasmResult::ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ReasmPool pool;
  static const bool ready = pool.init(2, kBytesEach);
  check(ready);
  if (size < 6) return 0;
  const uint32_t limit_req = (data[0] | data[1] << 8) % (kBytesEach + 64);
  uint32_t base;
  std::memcpy(&base, data + 2, 4);
  const uint32_t limit = limit_req < kBytesEach ? limit_req : kBytesEach;

  ReasmStream s, other;
  check(pool.open(&s, base, limit_req));
  check(s.limit == limit && s.contiguous == 0 && s.highest == 0);
  // The neighbour: full of a known pattern; no insert into s may reach it.
  check(pool.open(&other, ~base, kBytesEach));
  uint8_t canary[kBytesEach];
  for (uint32_t i = 0; i < kBytesEach; ++i) canary[i] = static_cast<uint8_t>(i * 7 + 1);
  check(egw::l7::reasm_insert(&other, ~base, canary, kBytesEach) == ReasmResult::ok);
  check(pool.in_use() == 2);

  std::vector<int16_t> exp(limit, -1);
  for (uint32_t i = 0; i < limit; ++i) check(!present(s, i));  // open() cleared them
  uint8_t seg[1024];
  uint32_t highest = 0, contiguous = 0;
  for (size_t pos = 6; pos + 6 <= size; pos += 6) {
    const int16_t raw = static_cast<int16_t>(data[pos] | data[pos + 1] << 8);
    const uint32_t len = (data[pos + 2] | data[pos + 3] << 8) % 1024;
    const uint8_t mode = data[pos + 4], fill = data[pos + 5];
    const int64_t off64 = (mode & 2) ? int64_t{raw} * 65536 : raw;
    const uint32_t seq = base + static_cast<uint32_t>(off64);
    const int32_t off = static_cast<int32_t>(seq - base);
    for (uint32_t i = 0; i < len; ++i) {
      seg[i] = static_cast<uint8_t>(fill + (mode >> 3) * i);
      const int64_t at = int64_t{off} + i;
      if ((mode & 1) && at >= 0 && at < limit && exp[at] >= 0)
        seg[i] = static_cast<uint8_t>(exp[at]);
    }
    if ((mode & 4) && len > 0) seg[fill % len] ^= 0x5a;

    const ReasmResult want = model_insert(&exp, limit, off, seg, len);
    const ReasmResult got = egw::l7::reasm_insert(&s, seq, seg, len);
    check(got == want);
    if (got == ReasmResult::ok && len > 0 && int64_t{off} + len > highest) highest = off + len;
    while (contiguous < limit && exp[contiguous] >= 0) ++contiguous;
    check(s.contiguous == contiguous);
    check(s.highest == highest);
    // The segment's range now holds exactly the model's bytes.
    const int64_t lo = off < 0 ? 0 : off;
    const int64_t hi = int64_t{off} + len < limit ? int64_t{off} + len : limit;
    for (int64_t i = lo; i < hi; ++i) {
      check(present(s, static_cast<uint32_t>(i)) == (exp[i] >= 0));
      if (exp[i] >= 0) check(s.buf[i] == exp[i]);
    }
  }
  for (uint32_t i = 0; i < limit; ++i) {
    check(present(s, i) == (exp[i] >= 0));
    if (exp[i] >= 0) check(s.buf[i] == exp[i]);
  }
  check(other.contiguous == kBytesEach && std::memcmp(other.buf, canary, kBytesEach) == 0);
  pool.close(&s);
  pool.close(&other);
  check(pool.in_use() == 0 && s.buf == nullptr);
  return 0;
}
