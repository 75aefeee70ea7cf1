// The worker's L7 stage on real mbufs: TCP flows that wait for their name (held,
// reassembled, released re-segmented, or refused), flows watched after they were
// allowed, DNS over UDP judged per query. Each case drives a whole connection through
// worker_process_burst and rebuilds what the server received from the forwarded
// segments: an allowed flow's server must see exactly the client's bytes, a refused
// one none of them. Policies are real documents compiled by the real compiler.
#include <gtest/gtest.h>

#include <rte_mbuf.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/worker.h"
#include "mgmt/compiler.h"
#include "tests/support/frames.h"
#include "tests/support/tls_hello.h"

namespace egw {
namespace {

using test::FrameSpec;
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
constexpr uint8_t SYN = 0x02, ACK = 0x10, PSH = 0x08, FIN = 0x01, RST = 0x04;

// One client segment: bytes [off, off + len) of the stream (or `fill` bytes instead of
// the stream's, to send different content), at a time.
struct Seg {
  uint32_t off, len;
  int fill = -1;  // >= 0: every byte is this value instead of the stream's
  uint64_t at_ms = 0;
  bool syn = false;  // carried on the SYN (TCP Fast Open)
  bool fin = false;
};

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

std::vector<Seg> cuts(size_t total, std::vector<uint32_t> at) {
  std::vector<Seg> out;
  uint32_t prev = 0;
  at.push_back(static_cast<uint32_t>(total));
  for (uint32_t a : at) {
    if (a > prev) out.push_back({prev, a - prev});
    prev = a;
  }
  return out;
}
std::vector<Seg> every(size_t total, uint32_t n) {
  std::vector<uint32_t> at;
  for (uint32_t i = n; i < total; i += n) at.push_back(i);
  return cuts(total, at);
}
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
  static void SetUpTestSuite() {
    pool_ = rte_pktmbuf_pool_create("worker_l7_test", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool_, nullptr);
    auto compiled = mgmt::compile_document(kPolicy, 9);
    ASSERT_TRUE(compiled.errors.empty())
        << compiled.errors[0].path << ": " << compiled.errors[0].message;
    std::string err;
    policy_ = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(compiled.blob.data()),
                                  compiled.blob.size(), &err)
                  .release();
    ASSERT_NE(policy_, nullptr) << err;
  }
  static void TearDownTestSuite() {
    delete policy_;
    policy_ = nullptr;
    rte_mempool_free(pool_);
  }

  void SetUp() override {
    ring_ = std::make_unique<FlowRecordRing>();
    w_ = std::make_unique<WorkerCtx>();
    WorkerConfig cfg;
    cfg.flow_capacity = 1024;
    cfg.frag_capacity = 64;
    cfg.l7_contexts = 4;
    cfg.hash_seed[0] = 1;
    cfg.hash_seed[1] = 2;
    cfg.pool = pool_;
    ASSERT_TRUE(worker_init(*w_, cfg, ring_.get()));
    w_->published.store(policy_);
    worker_refresh_policy(*w_);
    pool_free_ = rte_mempool_avail_count(pool_);
  }
  void TearDown() override {
    w_.reset();
    ring_.reset();
    // Nothing held or leaked: every mbuf is back in the pool.
    EXPECT_EQ(rte_mempool_avail_count(pool_), pool_free_);
  }

