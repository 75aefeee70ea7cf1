// The worker's payload inspection on real mbufs (dataplane/inspect.cc, worker.cc): TCP
// flows scanned in sequence order whatever the segmentation, gaps dropped, the per-flow
// byte limit, UDP datagrams (DNS too) scanned one at a time, the stream pool failing
// closed, and a policy swap closing every stream. Each TCP case drives a connection
// through worker_process_burst, rebuilds what the server received from the forwarded
// segments, and checks the flow record pushed when the flow ends. Policies are real
// documents compiled by the real compiler.
#include <gtest/gtest.h>

#include <rte_mbuf.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/policy_swap.h"
#include "dataplane/worker.h"
#include "tests/support/frames.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

using test::Conn;
using test::cuts;
using test::every;
using test::FrameSpec;
using test::Out;
using test::Seg;
using Bytes = std::vector<uint8_t>;

constexpr const char* kPolicy = R"({
  "schema": 1, "default_action": "deny",
  "services": { "web": { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] },
                "db": { "cidrs": ["198.18.3.0/24"] } },
  "rulesets": [ { "name": "t", "rules": [
    { "id": "http-name", "from": ["any"], "proto": "tcp", "ports": [8000],
      "to": { "domains": ["www.egw.test"] }, "action": "allow" },
    { "id": "dns-ok", "from": ["any"], "proto": "udp", "ports": [53],
      "to": { "domains": ["*.egw.test"] }, "action": "allow" },
    { "id": "tcp-out", "from": ["any"], "proto": "tcp", "ports": [80], "action": "allow" },
    { "id": "udp-out", "from": ["any"], "proto": "udp", "ports": [5000], "action": "allow" }
  ] } ],
  "inspect": [
    { "id": "no-aws-keys", "from": ["web"], "patterns": ["AKIA[0-9A-Z]{16}"],
      "action": "reject" },
    { "id": "no-secrets", "from": ["web"], "patterns": ["TOPSECRET", "^BYE\\.$"],
      "action": "deny" }
  ],
  "limits": { "inspect_max_bytes": 4096, "l7_timeout_ms": 1000 }
})";
constexpr uint32_t kLimit = 4096;
constexpr uint32_t kAwsIndex = 0, kSecretIndex = 1;  // inspect indexes

constexpr const char* kCli = "198.18.1.2";
constexpr const char* kCliDb = "198.18.3.2";
constexpr const char* kSrv = "198.19.1.10";
constexpr const char* kCli6 = "2001:2:0:1::2";
constexpr const char* kSrv6 = "2001:2:0:100::10";
constexpr uint32_t kIsn = 0xffffff00;  // the stream crosses the sequence wrap
constexpr uint32_t kSrvIsn = 5000;
constexpr uint8_t ACK = 0x10;
const std::string kKey = "AKIAABCDEFGHIJKLMNOP";

