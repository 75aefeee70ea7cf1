// A flow's name as the worker keeps it (worker.h: FlowAux, LongNamePool): whole in the
// flow's FlowAux when it fits, else partly in a long-name slot; lost only when no slot is
// free, counted, and then never guessed at. Checked by kind of flow and length, through
// the flow records, and through a policy change that re-decides flows on their stored
// names.
#include <gtest/gtest.h>

#include <cstring>
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

using Bytes = std::vector<uint8_t>;

// A name of n characters: labels of up to 63 'a'..'z' (changing with `seed`), dots
// between them, ending in `tail`.
std::string name_of(size_t n, const std::string& tail = "", char seed = 'a') {
  std::string s;
  while (s.size() + tail.size() < n) {
    if (!s.empty() && (s.size() + 1) % 64 == 0) {
      s += '.';
    } else {
      s += static_cast<char>('a' + (seed - 'a' + s.size()) % 26);
    }
  }
  if (!s.empty() && s.back() == '.' && !tail.empty() && tail[0] == '.') s.back() = 'x';
  return s + tail;
}

l7::FlowName flow_name(l7::AppProto app, const std::string& alpn, const std::string& name,
                       bool ip_literal = false, bool ech = false) {
  l7::FlowName n;
  n.app = app;
  n.has_name = !name.empty() && !ip_literal;
  n.ip_literal = ip_literal;
  n.ech = ech;
  n.alpn_len = static_cast<uint8_t>(alpn.size());
  std::memcpy(n.alpn, alpn.data(), alpn.size());
  n.name.len = static_cast<uint8_t>(name.size());
  std::memcpy(n.name.buf, name.data(), name.size());
  return n;
}

std::string alpn_of(const l7::FlowName& n) {
  return std::string(n.alpn, n.alpn_len);
}
std::string name_in(const l7::FlowName& n) {
  return std::string(n.name.buf, n.name.len);
}

void expect_same(const l7::FlowName& got, const l7::FlowName& want) {
  EXPECT_EQ(got.app, want.app);
  EXPECT_EQ(got.has_name, want.has_name);
  EXPECT_EQ(got.ip_literal, want.ip_literal);
  EXPECT_EQ(got.ech, want.ech);
  EXPECT_EQ(alpn_of(got), alpn_of(want));
  EXPECT_EQ(name_in(got), name_in(want));
}

class WorkerNamesTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("worker_names_test", 2047)); }
  static void TearDownTestSuite() { suite_.tear_down(); }

  // A worker keeping at most `long_names` long names at once, running `policy`.
  void start(uint32_t long_names, const RuntimePolicy* policy = nullptr) {
    ring_ = std::make_unique<FlowRecordRing>();
    w_ = std::make_unique<WorkerCtx>();
    WorkerConfig cfg = test::worker_config(suite_.pool);
    cfg.l7_contexts = 8;
    cfg.long_names = long_names;
    ASSERT_TRUE(test::start_worker(*w_, cfg, ring_.get(), policy));
  }
  void TearDown() override {
    w_.reset();
    ring_.reset();
  }

  // A flow as a worker would have inserted it (proto, remote port, inside port).
  FlowEntry* insert(uint8_t proto, uint16_t port, uint16_t sport) {
    FlowKey k{};
    k.family = 4;
    k.proto = proto;
    k.inside_port = sport;
    k.remote_port = port;
    return w_->flows.insert(k, w_->flows.hash(k), test::kT0);
  }
  l7::FlowName load(const FlowEntry& e) {
    l7::FlowName n;
    flow_name_load(*w_, e.key, w_->aux[w_->flows.index_of(&e)], &n);
    return n;
  }
  std::map<uint16_t, FlowRecord> end_all() { return test::end_all_flows(*w_, *ring_); }

  static inline test::SuiteState suite_;
  std::unique_ptr<FlowRecordRing> ring_;
  std::unique_ptr<WorkerCtx> w_;
};

