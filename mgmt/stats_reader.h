// Reading the dataplane's stats segment (dataplane/stats_abi.h) without locks: checks
// the header against what this build knows, then sums the workers' counters and
// names the rule slots. Any thread; never writes to the segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/stats_abi.h"

namespace egw::mgmt {

struct RuleStats {
  std::string id;           // the rule id, or "(default)" / "(other)"
  bool active = false;      // in the policy the dataplane enforces
  stats::RuleCounters c{};  // summed over workers, the slot's base subtracted
};

// A copy of the ControlStats without its sequence word.
struct ControlView {
  uint64_t updated_ns = 0;
  uint16_t port_id[2] = {0, 1};
  uint64_t rx_packets[2] = {}, tx_packets[2] = {}, rx_bytes[2] = {}, tx_bytes[2] = {};
  uint64_t rx_missed[2] = {}, rx_errors[2] = {}, tx_errors[2] = {}, rx_nombuf[2] = {};
  uint64_t flows_active = 0, flows_capacity = 0;
  uint64_t active_version = 0, activations = 0, activation_failures = 0, last_activation_ns = 0;
  uint64_t records_written = 0;
  uint64_t rule_slots_used = 0, rule_slots_reused = 0, rules_without_slot = 0;
};

struct StatsView {
  uint64_t boot_id = 0;
  uint64_t tsc_hz = 0;
  uint32_t workers = 0;
  uint32_t rule_slots = 0;
  ControlView control;
  WorkerCounters total;  // summed over workers
  std::vector<WorkerCounters> per_worker;
  std::vector<RuleStats> rules;  // slots that name a rule, by slot
};

// Checks a mapped segment's header (magic, ABI version, sizes, offsets within `size`).
bool stats_header_ok(const void* seg, size_t size, std::string* err);

// Reads the segment (header already checked). Rule slots whose id is being rewritten
// are retried a few times, then skipped for this read.
void read_stats(const void* seg, StatsView* out);

// The id of rule slot `slot`, "" when it names no rule (or is being rewritten).
std::string slot_id(const void* seg, uint16_t slot);

}  // namespace egw::mgmt