Bytes bytes_of(const std::string& s) {
  return Bytes(s.begin(), s.end());
}
Bytes filler(size_t n, char c = 'a') {
  return Bytes(n, static_cast<uint8_t>(c));
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A datagram from the client at cli:sport to the server.
Bytes dgram(uint16_t sport, const Bytes& payload, const char* cli = kCli, uint16_t dport = 5000) {
  return test::build_frame(test::udp_spec(cli, kSrv, sport, dport, payload));
}

// One TCP connection from the client at `cli`, source port sport.
struct Tcp {
  int family = 4;
  const char* cli = kCli;
  uint16_t port = 80;
  uint16_t sport = 40000;
};

class InspectTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("inspect_test", 8191)); }
  static void TearDownTestSuite() { suite_.tear_down(); }

  void SetUp() override { start(WorkerConfig::kAutoStreams); }
  void TearDown() override {
    w_.reset();
    ring_.reset();
    policy_.reset();
    EXPECT_EQ(rte_mempool_avail_count(suite_.pool), pool_free_) << "an mbuf leaked";
  }
  // A worker on the policy `doc` (version 9). Each policy's LPM tables take 64 MiB per
  // address family of the unit tests' 256: one policy per test, or v4-only ones.
  void start(uint32_t streams, const std::string& doc = kPolicy) {
    policy_.reset();
    policy_ = test::compile_policy(doc, 9);
    ASSERT_NE(policy_, nullptr);
    ring_ = std::make_unique<FlowRecordRing>();
    w_ = std::make_unique<WorkerCtx>();
    WorkerConfig cfg = test::worker_config(suite_.pool);
    cfg.l7_contexts = 4;
    cfg.inspect_streams = streams;
    ASSERT_TRUE(test::start_worker(*w_, cfg, ring_.get(), policy_.get()));
    pool_free_ = rte_mempool_avail_count(suite_.pool);
  }

  Out send(const Bytes& frame, Side from, uint64_t ms = 0) {
    return test::send_frame(*w_, suite_.pool, frame, from, test::at_ms(ms));
  }

  static test::TcpEnds ends(const Tcp& t) {
    return {t.cli, t.family == 4 ? kSrv : kSrv6, t.sport, t.port, kIsn, kSrvIsn};
  }
  FrameSpec spec(const Tcp& t, bool outbound, uint8_t flags, uint32_t seq, uint32_t ack) {
    return test::tcp_segment(ends(t), outbound, flags, seq, ack);
  }

  // Adds what came out to c, stream offsets counted from kIsn + 1.
  void account(const Out& o, Conn* c) { test::account(o, kIsn + 1, c); }
  // The handshake (unless the first segment rides on the SYN), then the segments, up to
  // the one an inspect rule or a fail-closed stopped.
  Conn run(const Tcp& t, const Bytes& stream, std::vector<Seg> segs) {
    const WorkerCounters& k = *w_->counters;
    const uint64_t ends_before = k.inspect_matches + k.drop_count(DropReason::inspect_no_stream);
    auto ended = [&] {
      return k.inspect_matches + k.drop_count(DropReason::inspect_no_stream) != ends_before;
    };
    return test::drive_tcp(*w_, suite_.pool, ends(t), stream, std::move(segs), ended);
  }

  FlowEntry* flow(uint16_t sport, uint8_t proto = 6) {
    return test::find_flow(*w_, [&](const FlowEntry& e) {
      return e.key.inside_port == sport && e.key.proto == proto;
    });
  }
  std::map<uint16_t, FlowRecord> flush() { return test::end_all_flows(*w_, *ring_); }

  static inline test::SuiteState suite_;
  std::unique_ptr<RuntimePolicy> policy_;
  std::unique_ptr<FlowRecordRing> ring_;
  std::unique_ptr<WorkerCtx> w_;
  unsigned pool_free_ = 0;
};

enum class Want { allow, deny, reject };

struct TcpCase {
  const char* name;
  Bytes stream;
  std::vector<Seg> segs;  // empty: one segment with the whole stream
  Want want;
  const char* rule;     // the record's rule id
  size_t server_gets;   // the server receives bytes [0, server_gets)
  uint64_t gaps = 0;    // segments dropped as inspect_gap
  bool scanned = true;  // a stream was opened for the flow
  Tcp tcp = {};
};

