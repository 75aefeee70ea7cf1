// The worker's L7 stage on real mbufs: TCP flows that wait for their name (held,
// reassembled, released re-segmented, or refused), flows watched after they were
// allowed, DNS over UDP judged per query. Each case drives a whole connection through
// worker_process_burst and rebuilds what the server received from the forwarded
// segments: an allowed flow's server must see exactly the client's bytes, a refused
// one none of them. Policies are real documents compiled by the real compiler.
#include <gtest/gtest.h>

#include <rte_mbuf.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/worker.h"
#include "tests/support/dns_msg.h"
#include "tests/support/frames.h"
#include "tests/support/tls_hello.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

using test::account;
using test::Conn;
using test::cuts;
using test::every;
using test::FrameSpec;
using test::Out;
using test::Seg;
using Bytes = std::vector<uint8_t>;

constexpr const char* kPolicy = R"({
  "schema": 1, "default_action": "deny",
  "services": { "web": { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] } },
  "rulesets": [ { "name": "t", "rules": [
    { "id": "tls-ok", "from": ["web"], "proto": "tcp", "ports": [443],
      "to": { "domains": ["allowed.egw.test", "*.ok.egw.test"],
              "domain_regex": ["^api[0-9]+\\.egw\\.test$"] }, "action": "allow" },
    { "id": "tls-blocked", "from": ["any"], "proto": "tcp", "ports": [443],
      "to": { "domains": ["blocked.egw.test"] }, "action": "reject" },
    { "id": "http-ok", "from": ["web"], "proto": "tcp", "ports": [80],
      "to": { "domains": ["www.egw.test"] }, "action": "allow" },
    { "id": "dns-ok", "from": ["any"], "proto": "udp", "ports": [53],
      "to": { "domains": ["*.egw.test"] }, "action": "allow" },
    { "id": "dns-tcp-ok", "from": ["any"], "proto": "tcp", "ports": [53],
      "to": { "domains": ["*.egw.test"] }, "action": "allow" },
    { "id": "dns-refused", "from": ["any"], "proto": "udp", "ports": [53],
      "to": { "domains": ["*"] }, "action": "reject" },
    { "id": "plain-8443", "from": ["web"], "proto": "tcp", "ports": [8443], "action": "allow" }
  ] } ],
  "limits": { "l7_timeout_ms": 1000, "l7_max_bytes": 4096 }
})";

constexpr const char* kCli = "198.18.1.2";
constexpr const char* kSrv = "198.19.1.10";
constexpr const char* kCli6 = "2001:2:0:1::2";
constexpr const char* kSrv6 = "2001:2:0:100::10";
constexpr uint32_t kIsn = 0xfffffff0;  // the stream crosses the sequence wrap
constexpr uint32_t kSrvIsn = 5000;
constexpr uint8_t SYN = 0x02, ACK = 0x10, PSH = 0x08;

enum class Want { allow, deny, reject, reset };  // reset: RST both ends, counted drop

struct TcpCase {
  const char* name;
  int family = 4;
  uint16_t port = 443;
  Bytes stream;
  std::vector<Seg> segs;  // empty: one segment with the whole stream
  Want want;
  const char* rule = "";  // expected rule id ("" = default)
  DropReason reason = DropReason::count;  // for reset
  std::string name_logged;                // expected name in the flow's FlowName
};

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes hello(const std::string& sni) { return test::hello_stream(test::tls13_spec(sni)); }

