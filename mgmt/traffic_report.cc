// Summary of what report-only rules would have changed over a flow log.
#include "mgmt/traffic_report.h"

#include <json/json.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <utility>

namespace egw::mgmt {
namespace {

// The flow's destination as an operator reads it: its name, else address:port.
std::string destination(const Json::Value& r) {
  for (const char* obj : {"tls", "http", "dns", "quic"}) {
    const Json::Value& o = r[obj];
    if (!o.isObject()) continue;
    for (const char* f : {"sni", "hostname", "rrname"})
      if (o[f].isString() && !o[f].asString().empty()) return o[f].asString();
  }
  const std::string ip = r["dest_ip"].isString() ? r["dest_ip"].asString() : "?";
  const std::string port =
      r["dest_port"].isIntegral() ? std::to_string(r["dest_port"].asUInt()) : "?";
  return ip.find(':') != std::string::npos ? "[" + ip + "]:" + port : ip + ":" + port;
}

bool refused(const std::string& verdict) {
  return verdict == "deny" || verdict == "reject";
}

}  // namespace

TrafficReport summarize_traffic(std::istream& in) {
  TrafficReport out;
  Json::CharReaderBuilder b;
  b["collectComments"] = false;
  const std::unique_ptr<Json::CharReader> reader(b.newCharReader());
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json::Value r;
    std::string errs;
    const bool ok = reader->parse(line.data(), line.data() + line.size(), &r, &errs) &&
                    r.isObject() && r["event_type"].isString() &&
                    r["event_type"].asString() == "flow" && r["verdict"].isString();
    if (!ok) {
      if (out.bad_lines++ == 0) out.first_bad_line = n;
      continue;
    }
    ++out.records;
    const Json::Value& rep = r["report"];
    if (!rep.isObject() || !rep["rule_id"].isString() || !rep["verdict"].isString()) continue;
    ++out.with_report;
    ReportRuleSummary& s = out.rules[rep["rule_id"].asString()];
    ++s.flows;
    const std::string did = r["verdict"].asString(), would = rep["verdict"].asString();
    if (did == would) {
      ++s.same;
      continue;
    }
    if (did == "allow" && refused(would)) {
      ++s.would_block;
    } else if (refused(did) && would == "allow") {
      ++s.would_allow;
    } else {
      ++s.other;
    }
    ++s.changed_dests[destination(r)];
  }
  return out;
}

bool traffic_report_changes(const TrafficReport& r) {
  for (const auto& [id, s] : r.rules)
    if (s.flows != s.same) return true;
  return false;
}

std::string render_traffic_report(const TrafficReport& r, size_t top) {
  std::string out;
  char line[512];
  snprintf(line, sizeof line, "%" PRIu64 " flow records, %" PRIu64 " with a report-only decision\n",
           r.records, r.with_report);
  out += line;
  if (r.bad_lines != 0) {
    snprintf(line, sizeof line,
             "%" PRIu64 " lines are not flow records (the first: line %" PRIu64 "), skipped\n",
             r.bad_lines, r.first_bad_line);
    out += line;
  }
  if (r.rules.empty()) return out + "no report-only rule decided any of these flows\n";
  snprintf(line, sizeof line, "\n%-32s %10s %10s %12s %12s %8s\n", "REPORT RULE", "FLOWS", "SAME",
           "WOULD BLOCK", "WOULD ALLOW", "OTHER");
  out += line;
  for (const auto& [id, s] : r.rules) {
    snprintf(line, sizeof line,
             "%-32s %10" PRIu64 " %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %8" PRIu64 "\n",
             id.substr(0, 32).c_str(), s.flows, s.same, s.would_block, s.would_allow, s.other);
    out += line;
  }
  for (const auto& [id, s] : r.rules) {
    if (s.changed_dests.empty()) continue;
    std::vector<std::pair<uint64_t, std::string>> d;
    for (const auto& [dest, n] : s.changed_dests) d.emplace_back(n, dest);
    std::sort(d.begin(), d.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    out += "\n" + id + ": destinations whose verdict it would change\n";
    for (size_t i = 0; i < d.size() && i < top; ++i) {
      snprintf(line, sizeof line, "  %-48s %10" PRIu64 "\n", d[i].second.substr(0, 48).c_str(),
               d[i].first);
      out += line;
    }
    if (d.size() > top) out += "  (" + std::to_string(d.size() - top) + " more)\n";
  }
  return out;
}

std::string traffic_report_json(const TrafficReport& r) {
  Json::Value v(Json::objectValue);
  v["records"] = Json::UInt64(r.records);
  v["with_report"] = Json::UInt64(r.with_report);
  v["bad_lines"] = Json::UInt64(r.bad_lines);
  Json::Value rules(Json::objectValue);
  for (const auto& [id, s] : r.rules) {
    Json::Value one(Json::objectValue);
    one["flows"] = Json::UInt64(s.flows);
    one["same"] = Json::UInt64(s.same);
    one["would_block"] = Json::UInt64(s.would_block);
    one["would_allow"] = Json::UInt64(s.would_allow);
    one["other"] = Json::UInt64(s.other);
    Json::Value dests(Json::objectValue);
    for (const auto& [dest, n] : s.changed_dests) dests[dest] = Json::UInt64(n);
    one["changed_destinations"] = dests;
    rules[id] = one;
  }
  v["rules"] = rules;
  Json::StreamWriterBuilder w;
  w["indentation"] = "";
  return Json::writeString(w, v) + "\n";
}

}  // namespace egw::mgmt
