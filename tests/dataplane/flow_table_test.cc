// Unit tests of the per-worker flow table: keys, keyed hash, capacity and eviction,
// per-state timeouts, sweep and flush (checklist 34-36). No EAL needed.
#include "dataplane/flow_table.h"

#include <gtest/gtest.h>

#include <set>
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/parse.h"
#include "dataplane/siphash.h"

namespace egw {
namespace {

constexpr uint64_t kSec = 1000000000ull;

FlowKey make_key(uint32_t n, uint8_t proto = kProtoTcp) {
  FlowKey k{};
  k.family = 4;
  k.proto = proto;
  k.inside_ip[0] = 10;
  k.inside_ip[1] = static_cast<uint8_t>(n >> 16);
  k.inside_ip[2] = static_cast<uint8_t>(n >> 8);
  k.inside_ip[3] = static_cast<uint8_t>(n);
  k.remote_ip[0] = 93;
  k.remote_ip[1] = 184;
  k.remote_ip[2] = 216;
  k.remote_ip[3] = 34;
  k.inside_port = static_cast<uint16_t>(40000 + (n & 0x3ff));
  k.remote_port = 443;
  return k;
}

struct Ended {
  std::vector<FlowKey> keys;
  std::vector<EndReason> why;
  static void record(void* ctx, FlowEntry& e, EndReason why) {
    auto* self = static_cast<Ended*>(ctx);
    self->keys.push_back(e.key);
    self->why.push_back(why);
  }
  size_t count(EndReason r) const {
    size_t n = 0;
    for (EndReason w : why) n += w == r;
    return n;
  }
};

struct Fixture {
  FlowTable t;
  Ended ended;
  explicit Fixture(uint32_t capacity, uint64_t s0 = 1, uint64_t s1 = 2) {
    uint64_t seed[2] = {s0, s1};
    EXPECT_TRUE(t.init(capacity, seed));
    t.set_on_end(&Ended::record, &ended);
  }
  FlowEntry* insert(const FlowKey& k, uint64_t now) { return t.insert(k, t.hash(k), now); }
  FlowEntry* lookup(const FlowKey& k, uint64_t now) { return t.lookup(k, t.hash(k), now); }
  FlowEntry* add(uint32_t n, uint64_t now, bool embryonic, TcpState st = TcpState::established) {
    FlowEntry* e = insert(make_key(n), now);
    if (e == nullptr) return nullptr;
    e->tcp_state = st;
    t.set_embryonic(e, embryonic);
    return e;
  }
};

TEST(FlowTable, InitRejectsBadCapacity) {
  FlowTable t;
  uint64_t seed[2] = {1, 2};
  EXPECT_FALSE(t.init(0, seed));
  EXPECT_TRUE(t.init(1, seed));
  EXPECT_EQ(t.capacity(), 1u);
  EXPECT_TRUE(t.init(1000, seed));  // re-init frees the old arrays
  EXPECT_EQ(t.capacity(), 1000u);
}

TEST(FlowTable, InsertLookupRemove) {
  Fixture f(64);
  const FlowKey k = make_key(1);
  EXPECT_EQ(f.lookup(k, 0), nullptr);
  FlowEntry* e = f.insert(k, 5);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->key, k);
  EXPECT_EQ(e->start_ns, 5u);
  EXPECT_EQ(e->last_seen_ns, 5u);
  EXPECT_EQ(e->rule_index, kNoRule);
  EXPECT_EQ(e->verdict, Verdict::deny);
  EXPECT_EQ(e->tcp_state, TcpState::none);
  EXPECT_EQ(f.t.size(), 1u);
  EXPECT_EQ(f.lookup(k, 6), e);
  f.t.remove(e, EndReason::closed);
  EXPECT_EQ(f.lookup(k, 7), nullptr);
  EXPECT_EQ(f.t.size(), 0u);
  ASSERT_EQ(f.ended.why.size(), 1u);
  EXPECT_EQ(f.ended.why[0], EndReason::closed);
  EXPECT_EQ(f.ended.keys[0], k);
  f.t.remove(e, EndReason::closed);  // a second remove is a no-op
  EXPECT_EQ(f.ended.why.size(), 1u);
  EXPECT_NE(f.insert(k, 8), nullptr);  // and the key can come back
  EXPECT_EQ(f.t.size(), 1u);
}

TEST(FlowTable, EveryKeyFieldDistinguishesFlows) {
  struct Case {
    const char* desc;
    void (*mutate)(FlowKey&);
  };
  const Case cases[] = {
      {"inside address", [](FlowKey& k) { k.inside_ip[3] ^= 1; }},
      {"remote address", [](FlowKey& k) { k.remote_ip[15] ^= 1; }},
      {"inside port", [](FlowKey& k) { k.inside_port ^= 1; }},
      {"remote port", [](FlowKey& k) { k.remote_port ^= 1; }},
      {"vlan", [](FlowKey& k) { k.vlan = (5u << 12) | 7; }},
      {"proto", [](FlowKey& k) { k.proto = kProtoUdp; }},
      {"family", [](FlowKey& k) { k.family = 6; }},
      {"swapped ports (a key is direction-normalised by the caller)",
       [](FlowKey& k) { std::swap(k.inside_port, k.remote_port); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f(64);
    const FlowKey k = make_key(7);
    ASSERT_NE(f.insert(k, 0), nullptr);
    FlowKey other = k;
    c.mutate(other);
    EXPECT_EQ(f.lookup(other, 1), nullptr);
    EXPECT_NE(f.lookup(k, 1), nullptr);
  }
}

TEST(FlowTable, Names) {
  struct Case {
    TcpState s;
    const char* name;
  };
  const Case states[] = {{TcpState::none, "none"},         {TcpState::syn_sent, "syn_sent"},
                         {TcpState::syn_recv, "syn_recv"}, {TcpState::established, "established"},
                         {TcpState::fin_wait, "fin_wait"}, {TcpState::closing, "closing"},
                         {TcpState::closed, "closed"}};
  for (const Case& c : states) EXPECT_STREQ(tcp_state_name(c.s), c.name);
  struct RCase {
    EndReason r;
    const char* name;
  };
  const RCase reasons[] = {{EndReason::timeout, "timeout"},
                           {EndReason::closed, "closed"},
                           {EndReason::reset, "reset"},
                           {EndReason::evicted, "evicted"},
                           {EndReason::shutdown, "shutdown"}};
  for (const RCase& c : reasons) EXPECT_STREQ(end_reason_name(c.r), c.name);
}

TEST(FlowTable, SipHashReferenceVector) {
  // SipHash-2-4 reference (Aumasson & Bernstein): key 00..0f, message 00..0e.
  uint8_t msg[15];
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
  const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  EXPECT_EQ((siphash<2, 4>(msg, sizeof(msg), key)), 0xa129ca6149be45e5ull);
  EXPECT_EQ((siphash<2, 4>(msg, 0, key)), 0x726fdb47dd0e0e31ull);
}

TEST(FlowTable, HashIsKeyedBySeed) {
  struct Case {
    const char* desc;
    uint64_t a0, a1, b0, b1;
    bool same;
  };
  const Case cases[] = {
      {"same seed, same hash", 1, 2, 1, 2, true},
      {"first seed word differs", 1, 2, 3, 2, false},
      {"second seed word differs", 1, 2, 1, 3, false},
      {"random-looking seeds", 0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
       0x082efa98ec4e6c89ull, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    FlowTable a, b;
    uint64_t sa[2] = {c.a0, c.a1}, sb[2] = {c.b0, c.b1};
    ASSERT_TRUE(a.init(16, sa));
    ASSERT_TRUE(b.init(16, sb));
    unsigned equal = 0;
    for (uint32_t n = 0; n < 64; ++n) equal += a.hash(make_key(n)) == b.hash(make_key(n));
    EXPECT_EQ(equal, c.same ? 64u : 0u);
  }
}

TEST(FlowTable, FullTableEvictsEmbryonicFirst) {
  struct Case {
    const char* desc;
    unsigned established;  // of the first `capacity` flows, how many are established
    bool expect_insert;
    EndReason expect_reason;  // of the removed flow when the insert succeeds
  };
  const Case cases[] = {
      {"all embryonic: oldest embryonic evicted", 0, true, EndReason::evicted},
      {"half established: an embryonic one evicted", 16, true, EndReason::evicted},
      {"one embryonic left: that one evicted", 31, true, EndReason::evicted},
      {"all established: fail closed", 32, false, EndReason::evicted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f(32);
    uint32_t oldest_embryo = kNil;
    for (uint32_t n = 0; n < 32; ++n) {
      const bool embryonic = n >= c.established;
      ASSERT_NE(
          f.add(n, 100 + n, embryonic, embryonic ? TcpState::syn_sent : TcpState::established),
          nullptr);
      if (embryonic && oldest_embryo == kNil) oldest_embryo = n;
    }
    EXPECT_EQ(f.t.size(), 32u);
    FlowEntry* e = f.add(1000, 200, true, TcpState::syn_sent);
    EXPECT_EQ(e != nullptr, c.expect_insert);
    EXPECT_EQ(f.t.size(), 32u);
    for (uint32_t n = 0; n < c.established; ++n) EXPECT_NE(f.lookup(make_key(n), 201), nullptr);
    if (c.expect_insert) {
      ASSERT_EQ(f.ended.why.size(), 1u);
      EXPECT_EQ(f.ended.why[0], c.expect_reason);
      EXPECT_EQ(f.ended.keys[0], make_key(oldest_embryo));
      EXPECT_EQ(f.t.evictions(), 1u);
    } else {
      EXPECT_TRUE(f.ended.why.empty());
      EXPECT_EQ(f.t.evictions(), 0u);
    }
  }
}

TEST(FlowTable, ExpiredFlowsGoBeforeEmbryonicOnes) {
  struct Case {
    const char* desc;
    bool udp_expired;   // the established UDP flow is past its timeout
    bool head_expired;  // the oldest embryonic flow is past its timeout
    EndReason reason;   // of the one flow that leaves
    uint32_t leaves;    // which one
    uint64_t evictions;
  };
  const Case cases[] = {
      {"expired candidate removed (timeout), nothing evicted", true, false, EndReason::timeout, 99,
       0},
      {"oldest embryonic already expired: timeout, not eviction", false, true, EndReason::timeout,
       0, 0},
      {"nothing expired: oldest embryonic evicted", false, false, EndReason::evicted, 0, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f(4);  // two buckets: every flow is a candidate of every key
    FlowTimeouts to;
    to.udp_ns = 100;
    to.tcp_syn_ns = 100;
    f.t.set_timeouts(to);
    FlowEntry* udp = f.insert(make_key(99, kProtoUdp), c.udp_expired ? 0 : 50);
    ASSERT_NE(udp, nullptr);
    ASSERT_NE(f.add(0, c.head_expired ? 0 : 50, true, TcpState::syn_sent), nullptr);
    ASSERT_NE(f.add(1, 60, true, TcpState::syn_sent), nullptr);
    ASSERT_NE(f.add(2, 60, true, TcpState::syn_sent), nullptr);
    ASSERT_NE(f.add(100, 100, true, TcpState::syn_sent), nullptr);
    ASSERT_EQ(f.ended.why.size(), 1u);
    EXPECT_EQ(f.ended.why[0], c.reason);
    EXPECT_EQ(f.ended.keys[0], c.leaves == 99 ? make_key(99, kProtoUdp) : make_key(c.leaves));
    EXPECT_EQ(f.t.evictions(), c.evictions);
    EXPECT_EQ(f.t.size(), 4u);
  }
}

// White box: the two candidate buckets as flow_table.cc derives them from the hash.
std::pair<uint32_t, uint32_t> candidates(uint64_t h, uint32_t mask) {
  uint32_t b1 = static_cast<uint32_t>(h) & mask, b2 = static_cast<uint32_t>(h >> 24) & mask;
  if (b2 == b1) b2 = b1 ^ 1;
  return {std::min(b1, b2), std::max(b1, b2)};
}

TEST(FlowTable, BothCandidateBucketsFull) {
  struct Case {
    const char* desc;
    bool one_embryonic;  // one of the 16 flows in the two buckets is embryonic
    bool inserted;
  };
  const Case cases[] = {
      {"only established flows in both buckets: fail closed, bounded", false, false},
      {"an embryonic flow in them is evicted, not the older FIFO head elsewhere", true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f(64);  // 16 buckets
    const auto pair = candidates(f.t.hash(make_key(0)), 15);
    std::vector<uint32_t> same;  // keys whose candidates are the same two buckets
    uint32_t elsewhere = kNil;
    for (uint32_t n = 0; same.size() < 17 && n < 1000000; ++n) {
      if (candidates(f.t.hash(make_key(n)), 15) == pair)
        same.push_back(n);
      else if (elsewhere == kNil)
        elsewhere = n;
    }
    ASSERT_EQ(same.size(), 17u);
    ASSERT_NE(f.add(elsewhere, 0, true, TcpState::syn_sent), nullptr);  // the FIFO head
    for (size_t i = 0; i < 16; ++i) {
      const bool embryonic = c.one_embryonic && i == 5;
      ASSERT_NE(
          f.add(same[i], 10 + i, embryonic, embryonic ? TcpState::syn_sent : TcpState::established),
          nullptr);
    }
    EXPECT_EQ(f.t.size(), 17u);
    FlowEntry* e = f.add(same[16], 100, true, TcpState::syn_sent);
    EXPECT_EQ(e != nullptr, c.inserted);
    EXPECT_EQ(f.t.size(), 17u);
    EXPECT_NE(f.lookup(make_key(elsewhere), 101), nullptr);
    if (c.inserted) {
      ASSERT_EQ(f.ended.keys.size(), 1u);
      EXPECT_EQ(f.ended.keys[0], make_key(same[5]));
      EXPECT_EQ(f.ended.why[0], EndReason::evicted);
    } else {
      EXPECT_TRUE(f.ended.keys.empty());
    }
  }
}

TEST(FlowTable, SynFloodNeverTouchesEstablishedFlows) {
  Fixture f(256);
  for (uint32_t n = 0; n < 128; ++n) ASSERT_NE(f.add(n, 0, false), nullptr);
  unsigned inserted = 0, refused = 0;
  for (uint32_t n = 1000; n < 21000; ++n) {
    FlowEntry* e = f.add(n, n, true, TcpState::syn_sent);
    (e != nullptr ? inserted : refused)++;
    ASSERT_LE(f.t.size(), f.t.capacity());
  }
  for (uint32_t n = 0; n < 128; ++n) EXPECT_NE(f.lookup(make_key(n), 30000), nullptr) << n;
  EXPECT_GT(inserted, 19000u);  // refused only when both buckets hold established flows only
  EXPECT_EQ(f.ended.count(EndReason::evicted), f.t.evictions());
  EXPECT_EQ(f.t.evictions(), inserted - (f.t.size() - 128));
  EXPECT_EQ(f.ended.why.size(), f.t.evictions());
}

TEST(FlowTable, EstablishedOnlyTableFailsClosedWithBoundedLookups) {
  Fixture f(128);
  uint32_t n = 0;
  unsigned stored = 0;
  while (stored < 128 && n < 100000) stored += f.add(n++, 0, false) != nullptr;
  EXPECT_EQ(stored, 128u);
  EXPECT_EQ(f.t.size(), 128u);
  for (uint32_t m = 200000; m < 210000; ++m) {
    EXPECT_EQ(f.lookup(make_key(m), 1), nullptr);
    EXPECT_EQ(f.add(m, 1, true), nullptr);
  }
  EXPECT_EQ(f.t.size(), 128u);
  EXPECT_TRUE(f.ended.why.empty());
  EXPECT_EQ(f.t.evictions(), 0u);
}

TEST(FlowTable, EmbryonicFifoOrder) {
  Fixture f(4);
  FlowEntry* a = f.add(1, 0, true, TcpState::syn_sent);
  FlowEntry* b = f.add(2, 0, true, TcpState::syn_sent);
  FlowEntry* c = f.add(3, 0, true, TcpState::syn_sent);
  FlowEntry* d = f.add(4, 0, false);
  ASSERT_TRUE(a && b && c && d);
  f.t.set_embryonic(a, false);  // a handshake completes: leaves the FIFO
  f.t.set_embryonic(b, true);   // already in it: keeps its age
  f.t.remove(c, EndReason::reset);
  f.t.set_embryonic(d, true);
  // FIFO is now b, d. Fill the freed entry, then the next insert evicts b, then d.
  ASSERT_NE(f.add(5, 1, false), nullptr);
  ASSERT_NE(f.add(6, 1, false), nullptr);
  ASSERT_NE(f.add(7, 1, false), nullptr);
  EXPECT_EQ(f.add(8, 1, false), nullptr);  // a, 5, 6, 7 established: nothing left
  ASSERT_EQ(f.ended.keys.size(), 3u);
  EXPECT_EQ(f.ended.keys[0], make_key(3));
  EXPECT_EQ(f.ended.keys[1], make_key(2));
  EXPECT_EQ(f.ended.keys[2], make_key(4));
  EXPECT_EQ(f.t.evictions(), 2u);
}

TEST(FlowTable, EveryStateTimesOutAtItsConfiguredTime) {
  FlowTimeouts to;
  to.tcp_syn_ns = 11 * kSec;
  to.tcp_established_ns = 22 * kSec;
  to.tcp_closing_ns = 33 * kSec;
  to.udp_ns = 44 * kSec;
  to.icmp_ns = 55 * kSec;
  to.other_ns = 66 * kSec;
  struct Case {
    const char* desc;
    uint8_t proto;
    TcpState state;
    uint64_t timeout;
  };
  const Case cases[] = {
      {"tcp none", kProtoTcp, TcpState::none, to.tcp_syn_ns},
      {"tcp syn_sent", kProtoTcp, TcpState::syn_sent, to.tcp_syn_ns},
      {"tcp syn_recv", kProtoTcp, TcpState::syn_recv, to.tcp_syn_ns},
      {"tcp established", kProtoTcp, TcpState::established, to.tcp_established_ns},
      {"tcp fin_wait", kProtoTcp, TcpState::fin_wait, to.tcp_closing_ns},
      {"tcp closing", kProtoTcp, TcpState::closing, to.tcp_closing_ns},
      {"tcp closed", kProtoTcp, TcpState::closed, to.tcp_closing_ns},
      {"udp", kProtoUdp, TcpState::none, to.udp_ns},
      {"icmp", kProtoIcmp, TcpState::none, to.icmp_ns},
      {"icmpv6", kProtoIcmpv6, TcpState::none, to.icmp_ns},
      {"gre", 47, TcpState::none, to.other_ns},
      {"esp", 50, TcpState::none, to.other_ns},
  };
  for (const Case& c : cases) {
    for (const bool by_sweep : {false, true}) {
      SCOPED_TRACE(std::string(c.desc) + (by_sweep ? " (sweep)" : " (lookup)"));
      Fixture f(8);
      f.t.set_timeouts(to);
      const uint64_t t0 = 1000 * kSec;
      const FlowKey k = make_key(1, c.proto);
      FlowEntry* e = f.insert(k, t0);
      ASSERT_NE(e, nullptr);
      e->tcp_state = c.state;
      EXPECT_EQ(f.t.timeout_of(*e), c.timeout);
      if (by_sweep) {
        f.t.sweep(t0 + c.timeout - 1, 8);
        EXPECT_EQ(f.t.size(), 1u);
        f.t.sweep(t0 + c.timeout, 8);
        EXPECT_EQ(f.t.size(), 0u);
      } else {
        EXPECT_EQ(f.lookup(k, t0 + c.timeout - 1), e);
        EXPECT_EQ(f.lookup(k, t0 + c.timeout), nullptr);
        EXPECT_EQ(f.lookup(k, t0 + c.timeout + 1), nullptr);
      }
      EXPECT_EQ(f.t.size(), 0u);
      ASSERT_EQ(f.ended.why.size(), 1u);  // reported exactly once
      EXPECT_EQ(f.ended.why[0], EndReason::timeout);
      EXPECT_EQ(f.t.evictions(), 0u);
    }
  }
}

TEST(FlowTable, LastSeenExtendsLife) {
  Fixture f(8);
  FlowTimeouts to;
  to.udp_ns = 10;
  f.t.set_timeouts(to);
  const FlowKey k = make_key(1, kProtoUdp);
  FlowEntry* e = f.insert(k, 0);
  e->last_seen_ns = 9;
  EXPECT_EQ(f.lookup(k, 18), e);
  EXPECT_EQ(f.lookup(k, 19), nullptr);
}

TEST(FlowTable, SweepIsBoundedAndCoversEveryEntry) {
  struct Case {
    const char* desc;
    unsigned budget;
    unsigned calls_to_clear;  // ceil(capacity / budget)
  };
  const Case cases[] = {{"budget 1", 1, 100},
                        {"budget 7", 7, 15},
                        {"budget 100", 100, 1},
                        {"budget above capacity", 1000, 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f(100);
    FlowTimeouts to;
    to.udp_ns = 10;
    to.tcp_established_ns = 1000;
    f.t.set_timeouts(to);
    for (uint32_t n = 0; n < 60; ++n) ASSERT_NE(f.insert(make_key(n, kProtoUdp), 0), nullptr);
    for (uint32_t n = 0; n < 20; ++n) ASSERT_NE(f.add(n, 0, false), nullptr);
    unsigned calls = 0;
    size_t before = f.ended.why.size();
    while (f.t.size() > 20) {
      f.t.sweep(10, c.budget);
      ++calls;
      EXPECT_LE(f.ended.why.size() - before, c.budget);
      before = f.ended.why.size();
      ASSERT_LE(calls, c.calls_to_clear);
    }
    EXPECT_EQ(f.ended.count(EndReason::timeout), 60u);
    for (uint32_t n = 0; n < 20; ++n) EXPECT_NE(f.lookup(make_key(n), 10), nullptr);
  }
}

TEST(FlowTable, FlushRemovesEverythingOnce) {
  Fixture f(64);
  for (uint32_t n = 0; n < 40; ++n) ASSERT_NE(f.add(n, 0, n % 2 == 0), nullptr);
  f.t.flush(EndReason::shutdown);
  EXPECT_EQ(f.t.size(), 0u);
  EXPECT_EQ(f.ended.why.size(), 40u);
  EXPECT_EQ(f.ended.count(EndReason::shutdown), 40u);
  std::set<uint32_t> seen;
  for (const FlowKey& k : f.ended.keys) seen.insert(k.inside_ip[3]);
  EXPECT_EQ(seen.size(), 40u);
  f.t.flush(EndReason::shutdown);
  EXPECT_EQ(f.ended.why.size(), 40u);
  // The table is fully usable again: 64 embryonic flows, then eviction works.
  for (uint32_t n = 100; n < 164; ++n) ASSERT_NE(f.add(n, 1, true, TcpState::syn_sent), nullptr);
  ASSERT_NE(f.add(200, 2, true, TcpState::syn_sent), nullptr);
  EXPECT_EQ(f.t.evictions(), 1u);
  unsigned live = 0;
  f.t.for_each([&](FlowEntry&) { ++live; });
  EXPECT_EQ(live, 64u);
}

}  // namespace
}  // namespace egw