std::vector<Seg> reversed(std::vector<Seg> v) {
  std::reverse(v.begin(), v.end());
  return v;
}
std::vector<Seg> shuffled(std::vector<Seg> v, unsigned seed) {
  std::mt19937 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

class WorkerL7Test : public testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("worker_l7_test", 8191, kPolicy, 9)); }
  static void TearDownTestSuite() { suite_.tear_down(); }

  void SetUp() override {
    ring_ = std::make_unique<FlowRecordRing>();
    w_ = std::make_unique<WorkerCtx>();
    WorkerConfig cfg = test::worker_config(suite_.pool);
    cfg.l7_contexts = 4;
    cfg.hash_seed[0] = 1;
    cfg.hash_seed[1] = 2;
    ASSERT_TRUE(test::start_worker(*w_, cfg, ring_.get(), suite_.policy.get()));
    pool_free_ = rte_mempool_avail_count(suite_.pool);
  }
  void TearDown() override {
    w_.reset();
    ring_.reset();
    // Nothing held or leaked: every mbuf is back in the pool.
    EXPECT_EQ(rte_mempool_avail_count(suite_.pool), pool_free_);
  }

  // Sends one frame from `from` at t0 + ms; the packets that came out, copied.
  Out send(const Bytes& frame, Side from, uint64_t ms) {
    return test::send_frame(*w_, suite_.pool, frame, from, test::at_ms(ms));
  }

  // The connection of a case: the client at sport, the server at port.
  static test::TcpEnds ends(int family, uint16_t port, uint16_t sport = 40000) {
    return {family == 4 ? kCli : kCli6, family == 4 ? kSrv : kSrv6, sport, port, kIsn, kSrvIsn};
  }
  FrameSpec spec(int family, bool outbound, uint16_t port, uint8_t flags, uint32_t seq,
                 uint32_t ack, uint16_t sport = 40000) {
    return test::tcp_segment(ends(family, port, sport), outbound, flags, seq, ack);
  }

  // Handshake, then the client's segments; the server ACKs nothing (held data is not
  // acknowledged), so the flight is only what the client sends.
  Conn run(const TcpCase& tc) {
    return test::drive_tcp(*w_, suite_.pool, ends(tc.family, tc.port), tc.stream, tc.segs);
  }

  FlowEntry* flow_of(int family, uint16_t port, uint16_t sport = 40000) {
    return test::find_flow(*w_, [&](const FlowEntry& e) {
      return e.key.family == family && e.key.remote_port == port && e.key.inside_port == sport;
    });
  }

  static inline test::SuiteState suite_;
  std::unique_ptr<FlowRecordRing> ring_;
  std::unique_ptr<WorkerCtx> w_;
  unsigned pool_free_ = 0;
};

