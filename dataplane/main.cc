// egw-dataplane: EAL and ports, worker lcores running the burst loop, and the
// control thread (main lcore) that loads policy, drains flow records and reports.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/clock.h"
#include "dataplane/control.h"
#include "dataplane/flow_snapshot.h"
#include "dataplane/policy_swap.h"
#include "dataplane/stats.h"
#include "dataplane/telemetry.h"
#include "dataplane/worker.h"

namespace egw {
namespace {

constexpr uint16_t kRxDesc = 1024;
constexpr uint16_t kTxDesc = 1024;
constexpr uint32_t kDefaultFlows = 262144;
constexpr unsigned kHousekeepingEvery = 64;  // loop iterations between aging slices

std::atomic<bool> g_quit{false};

void on_signal(int) { g_quit.store(true, std::memory_order_relaxed); }

struct Options {
  uint16_t inside = 0;
  uint16_t outside = 1;
  std::string policy_path;
  std::string instance = "egw";
  uint32_t flows = 0;  // 0: from the policy's limits, else kDefaultFlows
  std::string flow_log;
  uint32_t mbufs = 0;  // 0: sized from queues and descriptors
  uint32_t l7_flows = 1024;  // per worker: flows waiting for their name at once
  uint32_t inspect_flows = WorkerConfig::kAutoStreams;  // per worker: inspected at once
  uint32_t long_names = WorkerConfig::kAutoLongNames;   // per worker: names past FlowAux
  uint32_t rule_slots = stats::kDefaultRuleSlots;
  uint32_t flow_log_sample = 1;
  uint32_t limit_keys = 65536;  // per worker: (rule, service or source) rate-limit entries
};

[[noreturn]] void usage_exit(const char* prog, const char* why) {
  if (why != nullptr) fprintf(stderr, "egw-dataplane: %s\n", why);
  fprintf(stderr,
          "usage: %s [EAL options] -- [--inside PORT] [--outside PORT] [--policy FILE]\n"
          "          [--instance NAME] [--flows N] [--flow-log FILE|-] [--mbufs N]\n"
          "          [--l7-flows N] [--inspect-flows N] [--long-names N]\n"
          "          [--rule-slots N] [--flow-log-sample N] [--limit-keys N]\n"
          "  --inside/--outside  port ids (default 0 and 1); inside traffic is outbound\n"
          "  --policy FILE       compiled policy (egwctl compile); without one, all IP is denied\n"
          "  --flows N           flow-table capacity per worker (default: policy max_flows or %u)\n"
          "  --flow-log FILE     write the flow records here (- for stdout) instead of leaving\n"
          "                      them to egw-mgmt in shared memory\n"
          "  --flow-log-sample N keep the record of 1 in N allowed flows (denied: every one)\n"
          "  --mbufs N           packet buffers (default: enough for every queue's descriptors)\n"
          "  --l7-flows N        flows per worker that may wait for their name at once, 64 KiB\n"
          "                      each (default 1024); when all are taken, new ones are denied\n"
          "  --inspect-flows N   flows per worker whose payload inspect rules may scan at once,\n"
          "                      2 KiB each (default: a quarter of --flows, at most %u); when\n"
          "                      all are taken, an inspected flow with payload is refused\n"
          "  --long-names N      names per worker too long for their flow's 64-byte record\n"
          "                      (over ~45 characters), 256 B each (default: --flows / %u);\n"
          "                      when all are taken such a name is not kept (l7_names_lost)\n"
          "  --rule-slots N      rules with counters of their own, 448 B each and 336 B\n"
          "                      per worker each (at most 16383)\n"
          "                      (default %u); the rest count under \"(other)\"\n"
          "  --limit-keys N      per worker, (rule, service or source) keys of rate limits and\n"
          "                      quotas tracked at once, 112 B each (default 65536); a new key\n"
          "                      with none free (every one holding flows) is refused\n",
          prog, kDefaultFlows, WorkerConfig::kMaxAutoStreams, WorkerConfig::kLongNameShare,
          stats::kDefaultRuleSlots);
  exit(2);
}

uint32_t parse_u32(const char* prog, const char* what, const char* s, uint32_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max) {
    std::string msg = std::string(what) + ": '" + s + "' is not a number in 0.." +
                      std::to_string(max);
    usage_exit(prog, msg.c_str());
  }
  return static_cast<uint32_t>(v);
}

Options parse_options(int argc, char** argv) {
  static const option longopts[] = {{"inside", required_argument, nullptr, 'i'},
                                    {"outside", required_argument, nullptr, 'o'},
                                    {"policy", required_argument, nullptr, 'p'},
                                    {"instance", required_argument, nullptr, 'n'},
                                    {"flows", required_argument, nullptr, 'f'},
                                    {"flow-log", required_argument, nullptr, 'l'},
                                    {"mbufs", required_argument, nullptr, 'm'},
                                    {"l7-flows", required_argument, nullptr, 'L'},
                                    {"inspect-flows", required_argument, nullptr, 'I'},
                                    {"long-names", required_argument, nullptr, 'N'},
                                    {"rule-slots", required_argument, nullptr, 'R'},
                                    {"flow-log-sample", required_argument, nullptr, 'S'},
                                    {"limit-keys", required_argument, nullptr, 'K'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  Options o;
  const char* prog = "egw-dataplane";
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    switch (c) {
      case 'i': o.inside = static_cast<uint16_t>(parse_u32(prog, "--inside", optarg, 1023)); break;
      case 'o': o.outside = static_cast<uint16_t>(parse_u32(prog, "--outside", optarg, 1023)); break;
      case 'p': o.policy_path = optarg; break;
      case 'n': o.instance = optarg; break;
      case 'f': o.flows = parse_u32(prog, "--flows", optarg, 1u << 26); break;
      case 'l': o.flow_log = optarg; break;
      case 'm': o.mbufs = parse_u32(prog, "--mbufs", optarg, 1u << 24); break;
      case 'L': o.l7_flows = parse_u32(prog, "--l7-flows", optarg, 1u << 20); break;
      case 'I': o.inspect_flows = parse_u32(prog, "--inspect-flows", optarg, 1u << 24); break;
      case 'N': o.long_names = parse_u32(prog, "--long-names", optarg, 1u << 24); break;
      case 'R': o.rule_slots = parse_u32(prog, "--rule-slots", optarg, stats::kMaxRuleSlots); break;
      case 'S': o.flow_log_sample = parse_u32(prog, "--flow-log-sample", optarg, 1u << 30); break;
      case 'K': o.limit_keys = parse_u32(prog, "--limit-keys", optarg, 1u << 24); break;
      case 'h': usage_exit(prog, nullptr);
      default: usage_exit(prog, "unknown option");
    }
  }
  if (optind != argc) usage_exit(prog, "unexpected argument after the options");
  if (o.inside == o.outside) usage_exit(prog, "--inside and --outside must be different ports");
  if (o.instance.empty() || o.instance.size() > 32)
    usage_exit(prog, "--instance must be 1..32 characters");
  if (o.rule_slots < stats::kFirstRuleSlot + 1)
    usage_exit(prog, "--rule-slots must be at least 3 (two are kept for the default and the rest)");
  if (o.flow_log_sample == 0) usage_exit(prog, "--flow-log-sample must be at least 1");
  return o;
}

// One worker lcore: its queue id on both ports, its context and its records ring.
struct Worker {
  unsigned lcore = 0;
  uint16_t queue = 0;  // also its QSBR thread id
  rte_rcu_qsbr* qsv = nullptr;
  WorkerCtx* ctx = nullptr;
  FlowRecordRing* records = nullptr;  // in the flow-record segment
};

struct Runtime {
  Options opt;
  uint16_t port[2] = {0, 1};  // [kInside], [kOutside]
  std::vector<Worker> workers;
  Clock clock;
  StatsSegment stats;
  FlowsSegment flows;
};

Runtime* g_rt = nullptr;

[[noreturn]] void fatal(const char* fmt, const char* a = "", const char* b = "") {
  fprintf(stderr, "egw-dataplane: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n");
  rte_eal_cleanup();
  exit(1);
}

// Symmetric RSS: a key of repeated 0x6d5a makes the Toeplitz hash of (a,b) equal to
// that of (b,a), so both directions of a flow reach the same worker. The hash covers
// addresses only (not ports): every fragment of a datagram, which carries no ports
// after the first, then reaches the worker that decided its first fragment.
void port_setup(uint16_t port, uint16_t queues, rte_mempool* pool) {
  if (!rte_eth_dev_is_valid_port(port)) {
    char msg[160];
    snprintf(msg, sizeof msg, "port %u does not exist: %u port(s) found", port,
             rte_eth_dev_count_avail());
    fatal("%s (give one --vdev or -a PCI address per port)", msg);
  }
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0) fatal("cannot read port info of a port");
  rte_eth_conf conf{};
  static uint8_t rss_key[128];
  if (queues > 1) {
    if (info.flow_type_rss_offloads == 0) {
      fatal("port driver %s has no RSS: run with a single worker lcore (-l 0,1)",
            info.driver_name);
    }
    for (size_t i = 0; i < sizeof rss_key; i += 2) {
      rss_key[i] = 0x6d;
      rss_key[i + 1] = 0x5a;
    }
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = rss_key;
    conf.rx_adv_conf.rss_conf.rss_key_len =
        info.hash_key_size ? std::min<uint8_t>(info.hash_key_size, sizeof rss_key) : 40;
    conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP & info.flow_type_rss_offloads;
    if (conf.rx_adv_conf.rss_conf.rss_hf == 0) {
      fatal("port driver %s cannot hash on IP addresses: run with a single worker lcore",
            info.driver_name);
    }
  }
  if (queues > info.max_rx_queues || queues > info.max_tx_queues) {
    char msg[160];
    snprintf(msg, sizeof msg, "port %u (%s) supports %u RX / %u TX queues, %u workers need one each",
             port, info.driver_name, info.max_rx_queues, info.max_tx_queues, queues);
    fatal("%s: use fewer worker lcores", msg);
  }
  // Offloads the worker uses where the NIC has them: IPv4 header checksums verified on
  // receive (parse_frame then skips its own sum), and freeing transmitted mbufs straight
  // into their pool (every mbuf comes from the one pool and none is shared).
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM)
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
  int rc = rte_eth_dev_configure(port, queues, queues, &conf);
  if (rc != 0) fatal("rte_eth_dev_configure failed: %s", rte_strerror(-rc));
  uint16_t rxd = kRxDesc, txd = kTxDesc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  const int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < queues; ++q) {
    rc = rte_eth_rx_queue_setup(port, q, rxd, socket, nullptr, pool);
    if (rc != 0) fatal("RX queue setup failed: %s", rte_strerror(-rc));
    rc = rte_eth_tx_queue_setup(port, q, txd, socket, nullptr);
    if (rc != 0) fatal("TX queue setup failed: %s", rte_strerror(-rc));
  }
  rc = rte_eth_dev_start(port);
  if (rc != 0) fatal("port start failed: %s", rte_strerror(-rc));
  // Bump-in-the-wire: every frame on the wire is ours to judge.
  rc = rte_eth_promiscuous_enable(port);
  if (rc != 0 && rc != -ENOTSUP) fatal("cannot enable promiscuous mode: %s", rte_strerror(-rc));
}

