// REST resources for watching: /v1/health, /v1/stats, /v1/flows and /metrics
// (Prometheus text format). Runs on the HTTP pool threads; reads the dataplane's
// counter snapshot through the Publisher.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <sstream>

#include "dataplane/counters.h"
#include "dataplane/flow_log.h"
#include "mgmt/api.h"
#include "mgmt/flow_drain.h"
#include "mgmt/stats_reader.h"

namespace egw::mgmt {

namespace {

// Drop reason names straight from the X-macro list (no link against the dataplane).
constexpr const char* kDropNames[] = {
#define EGW_X(name) #name,
    EGW_DROP_REASONS(EGW_X)
#undef EGW_X
};
static_assert(sizeof(kDropNames) / sizeof(kDropNames[0]) == kDropReasonCount);

void health(Api& api, const http::Request&, http::Response& res) {
  Json::Value body(Json::objectValue);
  const bool up = api.publisher().connected();
  const std::string policy_error = api.policy_error();
  body["status"] = policy_error.empty() ? "ok" : "degraded";
  body["dataplane"] = up ? "connected" : "disconnected";
  body["policy_version"] = Json::UInt64(api.current_version());
  if (up) body["dataplane_policy_version"] = Json::UInt64(api.publisher().dataplane_version());
  if (!policy_error.empty()) body["policy_error"] = policy_error;  // why it is not published
  json_response(res, 200, body);
}

// A quantile of a histogram, interpolated within its bucket (µs); 0 when empty.
double hist_quantile(const stats::Histogram& h, double q) {
  uint64_t total = 0;
  for (uint64_t b : h.bucket) total += b;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (unsigned i = 0; i < stats::kHistBuckets; ++i) {
    if (h.bucket[i] == 0) continue;
    if (static_cast<double>(seen + h.bucket[i]) >= rank) {
      const double lo = i == 0 ? 0 : stats::kHistBoundUs[i - 1];
      if (i == stats::kHistBounds) return lo;  // past the last bound: at least that
      const double hi = stats::kHistBoundUs[i];
      return lo + (hi - lo) * (rank - static_cast<double>(seen)) / static_cast<double>(h.bucket[i]);
    }
    seen += h.bucket[i];
  }
  return stats::kHistBoundUs[stats::kHistBounds - 1];
}

Json::Value hist_json(const stats::Histogram& h) {
  Json::Value v(Json::objectValue);
  uint64_t count = 0;
  for (uint64_t b : h.bucket) count += b;
  v["count"] = Json::UInt64(count);
  v["sum_us"] = Json::UInt64(h.sum_us);
  v["p50_us"] = static_cast<Json::UInt64>(hist_quantile(h, 0.5));
  v["p90_us"] = static_cast<Json::UInt64>(hist_quantile(h, 0.9));
  v["p99_us"] = static_cast<Json::UInt64>(hist_quantile(h, 0.99));
  return v;
}

void stats(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  StatsView s;
  if (!api.publisher().stats(&s)) {
    error_response(res, 503, "dataplane_disconnected",
                   "no dataplane connected: counters come from egw-dataplane");
    return;
  }
  const ControlView& c = s.control;
  Json::Value body(Json::objectValue);
  body["policy_version"] = Json::UInt64(api.current_version());
  body["active_version"] = Json::UInt64(c.active_version);
  body["updated"] = Json::UInt64(c.updated_ns / 1000000);  // ms since the epoch
  body["workers"] = s.workers;
  body["tsc_hz"] = Json::UInt64(s.tsc_hz);
  Json::Value ports(Json::arrayValue);
  for (unsigned p = 0; p < 2; ++p) {
    Json::Value one(Json::objectValue);
    one["port"] = c.port_id[p];
    one["role"] = p == 0 ? "inside" : "outside";
    one["rx_packets"] = Json::UInt64(c.rx_packets[p]);
    one["tx_packets"] = Json::UInt64(c.tx_packets[p]);
    one["rx_bytes"] = Json::UInt64(c.rx_bytes[p]);
    one["tx_bytes"] = Json::UInt64(c.tx_bytes[p]);
    one["rx_missed"] = Json::UInt64(c.rx_missed[p]);
    one["rx_errors"] = Json::UInt64(c.rx_errors[p]);
    one["tx_errors"] = Json::UInt64(c.tx_errors[p]);
    one["rx_nombuf"] = Json::UInt64(c.rx_nombuf[p]);
    ports.append(one);
  }
  body["ports"] = ports;
  Json::Value drops(Json::objectValue);
  uint64_t total = 0;
  for (unsigned r = 0; r < kDropReasonCount; ++r) {
    drops[kDropNames[r]] = Json::UInt64(s.total.drops[r]);
    total += s.total.drops[r];
  }
  body["drops"] = drops;
  body["drops_total"] = Json::UInt64(total);
  body["flows_created"] = Json::UInt64(s.total.flows_created);
  body["flows_active"] = Json::UInt64(c.flows_active);
  body["flows_capacity"] = Json::UInt64(c.flows_capacity);
  Json::Value counters(Json::objectValue);
#define EGW_X(name) counters[#name] = Json::UInt64(s.total.name);
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  body["counters"] = counters;
  Json::Value per_worker(Json::arrayValue);
  for (uint32_t w = 0; w < s.workers; ++w) {
    const WorkerCounters& k = s.per_worker[w];
    Json::Value one(Json::objectValue);
    one["worker"] = w;
    one["rx_packets"] = Json::UInt64(k.rx_packets);
    one["tx_packets"] = Json::UInt64(k.tx_packets);
    one["drops"] = Json::UInt64(k.total_drops());
    one["cycles"] = Json::UInt64(k.cycles);
    one["busy_cycles"] = Json::UInt64(k.busy_cycles);
    per_worker.append(one);
  }
  body["per_worker"] = per_worker;
  Json::Value rules(Json::arrayValue);
  for (const RuleStats& r : s.rules) {
    Json::Value one(Json::objectValue);
    one["rule"] = r.id;
    one["active"] = r.active;
    one["hits"] = Json::UInt64(r.c.hits);
    one["resets"] = Json::UInt64(r.c.resets);
    one["syn_timeouts"] = Json::UInt64(r.c.syn_timeouts);
    one["report_hits"] = Json::UInt64(r.c.report_hits);
    one["rate_limited"] = Json::UInt64(r.c.rate_limited);
    one["over_quota"] = Json::UInt64(r.c.over_quota);
    one["policed_toserver"] = Json::UInt64(r.c.policed[0]);
    one["policed_toclient"] = Json::UInt64(r.c.policed[1]);
    one["rtt"] = hist_json(r.c.rtt);
    one["ttfb"] = hist_json(r.c.ttfb);
    rules.append(one);
  }
  body["rules"] = rules;
  Json::Value policy(Json::objectValue);
  policy["activations"] = Json::UInt64(c.activations);
  policy["activation_failures"] = Json::UInt64(c.activation_failures);
  policy["last_activation_ms"] = static_cast<double>(c.last_activation_ns) / 1e6;
  policy["rule_slots"] = s.rule_slots;
  policy["rule_slots_used"] = Json::UInt64(c.rule_slots_used);
  policy["rule_slots_reused"] = Json::UInt64(c.rule_slots_reused);
  policy["rules_without_slot"] = Json::UInt64(c.rules_without_slot);
  body["policy"] = policy;
  Json::Value flog(Json::objectValue);
  flog["lost"] = Json::UInt64(s.total.flow_records_lost);
  flog["sampled_out"] = Json::UInt64(s.total.flow_records_sampled_out);
  if (const FlowDrain* d = api.flow_drain()) {
    flog["written"] = Json::UInt64(d->counters().records.load());
    flog["write_errors"] = Json::UInt64(d->counters().write_errors.load());
    flog["rotations"] = Json::UInt64(d->counters().rotations.load());
  }
  flog["written_by_dataplane"] = Json::UInt64(c.records_written);
  body["flow_log"] = flog;
  json_response(res, 200, body);
}

// GET /v1/flows?limit=N (default 100, at most 100000): live flows, newest state as
// the dataplane sees it, in flow-record form ("reason":"active").
void flows(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  uint32_t limit = 100;
  if (req.has_query("limit")) {
    const std::string v = req.query_value("limit");
    char* end = nullptr;
    const unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n > 100000) {
      error_response(res, 400, "bad_request", "limit must be a number from 0 to 100000");
      return;
    }
    limit = static_cast<uint32_t>(n);
  }
  std::vector<FlowRecord> recs;
  std::string err;
  if (!api.publisher().flows(limit, &recs, &err, std::chrono::milliseconds(5000))) {
    error_response(res, 503, "dataplane_disconnected", "no flow snapshot: " + err);
    return;
  }
  std::string body = "{\"count\":" + std::to_string(recs.size()) + ",\"flows\":[";
  for (size_t i = 0; i < recs.size(); ++i) {
    if (i) body += ",";
    body += flow_record_json(recs[i]);
  }
  body += "]}\n";
  res.status = 200;
  res.content_type = "application/json";
  res.body = std::move(body);
}

void family(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

// A family of one sample without labels.
template <typename T>
void single(std::ostringstream& o, const char* name, const char* type, const char* help, T v) {
  family(o, name, type, help);
  o << name << " " << v << "\n";
}

// A label value, escaped per the exposition format.
std::string label(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out.push_back('\\');
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(ch);
  }
  return out;
}

std::string seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.9g", s);
  return buf;
}

