// Benchmark of the worker pipeline in process, without a PMD: the established,
// new_flows_l34, new_flows_sni and flow_memory scenarios of make perf, and the first two
// again with a rate limit, a byte rate and a quota on every rule (*_limited). Frames are written
// into mbufs ahead of time (untimed); worker_process_burst() runs on them and what it
// forwards is handed back and sent again (egw does not modify the frames it forwards).
// Cycles are rte_rdtsc around the bursts, median of --reps repetitions. Built with
// -DEGW_STAGE_CLOCKS (make perf-stages) it also reports the cycles of each pipeline stage.
// Every packet must be forwarded: a drop ends the run, naming the drop reasons.
// Usage: worker_bench [--scenario NAME]... [--reps N] [--json FILE]
#include <malloc.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/bytes.h"
#include "dataplane/parse.h"
#include "dataplane/policy.h"
#include "dataplane/worker.h"
#include "mgmt/compiler.h"
#include "perf/bench_eal.h"
#include "tests/support/frames.h"
#include "tests/support/tls_hello.h"

namespace {

using namespace egw;
using Bytes = std::vector<uint8_t>;

[[noreturn]] void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("worker_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- Frames ------------------------------------------------------------------------

// One flow as seen from inside (host order). Outbound packets go inside -> remote.
struct Ends {
  uint32_t inside, remote;
  uint16_t sport, dport;
};

constexpr uint32_t kIsn = 1000, kSrvIsn = 5000000;  // every flow's initial sequence numbers
constexpr size_t kL3 = 14, kL4 = 34;                // untagged IPv4, no options

// A frame of `proto` whose addresses, ports and sequence numbers put_frame() fills in,
// padded to the 60 bytes a NIC delivers at least.
Bytes frame_template(uint8_t proto, bool outbound, uint8_t tcp_flags, Bytes payload) {
  test::FrameSpec s;
  s.src = s.dst = "0.0.0.0";
  s.proto = proto;
  s.tcp_flags = tcp_flags;
  s.payload = std::move(payload);
  if (!outbound) {
    s.src_mac = test::kOutsideMac;
    s.dst_mac = test::kInsideMac;
  }
  Bytes f = test::build_frame(s);
  if (f.size() < 60) f.resize(60, 0);
  return f;
}


// Writes template t into m as a packet of flow e, outbound (inside -> remote) or inbound,
// with seq/ack when it is TCP; checksums fixed.
void put_frame(rte_mbuf* m, const Bytes& t, const Ends& e, bool outbound, uint32_t seq = 0,
               uint32_t ack = 0) {
  if (t.size() > static_cast<size_t>(m->buf_len - m->data_off)) die("frame larger than an mbuf");
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  std::memcpy(d, t.data(), t.size());
  m->data_len = static_cast<uint16_t>(t.size());
  m->pkt_len = static_cast<uint32_t>(t.size());
  const uint32_t src = outbound ? e.inside : e.remote, dst = outbound ? e.remote : e.inside;
  uint8_t* ip = d + kL3;
  uint8_t* l4 = d + kL4;
  put_be32(ip + 12, src);
  put_be32(ip + 16, dst);
  put_be16(ip + 10, 0);
  put_be16(ip + 10, inet_checksum(ip, 20));
  put_be16(l4, outbound ? e.sport : e.dport);
  put_be16(l4 + 2, outbound ? e.dport : e.sport);
  const uint8_t proto = ip[9];
  const size_t l4_len = static_cast<size_t>(ip[2] << 8 | ip[3]) - 20;
  uint8_t* sum = l4 + (proto == kProtoTcp ? 16 : 6);
  if (proto == kProtoTcp) {
    put_be32(l4 + 4, seq);
    put_be32(l4 + 8, ack);
  }
  const uint32_t pseudo = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto +
                          static_cast<uint32_t>(l4_len);
  put_be16(sum, 0);
  uint16_t c = inet_checksum(l4, l4_len, pseudo);
  if (proto == kProtoUdp && c == 0) c = 0xffff;
  put_be16(sum, c);
}

// ---- Policies ----------------------------------------------------------------------

// L3/L4 policy: kL34Rules TCP rules, each its own destination /24s and ports, then one
// UDP rule (flow_memory). Flow f hits rule f % kL34Rules.
constexpr uint32_t kL34Rules = 100;
constexpr uint16_t kUdpPort = 5000;
constexpr uint32_t kUdpRemote = 0xc6336401;  // 198.51.100.1

// limited: every rule also has a rate limit, a byte rate and a quota, all too large to
// refuse anything (the established_limited and new_flows_limited scenarios: what the
// limits cost when every flow and packet is counted against them).
std::string l34_document(bool limited = false) {
  const std::string limits =
      limited ? R"(,"rate_limit":{"new_flows_per_s":10000000,"burst":10000000,)"
                R"("bytes_per_s":"100G","bytes_burst":"100G"},"max_flows":100000000)"
              : "";
  std::string d =
      R"({"schema":1,"default_action":"deny","services":{"clients":{"cidrs":["10.0.0.0/8"]}},)"
      R"("rulesets":[{"name":"bench","rules":[)";
  for (uint32_t r = 0; r < kL34Rules; ++r) {
    const std::string i = std::to_string(r), lo = std::to_string(20000 + 10 * r);
    d += R"({"id":"l34-)" + i + R"(","from":["clients"],"proto":"tcp","ports":[)" +
         std::to_string(1000 + r) + ",\"" + lo + "-" + std::to_string(20000 + 10 * r + 9) +
         R"("],"to":{"cidrs":["198.18.)" + i + R"(.0/24","198.19.)" + i +
         R"(.0/24"]},"action":"allow")" + limits + "},";
  }
  return d + R"({"id":"udp","from":["clients"],"proto":"udp","ports":[)" +
         std::to_string(kUdpPort) + R"(],"to":{"cidrs":["198.51.100.0/24"]},"action":"allow"}]}]})";
}

