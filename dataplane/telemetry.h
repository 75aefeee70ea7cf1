// DPDK telemetry commands of egw-dataplane, for dpdk-telemetry.py -f FILE_PREFIX:
//   /egw/stats        summed counters: ports, drops by reason (non-zero), flows, workers
//   /egw/policy       the policy in force: version, activations, ids of its rules
//   /egw/flows[,N]    flows active per worker; with N (0..100), up to N live flows
// They are answered on DPDK's telemetry thread from what other threads publish without
// locks: the stats segment (read as egw-mgmt reads it) and, racily, the workers' flow
// tables (see flow_snapshot.h). Nothing is asked of the control thread or the workers,
// and PolicySwap is never touched: rule slots name the rules.
#pragma once

#include <string>
#include <vector>

namespace egw {

class StatsSegment;
struct WorkerCtx;

struct TelemetrySources {
  const StatsSegment* stats = nullptr;  // created and published
  std::vector<WorkerCtx*> workers;      // initialised (worker_init)
};

// Registers the commands and attaches `src` (copied). DPDK cannot unregister a command:
// a second call only attaches the new sources. On failure returns false with a message.
bool telemetry_register(const TelemetrySources& src, std::string* err);

// Detaches the sources, waiting for a command being answered: call before the workers'
// contexts or the stats segment go. Commands answered afterwards say egw is stopping.
void telemetry_detach();

}  // namespace egw
