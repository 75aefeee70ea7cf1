// Unit tests of fragment tracking (checklist 24): verdicts follow the first fragment,
// overlaps deny the rest of the datagram, orphans and full tables are counted reasons.
#include "dataplane/frag.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace egw {
namespace {

using Outcome = FragTable::Outcome;
constexpr uint64_t kT = FragTable::kTimeoutNs;
constexpr DropReason kNone = DropReason::count;

enum class Op { track, allow, deny };

struct Step {
  const char* desc;
  Op op;
  uint32_t id;  // datagram id
  uint16_t off, len;
  bool mf;
  Outcome expect;   // for Op::track
  DropReason why;   // for Outcome::drop
  uint64_t at = 0;  // time of the step
};

ParsedPacket frag(uint8_t family, uint32_t id, uint16_t off, uint16_t len, bool mf,
                  uint8_t proto = kProtoUdp) {
  ParsedPacket p;
  p.l34.family = family;
  p.l34.proto = proto;
  p.l34.src[0] = 10;
  p.l34.src[3] = 2;
  p.l34.dst[0] = family == 4 ? 192 : 0x20;
  p.l34.dst[3] = 9;
  p.is_fragment = true;
  p.more_fragments = mf;
  p.frag_offset = off;
  p.frag_id = id;
  p.frag_payload_len = len;
  p.l4_offset = off == 0 ? 34 : 0;
  return p;
}

struct Scenario {
  const char* desc;
  std::vector<Step> steps;
  uint32_t in_use_after;
};

void run(uint8_t family, const Scenario& sc) {
  SCOPED_TRACE(std::string(sc.desc) + (family == 4 ? " (IPv4)" : " (IPv6)"));
  FragTable t;
  ASSERT_TRUE(t.init(64, 42));
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    const Step& st = sc.steps[i];
    SCOPED_TRACE(std::to_string(i) + ": " + st.desc);
    const ParsedPacket p = frag(family, st.id, st.off, st.len, st.mf);
    if (st.op != Op::track) {
      t.decide(p, st.op == Op::allow, st.at);
      continue;
    }
    DropReason why = kNone;
    const Outcome o = t.track(p, st.at, &why);
    EXPECT_EQ(static_cast<int>(o), static_cast<int>(st.expect));
    if (o == Outcome::drop) {
      EXPECT_EQ(static_cast<int>(why), static_cast<int>(st.why));
    }
  }
  EXPECT_EQ(t.in_use(), sc.in_use_after);
}

constexpr Outcome kFirst = Outcome::first, kAllowed = Outcome::allowed, kDrop = Outcome::drop;
constexpr DropReason kOverlap = DropReason::frag_overlap, kOrphan = DropReason::frag_orphan,
                     kDenied = DropReason::frag_denied, kFull = DropReason::frag_table_full;