// Flow f of the L3/L4 scenarios: inside host 10.0.0.0 + f (f < 2^24), a destination and
// port of rule f % kL34Rules, alternating between its two /24s and its two kinds of port.
Ends l34_flow(uint32_t f) {
  const uint32_t r = f % kL34Rules, k = f / kL34Rules;
  const uint32_t net = (k & 1) ? 0xc6130000 : 0xc6120000;  // 198.19 / 198.18
  return {0x0a000000 + f, net | r << 8 | (1 + k % 250), static_cast<uint16_t>(10000 + f % 50000),
          static_cast<uint16_t>((k & 2) ? 1000 + r : 20000 + 10 * r + k % 10)};
}

Ends udp_flow(uint32_t f) {
  return {0x0a000000 + f, kUdpRemote, static_cast<uint16_t>(10000 + f % 50000), kUdpPort};
}

// Name policy: kSniRules rules on tcp/443, one to.domains entry each: even rules an exact
// name, odd rules a "*.zone" wildcard. Flow f asks for a name of rule sni_rule(f).
constexpr uint32_t kSniRules = 10000;

std::string domain_of(uint32_t r) {
  const std::string i = std::to_string(r);
  return r % 2 ? "*.zone" + i + ".example.net" : "api" + i + ".svc" + i + ".example.com";
}
std::string sni_of(uint32_t r) {
  return r % 2 ? "www.zone" + std::to_string(r) + ".example.net" : domain_of(r);
}

std::string sni_document() {
  std::string d = R"({"schema":1,"default_action":"deny","rulesets":[{"name":"bench","rules":[)";
  for (uint32_t r = 0; r < kSniRules; ++r) {
    d += std::string(r ? "," : "") + R"({"id":"d)" + std::to_string(r) +
         R"(","from":["any"],"proto":"tcp","ports":[443],"to":{"domains":[")" + domain_of(r) +
         R"("]},"action":"allow"})";
  }
  return d + "]}]}";
}

uint32_t sni_rule(uint32_t f) {
  return static_cast<uint32_t>((uint64_t{f} * 7919) % kSniRules);  // consecutive flows spread
}

Ends sni_flow(uint32_t f) {
  return {0x0a000000 + f, 0xcb007100 | (1 + f % 250), static_cast<uint16_t>(10000 + f % 50000),
          443};
}

std::unique_ptr<RuntimePolicy> load_document(const std::string& doc) {
  const mgmt::CompileResult res = mgmt::compile_document(doc, 1);
  if (!res.errors.empty()) {
    die("policy does not compile: %s: %s", res.errors[0].path.c_str(),
        res.errors[0].message.c_str());
  }
  std::string err;
  auto p =
      RuntimePolicy::load(reinterpret_cast<const uint8_t*>(res.blob.data()), res.blob.size(), &err);
  if (!p) die("policy does not load: %s", err.c_str());
  return p;
}

