// Unit tests for dataplane/counters.cc: drop-reason names and counter arithmetic.
#include "dataplane/counters.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

namespace egw {
namespace {

TEST(Counters, DropReasonNames) {
  const struct {
    DropReason r;
    const char* name;
  } cases[] = {
      {DropReason::truncated, "truncated"},
      {DropReason::vlan_too_deep, "vlan_too_deep"},
      {DropReason::ipv6_routing_type0, "ipv6_routing_type0"},
      {DropReason::policy_deny, "policy_deny"},
      {DropReason::tx_full, "tx_full"},
      {DropReason::count, "unknown"},
  };
  for (const auto& c : cases) EXPECT_STREQ(drop_reason_name(c.r), c.name);
  std::set<std::string> seen;
  for (unsigned i = 0; i < kDropReasonCount; ++i) {
    const char* n = drop_reason_name(static_cast<DropReason>(i));
    ASSERT_NE(n, nullptr);
    EXPECT_GT(std::strlen(n), 0u);
    EXPECT_TRUE(seen.insert(n).second) << "duplicate name " << n;
  }
}

TEST(Counters, TotalAndAdd) {
  WorkerCounters a, b;
  EXPECT_EQ(a.total_drops(), 0u);
  a.drop(DropReason::truncated);
  a.drop(DropReason::truncated);
  a.drop(DropReason::tx_full);
  a.rx_packets = 10;
  a.flow_records_lost = 1;
  b.drop(DropReason::truncated);
  b.drop(DropReason::policy_deny);
  b.rx_packets = 5;
  b.tx_packets = 3;
  EXPECT_EQ(a.total_drops(), 3u);
  a.add(b);
  EXPECT_EQ(a.total_drops(), 5u);
  EXPECT_EQ(a.drop_count(DropReason::truncated), 3u);
  EXPECT_EQ(a.drop_count(DropReason::policy_deny), 1u);
  EXPECT_EQ(a.drop_count(DropReason::tx_full), 1u);
  EXPECT_EQ(a.rx_packets, 15u);
  EXPECT_EQ(a.tx_packets, 3u);
  EXPECT_EQ(a.flow_records_lost, 1u);
  EXPECT_EQ(b.total_drops(), 2u);  // the source is unchanged
}

}  // namespace
}  // namespace egw