// One histogram series (buckets made cumulative, bounds in seconds).
void histogram(std::ostringstream& o, const char* name, const std::string& labels,
               const stats::Histogram& h) {
  uint64_t cum = 0;
  for (unsigned i = 0; i < stats::kHistBuckets; ++i) {
    cum += h.bucket[i];
    o << name << "_bucket{" << labels << ",le=\""
      << (i < stats::kHistBounds ? seconds(stats::kHistBoundUs[i] / 1e6) : "+Inf") << "\"} " << cum
      << "\n";
  }
  o << name << "_sum{" << labels << "} " << seconds(static_cast<double>(h.sum_us) / 1e6) << "\n";
  o << name << "_count{" << labels << "} " << cum << "\n";
}

std::string metrics_text(Api& api) {
  std::ostringstream o;
  single(o, "egw_policy_version", "gauge", "The committed policy version.", api.current_version());
  StatsView s;
  const bool up = api.publisher().stats(&s);
  single(o, "egw_dataplane_connected", "gauge", "1 when a dataplane is attached.", (up ? 1 : 0));
  o << api.activations().prometheus("egw_policy_activation_seconds");
  if (const FlowDrain* d = api.flow_drain()) {
    const FlowDrain::Counters& k = d->counters();
    single(o, "egw_flow_log_records_total", "counter",
           "Flow records egw-mgmt wrote to the flow log.", k.records.load());
    single(o, "egw_flow_log_bytes_total", "counter", "Bytes egw-mgmt wrote to the flow log.",
           k.bytes.load());
    single(o, "egw_flow_log_write_errors_total", "counter",
           "Flow records lost to a failed write of the flow log.", k.write_errors.load());
    single(o, "egw_flow_log_rotations_total", "counter", "Rotations of the flow log.",
           k.rotations.load());
  }
  if (!up) return o.str();
  const ControlView& c = s.control;
  single(o, "egw_dataplane_policy_version", "gauge", "The policy version the dataplane enforces.",
         c.active_version);
  single(o, "egw_dataplane_activations_total", "counter", "Policies the dataplane activated.",
         c.activations);
  single(o, "egw_dataplane_activation_failures_total", "counter",
         "Policies the dataplane refused (the previous one stayed).", c.activation_failures);
  single(o, "egw_dataplane_last_activation_seconds", "gauge",
         "The last activation's time, from taking the blob to every worker using it.",
         seconds(c.last_activation_ns / 1e9));
  struct PortSeries {
    const char* name;
    const char* help;
    const uint64_t* v;
  } port_series[] = {
      {"egw_port_rx_packets_total", "Packets received on a port.", c.rx_packets},
      {"egw_port_tx_packets_total", "Packets transmitted on a port.", c.tx_packets},
      {"egw_port_rx_bytes_total", "Bytes received on a port.", c.rx_bytes},
      {"egw_port_tx_bytes_total", "Bytes transmitted on a port.", c.tx_bytes},
      {"egw_port_rx_missed_total", "Packets the NIC dropped for lack of RX descriptors.",
       c.rx_missed},
      {"egw_port_rx_errors_total", "Erroneous packets the NIC received.", c.rx_errors},
      {"egw_port_tx_errors_total", "Packets the NIC failed to transmit.", c.tx_errors},
      {"egw_port_rx_nombuf_total", "Receive failures for lack of mbufs.", c.rx_nombuf},
  };
  for (const PortSeries& ps : port_series) {
    family(o, ps.name, "counter", ps.help);
    for (unsigned p = 0; p < 2; ++p)
      o << ps.name << "{port=\"" << c.port_id[p] << "\",role=\"" << (p == 0 ? "inside" : "outside")
        << "\"} " << ps.v[p] << "\n";
  }
  family(o, "egw_drops_total", "counter", "Dropped packets by reason.");
  for (unsigned r = 0; r < kDropReasonCount; ++r)
    o << "egw_drops_total{reason=\"" << kDropNames[r] << "\"} " << s.total.drops[r] << "\n";
  single(o, "egw_flows_active", "gauge", "Flows in the flow tables.", c.flows_active);
  single(o, "egw_flows_capacity", "gauge", "Flows the flow tables hold at most.", c.flows_capacity);
  single(o, "egw_workers", "gauge", "Worker lcores.", s.workers);
  // Every worker event counter, summed over workers, under its own name.
#define EGW_X(name)                                            \
  family(o, "egw_" #name "_total", "counter",                  \
         "Worker counter " #name " (docs/observability.md)."); \
  o << "egw_" #name "_total " << s.total.name << "\n";
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  family(o, "egw_worker_busy_cycles_total", "counter",
         "TSC cycles a worker spent in loop iterations that received packets.");
  for (uint32_t w = 0; w < s.workers; ++w)
    o << "egw_worker_busy_cycles_total{worker=\"" << w << "\"} " << s.per_worker[w].busy_cycles
      << "\n";
  family(o, "egw_worker_cycles_total", "counter", "TSC cycles a worker's loop ran.");
  for (uint32_t w = 0; w < s.workers; ++w)
    o << "egw_worker_cycles_total{worker=\"" << w << "\"} " << s.per_worker[w].cycles << "\n";
  single(o, "egw_tsc_hz", "gauge", "TSC cycles per second, for the cycle counters.", s.tsc_hz);

  // One series per rule for each of these.
  struct RuleSeries {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*value)(const RuleStats&);
  } rule_series[] = {
      {"egw_rule_active", "gauge",
       "1 for a rule in the policy the dataplane enforces, 0 for one that left it.",
       [](const RuleStats& r) -> uint64_t { return r.active ? 1 : 0; }},
      {"egw_rule_hits_total", "counter",
       "Flows a rule decided; rule=\"(default)\": the default action.",
       [](const RuleStats& r) { return r.c.hits; }},
      {"egw_tcp_resets_total", "counter", "RST segments from either end on a rule's flows.",
       [](const RuleStats& r) { return r.c.resets; }},
      {"egw_tcp_syn_timeouts_total", "counter",
       "Allowed TCP flows of a rule whose SYN was never answered.",
       [](const RuleStats& r) { return r.c.syn_timeouts; }},
      {"egw_report_hits_total", "counter",
       "Flows a rule of a report-only ruleset would have decided (it decided none).",
       [](const RuleStats& r) { return r.c.report_hits; }},
      {"egw_rate_limited_flows_total", "counter",
       "New flows a rule refused over its rate_limit.new_flows_per_s.",
       [](const RuleStats& r) { return r.c.rate_limited; }},
      {"egw_over_quota_flows_total", "counter", "New flows a rule refused over its max_flows.",
       [](const RuleStats& r) { return r.c.over_quota; }},
  };
  for (const RuleSeries& rs : rule_series) {
    family(o, rs.name, rs.type, rs.help);
    for (const RuleStats& r : s.rules)
      o << rs.name << "{rule=\"" << label(r.id) << "\"} " << rs.value(r) << "\n";
  }
  family(o, "egw_policed_packets_total", "counter",
         "Packets a rule's rate_limit.bytes_per_s dropped, by direction.");
  for (const RuleStats& r : s.rules) {
    for (int d = 0; d < 2; ++d)
      o << "egw_policed_packets_total{rule=\"" << label(r.id) << "\",direction=\""
        << (d == 0 ? "toserver" : "toclient") << "\"} " << r.c.policed[d] << "\n";
  }
  family(o, "egw_tcp_handshake_rtt_seconds", "histogram",
         "Outbound SYN to SYN-ACK as seen by egw: the destination's response time.");
  for (const RuleStats& r : s.rules)
    histogram(o, "egw_tcp_handshake_rtt_seconds", "rule=\"" + label(r.id) + "\"", r.c.rtt);
  family(o, "egw_time_to_first_byte_seconds", "histogram",
         "First request byte to first response byte of a rule's flows.");
  for (const RuleStats& r : s.rules)
    histogram(o, "egw_time_to_first_byte_seconds", "rule=\"" + label(r.id) + "\"", r.c.ttfb);
  single(o, "egw_rule_slots", "gauge", "Rules that may have counters of their own (--rule-slots).",
         s.rule_slots);
  single(o, "egw_rule_slots_used", "gauge", "Rule slots given to a rule so far.",
         c.rule_slots_used);
  single(o, "egw_rule_slots_reused_total", "counter",
         "Rule slots taken over from rules no longer in the policy.", c.rule_slots_reused);
  single(o, "egw_rules_without_slot_total", "counter",
         "Rules that found no slot and count under rule=\"(other)\".", c.rules_without_slot);
  return o.str();
}

void metrics(Api& api, const http::Request& req, http::Response& res, bool open) {
  Identity who;
  if (!open && !api.authorize(req, Role::reader, &who, res)) return;
  res.status = 200;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = metrics_text(api);
}

}  // namespace

void add_status_routes(Api& api, http::Server& server) {
  server.route("GET", "/v1/health",
               [&api](const http::Request& q, http::Response& r) { health(api, q, r); });
  server.route("GET", "/v1/stats",
               [&api](const http::Request& q, http::Response& r) { stats(api, q, r); });
  server.route("GET", "/v1/flows",
               [&api](const http::Request& q, http::Response& r) { flows(api, q, r); });
  server.route("GET", "/metrics",
               [&api](const http::Request& q, http::Response& r) { metrics(api, q, r, false); });
}

void add_open_metrics_route(Api& api, http::Server& server) {
  server.route("GET", "/metrics",
               [&api](const http::Request& q, http::Response& r) { metrics(api, q, r, true); });
}

}  // namespace egw::mgmt
