// Runtime policy: a validated compiled blob turned into look-up structures
// (rte_lpm/rte_lpm6 for source services, rte_acl for the ordered rules).
// Built by the control thread (allocates); read-only and shared by all workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>

#include "dataplane/flow_table.h"
#include "dataplane/policy_abi.h"

struct hs_database;
struct hs_scratch;

namespace egw {

namespace l7 {
struct Name;
}

struct Decision {
  Verdict verdict;
  uint16_t rule_index;  // kNoRule when the default action decided
  // The first rule whose L3/L4 conditions match has a name condition: the flow waits
  // for its name (verdict/rule_index are then those of `plain`, the first matching
  // rule without a name condition, or the default), and decide_name() decides.
  bool needs_name = false;
  uint16_t first_index = kNoRule;  // with needs_name: the first L3/L4 candidate
};

class RuntimePolicy {
 public:
  // Validates blob (magic, ABI version, sizes, checksum, every offset and index)
  // and builds the look-up structures. Returns nullptr and sets *err on any problem;
  // never reads outside [blob, blob + len). Needs the EAL (rte_acl/rte_lpm memory).
  // scratch_count: Hyperscan scratches to prepare, one per worker that will call
  // decide_name() (the worker passes its index).
  static std::unique_ptr<RuntimePolicy> load(const uint8_t* blob, size_t len, std::string* err,
                                             unsigned scratch_count = 1);
  ~RuntimePolicy();

  // Decides a new flow: the source service of key.inside_ip (longest prefix), then
  // the first rule whose every condition matches, else the default action.
  // Worker lcores: no allocation, no locks.
  Decision classify(const FlowKey& key) const;
  // Same decision for up to 64 keys at once (bulk rte_acl_classify).
  void classify_bulk(const FlowKey* const* keys, unsigned n, Decision* out) const;

  // Decides a flow that waited for its name (d from classify() with needs_name): the
  // first rule, in policy order, whose L3/L4 conditions match key and whose name
  // condition holds for `name` (domains: the literal table, O(labels); domain_regex:
  // the Hyperscan block database), rules without a name condition holding always; else
  // the default. name == nullptr: the flow offered no name (or a malformed one, or an
  // IP literal): no name condition holds. `worker` selects the Hyperscan scratch
  // (< scratch_count()). Worker lcores: no allocation, no locks; cost independent of
  // the number of rules (the L3/L4 check runs only on rules the name selected).
  Decision decide_name(const FlowKey& key, const Decision& d, const l7::Name* name,
                       unsigned worker, bool report = false) const;

  // Report-only rulesets: what their rules would decide, beside the enforcing decision
  // (the same one ACL classification; decide_name(..., report = true) for their name
  // conditions). The default action is no report rule's: rule_index kNoRule.
  bool has_report() const;
  Decision classify_report(const FlowKey& key) const;

  // A rule's rate limit and connection quota (section rule_limits); nullptr: none.
  bool has_limits() const;
  const abi::LimitRec* limit(uint16_t rule_index) const;
  Verdict rule_verdict(uint16_t rule_index) const;  // the default's for kNoRule
  // True when some rule has a name condition (workers skip the L7 stage otherwise).
  bool has_name_rules() const;
  unsigned scratch_count() const;

  // Inspect rules (docs/l7.md, "Payload inspection"): one stream-mode Hyperscan database
  // of every pattern, id = the inspect index. Worker lcores: no allocation, no locks.
  bool has_inspect() const;
  size_t inspect_count() const;
  // Some inspect rule's from covers the flow's source service.
  bool inspects(const FlowKey& key) const;
  // Inspect rule `index` (< inspect_count()) covers the flow's source service.
  bool inspect_applies(uint32_t index, const FlowKey& key) const;
  // The rule index of inspect rule `index`: rule_count() + index (rule_id() names it).
  uint16_t inspect_rule_index(uint32_t index) const;
  Verdict inspect_verdict(uint32_t index) const;  // deny or reject
  const hs_database* inspect_db() const;          // nullptr without inspect rules
  // The worker's Hyperscan scratch, for both databases (< scratch_count()).
  hs_scratch* scratch(unsigned worker) const;

  uint64_t version() const;
  // The id of a rule or inspect rule (rule_count() + inspect index); "" for kNoRule.
  const char* rule_id(uint16_t rule_index) const;
  size_t rule_count() const;  // rules only (inspect rules follow them)
  // The stats slot (stats_abi.h) of a rule index: as set_rule_slots() gave it, else
  // kFirstRuleSlot + index; kNoRule: kSlotDefault. Workers clamp it to their slots.
  uint16_t rule_slot(uint16_t rule_index) const;
  // By rule index (rules, then inspect rules); control thread, before publishing.
  void set_rule_slots(std::vector<uint16_t> slots);
  FlowTimeouts timeouts() const;
  const abi::Settings& settings() const;
  // Source service index (0-based) of an inside address, or -1 when none.
  int service_of(const FlowKey& key) const;

  struct Impl;

 private:
  RuntimePolicy() = default;
  std::unique_ptr<Impl> impl_;
};

// Reads a whole file (a compiled policy) into memory; control thread, start-up.
bool read_file(const std::string& path, std::string* out, std::string* err);

}  // namespace egw
