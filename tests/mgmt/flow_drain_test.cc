// The flow-record path from a worker's ring to flows.jsonl: the ring itself (index
// wrap-around, a full ring), the drain (a reader that restarts, rotation, naming a
// rule by its slot, a dataplane that writes its own log) on real shared memory.
#include <gtest/gtest.h>
#include <json/json.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/stats.h"
#include "mgmt/flow_drain.h"
#include "tests/support/temp_dir.h"

namespace egw::mgmt {
namespace {

struct Rec {
  uint64_t id;
};

TEST(SpscRing, IndicesWrapAround) {
  // Start a few slots before 2^32: head and tail wrap while the ring holds records.
  struct Case {
    const char* name;
    uint32_t start;
    unsigned rounds;
  } cases[] = {
      {"from zero", 0, 3},
      {"just before the wrap", 0xffffffffu - 5, 3},
      {"at the wrap", 0xffffffffu, 2},
      {"far past the ring's size before the wrap", 0xffffffffu - 100, 5},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto ring = std::make_unique<SpscRing<Rec, 8>>();
    ring->start_at(c.start);
    uint64_t next_in = 0, next_out = 0;
    for (unsigned r = 0; r < c.rounds; ++r) {
      while (ring->push({next_in})) ++next_in;  // fill it
      EXPECT_EQ(ring->size(), 8u);
      Rec v;
      for (int i = 0; i < 5 && ring->pop(&v); ++i) EXPECT_EQ(v.id, next_out++);  // partly empty
    }
    Rec v;
    while (ring->pop(&v)) EXPECT_EQ(v.id, next_out++);
    EXPECT_EQ(next_out, next_in) << "every record once, in order";
    EXPECT_EQ(ring->size(), 0u);
  }
}

TEST(SpscRing, FullRingRefusesWithoutOverwriting) {
  auto ring = std::make_unique<SpscRing<Rec, 4>>();
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring->push({i}));
  EXPECT_FALSE(ring->push({99})) << "full: the producer counts a loss, nothing is overwritten";
  EXPECT_EQ(ring->reserve(), nullptr);
  Rec v;
  ASSERT_TRUE(ring->pop(&v));
  EXPECT_EQ(v.id, 0u);
  Rec* slot = ring->reserve();  // room again: filled in place
  ASSERT_NE(slot, nullptr);
  slot->id = 4;
  ring->commit();
  for (uint64_t want = 1; want <= 4; ++want) {
    ASSERT_TRUE(ring->pop(&v));
    EXPECT_EQ(v.id, want);
  }
  EXPECT_FALSE(ring->pop(&v));
}

// A dataplane's objects under a test instance name, and the Segments view a Publisher
// would hand the drain.
class DrainTest : public testing::Test {
 protected:
  void SetUp() override {
    instance_ = "drain" + std::to_string(getpid());
    std::string err;
    ASSERT_TRUE(stats_.create(instance_, 2, 8, 77, 1000000000, &err)) << err;
    ASSERT_TRUE(flows_.create(instance_, 2, 77, stats::Consumer::mgmt, &err)) << err;
    stats_.publish();
    flows_.publish();
    seg_.stats = stats_.header();
    seg_.flows = flows_.data();
    seg_.boot_id = 77;
  }

  FlowRecord record(uint64_t id, uint16_t rule_index, uint16_t slot, const char* rule_id) {
    FlowRecord r{};
    r.key.family = 4;
    r.key.proto = 6;  // TCP
    r.key.inside_port = static_cast<uint16_t>(id);
    r.key.remote_port = 443;
    r.flow_id = id;
    r.verdict = Verdict::allow;
    r.rule_index = rule_index;
    r.rule_slot = slot;
    snprintf(r.rule_id, sizeof r.rule_id, "%s", rule_id);
    return r;
  }

  static std::vector<Json::Value> lines(const std::string& path) {
    std::vector<Json::Value> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      Json::Value v;
      Json::CharReaderBuilder b;
      std::string errs;
      std::istringstream s(line);
      EXPECT_TRUE(Json::parseFromStream(b, s, &v, &errs)) << line;
      out.push_back(v);
    }
    return out;
  }

  std::string instance_;
  StatsSegment stats_;
  FlowsSegment flows_;
  Publisher pub_{"unused"};
  Publisher::Segments seg_;
  test::TempDir dir_{"drain"};
};