// ---- The worker --------------------------------------------------------------------

constexpr uint64_t kT0 = 1'000'000'000'000ull;  // the burst clock's start (ns)
constexpr uint64_t kBurstNs = 1000;             // the clock's step per burst

// n mbufs of `room` bytes of data, taken once and re-used for the whole scenario.
struct Mbufs {
  rte_mempool* pool = nullptr;
  std::vector<rte_mbuf*> m;
  Mbufs(const char* name, unsigned n, uint16_t room) {
    pool = rte_pktmbuf_pool_create(name, n, 0, 0, RTE_PKTMBUF_HEADROOM + room, SOCKET_ID_ANY);
    if (pool == nullptr) die("no room for %u mbufs (%s): raise -m", n, name);
    m.resize(n);
    if (rte_pktmbuf_alloc_bulk(pool, m.data(), n) != 0) die("cannot take %u mbufs", n);
  }
  ~Mbufs() {
    for (rte_mbuf* x : m) rte_pktmbuf_free(x);
    rte_mempool_free(pool);
  }
};

// A worker running one policy, on the bench's burst clock.
struct Rig {
  const char* scenario;
  WorkerCtx w;
  TxBatch out[2];
  uint64_t now = kT0;

  Rig(const char* name, const RuntimePolicy* policy, uint32_t flows) : scenario(name) {
    WorkerConfig cfg;
    cfg.flow_capacity = flows;
    cfg.l7_contexts = 1024;  // egw-dataplane's default (--l7-flows)
    if (!worker_init(w, cfg, nullptr))
      die("%s: worker_init(%u flows) failed: raise -m", name, flows);
    w.published.store(policy);
    worker_refresh_policy(w);
  }

  // Sends the n packets of pkts, received on `from`, as one burst: every one must be
  // forwarded, and comes back into pkts (in order) to be sent again.
  void send(rte_mbuf** pkts, uint16_t n, Side from) {
    worker_process_burst(w, pkts, n, from, now, out);
    now += kBurstNs;
    EGW_STAGE(w, tx);
    TxBatch& fwd = out[from == kInside ? kOutside : kInside];
    const uint16_t got = fwd.n;
    std::memcpy(pkts, fwd.pkts, got * sizeof(*pkts));
    fwd.n = 0;
    w.counters->tx_packets += got;
    if (got != n || out[from].n != 0) [[unlikely]]
      lost(n, got, from);
    EGW_STAGE_STOP(w);
  }

  [[noreturn]] void lost(uint16_t n, uint16_t got, Side from) {
    std::string why;
    for (unsigned i = 0; i < kDropReasonCount; ++i) {
      if (w.counters->drops[i] != 0) {
        why += std::string(" ") + drop_reason_name(static_cast<DropReason>(i)) + "=" +
               std::to_string(w.counters->drops[i]);
      }
    }
    die("%s: a burst of %u forwarded %u, answered %u; drops:%s", scenario, n, got, out[from].n,
        why.empty() ? " none" : why.c_str());
  }

  // Ends every flow (untimed, between repetitions).
  void flush() {
    while (!worker_flush(w, 0xffffffff)) {
    }
  }

  // Fails unless every packet so far was forwarded and no flow was evicted.
  void check_all_passed() const {
    if (w.counters->total_drops() != 0 || w.counters->tx_packets != w.counters->rx_packets ||
        w.counters->flows_evicted != 0 || w.flows.evictions() != 0) {
      die("%s: rx %lu tx %lu drops %lu evictions %lu", scenario, w.counters->rx_packets,
          w.counters->tx_packets, w.counters->total_drops(), w.flows.evictions());
    }
  }
};

double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// TSC cycles of the timed parts of one repetition, and the thread's CPU time in them.
struct Meter {
  uint64_t cycles = 0, t0 = 0;
  double cpu_ns = 0, c0 = 0;
  void start() {
    c0 = thread_ns();
    t0 = rte_rdtsc();
  }
  void stop() {
    cycles += rte_rdtsc() - t0;
    cpu_ns += thread_ns() - c0;
  }
};

// A scenario's repetitions: cycles per unit (packet or flow), in all and by stage. The
// share of the TSC time the thread was on the CPU tells a quiet run (~1) from one where
// other work preempted the bench, whose cycles the figures then include.
struct Timing {
  std::vector<double> reps;
  std::vector<std::vector<double>> stage_reps;
  double tsc_cycles = 0, cpu_ns = 0;

