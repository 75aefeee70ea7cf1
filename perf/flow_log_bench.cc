// The flow-record path of make perf (scenario flow_records): how many records a worker
// emits per second into its shared-memory ring, how many egw-mgmt's drain formats and
// writes per second, and what a stopped egw-mgmt costs (the ring fills, the rest are
// counted lost, the worker goes on).
//
// A worker's flow table is filled with allowed TCP flows (untimed), then ended with
// worker_flush(): each end makes the flow's record in the ring, as ageing does. The
// ring lives in a real /egw-NAME-flows object; the drain is egw-mgmt's FlowDrain,
// writing to a real file.
//   emit: the worker ends the flows while a drain thread empties the ring into a file
//         (the two run on the machine's two cores): records/s each side, and losses.
//   emit_no_reader: the same with nothing draining (egw-mgmt stopped): the ring keeps
//         kFlowRecordRingSize records, the rest are counted lost: cycles per record.
//   drain: the ring refilled and drained by the drain alone: records/s it writes.
// Usage: flow_log_bench [--flows N] [--reps N] [--json FILE] [--dir DIR]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "dataplane/stats.h"
#include "dataplane/worker.h"
#include "mgmt/compiler.h"
#include "mgmt/flow_drain.h"
#include "perf/bench_eal.h"

namespace egw {
namespace {

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "flow_log_bench: %s\n", what);
  exit(1);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double wall() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A worker whose flow records go to ring 0 of a flows segment.
struct Rig {
  WorkerCtx w;
  std::unique_ptr<RuntimePolicy> policy;
  explicit Rig(FlowRecordRing* ring, uint32_t flows) {
    const auto r = mgmt::compile_document(
        R"({"schema":1,"default_action":"deny","services":{"web":{"cidrs":["10.0.0.0/8"]}},
            "rulesets":[{"name":"r","rules":[{"id":"web-out","from":["web"],"proto":"tcp",
            "ports":[443],"to":{"cidrs":["198.19.0.0/16"]},"action":"allow"}]}]})",
        1);
    if (!r.errors.empty()) die("policy does not compile");
    std::string err;
    policy =
        RuntimePolicy::load(reinterpret_cast<const uint8_t*>(r.blob.data()), r.blob.size(), &err);
    if (!policy) die(err.c_str());
    WorkerConfig cfg;
    cfg.flow_capacity = flows;
    cfg.l7_contexts = 16;
    if (!worker_init(w, cfg, ring)) die("worker_init failed: raise -m");
    w.published.store(policy.get());
    worker_refresh_policy(w);
  }
  // n allowed, established TCP flows with counts, as the fast path leaves them.
  void fill(uint32_t n) {
    for (uint32_t f = 0; f < n; ++f) {
      FlowKey k{};
      k.family = 4;
      k.proto = kProtoTcp;
      const uint32_t in = 0x0a000000u + f, out = 0xc6130000u + (f & 0xffff);
      std::memcpy(k.inside_ip, &in, 4);
      std::memcpy(k.remote_ip, &out, 4);
      k.inside_port = static_cast<uint16_t>(1024 + f % 60000);
      k.remote_port = 443;
      FlowEntry* e = w.flows.insert(k, w.flows.hash(k), 1000);
      if (e == nullptr) die("flow table full");
      e->start_ns = 1000;
      e->last_seen_ns = 2000000;
      e->flow_id = f + 1;
      e->verdict = Verdict::allow;
      e->rule_index = 0;
      e->policy_version = 1;
      e->tcp_state = TcpState::established;
      e->pkts[0] = 12;
      e->pkts[1] = 10;
      e->bytes[0] = 1800;
      e->bytes[1] = 14000;
      e->rtt_us = 180;
      e->ttfb_us = 950;
    }
  }
};

struct Result {
  std::vector<double> emit_rate, drain_rate_parallel, no_reader_cycles, drain_rate;
  uint64_t lost_with_reader = 0, lost_no_reader = 0, kept_no_reader = 0;
};

}  // namespace
}  // namespace egw

