// Per-worker flow table: a keyed hash (AES rounds where the CPU has AES-NI, else
// SipHash-1-3) under a per-boot seed, two candidate buckets of 8 signature slots compared
// with one SIMD compare each, entries in a separate array, embryonic FIFO for eviction.
// Worker lcores only (init/destroy on the control thread): no locks, no allocation after init.
#include "dataplane/flow_table.h"

#include <emmintrin.h>
#include <immintrin.h>

#include <rte_malloc.h>

#include <cstdlib>
#include <initializer_list>

#include "dataplane/parse.h"
#include "dataplane/siphash.h"

namespace egw {

namespace {

constexpr uint32_t kMaxCapacity = 1u << 26;  // slot_of_ packs bucket << 3 | slot in 32 bits

// Two distinct buckets and a non-zero signature from one hash.
struct Place {
  uint32_t b1, b2;
  uint16_t sig;
};

inline Place place_of(uint64_t hash, uint32_t mask) {
  Place pl;
  pl.b1 = static_cast<uint32_t>(hash) & mask;
  pl.b2 = static_cast<uint32_t>(hash >> 24) & mask;
  if (pl.b2 == pl.b1) pl.b2 = pl.b1 ^ 1;  // mask >= 1: at least two buckets
  pl.sig = static_cast<uint16_t>(hash >> 48);
  if (pl.sig == 0) pl.sig = 1;
  return pl;
}

// From the EAL's heap (hugepages in production: far fewer TLB misses on a table of
// millions of entries than 4 KiB pages), zeroed, cache-line aligned.
template <typename T>
T* alloc_array(const char* name, size_t n) {
  return static_cast<T*>(rte_zmalloc(name, n * sizeof(T), 64));
}

}  // namespace

namespace {

// The flow key through AES rounds keyed by the per-boot seed: each 16-byte block is
// folded in with one round, then two more rounds diffuse every input byte over the whole
// state (two AES rounds reach full diffusion). Not a MAC, but not linear either, unlike
// CRC32: without the seed an inside host cannot compute keys that share buckets and so
// cannot crowd a victim's flows out (the reason the table is keyed at all). ~6 aesenc,
// against ~10 SipHash rounds over the same 48 bytes.
__attribute__((target("aes,sse2"))) uint64_t aes_hash(const FlowKey& k, const uint64_t seed[2]) {
  static_assert(sizeof(FlowKey) == 48);
  const __m128i k0 = _mm_set_epi64x(static_cast<long long>(seed[1]), static_cast<long long>(seed[0]));
  const __m128i k1 = _mm_set_epi64x(static_cast<long long>(seed[0] ^ 0x9e3779b97f4a7c15ull),
                                    static_cast<long long>(seed[1] ^ 0xc2b2ae3d27d4eb4full));
  const auto* p = reinterpret_cast<const __m128i*>(&k);
  __m128i s = _mm_aesenc_si128(_mm_xor_si128(_mm_loadu_si128(p), k0), k1);
  s = _mm_aesenc_si128(_mm_xor_si128(s, _mm_loadu_si128(p + 1)), k0);
  s = _mm_aesenc_si128(_mm_xor_si128(s, _mm_loadu_si128(p + 2)), k1);
  s = _mm_aesenc_si128(s, k0);
  s = _mm_aesenc_si128(s, k1);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s)) ^
         static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(s, s)));
}

uint64_t sip_hash(const FlowKey& k, const uint64_t seed[2]) {
  return siphash13(&k, sizeof(k), seed);
}

}  // namespace

FlowTable::HashFn FlowTable::pick_hash() {
  return __builtin_cpu_supports("aes") ? aes_hash : sip_hash;
}

bool FlowTable::init(uint32_t capacity, uint64_t seed[2]) {
  destroy();
  if (capacity == 0 || capacity > kMaxCapacity) return false;
  uint32_t nb = 2;
  while (nb < (capacity + 3) / 4) nb <<= 1;
  buckets_ = alloc_array<Bucket>("egw_flow_buckets", nb);
  entries_ = alloc_array<FlowEntry>("egw_flows", capacity);
  slot_of_ = alloc_array<uint32_t>("egw_flow_slots", capacity);
  free_ = alloc_array<uint32_t>("egw_flow_free", capacity);
  if (buckets_ == nullptr || entries_ == nullptr || slot_of_ == nullptr || free_ == nullptr) {
    destroy();
    return false;
  }
  bucket_mask_ = nb - 1;
  capacity_ = capacity;
  for (uint32_t i = 0; i < capacity; ++i) {
    slot_of_[i] = kNil;
    free_[i] = capacity - 1 - i;  // entry 0 is handed out first
  }
  free_top_ = capacity;
  used_ = 0;
  hand_ = 0;
  embryo_head_ = embryo_tail_ = kNil;
  evictions_ = 0;
  seed_[0] = seed[0];
  seed_[1] = seed[1];
  return true;
}

