// Stats and flow-record segments, and rule-slot assignment (control thread only: may
// allocate and make syscalls).
#include "dataplane/stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "dataplane/policy.h"

namespace egw {

bool ShmObject::create(const std::string& name, uint64_t size, std::string* err) {
  close();
  shm_unlink(name.c_str());  // left by an earlier run (or a crash)
  const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    *err = "cannot create shared memory " + name + ": " + strerror(errno);
    return false;
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    *err = "cannot size shared memory " + name + " to " + std::to_string(size) +
           " bytes: " + strerror(errno) + " (is /dev/shm large enough?)";
    ::close(fd);
    shm_unlink(name.c_str());
    return false;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    *err = "cannot map shared memory " + name + ": " + strerror(errno);
    shm_unlink(name.c_str());
    return false;
  }
  p_ = p;
  size_ = size;
  name_ = name;
  return true;
}

void ShmObject::close() {
  if (p_ == nullptr) return;
  munmap(p_, size_);
  shm_unlink(name_.c_str());
  p_ = nullptr;
  size_ = 0;
}

// ---- Stats segment ------------------------------------------------------------------

bool StatsSegment::create(const std::string& instance, uint32_t workers, uint32_t rule_slots,
                          uint64_t boot_id, uint64_t tsc_hz, std::string* err) {
  const stats::StatsLayout l = stats::stats_layout(workers, rule_slots);
  if (!obj_.create(stats::stats_name(instance), l.size, err)) return false;
  // A fresh object reads as zeros: every counter starts at 0.
  auto* h = new (obj_.data()) stats::StatsHeader();
  h->abi_version = stats::kStatsAbiVersion;
  h->size = l.size;
  h->boot_id = boot_id;
  h->tsc_hz = tsc_hz;
  h->workers = workers;
  h->rule_slots = rule_slots;
  h->control_offset = l.control_offset;
  h->slots_offset = l.slots_offset;
  h->workers_offset = l.workers_offset;
  h->worker_stride = l.worker_stride;
  h->rules_offset = l.rules_offset;
  h->drop_reasons = kDropReasonCount;
  h->worker_counters = sizeof(WorkerCounters) / sizeof(uint64_t);
  new (control()) stats::ControlStats();
  for (uint32_t i = 0; i < rule_slots; ++i) new (&slots()[i]) stats::RuleSlot();
  snprintf(slots()[stats::kSlotDefault].id, sizeof slots()[0].id, "%s", stats::kDefaultLabel);
  snprintf(slots()[stats::kSlotOther].id, sizeof slots()[0].id, "%s", stats::kOtherLabel);
  slots()[stats::kSlotDefault].active = slots()[stats::kSlotOther].active = 1;
  return true;
}

void StatsSegment::publish() {
  std::atomic_thread_fence(std::memory_order_release);
  header()->magic = stats::kStatsMagic;
}

stats::ControlStats* StatsSegment::control() const {
  return reinterpret_cast<stats::ControlStats*>(static_cast<char*>(obj_.data()) +
                                                header()->control_offset);
}

stats::RuleSlot* StatsSegment::slots() const {
  return reinterpret_cast<stats::RuleSlot*>(static_cast<char*>(obj_.data()) +
                                            header()->slots_offset);
}

stats::WorkerBlock* StatsSegment::worker(uint32_t i) const {
  return reinterpret_cast<stats::WorkerBlock*>(static_cast<char*>(obj_.data()) +
                                               header()->workers_offset +
                                               uint64_t{i} * header()->worker_stride);
}

const stats::RuleCounters* StatsSegment::worker_rules(uint32_t i) const {
  return reinterpret_cast<const stats::RuleCounters*>(reinterpret_cast<const char*>(worker(i)) +
                                                      header()->rules_offset);
}