// The burst loop of one worker lcore (after DPDK's l3fwd main loop).
int worker_main(void* arg) {
  Worker& self = *static_cast<Worker*>(arg);
  WorkerCtx& w = *self.ctx;
  const Runtime& rt = *g_rt;
  const uint16_t port[2] = {rt.port[kInside], rt.port[kOutside]};
  const uint16_t q = self.queue;
  rte_mbuf* pkts[kBurst];
  TxBatch out[2];
  unsigned iter = 0;

  rte_rcu_qsbr_thread_register(self.qsv, q);
  rte_rcu_qsbr_thread_online(self.qsv, q);
  uint64_t tsc = rte_rdtsc();
  while (!g_quit.load(std::memory_order_relaxed)) {
    worker_refresh_policy(w);  // one policy for the whole iteration
    const uint64_t now = rt.clock.now_ns();
    bool busy = false;
    for (int side = 0; side < 2; ++side) {
      const uint16_t n = rte_eth_rx_burst(port[side], q, pkts, kBurst);
      if (n == 0) continue;
      busy = true;
      worker_process_burst(w, pkts, n, static_cast<Side>(side), now, out);
      EGW_STAGE(w, tx);
      for (int o = 0; o < 2; ++o) {
        TxBatch& b = out[o];
        if (b.n == 0) continue;
        const uint16_t sent = rte_eth_tx_burst(port[o], q, b.pkts, b.n);
        w.counters->tx_packets += sent;
        for (uint16_t i = sent; i < b.n; ++i) {
          w.counters->drop(DropReason::tx_full);
          rte_pktmbuf_free(b.pkts[i]);
        }
        b.n = 0;
      }
      EGW_STAGE_STOP(w);
    }
    if (++iter % kHousekeepingEvery == 0) worker_housekeeping(w, now);
    // Holds no policy reference past this point: an idle worker reports too, so a
    // swap completes on an idle system.
    rte_rcu_qsbr_quiescent(self.qsv, q);
    // Loop cycles, for cycles per packet and the worker's load (one rdtsc per iteration).
    const uint64_t t = rte_rdtsc();
    w.counters->cycles += t - tsc;
    if (busy) w.counters->busy_cycles += t - tsc;
    tsc = t;
  }
  rte_rcu_qsbr_thread_offline(self.qsv, q);
  rte_rcu_qsbr_thread_unregister(self.qsv, q);
  return 0;
}

