// Rate limits, connection quotas and report-only rulesets in the worker pipeline:
// tables of packet sequences on the worker's clock, what passed, what was refused and
// how, the rule's counters and the flow records.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/worker.h"
#include "tests/support/dns_msg.h"
#include "tests/support/frames.h"
#include "tests/support/tls_hello.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

using Frame = std::vector<uint8_t>;

constexpr const char* kPolicy = R"({
  "schema": 1, "default_action": "deny",
  "services": { "web": { "cidrs": ["198.18.1.0/24"] }, "ci": { "cidrs": ["198.18.2.0/24"] } },
  "rulesets": [
    { "name": "candidates", "mode": "report", "rules": [
      { "id": "would-block-8080", "from": ["web"], "proto": "tcp", "ports": [8080],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "reject" },
      { "id": "would-block-name", "from": ["web"], "proto": "tcp", "ports": [8443],
        "to": { "domains": ["b.example"] }, "action": "reject" } ] },
    { "name": "t", "rules": [
      { "id": "syn-rate", "from": ["web"], "proto": "tcp", "ports": [80],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow",
        "rate_limit": { "new_flows_per_s": 10, "burst": 3 } },
      { "id": "syn-rate-src", "from": ["web", "ci"], "proto": "tcp", "ports": [81],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow",
        "rate_limit": { "new_flows_per_s": 1, "burst": 1, "per": "source", "over": "deny" } },
      { "id": "quota", "from": ["web"], "proto": "tcp", "ports": [82],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow", "max_flows": 2 },
      { "id": "bytes", "from": ["web"], "proto": "udp", "ports": [83],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow",
        "rate_limit": { "bytes_per_s": 3000, "bytes_burst": 3000 } },
      { "id": "http-8080", "from": ["web"], "proto": "tcp", "ports": [8080],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" },
      { "id": "tls-8443", "from": ["web"], "proto": "tcp", "ports": [8443],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" },
      { "id": "dns-limited", "from": ["web"], "proto": "udp", "ports": [53],
        "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow",
        "rate_limit": { "new_flows_per_s": 1, "burst": 1, "per": "source" } },
      { "id": "tls-named", "from": ["web"], "proto": "tcp", "ports": [443],
        "to": { "cidrs": ["198.19.1.0/24"], "domains": ["a.example"] }, "action": "allow",
        "rate_limit": { "new_flows_per_s": 1, "burst": 1 } } ] } ],
  "limits": { "tcp_closing_s": 1 }
})";

constexpr const char* kCli = "198.18.1.2";
constexpr const char* kCli2 = "198.18.1.3";
constexpr const char* kCi = "198.18.2.2";
constexpr const char* kSrv = "198.19.1.10";

Frame syn(const char* src, uint16_t sp, uint16_t dp) {
  return test::build_frame(test::tcp_spec(src, kSrv, sp, dp, kTcpSyn, 100, 0));
}
Frame rst_out(const char* src, uint16_t sp, uint16_t dp) {
  return test::build_frame(test::tcp_spec(src, kSrv, sp, dp, kTcpRst | kTcpAck, 101, 0));
}
Frame udp(const char* src, const char* dst, uint16_t sp, uint16_t dp, size_t len) {
  return test::build_frame(test::udp_spec(src, dst, sp, dp, Frame(len, 'u')));
}

enum class Want { pass, answer, drop };

struct Step {
  const char* what;
  Frame frame;
  Side from;
  uint64_t at_ms;
  Want want;
  DropReason reason = DropReason::count;
};

struct Case {
  const char* name;
  std::vector<Step> steps;
  uint32_t workers = 1;
  const char* rule;  // whose counters are checked
  uint64_t hits, rate_limited, over_quota, policed_out, policed_in;
};

std::vector<Case> cases() {
  std::vector<Case> v;
  {
    Case c{
        "new flows over 10/s (burst 3) are rejected: RST back", {}, 1, "syn-rate", 5, 2, 0, 0, 0};
    for (uint16_t i = 0; i < 5; ++i)
      c.steps.push_back({"SYN", syn(kCli, static_cast<uint16_t>(40000 + i), 80), kInside, 0,
                         i < 3 ? Want::pass : Want::answer, DropReason::policy_reject});
    v.push_back(std::move(c));
  }
  {
    Case c{"the bucket refills: one flow 100 ms later, none at 50 ms",
           {},
           1,
           "syn-rate",
           6,
           2,
           0,
           0,
           0};
    for (uint16_t i = 0; i < 4; ++i)
      c.steps.push_back({"SYN", syn(kCli, static_cast<uint16_t>(40100 + i), 80), kInside, 0,
                         i < 3 ? Want::pass : Want::answer, DropReason::policy_reject});
    c.steps.push_back({"SYN at 50 ms", syn(kCli, 40110, 80), kInside, 50, Want::answer,
                       DropReason::policy_reject});
    c.steps.push_back({"SYN at 100 ms", syn(kCli, 40111, 80), kInside, 100, Want::pass});
    v.push_back(std::move(c));
  }
  {
    Case c{"per source: each inside address has its own bucket; over: deny (silent)",
           {},
           1,
           "syn-rate-src",
           5,
           2,
           0,
           0,
           0};
    c.steps = {
        {"web host 1", syn(kCli, 41000, 81), kInside, 0, Want::pass},
        {"web host 1 again", syn(kCli, 41001, 81), kInside, 0, Want::drop, DropReason::policy_deny},
        {"web host 2", syn(kCli2, 41002, 81), kInside, 0, Want::pass},
        {"ci host", syn(kCi, 41003, 81), kInside, 0, Want::pass},
        {"ci host again", syn(kCi, 41004, 81), kInside, 0, Want::drop, DropReason::policy_deny},
    };
    v.push_back(std::move(c));
  }
  {
    Case c{"a budget is shared among workers: burst 3 over 2 workers is 2 here",
           {},
           2,
           "syn-rate",
           3,
           1,
           0,
           0,
           0};
    for (uint16_t i = 0; i < 3; ++i)
      c.steps.push_back({"SYN", syn(kCli, static_cast<uint16_t>(40200 + i), 80), kInside, 0,
                         i < 2 ? Want::pass : Want::answer, DropReason::policy_reject});
    v.push_back(std::move(c));
  }
  {
    Case c{"max_flows 2: the third concurrent flow is refused; one ends, a new one passes",
           {},
           1,
           "quota",
           4,
           0,
           1,
           0,
           0};
    c.steps = {
        {"flow 1", syn(kCli, 42000, 82), kInside, 0, Want::pass},
        {"flow 2", syn(kCli2, 42001, 82), kInside, 0, Want::pass},
        {"flow 3: over the quota", syn(kCli, 42002, 82), kInside, 0, Want::answer,
         DropReason::policy_reject},
        {"flow 1 resets", rst_out(kCli, 42000, 82), kInside, 1, Want::pass},
        // tcp_closing_s 1: the reset flow's entry goes at the next ageing past 1 s.
        {"flow 4 after flow 1 ended", syn(kCli, 42003, 82), kInside, 3000, Want::pass},
    };
    v.push_back(std::move(c));
  }
  {
    Case c{"bytes_per_s 3000 (burst 3000): each direction has its own bucket",
           {},
           1,
           "bytes",
           1,
           0,
           0,
           1,
           0};
    c.steps = {
        {"1000 B out", udp(kCli, kSrv, 43000, 83, 958), kInside, 0, Want::pass},
        {"1000 B out", udp(kCli, kSrv, 43000, 83, 958), kInside, 0, Want::pass},
        {"1000 B out", udp(kCli, kSrv, 43000, 83, 958), kInside, 0, Want::pass},
        {"1000 B out: over", udp(kCli, kSrv, 43000, 83, 958), kInside, 0, Want::drop,
         DropReason::policed},
        {"1000 B in: its own bucket", udp(kSrv, kCli, 83, 43000, 958), kOutside, 0, Want::pass},
        {"1000 B out 1/3 s later", udp(kCli, kSrv, 43000, 83, 958), kInside, 334, Want::pass},
    };
    v.push_back(std::move(c));
  }
  return v;
}

class WorkerLimitsTest : public testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("worker_limits", 2047, kPolicy, 3)); }
  static void TearDownTestSuite() { suite_.tear_down(); }
  // The stats slot of the rule with this id.
  static uint16_t slot_of_rule(const char* id) {
    const RuntimePolicy& p = *suite_.policy;
    for (uint16_t i = 0; i < p.rule_count(); ++i)
      if (std::string(p.rule_id(i)) == id) return p.rule_slot(i);
    ADD_FAILURE() << "no rule " << id;
    return stats::kSlotOther;
  }
  static inline test::SuiteState suite_;
};

