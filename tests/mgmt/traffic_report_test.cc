// egwctl diff --against-traffic: what report-only rules would have changed, from flow
// records; bad lines counted, never fatal.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "mgmt/traffic_report.h"

namespace egw::mgmt {
namespace {

std::string rec(const char* verdict, const char* report_rule, const char* report_verdict,
                const char* name = nullptr, const char* ip = "198.19.1.10", int port = 443) {
  std::string s = R"({"event_type":"flow","dest_ip":")" + std::string(ip) + R"(","dest_port":)" +
                  std::to_string(port) + R"(,"verdict":")" + verdict + "\"";
  if (name) s += R"(,"tls":{"sni":")" + std::string(name) + "\"}";
  if (report_rule)
    s += R"(,"report":{"rule_id":")" + std::string(report_rule) + R"(","verdict":")" +
         report_verdict + "\"}";
  return s + "}\n";
}

TEST(TrafficReport, CountsWhatEachReportRuleWouldChange) {
  struct Case {
    const char* name;
    std::string log;
    uint64_t records, with_report, bad, first_bad;
    const char* rule;
    uint64_t flows, same, block, allow, other;
    bool changes;
  } cases[] = {
      {"would block two allowed flows, agrees on one",
       rec("allow", "candidate", "reject", "a.example") +
           rec("allow", "candidate", "deny", "a.example") + rec("reject", "candidate", "reject") +
           rec("allow", nullptr, nullptr),
       4, 3, 0, 0, "candidate", 3, 1, 2, 0, 0, true},
      {"would open a refused flow; deny and reject differ only in kind",
       rec("deny", "loosen", "allow") + rec("deny", "loosen", "reject"), 2, 2, 0, 0, "loosen", 2, 0,
       0, 1, 1, true},
      {"agrees everywhere: no change",
       rec("allow", "same", "allow") + rec("reject", "same", "reject"), 2, 2, 0, 0, "same", 2, 2, 0,
       0, 0, false},
      {"bad lines are counted and skipped, blank lines ignored",
       "not json\n\n" + rec("allow", "r", "deny") + "{\"event_type\":\"alert\"}\n[1]\n", 1, 1, 3, 1,
       "r", 1, 0, 1, 0, 0, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::istringstream in(c.log);
    const TrafficReport r = summarize_traffic(in);
    EXPECT_EQ(r.records, c.records);
    EXPECT_EQ(r.with_report, c.with_report);
    EXPECT_EQ(r.bad_lines, c.bad);
    EXPECT_EQ(r.first_bad_line, c.first_bad);
    ASSERT_EQ(r.rules.count(c.rule), 1u);
    const ReportRuleSummary& s = r.rules.at(c.rule);
    EXPECT_EQ(s.flows, c.flows);
    EXPECT_EQ(s.same, c.same);
    EXPECT_EQ(s.would_block, c.block);
    EXPECT_EQ(s.would_allow, c.allow);
    EXPECT_EQ(s.other, c.other);
    EXPECT_EQ(traffic_report_changes(r), c.changes);
  }
}

TEST(TrafficReport, NamesTheChangedDestinations) {
  std::istringstream in(rec("allow", "c", "reject", "a.example") +
                        rec("allow", "c", "reject", "a.example") +
                        rec("allow", "c", "reject", nullptr, "2001:2:0:100::10", 80));
  const TrafficReport r = summarize_traffic(in);
  const std::string text = render_traffic_report(r);
  EXPECT_NE(text.find("a.example"), std::string::npos) << text;
  EXPECT_NE(text.find("[2001:2:0:100::10]:80"), std::string::npos) << text;
  EXPECT_EQ(r.rules.at("c").changed_dests.at("a.example"), 2u);
  const std::string json = traffic_report_json(r);
  EXPECT_NE(json.find(R"("would_block":3)"), std::string::npos) << json;
}

}  // namespace
}  // namespace egw::mgmt
