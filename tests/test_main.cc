// GoogleTest entry point for the unit tests: initializes the DPDK EAL once (no
// hugepages, no PCI, no devices) for the tests that need its memory (rte_acl, mempools).
#include <gtest/gtest.h>

#include <rte_eal.h>

#include <string>
#include <vector>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::string prefix = "egw-unit-" + std::to_string(getpid());
  std::vector<std::string> args = {"egw-unit-tests", "--no-huge", "--no-pci", "--no-shconf",
                                   "-m",             "256",       "--log-level=lib.*:error",
                                   "--file-prefix",  prefix,      "-l", "0"};
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    fprintf(stderr, "egw unit tests: rte_eal_init failed (see the EAL messages above)\n");
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
