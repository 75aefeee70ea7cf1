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
#include "dataplane/limits.h"
#include "dataplane/parse.h"
#include "dataplane/policy.h"
#include "dataplane/stage_clock.h"
#include "dataplane/stats_abi.h"

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
  // Names that do not fit their flow's FlowAux, kept at once (a LongNamePool slot each);
  // kAutoLongNames: flow_capacity / kLongNameShare.
  static constexpr uint32_t kAutoLongNames = 0xffffffff;
  static constexpr uint32_t kLongNameShare = 32;
  uint32_t long_names = kAutoLongNames;
  uint32_t frag_capacity = 4096;
  uint64_t hash_seed[2] = {0, 0};  // per-boot random
  unsigned id = 0;
  rte_mempool* pool = nullptr;  // for synthesized packets (RST, ICMP errors)
  // The worker's block of the stats segment (its counters, then rule_slots
  // RuleCounters at rules_offset); nullptr: the worker keeps its own.
  stats::WorkerBlock* stats = nullptr;
  uint64_t rules_offset = 0;
  uint32_t rule_slots = stats::kDefaultRuleSlots;
  // Records of allowed flows kept: 1 in record_sample (by flow id); denied ones always.
  uint32_t record_sample = 1;
  // Rate limits and quotas: workers sharing every budget, and (rule, key) entries.
  uint32_t workers = 1;
  uint32_t limit_entries = 65536;
  // The rule slots' ids (the stats segment's table), naming report rules in records;
  // nullptr: the policy's own ids by the slot's default (RuntimePolicy::rule_slot).
  const stats::RuleSlot* slot_names = nullptr;
};

// Why a flow's rule limits refused it (FlowEntry::limited, flow records).
enum LimitRefusal : uint8_t { kLimitNone = 0, kLimitRate = 1, kLimitQuota = 2, kLimitFull = 3 };

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

// A flow's payload inspection (FlowEntry::inspect).
enum InspectPhase : uint8_t {
  kInspectUnknown = 0,  // decided at its next outbound payload
  kInspectOn,           // the policy's inspect rules cover it: payload is scanned
  kInspectOff,          // not covered, or inspect_max_bytes scanned
  kInspectMatched,      // a pattern matched: the flow ended with the rule's action
};

// A flow's name as its FlowAux keeps it (an l7::FlowName, packed): the bytes, ALPN then
// name, follow in the FlowAux.
struct NameHead {
  uint8_t app;       // l7::AppProto
  uint8_t flags;     // kName*
  uint8_t name_len;  // l7::FlowName::name.len
  uint8_t alpn_len;  // l7::FlowName::alpn_len
};
enum NameFlag : uint8_t {
  kNameHas = 1,        // l7::FlowName::has_name
  kNameIpLiteral = 2,  // l7::FlowName::ip_literal
  kNameEch = 4,        // l7::FlowName::ech
  kNameLong = 8,       // the bytes past the FlowAux's room are in a LongNamePool slot
  kNameLost = 16,      // parsed but not kept (no slot free): app, ech and ALPN remain
};

// Which FlowAux layout a flow uses, by its key.
enum class AuxKind : uint8_t { tcp, dns, other };
inline AuxKind aux_kind(const FlowKey& k) {
  if (k.proto == kProtoTcp) return AuxKind::tcp;
  return k.proto == kProtoUdp && k.remote_port == 53 ? AuxKind::dns : AuxKind::other;
}

// Per-flow data beside the flow table entry (same index), one cache line: what the
// flow's kind needs (TCP: its inspection stream; UDP to port 53: the DNS queries a
// response may answer; they never meet on one flow), then its name (for its record and
// every later decision) in the bytes left. A name that does not fit starts here and
// goes on in a LongNamePool slot, whose index takes the first 4 bytes.
struct alignas(64) FlowAux {
  static constexpr unsigned kDnsPending = 4;
  struct Tcp {
    NameHead head;
    uint32_t inspect_next;      // the next outbound sequence number to scan
    hs_stream* inspect_stream;  // of the current policy's database; opened at need
    char text[48];
  };
  struct Dns {
    NameHead head;
    uint32_t key[kDnsPending];  // hash of an allowed query's id and question; 0: none
    uint8_t next;
    char text[43];
  };
  struct Other {
    NameHead head;
    char text[60];
  };
  union {
    Tcp tcp;
    Dns dns;
    Other other;
  };
};
static_assert(sizeof(FlowAux::Tcp) == 64 && sizeof(FlowAux::Dns) == 64 &&
              sizeof(FlowAux::Other) == 64 && sizeof(FlowAux) == 64);

