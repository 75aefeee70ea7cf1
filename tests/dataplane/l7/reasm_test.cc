// Unit tests for dataplane/l7/reasm.cc: tables of {description, base, limit, segments
// with their expected results, expected contiguous/highest/stored bytes}, random
// permutations against a reference, conflicts leaving the stream unchanged, and the pool.
#include "dataplane/l7/reasm.h"

#include <gtest/gtest.h>

#include <rte_memory.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace egw::l7 {
namespace {

using R = ReasmResult;

const char* name(R r) {
  switch (r) {
    case R::ok:
      return "ok";
    case R::old:
      return "old";
    case R::conflict:
      return "conflict";
    case R::over_limit:
      return "over_limit";
  }
  return "?";
}

// The stream's bytes [0, limit): each present byte as itself, each absent one as '_'.
std::string stored(const ReasmStream& s) {
  std::string out(s.limit, '_');
  for (uint32_t i = 0; i < s.limit; ++i)
    if (s.filled[i / 8] >> (i % 8) & 1) out[i] = static_cast<char>(s.buf[i]);
  return out;
}

R insert(ReasmStream* s, int64_t off, const std::string& bytes) {
  return reasm_insert(s, s->base_seq + static_cast<uint32_t>(off),
                      reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<uint32_t>(bytes.size()));
}

// "abc...zABC...Z0..9" repeated: n bytes without '_'.
std::string pattern(size_t n, size_t shift = 0) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s(n, ' ');
  for (size_t i = 0; i < n; ++i) s[i] = kChars[(i + shift) % (sizeof(kChars) - 1)];
  return s;
}

std::string absent(size_t n) {
  return std::string(n, '_');
}

// ---- insert tables --------------------------------------------------------------
struct Seg {
  int64_t off;  // relative to base_seq (mod 2^32)
  std::string bytes;
  R want;
};

struct InsertCase {
  const char* description;
  uint32_t base_seq;
  uint32_t limit;
  std::vector<Seg> segs;
  uint32_t contiguous;
  uint32_t highest;
  std::string stored;  // bytes [0, stored.size()); all later bytes absent
};

const std::string k200 = pattern(200);
const std::string k200_x130 = k200.substr(0, 130) + "_" + k200.substr(131);