int main(int argc, char** argv) {
  using namespace egw;
  uint32_t flows = 1u << 20;
  int reps = 3;
  std::string json, dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--flows")
      flows = static_cast<uint32_t>(atoi(argv[i + 1]));
    else if (a == "--reps")
      reps = atoi(argv[i + 1]);
    else if (a == "--json")
      json = argv[i + 1];
    else if (a == "--dir")
      dir = argv[i + 1];
    else
      die("usage: flow_log_bench [--flows N] [--reps N] [--json FILE] [--dir DIR]");
  }
  if (argc % 2 == 0 || flows < 2 * kFlowRecordRingSize || reps < 1)
    die("usage: flow_log_bench [--flows N >= 32768] [--reps N] [--json FILE] [--dir DIR]");
  if (!bench::start_eal("flow_log_bench", true)) die("rte_eal_init failed");
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const std::string instance = "flowbench" + std::to_string(getpid());
  FlowsSegment seg;
  std::string err;
  if (!seg.create(instance, 1, 1, stats::Consumer::mgmt, &err)) die(err.c_str());
  seg.publish();
  mgmt::Publisher pub("unused");
  mgmt::Publisher::Segments view;
  view.flows = seg.data();
  const std::string log = dir + "/egw-flow-log-bench-" + std::to_string(getpid()) + ".jsonl";
  auto rig_owner = std::make_unique<Rig>(seg.ring(0), flows);  // freed before the EAL
  Rig& rig = *rig_owner;
  FlowRecordRing& ring = *seg.ring(0);
  Result res;

  for (int rep = 0; rep < reps; ++rep) {
    // emit, with the drain running beside the worker.
    rig.fill(flows);
    unlink(log.c_str());
    mgmt::FlowDrain drain(pub, {log, 1ull << 40, 0});
    if (!drain.open(&err)) die(err.c_str());
    std::atomic<bool> done{false};
    std::thread reader([&] {
      while (!done.load(std::memory_order_acquire)) drain.drain_once(view);
      while (drain.drain_once(view) != 0) {
      }
    });
    const uint64_t lost0 = rig.w.counters->flow_records_lost;
    const double t0 = wall();
    const uint64_t c0 = rte_rdtsc();
    while (!worker_flush(rig.w, 0xffffffff)) {
    }
    const uint64_t c1 = rte_rdtsc();
    done.store(true, std::memory_order_release);
    reader.join();
    const double t1 = wall();
    const uint64_t lost = rig.w.counters->flow_records_lost - lost0;
    res.lost_with_reader += lost;
    res.emit_rate.push_back(flows * hz / static_cast<double>(c1 - c0));
    res.drain_rate_parallel.push_back(static_cast<double>(drain.counters().records.load()) /
                                      (t1 - t0));

    // emit with no reader: the ring fills, the rest are lost.
    rig.fill(flows);
    const uint64_t lost1 = rig.w.counters->flow_records_lost;
    const uint64_t c2 = rte_rdtsc();
    while (!worker_flush(rig.w, 0xffffffff)) {
    }
    const uint64_t c3 = rte_rdtsc();
    res.lost_no_reader += rig.w.counters->flow_records_lost - lost1;
    res.kept_no_reader += ring.size();
    res.no_reader_cycles.push_back(static_cast<double>(c3 - c2) / flows);

    // drain alone: what the ring holds, then the ring refilled, until `flows` records.
    unlink(log.c_str());
    mgmt::FlowDrain alone(pub, {log, 1ull << 40, 0});
    if (!alone.open(&err)) die(err.c_str());
    uint64_t written = 0;
    double busy = 0;
    while (written < flows) {
      if (ring.size() == 0) {
        FlowRecord r{};
        r.flow_id = written;
        r.key.family = 4;
        r.key.proto = kProtoTcp;
        r.verdict = Verdict::allow;
        r.rtt_us = 180;
        snprintf(r.rule_id, sizeof r.rule_id, "web-out");
        while (ring.push(r)) ++r.flow_id;
      }
      const double a = wall();
      written += alone.drain_once(view);
      busy += wall() - a;
    }
    res.drain_rate.push_back(static_cast<double>(written) / busy);
  }
  unlink(log.c_str());

  const double emit = median(res.emit_rate), par = median(res.drain_rate_parallel);
  const double nr = median(res.no_reader_cycles), dr = median(res.drain_rate);
  printf("flow_records (%u flows a repetition, median of %d):\n", flows, reps);
  printf(
      "  worker emits %.2f M records/s (%.0f cycles/record) with egw-mgmt's drain beside it, "
      "which wrote %.2f M/s; %lu lost in all\n",
      emit / 1e6, hz / emit, par / 1e6, static_cast<unsigned long>(res.lost_with_reader));
  printf("  egw-mgmt stopped: %.0f cycles/record, %lu kept in the ring, %lu counted lost\n", nr,
         static_cast<unsigned long>(res.kept_no_reader / reps),
         static_cast<unsigned long>(res.lost_no_reader / reps));
  printf("  drain alone: %.2f M records/s formatted and written (%.0f ns/record)\n", dr / 1e6,
         1e9 / dr);
  if (!json.empty()) {
    FILE* f = fopen(json.c_str(), "w");
    if (f == nullptr) die("cannot write the JSON file");
    fprintf(f,
            "{\"flow_records\":{\"emit_per_s\":%.0f,\"emit_cycles\":%.1f,"
            "\"drain_parallel_per_s\":%.0f,\"lost_with_reader\":%lu,"
            "\"no_reader_cycles\":%.1f,\"no_reader_kept\":%lu,\"no_reader_lost\":%lu,"
            "\"drain_per_s\":%.0f,\"flows\":%u,\"reps\":%d}}\n",
            emit, hz / emit, par, static_cast<unsigned long>(res.lost_with_reader), nr,
            static_cast<unsigned long>(res.kept_no_reader / reps),
            static_cast<unsigned long>(res.lost_no_reader / reps), dr, flows, reps);
    fclose(f);
  }
  rig_owner.reset();
  seg.close();
  rte_eal_cleanup();
  return 0;
}