  void add(const Meter& m, double units, const WorkerCtx& w) {
    reps.push_back(m.cycles / units);
    std::vector<double> st(kStageCount);
    for (unsigned i = 0; i < kStageCount; ++i) st[i] = w.stages.cycles[i] / units;
    stage_reps.push_back(st);
    tsc_cycles += m.cycles;
    cpu_ns += m.cpu_ns;
  }
  double cycles() const { return median(reps); }
  double stage(unsigned i) const {
    std::vector<double> v;
    for (const auto& r : stage_reps) v.push_back(r[i]);
    return median(v);
  }
  double cpu_share(double hz) const { return cpu_ns * hz / 1e9 / tsc_cycles; }
};

// ---- Scenarios ---------------------------------------------------------------------

struct Results {
  bool established = false, l34 = false, sni = false, memory = false;
  bool est_limited = false, l34_limited = false;
  Timing est, new_l34, new_sni, est_lim, new_l34_lim;
  uint32_t est_flows = 0, l34_flows = 0, sni_flows = 0;
  uint64_t est_pkts = 0;
  double mem_rte_bpf = 0, mem_libc_bpf = 0, mem_total_mib = 0;
  uint32_t mem_capacity = 0, mem_flows = 0;
  uint64_t mem_evictions = 0, mem_drops = 0;
};

// Sends pkts[0, n) from `from` in bursts of kBurst.
void send_all(Rig& r, rte_mbuf** pkts, size_t n, Side from) {
  for (size_t i = 0; i < n; i += kBurst) {
    r.send(pkts + i, static_cast<uint16_t>(std::min<size_t>(kBurst, n - i)), from);
  }
}

// 10,000 established TCP flows, 64-byte frames both ways, bursts alternating inside and
// outside over the same 32 flows. Each repetition sends every flow's two segments
// kRounds times: the same in-window segments again (retransmissions, tracked like new
// data), so the mbufs need no rewriting.
void established(const RuntimePolicy& l34, int reps, Results* res, bool limited = false) {
  constexpr uint32_t kFlows = 10000, kRounds = 100;
  constexpr size_t kPayload = 64 - kL4 - 20;  // a 64-byte frame
  Rig r(limited ? "established_limited" : "established", &l34, 65536);
  Timing& timing = limited ? res->est_lim : res->est;
  Mbufs mb("wb_est", 2 * kFlows + kBurst, 128);
  rte_mbuf** in = mb.m.data();
  rte_mbuf** back = in + kFlows;
  rte_mbuf** scratch = back + kFlows;
  const Bytes syn = frame_template(kProtoTcp, true, kTcpSyn, {});
  const Bytes synack = frame_template(kProtoTcp, false, kTcpSyn | kTcpAck, {});
  const Bytes ack = frame_template(kProtoTcp, true, kTcpAck, {});
  const Bytes data_in = frame_template(kProtoTcp, true, kTcpAck | kTcpPsh, Bytes(kPayload, 'q'));
  const Bytes data_out = frame_template(kProtoTcp, false, kTcpAck | kTcpPsh, Bytes(kPayload, 'r'));
  // The handshakes, 32 flows at a time (untimed).
  for (uint32_t f0 = 0; f0 < kFlows; f0 += kBurst) {
    const uint16_t n = static_cast<uint16_t>(std::min(kBurst, kFlows - f0));
    for (uint16_t i = 0; i < n; ++i) put_frame(scratch[i], syn, l34_flow(f0 + i), true, kIsn);
    r.send(scratch, n, kInside);
    for (uint16_t i = 0; i < n; ++i)
      put_frame(scratch[i], synack, l34_flow(f0 + i), false, kSrvIsn, kIsn + 1);
    r.send(scratch, n, kOutside);
    for (uint16_t i = 0; i < n; ++i)
      put_frame(scratch[i], ack, l34_flow(f0 + i), true, kIsn + 1, kSrvIsn + 1);
    r.send(scratch, n, kInside);
  }
  for (uint32_t f = 0; f < kFlows; ++f) {
    put_frame(in[f], data_in, l34_flow(f), true, kIsn + 1, kSrvIsn + 1);
    put_frame(back[f], data_out, l34_flow(f), false, kSrvIsn + 1, kIsn + 1 + kPayload);
  }
  auto round = [&] {
    for (uint32_t f0 = 0; f0 < kFlows; f0 += kBurst) {
      const uint16_t n = static_cast<uint16_t>(std::min(kBurst, kFlows - f0));
      r.send(in + f0, n, kInside);
      r.send(back + f0, n, kOutside);
    }
  };
  round();  // warm-up: each flow's first payload is parsed once for its record's name
  const double pkts = 2.0 * kFlows * kRounds;
  for (int rep = 0; rep < reps; ++rep) {
    r.w.stages.reset();
    Meter m;
    m.start();
    for (uint32_t k = 0; k < kRounds; ++k) round();
    m.stop();
    timing.add(m, pkts, r.w);
  }
  r.check_all_passed();
  if (r.w.flows.size() != kFlows) die("established: %u flows, not %u", r.w.flows.size(), kFlows);
  if (limited) {
    res->est_limited = true;
    return;
  }
  res->established = true;
  res->est_flows = kFlows;
  res->est_pkts = static_cast<uint64_t>(pkts);
}