  // Sends one frame from `from` at t0 + ms; the packets that came out, freed after
  // their bytes were copied.
  struct Out {
    std::vector<Bytes> to_server;  // forwarded outward (kOutside)
    std::vector<Bytes> to_client;  // sent back inward (kInside)
  };
  Out send(const Bytes& frame, Side from, uint64_t ms) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    EXPECT_NE(m, nullptr);
    memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
           frame.size());
    TxBatch out[2];
    worker_process_burst(*w_, &m, 1, from, kT0 + ms * 1000000ull, out);
    Out r;
    for (int side = 0; side < 2; ++side) {
      for (unsigned i = 0; i < out[side].n; ++i) {
        rte_mbuf* o = out[side].pkts[i];
        const uint8_t* d = rte_pktmbuf_mtod(o, const uint8_t*);
        Bytes b(d, d + rte_pktmbuf_data_len(o));
        (side == kOutside ? r.to_server : r.to_client).push_back(std::move(b));
        rte_pktmbuf_free(o);
      }
    }
    return r;
  }

  FrameSpec spec(int family, bool outbound, uint16_t port, uint8_t flags, uint32_t seq,
                 uint32_t ack, uint16_t sport = 40000) {
    FrameSpec s;
    s.family = static_cast<uint8_t>(family);
    const char* cli = family == 4 ? kCli : kCli6;
    const char* srv = family == 4 ? kSrv : kSrv6;
    s.src = outbound ? cli : srv;
    s.dst = outbound ? srv : cli;
    s.proto = 6;
    s.sport = outbound ? sport : port;
    s.dport = outbound ? port : sport;
    s.tcp_flags = flags;
    s.seq = seq;
    s.ack = ack;
    if (!outbound) {
      s.src_mac = test::kOutsideMac;
      s.dst_mac = test::kInsideMac;
    }
    return s;
  }

  // What a connection did: the bytes the server received (rebuilt by sequence number
  // from the forwarded data segments), the RSTs each side got.
  struct Conn {
    std::map<uint32_t, uint8_t> server_bytes;  // stream offset -> byte
    int rst_to_client = 0, rst_to_server = 0;
    size_t answers = 0;
  };
  void account(const Out& o, uint32_t base, Conn* c) {
    for (const Bytes& f : o.to_server) {
      ParsedPacket p;
      ASSERT_EQ(parse_frame(f.data(), f.size(), &p).status, ParseStatus::ok);
      if (p.l34.proto != 6) continue;
      if (p.tcp_flags & RST) ++c->rst_to_server;
      const uint32_t seq = p.tcp_seq + ((p.tcp_flags & SYN) ? 1 : 0);
      for (uint16_t i = 0; i < p.payload_len; ++i) {
        const uint32_t off = seq + i - base;
        const uint8_t b = f[p.payload_offset + i];
        auto [it, fresh] = c->server_bytes.emplace(off, b);
        EXPECT_TRUE(fresh || it->second == b) << "the server got two versions of byte " << off;
      }
    }
    for (const Bytes& f : o.to_client) {
      ParsedPacket p;
      ASSERT_EQ(parse_frame(f.data(), f.size(), &p).status, ParseStatus::ok);
      if (p.l34.proto == 6 && (p.tcp_flags & RST)) ++c->rst_to_client;
      ++c->answers;
    }
  }

  // Handshake, then the client's segments; the server ACKs nothing (held data is not
  // acknowledged), so the flight is only what the client sends.
  Conn run(const TcpCase& tc) {
    Conn c;
    const uint32_t base = kIsn + 1;
    std::vector<Seg> segs = tc.segs;
    if (segs.empty()) segs.push_back({0, static_cast<uint32_t>(tc.stream.size())});
    const bool tfo = !segs.empty() && segs[0].syn;
    auto data_frame = [&](const Seg& s) {
      FrameSpec f = spec(tc.family, true, tc.port,
                         s.syn ? SYN : static_cast<uint8_t>(ACK | PSH | (s.fin ? FIN : 0)),
                         s.syn ? kIsn : base + s.off, s.syn ? 0 : kSrvIsn + 1);
      for (uint32_t i = 0; i < s.len; ++i) {
        f.payload.push_back(s.fill >= 0 ? static_cast<uint8_t>(s.fill) : tc.stream[s.off + i]);
      }
      return test::build_frame(f);
    };
    if (tfo) {
      account(send(data_frame(segs[0]), kInside, 0), base, &c);
      segs.erase(segs.begin());
    } else {
      account(send(test::build_frame(spec(tc.family, true, tc.port, SYN, kIsn, 0)), kInside, 0),
              base, &c);
    }
    account(send(test::build_frame(spec(tc.family, false, tc.port, SYN | ACK, kSrvIsn, base)),
                 kOutside, 0),
            base, &c);
    account(send(test::build_frame(spec(tc.family, true, tc.port, ACK, base, kSrvIsn + 1)),
                 kInside, 0),
            base, &c);
    for (const Seg& s : segs) account(send(data_frame(s), kInside, s.at_ms), base, &c);
    return c;
  }

  FlowEntry* flow_of(int family, uint16_t port, uint16_t sport = 40000) {
    FlowEntry* found = nullptr;
    w_->flows.for_each([&](FlowEntry& e) {
      if (e.key.family == family && e.key.remote_port == port && e.key.inside_port == sport)
        found = &e;
    });
    return found;
  }

  static constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;
  static rte_mempool* pool_;
  static RuntimePolicy* policy_;
  std::unique_ptr<FlowRecordRing> ring_;
  std::unique_ptr<WorkerCtx> w_;
  unsigned pool_free_ = 0;
};
rte_mempool* WorkerL7Test::pool_ = nullptr;
RuntimePolicy* WorkerL7Test::policy_ = nullptr;

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
  }
  {
    Bytes q = {0, 0};  // DNS over TCP: length prefix, then the query
    const Bytes msg = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3,   'w', 'w', 'w',
                       3,    'e',  'g',  'w',  4, 't', 'e', 's', 't', 0, 0, 1, 0,   1};
    q[1] = static_cast<uint8_t>(msg.size());
    q.insert(q.end(), msg.begin(), msg.end());
    v.push_back({"DNS over TCP split in 3 (checklist 22)", 4, 53, q, every(q.size(), 11),
                 Want::allow, "dns-tcp-ok", {}, "www.egw.test"});
  }
  v.push_back({"no name needed: plain rule, the name is still logged", 4, 8443, ok, {},
               Want::allow, "plain-8443", {}, "allowed.egw.test"});
  return v;
}

