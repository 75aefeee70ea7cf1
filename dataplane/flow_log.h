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
  char rule_id[64];  // NUL-terminated; filled by the reader from rule_index and
                     // policy_version ("" when the default decided)
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

// Lock-free SPSC ring of N (power of two) records. Producer: one worker. Consumer:
// one reader thread. Plain loads and stores with acquire/release, no RMW atomics.
template <typename T, uint32_t N>
class SpscRing {
  static_assert((N & (N - 1)) == 0, "N must be a power of two");

 public:
  bool push(const T& v) {
    uint32_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_cache_ == N) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h - tail_cache_ == N) return false;
    }
    slots_[h & (N - 1)] = v;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool pop(T* v) {
    uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    *v = slots_[t & (N - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return true;
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