std::vector<TcpCase> tcp_cases() {
  const Bytes clean = filler(100);
  const Bytes key_at_50 = cat({filler(50), bytes_of(kKey), filler(30, 'b')});
  const Bytes key_at_60 = cat({filler(60), bytes_of(kKey), filler(20, 'b')});
  const Bytes get = bytes_of("GET /?k=" + kKey + " HTTP/1.1\r\nHost: www.egw.test\r\n\r\n");
  const Bytes req1 = bytes_of("GET / HTTP/1.1\r\nHost: www.egw.test\r\n\r\n");
  const Bytes req2 =
      bytes_of("POST /up HTTP/1.1\r\nHost: www.egw.test\r\nContent-Length: 20\r\n\r\n" + kKey);
  const Bytes two = cat({req1, req2});
  std::vector<TcpCase> v;
  v.push_back({"clean payload passes, 30-byte segments", clean, every(clean.size(), 30),
               Want::allow, "tcp-out", 100});
  v.push_back({"key in the only segment: RST both ends, nothing reaches the server",
               key_at_50,
               {},
               Want::reject,
               "no-aws-keys",
               0});
  v.push_back({"key in the second segment: the first one passed", key_at_50,
               cuts(key_at_50.size(), {50}), Want::reject, "no-aws-keys", 50});
  v.push_back({"key split across two segments (streaming)", key_at_50, cuts(key_at_50.size(), {60}),
               Want::reject, "no-aws-keys", 60});
  v.push_back({"key across 1-byte segments", key_at_50, every(key_at_50.size(), 1), Want::reject,
               "no-aws-keys", 69});
  v.push_back({"deny rule: silent, no RST", cat({filler(20), bytes_of("TOPSECRET"), filler(10)}),
               cuts(39, {25}), Want::deny, "no-secrets", 25});
  v.push_back({"a segment past a gap is dropped, the in-order resend passes",
               clean,
               {{50, 50}, {0, 50}, {50, 50}},
               Want::allow,
               "tcp-out",
               100,
               1});
  v.push_back({"key first sent past a gap is caught when it comes in order",
               key_at_60,
               {{50, 50}, {0, 50}, {50, 50}},
               Want::reject,
               "no-aws-keys",
               50,
               1});
  v.push_back({"retransmissions and overlaps: only new bytes are scanned",
               key_at_50,
               {{0, 40}, {0, 40}, {20, 40}},
               Want::allow,
               "tcp-out",
               60});
  v.push_back({"overlap that completes the key is caught",
               key_at_50,
               {{0, 60}, {40, 40}},
               Want::reject,
               "no-aws-keys",
               60});
  v.push_back({"key past inspect_max_bytes passes", cat({filler(kLimit), bytes_of(kKey)}),
               every(kLimit + kKey.size(), 1000), Want::allow, "tcp-out", kLimit + kKey.size()});
  v.push_back({"key straddling inspect_max_bytes passes",
               cat({filler(kLimit - 10), bytes_of(kKey)}), every(kLimit + 10, 1000), Want::allow,
               "tcp-out", kLimit + 10});
  v.push_back({"key ending at inspect_max_bytes is caught",
               cat({filler(kLimit - kKey.size()), bytes_of(kKey)}), every(kLimit, 1000),
               Want::reject, "no-aws-keys", 4000});
  v.push_back({"a source no inspect rule covers gets no stream",
               key_at_50,
               {},
               Want::allow,
               "tcp-out",
               100,
               0,
               false,
               {4, kCliDb}});
  v.push_back({"ipv6, 7-byte segments",
               key_at_50,
               every(key_at_50.size(), 7),
               Want::reject,
               "no-aws-keys",
               63,
               0,
               true,
               {6, kCli6}});
  v.push_back({"key on the SYN (TCP Fast Open)",
               key_at_50,
               {{0, static_cast<uint32_t>(key_at_50.size()), -1, 0, true}},
               Want::reject,
               "no-aws-keys",
               0});
  v.push_back({"flow waiting for its name: key in the held first flight, nothing released",
               get,
               every(get.size(), 10),
               Want::reject,
               "no-aws-keys",
               0,
               0,
               true,
               {4, kCli, 8000}});
  v.push_back({"flow waiting for its name: key in a later request",
               two,
               cuts(two.size(),
                    {static_cast<uint32_t>(req1.size()), static_cast<uint32_t>(req1.size() + 30)}),
               Want::reject,
               "no-aws-keys",
               req1.size() + 30,
               0,
               true,
               {4, kCli, 8000}});
  return v;
}

