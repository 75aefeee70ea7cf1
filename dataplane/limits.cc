// The per-worker table of rate-limit and quota entries (limits.h). Allocated once at
// worker_init (control thread); used on the worker's lcore only.
#include "dataplane/limits.h"

#include <rte_malloc.h>

#include <cstring>

namespace egw {

bool LimitTable::init(uint32_t entries, uint64_t seed) {
  destroy();
  uint32_t n = kProbe;
  while (n < entries && n < (1u << 30)) n <<= 1;
  e_ = static_cast<LimitEntry*>(rte_zmalloc("egw_limits", sizeof(LimitEntry) * size_t{n}, 64));
  if (e_ == nullptr) return false;
  mask_ = n - 1;
  seed_ = seed;
  return true;
}

void LimitTable::destroy() {
  rte_free(e_);
  e_ = nullptr;
  mask_ = 0;
}

// A keyed multiply-xorshift of the key's three words: cheap enough for every policed
// packet. The keys are rules and inside addresses (of the policy's services); a window
// that fills evicts its oldest idle key, and a full one refuses, so a crafted collision
// costs its crafter only.
uint32_t LimitTable::slot_of(const LimitKey& k) const {
  uint64_t w[3];
  std::memcpy(w, &k, sizeof w);
  uint64_t h = (w[0] ^ seed_) * 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 29) ^ w[1]) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 32) ^ w[2]) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>(h ^ (h >> 31)) & mask_;
}

LimitEntry* LimitTable::find(const LimitKey& k) {
  if (e_ == nullptr) return nullptr;
  const uint32_t s = slot_of(k);
  for (uint32_t i = 0; i < kProbe; ++i) {
    LimitEntry& x = e_[(s + i) & mask_];
    if (x.last_use_ns != 0 && x.key == k) return &x;
  }
  return nullptr;
}

LimitEntry* LimitTable::get(const LimitKey& k, uint64_t now_ns) {
  if (e_ == nullptr) return nullptr;
  const uint32_t s = slot_of(k);
  LimitEntry* victim = nullptr;
  for (uint32_t i = 0; i < kProbe; ++i) {
    LimitEntry& x = e_[(s + i) & mask_];
    if (x.last_use_ns != 0 && x.key == k) {
      x.last_use_ns = now_ns | 1;
      return &x;
    }
    if (x.last_use_ns == 0) {
      if (victim == nullptr || victim->last_use_ns != 0) victim = &x;
    } else if (x.active == 0 && (victim == nullptr || (victim->last_use_ns != 0 &&
                                                       x.last_use_ns < victim->last_use_ns))) {
      victim = &x;
    }
  }
  if (victim == nullptr) return nullptr;
  if (victim->last_use_ns != 0) ++evictions_;
  *victim = LimitEntry{};
  victim->key = k;
  victim->last_use_ns = now_ns | 1;  // never 0: 0 marks a free slot
  return victim;
}

}  // namespace egw
