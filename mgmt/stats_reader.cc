// Lock-free reads of the stats segment: single-writer words loaded with relaxed
// atomic loads, the control block and slot ids under their sequence locks.
#include "mgmt/stats_reader.h"

#include <atomic>
#include <cstring>

namespace egw::mgmt {
namespace {

const char* at(const void* seg, uint64_t off) {
  return static_cast<const char*>(seg) + off;
}

// Loads n counter words.
void load_words(const void* src, void* dst, size_t bytes) {
  const auto* s = static_cast<const uint64_t*>(src);
  auto* d = static_cast<uint64_t*>(dst);
  for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) d[i] = stats::load_counter(&s[i]);
}

// A rule slot's id, state and base under its sequence lock; false while the control
// thread keeps rewriting it (a few retries).
bool read_slot(const stats::RuleSlot& t, std::string* id, bool* active, stats::RuleCounters* base) {
  for (int tries = 0; tries < 100; ++tries) {
    const uint32_t s0 = t.seq.load(std::memory_order_acquire);
    if (s0 & 1) continue;
    char text[sizeof t.id];
    std::memcpy(text, t.id, sizeof text);
    text[sizeof text - 1] = '\0';
    load_words(&t.base, base, sizeof *base);
    const uint32_t is_active = t.active;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (t.seq.load(std::memory_order_relaxed) != s0) continue;
    *id = text;
    *active = is_active != 0;
    return true;
  }
  return false;
}

}  // namespace

bool stats_header_ok(const void* seg, size_t size, std::string* err) {
  if (size < sizeof(stats::StatsHeader)) {
    *err = "stats segment smaller than its header";
    return false;
  }
  stats::StatsHeader h;
  std::memcpy(&h, seg, sizeof h);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (h.magic != stats::kStatsMagic) {
    *err = "stats segment not ready (no magic)";
    return false;
  }
  if (h.abi_version != stats::kStatsAbiVersion) {
    *err = "stats segment ABI " + std::to_string(h.abi_version) + ", this egw-mgmt reads " +
           std::to_string(stats::kStatsAbiVersion);
    return false;
  }
  const stats::StatsLayout l = stats::stats_layout(h.workers, h.rule_slots);
  if (h.size != size || l.size != size || h.control_offset != l.control_offset ||
      h.slots_offset != l.slots_offset || h.workers_offset != l.workers_offset ||
      h.worker_stride != l.worker_stride || h.rules_offset != l.rules_offset ||
      h.drop_reasons != kDropReasonCount ||
      h.worker_counters != sizeof(WorkerCounters) / sizeof(uint64_t) ||
      h.rule_slots < stats::kFirstRuleSlot) {
    *err = "stats segment layout differs from this build's (another egw version?)";
    return false;
  }
  return true;
}

void read_stats(const void* seg, StatsView* out) {
  stats::StatsHeader h;
  std::memcpy(&h, seg, sizeof h);
  out->boot_id = h.boot_id;
  out->tsc_hz = h.tsc_hz;
  out->workers = h.workers;
  out->rule_slots = h.rule_slots;

  // The control block under its sequence lock (the control thread rewrites it every
  // 100 ms: a few tries always find it still).
  const auto* c = reinterpret_cast<const stats::ControlStats*>(at(seg, h.control_offset));
  for (int tries = 0; tries < 1000; ++tries) {
    const uint64_t s0 = c->seq.load(std::memory_order_acquire);
    if (s0 & 1) continue;
    ControlView v;
    v.updated_ns = stats::load_counter(&c->updated_ns);
    std::memcpy(v.port_id, c->port_id, sizeof v.port_id);
    load_words(c->rx_packets, v.rx_packets, sizeof v.rx_packets);
    load_words(c->tx_packets, v.tx_packets, sizeof v.tx_packets);
    load_words(c->rx_bytes, v.rx_bytes, sizeof v.rx_bytes);
    load_words(c->tx_bytes, v.tx_bytes, sizeof v.tx_bytes);
    load_words(c->rx_missed, v.rx_missed, sizeof v.rx_missed);
    load_words(c->rx_errors, v.rx_errors, sizeof v.rx_errors);
    load_words(c->tx_errors, v.tx_errors, sizeof v.tx_errors);
    load_words(c->rx_nombuf, v.rx_nombuf, sizeof v.rx_nombuf);
    v.flows_active = stats::load_counter(&c->flows_active);
    v.flows_capacity = stats::load_counter(&c->flows_capacity);
    v.active_version = stats::load_counter(&c->active_version);
    v.activations = stats::load_counter(&c->activations);
    v.activation_failures = stats::load_counter(&c->activation_failures);
    v.last_activation_ns = stats::load_counter(&c->last_activation_ns);
    v.records_written = stats::load_counter(&c->records_written);
    v.rule_slots_used = stats::load_counter(&c->rule_slots_used);
    v.rule_slots_reused = stats::load_counter(&c->rule_slots_reused);
    v.rules_without_slot = stats::load_counter(&c->rules_without_slot);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (c->seq.load(std::memory_order_relaxed) == s0) {
      out->control = v;
      break;
    }
  }

  out->total = WorkerCounters{};
  out->per_worker.assign(h.workers, WorkerCounters{});
  std::vector<stats::RuleCounters> sums(h.rule_slots, stats::RuleCounters{});
  constexpr size_t kRuleWords = sizeof(stats::RuleCounters) / sizeof(uint64_t);
  for (uint32_t w = 0; w < h.workers; ++w) {
    const char* block = at(seg, h.workers_offset + uint64_t{w} * h.worker_stride);
    load_words(block, &out->per_worker[w], sizeof(WorkerCounters));
    out->total.add(out->per_worker[w]);
    const auto* rules = reinterpret_cast<const uint64_t*>(block + h.rules_offset);
    for (uint32_t s = 0; s < h.rule_slots; ++s) {
      auto* sum = reinterpret_cast<uint64_t*>(&sums[s]);
      for (size_t i = 0; i < kRuleWords; ++i)
        sum[i] += stats::load_counter(&rules[uint64_t{s} * kRuleWords + i]);
    }
  }

  out->rules.clear();
  const auto* slots = reinterpret_cast<const stats::RuleSlot*>(at(seg, h.slots_offset));
  for (uint32_t s = 0; s < h.rule_slots; ++s) {
    RuleStats r;
    stats::RuleCounters base;
    if (!read_slot(slots[s], &r.id, &r.active, &base) || r.id.empty()) continue;
    auto* d = reinterpret_cast<uint64_t*>(&r.c);
    const auto* a = reinterpret_cast<const uint64_t*>(&sums[s]);
    const auto* b = reinterpret_cast<const uint64_t*>(&base);
    for (size_t i = 0; i < kRuleWords; ++i) d[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
    out->rules.push_back(std::move(r));
  }
}

std::string slot_id(const void* seg, uint16_t slot) {
  stats::StatsHeader h;
  std::memcpy(&h, seg, sizeof h);
  if (slot >= h.rule_slots) return "";
  std::string id;
  bool active;
  stats::RuleCounters base;
  const auto& t = reinterpret_cast<const stats::RuleSlot*>(at(seg, h.slots_offset))[slot];
  return read_slot(t, &id, &active, &base) ? id : "";
}

}  // namespace egw::mgmt