// Every kind of flow, around the room its FlowAux has for ALPN and name (TCP 48 bytes,
// UDP to port 53 43, other flows 60), up to the longest: kept whole, in the flow record
// too, and every long-name slot back once the flows ended.
TEST_F(WorkerNamesTest, KeptWholeAtEveryLength) {
  using l7::AppProto;
  struct Case {
    const char* what;
    uint8_t proto;
    uint16_t port;
    l7::FlowName name;
    bool long_name;  // needs a long-name slot
  };
  const std::string alpn32(32, 'p');
  const std::vector<Case> cases = {
      {"nothing seen", kProtoTcp, 443, l7::FlowName{}, false},
      {"protocol only", kProtoTcp, 443, flow_name(AppProto::tls, "", ""), false},
      {"tls, short", kProtoTcp, 443, flow_name(AppProto::tls, "h2", "a.example"), false},
      {"tls, exactly the room", kProtoTcp, 443, flow_name(AppProto::tls, "h2", name_of(46)), false},
      {"tls, one byte over", kProtoTcp, 443, flow_name(AppProto::tls, "h2", name_of(47)), true},
      {"tls, longest ALPN and name", kProtoTcp, 443,
       flow_name(AppProto::tls, alpn32, name_of(l7::kMaxName), false, true), true},
      {"tls, ALPN alone over the room", kProtoTcp, 443,
       flow_name(AppProto::tls, alpn32, name_of(17)), true},
      {"tls, IP literal", kProtoTcp, 443,
       flow_name(AppProto::tls, "", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true), false},
      {"http, longest name", kProtoTcp, 80, flow_name(AppProto::http, "", name_of(253)), true},
      {"dns, exactly the room", kProtoUdp, 53, flow_name(AppProto::dns, "", name_of(43)), false},
      {"dns, one byte over", kProtoUdp, 53, flow_name(AppProto::dns, "", name_of(44)), true},
      {"dns, longest name", kProtoUdp, 53, flow_name(AppProto::dns, "", name_of(253)), true},
      {"other udp, exactly the room", kProtoUdp, 443, flow_name(AppProto::quic, "h3", name_of(58)),
       false},
      {"other udp, one byte over", kProtoUdp, 443, flow_name(AppProto::quic, "h3", name_of(59)),
       true},
  };
  start(static_cast<uint32_t>(cases.size()));
  uint64_t longs = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.what);
    FlowEntry* e = insert(c.proto, c.port, static_cast<uint16_t>(1000 + i));
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(flow_name_keep(*w_, *e, c.name));
    longs += c.long_name;
    EXPECT_EQ(w_->counters->l7_names_long, longs);
    expect_same(load(*e), c.name);
  }
  EXPECT_EQ(w_->long_names.in_use(), longs);
  EXPECT_EQ(w_->counters->l7_names_lost, 0u);
  const auto records = end_all();
  ASSERT_EQ(records.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].what);
    expect_same(records.at(static_cast<uint16_t>(1000 + i)).app, cases[i].name);
  }
  EXPECT_EQ(w_->long_names.in_use(), 0u) << "every slot is back";
}

// A name is kept again over the one a flow had (its slot reused, none leaked).
TEST_F(WorkerNamesTest, KeptAgainReplacesTheName) {
  start(1);
  FlowEntry* e = insert(kProtoTcp, 443, 1000);
  ASSERT_NE(e, nullptr);
  const std::vector<l7::FlowName> names = {
      flow_name(l7::AppProto::tls, "h2", name_of(200)),
      flow_name(l7::AppProto::tls, "h2", name_of(220, "", 'q')),
      flow_name(l7::AppProto::tls, "h2", "short.example"),
      flow_name(l7::AppProto::http, "", name_of(100)),
  };
  for (const l7::FlowName& n : names) {
    EXPECT_TRUE(flow_name_keep(*w_, *e, n));
    expect_same(load(*e), n);
  }
  EXPECT_EQ(w_->long_names.in_use(), 1u);
  EXPECT_EQ(w_->counters->l7_names_lost, 0u);
}