// Every packet a TCP SYN of a new flow, allowed by one of kL34Rules CIDR/port rules;
// kFlows per repetition in a table that holds them all, ended (untimed) between them.
// SYNs are written kChunk at a time, then sent, so most are not in the cache when sent.
void new_flows_l34(const RuntimePolicy& l34, int reps, Results* res, bool limited = false) {
  constexpr uint32_t kFlows = 1000000, kChunk = 65536;
  Rig r(limited ? "new_flows_limited" : "new_flows_l34", &l34, 1u << 20);
  Timing& timing = limited ? res->new_l34_lim : res->new_l34;
  Mbufs mb("wb_l34", kChunk, 128);
  const Bytes syn = frame_template(kProtoTcp, true, kTcpSyn, {});
  for (int rep = 0; rep < reps; ++rep) {
    r.w.stages.reset();
    Meter m;
    for (uint32_t f0 = 0; f0 < kFlows; f0 += kChunk) {
      const uint32_t n = std::min(kChunk, kFlows - f0);
      for (uint32_t i = 0; i < n; ++i) put_frame(mb.m[i], syn, l34_flow(f0 + i), true, kIsn);
      m.start();
      send_all(r, mb.m.data(), n, kInside);
      m.stop();
    }
    timing.add(m, kFlows, r.w);
    r.check_all_passed();
    if (r.w.flows.size() != kFlows)
      die("new_flows_l34: %u flows, not %u", r.w.flows.size(), kFlows);
    r.flush();
  }
  if (limited) {
    res->l34_limited = true;
    return;
  }
  res->l34 = true;
  res->l34_flows = kFlows;
}

// Every flow: SYN (inside), SYN-ACK (outside), ACK (inside), then a ClientHello padded
// like browsers' (517 bytes) in one segment (inside), 32 flows in lockstep per wave. Each
// waits for its name, decided among kSniRules domain rules; all are allowed.
void new_flows_sni(int reps, Results* res) {
  constexpr uint32_t kFlows = 65536, kChunk = 8192;  // kChunk: a multiple of kBurst
  const std::unique_ptr<RuntimePolicy> policy = load_document(sni_document());
  Rig r("new_flows_sni", policy.get(), 1u << 17);
  Mbufs mb("wb_sni", 4 * kChunk, 640);
  rte_mbuf** syn_m = mb.m.data();
  rte_mbuf** synack_m = syn_m + kChunk;
  rte_mbuf** ack_m = synack_m + kChunk;
  rte_mbuf** hello_m = ack_m + kChunk;
  const Bytes syn = frame_template(kProtoTcp, true, kTcpSyn, {});
  const Bytes synack = frame_template(kProtoTcp, false, kTcpSyn | kTcpAck, {});
  const Bytes ack = frame_template(kProtoTcp, true, kTcpAck, {});
  std::vector<Bytes> hello(kSniRules);
  for (uint32_t i = 0; i < kSniRules; ++i) {
    test::HelloSpec h = test::tls13_spec(sni_of(i));
    h.pad_to = 512;
    hello[i] = frame_template(kProtoTcp, true, kTcpAck | kTcpPsh, test::hello_stream(h));
  }
  for (int rep = 0; rep < reps; ++rep) {
    r.w.stages.reset();
    Meter m;
    for (uint32_t f0 = 0; f0 < kFlows; f0 += kChunk) {
      for (uint32_t i = 0; i < kChunk; ++i) {
        const uint32_t f = f0 + i;
        const Ends e = sni_flow(f);
        put_frame(syn_m[i], syn, e, true, kIsn);
        put_frame(synack_m[i], synack, e, false, kSrvIsn, kIsn + 1);
        put_frame(ack_m[i], ack, e, true, kIsn + 1, kSrvIsn + 1);
        put_frame(hello_m[i], hello[sni_rule(f)], e, true, kIsn + 1, kSrvIsn + 1);
      }
      m.start();
      for (uint32_t i = 0; i < kChunk; i += kBurst) {
        r.send(syn_m + i, kBurst, kInside);
        r.send(synack_m + i, kBurst, kOutside);
        r.send(ack_m + i, kBurst, kInside);
        r.send(hello_m + i, kBurst, kInside);
      }
      m.stop();
    }
    res->new_sni.add(m, kFlows, r.w);
    r.check_all_passed();
    // Every flow allowed by the rule of the name it sent.
    uint32_t by_name = 0;
    r.w.flows.for_each([&](const FlowEntry& e) {
      uint32_t ip;
      std::memcpy(&ip, e.key.inside_ip, 4);
      const uint32_t f = __builtin_bswap32(ip) - 0x0a000000;
      by_name += e.verdict == Verdict::allow && e.name_seen && e.l7 != kL7Wait &&
                 std::string(policy->rule_id(e.rule_index)) == "d" + std::to_string(sni_rule(f));
    });
    if (by_name != kFlows || r.w.counters->l7_decided_no_name != 0)
      die("new_flows_sni: %u of %u flows allowed by their name's rule", by_name, kFlows);
    r.flush();
  }
  res->sni = true;
  res->sni_flows = kFlows;
}

