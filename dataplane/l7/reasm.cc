// First-flight reassembly: ReasmPool::init/destroy (control thread) and open/close and
// reasm_insert (worker lcores: no allocation, no locks, O(len) per segment).
#include "dataplane/l7/reasm.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

// rte_malloc when this file is linked into a DPDK program and the EAL is up. The DPDK
// symbols are weak: the fuzzers and benchmarks link dataplane/l7/ without DPDK, and
// there they resolve to null and the pool comes from the C++ heap. Built without the
// DPDK headers at all (the benchmarks), only the heap is used.
#if __has_include(<rte_malloc.h>)
#include <rte_lcore.h>
#include <rte_malloc.h>
#pragma weak rte_zmalloc
#pragma weak rte_free
#pragma weak rte_lcore_count
#define EGW_REASM_RTE 1
#endif

namespace egw::l7 {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the bitmap is read as bytes (bit i of byte i/8) and as 64-bit words");

constexpr size_t kAlign = 64;  // each stream's data and bitmap start on a cache line

constexpr size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// Per slot: bytes_each data bytes, then one bit per byte in whole 64-bit words.
constexpr size_t data_bytes(uint32_t bytes_each) {
  return align_up(bytes_each);
}
constexpr size_t map_bytes(uint32_t bytes_each) {
  return align_up((size_t{bytes_each} + 63) / 64 * 8);
}
constexpr size_t slot_bytes(uint32_t bytes_each) {
  return data_bytes(bytes_each) + map_bytes(bytes_each);
}

inline uint64_t word_mask(uint32_t bit, uint32_t count) {
  return (count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1) << bit;
}

// True when every byte of [start, start + n) already present equals data[].
bool agrees(const ReasmStream& s, const uint64_t* words, uint32_t start, const uint8_t* data,
            uint32_t n) {
  const uint32_t end = start + n;
  for (uint32_t pos = start; pos < end;) {
    const uint32_t w = pos / 64, bit = pos % 64;
    const uint32_t count = std::min(64 - bit, end - pos);
    const uint64_t mask = word_mask(bit, count);
    uint64_t present = words[w] & mask;
    if (present == mask) {
      if (std::memcmp(s.buf + pos, data + (pos - start), count) != 0) return false;
    } else {
      for (; present != 0; present &= present - 1) {
        const uint32_t i = w * 64 + static_cast<uint32_t>(std::countr_zero(present));
        if (s.buf[i] != data[i - start]) return false;
      }
    }
    pos += count;
  }
  return true;
}

void mark(uint64_t* words, uint32_t start, uint32_t n) {
  const uint32_t end = start + n;
  for (uint32_t pos = start; pos < end;) {
    const uint32_t w = pos / 64, bit = pos % 64;
    const uint32_t count = std::min(64 - bit, end - pos);
    words[w] |= word_mask(bit, count);
    pos += count;
  }
}

// The first absent byte at or after c, or limit. Bits at or past limit are never set,
// and the words read are those open() cleared.
uint32_t first_absent(const uint64_t* words, uint32_t c, uint32_t limit) {
  while (c < limit) {
    const uint32_t w = c / 64;
    const uint64_t absent = ~words[w] >> (c % 64);
    if (absent != 0) {
      c += static_cast<uint32_t>(std::countr_zero(absent));
      break;
    }
    c = (w + 1) * 64;
  }
  return std::min(c, limit);
}

}  // namespace