const InsertCase kInsertCases[] = {
    {"in order",
     1000,
     16,
     {{0, "GET ", R::ok}, {4, "/ HT", R::ok}, {8, "TP/1", R::ok}},
     12,
     12,
     "GET / HTTP/1"},
    {"one-byte segments in order",
     7,
     16,
     {{0, "a", R::ok}, {1, "b", R::ok}, {2, "c", R::ok}, {3, "d", R::ok}},
     4,
     4,
     "abcd"},
    {"one-byte segments in reverse order",
     7,
     16,
     {{3, "d", R::ok}, {2, "c", R::ok}, {1, "b", R::ok}, {0, "a", R::ok}},
     4,
     4,
     "abcd"},
    {"a gap stops contiguous", 0, 16, {{0, "ab", R::ok}, {4, "ef", R::ok}}, 2, 6, "ab__ef"},
    {"filling the gap joins both runs",
     0,
     16,
     {{0, "ab", R::ok}, {4, "ef", R::ok}, {2, "cd", R::ok}},
     6,
     6,
     "abcdef"},
    {"nothing at byte 0 yet", 0, 16, {{1, "bcd", R::ok}}, 0, 4, "_bcd"},
    {"exact duplicate", 0, 16, {{0, "abcd", R::ok}, {0, "abcd", R::ok}}, 4, 4, "abcd"},
    {"equal duplicate inside", 0, 16, {{0, "abcdef", R::ok}, {2, "cd", R::ok}}, 6, 6, "abcdef"},
    {"equal segment over two runs and the gap",
     0,
     16,
     {{0, "ab", R::ok}, {4, "ef", R::ok}, {0, "abcdef", R::ok}},
     6,
     6,
     "abcdef"},
    {"different byte inside present bytes",
     0,
     16,
     {{0, "abcdef", R::ok}, {2, "cX", R::conflict}},
     6,
     6,
     "abcdef"},
    {"partial overlap at the left end, equal",
     0,
     16,
     {{2, "cdef", R::ok}, {0, "abc", R::ok}},
     6,
     6,
     "abcdef"},
    {"partial overlap at the left end, different",
     0,
     16,
     {{2, "cdef", R::ok}, {0, "abX", R::conflict}},
     0,
     6,
     "__cdef"},
    {"partial overlap at the right end, equal",
     0,
     16,
     {{0, "abcd", R::ok}, {3, "defg", R::ok}},
     7,
     7,
     "abcdefg"},
    {"partial overlap at the right end, different",
     0,
     16,
     {{0, "abcd", R::ok}, {3, "Xefg", R::conflict}},
     4,
     4,
     "abcd"},
    {"conflict in the second run stores nothing in the gap",
     0,
     16,
     {{0, "ab", R::ok}, {4, "ef", R::ok}, {0, "abcdeX", R::conflict}},
     2,
     6,
     "ab__ef"},
    {"second copy of a conflicting segment is still a conflict",
     0,
     16,
     {{0, "abcd", R::ok}, {0, "abXd", R::conflict}, {0, "abXd", R::conflict}},
     4,
     4,
     "abcd"},
    {"old: entirely before byte 0", 1000, 16, {{-4, "abcd", R::old}, {-1, "z", R::old}}, 0, 0, ""},
    {"old: ends exactly at byte 0", 1000, 16, {{-3, "abc", R::old}}, 0, 0, ""},
    {"trimmed: straddles byte 0", 1000, 16, {{-2, "XYab", R::ok}}, 2, 2, "ab"},
    {"trimmed bytes are not compared",
     1000,
     16,
     {{0, "ab", R::ok}, {-2, "ZZabc", R::ok}},
     3,
     3,
     "abc"},
    {"trimmed segment differing after byte 0",
     1000,
     16,
     {{0, "ab", R::ok}, {-2, "ZZaX", R::conflict}},
     2,
     2,
     "ab"},
    {"wraparound: the stream crosses 2^32",
     0xFFFFFFFE,
     16,
     {{0, "ab", R::ok}, {2, "cd", R::ok}, {4, "ef", R::ok}},
     6,
     6,
     "abcdef"},
    {"wraparound: a late segment in the middle",
     0xFFFFFFFC,
     16,
     {{0, "ab", R::ok}, {6, "gh", R::ok}, {2, "cdef", R::ok}},
     8,
     8,
     "abcdefgh"},
    {"wraparound: old and trimmed across 2^32",
     2,
     16,
     {{-4, "abcd", R::old}, {-4, "abcdef", R::ok}},
     2,
     2,
     "ef"},
    {"2^31 - 1 ahead is beyond the limit", 0, 16, {{0x7FFFFFFF, "a", R::over_limit}}, 0, 0, ""},
    {"2^31 ahead is 2^31 behind: old", 0, 16, {{0x80000000, "a", R::old}}, 0, 0, ""},
    {"limit exactly reached", 0, 8, {{0, "abcdefgh", R::ok}, {4, "efgh", R::ok}}, 8, 8, "abcdefgh"},
    {"limit reached by the last byte alone",
     0,
     8,
     {{7, "h", R::ok}, {0, "abcdefg", R::ok}},
     8,
     8,
     "abcdefgh"},
    {"one byte over the limit stores nothing",
     0,
     8,
     {{0, "abcdefghi", R::over_limit}, {7, "hi", R::over_limit}, {8, "i", R::over_limit}},
     0,
     0,
     ""},
    {"over the limit is reported before a conflict",
     0,
     8,
     {{0, "ab", R::ok}, {0, "Xbcdefghi", R::over_limit}},
     2,
     2,
     "ab"},
    {"empty segments are ok anywhere",
     0,
     8,
     {{0, "", R::ok}, {100, "", R::ok}, {-5, "", R::ok}},
     0,
     0,
     ""},
    {"contiguous across the 63/64 bit boundary",
     0,
     200,
     {{0, pattern(63), R::ok}, {64, "c", R::ok}, {63, "b", R::ok}},
     65,
     65,
     pattern(63) + "bc"},
    {"contiguous across two words at once",
     0,
     200,
     {{1, k200.substr(1, 190), R::ok}, {0, "a", R::ok}},
     191,
     191,
     k200.substr(0, 191)},
    {"contiguous stops at the first hole of a later word",
     0,
     200,
     {{64, k200.substr(64, 100), R::ok}, {0, k200.substr(0, 64), R::ok}},
     164,
     164,
     k200.substr(0, 164)},
    {"contiguous to a limit that is a whole number of words",
     0,
     128,
     {{64, k200.substr(64, 64), R::ok}, {0, k200.substr(0, 64), R::ok}},
     128,
     128,
     k200.substr(0, 128)},
    {"full-word duplicate across words",
     0,
     200,
     {{0, k200, R::ok}, {0, k200, R::ok}},
     200,
     200,
     k200},
    {"full-word conflict in the third word",
     0,
     200,
     {{0, k200, R::ok}, {0, k200_x130, R::conflict}},
     200,
     200,
     k200},
    {"partial-word conflict at a single present byte",
     0,
     200,
     {{130, "S", R::ok}, {120, k200.substr(120, 10) + "X", R::conflict}},
     0,
     131,
     absent(130) + "S"},
};