void FlowTable::destroy() {
  rte_free(buckets_);
  rte_free(entries_);
  rte_free(slot_of_);
  rte_free(free_);
  buckets_ = nullptr;
  entries_ = nullptr;
  slot_of_ = nullptr;
  free_ = nullptr;
  capacity_ = used_ = free_top_ = bucket_mask_ = hand_ = 0;
  embryo_head_ = embryo_tail_ = kNil;
}


uint64_t FlowTable::hash(const FlowKey& k) const {
  return hash_fn_(k, seed_);
}

void FlowTable::prefetch_entry(uint64_t hash) const {
  if (capacity_ == 0) return;
  const Place pl = place_of(hash, bucket_mask_);
  const __m128i want = _mm_set1_epi16(static_cast<short>(pl.sig));
  for (const uint32_t b : {pl.b1, pl.b2}) {
    const Bucket& bk = buckets_[b];
    const unsigned hits = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bk.sig)), want)));
    if (hits == 0) continue;
    const auto* line = reinterpret_cast<const char*>(&entries_[bk.idx[__builtin_ctz(hits) / 2]]);
    for (size_t off = 0; off < sizeof(FlowEntry); off += 64) __builtin_prefetch(line + off);
    return;
  }
}

FlowEntry* FlowTable::lookup(const FlowKey& k, uint64_t hash, uint64_t now_ns) {
  if (capacity_ == 0) return nullptr;
  const Place pl = place_of(hash, bucket_mask_);
  const __m128i want = _mm_set1_epi16(static_cast<short>(pl.sig));
  for (const uint32_t b : {pl.b1, pl.b2}) {
    const Bucket& bk = buckets_[b];
    // The 8 signatures at once: two mask bits per matching 16-bit slot.
    unsigned hits = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bk.sig)), want)));
    for (; hits != 0; hits &= hits - 1, hits &= hits - 1) {
      const unsigned s = static_cast<unsigned>(__builtin_ctz(hits)) / 2;
      FlowEntry* e = &entries_[bk.idx[s]];
      if (!(e->key == k)) continue;
      if (expired(*e, now_ns)) {
        remove(e, EndReason::timeout);
        return nullptr;
      }
      return e;
    }
  }
  return nullptr;
}

bool FlowTable::bucket_insert(uint32_t b, uint16_t sig, uint32_t idx) {
  Bucket& bk = buckets_[b];
  for (unsigned s = 0; s < kBucketSlots; ++s) {
    if (bk.sig[s] != 0) continue;
    bk.sig[s] = sig;
    bk.idx[s] = idx;
    slot_of_[idx] = (b << 3) | s;
    return true;
  }
  return false;
}

namespace {
unsigned bucket_load(const uint16_t* sig) {
  unsigned n = 0;
  for (unsigned s = 0; s < FlowTable::kBucketSlots; ++s) n += sig[s] != 0;
  return n;
}
}  // namespace

FlowEntry* FlowTable::insert(const FlowKey& k, uint64_t hash, uint64_t now_ns) {
  if (capacity_ == 0) return nullptr;
  const Place pl = place_of(hash, bucket_mask_);
  unsigned l1 = bucket_load(buckets_[pl.b1].sig);
  unsigned l2 = bucket_load(buckets_[pl.b2].sig);
  if (free_top_ == 0 || (l1 == kBucketSlots && l2 == kBucketSlots)) {
    if (!make_room(pl.b1, pl.b2, now_ns)) return nullptr;
    l1 = bucket_load(buckets_[pl.b1].sig);
    l2 = bucket_load(buckets_[pl.b2].sig);
  }
  const uint32_t b = l1 <= l2 ? pl.b1 : pl.b2;
  const uint32_t idx = free_[--free_top_];
  if (!bucket_insert(b, pl.sig, idx)) {  // impossible after make_room: keep the entry free
    ++free_top_;
    return nullptr;
  }
  ++used_;
  FlowEntry* e = &entries_[idx];
  *e = FlowEntry{};
  e->key = k;
  e->last_seen_ns = now_ns;
  e->start_ns = now_ns;
  e->rule_index = kNoRule;
  e->verdict = Verdict::deny;  // fail closed until the caller decides
  e->tcp_state = TcpState::none;
  e->embryo_prev = e->embryo_next = kNil;
  e->l7_slot = kNil;
  e->name_first = kNoRule;
  return e;
}