TEST_F(WorkerL7Test, TcpCases) {
  for (const TcpCase& tc : tcp_cases()) {
    SCOPED_TRACE(tc.name);
    TearDown();
    SetUp();
    const WorkerCounters before = w_->counters;
    const Conn c = run(tc);
    FlowEntry* e = flow_of(tc.family, tc.port);
    ASSERT_NE(e, nullptr);
    const std::string rule = e->rule_index == kNoRule ? "" : policy_->rule_id(e->rule_index);
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
        EXPECT_GT(w_->counters.drop_count(tc.reason), before.drop_count(tc.reason));
        break;
    }
    if (tc.want != Want::reset) EXPECT_EQ(rule, tc.rule);
    if (!tc.name_logged.empty()) {
      const l7::FlowName& n = w_->aux[w_->flows.index_of(e)].app;
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
  EXPECT_EQ(w_->counters.drop_count(DropReason::l7_bad), 1u);
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
  EXPECT_EQ(w_->counters.drop_count(DropReason::l7_inbound_wait), 5u);
  EXPECT_EQ(w_->counters.drop_count(DropReason::l7_no_context), 1u);  // 4 contexts
  EXPECT_EQ(w_->counters.l7_held, 4u);
}

// DNS over UDP: each query judged on its name; responses only for queries that passed.
TEST_F(WorkerL7Test, DnsQueriesAndResponses) {
  auto query = [](uint16_t id, const std::string& name, uint16_t qd = 1) {
    Bytes m = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0x00, 0,
               static_cast<uint8_t>(qd), 0, 0, 0, 0, 0, 0};
    size_t start = 0;
    const std::string n = name + ".";
    for (size_t i = 0; i < n.size(); ++i) {
      if (n[i] == '.') {
        m.push_back(static_cast<uint8_t>(i - start));
        m.insert(m.end(), n.begin() + static_cast<long>(start), n.begin() + static_cast<long>(i));
        start = i + 1;
      }
    }
    m.push_back(0);
    m.insert(m.end(), {0, 1, 0, 1});
    return m;
  };
  auto frame = [](bool out, const Bytes& msg, int family = 4) {
    FrameSpec s;
    s.family = static_cast<uint8_t>(family);
    const char* cli = family == 4 ? kCli : kCli6;
    const char* srv = family == 4 ? kSrv : kSrv6;
    s.src = out ? cli : srv;
    s.dst = out ? srv : cli;
    s.proto = 17;
    s.sport = out ? 5353 : 53;
    s.dport = out ? 53 : 5353;
    s.payload = msg;
    if (!out) {
      s.src_mac = test::kOutsideMac;
      s.dst_mac = test::kInsideMac;
    }
    return test::build_frame(s);
  };
  auto response = [&](uint16_t id, const std::string& name) {
    Bytes m = query(id, name);
    m[2] = 0x81;
    m[3] = 0x80;
    return m;
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
    const WorkerCounters before = w_->counters;
    const Out o = send(s.frame, s.from, 0);
    const Side other = s.from == kInside ? kOutside : kInside;
    EXPECT_EQ((other == kOutside ? o.to_server : o.to_client).size(),
              s.from == kInside ? s.to_server : s.to_client);
    EXPECT_EQ((s.from == kInside ? o.to_client : o.to_server).size(),
              s.from == kInside ? s.to_client : s.to_server);
    if (s.reason != DropReason::count) {
      EXPECT_EQ(w_->counters.drop_count(s.reason), before.drop_count(s.reason) + 1);
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
