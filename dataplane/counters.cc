// Drop-reason names and worker counter arithmetic, from the X-macro lists in counters.h.
// drop_reason_name() is used anywhere; total_drops()/add() by stats readers (control thread).
#include "dataplane/counters.h"

namespace egw {

const char* drop_reason_name(DropReason r) {
  static constexpr const char* kNames[] = {
#define EGW_X(name) #name,
      EGW_DROP_REASONS(EGW_X)
#undef EGW_X
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kDropReasonCount);
  const unsigned i = static_cast<unsigned>(r);
  return i < kDropReasonCount ? kNames[i] : "unknown";
}

uint64_t WorkerCounters::total_drops() const {
  uint64_t sum = 0;
  for (uint64_t d : drops) sum += d;
  return sum;
}

void WorkerCounters::add(const WorkerCounters& o) {
#define EGW_X(name) name += o.name;
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  for (unsigned i = 0; i < kDropReasonCount; ++i) drops[i] += o.drops[i];
}

}  // namespace egw
