// Hitless policy swap: the control thread loads a new policy, publishes its pointer to
// every worker, and frees the old one only after a QSBR grace period (every worker
// has since passed a quiescent state, i.e. finished the loop iteration that could
// still use it). Control thread only; workers see just WorkerCtx::published.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_rcu_qsbr.h>

#include "dataplane/policy.h"
#include "dataplane/shm_abi.h"
#include "dataplane/stats.h"
#include "dataplane/worker.h"

namespace egw {

class PolicySwap {
 public:
  // workers: every worker's context; their QSBR thread ids are their indices.
  bool init(std::vector<WorkerCtx*> workers, std::string* err);
  ~PolicySwap();
  rte_rcu_qsbr* qsbr() const { return qsv_; }

  // Rule slots to assign to every policy before it is published (egw-dataplane; tests
  // and egw-replay go without: see RuntimePolicy::rule_slot).
  void set_rule_slots(RuleSlots* slots) { slots_ = slots; }

  // Installs the boot policy (before the workers start; may be null: deny all).
  void install_boot(std::unique_ptr<RuntimePolicy> p);

  // Handles one activate request: reads and validates the blob named in m, publishes
  // it and waits (bounded) for the grace period. Fills `answer` (type activated). The
  // old policy is retired: call reclaim() once the answer is sent.
  void activate(const shm::Msg& m, shm::Msg* answer);
  // Activates an in-memory blob (the path activate() takes after reading the blob).
  // Returns 0 or an errno-style code with *err.
  int activate_blob(const std::string& blob, uint64_t expected_version, uint64_t* activation_ns,
                    std::string* err);

  // Frees retired policies whose grace period has ended (a stalled worker delays it).
  void reclaim();

  uint64_t version() const { return current_ ? current_->version() : 0; }
  const RuntimePolicy* current() const { return current_.get(); }
  size_t retired() const { return retired_.size(); }
  // Fills r->rule_id from the rule ids of the policy version that decided the flow.
  void fill_rule_id(FlowRecord* r) const;

  static constexpr uint64_t kGraceTimeoutNs = 2000ull * 1000000;  // then retire and move on
  static constexpr size_t kRuleIdHistory = 256;                   // versions remembered

 private:
  void remember_rule_ids(const RuntimePolicy& p);

  std::vector<WorkerCtx*> workers_;
  RuleSlots* slots_ = nullptr;
  rte_rcu_qsbr* qsv_ = nullptr;
  std::unique_ptr<RuntimePolicy> current_;
  std::vector<std::pair<uint64_t, std::unique_ptr<RuntimePolicy>>> retired_;  // (token, policy)
  std::map<uint64_t, std::vector<std::string>> rule_ids_;  // version -> ids by rule index
};

}  // namespace egw
