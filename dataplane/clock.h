// Wall-clock nanoseconds from the TSC: anchored once at start-up (control thread),
// then read on worker lcores with no syscall (one rdtsc, one multiply-shift).
#pragma once

#include <cstdint>
#include <ctime>

#include <rte_cycles.h>

namespace egw {

class Clock {
 public:
  Clock() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    base_tsc_ = rte_rdtsc();
    base_ns_ = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    const uint64_t hz = rte_get_tsc_hz();
    // ns = cycles * mult >> 32: exact to ~1 ppm for any TSC frequency above 1 MHz.
    mult_ = hz ? (static_cast<unsigned __int128>(1000000000ull) << 32) / hz : 0;
  }
  uint64_t now_ns() const {
    const uint64_t d = rte_rdtsc() - base_tsc_;
    return base_ns_ + static_cast<uint64_t>((static_cast<unsigned __int128>(d) * mult_) >> 32);
  }

 private:
  uint64_t base_tsc_ = 0;
  uint64_t base_ns_ = 0;
  uint64_t mult_ = 0;
};

}  // namespace egw