TEST_F(InspectTest, TcpCases) {
  for (const TcpCase& tc : tcp_cases()) {
    SCOPED_TRACE(tc.name);
    TearDown();
    SetUp();
    const Conn c = run(tc.tcp, tc.stream, tc.segs);
    ASSERT_NE(flow(tc.tcp.sport), nullptr);
    // The server got exactly the bytes before the point of the verdict.
    ASSERT_EQ(c.server_bytes.size(), tc.server_gets);
    for (const auto& [off, b] : c.server_bytes) {
      ASSERT_LT(off, tc.server_gets);
      ASSERT_EQ(b, tc.stream[off]) << "byte " << off;
    }
    const int rsts = tc.want == Want::reject ? 1 : 0;
    EXPECT_EQ(c.rst_to_client, rsts);
    EXPECT_EQ(c.rst_to_server, rsts);
    if (rsts) {
      EXPECT_EQ(c.rst_seq, tc.server_gets) << "the server's RST is at its next byte";
    }
    const WorkerCounters& k = *w_->counters;
    EXPECT_EQ(k.drop_count(DropReason::inspect_gap), tc.gaps);
    EXPECT_EQ(k.inspect_streams, tc.scanned ? 1u : 0u);
    EXPECT_EQ(k.inspect_matches, tc.want == Want::allow ? 0u : 1u);
    EXPECT_EQ(k.drop_count(DropReason::inspect_match), tc.want == Want::allow ? 0u : 1u);
    if (tc.want != Want::allow) {
      const uint32_t index = tc.want == Want::reject ? kAwsIndex : kSecretIndex;
      EXPECT_EQ(w_->inspect_hits[index], 1u);
      // Later payload of the ended flow goes nowhere.
      const uint32_t end = static_cast<uint32_t>(tc.stream.size());
      Conn after;
      account(send(test::client_data(ends(tc.tcp), end, filler(10)), kInside), &after);
      EXPECT_TRUE(after.server_bytes.empty());
    }
    EXPECT_LE(w_->streams.in_use(), 1u);
    const auto records = flush();
    EXPECT_EQ(w_->streams.in_use(), 0u) << "a stream leaked";
    ASSERT_EQ(records.count(tc.tcp.sport), 1u);
    const FlowRecord& r = records.at(tc.tcp.sport);
    EXPECT_EQ(r.verdict, tc.want == Want::allow  ? Verdict::allow
                         : tc.want == Want::deny ? Verdict::deny
                                                 : Verdict::reject);
    EXPECT_STREQ(policy_->rule_id(r.rule_index), tc.rule);
    EXPECT_EQ(r.policy_version, 9u);
    if (tc.want == Want::reject) {
      EXPECT_EQ(r.resets, 1u);
    }
  }
}

// The bytes counted as scanned stop at inspect_max_bytes, and the stream closes there;
// the client's FIN closes it too (nothing follows).
TEST_F(InspectTest, LimitAndFinCloseTheStream) {
  const Bytes big = filler(kLimit + 3000);
  run({}, big, every(big.size(), 1400));
  const FlowEntry& f = *flow(40000);
  EXPECT_EQ(f.inspected, kLimit);
  EXPECT_EQ(f.inspect, kInspectOff);
  EXPECT_EQ(w_->counters->inspect_bytes, kLimit);
  EXPECT_EQ(w_->counters->inspect_limit_reached, 1u);
  EXPECT_EQ(w_->streams.in_use(), 0u);

  Tcp t;
  t.sport = 40001;
  run(t, filler(10), {{0, 10}});
  EXPECT_EQ(w_->streams.in_use(), 1u);
  Conn c;
  account(send(test::build_frame(spec(t, true, ACK | 0x01, kIsn + 11, kSrvIsn + 1)), kInside), &c);
  EXPECT_EQ(w_->streams.in_use(), 0u) << "the FIN freed the stream";
  // A FIN ahead of bytes not scanned yet frees nothing.
  Tcp u;
  u.sport = 40002;
  run(u, filler(10), {{0, 10}});
  account(send(test::build_frame(spec(u, true, ACK | 0x01, kIsn + 21, kSrvIsn + 1)), kInside), &c);
  EXPECT_EQ(w_->streams.in_use(), 1u);
}

