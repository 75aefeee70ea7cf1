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

void stats(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  shm::CounterSnapshot s{};
  if (!api.publisher().counters(&s)) {
    error_response(res, 503, "dataplane_disconnected",
                   "no dataplane connected: counters come from egw-dataplane");
    return;
  }
  Json::Value body(Json::objectValue);
  body["policy_version"] = Json::UInt64(api.current_version());
  body["active_version"] = Json::UInt64(api.publisher().dataplane_version());
  body["workers"] = s.workers;
  Json::Value ports(Json::arrayValue);
  for (unsigned p = 0; p < 2; ++p) {
    Json::Value one(Json::objectValue);
    one["port"] = p;
    one["rx_packets"] = Json::UInt64(s.port_rx_packets[p]);
    one["tx_packets"] = Json::UInt64(s.port_tx_packets[p]);
    one["rx_bytes"] = Json::UInt64(s.port_rx_bytes[p]);
    one["tx_bytes"] = Json::UInt64(s.port_tx_bytes[p]);
    one["rx_missed"] = Json::UInt64(s.port_rx_missed[p]);
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
  body["flows_active"] = Json::UInt64(s.flows_active);
  Json::Value workers(Json::objectValue);
#define EGW_X(name) workers[#name] = Json::UInt64(s.total.name);
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  body["counters"] = workers;
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

std::string metrics_text(Api& api) {
  std::ostringstream o;
  family(o, "egw_policy_version", "gauge", "The committed policy version.");
  o << "egw_policy_version " << api.current_version() << "\n";
  shm::CounterSnapshot s{};
  const bool up = api.publisher().counters(&s);
  family(o, "egw_dataplane_connected", "gauge", "1 when a dataplane is attached.");
  o << "egw_dataplane_connected " << (up ? 1 : 0) << "\n";
  o << api.activations().prometheus("egw_policy_activation_seconds");
  if (!up) return o.str();
  family(o, "egw_dataplane_policy_version", "gauge", "The policy version the dataplane enforces.");
  o << "egw_dataplane_policy_version " << api.publisher().dataplane_version() << "\n";
  struct PortSeries {
    const char* name;
    const char* help;
    const uint64_t* v;
  } port_series[] = {
      {"egw_port_rx_packets_total", "Packets received on a port.", s.port_rx_packets},
      {"egw_port_tx_packets_total", "Packets transmitted on a port.", s.port_tx_packets},
      {"egw_port_rx_bytes_total", "Bytes received on a port.", s.port_rx_bytes},
      {"egw_port_tx_bytes_total", "Bytes transmitted on a port.", s.port_tx_bytes},
      {"egw_port_rx_missed_total", "Packets the NIC dropped for lack of RX buffers.",
       s.port_rx_missed},
  };
  for (const PortSeries& ps : port_series) {
    family(o, ps.name, "counter", ps.help);
    for (unsigned p = 0; p < 2; ++p) o << ps.name << "{port=\"" << p << "\"} " << ps.v[p] << "\n";
  }
  family(o, "egw_drops_total", "counter", "Dropped packets by reason.");
  for (unsigned r = 0; r < kDropReasonCount; ++r)
    o << "egw_drops_total{reason=\"" << kDropNames[r] << "\"} " << s.total.drops[r] << "\n";
  family(o, "egw_flows_created_total", "counter", "Flows created.");
  o << "egw_flows_created_total " << s.total.flows_created << "\n";
  family(o, "egw_flows_active", "gauge", "Flows in the flow tables.");
  o << "egw_flows_active " << s.flows_active << "\n";
  family(o, "egw_workers", "gauge", "Worker lcores.");
  o << "egw_workers " << s.workers << "\n";
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