bool ReasmPool::init(uint32_t streams, uint32_t bytes_each) {
  destroy();
  if (streams == 0 || bytes_each == 0 || bytes_each > kReasmMaxBytes) return false;
  // One block: the slots, then the free stack (u32 each), then a busy flag per slot.
  const size_t slots = size_t{streams} * slot_bytes(bytes_each);
  const size_t total = align_up(slots + size_t{streams} * sizeof(uint32_t) + streams);
  uint8_t* mem = nullptr;
  bool rte = false;
#ifdef EGW_REASM_RTE
  // lcore_count is set early in rte_eal_init: 0 means the EAL was never initialised.
  if (rte_zmalloc != nullptr && rte_free != nullptr && rte_lcore_count != nullptr &&
      rte_lcore_count() > 0) {
    mem = static_cast<uint8_t*>(rte_zmalloc("egw_reasm", total, kAlign));
    rte = mem != nullptr;
  }
#endif
  if (mem == nullptr) {
    mem = static_cast<uint8_t*>(std::aligned_alloc(kAlign, total));
    if (mem == nullptr) return false;
    std::memset(mem, 0, total);  // also faults the pages in here, not on a worker
  }
  mem_ = mem;
  rte_ = rte;
  count_ = streams;
  bytes_each_ = bytes_each;
  free_ = reinterpret_cast<uint32_t*>(mem + slots);
  // Slot 0 on top: streams are handed out in slot order.
  for (uint32_t i = 0; i < streams; ++i) free_[i] = streams - 1 - i;
  free_top_ = streams;
  used_ = 0;
  return true;
}

void ReasmPool::destroy() {
  if (mem_ != nullptr) {
#ifdef EGW_REASM_RTE
    if (rte_) rte_free(mem_);
#endif
    if (!rte_) std::free(mem_);
  }
  mem_ = nullptr;
  free_ = nullptr;
  free_top_ = count_ = bytes_each_ = used_ = 0;
  rte_ = false;
}

bool ReasmPool::open(ReasmStream* s, uint32_t base_seq, uint32_t limit) {
  if (s == nullptr) return false;
  close(s);  // a stream still holding a slot of this pool gives it back first
  if (mem_ == nullptr || free_top_ == 0) return false;
  const uint32_t slot = free_[--free_top_];
  uint8_t* busy = reinterpret_cast<uint8_t*>(free_ + count_);
  busy[slot] = 1;
  ++used_;
  uint8_t* base = mem_ + size_t{slot} * slot_bytes(bytes_each_);
  s->base_seq = base_seq;
  s->limit = std::min(limit, bytes_each_);
  s->contiguous = 0;
  s->highest = 0;
  s->slot = slot;
  s->buf = base;
  s->filled = base + data_bytes(bytes_each_);
  // Only the words the limit covers: nothing past them is ever read or written.
  std::memset(s->filled, 0, (size_t{s->limit} + 63) / 64 * 8);
  return true;
}

void ReasmPool::close(ReasmStream* s) {
  if (s == nullptr) return;
  const uint32_t slot = s->slot;
  if (slot < count_) {
    uint8_t* busy = reinterpret_cast<uint8_t*>(free_ + count_);
    // A stream of another pool, or a stale copy of one already closed: not pushed.
    if (busy[slot] != 0 && s->buf == mem_ + size_t{slot} * slot_bytes(bytes_each_)) {
      busy[slot] = 0;
      free_[free_top_++] = slot;
      --used_;
    }
  }
  *s = ReasmStream{};
}

ReasmResult reasm_insert(ReasmStream* s, uint32_t seq, const uint8_t* data, uint32_t len) {
  if (len == 0) return ReasmResult::ok;
  // Sequence space is modulo 2^32: the signed difference places the segment.
  const int64_t off = static_cast<int32_t>(seq - s->base_seq);
  const int64_t end = off + len;
  if (end <= 0) return ReasmResult::old;
  if (end > s->limit) return ReasmResult::over_limit;
  const uint32_t start = off < 0 ? 0 : static_cast<uint32_t>(off);
  data += start - off;  // trims the bytes before byte 0
  const uint32_t n = static_cast<uint32_t>(end) - start;
  uint64_t* words = reinterpret_cast<uint64_t*>(s->filled);
  // Everything is compared before anything is stored: a conflict changes nothing.
  if (!agrees(*s, words, start, data, n)) return ReasmResult::conflict;
  std::memcpy(s->buf + start, data, n);
  mark(words, start, n);
  s->highest = std::max(s->highest, static_cast<uint32_t>(end));
  if (start <= s->contiguous) s->contiguous = first_absent(words, s->contiguous, s->limit);
  return ReasmResult::ok;
}

}  // namespace egw::l7
