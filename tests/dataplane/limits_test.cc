// Token buckets, budget shares and the per-worker key table of rate limits and quotas
// (dataplane/limits.h): rates, bursts, refill across idle periods, clock jumps.
#include <gtest/gtest.h>

#include <vector>

#include "dataplane/limits.h"

namespace egw {
namespace {

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1800000000ull * kSec;  // a wall clock in 2027

struct Take {
  uint64_t at_ns;  // from kT0
  uint64_t n;
  bool ok;
};

struct BucketCase {
  const char* name;
  uint64_t rate, burst;
  std::vector<Take> takes;
};

TEST(TokenBucket, RatesBurstsAndClockJumps) {
  const BucketCase cases[] = {
      {"a full bucket gives its burst at once, then nothing",
       10,
       3,
       {{0, 1, true}, {0, 1, true}, {0, 1, true}, {0, 1, false}}},
      {"one token back every 1/rate s",
       10,
       3,
       {{0, 3, true}, {99999999, 1, false}, {100000000, 1, true}, {100000000, 1, false}}},
      {"an idle period refills up to the burst, not past it",
       10,
       3,
       {{0, 3, true}, {3600 * kSec, 3, true}, {3600 * kSec, 1, false}}},
      {"the fraction of a token a refill leaves is kept (3/s: 1.5 at 0.5 s, 1.1 more at 0.7 s)",
       3,
       3,
       {{0, 3, true},
        {kSec / 2, 1, true},
        {kSec / 2, 1, false},
        {7 * kSec / 10, 1, true},
        {7 * kSec / 10, 1, false}}},
      {"a clock that goes back refills nothing",
       10,
       2,
       {{kSec, 2, true}, {0, 1, false}, {kSec, 1, false}, {kSec + kSec / 10, 1, true}}},
      {"a jump of years forward refills to the burst only",
       1,
       5,
       {{0, 5, true},
        {100ull * 365 * 86400 * kSec, 5, true},
        {100ull * 365 * 86400 * kSec, 1, false}}},
      {"bytes: a 1500-byte packet needs 1500 tokens",
       10000,
       3000,
       {{0, 1500, true}, {0, 1500, true}, {0, 1500, false}, {150000000, 1500, true}}},
      {"more than the burst never passes",
       1000000,
       1000,
       {{0, 1001, false}, {10 * kSec, 1001, false}, {10 * kSec, 1000, true}}},
      {"100 Gbyte/s over 10 s: no overflow",
       100000000000ull,
       100000000000ull,
       {{0, 100000000000ull, true}, {10 * kSec, 100000000000ull, true}}},
  };
  for (const BucketCase& c : cases) {
    SCOPED_TRACE(c.name);
    TokenBucket b;
    for (size_t i = 0; i < c.takes.size(); ++i) {
      const Take& t = c.takes[i];
      EXPECT_EQ(b.take(kT0 + t.at_ns, c.rate, c.burst, t.n), t.ok) << "take " << i;
    }
  }
}

TEST(TokenBucket, ALowerBurstFromANewPolicyHoldsAtOnce) {
  TokenBucket b;
  ASSERT_TRUE(b.take(kT0, 100, 100, 1));  // 99 left
  EXPECT_TRUE(b.take(kT0, 100, 5, 5));    // capped to the new burst of 5
  EXPECT_FALSE(b.take(kT0, 100, 5, 1));
}

TEST(TokenBucket, RateOverTenSecondsIsTheRate) {
  // A client asking every millisecond gets burst + rate * t, whatever the step.
  for (uint64_t rate : {1ull, 7ull, 50ull, 999ull}) {
    TokenBucket b;
    uint64_t got = 0;
    for (uint64_t ms = 0; ms <= 10000; ++ms) got += b.take(kT0 + ms * 1000000, rate, 10, 1);
    EXPECT_EQ(got, 10 + rate * 10 > 10001 ? 10001 : 10 + rate * 10) << rate;
  }
}

TEST(WorkerShare, SplitsRoundingUp) {
  struct Case {
    uint64_t total;
    uint32_t workers;
    uint64_t share;
  } cases[] = {{100, 1, 100}, {100, 4, 25}, {101, 4, 26}, {1, 4, 1}, {3, 0, 3}, {0, 2, 1}};
  for (const Case& c : cases)
    EXPECT_EQ(worker_share(c.total, c.workers), c.share) << c.total << "/" << c.workers;
}

LimitKey source_key(uint16_t slot, uint8_t last) {
  FlowKey k{};
  k.family = 4;
  k.inside_ip[0] = 198;
  k.inside_ip[1] = 18;
  k.inside_ip[3] = last;
  return limit_key(slot, abi::kPerSource, k, -1);
}

TEST(LimitTable, KeysKeepTheirEntries) {
  LimitTable t;
  ASSERT_TRUE(t.init(64, 42));
  LimitEntry* a = t.get(source_key(2, 1), kT0);
  ASSERT_NE(a, nullptr);
  a->active = 3;
  EXPECT_EQ(t.get(source_key(2, 1), kT0 + 1), a);
  EXPECT_EQ(t.find(source_key(2, 1)), a);
  EXPECT_EQ(t.find(source_key(3, 1)), nullptr) << "another rule, another key";
  EXPECT_EQ(t.find(source_key(2, 2)), nullptr) << "another source, another key";
  FlowKey k{};
  EXPECT_NE(limit_key(2, abi::kPerService, k, 0), limit_key(2, abi::kPerService, k, 1));
}

TEST(LimitTable, FullWindowEvictsTheOldestIdleKeyAndNeverOneHoldingFlows) {
  LimitTable t;
  ASSERT_TRUE(t.init(LimitTable::kProbe, 1));  // one window: every key shares it
  for (uint8_t i = 0; i < LimitTable::kProbe; ++i) {
    LimitEntry* e = t.get(source_key(2, i), kT0 + i);
    ASSERT_NE(e, nullptr);
    e->active = i == 3 ? 0 : 1;  // only source 3 holds no flow
  }
  LimitEntry* n = t.get(source_key(2, 100), kT0 + 100);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(t.find(source_key(2, 3)), nullptr) << "the idle key made room";
  EXPECT_EQ(t.evictions(), 1u);
  n->active = 1;
  EXPECT_EQ(t.get(source_key(2, 101), kT0 + 101), nullptr)
      << "every key holds flows: no room, the caller fails closed";
  for (uint8_t i = 0; i < LimitTable::kProbe; ++i) {
    if (i != 3) {
      EXPECT_NE(t.find(source_key(2, i)), nullptr) << int(i);
    }
  }
}

}  // namespace
}  // namespace egw