TEST_P(WorkerLimitsTest, Steps) {
  const Case& c = GetParam();
  auto ring = std::make_unique<FlowRecordRing>();
  auto w = std::make_unique<WorkerCtx>();
  WorkerConfig cfg = test::worker_config(suite_.pool, 1024);
  cfg.workers = c.workers;
  ASSERT_TRUE(test::start_worker(*w, cfg, ring.get(), suite_.policy.get()));
  for (const Step& s : c.steps) {
    SCOPED_TRACE(s.what);
    const uint64_t now = test::at_ms(s.at_ms);
    for (int i = 0; i < 64; ++i) worker_housekeeping(*w, now);  // ages the whole table
    const WorkerCounters before = *w->counters;
    const test::Out out = test::send_frame(*w, suite_.pool, s.frame, s.from, now);
    const Side to = s.from == kInside ? kOutside : kInside;
    EXPECT_EQ(out.on(to).size(), s.want == Want::pass ? 1u : 0u);
    EXPECT_EQ(out.on(s.from).size(), s.want == Want::answer ? 1u : 0u) << "an answer back";
    if (s.want != Want::pass) {
      EXPECT_EQ(w->counters->drop_count(s.reason), before.drop_count(s.reason) + 1);
    }
  }
  const uint16_t slot = slot_of_rule(c.rule);
  const stats::RuleCounters& k = w->rules[slot];
  EXPECT_EQ(k.hits, c.hits);
  EXPECT_EQ(k.rate_limited, c.rate_limited);
  EXPECT_EQ(k.over_quota, c.over_quota);
  EXPECT_EQ(k.policed[0], c.policed_out);
  EXPECT_EQ(k.policed[1], c.policed_in);
  EXPECT_EQ(w->counters->flows_rate_limited, c.rate_limited);
  EXPECT_EQ(w->counters->flows_over_quota, c.over_quota);
  // Every refused flow's record names the limit that refused it.
  worker_flush(*w);
  uint64_t limited = 0;
  FlowRecord r;
  while (ring->pop(&r)) {
    if (r.limited == 0) continue;
    ++limited;
    EXPECT_STREQ(r.rule_id, c.rule);
    const std::string json = flow_record_json(r);
    EXPECT_NE(json.find(r.limited == 1 ? "\"limited\":\"rate\"" : "\"limited\":\"quota\""),
              std::string::npos)
        << json;
  }
  EXPECT_EQ(limited, c.rate_limited + c.over_quota);
}