TEST(FragTable, Scenarios) {
  const Scenario cases[] = {
      {"in order, allowed: every piece passes, the complete datagram frees its entry",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"classified: allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"last", Op::track, 1, 2960, 100, false, kAllowed, kNone},
        {"a copy after completion is an orphan", Op::track, 1, 2960, 100, false, kDrop, kOrphan}},
       0},
      {"out of order after the first: allowed, completes",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"last", Op::track, 1, 2960, 100, false, kAllowed, kNone},
        {"middle", Op::track, 1, 1480, 1480, true, kAllowed, kNone}},
       0},
      {"denied datagram: later pieces dropped as frag_denied",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"classified: deny", Op::deny, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kDenied}},
       1},
      {"orphan: no first fragment seen",
       {{"middle", Op::track, 1, 1480, 1480, true, kDrop, kOrphan},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kOrphan}},
       0},
      {"first not decided yet: later pieces are orphans until it is",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"second, undecided", Op::track, 1, 1480, 1480, true, kDrop, kOrphan},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second again", Op::track, 1, 1480, 1480, true, kAllowed, kNone}},
       1},
      {"exact duplicate of a later piece: dropped, the datagram denied",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"second again", Op::track, 1, 1480, 1480, true, kDrop, kOverlap},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kDenied}},
       1},
      {"partial overlap: dropped, the datagram denied",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"overlaps the tail of the second", Op::track, 1, 2952, 100, false, kDrop, kOverlap},
        {"a clean last piece no longer passes", Op::track, 1, 2960, 100, false, kDrop, kDenied}},
       1},
      {"overwriting the L4 header (offset 8 over the first piece)",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"offset 8", Op::track, 1, 8, 16, true, kDrop, kOverlap},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"first fragment twice",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"first again, other bytes", Op::track, 1, 0, 1480, true, kDrop, kOverlap},
        {"allow of the copy changes nothing", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"duplicate first before the decision: the decision cannot revive it",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"first again", Op::track, 1, 0, 1480, true, kDrop, kOverlap},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"piece past the end given by the last fragment",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"last ends at 3060", Op::track, 1, 2960, 100, false, kAllowed, kNone},
        {"a piece at 3060", Op::track, 1, 3060, 8, true, kDrop, kOverlap},
        {"the missing middle is denied now", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"last fragment ending before a recorded piece",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"piece at 2960", Op::track, 1, 2960, 1480, true, kAllowed, kNone},
        {"last ends at 2960", Op::track, 1, 1480, 1480, false, kDrop, kOverlap}},
       1},
      {"empty piece",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"zero bytes at 4000", Op::track, 1, 4000, 0, true, kDrop, kOverlap}},
       1},
      {"datagrams are told apart by id",
       {{"first of 1", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"first of 2", Op::track, 2, 0, 1480, true, kFirst, kNone},
        {"allow 1", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"deny 2", Op::deny, 2, 0, 1480, true, kFirst, kNone},
        {"second of 2", Op::track, 2, 1480, 1480, true, kDrop, kDenied},
        {"second of 1", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"orphan id 3", Op::track, 3, 1480, 1480, true, kDrop, kOrphan}},
       2},
      {"expiry: the datagram lives kTimeoutNs from its first fragment",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone, 1},
        {"just before", Op::track, 1, 1480, 8, true, kAllowed, kNone, kT - 1},
        {"at the timeout", Op::track, 1, 1488, 8, true, kDrop, kOrphan, kT},
        {"a new datagram with the same id", Op::track, 1, 0, 1480, true, kFirst, kNone, kT}},
       1},
      {"more than kMaxPieces disjoint runs",
       {{"first [0,8)", Op::track, 1, 0, 8, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 8, true, kFirst, kNone},
        {"[16,24)", Op::track, 1, 16, 8, true, kAllowed, kNone},
        {"[32,40)", Op::track, 1, 32, 8, true, kAllowed, kNone},
        {"[48,56)", Op::track, 1, 48, 8, true, kAllowed, kNone},
        {"[64,72)", Op::track, 1, 64, 8, true, kAllowed, kNone},
        {"[80,88)", Op::track, 1, 80, 8, true, kAllowed, kNone},
        {"[96,104)", Op::track, 1, 96, 8, true, kAllowed, kNone},
        {"[112,120): the 8th run", Op::track, 1, 112, 8, true, kAllowed, kNone},
        {"[128,136): a 9th run", Op::track, 1, 128, 8, true, kDrop, kFull},
        {"[8,16) joins two runs", Op::track, 1, 8, 8, true, kAllowed, kNone},
        {"[128,136) fits now", Op::track, 1, 128, 8, true, kAllowed, kNone},
        {"[120,128) joins", Op::track, 1, 120, 8, true, kAllowed, kNone},
        {"[136,144) extends the last run", Op::track, 1, 136, 8, false, kAllowed, kNone},
        {"overlap inside a merged run", Op::track, 1, 20, 8, true, kDrop, kOverlap}},
       1},
  };
  for (const Scenario& sc : cases) {
    run(4, sc);
    run(6, sc);
  }
}