// UDP datagrams are scanned one at a time: a pattern never spans two of them, and one
// anchored at the end ($) matches at a datagram's end.
TEST_F(InspectTest, UdpDatagrams) {
  auto dns_query = [](const std::vector<std::string>& labels) {
    Bytes m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    for (const std::string& l : labels) {
      m.push_back(static_cast<uint8_t>(l.size()));
      m.insert(m.end(), l.begin(), l.end());
    }
    m.push_back(0);
    m.insert(m.end(), {0, 1, 0, 1});
    return m;
  };
  Bytes big_frame = dgram(5009, filler(3000));
  const auto frags = test::fragment_ipv4(big_frame, 1400);
  struct Step {
    const char* what;
    Bytes frame;
    size_t to_server, to_client;
    DropReason reason;  // count: forwarded
    uint16_t sport;
    Verdict verdict;
    const char* rule;
  };
  const Step steps[] = {
      {"clean datagram", dgram(5001, filler(200)), 1, 0, DropReason::count, 5001, Verdict::allow,
       "udp-out"},
      {"key: ICMP port unreachable back", dgram(5001, cat({filler(5), bytes_of(kKey)})), 0, 1,
       DropReason::inspect_match, 5001, Verdict::reject, "no-aws-keys"},
      {"the flow stays refused", dgram(5001, filler(10)), 0, 1, DropReason::policy_reject, 5001,
       Verdict::reject, "no-aws-keys"},
      {"anchored at the datagram's end: silent deny", dgram(5002, bytes_of("BYE.")), 0, 0,
       DropReason::inspect_match, 5002, Verdict::deny, "no-secrets"},
      {"not at its end: passes", dgram(5003, bytes_of("BYE.x")), 1, 0, DropReason::count, 5003,
       Verdict::allow, "udp-out"},
      {"half a pattern", dgram(5004, bytes_of("xxTOPSEC")), 1, 0, DropReason::count, 5004,
       Verdict::allow, "udp-out"},
      {"its other half in the next datagram: no match", dgram(5004, bytes_of("RETxx")), 1, 0,
       DropReason::count, 5004, Verdict::allow, "udp-out"},
      {"DNS query naming a key: REFUSED back",
       dgram(5005, dns_query({kKey, "egw", "test"}), kCli, 53), 0, 1, DropReason::inspect_match,
       5005, Verdict::reject, "no-aws-keys"},
      {"DNS query, clean", dgram(5006, dns_query({"www", "egw", "test"}), kCli, 53), 1, 0,
       DropReason::count, 5006, Verdict::allow, "dns-ok"},
      {"a source no inspect rule covers", dgram(5007, bytes_of(kKey), kCliDb), 1, 0,
       DropReason::count, 5007, Verdict::allow, "udp-out"},
      {"first fragment of an inspected datagram", frags.at(0), 0, 0, DropReason::inspect_fragment,
       5009, Verdict::allow, "udp-out"},
      {"its later fragment has no decided datagram", frags.at(1), 0, 0, DropReason::frag_orphan,
       5009, Verdict::allow, "udp-out"},
  };
  for (const Step& s : steps) {
    SCOPED_TRACE(s.what);
    const WorkerCounters before = *w_->counters;
    const Out o = send(s.frame, kInside);
    EXPECT_EQ(o.to_server.size(), s.to_server);
    EXPECT_EQ(o.to_client.size(), s.to_client);
    if (s.reason != DropReason::count) {
      EXPECT_EQ(w_->counters->drop_count(s.reason), before.drop_count(s.reason) + 1);
    }
    if (s.sport == 5005) {  // a DNS answer with RCODE REFUSED, not an ICMP error
      ParsedPacket p;
      ASSERT_EQ(parse_frame(o.to_client.at(0).data(), o.to_client[0].size(), &p).status,
                ParseStatus::ok);
      ASSERT_EQ(p.l34.proto, 17);
      EXPECT_EQ(o.to_client[0][p.payload_offset + 3] & 0x0f, 5);
    }
    FlowEntry* e = flow(s.sport, 17);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->verdict, s.verdict);
    EXPECT_STREQ(policy_->rule_id(e->rule_index), s.rule);
  }
  EXPECT_EQ(w_->counters->inspect_matches, 3u);
  EXPECT_EQ(w_->counters->inspect_streams, 1u) << "one stream serves every datagram";
  EXPECT_EQ(w_->streams.in_use(), 1u);
  flush();
}