TEST_F(DrainTest, ReaderThatRestartsLosesAndRepeatsNothing) {
  const std::string path = dir_.path() + "/flows.jsonl";
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(flows_.ring(i % 2)->push(record(i, 0, 2, "web")));
  {
    FlowDrain first(pub_, {path, 1ull << 30, 5});
    std::string err;
    ASSERT_TRUE(first.open(&err)) << err;
    EXPECT_EQ(first.drain_once(seg_), 10u);
  }  // egw-mgmt stops; the workers go on
  for (uint64_t i = 10; i < 15; ++i) ASSERT_TRUE(flows_.ring(1)->push(record(i, 0, 2, "web")));
  FlowDrain second(pub_, {path, 1ull << 30, 5});
  std::string err;
  ASSERT_TRUE(second.open(&err)) << err;
  EXPECT_EQ(second.drain_once(seg_), 5u) << "the ring's indices are in the segment";
  EXPECT_EQ(second.drain_once(seg_), 0u);
  const auto got = lines(path);
  ASSERT_EQ(got.size(), 15u);
  std::vector<bool> seen(15, false);
  for (const Json::Value& v : got) {
    const uint64_t id = v["flow_id"].asUInt64();
    ASSERT_LT(id, 15u);
    EXPECT_FALSE(seen[id]) << "flow " << id << " twice";
    seen[id] = true;
    EXPECT_EQ(v["rule_id"].asString(), "web");
  }
}

TEST_F(DrainTest, RuleIsNamedBySlotWhenTheWorkerCouldNot) {
  // The worker no longer had the deciding policy: the record names the slot only.
  snprintf(stats_.slots()[5].id, sizeof stats_.slots()[5].id, "%s", "api-stripe");
  const std::string path = dir_.path() + "/flows.jsonl";
  struct Case {
    uint16_t rule_index, slot;
    const char* rule_id;
    Json::Value want;
  } cases[] = {
      {3, 5, "", Json::Value("api-stripe")},
      {3, 5, "kept", Json::Value("kept")},                // named by the worker: kept
      {kNoRule, stats::kSlotDefault, "", Json::Value()},  // the default action: null
      {3, stats::kSlotOther, "", Json::Value("")},        // no slot of its own: unnamed
  };
  for (uint64_t i = 0; i < std::size(cases); ++i)
    ASSERT_TRUE(
        flows_.ring(0)->push(record(i, cases[i].rule_index, cases[i].slot, cases[i].rule_id)));
  FlowDrain d(pub_, {path, 1ull << 30, 5});
  std::string err;
  ASSERT_TRUE(d.open(&err)) << err;
  ASSERT_EQ(d.drain_once(seg_), std::size(cases));
  const auto got = lines(path);
  ASSERT_EQ(got.size(), std::size(cases));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i]["rule_id"], cases[i].want) << i;
}

TEST_F(DrainTest, RotatesBySizeKeepingTheNewestFiles) {
  const std::string path = dir_.path() + "/flows.jsonl";
  struct Case {
    const char* name;
    unsigned keep;
    unsigned passes;
    unsigned want_files;  // path and path.1 .. path.N that exist afterwards
  } cases[] = {
      {"keeps 2", 2, 6, 3},
      {"never rotates", 0, 6, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::filesystem::remove_all(dir_.path());
    std::filesystem::create_directories(dir_.path());
    FlowDrain d(pub_, {path, 4096, c.keep});
    std::string err;
    ASSERT_TRUE(d.open(&err)) << err;
    uint64_t id = 0, total = 0;
    for (unsigned p = 0; p < c.passes; ++p) {
      // About 4 KB a pass: each pass starts a new file once the first is full.
      for (int i = 0; i < 12; ++i) ASSERT_TRUE(flows_.ring(0)->push(record(id++, 0, 2, "web")));
      total += d.drain_once(seg_);
    }
    EXPECT_EQ(total, id);
    unsigned files = std::filesystem::exists(path) ? 1 : 0;
    for (unsigned i = 1; i <= 10; ++i)
      files += std::filesystem::exists(path + "." + std::to_string(i));
    EXPECT_EQ(files, c.want_files);
    EXPECT_EQ(d.counters().rotations.load() > 0, c.keep > 0);
    if (c.keep != 0) {
      for (const auto& e : std::filesystem::directory_iterator(dir_.path()))
        EXPECT_LE(std::filesystem::file_size(e.path()), 4096u) << e.path();
    }
  }
}

TEST_F(DrainTest, LeavesTheRingsToADataplaneWritingItsOwnLog) {
  FlowsSegment own;
  std::string err;
  ASSERT_TRUE(own.create(instance_ + "own", 1, 78, stats::Consumer::dataplane, &err)) << err;
  own.publish();
  ASSERT_TRUE(own.ring(0)->push(record(1, 0, 2, "web")));
  Publisher::Segments seg;
  seg.flows = own.data();
  FlowDrain d(pub_, {dir_.path() + "/flows.jsonl", 1ull << 30, 5});
  ASSERT_TRUE(d.open(&err)) << err;
  EXPECT_EQ(d.drain_once(seg), 0u);
  EXPECT_EQ(own.ring(0)->size(), 1u) << "the record stays for its consumer";
}

TEST(FlowDrainOpen, SaysWhatToFix) {
  Publisher pub("unused");
  FlowDrain d(pub, {"/nonexistent-dir/flows.jsonl", 1ull << 30, 5});
  std::string err;
  EXPECT_FALSE(d.open(&err));
  EXPECT_NE(err.find("/nonexistent-dir/flows.jsonl"), std::string::npos) << err;
}

}  // namespace
}  // namespace egw::mgmt
