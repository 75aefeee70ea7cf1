// The stats segment (/egw-NAME-stats) and the flow-record segment (/egw-NAME-flows):
// the dataplane's counters and ended-flow records, in POSIX shared memory, for
// egw-mgmt (and anyone else) to read without asking the dataplane anything. After
// VPP's stats segment: every counter has exactly one writer, the lcore that owns it
// (a worker its block, the control thread the rest); readers never lock and never
// write. See docs/shm-abi.md.
//
// Counters are plain aligned 64-bit words: a worker increments them with ordinary
// stores (no atomics on the fast path); an aligned 8-byte store is single-copy atomic
// on every target DPDK supports, so a reader loading them with relaxed atomic loads
// (load_counter) sees each word whole, never torn. Sums over words are not a snapshot:
// each word is at most one read old.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "dataplane/counters.h"
#include "dataplane/flow_log.h"

namespace egw::stats {

constexpr uint32_t kStatsMagic = 0x53574745;  // "EGWS"
constexpr uint32_t kStatsAbiVersion = 2;  // 2: report and limit counters per rule
constexpr uint32_t kFlowsMagic = 0x46574745;  // "EGWF"
constexpr uint32_t kFlowsAbiVersion = 2;  // 2: FlowRecord of 560 bytes

inline std::string stats_name(const std::string& instance) {
  return "/egw-" + instance + "-stats";
}
inline std::string flows_name(const std::string& instance) {
  return "/egw-" + instance + "-flows";
}

// Rule slots: per-rule counters are kept by slot, not by the policy's rule index, so
// that a rule keeps its counters across policy versions (its id keeps its slot).
constexpr uint16_t kSlotDefault = 0;  // flows the default action decided
constexpr uint16_t kSlotOther = 1;    // rules that found no free slot (--rule-slots)
constexpr uint16_t kFirstRuleSlot = 2;
constexpr uint32_t kDefaultRuleSlots = 1024;
constexpr uint32_t kMaxRuleSlots = 16383;  // 14 bits: FlowEntry::report holds one
constexpr const char* kDefaultLabel = "(default)";  // not a valid rule id
constexpr const char* kOtherLabel = "(other)";

// Histogram bounds in microseconds; bucket i counts values <= bound i (and above
// bound i-1), the last bucket everything above the last bound (+Inf). Readers make
// them cumulative. From 100 µs (same rack) to 5 s (a stalled server).
constexpr unsigned kHistBounds = 15;
constexpr uint32_t kHistBoundUs[kHistBounds] = {100,    250,    500,     1000,    2500,
                                                5000,   10000,  25000,   50000,   100000,
                                                250000, 500000, 1000000, 2500000, 5000000};
constexpr unsigned kHistBuckets = kHistBounds + 1;

inline unsigned hist_bucket(uint32_t us) {
  unsigned i = 0;
  while (i < kHistBounds && us > kHistBoundUs[i]) ++i;
  return i;
}

struct Histogram {
  uint64_t bucket[kHistBuckets];  // not cumulative
  uint64_t sum_us;
  void add(uint32_t us) {
    ++bucket[hist_bucket(us)];
    sum_us += us;
  }
};

// Per rule slot, per worker.
struct RuleCounters {
  uint64_t hits;          // flows the rule decided (again after a policy swap re-decided)
  uint64_t resets;        // RST segments from either end on its flows (egw's own excluded)
  uint64_t syn_timeouts;  // allowed TCP flows that timed out waiting for the SYN-ACK
  uint64_t report_hits;   // report-only rule: flows it would have decided
  uint64_t rate_limited;  // new flows refused over its new_flows_per_s
  uint64_t over_quota;    // new flows refused over its max_flows
  uint64_t policed[2];    // packets dropped over its bytes_per_s: [0] toserver, [1] toclient
  Histogram rtt;   // TCP handshake: outbound SYN to SYN-ACK, as seen by egw
  Histogram ttfb;  // first request byte to first response byte (TCP, UDP, ICMP echo)
};
static_assert(sizeof(RuleCounters) == 8 * (8 + 2 * (kHistBuckets + 1)));

// One rule slot's identity, written by the control thread under `seq` (odd while
// being written: readers retry). A slot whose rule left the policy keeps its id (and
// its counters) until it is needed for another rule; `base` then holds the counters'
// sums at the moment of reuse, which readers subtract.
struct alignas(64) RuleSlot {
  std::atomic<uint32_t> seq;
  uint32_t active;        // 1: the rule is in the policy in force
  uint64_t last_version;  // the last policy version holding the rule
  char id[64];            // NUL-terminated rule id; "" for a free slot
  RuleCounters base;
};

// Written by the control thread (main lcore) every 100 ms, under `seq`.
struct alignas(64) ControlStats {
  std::atomic<uint64_t> seq;
  uint64_t updated_ns;  // CLOCK_REALTIME of the last update
  uint16_t port_id[2];  // [0] inside, [1] outside
  uint32_t reserved;
  uint64_t rx_packets[2], tx_packets[2], rx_bytes[2], tx_bytes[2];
  uint64_t rx_missed[2], rx_errors[2], tx_errors[2], rx_nombuf[2];
  uint64_t flows_active;
  uint64_t flows_capacity;  // over all workers
  uint64_t active_version;
  uint64_t activations;
  uint64_t activation_failures;
  uint64_t last_activation_ns;
  uint64_t records_written;  // by the dataplane's own --flow-log (0 when egw-mgmt drains)
  uint64_t rule_slots_used;
  uint64_t rule_slots_reused;   // slots taken over from rules no longer in the policy
  uint64_t rules_without_slot;  // counted under "(other)"
};

// One worker's counters, then its RuleCounters[rule_slots]. Written only by the
// worker lcore.
struct alignas(64) WorkerBlock {
  WorkerCounters counters;
};

struct alignas(64) StatsHeader {
  uint32_t magic;  // written last by the dataplane
  uint32_t abi_version;
  uint64_t size;     // bytes of the whole segment
  uint64_t boot_id;  // the dataplane's, as in the control segment
  uint64_t tsc_hz;   // for the workers' cycle counters
  uint32_t workers;
  uint32_t rule_slots;
  uint64_t control_offset;  // ControlStats
  uint64_t slots_offset;    // RuleSlot[rule_slots]
  uint64_t workers_offset;  // worker i at workers_offset + i * worker_stride
  uint64_t worker_stride;
  uint64_t rules_offset;     // within a worker's block: RuleCounters[rule_slots]
  uint32_t drop_reasons;     // kDropReasonCount, for a reader built from other sources
  uint32_t worker_counters;  // words of WorkerCounters
};

// The segment's layout for a number of workers and rule slots.
struct StatsLayout {
  uint64_t control_offset, slots_offset, workers_offset, worker_stride, rules_offset, size;
};
inline constexpr uint64_t round64(uint64_t v) {
  return (v + 63) & ~uint64_t{63};
}
inline constexpr StatsLayout stats_layout(uint32_t workers, uint32_t rule_slots) {
  StatsLayout l{};
  l.control_offset = round64(sizeof(StatsHeader));
  l.slots_offset = l.control_offset + round64(sizeof(ControlStats));
  l.workers_offset = l.slots_offset + round64(uint64_t{rule_slots} * sizeof(RuleSlot));
  l.rules_offset = round64(sizeof(WorkerBlock));
  l.worker_stride = round64(l.rules_offset + uint64_t{rule_slots} * sizeof(RuleCounters));
  l.size = l.workers_offset + uint64_t{workers} * l.worker_stride;
  return l;
}

// A relaxed atomic load of a counter word that its owner writes with plain stores.
inline uint64_t load_counter(const uint64_t* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

// The flow-record segment: a header, then one FlowRecordRing per worker (producer:
// the worker; consumer: egw-mgmt, or the dataplane itself when it was given
// --flow-log). The rings' indices live in the segment: a consumer that restarts goes
// on where the previous one stopped.
enum class Consumer : uint32_t { mgmt = 0, dataplane = 1 };

struct alignas(64) FlowsHeader {
  uint32_t magic;
  uint32_t abi_version;
  uint64_t size;
  uint64_t boot_id;
  uint32_t workers;
  uint32_t ring_slots;   // kFlowRecordRingSize
  uint32_t record_size;  // sizeof(FlowRecord)
  Consumer consumer;
  uint64_t rings_offset;  // ring i at rings_offset + i * ring_stride
  uint64_t ring_stride;
};

inline constexpr uint64_t flows_size(uint32_t workers) {
  return round64(sizeof(FlowsHeader)) + uint64_t{workers} * round64(sizeof(FlowRecordRing));
}

static_assert(std::is_trivially_copyable_v<RuleCounters>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(uint64_t) == 8 && alignof(WorkerCounters) == 8);

}  // namespace egw::stats