std::vector<TcpCase> tcp_cases() {
  const Bytes ok = hello("allowed.egw.test");
  const Bytes pq = test::hello_stream(test::pq_spec("a.b.ok.egw.test"));
  const Bytes multi = test::records_of(test::hello_msg(test::tls13_spec("api7.egw.test")), 100);
  const Bytes get_ok = bytes_of("GET / HTTP/1.1\r\nHost: www.egw.test\r\n\r\n");
  std::vector<TcpCase> v;
  v.push_back({"tls allowed, one segment", 4, 443, ok, {}, Want::allow, "tls-ok", {},
               "allowed.egw.test"});
  v.push_back({"tls allowed, 1-byte segments (checklist 1)", 4, 443, ok, every(ok.size(), 1),
               Want::allow, "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"tls allowed, 7-byte segments in reverse order (checklist 3)", 4, 443, ok,
               reversed(every(ok.size(), 7)), Want::allow, "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"tls allowed, random cuts shuffled", 4, 443, ok,
               shuffled(cuts(ok.size(), {3, 40, 41, 90, 150}), 7), Want::allow, "tls-ok", {},
               "allowed.egw.test"});
  v.push_back({"post-quantum-sized hello in 2 segments (checklist 6)", 4, 443, pq,
               cuts(pq.size(), {1448}), Want::allow, "tls-ok", {}, "a.b.ok.egw.test"});
  v.push_back({"hello over several records, 50-byte segments (checklist 2)", 4, 443, multi,
               every(multi.size(), 50), Want::allow, "tls-ok", {}, "api7.egw.test"});
  v.push_back({"hello on the SYN (TCP Fast Open, checklist 5)", 4, 443, ok,
               {{0, static_cast<uint32_t>(ok.size()), -1, 0, true}}, Want::allow, "tls-ok", {},
               "allowed.egw.test"});
  v.push_back({"part of the hello on the SYN, the rest after", 4, 443, ok,
               {{0, 20, -1, 0, true}, {20, static_cast<uint32_t>(ok.size() - 20)}}, Want::allow,
               "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"ipv6 allowed, 10-byte segments", 6, 443, ok, every(ok.size(), 10), Want::allow,
               "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"upper case SNI with a trailing dot is normalised (checklist 9)", 4, 443,
               hello("ALLOWED.egw.TEST."), {}, Want::allow, "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"apex of a wildcard is not matched (checklist 10)", 4, 443, hello("ok.egw.test"),
               {}, Want::deny, "", {}, "ok.egw.test"});
  v.push_back({"suffix lookalike is not matched (checklist 10)", 4, 443,
               hello("evilok.egw.test"), {}, Want::deny, "", {}, "evilok.egw.test"});
  v.push_back({"blocked name: RST to both ends", 4, 443, hello("blocked.egw.test"),
               every(hello("blocked.egw.test").size(), 64), Want::reject, "tls-blocked", {},
               "blocked.egw.test"});
  v.push_back({"unknown name: default deny", 4, 443, hello("other.example"), {}, Want::deny, "",
               {}, "other.example"});
  v.push_back({"no SNI: a name rule does not match (checklist 7)", 4, 443, hello(""), {},
               Want::deny, "", {}, ""});
  {
    test::HelloSpec dup = test::tls13_spec("allowed.egw.test");
    dup.exts.push_back(test::sni_ext("evil.example"));
    v.push_back({"duplicate server_name: reset (checklist 9)", 4, 443, test::hello_stream(dup),
                 {}, Want::reset, "", DropReason::l7_bad, ""});
  }
  {
    std::vector<Seg> s = cuts(ok.size(), {60});
    s.push_back({50, 20, 'Z'});  // overlaps bytes already seen, with other content
    v.push_back({"overlap with different bytes: reset (checklist 4)", 4, 443, ok, s, Want::reset,
                 "", DropReason::l7_conflict, ""});
  }
  {
    std::vector<Seg> s = reversed(cuts(ok.size(), {60}));
    s.insert(s.begin() + 1, {10, 10, 'Z'});  // differs from nothing seen yet: stored...
    s.push_back({0, 60});                    // ...then the true bytes conflict with it
    v.push_back({"conflicting copy first, true copy later: reset, never allowed", 4, 443, ok, s,
                 Want::reset, "", DropReason::l7_conflict, ""});
  }
  v.push_back({"same bytes retransmitted: allowed", 4, 443, ok,
               {{0, 40}, {0, 40}, {20, 60}, {60, static_cast<uint32_t>(ok.size() - 60)}},
               Want::allow, "tls-ok", {}, "allowed.egw.test"});
  v.push_back({"hello never completes: decided at the timeout (denied)", 4, 443, ok,
               {{0, 30}, {30, 30, -1, 1500}}, Want::deny, "", {}, ""});
  v.push_back({"FIN before the hello completes: denied", 4, 443, ok,
               {{0, 30}, {30, 10, -1, 0, false, true}}, Want::deny, "", {}, ""});
  v.push_back({"SSLv2 hello: reset (checklist 12)", 4, 443,
               bytes_of(std::string("\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", 11) +
                        std::string(0x2e - 9, 'a')),
               {}, Want::reset, "", DropReason::l7_bad, ""});
  v.push_back({"http Host allowed", 4, 80, get_ok, every(get_ok.size(), 5), Want::allow,
               "http-ok", {}, "www.egw.test"});
  v.push_back({"absolute target wins over Host (checklist 14)", 4, 80,
               bytes_of("GET http://evil.example/ HTTP/1.1\r\nHost: www.egw.test\r\n\r\n"), {},
               Want::deny, "", {}, "evil.example"});
  v.push_back({"two Host headers: reset (checklist 15)", 4, 80,
               bytes_of("GET / HTTP/1.1\r\nHost: www.egw.test\r\nHost: evil.example\r\n\r\n"),
               {}, Want::reset, "", DropReason::l7_bad, ""});
  {
    Bytes two = get_ok;
    const Bytes second = bytes_of("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    two.insert(two.end(), second.begin(), second.end());
    v.push_back({"pipelined request to another host: reset (checklist 17)", 4, 80, two,
                 cuts(two.size(), {static_cast<uint32_t>(get_ok.size())}), Want::reset,
                 "http-ok", DropReason::l7_bad, "www.egw.test"});
    v.push_back({"both requests in one segment: reset, the first name kept for the record", 4,
                 80, two, {}, Want::reset, "", DropReason::l7_bad, "www.egw.test"});
  }
  {
    const Bytes q = test::dns_tcp_framed(test::dns_query("www.egw.test"));
    v.push_back({"DNS over TCP split in 3 (checklist 22)", 4, 53, q, every(q.size(), 11),
                 Want::allow, "dns-tcp-ok", {}, "www.egw.test"});
  }
  v.push_back({"no name needed: plain rule, the name is still logged", 4, 8443, ok, {},
               Want::allow, "plain-8443", {}, "allowed.egw.test"});
  v.push_back({"no name needed: a hello over 2 segments passes at once, its name is logged", 4,
               8443, pq, cuts(pq.size(), {1448}), Want::allow, "plain-8443", {},
               "a.b.ok.egw.test"});
  return v;
}

TEST_F(WorkerL7Test, TcpCases) {
  for (const TcpCase& tc : tcp_cases()) {
    SCOPED_TRACE(tc.name);
    TearDown();
    SetUp();
    const WorkerCounters before = *w_->counters;
    const Conn c = run(tc);
    FlowEntry* e = flow_of(tc.family, tc.port);
    ASSERT_NE(e, nullptr);
    const std::string rule = e->rule_index == kNoRule ? "" : suite_.policy->rule_id(e->rule_index);
    switch (tc.want) {
      case Want::allow: {
        EXPECT_EQ(e->verdict, Verdict::allow);
        ASSERT_EQ(c.server_bytes.size(), tc.stream.size()) << "the server missed bytes";
        for (const auto& [off, b] : c.server_bytes) {
          ASSERT_LT(off, tc.stream.size());
          ASSERT_EQ(b, tc.stream[off]) << "byte " << off;
        }
        EXPECT_EQ(c.rst_to_client + c.rst_to_server, 0);
        break;
      }
      case Want::deny:
        EXPECT_EQ(e->verdict, Verdict::deny);
        EXPECT_TRUE(c.server_bytes.empty()) << c.server_bytes.size() << " bytes leaked";
        EXPECT_EQ(c.rst_to_client + c.rst_to_server, 0);
        break;
      case Want::reject:
        EXPECT_EQ(e->verdict, Verdict::reject);
        EXPECT_TRUE(c.server_bytes.empty()) << c.server_bytes.size() << " bytes leaked";
        EXPECT_EQ(c.rst_to_client, 1);
        EXPECT_EQ(c.rst_to_server, 1);
        break;
      case Want::reset:
        EXPECT_EQ(e->verdict, Verdict::deny);
        EXPECT_EQ(c.rst_to_client, 1);
        EXPECT_EQ(c.rst_to_server, 1);
        EXPECT_GT(w_->counters->drop_count(tc.reason), before.drop_count(tc.reason));
        break;
    }
    if (tc.want != Want::reset) {
      EXPECT_EQ(rule, tc.rule);
    }
    if (!tc.name_logged.empty()) {
      l7::FlowName n;
      flow_name_load(*w_, e->key, w_->aux[w_->flows.index_of(e)], &n);
      EXPECT_EQ(std::string(n.name.buf, n.name.len), tc.name_logged);
    }
    EXPECT_EQ(e->l7_slot == kNil || e->l7 == kL7Watch, true) << "a context leaked";
  }
}

// The second ClientHello of a flow (after a HelloRetryRequest) must name the same name.
TEST_F(WorkerL7Test, SecondHelloWithAnotherNameResetsTheFlow) {
  const Bytes first = hello("allowed.egw.test");
  const Bytes second = hello("evil.example");
  TcpCase tc{"", 4, 443, first, {}, Want::allow};
  Conn c = run(tc);
  ASSERT_EQ(c.server_bytes.size(), first.size());
  FlowEntry* e = flow_of(4, 443);
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->l7, kL7Watch);
  FrameSpec f = spec(4, true, 443, ACK | PSH, kIsn + 1 + static_cast<uint32_t>(first.size()),
                     kSrvIsn + 1);
  f.payload = second;
  const Out o = send(test::build_frame(f), kInside, 1);
  EXPECT_EQ(w_->counters->drop_count(DropReason::l7_bad), 1u);
  EXPECT_EQ(e->verdict, Verdict::deny);
  Conn after;
  account(o, kIsn + 1, &after);
  EXPECT_EQ(after.rst_to_client, 1);
  EXPECT_EQ(after.rst_to_server, 1);
  EXPECT_TRUE(after.server_bytes.empty());
}

