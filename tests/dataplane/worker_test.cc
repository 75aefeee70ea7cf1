// The worker pipeline end to end on real mbufs: tables of packet sequences, each
// step with the side it arrives on and what must happen (forwarded, dropped with a
// reason, answered). Policies are real documents compiled by the real compiler.
#include <gtest/gtest.h>

#include <rte_mbuf.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/worker.h"
#include "tests/support/frames.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

using test::FrameSpec;
using Frame = std::vector<uint8_t>;

constexpr const char* kPolicy = R"({
  "schema": 1, "default_action": "deny",
  "services": { "web": { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] } },
  "rulesets": [ { "name": "t", "rules": [
    { "id": "http", "from": ["web"], "proto": "tcp", "ports": [80],
      "to": { "cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"] }, "action": "allow" },
    { "id": "dns", "from": ["any"], "proto": "udp", "ports": [53, 123],
      "to": { "cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"] }, "action": "allow" },
    { "id": "ping", "from": ["web"], "proto": "icmp",
      "to": { "cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"] }, "action": "allow" },
    { "id": "rej-tcp", "from": ["any"], "proto": "tcp", "to": { "cidrs": ["198.19.2.0/24"] },
      "action": "reject" },
    { "id": "rej-udp", "from": ["any"], "proto": "udp", "to": { "cidrs": ["198.19.2.0/24"] },
      "action": "reject" },
    { "id": "rej-mcast", "from": ["any"], "proto": "udp", "to": { "cidrs": ["224.0.0.0/4"] },
      "action": "reject" },
    { "id": "tunnels", "from": ["any"], "proto": "any", "to": { "cidrs": ["198.19.3.0/24"] },
      "action": "allow" } ] } ],
  "limits": { "udp_s": 2, "tcp_syn_s": 5 }
})";

constexpr const char* kCli = "198.18.1.2";
constexpr const char* kSrv = "198.19.1.10";
constexpr const char* kRej = "198.19.2.10";
constexpr const char* kCli6 = "2001:2:0:1::2";
constexpr const char* kSrv6 = "2001:2:0:100::10";

enum class Expect { forward, drop, answer };  // answer: dropped, and a reply sent back

struct Step {
  const char* what;
  Frame frame;
  Side from;
  Expect expect;
  DropReason reason = DropReason::count;  // for drop/answer
  uint64_t at_ms = 0;                     // clock of this step, from the case start
};

struct Case {
  const char* name;
  std::vector<Step> steps;
  bool with_policy = true;
  uint32_t flow_capacity = 1024;
};

FrameSpec tcp4(const char* src, const char* dst, uint16_t sp, uint16_t dp, uint8_t flags,
               uint32_t seq, uint32_t ack, std::vector<uint16_t> vlans = {}) {
  FrameSpec s = test::tcp_spec(src, dst, sp, dp, flags, seq, ack);
  s.vlans = std::move(vlans);
  return s;
}
Frame tcp(const char* src, const char* dst, uint16_t sp, uint16_t dp, uint8_t flags, uint32_t seq,
          uint32_t ack, std::vector<uint16_t> vlans = {}) {
  return test::build_frame(tcp4(src, dst, sp, dp, flags, seq, ack, std::move(vlans)));
}
Frame with_payload(FrameSpec s, size_t n) {
  s.payload.assign(n, 'x');
  return test::build_frame(s);
}
Frame udp(const char* src, const char* dst, uint16_t sp, uint16_t dp, size_t len = 20) {
  return test::build_frame(test::udp_spec(src, dst, sp, dp, Frame(len, 'u')));
}
Frame icmp_echo(const char* src, const char* dst, uint8_t type, uint16_t id) {
  FrameSpec s;
  s.family = (std::string(src).find(':') != std::string::npos) ? 6 : 4;
  s.src = src;
  s.dst = dst;
  s.proto = 1;
  s.icmp_type = type;
  s.icmp_id = id;
  return test::build_frame(s);
}
Frame proto_frame(const char* src, const char* dst, uint8_t proto) {
  FrameSpec s;
  s.src = src;
  s.dst = dst;
  s.proto = proto;
  s.payload.assign(24, 0);
  return test::build_frame(s);
}
Frame icmp_error(const char* from, const char* to, uint8_t type, uint8_t code, const Frame& q) {
  FrameSpec s;
  s.src = from;
  s.dst = to;
  s.icmp_type = type;
  s.icmp_code = code;
  return test::build_icmp_error(s, q);
}
Frame bad_checksum(Frame f) {
  f[14 + 10] ^= 0x5a;
  return f;
}
Frame ethertype(uint16_t type) {
  Frame f = tcp(kCli, kSrv, 1000, 80, kTcpSyn, 1, 0);
  f[12] = static_cast<uint8_t>(type >> 8);
  f[13] = static_cast<uint8_t>(type);
  return f;
}

constexpr uint8_t SYN = kTcpSyn, ACK = kTcpAck, SA = kTcpSyn | kTcpAck, FA = kTcpFin | kTcpAck,
                  RST = kTcpRst, PA = kTcpPsh | kTcpAck;