// No stream block left: the flow fails closed (RST both ends), the others go on.
TEST_F(InspectTest, PoolExhaustionFailsClosed) {
  TearDown();
  start(2);
  const Bytes payload = filler(40);
  Conn c[3];
  for (uint16_t i = 0; i < 3; ++i) {
    Tcp t;
    t.sport = static_cast<uint16_t>(41000 + i);
    c[i] = run(t, payload, {{0, 40}});
  }
  EXPECT_EQ(c[0].server_bytes.size(), 40u);
  EXPECT_EQ(c[1].server_bytes.size(), 40u);
  EXPECT_TRUE(c[2].server_bytes.empty());
  EXPECT_EQ(c[2].rst_to_client, 1);
  EXPECT_EQ(c[2].rst_to_server, 1);
  EXPECT_EQ(w_->counters->drop_count(DropReason::inspect_no_stream), 1u);
  EXPECT_EQ(w_->streams.in_use(), 2u);
  EXPECT_EQ(flow(41002)->verdict, Verdict::deny);
  // A datagram needs a block too: none left, it fails closed.
  EXPECT_TRUE(send(dgram(5001, filler(10)), kInside).to_server.empty());
  EXPECT_EQ(w_->counters->drop_count(DropReason::inspect_no_stream), 2u);
  const auto records = flush();
  EXPECT_EQ(records.at(41002).verdict, Verdict::deny);
  EXPECT_EQ(records.at(41002).rule_index, kNoRule);
  EXPECT_EQ(records.at(41000).verdict, Verdict::allow);
  EXPECT_EQ(w_->streams.in_use(), 0u);
}

// kPolicy without its IPv6 source: a policy of 64 MiB of LPM tables, not 128.
std::string v4_only(std::string doc) {
  const std::string v6 = R"(, "2001:2:0:1::/64")";
  doc.erase(doc.find(v6), v6.size());
  return doc;
}

// A new policy closes every stream of the old database before the worker uses it; the
// flows reopen one on the new database. A pattern spanning the swap is not matched.
// The swap is PolicySwap's, with this thread as its worker: the old policy is freed once
// the worker, having refreshed, is quiescent. Records name inspect rules through
// PolicySwap's ids of the version that decided them.
TEST_F(InspectTest, PolicySwapClosesStreams) {
  TearDown();
  start(WorkerConfig::kAutoStreams, v4_only(kPolicy));
  const std::string blob10 = test::compile_blob(v4_only(kPolicy), 10);
  PolicySwap swap;
  std::string err;
  ASSERT_TRUE(swap.init({w_.get()}, &err)) << err;
  rte_rcu_qsbr* qsv = swap.qsbr();
  ASSERT_EQ(rte_rcu_qsbr_thread_register(qsv, 0), 0);
  rte_rcu_qsbr_thread_online(qsv, 0);
  swap.install_boot(std::move(policy_));  // the worker's policy, the swap's from now

  Tcp a, b;
  b.sport = 40001;
  const Bytes stream = cat({bytes_of(kKey), filler(5), bytes_of(kKey)});
  const Conn ca = run(a, stream, {{0, 10}});  // half the key
  run(b, filler(30), {{0, 30}});
  EXPECT_EQ(send(dgram(5001, filler(10)), kInside).to_server.size(), 1u);
  EXPECT_EQ(ca.server_bytes.size(), 10u);
  EXPECT_EQ(w_->streams.in_use(), 3u);  // two flows and the datagram stream

  std::atomic<bool> done{false};
  int rc = -1;
  std::string swap_err;
  std::thread control([&] {
    uint64_t ns = 0;
    rc = swap.activate_blob(blob10, 10, &ns, &swap_err);
    done = true;
  });
  while (!done) {  // the worker loop: refresh, then quiescent
    worker_refresh_policy(*w_);
    rte_rcu_qsbr_quiescent(qsv, 0);
  }
  control.join();
  ASSERT_EQ(rc, 0) << swap_err;
  EXPECT_EQ(w_->policy_version, 10u);
  EXPECT_EQ(swap.retired(), 1u) << "the old policy waits for the control loop's reclaim()";
  swap.reclaim();
  EXPECT_EQ(swap.retired(), 0u) << "the old policy is freed";
  EXPECT_EQ(w_->streams.in_use(), 0u);
  EXPECT_EQ(w_->counters->inspect_swap_closed, 3u);
  EXPECT_EQ(w_->dgram, nullptr);

  auto segment = [&](uint32_t off, uint32_t len) {
    Conn c;
    account(send(test::segment_frame(ends(a), stream, {off, len}), kInside), &c);
    return c;
  };
  EXPECT_EQ(segment(10, 15).server_bytes.size(), 15u) << "the key's halves span the swap";
  EXPECT_EQ(w_->streams.in_use(), 1u) << "reopened on the new database";
  const Conn hit = segment(25, 20);
  EXPECT_TRUE(hit.server_bytes.empty());
  EXPECT_EQ(hit.rst_to_server, 1);
  EXPECT_EQ(hit.rst_seq, 25u);
  EXPECT_EQ(w_->inspect_hits[kAwsIndex], 1u);

  auto records = flush();
  EXPECT_EQ(w_->streams.in_use(), 0u);
  FlowRecord& ra = records.at(a.sport);
  FlowRecord& rb = records.at(b.sport);
  EXPECT_EQ(ra.policy_version, 10u);
  EXPECT_EQ(ra.verdict, Verdict::reject);
  swap.fill_rule_id(&ra);
  EXPECT_STREQ(ra.rule_id, "no-aws-keys");
  EXPECT_EQ(rb.policy_version, 9u);  // decided before the swap, quiet since
  swap.fill_rule_id(&rb);
  EXPECT_STREQ(rb.rule_id, "tcp-out");
  w_.reset();  // before the swap frees the policies
  rte_rcu_qsbr_thread_offline(qsv, 0);
  rte_rcu_qsbr_thread_unregister(qsv, 0);
}