// While waiting, the server may not send payload; an exhausted context pool fails closed.
TEST_F(WorkerL7Test, InboundPayloadWhileWaitingAndNoContext) {
  const Bytes h = hello("allowed.egw.test");
  for (uint16_t sport = 41000; sport < 41005; ++sport) {
    send(test::build_frame(spec(4, true, 443, SYN, kIsn, 0, sport)), kInside, 0);
    send(test::build_frame(spec(4, false, 443, SYN | ACK, kSrvIsn, kIsn + 1, sport)), kOutside, 0);
    FrameSpec srv = spec(4, false, 443, ACK | PSH, kSrvIsn + 1, kIsn + 1, sport);
    srv.payload = bytes_of("220 banner\r\n");
    send(test::build_frame(srv), kOutside, 0);
    FrameSpec part = spec(4, true, 443, ACK | PSH, kIsn + 1, kSrvIsn + 1, sport);
    part.payload.assign(h.begin(), h.begin() + 10);  // held: takes a context
    send(test::build_frame(part), kInside, 0);
  }
  EXPECT_EQ(w_->counters->drop_count(DropReason::l7_inbound_wait), 5u);
  EXPECT_EQ(w_->counters->drop_count(DropReason::l7_no_context), 1u);  // 4 contexts
  EXPECT_EQ(w_->counters->l7_held, 4u);
}