// The steps of an allowed TCP connection, handshake to close.
std::vector<Step> tcp_session(const char* c, const char* s, uint16_t cp) {
  return {
      {"SYN out", tcp(c, s, cp, 80, SYN, 100, 0), kInside, Expect::forward},
      {"SYN-ACK in", tcp(s, c, 80, cp, SA, 5000, 101), kOutside, Expect::forward},
      {"ACK out", tcp(c, s, cp, 80, ACK, 101, 5001), kInside, Expect::forward},
      {"data out", with_payload(tcp4(c, s, cp, 80, PA, 101, 5001), 100), kInside, Expect::forward},
      {"data in", with_payload(tcp4(s, c, 80, cp, PA, 5001, 201), 1000), kOutside,
       Expect::forward},
      {"FIN out", tcp(c, s, cp, 80, FA, 201, 6001), kInside, Expect::forward},
      {"FIN in", tcp(s, c, 80, cp, FA, 6001, 202), kOutside, Expect::forward},
      {"last ACK out", tcp(c, s, cp, 80, ACK, 202, 6002), kInside, Expect::forward},
  };
}

std::vector<Case> cases() {
  std::vector<Case> v;
  v.push_back({"allowed TCP session passes both ways", tcp_session(kCli, kSrv, 40000)});
  {
    Case c{"allowed IPv6 TCP handshake", {}};
    c.steps = {{"SYN out", tcp(kCli6, kSrv6, 40000, 80, SYN, 1, 0), kInside, Expect::forward},
               {"SYN-ACK in", tcp(kSrv6, kCli6, 80, 40000, SA, 9, 2), kOutside, Expect::forward},
               {"ACK out", tcp(kCli6, kSrv6, 40000, 80, ACK, 2, 10), kInside, Expect::forward}};
    v.push_back(c);
  }
  v.push_back({"default deny: port not allowed",
               {{"SYN to 81", tcp(kCli, kSrv, 40000, 81, SYN, 1, 0), kInside, Expect::drop,
                 DropReason::policy_deny},
                {"retransmitted SYN (cached verdict)", tcp(kCli, kSrv, 40000, 81, SYN, 1, 0),
                 kInside, Expect::drop, DropReason::policy_deny}}});
  v.push_back({"source outside every service does not match from:[web]",
               {{"SYN from 198.18.9.9", tcp("198.18.9.9", kSrv, 40000, 80, SYN, 1, 0), kInside,
                 Expect::drop, DropReason::policy_deny}}});
  v.push_back({"reject TCP answers a RST to the client",
               {{"SYN to rejected", tcp(kCli, kRej, 40000, 443, SYN, 1, 0), kInside,
                 Expect::answer, DropReason::policy_reject}}});
  v.push_back({"reject UDP answers ICMP port unreachable",
               {{"UDP to rejected", udp(kCli, kRej, 5000, 9999), kInside, Expect::answer,
                 DropReason::policy_reject}}});
  v.push_back({"no policy: fail closed",
               {{"SYN", tcp(kCli, kSrv, 40000, 80, SYN, 1, 0), kInside, Expect::drop,
                 DropReason::no_policy},
                {"ARP still passes", test::build_arp_request(kCli, kSrv), kInside,
                 Expect::forward}},
               false});
  // Checklist 29: unsolicited inbound packets create nothing.
  for (uint8_t flags : {SYN, SA, ACK, RST}) {
    v.push_back({"unsolicited inbound TCP dropped",
                 {{"inbound", tcp(kSrv, kCli, 80, 40000, flags, 1, 1), kOutside, Expect::drop,
                   DropReason::inbound_no_flow},
                  {"and it left no state: still dropped",
                   tcp(kSrv, kCli, 80, 40000, flags, 1, 1), kOutside, Expect::drop,
                   DropReason::inbound_no_flow}}});
  }
  v.push_back({"unsolicited inbound UDP dropped",
               {{"inbound UDP", udp(kSrv, kCli, 123, 5353), kOutside, Expect::drop,
                 DropReason::inbound_no_flow}}});
  // Checklist 30: replies must come from the exact remote endpoint.
  v.push_back({"reply from another remote port or address dropped",
               {{"query out", udp(kCli, kSrv, 5353, 123), kInside, Expect::forward},
                {"reply from port 54", udp(kSrv, kCli, 54, 5353), kOutside, Expect::drop,
                 DropReason::inbound_no_flow},
                {"reply from .11", udp("198.19.1.11", kCli, 123, 5353), kOutside, Expect::drop,
                 DropReason::inbound_no_flow},
                {"genuine reply", udp(kSrv, kCli, 123, 5353), kOutside, Expect::forward}}});
  // Checklist 31: ICMP errors pass only for the flow they quote.
  {
    Frame syn = tcp(kCli, kSrv, 40001, 80, SYN, 1, 0);
    Frame forged = tcp(kCli, kSrv, 40002, 80, SYN, 1, 0);
    v.push_back({"ICMP errors: quoting an allowed flow passes, forged inner header dropped",
                 {{"SYN out", syn, kInside, Expect::forward},
                  {"unreachable quoting it", icmp_error("198.19.1.1", kCli, 3, 1, syn), kOutside,
                   Expect::forward},
                  {"unreachable quoting another port", icmp_error("198.19.1.1", kCli, 3, 1, forged),
                   kOutside, Expect::drop, DropReason::icmp_error_no_flow}}});
  }
  // ICMP errors must be addressed as the flow they quote, or they are a channel.
  {
    Frame query = udp(kCli, kSrv, 5353, 123);
    Frame reply = udp(kSrv, kCli, 123, 5353);
    v.push_back(
        {"ICMP errors: addresses must match the quoted flow",
         {{"query out", query, kInside, Expect::forward},
          {"inbound error to another inside host",
           icmp_error("198.19.1.1", "198.18.1.3", 3, 3, query), kOutside, Expect::drop,
           DropReason::icmp_error_no_flow},
          {"outbound error to an unrelated outside host (exfiltration)",
           icmp_error(kCli, "198.19.9.9", 3, 3, reply), kInside, Expect::drop,
           DropReason::icmp_error_no_flow},
          {"outbound error from another inside host", icmp_error("198.18.1.3", kSrv, 3, 3, reply),
           kInside, Expect::drop, DropReason::icmp_error_no_flow},
          {"inbound redirect", icmp_error("198.19.1.1", kCli, 5, 1, query), kOutside,
           Expect::drop, DropReason::icmp_error_no_flow},
          {"genuine outbound port unreachable for the reply", icmp_error(kCli, kSrv, 3, 3, reply),
           kInside, Expect::forward},
          {"genuine inbound unreachable", icmp_error("198.19.1.1", kCli, 3, 1, query), kOutside,
           Expect::forward}}});
  }
  v.push_back({"reject never answers multicast or broadcast",
               {{"UDP to 224.0.0.251", udp(kCli, "224.0.0.251", 5353, 5353), kInside, Expect::drop,
                 DropReason::policy_reject}}});
  {
    FrameSpec big = tcp4(kCli, kSrv, 44000, 80, SYN, 1, 0);
    big.payload.assign(600, 'f');  // TCP Fast Open data on the SYN
    auto tf = test::fragment_ipv4(test::build_frame(big), 256);
    v.push_back({"fragmented TCP is refused, before any state",
                 {{"first fragment of a SYN", tf[0], kInside, Expect::drop, DropReason::frag_tcp},
                  {"its second fragment", tf[1], kInside, Expect::drop, DropReason::frag_orphan},
                  {"no flow was made", tcp(kSrv, kCli, 80, 44000, SA, 9, 2), kOutside,
                   Expect::drop, DropReason::inbound_no_flow}}});
  }
  v.push_back({"ICMP echo: reply passes, inbound echo request does not",
               {{"echo request out", icmp_echo(kCli, kSrv, 8, 77), kInside, Expect::forward},
                {"echo reply in", icmp_echo(kSrv, kCli, 0, 77), kOutside, Expect::forward},
                {"echo request in with the same id", icmp_echo(kSrv, kCli, 8, 77), kOutside,
                 Expect::drop, DropReason::inbound_no_flow},
                {"echo reply with another id", icmp_echo(kSrv, kCli, 0, 78), kOutside,
                 Expect::drop, DropReason::inbound_no_flow}}});
  v.push_back({"ICMPv6 echo allowed by proto icmp",
               {{"echo request out", icmp_echo(kCli6, kSrv6, 128, 5), kInside, Expect::forward},
                {"echo reply in", icmp_echo(kSrv6, kCli6, 129, 5), kOutside, Expect::forward}}});
  // Checklist 32/33.
  v.push_back({"mid-stream ACK without a flow dropped",
               {{"ACK out", tcp(kCli, kSrv, 40000, 80, ACK, 1, 1), kInside, Expect::drop,
                 DropReason::midstream_no_flow}}});
  {
    Case c{"out-of-window RST changes nothing", {}};
    c.steps = tcp_session(kCli, kSrv, 40003);
    c.steps.resize(3);
    c.steps.push_back({"RST far outside the window", tcp(kSrv, kCli, 80, 40003, RST, 3000000000u,
                                                         0), kOutside, Expect::drop,
                       DropReason::tcp_out_of_window});
    c.steps.push_back({"data still passes",
                       with_payload(tcp4(kCli, kSrv, 40003, 80, PA, 101, 5001), 10), kInside,
                       Expect::forward});
    c.steps.push_back({"SYN in established", tcp(kCli, kSrv, 40003, 80, SYN, 7, 0), kInside,
                       Expect::drop, DropReason::tcp_invalid});
    v.push_back(c);
  }
  // Checklist 26: the VLAN is part of the flow key.
  v.push_back({"VLAN: a reply on another VLAN is not the same flow",
               {{"SYN on VLAN 10", tcp(kCli, kSrv, 40000, 80, SYN, 1, 0, {10}), kInside,
                 Expect::forward},
                {"SYN-ACK on VLAN 20", tcp(kSrv, kCli, 80, 40000, SA, 9, 2, {20}), kOutside,
                 Expect::drop, DropReason::inbound_no_flow},
                {"SYN-ACK untagged", tcp(kSrv, kCli, 80, 40000, SA, 9, 2), kOutside, Expect::drop,
                 DropReason::inbound_no_flow},
                {"SYN-ACK on VLAN 10", tcp(kSrv, kCli, 80, 40000, SA, 9, 2, {10}), kOutside,
                 Expect::forward},
                {"QinQ 10/20 SYN is another flow, allowed",
                 tcp(kCli, kSrv, 40000, 80, SYN, 1, 0, {10, 20}), kInside, Expect::forward}}});
  // Checklist 27: malformed headers are dropped before any state changes.
  v.push_back({"bad IPv4 checksum dropped before state",
               {{"SYN with bad checksum", bad_checksum(tcp(kCli, kSrv, 40000, 80, SYN, 1, 0)),
                 kInside, Expect::drop, DropReason::bad_ipv4_checksum},
                {"so the SYN-ACK has no flow", tcp(kSrv, kCli, 80, 40000, SA, 9, 2), kOutside,
                 Expect::drop, DropReason::inbound_no_flow}}});
  v.push_back({"L2: ARP both ways, ND both ways, other ethertypes dropped",
               {{"ARP out", test::build_arp_request(kCli, kSrv), kInside, Expect::forward},
                {"ARP in", test::build_arp_request(kSrv, kCli), kOutside, Expect::forward},
                {"NS out", test::build_ndp_ns(kCli6, kSrv6), kInside, Expect::forward},
                {"NS in", test::build_ndp_ns(kSrv6, kCli6), kOutside, Expect::forward},
                {"LLDP", ethertype(0x88cc), kInside, Expect::drop, DropReason::non_ip},
                {"IPX", ethertype(0x8137), kOutside, Expect::drop, DropReason::non_ip}}});
  // Checklist 28: tunnels are denied unless a rule with proto any allows them.
  for (uint8_t proto : {47, 4, 41, 50}) {
    v.push_back({"tunnel protocol denied by default, allowed by proto any",
                 {{"to a server", proto_frame(kCli, kSrv, proto), kInside, Expect::drop,
                   DropReason::policy_deny},
                  {"to the tunnels net", proto_frame(kCli, "198.19.3.3", proto), kInside,
                   Expect::forward}}});
  }
  // Checklist 24: fragments follow their first fragment; overlaps are dropped.
  {
    auto frags = test::fragment_ipv4(udp(kCli, kSrv, 5000, 53, 600), 200);
    Case c{"IPv4 fragments of an allowed datagram pass", {}};
    for (auto& f : frags) c.steps.push_back({"fragment", f, kInside, Expect::forward});
    v.push_back(c);
    Case o{"IPv4 overlapping fragment dropped, and the rest of its datagram", {}};
    auto frags2 = test::fragment_ipv4(udp(kCli, kSrv, 5001, 53, 600), 200);
    o.steps.push_back({"first", frags2[0], kInside, Expect::forward});
    o.steps.push_back({"second", frags2[1], kInside, Expect::forward});
    o.steps.push_back({"second again", frags2[1], kInside, Expect::drop, DropReason::frag_overlap});
    o.steps.push_back({"third", frags2[2], kInside, Expect::drop, DropReason::frag_denied});
    v.push_back(o);
    auto denied = test::fragment_ipv4(udp(kCli, kSrv, 5000, 54, 600), 200);
    v.push_back({"fragments of a denied datagram are dropped",
                 {{"first", denied[0], kInside, Expect::drop, DropReason::policy_deny},
                  {"second", denied[1], kInside, Expect::drop, DropReason::frag_orphan}}});
    v.push_back({"a later fragment without its first is dropped",
                 {{"second alone", denied[1], kInside, Expect::drop, DropReason::frag_orphan}}});
    auto tiny = test::fragment_ipv4(tcp(kCli, kSrv, 40000, 80, SYN, 1, 0), 8);
    v.push_back({"tiny first fragment without the TCP header is dropped",
                 {{"tiny first", tiny[0], kInside, Expect::drop, DropReason::frag_no_l4}}});
    auto f6 = test::fragment_ipv6(udp(kCli6, kSrv6, 5000, 53, 600), 200);
    Case c6{"IPv6 fragments follow their first; an overlap ends the datagram", {}};
    c6.steps.push_back({"first", f6[0], kInside, Expect::forward});
    c6.steps.push_back({"second", f6[1], kInside, Expect::forward});
    c6.steps.push_back({"first again", f6[0], kInside, Expect::drop, DropReason::frag_overlap});
    c6.steps.push_back({"third", f6[2], kInside, Expect::drop, DropReason::frag_denied});
    v.push_back(c6);
  }
  // Checklist 34: a full table denies new flows, evicting embryonic ones first.
  {
    Case c{"full table: established flow kept, embryonic evicted, then fail closed", {}};
    c.flow_capacity = 4;
    auto sess = tcp_session(kCli, kSrv, 41000);
    sess.resize(3);  // established
    c.steps = sess;
    for (uint16_t p = 42000; p < 42003; ++p)
      c.steps.push_back({"SYN fills the table", tcp(kCli, kSrv, p, 80, SYN, 1, 0), kInside,
                         Expect::forward});
    c.steps.push_back({"one more SYN evicts the oldest embryonic",
                       tcp(kCli, kSrv, 42003, 80, SYN, 1, 0), kInside, Expect::forward});
    c.steps.push_back({"the evicted flow's SYN-ACK has no flow",
                       tcp(kSrv, kCli, 80, 42000, SA, 9, 2), kOutside, Expect::drop,
                       DropReason::inbound_no_flow});
    c.steps.push_back({"the established flow still passes",
                       with_payload(tcp4(kCli, kSrv, 41000, 80, PA, 101, 5001), 10), kInside,
                       Expect::forward});
    v.push_back(c);
  }
  // Checklist 36: states time out at their configured time.
  v.push_back({"UDP flow expires at limits.udp_s",
               {{"query", udp(kCli, kSrv, 6000, 123), kInside, Expect::forward, {}, 0},
                {"reply just before 2 s", udp(kSrv, kCli, 123, 6000), kOutside, Expect::forward,
                 {}, 1999},
                {"reply 2 s after the last packet", udp(kSrv, kCli, 123, 6000), kOutside,
                 Expect::drop, DropReason::inbound_no_flow, 3999}}});
  v.push_back({"SYN_SENT expires at limits.tcp_syn_s",
               {{"SYN", tcp(kCli, kSrv, 43000, 80, SYN, 1, 0), kInside, Expect::forward, {}, 0},
                {"late SYN-ACK", tcp(kSrv, kCli, 80, 43000, SA, 9, 2), kOutside, Expect::drop,
                 DropReason::inbound_no_flow, 5000}}});
  return v;
}