// Control thread, with --flow-log: writes flow records from every worker's ring
// (otherwise egw-mgmt drains the rings, and this writes nothing).
struct FlowLogWriter {
  FILE* f = nullptr;
  bool owned = false;
  uint64_t written = 0;
  const PolicySwap* swap = nullptr;  // resolves rule ids of earlier policy versions
  unsigned drain(std::vector<Worker>& workers) {
    if (f == nullptr) return 0;
    unsigned n = 0;
    FlowRecord r;
    for (Worker& wk : workers) {
      while (wk.records->pop(&r)) {
        ++n;
        if (r.rule_id[0] == '\0' && swap != nullptr) swap->fill_rule_id(&r);
        std::string line = flow_record_json(r);
        fputs(line.c_str(), f);
        fputc('\n', f);
      }
    }
    if (n != 0) fflush(f);
    written += n;
    return n;
  }
  // Shutdown: ends every flow, a slice at a time. The rings are drained here, or by a
  // live egw-mgmt (reader_alive), which gets up to a second per slice before the rest
  // is counted lost; with no reader, nothing waits.
  template <typename Alive>
  void flush_all(std::vector<Worker>& workers, Alive reader_alive) {
    for (Worker& wk : workers) {
      bool done = false;
      while (!done) {
        done = worker_flush(*wk.ctx);
        drain(workers);
        for (int i = 0; i < 1000 && wk.records->size() > kFlowRecordRingSize / 2 && reader_alive();
             ++i)
          usleep(1000);
      }
      drain(workers);
    }
  }
};