class InsertTable : public testing::TestWithParam<InsertCase> {};

TEST_P(InsertTable, Case) {
  const InsertCase& c = GetParam();
  ReasmPool pool;
  ASSERT_TRUE(pool.init(2, 256));
  ReasmStream s;
  ASSERT_TRUE(pool.open(&s, c.base_seq, c.limit));
  for (size_t i = 0; i < c.segs.size(); ++i) {
    const Seg& seg = c.segs[i];
    EXPECT_STREQ(name(insert(&s, seg.off, seg.bytes)), name(seg.want))
        << c.description << ": segment " << i;
  }
  EXPECT_EQ(s.contiguous, c.contiguous) << c.description;
  EXPECT_EQ(s.highest, c.highest) << c.description;
  EXPECT_EQ(stored(s), c.stored + absent(c.limit - c.stored.size())) << c.description;
  pool.close(&s);
}

INSTANTIATE_TEST_SUITE_P(Reasm, InsertTable, testing::ValuesIn(kInsertCases));

// ---- differential: random splits in random order --------------------------------
TEST(Reasm, RandomPermutationsMatchReference) {
  std::mt19937 rng(20240604);
  ReasmPool pool;
  ASSERT_TRUE(pool.init(1, 2048));
  for (int round = 0; round < 300; ++round) {
    const uint32_t len = 1 + rng() % 1500;
    const uint32_t base = rng();  // sometimes close to 2^32
    const std::string msg = pattern(len, rng() % 62);
    // Split into pieces of 1..max bytes (max 1 in some rounds: 1-byte segmentation).
    const uint32_t max_piece = round % 4 == 0 ? 1 : 1 + rng() % 80;
    std::vector<Seg> segs;
    for (uint32_t pos = 0; pos < len;) {
      const uint32_t n = std::min(len - pos, 1 + static_cast<uint32_t>(rng() % max_piece));
      segs.push_back({pos, msg.substr(pos, n), R::ok});
      pos += n;
    }
    // Retransmissions: copies of random pieces, and segments over two pieces.
    for (int d = 0, dups = static_cast<int>(rng() % 10); d < dups; ++d) {
      const uint32_t a = rng() % len, n = 1 + rng() % std::min<uint32_t>(len - a, 200);
      segs.push_back({a, msg.substr(a, n), R::ok});
    }
    if (round % 3 == 0) {
      std::reverse(segs.begin(), segs.end());
    } else {
      std::shuffle(segs.begin(), segs.end(), rng);
    }
    ReasmStream s;
    ASSERT_TRUE(pool.open(&s, base, 1500));
    std::vector<bool> have(len, false);
    uint32_t highest = 0;
    for (const Seg& seg : segs) {
      ASSERT_EQ(insert(&s, seg.off, seg.bytes), R::ok) << "round " << round;
      for (size_t i = 0; i < seg.bytes.size(); ++i) have[seg.off + i] = true;
      highest = std::max<uint32_t>(highest, static_cast<uint32_t>(seg.off + seg.bytes.size()));
      const uint32_t want =
          static_cast<uint32_t>(std::find(have.begin(), have.end(), false) - have.begin());
      ASSERT_EQ(s.contiguous, want) << "round " << round;
      ASSERT_EQ(s.highest, highest) << "round " << round;
    }
    ASSERT_EQ(s.contiguous, len);
    ASSERT_EQ(std::memcmp(s.buf, msg.data(), len), 0) << "round " << round;
    pool.close(&s);
  }
}