// The drop reasons whose counters moved between two snapshots, for failure messages.
std::string changed_reasons(const WorkerCounters& a, const WorkerCounters& b) {
  std::string out;
  for (unsigned r = 0; r < kDropReasonCount; ++r)
    if (a.drops[r] != b.drops[r]) out += std::string(drop_reason_name(DropReason(r))) + " ";
  return out.empty() ? "none" : out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class WorkerTest : public testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("worker_test", 4095, kPolicy, 7)); }
  static void TearDownTestSuite() { suite_.tear_down(); }
  // A worker on the test pool running `policy` (nullptr: none), recording into ring.
  static std::unique_ptr<WorkerCtx> make_worker(FlowRecordRing* ring, const RuntimePolicy* policy,
                                                uint32_t flows = 65536) {
    auto w = std::make_unique<WorkerCtx>();
    WorkerConfig cfg = test::worker_config(suite_.pool, flows);
    cfg.hash_seed[0] = 0x1234;
    cfg.hash_seed[1] = 0x5678;
    EXPECT_TRUE(test::start_worker(*w, cfg, ring, policy));
    return w;
  }
  static test::Out send(WorkerCtx& w, const Frame& f, Side from, uint64_t now) {
    return test::send_frame(w, suite_.pool, f, from, now);
  }
  static inline test::SuiteState suite_;
};