// Bytes allocated on the rte_malloc heaps, and by libc: a worker table allocated outside
// the EAL heap would otherwise go uncounted.
struct HeapBytes {
  size_t rte = 0, libc = 0;
};
HeapBytes heap_bytes() {
  HeapBytes h;
  for (unsigned s = 0; s < rte_socket_count(); ++s) {
    rte_malloc_socket_stats st;
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(s), &st) == 0)
      h.rte += st.heap_allocsz_bytes;
  }
  const struct mallinfo2 mi = mallinfo2();
  h.libc = mi.uordblks + mi.hblkhd;
  return h;
}

// What worker_init allocates for `capacity` flows (its configuration otherwise as Rig's).
HeapBytes worker_bytes(uint32_t capacity) {
  const HeapBytes before = heap_bytes();
  WorkerCtx w;
  WorkerConfig cfg;
  cfg.flow_capacity = capacity;
  cfg.l7_contexts = 1024;
  if (!worker_init(w, cfg, nullptr))
    die("flow_memory: worker_init(%u flows) failed: raise -m", capacity);
  const HeapBytes after = heap_bytes();
  worker_destroy(w);
  return {after.rte - before.rte, after.libc - before.libc};
}

// Bytes per flow: the marginal allocation of worker_init between two capacities (the
// fixed parts, L7 contexts and inspection streams, cancel out); then a table of the
// larger capacity really filled with distinct allowed UDP flows.
void flow_memory(const RuntimePolicy& l34, Results* res) {
  constexpr uint32_t kBig = 1u << 20, kSmall = 1u << 16, kChunk = 65536;
  const HeapBytes big = worker_bytes(kBig), small = worker_bytes(kSmall);
  res->mem_rte_bpf = static_cast<double>(big.rte - small.rte) / (kBig - kSmall);
  res->mem_libc_bpf = static_cast<double>(big.libc - small.libc) / (kBig - kSmall);
  res->mem_total_mib = (big.rte + big.libc) / 1048576.0;
  res->mem_capacity = kBig;
  Rig r("flow_memory", &l34, kBig);
  Mbufs mb("wb_mem", kChunk, 128);
  const Bytes dgram = frame_template(kProtoUdp, true, 0, Bytes(18, 'u'));
  for (uint32_t f0 = 0; f0 < kBig; f0 += kChunk) {
    for (uint32_t i = 0; i < kChunk; ++i) put_frame(mb.m[i], dgram, udp_flow(f0 + i), true);
    send_all(r, mb.m.data(), kChunk, kInside);
  }
  res->memory = true;
  res->mem_flows = r.w.flows.size();
  res->mem_evictions = r.w.flows.evictions();
  res->mem_drops = r.w.counters->total_drops();
}

