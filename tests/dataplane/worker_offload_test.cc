// The worker takes a NIC's RX verdict on the IPv4 header checksum (RX offload): a header
// the NIC found bad is dropped without parsing, one it found good is not summed again,
// and without a verdict the worker sums it itself.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <vector>

#include "dataplane/worker.h"
#include "tests/support/frames.h"
#include "tests/support/worker_harness.h"

namespace egw {
namespace {

constexpr const char* kPolicy = R"({"schema":1,"default_action":"deny",
  "services":{"app":{"cidrs":["198.18.0.0/24"]}},
  "rulesets":[{"name":"t","rules":[{"id":"dns","from":["app"],"proto":"udp","ports":[5353],
    "to":{"cidrs":["198.19.0.0/24"]},"action":"allow"}]}]})";

class WorkerOffloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(suite_.make("offload_test", 63, kPolicy, 1)); }
  static void TearDownTestSuite() { suite_.tear_down(); }
  static inline test::SuiteState suite_;
};

TEST_F(WorkerOffloadTest, Ipv4ChecksumVerdict) {
  test::FrameSpec spec;
  spec.src = "198.18.0.2";
  spec.dst = "198.19.0.2";
  spec.proto = kProtoUdp;
  spec.sport = 40000;
  spec.dport = 5353;
  spec.payload = {1, 2, 3, 4};
  const test::Bytes good = test::build_frame(spec);
  test::Bytes bad = good;
  bad[test::l3_offset_of(good) + 10] ^= 0x01;  // header checksum off by one bit

  const struct {
    const char* desc;
    const test::Bytes& frame;
    uint64_t ol_flags;
    bool forwarded;
  } cases[] = {
      {"no verdict, sum right", good, RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN, true},
      {"no verdict, sum wrong", bad, RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN, false},
      {"NIC says good, sum right", good, RTE_MBUF_F_RX_IP_CKSUM_GOOD, true},
      {"NIC says good, sum wrong: the NIC is trusted", bad, RTE_MBUF_F_RX_IP_CKSUM_GOOD, true},
      {"NIC says bad, sum right: the NIC is trusted", good, RTE_MBUF_F_RX_IP_CKSUM_BAD, false},
      // NONE: the header is intact but its sum field was never filled in (a VM peer that
      // offloaded it); it would leave with a wrong sum, so the worker still sums and drops.
      {"NIC says NONE, sum wrong", bad, RTE_MBUF_F_RX_IP_CKSUM_NONE, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    WorkerCtx w;
    ASSERT_TRUE(
        test::start_worker(w, test::worker_config(suite_.pool), nullptr, suite_.policy.get()));
    rte_mbuf* m = test::mbuf_of(suite_.pool, c.frame);
    ASSERT_NE(m, nullptr);
    m->ol_flags |= c.ol_flags;
    TxBatch out[2];
    worker_process_burst(w, &m, 1, kInside, test::kT0, out);
    EXPECT_EQ(out[kOutside].n, c.forwarded ? 1u : 0u);
    EXPECT_EQ(w.counters->drop_count(DropReason::bad_ipv4_checksum), c.forwarded ? 0u : 1u);
    for (Side s : {kInside, kOutside})
      for (unsigned i = 0; i < out[s].n; ++i) rte_pktmbuf_free(out[s].pkts[i]);
    worker_destroy(w);
  }
}

}  // namespace
}  // namespace egw