TEST_P(WorkerTest, Steps) {
  const Case& c = GetParam();
  auto ring = std::make_unique<FlowRecordRing>();
  auto w = make_worker(ring.get(), c.with_policy ? suite_.policy.get() : nullptr, c.flow_capacity);
  const unsigned pool_free = rte_mempool_avail_count(suite_.pool);

  for (const Step& s : c.steps) {
    SCOPED_TRACE(s.what);
    const WorkerCounters before = *w->counters;
    const test::Out out = send(*w, s.frame, s.from, test::at_ms(s.at_ms));
    const Side other = s.from == kInside ? kOutside : kInside;
    switch (s.expect) {
      case Expect::forward:
        ASSERT_EQ(out.on(other).size(), 1u)
            << "not forwarded: " << changed_reasons(before, *w->counters);
        EXPECT_EQ(out.on(s.from).size(), 0u);
        EXPECT_EQ(out.on(other)[0].size(), s.frame.size());
        EXPECT_EQ(out.on(other)[0], s.frame);
        EXPECT_EQ(w->counters->total_drops(), before.total_drops());
        break;
      case Expect::drop:
      case Expect::answer:
        EXPECT_EQ(out.on(other).size(), 0u) << "forwarded";
        EXPECT_EQ(out.on(s.from).size(), s.expect == Expect::answer ? 1u : 0u);
        EXPECT_EQ(w->counters->drop_count(s.reason), before.drop_count(s.reason) + 1)
            << "expected drop reason " << drop_reason_name(s.reason) << ", got "
            << changed_reasons(before, *w->counters);
        EXPECT_EQ(w->counters->total_drops(), before.total_drops() + 1);
        break;
    }
    if (s.expect == Expect::answer && out.on(s.from).size() == 1) {
      // The answer goes back to the sender: its destination is the packet's source.
      ParsedPacket orig, ans;
      ASSERT_EQ(parse_frame(s.frame.data(), s.frame.size(), &orig).status, ParseStatus::ok);
      const Frame& a = out.on(s.from)[0];
      ASSERT_EQ(parse_frame(a.data(), a.size(), &ans).status, ParseStatus::ok);
      EXPECT_EQ(0, memcmp(ans.l34.dst, orig.l34.src, 16));
      EXPECT_EQ(0, memcmp(ans.l34.src, orig.l34.dst, 16));
      if (orig.l34.proto == kProtoTcp) {
        EXPECT_EQ(ans.l34.proto, kProtoTcp);
        EXPECT_TRUE(ans.tcp_flags & kTcpRst);
        EXPECT_EQ(ans.l34.dport, orig.l34.sport);
        EXPECT_EQ(ans.tcp_ack, orig.tcp_seq + 1);
      } else {
        EXPECT_TRUE(ans.icmp_is_error);
        EXPECT_EQ(0, memcmp(ans.inner.src, orig.l34.src, 16));
        EXPECT_EQ(ans.inner.sport, orig.l34.sport);
        EXPECT_EQ(ans.inner.dport, orig.l34.dport);
      }
    }
  }
  EXPECT_EQ(w->counters->rx_packets, c.steps.size());
  // Every flow ends with exactly one record; counters stay exact.
  const uint64_t created = w->counters->flows_created;
  worker_flush(*w);
  EXPECT_EQ(ring->size(), created);
  EXPECT_EQ(w->flows.size(), 0u);
  EXPECT_EQ(rte_mempool_avail_count(suite_.pool), pool_free) << "mbuf leak";
}

