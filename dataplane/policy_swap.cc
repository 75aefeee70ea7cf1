// Hitless policy swap with a QSBR grace period (DPDK lib/rcu).
// Control thread only: allocates, may wait; workers are never blocked.
#include "dataplane/policy_swap.h"

#include <cerrno>
#include <cstring>

#include <rte_malloc.h>

#include "dataplane/control.h"

namespace egw {

bool PolicySwap::init(std::vector<WorkerCtx*> workers, std::string* err) {
  workers_ = std::move(workers);
  const uint32_t n = static_cast<uint32_t>(workers_.empty() ? 1 : workers_.size());
  const size_t sz = rte_rcu_qsbr_get_memsize(n);
  qsv_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("egw_qsbr", sz, RTE_CACHE_LINE_SIZE));
  if (qsv_ == nullptr || rte_rcu_qsbr_init(qsv_, n) != 0) {
    *err = "cannot allocate the QSBR variable (raise -m)";
    return false;
  }
  return true;
}

PolicySwap::~PolicySwap() {
  retired_.clear();
  current_.reset();
  rte_free(qsv_);
}

// By rule index: the rules, then the inspect rules (RuntimePolicy::inspect_rule_index).
void PolicySwap::remember_rule_ids(const RuntimePolicy& p) {
  std::vector<std::string> ids(p.rule_count() + p.inspect_count());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = p.rule_id(static_cast<uint16_t>(i));
  rule_ids_[p.version()] = std::move(ids);
  while (rule_ids_.size() > kRuleIdHistory) rule_ids_.erase(rule_ids_.begin());
}

void PolicySwap::install_boot(std::unique_ptr<RuntimePolicy> p) {
  current_ = std::move(p);
  if (current_) remember_rule_ids(*current_);
  if (current_ && slots_ != nullptr) current_->set_rule_slots(slots_->assign(*current_));
  for (WorkerCtx* w : workers_) w->published.store(current_.get(), std::memory_order_release);
}

int PolicySwap::activate_blob(const std::string& blob, uint64_t expected_version,
                              uint64_t* activation_ns, std::string* err) {
  const uint64_t t0 = monotonic_ns();
  auto next = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), err,
                                  static_cast<unsigned>(workers_.empty() ? 1 : workers_.size()));
  if (!next) return EINVAL;
  if (next->version() != expected_version) {
    *err = "blob carries version " + std::to_string(next->version()) + ", announced " +
           std::to_string(expected_version);
    return EINVAL;
  }
  remember_rule_ids(*next);
  if (slots_ != nullptr) next->set_rule_slots(slots_->assign(*next));
  // Publish: each worker takes the new pointer at the top of its next iteration.
  for (WorkerCtx* w : workers_) w->published.store(next.get(), std::memory_order_release);
  std::unique_ptr<RuntimePolicy> old = std::move(current_);
  current_ = std::move(next);
  // Grace period: once every worker has reported quiescence after the publication,
  // none can still hold the old pointer. Workers report once per loop, idle or not.
  const uint64_t token = rte_rcu_qsbr_start(qsv_);
  int rc = 0;
  while (rte_rcu_qsbr_check(qsv_, token, false) != 1) {
    if (monotonic_ns() - t0 > kGraceTimeoutNs) {
      *err = "published, but a worker has not passed a quiescent state in 2 s (stalled?); "
             "the previous policy is kept until it does";
      rc = ETIMEDOUT;
      break;
    }
    rte_pause();
  }
  *activation_ns = monotonic_ns() - t0;
  // Freed by the next reclaim(), after the answer went out: freeing a policy (rte_free
  // zeroes its 64 MiB rte_lpm table) is no part of making the new one active.
  if (old) retired_.emplace_back(token, std::move(old));
  return rc;
}

void PolicySwap::activate(const shm::Msg& m, shm::Msg* answer) {
  *answer = m;
  answer->type = shm::MsgType::activated;
  answer->status = 0;
  answer->activation_ns = 0;
  answer->error[0] = '\0';
  std::string blob, err;
  int rc = 0;
  if (!ControlChannel::read_blob(m, &blob, &err)) {
    rc = ENOENT;
  } else {
    rc = activate_blob(blob, m.version, &answer->activation_ns, &err);
  }
  answer->status = rc;
  if (rc != 0) snprintf(answer->error, sizeof answer->error, "%s", err.c_str());
}

void PolicySwap::reclaim() {
  for (size_t i = 0; i < retired_.size();) {
    if (rte_rcu_qsbr_check(qsv_, retired_[i].first, false) == 1) {
      retired_.erase(retired_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
}

void PolicySwap::fill_rule_id(FlowRecord* r) const {
  if (r->rule_index == kNoRule) return;
  auto it = rule_ids_.find(r->policy_version);
  if (it == rule_ids_.end() || r->rule_index >= it->second.size()) return;
  snprintf(r->rule_id, sizeof r->rule_id, "%s", it->second[r->rule_index].c_str());
}

}  // namespace egw