// Frees an entry and a slot in b1 or b2: expired candidates first, then embryonic flows.
bool FlowTable::make_room(uint32_t b1, uint32_t b2, uint64_t now_ns) {
  // 1. Expired flows among the 16 candidates.
  for (const uint32_t b : {b1, b2}) {
    Bucket& bk = buckets_[b];
    for (unsigned s = 0; s < kBucketSlots; ++s)
      if (bk.sig[s] != 0 && expired(entries_[bk.idx[s]], now_ns))
        remove(&entries_[bk.idx[s]], EndReason::timeout);
  }
  const auto slot_free = [&] {
    return bucket_load(buckets_[b1].sig) < kBucketSlots ||
           bucket_load(buckets_[b2].sig) < kBucketSlots;
  };
  if (free_top_ > 0 && slot_free()) return true;

  // 2. An embryonic flow. Both buckets full: the oldest embryonic candidate in them
  //    (evicting it frees an entry too). Otherwise only an entry is needed: the FIFO head.
  uint32_t victim = kNil;
  if (!slot_free()) {
    for (const uint32_t b : {b1, b2}) {
      const Bucket& bk = buckets_[b];
      for (unsigned s = 0; s < kBucketSlots; ++s) {
        if (bk.sig[s] == 0) continue;
        const uint32_t i = bk.idx[s];
        const FlowEntry& e = entries_[i];
        if (e.embryo_prev == kNil && embryo_head_ != i) continue;  // not embryonic
        if (victim == kNil || e.last_seen_ns < entries_[victim].last_seen_ns) victim = i;
      }
    }
  } else {
    victim = embryo_head_;
  }
  if (victim == kNil) return false;  // only established flows: fail closed
  if (expired(entries_[victim], now_ns)) {
    remove(&entries_[victim], EndReason::timeout);  // its time was up anyway
  } else {
    ++evictions_;
    remove(&entries_[victim], EndReason::evicted);
  }
  return free_top_ > 0 && slot_free();
}

void FlowTable::unlink_slot(uint32_t idx) {
  const uint32_t so = slot_of_[idx];
  buckets_[so >> 3].sig[so & 7] = 0;
  slot_of_[idx] = kNil;
  free_[free_top_++] = idx;
  --used_;
}

void FlowTable::embryo_unlink(uint32_t idx) {
  FlowEntry& e = entries_[idx];
  if (e.embryo_prev == kNil && embryo_head_ != idx) return;  // not in the FIFO
  if (e.embryo_prev != kNil)
    entries_[e.embryo_prev].embryo_next = e.embryo_next;
  else
    embryo_head_ = e.embryo_next;
  if (e.embryo_next != kNil)
    entries_[e.embryo_next].embryo_prev = e.embryo_prev;
  else
    embryo_tail_ = e.embryo_prev;
  e.embryo_prev = e.embryo_next = kNil;
}

void FlowTable::remove(FlowEntry* e, EndReason why) {
  const auto idx = static_cast<uint32_t>(e - entries_);
  if (idx >= capacity_ || slot_of_[idx] == kNil) return;  // not a live entry of this table
  if (on_end_ != nullptr) on_end_(on_end_ctx_, *e, why);
  embryo_unlink(idx);
  unlink_slot(idx);
}

void FlowTable::set_embryonic(FlowEntry* e, bool embryonic) {
  const auto idx = static_cast<uint32_t>(e - entries_);
  if (idx >= capacity_ || slot_of_[idx] == kNil) return;
  const bool in_fifo = e->embryo_prev != kNil || embryo_head_ == idx;
  if (!embryonic) {
    if (in_fifo) embryo_unlink(idx);
    return;
  }
  if (in_fifo) return;  // keeps its age
  e->embryo_prev = embryo_tail_;
  e->embryo_next = kNil;
  if (embryo_tail_ != kNil)
    entries_[embryo_tail_].embryo_next = idx;
  else
    embryo_head_ = idx;
  embryo_tail_ = idx;
}

void FlowTable::sweep(uint64_t now_ns, unsigned budget) {
  if (capacity_ == 0) return;
  if (budget > capacity_) budget = capacity_;
  for (unsigned n = 0; n < budget; ++n) {
    const uint32_t i = hand_;
    hand_ = hand_ + 1 == capacity_ ? 0 : hand_ + 1;
    if (slot_of_[i] != kNil && expired(entries_[i], now_ns))
      remove(&entries_[i], EndReason::timeout);
  }
}

uint32_t FlowTable::flush(EndReason why, uint32_t budget) {
  uint32_t removed = 0;
  for (uint32_t i = 0; i < capacity_ && removed < budget; ++i) {
    if (slot_of_[i] != kNil) {
      remove(&entries_[i], why);
      ++removed;
    }
  }
  return removed;
}

uint64_t FlowTable::timeout_of(const FlowEntry& e) const {
  switch (e.key.proto) {
    case kProtoTcp:
      switch (e.tcp_state) {
        case TcpState::established:
          return timeouts_.tcp_established_ns;
        case TcpState::fin_wait:
        case TcpState::closing:
        case TcpState::closed:
          return timeouts_.tcp_closing_ns;
        default:
          return timeouts_.tcp_syn_ns;  // none, syn_sent, syn_recv
      }
    case kProtoUdp:
      return timeouts_.udp_ns;
    case kProtoIcmp:
    case kProtoIcmpv6:
      return timeouts_.icmp_ns;
    default:
      return timeouts_.other_ns;
  }
}

}  // namespace egw
