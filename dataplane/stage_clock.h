// Per-stage cycle accounting of the worker pipeline, like VPP's per-node clocks.
// Compiled in only with -DEGW_STAGE_CLOCKS (make STAGES=1, or the perf build of
// worker_bench); otherwise every EGW_STAGE() is nothing and the build pays nothing.
//
// The clock charges the cycles since its last mark to the stage it was in, then
// switches: EGW_STAGE(w, lookup) means "from here on, time is the look-up's".
// Each mark is one rdtsc (~20-30 cycles), so the stage figures carry that overhead:
// compare them with each other and with the same build, not with an uninstrumented run.
#pragma once

#include <cstdint>

#include <rte_cycles.h>

namespace egw {

#define EGW_STAGES(X)                                                     \
  X(parse)    /* frame parsing, flow key, hash, bucket prefetch */        \
  X(lookup)   /* flow-table look-up (and fragment tracking) */            \
  X(classify) /* new flows: policy classification, insert, decision */    \
  X(track)    /* known flows: counters, TCP tracking, verdict */          \
  X(l7)       /* names: waiting, parsing, watching; payload inspection */ \
  X(tx)       /* handing packets to TX (and freeing drops) */

enum class Stage : uint8_t {
#define EGW_X(name) name,
  EGW_STAGES(EGW_X)
#undef EGW_X
      count
};
constexpr unsigned kStageCount = static_cast<unsigned>(Stage::count);
const char* stage_name(Stage s);

struct StageClock {
  uint64_t cycles[kStageCount] = {};
  uint64_t last = 0;
  Stage cur = Stage::parse;
  bool running = false;

  // Charges the time since the last mark to the current stage; s is current from now.
  void mark(Stage s) {
    const uint64_t t = rte_rdtsc();
    if (running) cycles[static_cast<unsigned>(cur)] += t - last;
    last = t;
    cur = s;
    running = true;
  }
  // Charges the time since the last mark and stops (nothing is charged until next mark).
  void stop() {
    if (running) cycles[static_cast<unsigned>(cur)] += rte_rdtsc() - last;
    running = false;
  }
  void reset() { *this = StageClock{}; }
};

#ifdef EGW_STAGE_CLOCKS
constexpr bool kStageClocks = true;
#define EGW_STAGE(w, s) (w).stages.mark(::egw::Stage::s)
#define EGW_STAGE_STOP(w) (w).stages.stop()
#else
constexpr bool kStageClocks = false;
#define EGW_STAGE(w, s) ((void)0)
#define EGW_STAGE_STOP(w) ((void)0)
#endif

inline const char* stage_name(Stage s) {
  switch (s) {
#define EGW_X(name) \
  case Stage::name: \
    return #name;
    EGW_STAGES(EGW_X)
#undef EGW_X
    default:
      return "?";
  }
}

}  // namespace egw
