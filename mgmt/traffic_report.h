// What report-only rulesets would have changed, over recorded traffic: a flow log
// (flows.jsonl) read record by record, each record with a `report` (the report rule that
// would have decided the flow and its verdict) compared with what egw did. Used by
// `egwctl diff --against-traffic FILE`.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace egw::mgmt {

struct ReportRuleSummary {
  uint64_t flows = 0;        // flows the report rule would have decided
  uint64_t same = 0;         // ... with the verdict egw gave them
  uint64_t would_block = 0;  // egw allowed them; the rule would deny or reject
  uint64_t would_allow = 0;  // egw refused them; the rule would allow
  uint64_t other = 0;        // deny <-> reject
  // Destinations of the changed flows (name, else address:port), with their counts.
  std::map<std::string, uint64_t> changed_dests;
};

struct TrafficReport {
  uint64_t records = 0;                            // flow records read
  uint64_t with_report = 0;                        // of them, with a report decision
  std::map<std::string, ReportRuleSummary> rules;  // by report rule id
  uint64_t bad_lines = 0;                          // lines that are not a flow record
  uint64_t first_bad_line = 0;
};

// Reads JSON lines from in (blank lines skipped; other lines that are not a JSON object
// with event_type "flow" are counted as bad, the first one's number kept).
TrafficReport summarize_traffic(std::istream& in);

// The summary as text (a table per report rule, the top changed destinations) or JSON.
std::string render_traffic_report(const TrafficReport& r, size_t top = 5);
std::string traffic_report_json(const TrafficReport& r);

// True when some report rule would have changed some flow's verdict.
bool traffic_report_changes(const TrafficReport& r);

}  // namespace egw::mgmt
