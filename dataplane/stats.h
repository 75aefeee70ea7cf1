// The dataplane's side of the stats and flow-record segments (stats_abi.h): creating
// them, and assigning rule slots at every policy activation. Control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/stats_abi.h"

namespace egw {

class RuntimePolicy;

// A POSIX shared-memory object created afresh (one left by an earlier run is
// replaced) and mapped read-write; unmapped and removed on close().
class ShmObject {
 public:
  ShmObject() = default;
  ~ShmObject() { close(); }
  ShmObject(const ShmObject&) = delete;
  ShmObject& operator=(const ShmObject&) = delete;
  // On failure returns false with a message saying what to fix.
  bool create(const std::string& name, uint64_t size, std::string* err);
  void close();
  void* data() const { return p_; }
  uint64_t size() const { return size_; }

 private:
  void* p_ = nullptr;
  uint64_t size_ = 0;
  std::string name_;
};

class StatsSegment {
 public:
  bool create(const std::string& instance, uint32_t workers, uint32_t rule_slots, uint64_t boot_id,
              uint64_t tsc_hz, std::string* err);
  // Writes the magic: readers that see it see the whole header.
  void publish();
  void close() { obj_.close(); }

  stats::StatsHeader* header() const { return static_cast<stats::StatsHeader*>(obj_.data()); }
  stats::ControlStats* control() const;
  stats::RuleSlot* slots() const;
  stats::WorkerBlock* worker(uint32_t i) const;
  const stats::RuleCounters* worker_rules(uint32_t i) const;
  uint32_t rule_slots() const { return header()->rule_slots; }
  uint32_t workers() const { return header()->workers; }

  // Begins and ends a write of the control block (sequence lock, odd while writing).
  void control_begin();
  void control_end();

 private:
  ShmObject obj_;
};

class FlowsSegment {
 public:
  bool create(const std::string& instance, uint32_t workers, uint64_t boot_id,
              stats::Consumer consumer, std::string* err);
  void publish();
  void close() { obj_.close(); }
  void* data() const { return obj_.data(); }  // the FlowsHeader
  FlowRecordRing* ring(uint32_t i) const;

 private:
  ShmObject obj_;
};

// Gives every rule of a policy a stats slot: the slot its id already has, else a free
// one, else the slot of the rule longest out of the policy (its counters' sums become
// the slot's base, which readers subtract), else kSlotOther. Slot ids are written
// before the policy is published, so a worker never counts into a slot whose id is
// not yet there.
class RuleSlots {
 public:
  explicit RuleSlots(StatsSegment* seg) : seg_(seg) {}
  std::vector<uint16_t> assign(const RuntimePolicy& p);

 private:
  uint16_t take(const std::string& id, uint64_t version);
  void write_slot(uint16_t slot, const std::string& id, uint64_t version, bool reuse);

  StatsSegment* seg_;
  std::unordered_map<std::string, uint16_t> by_id_;
  uint32_t next_free_ = stats::kFirstRuleSlot;
};

}  // namespace egw