INSTANTIATE_TEST_SUITE_P(Table, WorkerLimitsTest, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<Case>& i) {
                           return "case" + std::to_string(i.index);
                         });

// A worker of its own on kPolicy, recording into a ring, for the tests below.
class OneWorker : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(suite_.make("worker_limits_one", 511, kPolicy, 3));  // freed in TearDown
    ASSERT_TRUE(test::start_worker(*w_, test::worker_config(suite_.pool), ring_.get(),
                                   suite_.policy.get()));
  }
  void TearDown() override {
    w_.reset();
    suite_.tear_down();
  }
  // Ends every flow; their records by inside port.
  std::map<uint16_t, FlowRecord> records() {
    worker_flush(*w_);
    std::map<uint16_t, FlowRecord> out;
    FlowRecord r;
    while (ring_->pop(&r)) out[r.key.inside_port] = r;
    return out;
  }
  test::SuiteState suite_;
  std::unique_ptr<FlowRecordRing> ring_ = std::make_unique<FlowRecordRing>();
  std::unique_ptr<WorkerCtx> w_ = std::make_unique<WorkerCtx>();
};

// A report-only rule that would reject a flow changes nothing: the flow passes, its
// record says what the report rule would have done, and the rule counts a report hit.
TEST_F(OneWorker, ReportRuleSaysWhatItWouldHaveDone) {
  const test::Out out =
      test::send_frame(*w_, suite_.pool, syn(kCli, 44000, 8080), kInside, test::kT0);
  EXPECT_EQ(out.to_server.size(), 1u) << "report rules never decide";
  const test::Out other =
      test::send_frame(*w_, suite_.pool, syn(kCli, 44001, 80), kInside, test::kT0);
  EXPECT_EQ(other.to_server.size(), 1u);
  std::map<uint16_t, FlowRecord> recs = records();
  ASSERT_EQ(recs.size(), 2u);
  const FlowRecord& rep = recs[44000];
  EXPECT_EQ(rep.verdict, Verdict::allow);
  EXPECT_STREQ(rep.rule_id, "http-8080");
  ASSERT_TRUE(rep.has_report);
  EXPECT_STREQ(rep.report_rule_id, "would-block-8080");
  EXPECT_EQ(rep.report_verdict, static_cast<uint8_t>(Verdict::reject));
  const std::string json = flow_record_json(rep);
  EXPECT_NE(json.find(R"("report":{"rule_id":"would-block-8080","verdict":"reject"})"),
            std::string::npos)
      << json;
  EXPECT_FALSE(recs[44001].has_report) << "no report rule matched port 80";
  EXPECT_EQ(flow_record_json(recs[44001]).find("report"), std::string::npos);
  EXPECT_EQ(w_->rules[rep.report_slot].report_hits, 1u);
  EXPECT_EQ(w_->counters->report_decisions, 1u);
}