// A policy without inspect rules: streams closed, payload no longer scanned.
TEST_F(InspectTest, SwapToAPolicyWithoutInspect) {
  TearDown();
  start(WorkerConfig::kAutoStreams, v4_only(kPolicy));
  std::string doc = v4_only(kPolicy);
  doc.erase(doc.find(R"(  "inspect")"), doc.find(R"(  "limits")") - doc.find(R"(  "inspect")"));
  auto plain = test::compile_policy(doc, 11);
  ASSERT_FALSE(plain->has_inspect());
  const Bytes stream = cat({filler(10), bytes_of(kKey)});
  run({}, stream, {{0, 10}});
  EXPECT_EQ(w_->streams.in_use(), 1u);
  w_->published.store(plain.get());
  worker_refresh_policy(*w_);
  EXPECT_EQ(w_->streams.in_use(), 0u);
  Conn c;
  account(send(test::client_data(ends({}), 10, bytes_of(kKey)), kInside), &c);
  EXPECT_EQ(c.server_bytes.size(), kKey.size());
  EXPECT_EQ(w_->counters->inspect_matches, 0u);
  flush();
  w_.reset();  // before `plain` goes
}

// A policy that brings an established flow under an inspect rule scans it from the
// highest byte its client had sent: what was sent before, retransmissions included,
// passed unscanned; what follows is scanned.
TEST_F(InspectTest, SwapOntoAFlowScansFromItsHighestByte) {
  std::string plain = v4_only(kPolicy);
  plain.erase(plain.find(R"(  "inspect")"),
              plain.find(R"(  "limits")") - plain.find(R"(  "inspect")"));
  TearDown();
  start(WorkerConfig::kAutoStreams, plain);
  auto inspecting = test::compile_policy(v4_only(kPolicy), 10);
  const Bytes stream = cat({filler(10), bytes_of(kKey), filler(10), bytes_of(kKey)});
  Conn c = run({}, stream, {{0, 10}});
  auto segment = [&](uint32_t off, uint32_t len) {
    account(send(test::segment_frame(ends({}), stream, {off, len}), kInside), &c);
  };
  segment(30, 10);  // ahead of a gap: not inspected yet, it passes
  EXPECT_EQ(c.server_bytes.size(), 20u);
  w_->published.store(inspecting.get());
  worker_refresh_policy(*w_);
  segment(10, 20);  // the gap filled after the change: before the start, unscanned
  EXPECT_EQ(c.server_bytes.size(), 40u);
  EXPECT_EQ(w_->counters->inspect_bytes, 0u);
  segment(40, 20);  // past the highest byte sent before: scanned
  EXPECT_EQ(c.server_bytes.size(), 40u);
  EXPECT_EQ(c.rst_to_server, 1);
  EXPECT_EQ(c.rst_seq, 40u);
  EXPECT_EQ(w_->counters->inspect_matches, 1u);
  flush();
  w_.reset();  // before `inspecting` goes
}

}  // namespace
}  // namespace egw