// Fragments arriving back to back in one burst follow the decision their first
// fragment got earlier in that same burst; the reply's fragments too.
TEST_F(WorkerTest, FragmentsInOneBurst) {
  auto ring = std::make_unique<FlowRecordRing>();
  auto w = make_worker(ring.get(), suite_.policy.get());
  struct Run {
    std::vector<Frame> frames;
    Side from;
  };
  const Run runs[] = {{test::fragment_ipv4(udp(kCli, kSrv, 7000, 53, 1400), 400), kInside},
                      {test::fragment_ipv4(udp(kSrv, kCli, 53, 7000, 1400), 400), kOutside},
                      {test::fragment_ipv6(udp(kCli6, kSrv6, 7000, 53, 1400), 400), kInside}};
  for (const Run& r : runs) {
    ASSERT_GE(r.frames.size(), 3u);
    const test::Out out = test::send_burst(*w, suite_.pool, r.frames, r.from, test::kT0);
    const Side other = r.from == kInside ? kOutside : kInside;
    EXPECT_EQ(out.on(other).size(), r.frames.size())
        << changed_reasons(WorkerCounters{}, *w->counters);
  }
  EXPECT_EQ(w->counters->total_drops(), 0u);
}

// Reject answers are rate limited per worker: a burst of kBurst, then kPerSecond.
TEST_F(WorkerTest, RejectAnswersAreRateLimited) {
  auto w = make_worker(nullptr, suite_.policy.get());
  uint64_t now = test::kT0;
  auto send_syns = [&](uint16_t first_port, unsigned count) {
    size_t answers = 0;
    for (unsigned i = 0; i < count; ++i) {
      Frame f = tcp(kCli, kRej, static_cast<uint16_t>(first_port + i), 443, SYN, 1, 0);
      answers += send(*w, f, kInside, now).to_client.size();
    }
    return answers;
  };
  EXPECT_EQ(send_syns(20000, SynthLimiter::kBurst + 50), SynthLimiter::kBurst);
  EXPECT_EQ(w->counters->synth_limited, 50u);
  EXPECT_EQ(w->counters->drop_count(DropReason::policy_reject), SynthLimiter::kBurst + 50);
  now += 10'000'000;  // 10 ms: 10 more tokens at 1000/s
  EXPECT_EQ(send_syns(30000, 20), 10u);
}