// A DNS flow refused by its rule's rate stays refused for its later queries (each
// query is decided again; the limit is taken once a flow), answered REFUSED.
TEST_F(OneWorker, DnsQueriesOfARefusedFlowStayRefused) {
  auto query = [&](uint16_t sport, uint64_t ms) {
    return test::send_frame(
        *w_, suite_.pool,
        test::build_frame(test::udp_spec(kCli, kSrv, sport, 53, test::dns_query("a.example"))),
        kInside, test::at_ms(ms));
  };
  EXPECT_EQ(query(5001, 0).to_server.size(), 1u) << "the first flow takes the token";
  for (uint64_t ms : {0, 10}) {
    const test::Out o = query(5002, ms);
    EXPECT_EQ(o.to_server.size(), 0u) << "over the rate at " << ms << " ms";
    EXPECT_EQ(o.to_client.size(), 1u) << "answered REFUSED";
  }
  std::map<uint16_t, FlowRecord> recs = records();
  EXPECT_EQ(recs[5001].verdict, Verdict::allow);
  EXPECT_EQ(recs[5002].verdict, Verdict::reject);
  EXPECT_EQ(recs[5002].limited, kLimitRate);
  EXPECT_EQ(w_->counters->flows_rate_limited, 1u) << "one flow refused, whatever its queries";
}

// A flow that waits for its name and is then refused by its rule's rate never gets its
// held request to the server.
TEST_F(OneWorker, HeldRequestOfAFlowRefusedByItsRateNeverReachesTheServer) {
  const test::Bytes hello = test::hello_stream(test::tls13_spec("a.example"));
  const test::Conn first =
      test::drive_tcp(*w_, suite_.pool, {kCli, kSrv, 45000, 443, 1000, 5000}, hello, {});
  EXPECT_EQ(first.server_bytes.size(), hello.size()) << "within the rate: released";
  const test::Conn second =
      test::drive_tcp(*w_, suite_.pool, {kCli, kSrv, 45001, 443, 1000, 5000}, hello, {});
  EXPECT_EQ(second.server_bytes.size(), 0u) << "over the rate: the held hello stays with egw";
  EXPECT_GE(second.rst_to_client, 1) << "reject: RST to the client";
  EXPECT_EQ(w_->counters->flows_rate_limited, 1u);
}

// A report rule with a name condition on a flow decided on its SYN (no enforcing rule
// needed the name): it judges the flow once its first bytes name it.
TEST_F(OneWorker, ReportRuleSeesTheNameOfAFlowDecidedWithoutIt) {
  const test::Bytes named = test::hello_stream(test::tls13_spec("b.example"));
  const test::Bytes other = test::hello_stream(test::tls13_spec("c.example"));
  const test::Conn a =
      test::drive_tcp(*w_, suite_.pool, {kCli, kSrv, 46000, 8443, 1000, 5000}, named, {});
  const test::Conn b =
      test::drive_tcp(*w_, suite_.pool, {kCli, kSrv, 46001, 8443, 1000, 5000}, other, {});
  EXPECT_EQ(a.server_bytes.size(), named.size()) << "report rules never decide";
  EXPECT_EQ(b.server_bytes.size(), other.size());
  std::map<uint16_t, FlowRecord> recs = records();
  ASSERT_TRUE(recs[46000].has_report);
  EXPECT_STREQ(recs[46000].report_rule_id, "would-block-name");
  EXPECT_EQ(recs[46000].report_verdict, static_cast<uint8_t>(Verdict::reject));
  EXPECT_STREQ(recs[46000].rule_id, "tls-8443");
  EXPECT_FALSE(recs[46001].has_report) << "c.example: no report rule";
  EXPECT_EQ(w_->counters->report_decisions, 1u);
}

}  // namespace
}  // namespace egw