// With every long-name slot taken, a long name is lost (counted; its protocol, ech and
// ALPN stay), a short one is still kept, and a slot freed by a flow's end serves the
// next long name.
TEST_F(WorkerNamesTest, LongNamesBeyondThePoolAreLostAndCounted) {
  start(2);
  enum Act { kKeep, kEnd };
  struct Step {
    const char* what;
    Act act;
    uint16_t sport;
    std::string name;  // kKeep: the name (of a tls flow, ALPN "h2", ech)
    bool kept;
    unsigned in_use, lost;
  };
  const std::string long1 = name_of(150), long2 = name_of(151), long3 = name_of(152),
                    long4 = name_of(153);
  const std::vector<Step> steps = {
      {"first long name", kKeep, 1, long1, true, 1, 0},
      {"second long name", kKeep, 2, long2, true, 2, 0},
      {"third: no slot left", kKeep, 3, long3, false, 2, 1},
      {"a short name needs no slot", kKeep, 4, "short.example", true, 2, 1},
      {"the first flow ends", kEnd, 1, "", true, 1, 1},
      {"its slot serves the next", kKeep, 5, long4, true, 2, 1},
  };
  for (const Step& s : steps) {
    SCOPED_TRACE(s.what);
    if (s.act == kEnd) {
      w_->flows.remove(
          test::find_flow(*w_, [&](const FlowEntry& f) { return f.key.inside_port == s.sport; }),
          EndReason::closed);
    } else {
      FlowEntry* e = insert(kProtoTcp, 443, s.sport);
      ASSERT_NE(e, nullptr);
      const l7::FlowName n = flow_name(l7::AppProto::tls, "h2", s.name, false, true);
      EXPECT_EQ(flow_name_keep(*w_, *e, n), s.kept);
      const l7::FlowName got = load(*e);
      if (s.kept) {
        expect_same(got, n);
      } else {
        EXPECT_EQ(got.app, l7::AppProto::tls);
        EXPECT_TRUE(got.ech);
        EXPECT_EQ(alpn_of(got), "h2");
        EXPECT_FALSE(got.has_name);
        EXPECT_EQ(name_in(got), "");
      }
    }
    EXPECT_EQ(w_->long_names.in_use(), s.in_use);
    EXPECT_EQ(w_->counters->l7_names_lost, s.lost);
  }
  const auto records = end_all();
  EXPECT_EQ(name_in(records.at(1).app), long1);
  EXPECT_EQ(name_in(records.at(2).app), long2);
  EXPECT_EQ(name_in(records.at(3).app), "") << "lost: the record has no name";
  EXPECT_EQ(alpn_of(records.at(3).app), "h2");
  EXPECT_EQ(name_in(records.at(5).app), long4);
  EXPECT_EQ(w_->long_names.in_use(), 0u);
}

