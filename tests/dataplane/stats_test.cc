// The stats segment: its layout as a reader checks it, rule slots kept across policy
// versions (and reused, with their base subtracted, when they run out), and what
// egw-mgmt's reader makes of it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/policy.h"
#include "dataplane/stats.h"
#include "mgmt/compiler.h"
#include "mgmt/stats_reader.h"

namespace egw {
namespace {

// A policy whose rules have these ids (one TCP port each), at version v.
std::unique_ptr<RuntimePolicy> policy_with(const std::vector<std::string>& ids, uint64_t v) {
  std::string rules;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) rules += ",";
    rules += R"({"id":")" + ids[i] + R"(","from":["web"],"proto":"tcp","ports":[)" +
             std::to_string(1000 + i) + R"(],"to":{"cidrs":["198.19.1.0/24"]},"action":"allow"})";
  }
  const std::string doc =
      R"({"schema":1,"default_action":"deny","services":{"web":{"cidrs":["198.18.1.0/24"]}},)"
      R"("rulesets":[{"name":"r","rules":[)" +
      rules + "]}]}";
  auto r = mgmt::compile_document(doc, v);
  EXPECT_TRUE(r.errors.empty());
  std::string err;
  auto p =
      RuntimePolicy::load(reinterpret_cast<const uint8_t*>(r.blob.data()), r.blob.size(), &err);
  EXPECT_TRUE(p) << err;
  return p;
}

// Slots for a policy of these rule ids (the policy is freed at once: each holds 64 MiB
// of rte_lpm tables).
std::vector<uint16_t> assign(RuleSlots& slots, const std::vector<std::string>& ids, uint64_t v) {
  return slots.assign(*policy_with(ids, v));
}

class StatsTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(seg_.create("stats" + std::to_string(getpid()), 2, kSlots, 42, 2600000000, &err))
        << err;
    seg_.publish();
  }
  // Counts n hits of `slot` on worker w, as the worker would.
  void hit(uint32_t w, uint16_t slot, uint64_t n) {
    const_cast<stats::RuleCounters*>(seg_.worker_rules(w))[slot].hits += n;
  }
  mgmt::StatsView read() {
    mgmt::StatsView v;
    mgmt::read_stats(seg_.header(), &v);
    return v;
  }
  uint64_t hits_of(const std::string& id) {
    for (const mgmt::RuleStats& r : read().rules)
      if (r.id == id) return r.c.hits;
    ADD_FAILURE() << id << " has no slot";
    return 0;
  }
  static constexpr uint32_t kSlots = 6;  // two kept + four for rules
  StatsSegment seg_;
};

