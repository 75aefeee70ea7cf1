// Unit tests of fragment tracking (checklist 24): verdicts follow the first fragment,
// overlaps deny the rest of the datagram, orphans and full tables are counted reasons,
// the arrival side is part of the datagram, and only allowed datagrams take a slot.
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
constexpr uint8_t kIn = 0, kOut = 1;  // arrival side: inside (outbound), outside (inbound)

struct Step {
  const char* desc;
  Op op;
  uint32_t id;  // datagram id
  uint16_t off, len;
  bool mf;
  Outcome expect;  // Op::track: the outcome; Op::allow/deny: kFirst when decide() returns
                   // true, kDrop when it returns false
  DropReason why;  // for Outcome::drop after Op::track
  uint64_t at = 0;    // time of the step
  uint8_t side = kIn;
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
      EXPECT_EQ(t.decide(p, st.side, st.op == Op::allow, st.at), st.expect == Outcome::first);
      continue;
    }
    DropReason why = kNone;
    const Outcome o = t.track(p, st.side, st.at, &why);
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
      {"denied datagram: not recorded, later pieces are orphans",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"classified: deny", Op::deny, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kOrphan},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kOrphan}},
       0},
      {"orphan: no first fragment seen",
       {{"middle", Op::track, 1, 1480, 1480, true, kDrop, kOrphan},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kOrphan}},
       0},
      {"first not decided yet: no entry, later pieces are orphans until it is",
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
      {"duplicate first after decide(allowed): overlap, the rest is denied",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"first again, other bytes", Op::track, 1, 0, 1480, true, kDrop, kOverlap},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kDenied}},
       1},
      {"duplicate first after a passed second: overlap, the rest is denied",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"first again", Op::track, 1, 0, 1480, true, kDrop, kOverlap},
        {"last", Op::track, 1, 2960, 100, false, kDrop, kDenied}},
       1},
      {"two firsts classified before either decision: the second decision denies",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"first again: nothing recorded yet", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow the first", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"allow the copy: refused", Op::allow, 1, 0, 1480, true, kDrop, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"a denied copy of a recorded first also denies the datagram",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"deny a copy", Op::deny, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kDrop, kDenied}},
       1},
      {"a denied first, then an allowed copy: recorded as a new datagram",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"deny", Op::deny, 1, 0, 1480, true, kFirst, kNone},
        {"first again", Op::track, 1, 0, 1480, true, kFirst, kNone},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone},
        {"second", Op::track, 1, 1480, 1480, true, kAllowed, kNone}},
       1},
      {"side: an inbound copy of fragment 2 is an orphan, the outbound one passes",
       {{"outbound first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"inbound copy of fragment 2", Op::track, 1, 1480, 1480, true, kDrop, kOrphan, 0, kOut},
        {"genuine outbound fragment 2", Op::track, 1, 1480, 1480, true, kAllowed, kNone, 0, kIn},
        {"inbound copy of the last", Op::track, 1, 2960, 100, false, kDrop, kOrphan, 0, kOut},
        {"outbound last completes", Op::track, 1, 2960, 100, false, kAllowed, kNone, 0, kIn}},
       0},
      {"side: an inbound first with the same id is another datagram",
       {{"outbound first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"allow outbound", Op::allow, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"inbound first: no overlap", Op::track, 1, 0, 1480, true, kFirst, kNone, 0, kOut},
        {"deny inbound", Op::deny, 1, 0, 1480, true, kFirst, kNone, 0, kOut},
        {"outbound second passes", Op::track, 1, 1480, 1480, true, kAllowed, kNone, 0, kIn},
        {"inbound second: orphan", Op::track, 1, 1480, 1480, true, kDrop, kOrphan, 0, kOut}},
       1},
      {"side: an inbound overlap does not deny the outbound datagram",
       {{"outbound first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone, 0, kIn},
        {"inbound first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0, kOut},
        {"allow inbound", Op::allow, 1, 0, 1480, true, kFirst, kNone, 0, kOut},
        {"inbound duplicate first", Op::track, 1, 0, 1480, true, kDrop, kOverlap, 0, kOut},
        {"inbound second: denied", Op::track, 1, 1480, 1480, true, kDrop, kDenied, 0, kOut},
        {"outbound second passes", Op::track, 1, 1480, 1480, true, kAllowed, kNone, 0, kIn}},
       2},
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
        {"second of 2", Op::track, 2, 1480, 1480, true, kDrop, kOrphan},
        {"second of 1", Op::track, 1, 1480, 1480, true, kAllowed, kNone},
        {"orphan id 3", Op::track, 3, 1480, 1480, true, kDrop, kOrphan}},
       1},
      {"expiry: the datagram lives kTimeoutNs from its decision",
       {{"first", Op::track, 1, 0, 1480, true, kFirst, kNone, 0},
        {"allow", Op::allow, 1, 0, 1480, true, kFirst, kNone, 1},
        {"just before", Op::track, 1, 1480, 8, true, kAllowed, kNone, kT},
        {"at the timeout", Op::track, 1, 1488, 8, true, kDrop, kOrphan, 1 + kT},
        {"a new datagram with the same id", Op::track, 1, 0, 1480, true, kFirst, kNone, 1 + kT},
        {"allow it", Op::allow, 1, 0, 1480, true, kFirst, kNone, 1 + kT},
        {"its second", Op::track, 1, 1480, 8, true, kAllowed, kNone, 1 + kT}},
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
    uint8_t side = kIn;  // of the second piece (the first arrives inside)
  };
  const Case cases[] = {
      {"identical", [](ParsedPacket&) {}, true},
      {"other source", [](ParsedPacket& p) { p.l34.src[3] = 3; }, false},
      {"other destination", [](ParsedPacket& p) { p.l34.dst[3] = 3; }, false},
      {"other vlan", [](ParsedPacket& p) { p.vlan = 12; }, false},
      {"other side", [](ParsedPacket&) {}, false, kOut},
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
    ASSERT_EQ(t.track(first, kIn, 0, &why), Outcome::first);
    ASSERT_TRUE(t.decide(first, kIn, true, 0));
    ParsedPacket second = frag(v6 ? 6 : 4, 77, 1480, 100, false);
    c.mutate(second);
    const Outcome o = t.track(second, c.side, 1, &why);
    if (c.same_datagram) {
      EXPECT_EQ(o, Outcome::allowed);
    } else {
      EXPECT_EQ(o, Outcome::drop);
      EXPECT_EQ(why, DropReason::frag_orphan);
    }
  }
}

TEST(FragTable, NoEntryWithoutAllowedFragmentedDatagram) {
  struct Case {
    const char* desc;
    ParsedPacket p;
    bool allowed;
  };
  ParsedPacket whole = frag(4, 5, 0, 100, false);
  whole.is_fragment = false;
  const Case cases[] = {
      {"IPv6 atomic fragment, allowed", frag(6, 5, 0, 100, false), true},
      {"IPv4 offset 0 without MF, allowed", frag(4, 5, 0, 100, false), true},
      {"not a fragment, allowed", whole, true},
      {"IPv4 first fragment, denied", frag(4, 5, 0, 1480, true), false},
      {"IPv6 first fragment, denied", frag(6, 5, 0, 1480, true), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    FragTable t;
    ASSERT_TRUE(t.init(16, 7));
    DropReason why;
    EXPECT_EQ(t.track(c.p, kIn, 0, &why), Outcome::first);
    EXPECT_EQ(t.in_use(), 0u);  // track() never creates an entry
    EXPECT_TRUE(t.decide(c.p, kIn, c.allowed, 0));
    EXPECT_EQ(t.in_use(), 0u);
  }
}

TEST(FragTable, FullTableFailsClosedAndExpiryFreesIt) {
  for (const uint8_t family : {uint8_t{4}, uint8_t{6}}) {
    SCOPED_TRACE(family == 4 ? "IPv4" : "IPv6");
    FragTable t;
    ASSERT_TRUE(t.init(4, 9));  // one set of four ways
    DropReason why;
    for (uint32_t id = 1; id <= 4; ++id) {
      const ParsedPacket p = frag(family, id, 0, 1480, true);
      EXPECT_EQ(t.track(p, kIn, id, &why), Outcome::first);
      EXPECT_TRUE(t.decide(p, kIn, true, id));
    }
    EXPECT_EQ(t.in_use(), 4u);
    // Full of allowed datagrams: a fifth cannot be recorded; a denied one needs no room.
    const ParsedPacket fifth = frag(family, 5, 0, 1480, true);
    EXPECT_EQ(t.track(fifth, kIn, 10, &why), Outcome::first);
    EXPECT_FALSE(t.decide(fifth, kIn, true, 10));
    EXPECT_TRUE(t.decide(fifth, kIn, false, 10));
    EXPECT_EQ(t.in_use(), 4u);
    EXPECT_EQ(t.track(frag(family, 5, 1480, 100, false), kIn, 10, &why), Outcome::drop);
    EXPECT_EQ(why, DropReason::frag_orphan);
    // Completing datagram 2 frees its way.
    EXPECT_EQ(t.track(frag(family, 2, 1480, 100, false), kIn, 11, &why), Outcome::allowed);
    EXPECT_EQ(t.in_use(), 3u);
    EXPECT_TRUE(t.decide(fifth, kIn, true, 12));
    const ParsedPacket sixth = frag(family, 6, 0, 1480, true);
    EXPECT_FALSE(t.decide(sixth, kIn, true, 13));
    // Datagram 1 (decided at t=1) expires at 1 + kT: its way is reused.
    EXPECT_TRUE(t.decide(sixth, kIn, true, 1 + kT));
    EXPECT_EQ(t.track(frag(family, 1, 1480, 100, false), kIn, 1 + kT, &why), Outcome::drop);
    EXPECT_EQ(why, DropReason::frag_orphan);
    EXPECT_EQ(t.track(frag(family, 6, 1480, 100, false), kIn, 1 + kT, &why), Outcome::allowed);
  }
}

// An inbound flood of first fragments (denied, or never decided) holds no slot: a genuine
// outbound fragmented datagram is still recorded and passes.
TEST(FragTable, InboundFloodDoesNotStarveOutbound) {
  constexpr uint32_t kCap = 64;
  struct Case {
    const char* desc;
    bool decided;  // the flood's first fragments reach decide(denied)
  };
  const Case cases[] = {{"flood denied", true}, {"flood tracked only", false}};
  for (const uint8_t family : {uint8_t{4}, uint8_t{6}}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(c.desc) + (family == 4 ? " (IPv4)" : " (IPv6)"));
      FragTable t;
      ASSERT_TRUE(t.init(kCap, 99));
      DropReason why;
      for (uint32_t id = 0; id < kCap * 2; ++id) {
        const ParsedPacket p = frag(family, 1000 + id, 0, 1480, true);
        ASSERT_EQ(t.track(p, kOut, 5, &why), Outcome::first);
        if (c.decided) {
          ASSERT_TRUE(t.decide(p, kOut, false, 5));
        }
        ASSERT_EQ(t.track(frag(family, 1000 + id, 1480, 8, false), kOut, 5, &why), Outcome::drop);
        ASSERT_EQ(why, DropReason::frag_orphan);
      }
      EXPECT_EQ(t.in_use(), 0u);
      const ParsedPacket q = frag(family, 7, 0, 1480, true);
      EXPECT_EQ(t.track(q, kIn, 6, &why), Outcome::first);
      EXPECT_TRUE(t.decide(q, kIn, true, 6));
      EXPECT_EQ(t.track(frag(family, 7, 1480, 60, false), kIn, 7, &why), Outcome::allowed);
      EXPECT_EQ(t.in_use(), 0u);  // complete
    }
  }
}