void StatsSegment::control_begin() {
  auto& seq = control()->seq;
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

void StatsSegment::control_end() {
  auto& seq = control()->seq;
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

// ---- Flow-record segment ------------------------------------------------------------

bool FlowsSegment::create(const std::string& instance, uint32_t workers, uint64_t boot_id,
                          stats::Consumer consumer, std::string* err) {
  const uint64_t size = stats::flows_size(workers);
  if (!obj_.create(stats::flows_name(instance), size, err)) return false;
  auto* h = new (obj_.data()) stats::FlowsHeader();
  h->abi_version = stats::kFlowsAbiVersion;
  h->size = size;
  h->boot_id = boot_id;
  h->workers = workers;
  h->ring_slots = kFlowRecordRingSize;
  h->record_size = sizeof(FlowRecord);
  h->consumer = consumer;
  h->rings_offset = stats::round64(sizeof(stats::FlowsHeader));
  h->ring_stride = stats::round64(sizeof(FlowRecordRing));
  for (uint32_t i = 0; i < workers; ++i) new (ring(i)) FlowRecordRing();
  return true;
}

void FlowsSegment::publish() {
  std::atomic_thread_fence(std::memory_order_release);
  static_cast<stats::FlowsHeader*>(obj_.data())->magic = stats::kFlowsMagic;
}

FlowRecordRing* FlowsSegment::ring(uint32_t i) const {
  const auto* h = static_cast<const stats::FlowsHeader*>(obj_.data());
  return reinterpret_cast<FlowRecordRing*>(static_cast<char*>(obj_.data()) + h->rings_offset +
                                           uint64_t{i} * h->ring_stride);
}

// ---- Rule slots ---------------------------------------------------------------------

void RuleSlots::write_slot(uint16_t slot, const std::string& id, uint64_t version, bool reuse) {
  stats::RuleSlot& s = seg_->slots()[slot];
  s.seq.store(s.seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  if (reuse) {
    // What the slot counted for its previous rule: readers subtract it. Workers may
    // still count into it for that rule's last flows (docs/observability.md).
    constexpr size_t kWords = sizeof(stats::RuleCounters) / sizeof(uint64_t);
    uint64_t sum[kWords] = {};
    for (uint32_t w = 0; w < seg_->workers(); ++w) {
      const auto* words = reinterpret_cast<const uint64_t*>(&seg_->worker_rules(w)[slot]);
      for (size_t i = 0; i < kWords; ++i) sum[i] += stats::load_counter(&words[i]);
    }
    std::memcpy(static_cast<void*>(&s.base), sum, sizeof sum);
  }
  snprintf(s.id, sizeof s.id, "%s", id.c_str());
  s.active = 1;
  s.last_version = version;
  s.seq.store(s.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

uint16_t RuleSlots::take(const std::string& id, uint64_t version) {
  stats::ControlStats* c = seg_->control();
  if (next_free_ < seg_->rule_slots()) {
    const auto slot = static_cast<uint16_t>(next_free_++);
    write_slot(slot, id, version, false);
    by_id_[id] = slot;
    seg_->control_begin();
    ++c->rule_slots_used;
    seg_->control_end();
    return slot;
  }
  // The slot of the rule longest out of the policy.
  stats::RuleSlot* t = seg_->slots();
  uint32_t best = 0;
  for (uint32_t i = stats::kFirstRuleSlot; i < seg_->rule_slots(); ++i) {
    if (t[i].active) continue;
    if (best == 0 || t[i].last_version < t[best].last_version) best = i;
  }
  seg_->control_begin();
  if (best == 0) {
    ++c->rules_without_slot;
    seg_->control_end();
    return stats::kSlotOther;
  }
  ++c->rule_slots_reused;
  seg_->control_end();
  by_id_.erase(t[best].id);
  const auto slot = static_cast<uint16_t>(best);
  write_slot(slot, id, version, true);
  by_id_[id] = slot;
  return slot;
}

std::vector<uint16_t> RuleSlots::assign(const RuntimePolicy& p) {
  const size_t n = p.rule_count() + p.inspect_count();
  std::vector<uint16_t> out(n, stats::kSlotOther);
  stats::RuleSlot* t = seg_->slots();
  // Rules the slots know keep theirs; the rest are out of the policy until named again.
  std::vector<bool> known(n, false);
  std::vector<bool> in_policy(seg_->rule_slots(), false);
  for (size_t i = 0; i < n; ++i) {
    auto it = by_id_.find(p.rule_id(static_cast<uint16_t>(i)));
    if (it == by_id_.end()) continue;
    out[i] = it->second;
    known[i] = true;
    in_policy[it->second] = true;
  }
  for (uint32_t s = stats::kFirstRuleSlot; s < seg_->rule_slots(); ++s) {
    if (t[s].id[0] == '\0') continue;
    t[s].seq.store(t[s].seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    t[s].active = in_policy[s];
    if (in_policy[s]) t[s].last_version = p.version();
    t[s].seq.store(t[s].seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  for (size_t i = 0; i < n; ++i) {
    if (known[i]) continue;
    const std::string id = p.rule_id(static_cast<uint16_t>(i));
    auto it = by_id_.find(id);  // the same id twice in one policy: one slot
    out[i] = it != by_id_.end() ? it->second : take(id, p.version());
  }
  return out;
}

}  // namespace egw
