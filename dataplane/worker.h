// The worker pipeline: one burst in, verdicts applied, packets out.
// Runs on worker lcores (egw-dataplane) and in egw-replay: the same code.
// No locks, no allocation, no syscalls, no logging per packet.
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/flow_log.h"
#include "dataplane/flow_table.h"
#include "dataplane/frag.h"
#include "dataplane/inspect.h"
#include "dataplane/l7/l7.h"
#include "dataplane/l7/reasm.h"
#include "dataplane/parse.h"
#include "dataplane/policy.h"
#include "dataplane/stage_clock.h"

namespace egw {

constexpr unsigned kBurst = 32;

// Which port a packet arrived on: inside (outbound traffic) or outside (inbound).
enum Side : uint8_t { kInside = 0, kOutside = 1 };

// Packets to transmit on one port, collected over a burst.
struct TxBatch {
  static constexpr unsigned kCap = kBurst * 3;  // forwarded + synthesized (RST to both ends)
  rte_mbuf* pkts[kCap];
  uint16_t n = 0;
};

struct WorkerConfig {
  static constexpr uint32_t kAutoStreams = 0xffffffff;
  static constexpr uint32_t kMaxAutoStreams = 16384;
  uint32_t flow_capacity = 65536;
  uint32_t l7_contexts = 256;  // flows that may wait for (or watch) their name at once
  // Flows whose payload may be inspected at once (one abi::kInspectStreamBlock block
  // each); kAutoStreams: a quarter of flow_capacity, at most kMaxAutoStreams.
  uint32_t inspect_streams = kAutoStreams;
  uint32_t frag_capacity = 4096;
  uint64_t hash_seed[2] = {0, 0};  // per-boot random
  unsigned id = 0;
  rte_mempool* pool = nullptr;  // for synthesized packets (RST, ICMP errors)
};

// Token bucket for synthesized answers (RST, ICMP errors), on the burst clock.
struct SynthLimiter {
  static constexpr uint32_t kPerSecond = 1000;
  static constexpr uint32_t kBurst = 100;
  uint32_t tokens = kBurst;
  uint64_t last_ns = 0;
};

// A flow's L7 phase (FlowEntry::l7).
enum L7Phase : uint8_t {
  kL7None = 0,  // not inspected (yet)
  kL7Wait,      // TCP: waiting for its name; the client's payload is held
  kL7Watch,     // allowed by its name; later requests/hellos are still checked
  kL7Done,      // nothing more to inspect
  kL7Note,      // allowed without a name; its first unit is followed for the record only
};

// A flow's payload inspection (FlowAux::inspect).
enum InspectPhase : uint8_t {
  kInspectUnknown = 0,  // decided at its next outbound payload
  kInspectOn,           // the policy's inspect rules cover it: payload is scanned
  kInspectOff,          // not covered, or inspect_max_bytes scanned
  kInspectMatched,      // a pattern matched: the flow ended with the rule's action
};

// Per-flow data beside the flow table entry (same index): the name for the flow
// record, the DNS queries a response may answer, the payload inspection state.
struct FlowAux {
  l7::FlowName app;
  static constexpr unsigned kDnsPending = 4;
  uint16_t dns_id[kDnsPending];
  uint32_t dns_key[kDnsPending];  // hash of the question (name, type, class)
  uint8_t dns_next;
  uint8_t inspect;            // InspectPhase
  uint8_t inspect_seq;        // TCP: inspect_next is known
  hs_stream* inspect_stream;  // of the current policy's database; opened at need
  uint32_t inspect_next;      // TCP: the next outbound sequence number to scan
  uint32_t inspected;         // outbound payload bytes scanned
  uint32_t inspect_gen;       // WorkerCtx::policy_gen `inspect` was decided under
};

// A flow waiting for (or watching) its name: its first-flight stream.
struct L7Ctx {
  l7::ReasmStream stream;
  l7::FlightState flight;
  uint64_t start_ns;
  rte_mbuf* tmpl;    // the latest held segment: template of the released segments
  uint16_t max_seg;  // largest payload the client sent: the released segment size
  bool held;         // bytes are held, not forwarded yet
};

// One packet of the burst being processed: parsed once, keyed and hashed in the first
// pass, looked up and acted on in the second.
struct BurstState {
  rte_mbuf* m;
  ParsedPacket p;
  FlowKey key;
  uint64_t hash;
};

struct alignas(64) WorkerCtx {
  unsigned id = 0;
  FlowTable flows;
  FragTable frags;
  WorkerCounters counters;
  rte_mempool* pool = nullptr;
  uint64_t next_flow_id = 0;
  // The active policy: published by the control thread, read between bursts.
  std::atomic<const RuntimePolicy*> published{nullptr};
  const RuntimePolicy* policy = nullptr;  // the one this burst uses
  uint64_t policy_version = 0;
  FlowRecordRing* records = nullptr;  // may be null: records are then not kept
  SynthLimiter synth_limit;
  uint64_t now_ns = 0;                // clock of the current burst
  // L7: per-flow side table, and the contexts of flows waiting for their name.
  FlowAux* aux = nullptr;  // flows.capacity() entries
  L7Ctx* l7 = nullptr;     // l7_cap contexts
  uint32_t* l7_free = nullptr;
  uint32_t l7_free_top = 0;
  uint32_t l7_cap = 0;
  l7::ReasmPool reasm;
  // Payload inspection: stream blocks, the stream datagrams are scanned on (reset after
  // each), matches per inspect index of the policy in force (kMaxInspectRules; zeroed
  // when the policy changes), and a generation bumped at every policy change.
  StreamPool streams;
  hs_stream* dgram = nullptr;
  uint64_t* inspect_hits = nullptr;
  uint32_t policy_gen = 0;
  StageClock stages;  // filled only in an EGW_STAGE_CLOCKS build (stage_clock.h)
  BurstState burst[kBurst];  // worker_process_burst's scratch

  WorkerCtx() = default;
  WorkerCtx(const WorkerCtx&) = delete;
  WorkerCtx& operator=(const WorkerCtx&) = delete;
  ~WorkerCtx();
};

// Allocates the worker's tables (control thread, before the worker starts).
bool worker_init(WorkerCtx& w, const WorkerConfig& cfg, FlowRecordRing* records);
// Frees them (after the worker stopped; flush first).
void worker_destroy(WorkerCtx& w);

// Picks up a newly published policy (between bursts, on the worker's thread). Streams of
// the previous policy's inspect database are closed first: that database is freed once
// the worker is next quiescent.
void worker_refresh_policy(WorkerCtx& w);

// Processes one burst received on `from`. Packets to send go to out[kInside] /
// out[kOutside]; every other packet is freed and counted under a drop reason.
void worker_process_burst(WorkerCtx& w, rte_mbuf** pkts, uint16_t n, Side from,
                          uint64_t now_ns, TxBatch out[2]);

// Periodic housekeeping between bursts: ages a bounded slice of the flow table.
void worker_housekeeping(WorkerCtx& w, uint64_t now_ns);

// Ends up to `budget` flows (shutdown, end of replay), emitting their records;
// returns true when none is left. Drain the records ring between calls: a budget of
// at most half the ring loses no record.
bool worker_flush(WorkerCtx& w, uint32_t budget = kFlowRecordRingSize / 2);

}  // namespace egw