// ---- Output ------------------------------------------------------------------------

std::string stages_text(const Timing& t) {
  std::string s;
  char buf[32];
  for (unsigned i = 0; i < kStageCount; ++i) {
    snprintf(buf, sizeof(buf), " %8.1f", t.stage(i));
    s += buf;
  }
  return s;
}

void print_table(const Results& r, double hz, int reps) {
  printf(
      "worker_bench: rte_get_tsc_hz %.0f (%.3f GHz), stage clocks %s, median of %d repetitions\n",
      hz, hz / 1e9, kStageClocks ? "on" : "off", reps);
  if (r.established || r.l34 || r.sni || r.est_limited || r.l34_limited) {
    printf("%-19s %-5s %9s %14s %5s", "scenario", "per", "cycles", "rate", "cpu");
    if (kStageClocks)
      for (unsigned i = 0; i < kStageCount; ++i) printf(" %8s", stage_name(static_cast<Stage>(i)));
    printf("  %s\n", "inputs");
  }
  auto row = [&](const char* name, const char* per, const Timing& t, double rate, const char* unit,
                 const std::string& what) {
    printf("%-19s %-5s %9.1f %9.3f %-4s %5.2f%s  %s\n", name, per, t.cycles(), rate, unit,
           t.cpu_share(hz), kStageClocks ? stages_text(t).c_str() : "", what.c_str());
  };
  if (r.established) {
    row("established", "pkt", r.est, hz / r.est.cycles() / 1e6, "Mpps",
        std::to_string(r.est_flows) + " flows, 64-byte frames, " + std::to_string(r.est_pkts) +
            " packets a repetition");
  }
  if (r.l34) {
    row("new_flows_l34", "flow", r.new_l34, hz / r.new_l34.cycles() / 1e6, "M/s",
        std::to_string(r.l34_flows) + " SYNs a repetition, " + std::to_string(kL34Rules + 1) +
            " CIDR/port rules");
  }
  if (r.sni) {
    row("new_flows_sni", "flow", r.new_sni, hz / r.new_sni.cycles() / 1e6, "M/s",
        std::to_string(r.sni_flows) + " flows a repetition (4 packets each), " +
            std::to_string(kSniRules) + " domain rules");
  }
  if (r.est_limited) {
    row("established_limited", "pkt", r.est_lim, hz / r.est_lim.cycles() / 1e6, "Mpps",
        "as established, every rule with a rate limit, a byte rate and a quota (none reached)");
  }
  if (r.l34_limited) {
    row("new_flows_limited", "flow", r.new_l34_lim, hz / r.new_l34_lim.cycles() / 1e6, "M/s",
        "as new_flows_l34, every rule with a rate limit, a byte rate and a quota (none reached)");
  }
  if (r.established || r.l34 || r.sni || r.est_limited || r.l34_limited) {
    printf(
        "(cpu: the share of the timed TSC cycles the bench was on the CPU; well below 1, "
        "other work preempted it and the cycles include that time)\n");
  }
  if (r.memory) {
    printf(
        "flow_memory: %.1f bytes/flow (rte_malloc %.1f + libc %.1f), %.1f MiB for %u flows; "
        "filled: %u flows, %lu evictions, %lu drops%s\n",
        r.mem_rte_bpf + r.mem_libc_bpf, r.mem_rte_bpf, r.mem_libc_bpf, r.mem_total_mib,
        r.mem_capacity, r.mem_flows, r.mem_evictions, r.mem_drops,
        r.mem_flows == r.mem_capacity && r.mem_evictions == 0 && r.mem_drops == 0
            ? ""
            : "  <-- NOT FULL");
  }
}

std::string json_stages(const Timing& t) {
  if (!kStageClocks) return "";
  std::string s = ",\"stages\":{";
  char buf[64];
  for (unsigned i = 0; i < kStageCount; ++i) {
    snprintf(buf, sizeof(buf), "%s\"%s\":%.1f", i ? "," : "", stage_name(static_cast<Stage>(i)),
             t.stage(i));
    s += buf;
  }
  return s + "}";
}

