// Flow records: a fixed-size record per ended flow, pushed by a worker into its own
// single-producer/single-consumer ring (never blocks: full = counted loss), and
// formatted as one EVE-style JSON line by the reader (control thread / egw-replay).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "dataplane/flow_table.h"
#include "dataplane/l7/l7.h"

namespace egw {

struct FlowRecord {
  FlowKey key;
  uint64_t flow_id;
  uint64_t start_ns;  // wall-clock ns since the Unix epoch (replay: capture time)
  uint64_t end_ns;
  uint64_t pkts[2];   // [0] toserver (outbound), [1] toclient
  uint64_t bytes[2];
  uint64_t policy_version;
  uint32_t rtt_us;
  uint16_t resets;
  uint16_t rule_index;  // kNoRule: decided by default_action
  Verdict verdict;
  TcpState tcp_state;
  EndReason reason;
  uint8_t rst;          // kRstFrom* bits (flow_table.h)
  uint32_t ttfb_us;     // first request byte -> first response byte; 0: none
  uint16_t rule_slot;   // the rule's stats slot (stats_abi.h): names it for egw-mgmt
  uint8_t limited;      // LimitRefusal (worker.h): why the rule's limits refused it
  uint8_t has_report;   // a report-only rule would have decided the flow:
  uint8_t report_verdict;  // Verdict
  uint8_t reserved[3];
  uint16_t report_slot;
  char report_rule_id[64];
  char rule_id[64];  // NUL-terminated; "" when the default decided, or when the worker
                     // no longer had the deciding policy (the reader names it then)
  l7::FlowName app;  // what the flow's first bytes said (app unknown: nothing seen)
};

// Fills a record from a flow entry leaving the table. rule_id may be nullptr (workers
// pass nullptr: the reader names the rule, see PolicySwap::fill_rule_id). app may be
// nullptr: the record then says app unknown, no name.
void make_flow_record(const FlowEntry& e, EndReason why, const char* rule_id,
                      const l7::FlowName* app, FlowRecord* out);

// One JSON line (no trailing newline) in the contract's field names. `app_proto` is
// written for TCP and UDP flows (as Suricata: not for ICMP or other protocols), then
// the app's object when it has something to say: tls {sni, alpn, ech}, http
// {hostname}, dns {rrname}, quic {sni}.
std::string flow_record_json(const FlowRecord& r);
// The same line appended to out (readers formatting many records into one buffer).
void append_flow_record_json(std::string& out, const FlowRecord& r);

// Lock-free SPSC ring of N (power of two) records. Producer: one worker. Consumer:
// one reader thread. Plain loads and stores with acquire/release, no RMW atomics.
template <typename T, uint32_t N>
class SpscRing {
  static_assert((N & (N - 1)) == 0, "N must be a power of two");

 public:
  bool push(const T& v) {
    T* slot = reserve();
    if (slot == nullptr) return false;
    *slot = v;
    commit();
    return true;
  }
  // The next free slot, for the producer to fill in place (then commit()), or nullptr
  // when the ring is full. Saves a copy of a large T.
  T* reserve() {
    const uint32_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_cache_ == N) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h - tail_cache_ == N) return nullptr;
    }
    return &slots_[h & (N - 1)];
  }
  void commit() { head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  bool pop(T* v) {
    uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    *v = slots_[t & (N - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  // Moves both indices of an empty, unused ring to i: tests start near 2^32 to see the
  // indices wrap.
  void start_at(uint32_t i) {
    head_.store(i);
    tail_.store(i);
    tail_cache_ = i;
  }
  uint32_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }

 private:
  alignas(64) std::atomic<uint32_t> head_{0};
  uint32_t tail_cache_ = 0;  // producer's view of tail
  alignas(64) std::atomic<uint32_t> tail_{0};
  alignas(64) T slots_[N];
};

constexpr uint32_t kFlowRecordRingSize = 16384;
using FlowRecordRing = SpscRing<FlowRecord, kFlowRecordRingSize>;

}  // namespace egw
