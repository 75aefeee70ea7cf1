// EAL start-up shared by the benchmark programs: no hugepages, no PCI, one lcore (0),
// 1 GiB of memory (a 1M-flow worker takes ~0.4 GiB), errors-only logging, and a file
// prefix of the program's own so benchmarks can run beside a dataplane.
#pragma once

#include <rte_eal.h>
#include <sched.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace egw::bench {

// keep_cpus: the EAL pins this thread to lcore 0, and threads it starts later inherit
// that; a benchmark that times multi-threaded work done outside any EAL (the policy
// compile of egw-mgmt and egwctl) gets the CPUs it was started with back.
// Returns false when the EAL did not start.
inline bool start_eal(const char* prog, bool keep_cpus) {
  std::vector<std::string> args = {prog,
                                   "--no-huge",
                                   "--no-pci",
                                   "--no-shconf",
                                   "-m",
                                   "1024",
                                   "-l",
                                   "0",
                                   "--log-level=lib.*:error",
                                   "--file-prefix",
                                   std::string("egw-") + prog + "-" + std::to_string(getpid())};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  cpu_set_t cpus;
  const bool have_cpus = keep_cpus && sched_getaffinity(0, sizeof cpus, &cpus) == 0;
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) return false;
  if (have_cpus) sched_setaffinity(0, sizeof cpus, &cpus);
  return true;
}

}  // namespace egw::bench