void print_final_counters(const Runtime& rt) {
  WorkerCounters sum;
  for (const Worker& wk : rt.workers) sum.add(*wk.ctx->counters);
  std::string s = "{\"ports\":[";
  for (int side = 0; side < 2; ++side) {
    rte_eth_stats st{};
    rte_eth_stats_get(rt.port[side], &st);
    char buf[256];
    snprintf(buf, sizeof buf,
             "%s{\"port\":%u,\"role\":\"%s\",\"rx_packets\":%" PRIu64 ",\"tx_packets\":%" PRIu64
             ",\"rx_bytes\":%" PRIu64 ",\"tx_bytes\":%" PRIu64 ",\"rx_missed\":%" PRIu64 "}",
             side ? "," : "", rt.port[side], side == kInside ? "inside" : "outside", st.ipackets,
             st.opackets, st.ibytes, st.obytes, st.imissed);
    s += buf;
  }
  s += "],\"drops\":{";
  for (unsigned r = 0; r < kDropReasonCount; ++r) {
    s += (r ? ",\"" : "\"");
    s += drop_reason_name(static_cast<DropReason>(r));
    s += "\":" + std::to_string(sum.drops[r]);
  }
  s += "}";
#define EGW_X(name) s += ",\"" #name "\":" + std::to_string(sum.name);
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  s += ",\"workers\":" + std::to_string(rt.workers.size());
  s += ",\"tsc_hz\":" + std::to_string(rte_get_tsc_hz());
  if (kStageClocks) {  // an EGW_STAGE_CLOCKS build: cycles per pipeline stage
    s += ",\"stage_cycles\":{";
    for (unsigned i = 0; i < kStageCount; ++i) {
      uint64_t c = 0;
      for (const Worker& wk : rt.workers) c += wk.ctx->stages.cycles[i];
      s += std::string(i ? ",\"" : "\"") + stage_name(static_cast<Stage>(i)) + "\":" +
           std::to_string(c);
    }
    s += "}";
  }
  s += "}";
  printf("%s\n", s.c_str());
  fflush(stdout);
}