// DNS over UDP: each query judged on its name; responses only for queries that passed.
TEST_F(WorkerL7Test, DnsQueriesAndResponses) {
  // A message of one question (qd: the count its header says) with the given flags.
  auto message = [](uint16_t flags, uint16_t id, const std::string& name, uint16_t qd = 1) {
    return test::dns_cat({test::dns_header(flags, qd, 0, 0, 0, id), test::dns_question(name)});
  };
  auto query = [&](uint16_t id, const std::string& name, uint16_t qd = 1) {
    return message(test::kDnsQueryFlags, id, name, qd);
  };
  auto response = [&](uint16_t id, const std::string& name) {
    return message(test::kDnsResponseFlags, id, name);
  };
  auto frame = [this](bool out, const Bytes& msg, int family = 4) {
    FrameSpec s = spec(family, out, 53, 0, 0, 0, 5353);  // its TCP fields go unused
    s.proto = 17;
    s.payload = msg;
    return test::build_frame(s);
  };
  struct Step {
    const char* what;
    Bytes frame;
    Side from;
    size_t to_server, to_client;
    DropReason reason;  // count: none
    int family = 4;
  };
  const std::vector<Step> steps = {
      {"allowed query", frame(true, query(1, "www.egw.test")), kInside, 1, 0, DropReason::count},
      {"its response", frame(false, response(1, "www.egw.test")), kOutside, 0, 1,
       DropReason::count},
      {"the same response again (checklist 23)", frame(false, response(1, "www.egw.test")),
       kOutside, 0, 0, DropReason::dns_unsolicited},
      {"a response with another id", frame(false, response(2, "www.egw.test")), kOutside, 0, 0,
       DropReason::dns_unsolicited},
      {"refused name: REFUSED back, query kept in", frame(true, query(3, "evil.example")),
       kInside, 0, 1, DropReason::policy_reject},
      {"no response for the refused query", frame(false, response(3, "evil.example")), kOutside,
       0, 0, DropReason::dns_unsolicited},
      {"allowed query 2", frame(true, query(4, "a.egw.test")), kInside, 1, 0, DropReason::count},
      {"response naming another question", frame(false, response(4, "b.egw.test")), kOutside, 0,
       0, DropReason::dns_unsolicited},
      {"two questions (checklist 21)", frame(true, query(5, "www.egw.test", 2)), kInside, 0, 0,
       DropReason::l7_bad},
      {"ipv6 allowed query", frame(true, query(6, "www.egw.test"), 6), kInside, 1, 0,
       DropReason::count, 6},
      {"ipv6 refused query", frame(true, query(7, "evil.example"), 6), kInside, 0, 1,
       DropReason::policy_reject, 6},
  };
  for (const Step& s : steps) {
    SCOPED_TRACE(s.what);
    const WorkerCounters before = *w_->counters;
    const Out o = send(s.frame, s.from, 0);
    const Side other = s.from == kInside ? kOutside : kInside;
    EXPECT_EQ((other == kOutside ? o.to_server : o.to_client).size(),
              s.from == kInside ? s.to_server : s.to_client);
    EXPECT_EQ((s.from == kInside ? o.to_client : o.to_server).size(),
              s.from == kInside ? s.to_client : s.to_server);
    if (s.reason != DropReason::count) {
      EXPECT_EQ(w_->counters->drop_count(s.reason), before.drop_count(s.reason) + 1);
    }
    if (s.reason == DropReason::policy_reject) {
      ASSERT_EQ(o.to_client.size(), 1u);
      ParsedPacket p;
      ASSERT_EQ(parse_frame(o.to_client[0].data(), o.to_client[0].size(), &p).status,
                ParseStatus::ok);
      ASSERT_GE(p.payload_len, 12);
      EXPECT_EQ(o.to_client[0][p.payload_offset + 3] & 0x0f, 5) << "RCODE REFUSED";
      EXPECT_EQ(o.to_client[0][p.payload_offset + 2] & 0x80, 0x80) << "QR";
    }
  }
}

}  // namespace
}  // namespace egw