INSTANTIATE_TEST_SUITE_P(Table, WorkerTest, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<Case>& i) {
                           return "case" + std::to_string(i.index);
                         });

// A flow record carries the decision, the rule and the counts of both directions.
TEST_F(WorkerTest, SessionRecord) {
  auto ring = std::make_unique<FlowRecordRing>();
  auto w = make_worker(ring.get(), suite_.policy.get());
  uint64_t now = test::kT0;
  uint64_t bytes[2] = {0, 0};
  for (const Step& s : tcp_session(kCli, kSrv, 40000)) {
    bytes[s.from] += s.frame.size();
    now += 1000;
    send(*w, s.frame, s.from, now);
  }
  worker_flush(*w);
  FlowRecord r;
  ASSERT_TRUE(ring->pop(&r));
  EXPECT_EQ(r.verdict, Verdict::allow);
  EXPECT_STREQ(r.rule_id, "http") << "the policy in force names its rule";
  EXPECT_EQ(r.policy_version, 7u);
  EXPECT_EQ(r.pkts[0], 5u);
  EXPECT_EQ(r.pkts[1], 3u);
  EXPECT_EQ(r.bytes[0], bytes[kInside]);
  EXPECT_EQ(r.bytes[1], bytes[kOutside]);
  EXPECT_EQ(r.key.inside_port, 40000);
  EXPECT_EQ(r.key.remote_port, 80);
  EXPECT_EQ(r.rtt_us, 1u);   // SYN -> SYN-ACK took 1000 ns
  EXPECT_EQ(r.ttfb_us, 1u);  // data out -> data in, 1000 ns
  EXPECT_EQ(r.rst, 0);
  EXPECT_GE(r.tcp_state, TcpState::closing);
  EXPECT_EQ(r.reason, EndReason::shutdown);
  // The rule's counters: one decision, one RTT, one time to first byte.
  const stats::RuleCounters& rc = w->rules[r.rule_slot];
  EXPECT_EQ(r.rule_slot, suite_.policy->rule_slot(r.rule_index));
  EXPECT_EQ(rc.hits, 1u);
  EXPECT_EQ(rc.rtt.bucket[0], 1u);
  EXPECT_EQ(rc.rtt.sum_us, 1u);
  EXPECT_EQ(rc.ttfb.bucket[0], 1u);
  EXPECT_EQ(rc.resets, 0u);
  const std::string json = flow_record_json(r);
  EXPECT_NE(json.find("\"rule_id\":\"http\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"ttfb_us\":1}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"src_ip\":\"198.18.1.2\""), std::string::npos) << json;
}