// The control thread's share of the stats segment: ports, flows, policy activations.
void publish_control_stats(Runtime& rt, const shm::CtlSegment& seg, const FlowLogWriter& log) {
  stats::ControlStats& c = *rt.stats.control();
  uint64_t active = 0, capacity = 0;
  for (const Worker& wk : rt.workers) {
    active += wk.ctx->flows.size();  // a racy read of a word the worker writes
    capacity += wk.ctx->flows.capacity();
  }
  rte_eth_stats st[2]{};
  for (int side = 0; side < 2; ++side) rte_eth_stats_get(rt.port[side], &st[side]);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rt.stats.control_begin();
  c.updated_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  for (int side = 0; side < 2; ++side) {
    c.port_id[side] = rt.port[side];
    c.rx_packets[side] = st[side].ipackets;
    c.tx_packets[side] = st[side].opackets;
    c.rx_bytes[side] = st[side].ibytes;
    c.tx_bytes[side] = st[side].obytes;
    c.rx_missed[side] = st[side].imissed;
    c.rx_errors[side] = st[side].ierrors;
    c.tx_errors[side] = st[side].oerrors;
    c.rx_nombuf[side] = st[side].rx_nombuf;
  }
  c.flows_active = active;
  c.flows_capacity = capacity;
  c.active_version = seg.state.active_version.load(std::memory_order_relaxed);
  c.activations = seg.state.activations.load(std::memory_order_relaxed);
  c.activation_failures = seg.state.activation_failures.load(std::memory_order_relaxed);
  c.records_written = log.written;
  rt.stats.control_end();
}

// The control thread's loop: flow records, heartbeat and counters for egw-mgmt,
// policy activations, and freeing retired policies. Polls every millisecond when idle.
void control_loop(Runtime& rt, ControlChannel& channel, PolicySwap& swap, FlowLogWriter& log) {
  shm::CtlSegment& seg = *channel.segment();
  std::vector<WorkerCtx*> ctxs;
  for (Worker& wk : rt.workers) ctxs.push_back(wk.ctx);
  uint64_t last_beat = 0;
  while (!g_quit.load(std::memory_order_relaxed)) {
    const unsigned records = log.drain(rt.workers);
    const uint64_t now = monotonic_ns();
    if (now - last_beat >= shm::kHeartbeatPeriodNs) {
      channel.beat(now);
      publish_control_stats(rt, seg, log);
      last_beat = now;
    }
    shm::Msg m, answer;
    bool busy = false;
    while (channel.next_request(&m)) {
      busy = true;
      if (m.type == shm::MsgType::flows) {
        snapshot_flows(ctxs, swap, m, &answer);
        channel.respond(answer);
        continue;
      }
      if (m.type != shm::MsgType::activate) continue;  // unknown: ignored (newer mgmt)
      swap.activate(m, &answer);
      channel.beat(monotonic_ns());  // a long activation must not look like a dead dataplane
      if (answer.status == 0) {
        seg.state.active_version.store(swap.version(), std::memory_order_release);
        seg.state.activations.fetch_add(1, std::memory_order_relaxed);
        rt.stats.control_begin();
        rt.stats.control()->last_activation_ns = answer.activation_ns;
        rt.stats.control_end();
      } else {
        seg.state.activation_failures.fetch_add(1, std::memory_order_relaxed);
        fprintf(stderr, "egw-dataplane: policy version %" PRIu64 " not activated: %s\n",
                m.version, answer.error);
      }
      if (!channel.respond(answer)) {
        fprintf(stderr, "egw-dataplane: response ring full: egw-mgmt is not reading\n");
      }
    }
    swap.reclaim();
    if (records == 0 && !busy) usleep(1000);
  }
}

