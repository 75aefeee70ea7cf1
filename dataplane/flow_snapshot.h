// Answers egw-mgmt's `flows` request: copies live flow entries of every worker, as
// FlowRecords, into a shared-memory object egw-mgmt created. Control thread only.
// Consistency: workers are not stopped; each entry (and its name, from the worker's
// FlowAux and long-name slots) is copied as it is at that moment (an entry updated during
// the copy may mix two packets' counts), which is what a monitoring snapshot needs and
// costs the workers nothing.
#pragma once

#include <vector>

#include "dataplane/policy_swap.h"
#include "dataplane/shm_abi.h"
#include "dataplane/worker.h"

namespace egw {

void snapshot_flows(const std::vector<WorkerCtx*>& workers, const PolicySwap& swap,
                    const shm::Msg& request, shm::Msg* answer);

}  // namespace egw
