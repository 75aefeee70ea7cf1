// Rate limits and connection quotas of rules (docs/policy.md, "Rate limits and
// quotas"): token buckets and concurrent-flow counts per (rule, key), the key being the
// flow's source service or its inside address. Each worker keeps its own table and
// enforces its share of every budget (a rate, burst or quota divided by the number of
// workers, rounded up): no word is written by two workers. Worker lcores: no
// allocation after init, no locks.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "dataplane/flow_table.h"
#include "dataplane/policy_abi.h"

namespace egw {

// A token bucket on the worker's clock (ns): `rate` tokens a second up to `burst`. Full
// when first used; the clock never going back (the worker's does not) and a jump
// forward refilling at most to `burst`. Exact in integers: the refill's fraction of a
// token stays in `last_ns`.
struct TokenBucket {
  uint64_t tokens = 0;
  uint64_t last_ns = 0;
  bool primed = false;  // used before: tokens and last_ns mean something

  // Takes n tokens if there are; false (nothing taken) when not. A new policy may have
  // lowered the burst: the bucket never holds more than the burst in force.
  bool take(uint64_t now_ns, uint64_t rate, uint64_t burst, uint64_t n) {
    if (!primed || tokens > burst) {
      if (!primed) last_ns = now_ns;
      tokens = burst;
      primed = true;
    }
    if (now_ns > last_ns) {
      const uint64_t elapsed = now_ns - last_ns;
      // Common case in 64 bits (a division by a constant is a multiply); the rest of
      // the range (idle for over 4 s, or over 4 G tokens a second) in 128.
      const uint64_t add =
          elapsed < (1ull << 32) && rate < (1ull << 32)
              ? elapsed * rate / 1000000000u
              : static_cast<uint64_t>(std::min<unsigned __int128>(
                    static_cast<unsigned __int128>(elapsed) * rate / 1000000000u, burst));
      if (add >= burst - tokens) {
        tokens = burst;
        last_ns = now_ns;
      } else if (add != 0) {
        tokens += add;
        // The time the whole tokens took; the fraction of one stays in elapsed time.
        last_ns += add * 1000000000u / rate;
      }
    }
    if (tokens < n) return false;
    tokens -= n;
    return true;
  }
};

// A worker's share of a budget of `total` across `workers`: rounded up, at least 1.
inline uint64_t worker_share(uint64_t total, uint32_t workers) {
  const uint64_t w = workers ? workers : 1;
  const uint64_t share = total / w + (total % w != 0);
  return share ? share : 1;
}

// What a table entry counts for: a rule (by its stats slot, stable across policy
// versions) and a source service or an inside address.
struct LimitKey {
  uint16_t rule_slot;
  uint8_t per;     // abi::kPerService or abi::kPerSource
  uint8_t family;  // kPerSource: 4 or 6
  uint32_t service;
  uint8_t addr[16];  // kPerSource: the inside address
  bool operator==(const LimitKey& o) const { return std::memcmp(this, &o, sizeof o) == 0; }
};
static_assert(sizeof(LimitKey) == 24);

struct LimitEntry {
  LimitKey key;
  uint64_t last_use_ns;  // 0: free
  TokenBucket flows;     // new flows
  TokenBucket bytes[2];  // [0] toserver, [1] toclient
  uint32_t active;       // flows holding a unit of the quota
  uint32_t reserved;
};

// The entries of one worker: open addressing over a power-of-two array, a window of
// kProbe slots per key. A key that finds its window full takes the slot used longest
// ago that holds no quota unit; if every one does, the table is full for it (the flow
// is refused: fail closed, counted).
class LimitTable {
 public:
  static constexpr uint32_t kProbe = 8;
  LimitTable() = default;
  ~LimitTable() { destroy(); }
  LimitTable(const LimitTable&) = delete;
  LimitTable& operator=(const LimitTable&) = delete;
  bool init(uint32_t entries, uint64_t seed);  // rounded up to a power of two (>= kProbe)
  void destroy();

  // The entry of k, made (buckets full, no flows) if there is none; nullptr when the
  // key's window is full of entries holding quota units.
  LimitEntry* get(const LimitKey& k, uint64_t now_ns);
  // The entry of k if there is one.
  LimitEntry* find(const LimitKey& k);
  uint32_t capacity() const { return mask_ + 1; }
  uint64_t evictions() const { return evictions_; }

 private:
  uint32_t slot_of(const LimitKey& k) const;
  LimitEntry* e_ = nullptr;
  uint32_t mask_ = 0;
  uint64_t seed_ = 0;
  uint64_t evictions_ = 0;
};

// The key of a flow for one kind of limit.
inline LimitKey limit_key(uint16_t rule_slot, uint8_t per, const FlowKey& k, int service) {
  LimitKey out{};
  out.rule_slot = rule_slot;
  out.per = per;
  if (per == abi::kPerSource) {
    out.family = k.family;
    std::memcpy(out.addr, k.inside_ip, 16);
  } else {
    out.service = static_cast<uint32_t>(service + 1);  // 0: no service
  }
  return out;
}

}  // namespace egw