// Whole connections: TLS flows allowed by long names, then a policy that denies one of
// them by its exact name and allows flows without a name. Each flow is re-decided on the
// name it keeps: the full name decides (two names differ only past what fits in a
// FlowAux), and the flow whose name could not be kept is denied, not taken for one
// without a name. A DNS flow's long query name reaches its record.
TEST_F(WorkerNamesTest, PolicyChangeRedecidesOnTheStoredName) {
  const std::string long1 = name_of(180, ".x1.ok.egw.test"),
                    long2 = name_of(180, ".x2.ok.egw.test"),
                    long3 = name_of(180, ".x3.ok.egw.test"), dns_name = name_of(150, ".egw.test");
  const std::string ok = R"({"id":"ok","from":["web"],"proto":"tcp","ports":[443],
                             "to":{"domains":["*.ok.egw.test"]},"action":"allow"})",
                    dns = R"({"id":"dns","from":["any"],"proto":"udp","ports":[53],
                              "to":{"domains":["*.egw.test"]},"action":"allow"})",
                    no_long1 = R"({"id":"no-long1","from":["web"],"proto":"tcp","ports":[443],
                                   "to":{"domains":[")" +
                               long1 + R"("]},"action":"deny"})",
                    no_name = R"({"id":"no-name","from":["web"],"proto":"tcp","ports":[443],
                                  "action":"allow"})";
  auto document = [](const std::vector<std::string>& rules) {
    std::string d = R"({"schema":1,"default_action":"deny",
                        "services":{"web":{"cidrs":["198.18.1.0/24"]}},
                        "rulesets":[{"name":"t","rules":[)";
    for (size_t i = 0; i < rules.size(); ++i) d += (i == 0 ? "" : ",") + rules[i];
    return d + "]}]}";
  };
  const auto v1 = test::compile_policy(document({ok, dns}), 1);
  const auto v2 = test::compile_policy(document({no_long1, ok, dns, no_name}), 2);
  ASSERT_NE(v1, nullptr);
  ASSERT_NE(v2, nullptr);
  start(3, v1.get());  // the DNS name and two SNIs: the third SNI finds no slot

  struct Flow {
    const char* what;
    uint16_t sport;
    std::string sni;
    bool kept;
    const char* rule_after;  // after the change; nullptr: denied by default (no rule)
  };
  const std::vector<Flow> flows = {
      {"short name, still allowed", 40001, "short.ok.egw.test", true, "ok"},
      {"long name the new policy denies", 40002, long1, true, "no-long1"},
      {"long name like it but for its end, still allowed", 40003, long2, true, "ok"},
      {"long name not kept: denied, not guessed", 40004, long3, false, nullptr},
  };
  auto ends = [](uint16_t sport) {
    return test::TcpEnds{"198.18.1.2", "198.19.1.10", sport, 443, 1000, 5000};
  };
  // The DNS query first: it takes a slot.
  test::send_frame(*w_, suite_.pool,
                   test::build_frame(test::udp_spec("198.18.1.2", "198.19.1.53", 5353, 53,
                                                    test::dns_query(dns_name))),
                   kInside, test::at_ms(0));
  for (const Flow& f : flows) {
    SCOPED_TRACE(f.what);
    const Bytes hello = test::hello_stream(test::tls13_spec(f.sni));
    const test::Conn c = test::drive_tcp(*w_, suite_.pool, ends(f.sport), hello, {});
    EXPECT_EQ(c.server_bytes.size(), hello.size()) << "allowed on the name in hand";
  }
  EXPECT_EQ(w_->counters->l7_names_long, 3u);
  EXPECT_EQ(w_->counters->l7_names_lost, 1u);

  w_->published.store(v2.get());
  worker_refresh_policy(*w_);
  for (const Flow& f : flows) {
    SCOPED_TRACE(f.what);
    const test::TcpEnds c = ends(f.sport);
    const Bytes hello = test::hello_stream(test::tls13_spec(f.sni));
    const uint32_t next = c.isn + 1 + static_cast<uint32_t>(hello.size());
    const test::Out o = test::send_frame(
        *w_, suite_.pool,
        test::build_frame(test::tcp_segment(c, true, kTcpAck, next, c.srv_isn + 1)), kInside,
        test::at_ms(1));
    FlowEntry* e =
        test::find_flow(*w_, [&](const FlowEntry& x) { return x.key.inside_port == f.sport; });
    ASSERT_NE(e, nullptr);
    const std::string rule = e->rule_index == kNoRule ? "" : v2->rule_id(e->rule_index);
    EXPECT_EQ(rule, f.rule_after ? f.rule_after : "");
    const bool allowed = f.rule_after != nullptr && std::string(f.rule_after) == "ok";
    EXPECT_EQ(e->verdict, allowed ? Verdict::allow : Verdict::deny);
    EXPECT_EQ(o.to_server.size(), allowed ? 1u : 0u);
  }

  const auto records = end_all();
  for (const Flow& f : flows) {
    SCOPED_TRACE(f.what);
    const FlowRecord& r = records.at(f.sport);
    EXPECT_EQ(r.app.app, l7::AppProto::tls);
    EXPECT_EQ(alpn_of(r.app), "h2");
    EXPECT_EQ(name_in(r.app), f.kept ? f.sni : "");
  }
  EXPECT_EQ(name_in(records.at(5353).app), dns_name);
  EXPECT_EQ(w_->long_names.in_use(), 0u);
}

}  // namespace
}  // namespace egw