int run(int argc, char** argv) {
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    fprintf(stderr, "egw-dataplane: EAL initialisation failed: %s (check the EAL options above; "
                    "without hugepages use --no-huge --no-shconf -m 1024)\n",
            rte_strerror(rte_errno));
    return 1;
  }
  argv[eal_args] = argv[0];
  Runtime rt;
  rt.opt = parse_options(argc - eal_args, argv + eal_args);
  rt.port[kInside] = rt.opt.inside;
  rt.port[kOutside] = rt.opt.outside;
  g_rt = &rt;

  // Policy first: a bad file is a start-up error, not a silent deny-all.
  std::unique_ptr<RuntimePolicy> policy;
  if (!rt.opt.policy_path.empty()) {
    std::string blob, err;
    if (!read_file(rt.opt.policy_path, &blob, &err)) fatal("--policy: %s", err.c_str());
    const unsigned scratches = rte_lcore_count() > 1 ? rte_lcore_count() - 1 : 1;  // a worker each
    policy = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), &err,
                                 scratches);
    if (!policy) fatal("--policy %s: %s", rt.opt.policy_path.c_str(), err.c_str());
  }

  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    Worker wk;
    wk.lcore = lcore;
    wk.queue = static_cast<uint16_t>(rt.workers.size());
    rt.workers.push_back(wk);
  }
  if (rt.workers.empty()) {
    fatal("no worker lcore: the main lcore is the control thread; give EAL two or more "
          "lcores (e.g. -l 0,1)");
  }
  const uint16_t nq = static_cast<uint16_t>(rt.workers.size());
  const unsigned nb_mbufs =
      rt.opt.mbufs ? rt.opt.mbufs : std::max(8191u, nq * 2u * (kRxDesc + kTxDesc + 2 * kBurst) + 2048u);
  rte_mempool* pool = rte_pktmbuf_pool_create("egw_mbufs", nb_mbufs, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (pool == nullptr) {
    fatal("cannot allocate %s mbufs: %s (raise -m or the hugepage count)",
          std::to_string(nb_mbufs).c_str(), rte_strerror(rte_errno));
  }

  uint32_t flows = rt.opt.flows;
  if (flows == 0 && policy && policy->settings().max_flows != 0) flows = policy->settings().max_flows;
  if (flows == 0) flows = kDefaultFlows;
  uint64_t seed[2] = {rte_rand(), rte_rand()};  // per boot: hash-flooding resistance
  // Counters and records live in shared memory from the start (stats_abi.h); the
  // control segment, created last, tells egw-mgmt they are there.
  const uint64_t boot_id = rte_rand() | 1;
  std::string err;
  if (!rt.stats.create(rt.opt.instance, nq, rt.opt.rule_slots, boot_id, rte_get_tsc_hz(), &err))
    fatal("%s", err.c_str());
  const stats::Consumer consumer =
      rt.opt.flow_log.empty() ? stats::Consumer::mgmt : stats::Consumer::dataplane;
  if (!rt.flows.create(rt.opt.instance, nq, boot_id, consumer, &err)) fatal("%s", err.c_str());
  for (Worker& wk : rt.workers) {
    wk.ctx = new (std::align_val_t(64)) WorkerCtx();
    wk.records = rt.flows.ring(wk.queue);
    WorkerConfig cfg;
    cfg.stats = rt.stats.worker(wk.queue);
    cfg.rules_offset = rt.stats.header()->rules_offset;
    cfg.rule_slots = rt.opt.rule_slots;
    cfg.record_sample = rt.opt.flow_log_sample;
    cfg.workers = nq;
    cfg.limit_entries = rt.opt.limit_keys;
    cfg.slot_names = rt.stats.slots();
    cfg.flow_capacity = flows;
    cfg.l7_contexts = rt.opt.l7_flows;
    cfg.inspect_streams = rt.opt.inspect_flows;
    cfg.long_names = rt.opt.long_names;
    cfg.hash_seed[0] = seed[0];
    cfg.hash_seed[1] = seed[1];
    cfg.id = wk.queue;
    cfg.pool = pool;
    if (!worker_init(*wk.ctx, cfg, wk.records)) {
      fatal("cannot allocate a flow table of %s flows, %s L7 contexts and the inspection "
            "streams (lower --flows, --l7-flows or --inspect-flows, or raise -m)",
            std::to_string(flows).c_str(), std::to_string(rt.opt.l7_flows).c_str());
    }
  }
  std::vector<WorkerCtx*> ctxs;
  for (Worker& wk : rt.workers) ctxs.push_back(wk.ctx);
  // Owns every policy and the QSBR variable: freed before the EAL is cleaned up.
  auto swap_owner = std::make_unique<PolicySwap>();
  PolicySwap& swap = *swap_owner;
  if (!swap.init(ctxs, &err)) fatal("%s", err.c_str());
  for (Worker& wk : rt.workers) wk.qsv = swap.qsbr();
  RuleSlots rule_slots(&rt.stats);
  swap.set_rule_slots(&rule_slots);
  swap.install_boot(std::move(policy));
  rt.stats.publish();
  rt.flows.publish();
  if (!telemetry_register({&rt.stats, ctxs}, &err)) fatal("%s", err.c_str());
  ControlChannel channel;
  if (!channel.open(rt.opt.instance, boot_id, &err)) fatal("%s", err.c_str());
  channel.segment()->state.active_version.store(swap.version());

  port_setup(rt.port[kInside], nq, pool);
  port_setup(rt.port[kOutside], nq, pool);

  FlowLogWriter log;
  log.swap = &swap;
  if (rt.opt.flow_log == "-") {
    log.f = stdout;
  } else if (!rt.opt.flow_log.empty()) {
    log.f = fopen(rt.opt.flow_log.c_str(), "a");
    if (log.f == nullptr) fatal("--flow-log %s: %s", rt.opt.flow_log.c_str(), strerror(errno));
    log.owned = true;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  for (Worker& wk : rt.workers) {
    const int rc = rte_eal_remote_launch(worker_main, &wk, wk.lcore);
    if (rc != 0) {
      g_quit.store(true);
      rte_eal_mp_wait_lcore();
      fatal("cannot start the worker on lcore %s: %s", std::to_string(wk.lcore).c_str(),
            rte_strerror(-rc));
    }
  }

  const RuntimePolicy* boot = swap.current();
  printf("egw-dataplane: forwarding on %u worker(s), inside port %u, outside port %u, %s; "
         "control channel %s\n",
         nq, rt.port[kInside], rt.port[kOutside],
         boot ? ("policy version " + std::to_string(boot->version()) + " with " +
                 std::to_string(boot->rule_count()) + " rules")
                    .c_str()
              : "no policy: every IP packet is denied",
         shm::ctl_name(rt.opt.instance).c_str());
  fflush(stdout);

  control_loop(rt, channel, swap, log);
  telemetry_detach();  // before the workers' contexts and the stats segment go
  rte_eal_mp_wait_lcore();
  // Workers have stopped: ending their flows here is race free. A worker may have
  // stopped right after the quiescent state that let an activation retire (and free) the
  // policy it still points to: each takes the policy in force first, as its next loop
  // iteration would have (the records name rules through it).
  for (Worker& wk : rt.workers) worker_refresh_policy(*wk.ctx);
  const shm::CtlSegment& ctl = *channel.segment();
  log.flush_all(rt.workers, [&ctl] {
    const uint64_t beat = ctl.mgmt.beat_ns.load(std::memory_order_acquire);
    return beat != 0 && monotonic_ns() - beat < shm::kHeartbeatTimeoutNs;
  });
  publish_control_stats(rt, *channel.segment(), log);
  print_final_counters(rt);
  for (int side = 0; side < 2; ++side) {
    rte_eth_dev_stop(rt.port[side]);
    rte_eth_dev_close(rt.port[side]);
  }
  if (log.owned) fclose(log.f);
  for (Worker& wk : rt.workers) {
    wk.ctx->~WorkerCtx();
    operator delete(wk.ctx, std::align_val_t(64));
  }
  // egw-mgmt keeps its mappings of the removed objects: it drains what the rings hold.
  channel.close();
  rt.flows.close();
  rt.stats.close();
  swap_owner.reset();
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return 0;
}

}  // namespace
}  // namespace egw

int main(int argc, char** argv) { return egw::run(argc, argv); }