// ---- a conflict leaves the stream exactly as it was ------------------------------
struct Snapshot {
  uint32_t contiguous, highest;
  std::string bytes;  // stored()
  std::string map;    // the bitmap bytes the limit covers

  explicit Snapshot(const ReasmStream& s)
      : contiguous(s.contiguous),
        highest(s.highest),
        bytes(stored(s)),
        map(reinterpret_cast<const char*>(s.filled), (s.limit + 63) / 64 * 8) {}
  bool operator==(const Snapshot&) const = default;
};

TEST(Reasm, ConflictLeavesStreamUnchanged) {
  struct Case {
    const char* description;
    int64_t off;
    std::string bytes;
  };
  // Present: [10, 70) and [100, 180) of k; everything else absent.
  const std::string k = pattern(256);
  auto changed = [&](int64_t off, size_t n, size_t at) {
    std::string b = k.substr(off, n);
    b[at] = '_';
    return b;
  };
  const Case cases[] = {
      {"last byte of a long segment over both runs", 0, changed(0, 200, 179)},
      {"first present byte", 5, changed(5, 20, 5)},
      {"last byte of the first run", 60, changed(60, 20, 9)},
      {"a byte in a full word of the second run", 90, changed(90, 80, 50)},
      {"trimmed segment, differing after byte 0", -5, "ZZZZZ" + changed(0, 20, 15)},
  };
  ReasmPool pool;
  ASSERT_TRUE(pool.init(1, 256));
  for (const Case& c : cases) {
    ReasmStream s;
    ASSERT_TRUE(pool.open(&s, 0xFFFFFFF0, 256));
    ASSERT_EQ(insert(&s, 10, k.substr(10, 60)), R::ok);
    ASSERT_EQ(insert(&s, 100, k.substr(100, 80)), R::ok);
    const Snapshot before(s);
    EXPECT_EQ(insert(&s, c.off, c.bytes), R::conflict) << c.description;
    EXPECT_TRUE(Snapshot(s) == before) << c.description;
    pool.close(&s);
  }
}

// ---- pool -----------------------------------------------------------------------
TEST(ReasmPool, InitValidates) {
  struct Case {
    const char* description;
    uint32_t streams, bytes_each;
    bool ok;
  };
  const Case cases[] = {
      {"no streams", 0, 1024, false},
      {"zero bytes", 4, 0, false},
      {"over kReasmMaxBytes", 4, kReasmMaxBytes + 1, false},
      {"exactly kReasmMaxBytes", 4, kReasmMaxBytes, true},
      {"one byte", 1, 1, true},
      {"not a multiple of 64", 3, 100, true},
  };
  for (const Case& c : cases) {
    ReasmPool pool;
    EXPECT_EQ(pool.init(c.streams, c.bytes_each), c.ok) << c.description;
    EXPECT_EQ(pool.capacity(), c.ok ? c.streams : 0) << c.description;
    EXPECT_EQ(pool.in_use(), 0u) << c.description;
  }
}

