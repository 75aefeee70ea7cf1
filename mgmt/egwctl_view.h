// What `egwctl flows` and `egwctl top` show, as pure functions of the REST answers
// (/v1/stats, /v1/flows, /v1/policy), apart from the terminal and the network so that
// tests feed them fixed JSON. Management side (egwctl, single-threaded).
#pragma once

#include <json/json.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace egw::mgmt::view {

// The policy's services as prefixes, for naming a flow's inside address.
class ServiceMap {
 public:
  // From a policy document ({"services":{NAME:{"cidrs":[...]}}}); entries that do not
  // parse are skipped: the server validated the document, this is only for display.
  static ServiceMap from_policy(const Json::Value& policy);

  // The service with the longest prefix holding ip (IPv4 or IPv6 text); "" when none.
  std::string lookup(const std::string& ip) const;
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted, each once

 private:
  struct Entry {
    std::string service;
    int family = 0;  // 4 or 6
    uint8_t addr[16] = {};
    int len = 0;
  };
  std::vector<Entry> entries_;
};

// A flow record's name: tls.sni, http.hostname, dns.rrname or quic.sni; "" when none.
std::string flow_name(const Json::Value& flow);

// The client-side filters of `egwctl flows`; empty = any.
struct FlowFilter {
  std::string service;
  std::string name;                 // case-insensitive substring of flow_name()
  std::string verdict;              // allow, deny or reject
  std::optional<std::string> rule;  // "default" matches rule_id null
};

struct FlowsOptions {
  uint64_t limit = 1000;
  FlowFilter filter;
  bool json = false;
};

// Parses `flows` arguments; false with *err saying what is wrong (a usage error).
bool parse_flows_args(const std::vector<std::string>& args, FlowsOptions* out, std::string* err);

bool flow_matches(const Json::Value& flow, const FlowFilter& f, const ServiceMap& services);

// The aligned table of `egwctl flows` (header line first, one line per flow).
std::string render_flows_table(const std::vector<Json::Value>& flows, const ServiceMap& services);

// One row of TOP DESTINATIONS: a service's flows to one name (or address without one).
struct DestGroup {
  std::string service;  // "" = no service
  std::string dest;     // the flow name, else dest_ip
  uint64_t flows = 0, bytes_out = 0, bytes_in = 0;
  uint64_t errors = 0;                              // flows with resets, or timed out in syn_sent
  std::optional<uint64_t> rtt_p50_us, ttfb_p50_us;  // none without samples
};

// Groups flow records by (service, destination): per service, the top_n destinations
// by flows; services by their total flows, largest first.
std::vector<DestGroup> group_destinations(const Json::Value& flows, const ServiceMap& services,
                                          size_t top_n);

// The median of samples (the lower middle one for an even count); none when empty.
std::optional<uint64_t> median(std::vector<uint64_t> samples);

// (resets + syn_timeouts) per hit over an interval, in percent; none without hits.
std::optional<double> error_rate_percent(uint64_t hits, uint64_t resets, uint64_t syn_timeouts);

std::string rate_text(double v);                      // 950, 1.2k, 3.40M, 1.25G
std::string percent_text(std::optional<double> pct);  // 2.5%, or - for none
std::string ms_text(std::optional<uint64_t> us);      // microseconds as ms, or -

// One frame of `egwctl top`, without terminal codes.
struct TopInput {
  std::string server;
  double interval_s = 1;
  Json::Value prev;         // the previous /v1/stats answer; null on the first frame (no rates)
  Json::Value cur;          // this /v1/stats answer
  double dt = 0;            // seconds between the two
  Json::Value flows;        // the /v1/flows answer's "flows"; null when not fetched
  std::string flows_error;  // why flows is null
  const ServiceMap* services = nullptr;
};
std::string render_top_frame(const TopInput& in);

}  // namespace egw::mgmt::view