// The ends of the names that do not fit their FlowAux (few: most names are short), in
// slots allocated at worker_init. Worker lcore only; snapshots read slots racily.
class LongNamePool {
 public:
  static constexpr uint32_t kSlotBytes = 256;
  LongNamePool() = default;
  ~LongNamePool() { destroy(); }
  LongNamePool(const LongNamePool&) = delete;
  LongNamePool& operator=(const LongNamePool&) = delete;
  bool init(uint32_t slots);  // replaces any earlier slots; 0 slots: every long name is lost
  void destroy();

  // A free slot, or kNil.
  uint32_t take() { return free_top_ == 0 ? kNil : free_[--free_top_]; }
  void put(uint32_t slot) { free_[free_top_++] = slot; }
  // Slot i's bytes; nullptr when i is not a slot.
  char* at(uint32_t i) const { return i < count_ ? mem_ + size_t{i} * kSlotBytes : nullptr; }
  uint32_t capacity() const { return count_; }
  uint32_t in_use() const { return count_ - free_top_; }

 private:
  char* mem_ = nullptr;
  uint32_t* free_ = nullptr;  // stack of free slots
  uint32_t free_top_ = 0;
  uint32_t count_ = 0;
};

// A flow waiting for (or watching) its name: its first-flight stream.
struct L7Ctx {
  l7::ReasmStream stream;
  l7::FlightState flight;
  l7::FlowName name;  // the first unit's: later units must repeat it
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
  // The worker's counters and its per-rule-slot counters: its block of the stats
  // segment (stats_abi.h) in egw-dataplane; its own memory in tests and egw-replay.
  WorkerCounters* counters = &own_counters;
  stats::RuleCounters* rules = nullptr;  // rule_slots entries
  uint32_t rule_slots = 0;
  bool own_rules = false;                // rules was allocated by worker_init
  uint32_t record_sample = 1;            // flow records of allowed flows: 1 in N
  LimitTable limits;                     // rate-limit and quota entries
  uint32_t workers = 1;                  // budgets are shared among this many
  const stats::RuleSlot* slot_names = nullptr;
  rte_mempool* pool = nullptr;
  uint64_t next_flow_id = 0;
  // The active policy: published by the control thread, read between bursts.
  std::atomic<const RuntimePolicy*> published{nullptr};
  const RuntimePolicy* policy = nullptr;  // the one this burst uses
  uint64_t policy_version = 0;
  FlowRecordRing* records = nullptr;  // may be null: records are then not kept
  SynthLimiter synth_limit;
  uint64_t now_ns = 0;                // clock of the current burst
  // L7: per-flow side table, the rest of long names, and the contexts of flows waiting
  // for their name.
  FlowAux* aux = nullptr;  // flows.capacity() entries
  LongNamePool long_names;
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
  WorkerCounters own_counters;

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

// Keeps n as flow e's name: in its FlowAux, what does not fit in a long-name slot
// (counted: l7_names_long). With no slot free the name is lost, counted
// (l7_names_lost): its protocol, ech and ALPN are kept, and a later decision that needs
// the name denies the flow. Returns whether the name was kept.
bool flow_name_keep(WorkerCtx& w, const FlowEntry& e, const l7::FlowName& n);
// The name a (flow k's FlowAux, or a copy of it) keeps, whole. Reads stay in bounds
// whatever a holds: snapshots copy a FlowAux while its worker writes it.
void flow_name_load(const WorkerCtx& w, const FlowKey& k, const FlowAux& a, l7::FlowName* out);

// Ends up to `budget` flows (shutdown, end of replay), emitting their records;
// returns true when none is left. Drain the records ring between calls: a budget of
// at most half the ring loses no record.
bool worker_flush(WorkerCtx& w, uint32_t budget = kFlowRecordRingSize / 2);

}  // namespace egw