// What a flow's record and its rule's counters say of its response times, its resets and
// how it ended: the handshake RTT (SYN to SYN-ACK), the time to first byte (first request
// byte to first response byte, or a datagram to its answer), RSTs by who sent them.
struct TimingCase {
  const char* name;
  std::vector<Step> steps;  // at_ms: the step's clock
  uint64_t end_at_ms;       // aged at this time (0: flushed at shutdown instead)
  const char* rule;         // the rule whose counters are checked
  // Expected of the record
  uint32_t rtt_us, ttfb_us;
  uint8_t rst;
  EndReason reason;
  // Expected of the rule's counters
  uint64_t hits, rtt_count, ttfb_count, resets, syn_timeouts;
};

std::vector<TimingCase> timing_cases() {
  const auto at = [](Step s, uint64_t ms) {
    s.at_ms = ms;
    return s;
  };
  constexpr uint8_t PA_ = kTcpPsh | kTcpAck;
  return {
      {"UDP datagram answered 3 ms later",
       {at({"out", udp(kCli, kSrv, 5000, 123), kInside, Expect::forward}, 0),
        at({"in", udp(kSrv, kCli, 123, 5000), kOutside, Expect::forward}, 3)},
       0, "dns", 0, 3000, 0, EndReason::shutdown, 1, 0, 1, 0, 0},
      {"ICMP echo answered 2 ms later",
       {at({"request", icmp_echo(kCli, kSrv, 8, 77), kInside, Expect::forward}, 0),
        at({"reply", icmp_echo(kSrv, kCli, 0, 77), kOutside, Expect::forward}, 2)},
       0, "ping", 0, 2000, 0, EndReason::shutdown, 1, 0, 1, 0, 0},
      {"TCP: RTT 1 ms, first byte 5 ms after the request, then the server resets",
       {at({"SYN", tcp(kCli, kSrv, 41000, 80, SYN, 100, 0), kInside, Expect::forward}, 0),
        at({"SYN-ACK", tcp(kSrv, kCli, 80, 41000, SA, 5000, 101), kOutside, Expect::forward}, 1),
        at({"ACK", tcp(kCli, kSrv, 41000, 80, ACK, 101, 5001), kInside, Expect::forward}, 1),
        at({"request", with_payload(tcp4(kCli, kSrv, 41000, 80, PA_, 101, 5001), 50), kInside,
            Expect::forward}, 2),
        at({"response", with_payload(tcp4(kSrv, kCli, 80, 41000, PA_, 5001, 151), 500),
            kOutside, Expect::forward}, 7),
        at({"RST", tcp(kSrv, kCli, 80, 41000, RST | ACK, 5501, 151), kOutside, Expect::forward},
           8)},
       0, "http", 1000, 5000, kRstFromServer, EndReason::shutdown, 1, 1, 1, 1, 0},
      {"TCP: the client resets; its entry ends after tcp_closing_s as reset",
       {at({"SYN", tcp(kCli, kSrv, 41001, 80, SYN, 100, 0), kInside, Expect::forward}, 0),
        at({"SYN-ACK", tcp(kSrv, kCli, 80, 41001, SA, 5000, 101), kOutside, Expect::forward}, 2),
        at({"RST", tcp(kCli, kSrv, 41001, 80, RST | ACK, 101, 5001), kInside, Expect::forward},
           3)},
       100000, "http", 2000, 0, kRstFromClient, EndReason::reset, 1, 1, 0, 1, 0},
      {"TCP: the server speaks first: no request, no time to first byte",
       {at({"SYN", tcp(kCli, kSrv, 41002, 80, SYN, 100, 0), kInside, Expect::forward}, 0),
        at({"SYN-ACK", tcp(kSrv, kCli, 80, 41002, SA, 5000, 101), kOutside, Expect::forward}, 1),
        at({"ACK", tcp(kCli, kSrv, 41002, 80, ACK, 101, 5001), kInside, Expect::forward}, 1),
        at({"banner", with_payload(tcp4(kSrv, kCli, 80, 41002, PA_, 5001, 101), 40), kOutside,
            Expect::forward}, 3),
        at({"request", with_payload(tcp4(kCli, kSrv, 41002, 80, PA_, 101, 5041), 10), kInside,
            Expect::forward}, 4)},
       0, "http", 1000, 0, 0, EndReason::shutdown, 1, 1, 0, 0, 0},
      {"TCP: a SYN never answered times out: a SYN timeout of its rule",
       {at({"SYN", tcp(kCli, kSrv, 41003, 80, SYN, 100, 0), kInside, Expect::forward}, 0),
        at({"SYN again", tcp(kCli, kSrv, 41003, 80, SYN, 100, 0), kInside, Expect::forward},
           1000)},
       10000, "http", 0, 0, 0, EndReason::timeout, 1, 0, 0, 0, 1},
      {"TCP rejected: a hit of the reject rule, ended by the policy",
       {at({"SYN", tcp(kCli, kRej, 41004, 80, SYN, 100, 0), kInside, Expect::answer,
            DropReason::policy_reject}, 0)},
       100000, "rej-tcp", 0, 0, 0, EndReason::policy, 1, 0, 0, 0, 0},
  };
}

