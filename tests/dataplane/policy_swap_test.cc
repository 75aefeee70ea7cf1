// The policy swap over the real shared-memory channel, in one process: egw-mgmt's
// Publisher on one side, the dataplane's ControlChannel + PolicySwap on the other,
// and worker threads that pick up policies and report quiescence like lcores do.
#include <gtest/gtest.h>
#include <rte_random.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/control.h"
#include "dataplane/flow_snapshot.h"
#include "dataplane/policy_swap.h"
#include "dataplane/stats.h"
#include "mgmt/compiler.h"
#include "mgmt/publisher.h"

namespace egw {
namespace {

using namespace std::chrono_literals;

std::string policy_json(int port) {
  return R"({"schema":1,"default_action":"deny","services":{"web":{"cidrs":["198.18.1.0/24"]}},
    "rulesets":[{"name":"r","rules":[{"id":"p)" + std::to_string(port) +
         R"(","from":["web"],"proto":"tcp","ports":[)" + std::to_string(port) +
         R"(],"to":{"cidrs":["198.19.1.0/24"]},"action":"allow"}]}]})";
}

std::string blob_for(uint64_t version, int port) {
  auto r = mgmt::compile_document(policy_json(port), version);
  EXPECT_TRUE(r.errors.empty());
  return r.blob;
}

// A stand-in for a worker lcore: the same two calls per iteration as worker_main.
struct FakeWorker {
  WorkerCtx ctx;
  std::atomic<bool> run{true};
  std::atomic<bool> stalled{false};
  std::atomic<uint64_t> seen_version{0};
  std::thread t;
  void start(rte_rcu_qsbr* qsv, unsigned id) {
    t = std::thread([this, qsv, id] {
      rte_rcu_qsbr_thread_register(qsv, id);
      rte_rcu_qsbr_thread_online(qsv, id);
      while (run.load()) {
        if (stalled.load()) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        worker_refresh_policy(ctx);
        seen_version.store(ctx.policy_version);
        rte_rcu_qsbr_quiescent(qsv, id);
        std::this_thread::sleep_for(50us);
      }
      rte_rcu_qsbr_thread_offline(qsv, id);
      rte_rcu_qsbr_thread_unregister(qsv, id);
    });
  }
  void stop() {
    run.store(false);
    if (t.joinable()) t.join();
  }
};

// The dataplane's control thread, reduced to the channel and the swap.
struct FakeDataplane {
  ControlChannel channel;
  StatsSegment stats;
  FlowsSegment flows;
  std::unique_ptr<RuleSlots> slots;
  PolicySwap swap;
  std::atomic<bool> run{true};
  std::thread t;
  std::vector<WorkerCtx*> ctxs;
  bool start(const std::string& instance, std::vector<WorkerCtx*> workers) {
    ctxs = workers;
    std::string err;
    if (!swap.init(std::move(workers), &err) || !open(instance, &err)) {
      ADD_FAILURE() << err;
      return false;
    }
    slots = std::make_unique<RuleSlots>(&stats);
    swap.set_rule_slots(slots.get());
    t = std::thread([this] {
      while (run.load()) {
        channel.beat(monotonic_ns());
        shm::Msg m, a;
        while (channel.next_request(&m)) {
          if (m.type == shm::MsgType::flows) {
            snapshot_flows(ctxs, swap, m, &a);
          } else {
            swap.activate(m, &a);
            if (a.status == 0) channel.segment()->state.active_version.store(swap.version());
          }
          channel.respond(a);
        }
        swap.reclaim();
        std::this_thread::sleep_for(200us);
      }
    });
    return true;
  }
  // The shared-memory objects of one dataplane start, with a new boot id.
  bool open(const std::string& instance, std::string* err) {
    const uint64_t boot = (static_cast<uint64_t>(rte_rand()) | 1);
    const auto n = static_cast<uint32_t>(ctxs.size());
    if (!stats.create(instance, n, 16, boot, 1000000000, err) ||
        !flows.create(instance, n, boot, stats::Consumer::mgmt, err))
      return false;
    stats.publish();
    flows.publish();
    return channel.open(instance, boot, err);
  }
  void stop() {
    run.store(false);
    if (t.joinable()) t.join();
    channel.close();
  }
};

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 3000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

class PolicySwapTest : public testing::Test {
 protected:
  void SetUp() override {
    instance_ = "unit" + std::to_string(getpid());
    for (auto& w : workers_) {
      w = std::make_unique<FakeWorker>();
      WorkerConfig cfg;
      cfg.flow_capacity = 64;
      ASSERT_TRUE(worker_init(w->ctx, cfg, nullptr));
    }
    ASSERT_TRUE(dp_.start(instance_, {&workers_[0]->ctx, &workers_[1]->ctx}));
    for (unsigned i = 0; i < 2; ++i) workers_[i]->start(dp_.swap.qsbr(), i);
    pub_ = std::make_unique<mgmt::Publisher>(instance_);
    pub_->start([this] { ++connects_; });
    ASSERT_TRUE(wait_for([this] { return pub_->connected(); }));
  }
  void TearDown() override {
    pub_->stop();
    for (auto& w : workers_) w->stop();
    dp_.stop();
  }
  std::string instance_;
  std::unique_ptr<FakeWorker> workers_[2];
  FakeDataplane dp_;
  std::unique_ptr<mgmt::Publisher> pub_;
  std::atomic<int> connects_{0};
};

TEST_F(PolicySwapTest, ManyVersionsEachSeenByEveryWorkerAndOldOnesFreed) {
  EXPECT_EQ(connects_.load(), 1);
  for (uint64_t v = 1; v <= 60; ++v) {
    auto r = pub_->publish(v, blob_for(v, 1000 + static_cast<int>(v)), 2000ms);
    ASSERT_TRUE(r.active) << "version " << v << ": " << r.error;
    EXPECT_GE(r.activation_ms, 0.0);
    // Acknowledged only after the grace period: every worker already uses v.
    for (auto& w : workers_) EXPECT_EQ(w->seen_version.load(), v);
    // Freed by the control loop right after it answered.
    EXPECT_TRUE(wait_for([this] { return dp_.swap.retired() == 0; }))
        << "the old policy is freed after the grace period";
  }
  EXPECT_EQ(pub_->dataplane_version(), 60u);
  FlowRecord r{};
  r.policy_version = 7;
  r.rule_index = 0;
  dp_.swap.fill_rule_id(&r);
  EXPECT_STREQ(r.rule_id, "p1007") << "rule ids of earlier versions stay resolvable";
}

TEST_F(PolicySwapTest, CorruptOrMismatchedBlobRefusedOldPolicyStays) {
  ASSERT_TRUE(pub_->publish(1, blob_for(1, 80), 2000ms).active);
  std::string bad = blob_for(2, 81);
  bad[bad.size() - 3] ^= 0x55;  // body changed: checksum mismatch
  auto r = pub_->publish(2, bad, 2000ms);
  EXPECT_FALSE(r.active);
  EXPECT_NE(r.error.find("checksum"), std::string::npos) << r.error;
  auto m = pub_->publish(3, blob_for(4, 81), 2000ms);  // header says 4
  EXPECT_FALSE(m.active);
  EXPECT_NE(m.error.find("version"), std::string::npos) << m.error;
  EXPECT_EQ(dp_.swap.version(), 1u);
  for (auto& w : workers_) EXPECT_EQ(w->seen_version.load(), 1u);
}

TEST_F(PolicySwapTest, IdleWorkersStillCompleteTheSwap) {
  // Idle workers poll empty queues; they report quiescence every iteration anyway.
  for (uint64_t v = 1; v <= 3; ++v) ASSERT_TRUE(pub_->publish(v, blob_for(v, 90), 2000ms).active);
}

TEST_F(PolicySwapTest, StalledWorkerDelaysOnlyTheFreeing) {
  ASSERT_TRUE(pub_->publish(1, blob_for(1, 80), 2000ms).active);
  workers_[1]->stalled.store(true);
  auto r = pub_->publish(2, blob_for(2, 81), 5000ms);
  EXPECT_FALSE(r.active);
  EXPECT_NE(r.error.find("quiescent"), std::string::npos) << r.error;
  EXPECT_EQ(dp_.swap.retired(), 1u) << "the old policy is kept while a worker may use it";
  workers_[1]->stalled.store(false);
  EXPECT_TRUE(wait_for([this] { return workers_[1]->seen_version.load() == 2; }));
  EXPECT_TRUE(wait_for([this] { return dp_.swap.retired() == 0; }));
}

TEST_F(PolicySwapTest, DataplaneRestartIsNoticedAndTriggersRepublish) {
  ASSERT_EQ(connects_.load(), 1);
  dp_.stop();
  EXPECT_TRUE(wait_for([this] { return !pub_->connected(); }));
  auto r = pub_->publish(1, blob_for(1, 80), 200ms);
  EXPECT_FALSE(r.active);
  // A new dataplane process: a new segment and boot id.
  dp_.run.store(true);
  dp_.channel.close();
  std::string err;
  ASSERT_TRUE(dp_.open(instance_, &err)) << err;
  dp_.t = std::thread([this] {
    while (dp_.run.load()) {
      dp_.channel.beat(monotonic_ns());
      shm::Msg m, a;
      while (dp_.channel.next_request(&m)) {
        dp_.swap.activate(m, &a);
        dp_.channel.respond(a);
      }
      std::this_thread::sleep_for(200us);
    }
  });
  EXPECT_TRUE(wait_for([this] { return connects_.load() == 2; }));
  EXPECT_TRUE(pub_->publish(1, blob_for(1, 80), 2000ms).active);
}

TEST_F(PolicySwapTest, FlowSnapshotCopiesLiveFlowsOfEveryWorker) {
  ASSERT_TRUE(pub_->publish(1, blob_for(1, 80), 2000ms).active);
  // Flows as a worker would have made them (the table is the worker's; the fake
  // worker thread only refreshes policies, so inserting here does not race).
  for (unsigned wi = 0; wi < 2; ++wi) {
    for (uint16_t i = 0; i < 3; ++i) {
      FlowKey k{};
      k.family = 4;
      k.proto = 6;
      k.inside_port = static_cast<uint16_t>(40000 + wi * 10 + i);
      k.remote_port = 80;
      FlowEntry* e = workers_[wi]->ctx.flows.insert(k, workers_[wi]->ctx.flows.hash(k), 1);
      ASSERT_NE(e, nullptr);
      e->verdict = Verdict::allow;
      e->rule_index = 0;
      e->policy_version = 1;
      e->pkts[0] = 5;
      if (wi == 1 && i == 2) {  // this one has its name, in the worker's side table
        l7::FlowName n;
        n.app = l7::AppProto::http;
        n.has_name = true;
        n.name.len = 11;
        std::memcpy(n.name.buf, "example.com", 11);
        ASSERT_TRUE(flow_name_keep(workers_[wi]->ctx, *e, n));
      }
    }
  }
  std::vector<FlowRecord> recs;
  std::string err;
  ASSERT_TRUE(pub_->flows(100, &recs, &err, 2000ms)) << err;
  ASSERT_EQ(recs.size(), 6u);
  unsigned named = 0;
  for (const FlowRecord& r : recs) {
    EXPECT_EQ(r.reason, EndReason::active);
    EXPECT_STREQ(r.rule_id, "p80");
    EXPECT_EQ(r.pkts[0], 5u);
    const std::string json = flow_record_json(r);
    if (r.key.inside_port == 40012) {
      ++named;
      EXPECT_NE(json.find(R"("app_proto":"http","http":{"hostname":"example.com"})"),
                std::string::npos)
          << "the name crosses to egw-mgmt: " << json;
    } else {
      EXPECT_EQ(r.app.app, l7::AppProto::unknown);
      EXPECT_NE(json.find(R"("app_proto":"unknown","verdict")"), std::string::npos) << json;
    }
  }
  EXPECT_EQ(named, 1u);
  ASSERT_TRUE(pub_->flows(4, &recs, &err, 2000ms)) << err;
  EXPECT_EQ(recs.size(), 4u) << "the limit holds";
}

TEST_F(PolicySwapTest, StatsSegmentIsReadByMgmt) {
  ASSERT_TRUE(pub_->publish(1, blob_for(1, 80), 2000ms).active);
  // What workers and the control thread write, egw-mgmt reads: counters summed over
  // workers, the rule named by its slot.
  dp_.stats.worker(0)->counters.rx_packets = 7;
  dp_.stats.worker(1)->counters.rx_packets = 5;
  dp_.stats.worker(1)->counters.drop(DropReason::policy_deny);
  const uint16_t slot = dp_.swap.current()->rule_slot(0);
  ASSERT_GE(slot, stats::kFirstRuleSlot);
  auto* rules = const_cast<stats::RuleCounters*>(dp_.stats.worker_rules(1));
  rules[slot].hits = 3;
  rules[slot].rtt.add(180);
  dp_.stats.control_begin();
  dp_.stats.control()->rx_packets[0] = 12345;
  dp_.stats.control_end();
  mgmt::StatsView v;
  ASSERT_TRUE(pub_->stats(&v));
  EXPECT_EQ(v.workers, 2u);
  EXPECT_EQ(v.total.rx_packets, 12u);
  EXPECT_EQ(v.total.drop_count(DropReason::policy_deny), 1u);
  EXPECT_EQ(v.control.rx_packets[0], 12345u);
  bool found = false;
  for (const mgmt::RuleStats& r : v.rules) {
    if (r.id != "p80") continue;
    found = true;
    EXPECT_TRUE(r.active);
    EXPECT_EQ(r.c.hits, 3u);
    EXPECT_EQ(r.c.rtt.bucket[stats::hist_bucket(180)], 1u);
    EXPECT_EQ(r.c.rtt.sum_us, 180u);
  }
  EXPECT_TRUE(found) << "rule p80 has a slot of its own";
}

}  // namespace
}  // namespace egw