TEST_F(StatsTest, HeaderIsCheckedByTheReader) {
  const size_t size = stats::stats_layout(2, kSlots).size;
  std::string err;
  ASSERT_TRUE(mgmt::stats_header_ok(seg_.header(), size, &err)) << err;
  struct Case {
    const char* name;
    void (*corrupt)(stats::StatsHeader&);
    size_t size;
    const char* want;
  } cases[] = {
      {"no magic yet", [](stats::StatsHeader& h) { h.magic = 0; }, size, "not ready"},
      {"another ABI", [](stats::StatsHeader& h) { h.abi_version = 99; }, size, "ABI 99"},
      {"offsets not this build's", [](stats::StatsHeader& h) { h.rules_offset += 64; }, size,
       "layout"},
      {"more workers than mapped", [](stats::StatsHeader& h) { h.workers = 3; }, size, "layout"},
      {"drop reasons of another build", [](stats::StatsHeader& h) { --h.drop_reasons; }, size,
       "layout"},
      {"object shorter than the header says", [](stats::StatsHeader&) {}, size - 64, "layout"},
      {"object shorter than a header", [](stats::StatsHeader&) {}, 16, "smaller"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<char> copy(size);
    std::memcpy(copy.data(), seg_.header(), size);
    c.corrupt(*reinterpret_cast<stats::StatsHeader*>(copy.data()));
    err.clear();
    EXPECT_FALSE(mgmt::stats_header_ok(copy.data(), c.size, &err));
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
}

TEST_F(StatsTest, RulesKeepTheirSlotsAcrossVersions) {
  RuleSlots slots(&seg_);
  const std::vector<uint16_t> s1 = assign(slots, {"a", "b"}, 1);
  ASSERT_EQ(s1.size(), 2u);
  EXPECT_EQ(s1[0], stats::kFirstRuleSlot);
  EXPECT_EQ(s1[1], stats::kFirstRuleSlot + 1);
  hit(0, s1[0], 5);
  hit(1, s1[0], 2);
  // Reordered, one gone, one new: "a" keeps its slot (and its counts) at a new index.
  const std::vector<uint16_t> s2 = assign(slots, {"c", "a"}, 2);
  EXPECT_EQ(s2[1], s1[0]);
  EXPECT_EQ(s2[0], stats::kFirstRuleSlot + 2);
  EXPECT_EQ(hits_of("a"), 7u);
  bool b_inactive = false;
  for (const mgmt::RuleStats& r : read().rules) {
    if (r.id == "b") {
      b_inactive = !r.active;
    } else {
      EXPECT_TRUE(r.active) << r.id;
    }
  }
  EXPECT_TRUE(b_inactive) << "a rule out of the policy keeps its counters, marked inactive";
}

TEST_F(StatsTest, FullSlotsAreReusedFromTheRuleLongestGone) {
  RuleSlots slots(&seg_);
  const std::vector<uint16_t> s1 = assign(slots, {"a", "b", "c", "d"}, 1);
  hit(0, s1[0], 10);                  // a
  hit(1, s1[1], 20);                  // b
  assign(slots, {"b", "c", "d"}, 2);  // a leaves
  assign(slots, {"c", "d"}, 3);       // b leaves later
  // e needs a slot: a's, out of the policy since version 2 (b only since 3).
  const std::vector<uint16_t> s4 = assign(slots, {"c", "d", "e"}, 4);
  EXPECT_EQ(s4[2], s1[0]);
  EXPECT_EQ(hits_of("e"), 0u) << "the slot's earlier counts are its base";
  hit(0, s4[2], 3);
  EXPECT_EQ(hits_of("e"), 3u);
  EXPECT_EQ(hits_of("b"), 20u);
  // f and g: b's slot, then none left; g counts under "(other)".
  const std::vector<uint16_t> s5 = assign(slots, {"c", "d", "e", "f", "g"}, 5);
  EXPECT_EQ(s5[3], s1[1]);
  EXPECT_EQ(s5[4], stats::kSlotOther);
  const mgmt::StatsView v = read();
  EXPECT_EQ(v.control.rule_slots_used, 4u);
  EXPECT_EQ(v.control.rule_slots_reused, 2u);
  EXPECT_EQ(v.control.rules_without_slot, 1u);
}

TEST_F(StatsTest, WorkerCountersAreSummed) {
  seg_.worker(0)->counters.rx_packets = 3;
  seg_.worker(1)->counters.rx_packets = 4;
  seg_.worker(1)->counters.drop(DropReason::tcp_invalid);
  seg_.control_begin();
  seg_.control()->flows_active = 9;
  seg_.control_end();
  const mgmt::StatsView v = read();
  EXPECT_EQ(v.workers, 2u);
  EXPECT_EQ(v.tsc_hz, 2600000000u);
  EXPECT_EQ(v.total.rx_packets, 7u);
  ASSERT_EQ(v.per_worker.size(), 2u);
  EXPECT_EQ(v.per_worker[1].rx_packets, 4u);
  EXPECT_EQ(v.total.drop_count(DropReason::tcp_invalid), 1u);
  EXPECT_EQ(v.control.flows_active, 9u);
  ASSERT_GE(v.rules.size(), 2u);
  EXPECT_EQ(v.rules[0].id, stats::kDefaultLabel);
  EXPECT_EQ(v.rules[1].id, stats::kOtherLabel);
}

TEST(StatsHistogram, BucketsAreUpperBoundsInclusive) {
  struct Case {
    uint32_t us;
    unsigned bucket;
  } cases[] = {{0, 0},
               {100, 0},
               {101, 1},
               {250, 1},
               {999, 3},
               {1000, 3},
               {5000000, 14},
               {5000001, stats::kHistBounds},
               {0xffffffffu, stats::kHistBounds}};
  for (const Case& c : cases) EXPECT_EQ(stats::hist_bucket(c.us), c.bucket) << c.us;
}

}  // namespace
}  // namespace egw