TEST(FragTable, AllowedFloodStaysBounded) {
  FragTable t;
  ASSERT_TRUE(t.init(256, 1234));
  DropReason why;
  unsigned recorded = 0, full = 0;
  for (uint32_t id = 0; id < 100000; ++id) {
    const ParsedPacket p = frag(4, id, 0, 1480, true);
    ASSERT_EQ(t.track(p, kOut, 1000, &why), Outcome::first);
    if (t.decide(p, kOut, true, 1000)) {
      ++recorded;
    } else {
      ++full;
    }
    ASSERT_LE(t.in_use(), 256u);
  }
  EXPECT_EQ(recorded, 256u);
  EXPECT_EQ(recorded + full, 100000u);
  // After the lifetime everything is reusable again.
  EXPECT_TRUE(t.decide(frag(4, 200000, 0, 1480, true), kOut, true, 1000 + kT));
}

TEST(FragTable, NotInitialisedFailsClosed) {
  FragTable t;
  DropReason why;
  const ParsedPacket first = frag(4, 1, 0, 1480, true);
  EXPECT_EQ(t.track(first, kIn, 0, &why), Outcome::first);
  EXPECT_FALSE(t.decide(first, kIn, true, 0));
  EXPECT_TRUE(t.decide(first, kIn, false, 0));
  EXPECT_EQ(t.track(frag(4, 1, 1480, 100, false), kIn, 0, &why), Outcome::drop);
  EXPECT_EQ(why, DropReason::frag_orphan);
  EXPECT_FALSE(t.init(0, 1));
}

}  // namespace
}  // namespace egw