TEST(ReasmPool, ExhaustionAndReuse) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(3, 128));
  ReasmStream s[4];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.open(&s[i], 100, 128));
  EXPECT_EQ(pool.in_use(), 3u);
  EXPECT_FALSE(pool.open(&s[3], 100, 128)) << "exhausted: fail closed";
  EXPECT_EQ(s[3].slot, UINT32_MAX);
  EXPECT_EQ(s[3].buf, nullptr);
  EXPECT_EQ(s[3].limit, 0u);
  EXPECT_EQ(pool.in_use(), 3u);
  // Distinct slots and buffers.
  EXPECT_NE(s[0].buf, s[1].buf);
  EXPECT_NE(s[1].buf, s[2].buf);
  EXPECT_NE(s[0].slot, s[1].slot);

  ASSERT_EQ(insert(&s[1], 0, pattern(128)), R::ok);
  const uint32_t freed = s[1].slot;
  pool.close(&s[1]);
  EXPECT_EQ(pool.in_use(), 2u);
  ASSERT_TRUE(pool.open(&s[3], 5000, 64));
  EXPECT_EQ(s[3].slot, freed) << "the freed slot is reused";
  EXPECT_EQ(s[3].contiguous, 0u);
  EXPECT_EQ(s[3].highest, 0u);
  EXPECT_EQ(stored(s[3]), absent(64)) << "the previous stream's bytes are gone";
  pool.close(&s[3]);
  // The same slot again with a larger limit: the words past the old limit are clear too.
  ASSERT_TRUE(pool.open(&s[3], 0, 128));
  EXPECT_EQ(stored(s[3]), absent(128));
  for (auto& st : s) pool.close(&st);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(ReasmPool, CloseIsIdempotent) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(2, 64));
  ReasmStream a, b;
  ASSERT_TRUE(pool.open(&a, 0, 64));
  const ReasmStream stale = a;  // a copy made before the close
  pool.close(&a);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(a.slot, UINT32_MAX);
  EXPECT_EQ(a.buf, nullptr);
  EXPECT_EQ(a.filled, nullptr);
  EXPECT_EQ(a.limit, 0u);
  pool.close(&a);
  EXPECT_EQ(pool.in_use(), 0u);
  ReasmStream copy = stale;
  pool.close(&copy);  // already free: not pushed twice
  EXPECT_EQ(pool.in_use(), 0u);
  ReasmStream never;
  pool.close(&never);
  pool.close(nullptr);
  // Both slots are still there exactly once.
  ASSERT_TRUE(pool.open(&a, 0, 64));
  ASSERT_TRUE(pool.open(&b, 0, 64));
  EXPECT_NE(a.slot, b.slot);
  ReasmStream c;
  EXPECT_FALSE(pool.open(&c, 0, 64));
  // A closed stream refuses bytes without touching memory.
  pool.close(&a);
  EXPECT_EQ(insert(&a, 0, "x"), R::over_limit);
  EXPECT_EQ(insert(&a, 0, ""), R::ok);
  pool.close(&b);
}

TEST(ReasmPool, OpenOnAnOpenStreamReturnsItsSlotFirst) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(1, 64));
  ReasmStream s;
  ASSERT_TRUE(pool.open(&s, 0, 64));
  ASSERT_EQ(insert(&s, 0, "abc"), R::ok);
  ASSERT_TRUE(pool.open(&s, 77, 32));
  EXPECT_EQ(pool.in_use(), 1u);
  EXPECT_EQ(s.base_seq, 77u);
  EXPECT_EQ(stored(s), absent(32));
  pool.close(&s);
}

TEST(ReasmPool, LimitIsClampedToBytesEach) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(2, 100));
  ReasmStream s;
  ASSERT_TRUE(pool.open(&s, 0, kReasmMaxBytes));
  EXPECT_EQ(s.limit, 100u);
  EXPECT_EQ(insert(&s, 0, pattern(101)), R::over_limit);
  EXPECT_EQ(insert(&s, 99, "z"), R::ok);
  EXPECT_EQ(insert(&s, 100, "z"), R::over_limit);
  EXPECT_EQ(insert(&s, 0, pattern(99)), R::ok);
  EXPECT_EQ(s.contiguous, 100u);
  pool.close(&s);
}

TEST(ReasmPool, StreamsDoNotOverlap) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(3, 100));
  ReasmStream s[3];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.open(&s[i], 0, 100));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(insert(&s[i], 0, std::string(100, 'a' + i)), R::ok);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(stored(s[i]), std::string(100, 'a' + i)) << i;
    EXPECT_EQ(s[i].contiguous, 100u) << i;
  }
  for (auto& st : s) pool.close(&st);
}

// The unit tests run with the EAL up: the pool must come from DPDK memory then (and
// the weak DPDK symbols of reasm.cc must have resolved).
TEST(ReasmPool, UsesDpdkMemoryWhenTheEalIsUp) {
  ReasmPool pool;
  ASSERT_TRUE(pool.init(2, kReasmMaxBytes));
  ReasmStream s;
  ASSERT_TRUE(pool.open(&s, 0, kReasmMaxBytes));
  EXPECT_NE(rte_mem_virt2memseg(s.buf, nullptr), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.buf) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.filled) % 64, 0u);
  pool.close(&s);
  pool.destroy();
  EXPECT_EQ(pool.capacity(), 0u);
  EXPECT_FALSE(pool.open(&s, 0, 10)) << "no pool after destroy";
}

}  // namespace
}  // namespace egw::l7