class WorkerTimingTest : public WorkerTest {};

TEST_F(WorkerTimingTest, RecordsAndRuleCounters) {
  for (const TimingCase& c : timing_cases()) {
    SCOPED_TRACE(c.name);
    auto ring = std::make_unique<FlowRecordRing>();
    auto w = make_worker(ring.get(), suite_.policy.get());
    for (const Step& s : c.steps) {
      const test::Out out = send(*w, s.frame, s.from, test::at_ms(s.at_ms));
      if (s.expect == Expect::forward) {
        EXPECT_EQ(out.on(s.from == kInside ? kOutside : kInside).size(), 1u) << s.what;
      }
    }
    if (c.end_at_ms != 0) {
      for (int i = 0; i < 64 && w->flows.size() != 0; ++i)
        worker_housekeeping(*w, test::at_ms(c.end_at_ms));
    }
    worker_flush(*w);
    FlowRecord r;
    ASSERT_TRUE(ring->pop(&r));
    EXPECT_FALSE(ring->pop(&r)) << "one flow, one record";
    EXPECT_EQ(r.rtt_us, c.rtt_us);
    EXPECT_EQ(r.ttfb_us, c.ttfb_us);
    EXPECT_EQ(r.rst, c.rst);
    EXPECT_EQ(end_reason_name(r.reason), std::string(end_reason_name(c.reason)));
    EXPECT_STREQ(r.rule_id, c.rule);
    const stats::RuleCounters& k = w->rules[r.rule_slot];
    uint64_t rtts = 0, ttfbs = 0;
    for (uint64_t b : k.rtt.bucket) rtts += b;
    for (uint64_t b : k.ttfb.bucket) ttfbs += b;
    EXPECT_EQ(k.hits, c.hits);
    EXPECT_EQ(rtts, c.rtt_count);
    EXPECT_EQ(k.rtt.sum_us, c.rtt_count ? c.rtt_us : 0);
    EXPECT_EQ(ttfbs, c.ttfb_count);
    EXPECT_EQ(k.ttfb.sum_us, c.ttfb_count ? c.ttfb_us : 0);
    EXPECT_EQ(k.resets, c.resets);
    EXPECT_EQ(k.syn_timeouts, c.syn_timeouts);
  }
}

// --flow-log-sample N keeps 1 in N allowed flows' records (by flow id) and every
// refused one's; the others are counted.
TEST_F(WorkerTimingTest, SamplingKeepsEveryRefusedFlow) {
  auto ring = std::make_unique<FlowRecordRing>();
  auto w = std::make_unique<WorkerCtx>();
  WorkerConfig cfg = test::worker_config(suite_.pool, 1024);
  cfg.record_sample = 4;
  ASSERT_TRUE(test::start_worker(*w, cfg, ring.get(), suite_.policy.get()));
  for (uint16_t i = 0; i < 8; ++i)
    send(*w, udp(kCli, kSrv, static_cast<uint16_t>(6000 + i), 123), kInside, test::kT0);
  for (uint16_t i = 0; i < 3; ++i)
    send(*w, udp(kCli, kRej, static_cast<uint16_t>(7000 + i), 99), kInside, test::kT0);
  worker_flush(*w);
  unsigned allowed = 0, refused = 0;
  FlowRecord r;
  while (ring->pop(&r)) (r.verdict == Verdict::allow ? allowed : refused)++;
  EXPECT_EQ(allowed, 2u);  // flow ids 4 and 8 of 1..8
  EXPECT_EQ(refused, 3u);
  EXPECT_EQ(w->counters->flow_records_sampled_out, 6u);
}

}  // namespace
}  // namespace egw