void write_json(const std::string& path, const Results& r, double hz, int reps) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) die("cannot write %s", path.c_str());
  fprintf(f, "{\"tsc_hz\":%.0f,\"stage_clocks\":%s,\"reps\":%d", hz,
          kStageClocks ? "true" : "false", reps);
  if (r.established) {
    fprintf(f,
            ",\"established\":{\"cycles_per_pkt\":%.1f,\"mpps\":%.3f,\"flows\":%u,"
            "\"cpu_share\":%.3f%s}",
            r.est.cycles(), hz / r.est.cycles() / 1e6, r.est_flows, r.est.cpu_share(hz),
            json_stages(r.est).c_str());
  }
  auto flows = [&](const char* name, const Timing& t, uint32_t n) {
    fprintf(f,
            ",\"%s\":{\"flows_per_s\":%.0f,\"cycles_per_flow\":%.1f,\"flows\":%u,"
            "\"cpu_share\":%.3f%s}",
            name, hz / t.cycles(), t.cycles(), n, t.cpu_share(hz), json_stages(t).c_str());
  };
  if (r.l34) flows("new_flows_l34", r.new_l34, r.l34_flows);
  if (r.l34_limited) flows("new_flows_limited", r.new_l34_lim, 1000000);
  if (r.est_limited) {
    fprintf(f,
            ",\"established_limited\":{\"cycles_per_pkt\":%.1f,\"mpps\":%.3f,\"cpu_share\":%.3f%s}",
            r.est_lim.cycles(), hz / r.est_lim.cycles() / 1e6, r.est_lim.cpu_share(hz),
            json_stages(r.est_lim).c_str());
  }
  if (r.sni) flows("new_flows_sni", r.new_sni, r.sni_flows);
  if (r.memory) {
    fprintf(f,
            ",\"flow_memory\":{\"bytes_per_flow\":%.1f,\"rte_bytes_per_flow\":%.1f,"
            "\"libc_bytes_per_flow\":%.1f,\"total_mib\":%.1f,\"capacity\":%u,\"flows\":%u,"
            "\"evictions\":%lu,\"drops\":%lu}",
            r.mem_rte_bpf + r.mem_libc_bpf, r.mem_rte_bpf, r.mem_libc_bpf, r.mem_total_mib,
            r.mem_capacity, r.mem_flows, r.mem_evictions, r.mem_drops);
  }
  fprintf(f, "}\n");
  if (fclose(f) != 0) die("cannot write %s", path.c_str());
}

const char* const kScenarios[] = {"established",         "new_flows_l34", "new_flows_sni",
                                  "flow_memory",         "established_limited",
                                  "new_flows_limited"};

[[noreturn]] void usage(const char* why) {
  fprintf(stderr,
          "worker_bench: %s\nusage: worker_bench [--scenario NAME]... [--reps N] [--json FILE]\n"
          "  scenarios: established new_flows_l34 new_flows_sni flow_memory\n"
          "             established_limited new_flows_limited (default: all)\n",
          why);
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> want;
  int reps = 5;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--scenario") {
      if (std::find_if(std::begin(kScenarios), std::end(kScenarios),
                       [&](const char* s) { return std::string(s) == v; }) == std::end(kScenarios))
        usage((std::string("unknown scenario ") + v).c_str());
      want.push_back(v);
    } else if (a == "--reps") {
      reps = atoi(v);
      if (reps < 1) usage("--reps wants a positive number");
    } else if (a == "--json") {
      json = v;
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if (want.empty()) want.assign(std::begin(kScenarios), std::end(kScenarios));
  auto wanted = [&](const char* s) { return std::find(want.begin(), want.end(), s) != want.end(); };

  // Pinned to lcore 0: the timed loop stays on one core.
  if (!egw::bench::start_eal("worker_bench", false)) die("rte_eal_init failed");
  const double hz = static_cast<double>(rte_get_tsc_hz());

  Results res;
  {
    const std::unique_ptr<RuntimePolicy> l34 = load_document(l34_document());
    if (wanted("established")) established(*l34, reps, &res);
    if (wanted("new_flows_l34")) new_flows_l34(*l34, reps, &res);
    if (wanted("new_flows_sni")) new_flows_sni(reps, &res);
    if (wanted("flow_memory")) flow_memory(*l34, &res);
    if (wanted("established_limited") || wanted("new_flows_limited")) {
      const std::unique_ptr<RuntimePolicy> lim = load_document(l34_document(true));
      if (wanted("established_limited")) established(*lim, reps, &res, true);
      if (wanted("new_flows_limited")) new_flows_l34(*lim, reps, &res, true);
    }
  }
  print_table(res, hz, reps);
  if (!json.empty()) write_json(json, res, hz, reps);
  rte_eal_cleanup();
  return 0;
}