TEST(FragTable, KeyFields) {
  struct Case {
    const char* desc;
    void (*mutate)(ParsedPacket&);
    bool same_datagram;
  };
  const Case cases[] = {
      {"identical", [](ParsedPacket&) {}, true},
      {"other source", [](ParsedPacket& p) { p.l34.src[3] = 3; }, false},
      {"other destination", [](ParsedPacket& p) { p.l34.dst[3] = 3; }, false},
      {"other vlan", [](ParsedPacket& p) { p.vlan = 12; }, false},
      {"other id", [](ParsedPacket& p) { p.frag_id ^= 0x10000; }, false},
      {"IPv4: other protocol", [](ParsedPacket& p) { p.l34.proto = kProtoTcp; }, false},
      {"IPv6: next header of a later piece may differ",
       [](ParsedPacket& p) {
         p.l34.family = 6;
         p.l34.proto = 60;
       },
       true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    FragTable t;
    ASSERT_TRUE(t.init(16, 7));
    const bool v6 = std::string(c.desc).rfind("IPv6", 0) == 0;
    ParsedPacket first = frag(v6 ? 6 : 4, 77, 0, 1480, true);
    DropReason why;
    ASSERT_EQ(t.track(first, 0, &why), Outcome::first);
    t.decide(first, true, 0);
    ParsedPacket second = frag(v6 ? 6 : 4, 77, 1480, 100, false);
    c.mutate(second);
    const Outcome o = t.track(second, 1, &why);
    if (c.same_datagram) {
      EXPECT_EQ(o, Outcome::allowed);
    } else {
      EXPECT_EQ(o, Outcome::drop);
      EXPECT_EQ(why, DropReason::frag_orphan);
    }
  }
}

TEST(FragTable, AtomicFragmentNeedsNoEntry) {
  FragTable t;
  ASSERT_TRUE(t.init(16, 7));
  const ParsedPacket p = frag(6, 5, 0, 100, false);
  DropReason why;
  EXPECT_EQ(t.track(p, 0, &why), Outcome::first);
  t.decide(p, true, 0);
  EXPECT_EQ(t.in_use(), 0u);
}

TEST(FragTable, FullTableIsCountedAndExpiryFreesIt) {
  FragTable t;
  ASSERT_TRUE(t.init(4, 9));  // one set of four ways
  DropReason why;
  for (uint32_t id = 1; id <= 4; ++id) {
    const ParsedPacket p = frag(4, id, 0, 1480, true);
    EXPECT_EQ(t.track(p, id, &why), Outcome::first);
    t.decide(p, true, id);
  }
  EXPECT_EQ(t.in_use(), 4u);
  const ParsedPacket fifth = frag(4, 5, 0, 1480, true);
  EXPECT_EQ(t.track(fifth, 10, &why), Outcome::drop);
  EXPECT_EQ(why, DropReason::frag_table_full);
  // Completing datagram 2 frees its way.
  EXPECT_EQ(t.track(frag(4, 2, 1480, 100, false), 11, &why), Outcome::allowed);
  EXPECT_EQ(t.in_use(), 3u);
  EXPECT_EQ(t.track(fifth, 12, &why), Outcome::first);
  const ParsedPacket sixth = frag(4, 6, 0, 1480, true);
  EXPECT_EQ(t.track(sixth, 13, &why), Outcome::drop);
  EXPECT_EQ(why, DropReason::frag_table_full);
  // Datagram 1 (first seen at t=1) expires at 1 + kT: its way is reused.
  EXPECT_EQ(t.track(sixth, 1 + kT, &why), Outcome::first);
  EXPECT_EQ(t.track(frag(4, 1, 1480, 100, false), 1 + kT, &why), Outcome::drop);
  EXPECT_EQ(why, DropReason::frag_orphan);
}

TEST(FragTable, FloodStaysBounded) {
  FragTable t;
  ASSERT_TRUE(t.init(256, 1234));
  DropReason why;
  unsigned first = 0, full = 0;
  for (uint32_t id = 0; id < 100000; ++id) {
    const Outcome o = t.track(frag(4, id, 0, 1480, true), 1000, &why);
    if (o == Outcome::first) ++first;
    if (o == Outcome::drop && why == DropReason::frag_table_full) ++full;
    ASSERT_LE(t.in_use(), 256u);
  }
  EXPECT_EQ(first, 256u);
  EXPECT_EQ(first + full, 100000u);
  // After the lifetime everything is reusable again.
  EXPECT_EQ(t.track(frag(4, 200000, 0, 1480, true), 1000 + kT, &why), Outcome::first);
}

TEST(FragTable, NotInitialised) {
  FragTable t;
  DropReason why;
  EXPECT_EQ(t.track(frag(4, 1, 0, 1480, true), 0, &why), Outcome::drop);
  EXPECT_EQ(why, DropReason::frag_table_full);
  EXPECT_FALSE(t.init(0, 1));
}

}  // namespace
}  // namespace egw
