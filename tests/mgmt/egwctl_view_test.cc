// Tests for mgmt/egwctl_view.cc, what `egwctl flows` and `egwctl top` show: service
// lookup by CIDR, the flows filters and their arguments, grouping of flow records,
// number formatting, and whole frames rendered from fixed REST answers.
#include "mgmt/egwctl_view.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "mgmt/client.h"

namespace egw::mgmt::view {
namespace {

Json::Value json(const std::string& text) {
  Json::Value v;
  std::string err;
  EXPECT_TRUE(parse_json(text, &v, &err)) << err << "\n" << text;
  return v;
}

// A line of text whose whitespace-separated words are exactly these: table rows are
// checked without depending on column widths.
bool has_row(const std::string& text, const std::vector<std::string>& words) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    std::vector<std::string> got;
    for (std::string w; in >> w;) got.push_back(w);
    if (got == words) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

constexpr const char* kPolicy = R"({
  "schema": 1, "default_action": "deny",
  "services": {
    "web":    { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] },
    "db":     { "cidrs": ["198.18.1.128/25"] },
    "ci":     { "cidrs": ["198.18.2.0/24"] },
    "lab":    { "cidrs": ["10.0.0.0/8"] },
    "host":   { "cidrs": ["10.1.2.3/32"] },
    "v6wide": { "cidrs": ["2001:2::/32"] }
  },
  "rulesets": []
})";

TEST(EgwctlViewServices, LongestPrefixMatch) {
  const ServiceMap m = ServiceMap::from_policy(json(kPolicy));
  struct Case {
    const char* ip;
    const char* service;
  } cases[] = {
      {"198.18.1.7", "web"},
      {"198.18.1.127", "web"},
      {"198.18.1.128", "db"},
      {"198.18.1.255", "db"},
      {"198.18.2.9", "ci"},
      {"198.18.3.1", ""},
      {"10.1.2.3", "host"},
      {"10.1.2.4", "lab"},
      {"11.0.0.1", ""},
      {"2001:2:0:1::5", "web"},
      {"2001:2:0:2::1", "v6wide"},
      {"2001:3::1", ""},
      {"::ffff:198.18.1.7", ""},  // IPv4-mapped: an IPv6 address, no IPv6 service holds it
      {"not-an-ip", ""},
      {"", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(m.lookup(c.ip), c.service) << c.ip;
  EXPECT_TRUE(m.has("db"));
  EXPECT_FALSE(m.has("nope"));
  EXPECT_EQ(m.names(), (std::vector<std::string>{"ci", "db", "host", "lab", "v6wide", "web"}));
}

TEST(EgwctlViewServices, NoPolicyOrNoServices) {
  for (const char* doc : {"[]", "{}", R"({"services":{}})", R"({"services":{"a":{}}})",
                          R"({"services":{"a":{"cidrs":["bad", "1.2.3.0/33", 5]}}})"}) {
    const ServiceMap m = ServiceMap::from_policy(json(doc));
    EXPECT_EQ(m.lookup("1.2.3.4"), "") << doc;
    EXPECT_TRUE(m.names().empty()) << doc;
  }
}

// Five live flows: two to one TLS name from web, one unnamed IPv6 flow that timed out
// in syn_sent, a DNS flow from ci, and one from no service.
constexpr const char* kFlows = R"([
  {"src_ip":"198.18.1.7","src_port":40000,"dest_ip":"198.19.5.5","dest_port":443,"proto":"TCP",
   "app_proto":"tls","tls":{"sni":"api.stripe.com"},"verdict":"allow","rule_id":"stripe",
   "policy_version":7,
   "flow":{"pkts_toserver":9,"pkts_toclient":7,"bytes_toserver":1200,"bytes_toclient":5400,
           "state":"established","reason":"active","ttfb_us":12000},
   "tcp":{"rtt_us":180,"resets":0}},
  {"src_ip":"198.18.1.8","src_port":40001,"dest_ip":"198.19.5.6","dest_port":443,"proto":"TCP",
   "app_proto":"tls","tls":{"sni":"api.stripe.com"},"verdict":"allow","rule_id":"stripe",
   "policy_version":7,
   "flow":{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":800,"bytes_toclient":600,
           "state":"closed","reason":"reset"},
   "tcp":{"rtt_us":220,"resets":2,"rst_by":["server"]}},
  {"src_ip":"2001:2:0:1::9","src_port":40002,"dest_ip":"2001:db8::1","dest_port":443,"proto":"TCP",
   "app_proto":"unknown","verdict":"reject","rule_id":null,"policy_version":7,
   "flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":74,"bytes_toclient":0,
           "state":"syn_sent","reason":"timeout"},
   "tcp":{"rtt_us":0,"resets":0}},
  {"src_ip":"198.18.2.3","src_port":5353,"dest_ip":"198.19.0.53","dest_port":53,"proto":"UDP",
   "app_proto":"dns","dns":{"rrname":"example.org"},"verdict":"allow","rule_id":"dns",
   "policy_version":7,
   "flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":60,"bytes_toclient":120,
           "state":"established","reason":"active"}},
  {"src_ip":"10.9.9.9","src_port":1000,"dest_ip":"8.8.8.8","dest_port":53,"proto":"UDP",
   "app_proto":"unknown","verdict":"deny","rule_id":null,"policy_version":7,
   "flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,
           "state":"new","reason":"active"}}
])";

constexpr const char* kServicesPolicy = R"({"services":{
  "web":{"cidrs":["198.18.1.0/24","2001:2:0:1::/64"]}, "ci":{"cidrs":["198.18.2.0/24"]}}})";

TEST(EgwctlViewFlows, Filters) {
  const Json::Value flows = json(kFlows);
  const ServiceMap m = ServiceMap::from_policy(json(kServicesPolicy));
  struct Case {
    const char* description;
    FlowFilter filter;
    std::vector<int> expected;  // indices into kFlows
  } cases[] = {
      {"no filter", {}, {0, 1, 2, 3, 4}},
      {"service v4 and v6", {.service = "web"}, {0, 1, 2}},
      {"other service", {.service = "ci"}, {3}},
      {"name, any case", {.name = "stripe"}, {0, 1}},
      {"name of dns", {.name = "example"}, {3}},
      {"name matching nothing", {.name = "nowhere"}, {}},
      {"verdict", {.verdict = "reject"}, {2}},
      {"default action", {.rule = "default"}, {2, 4}},
      {"rule id", {.rule = "stripe"}, {0, 1}},
      {"unknown rule", {.rule = "nope"}, {}},
      {"service and verdict", {.service = "web", .verdict = "allow"}, {0, 1}},
  };
  for (const Case& c : cases) {
    std::vector<int> got;
    for (Json::ArrayIndex i = 0; i < flows.size(); ++i)
      if (flow_matches(flows[i], c.filter, m)) got.push_back(static_cast<int>(i));
    EXPECT_EQ(got, c.expected) << c.description;
  }
}

TEST(EgwctlViewFlows, FlowName) {
  struct Case {
    const char* flow;
    const char* name;
  } cases[] = {
      {R"({"tls":{"sni":"a.example"}})", "a.example"},
      {R"({"http":{"hostname":"b.example"}})", "b.example"},
      {R"({"dns":{"rrname":"c.example"}})", "c.example"},
      {R"({"quic":{"sni":"d.example"}})", "d.example"},
      {R"({"tls":{"alpn":"h2"}})", ""},
      {R"({"dest_ip":"1.2.3.4"})", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(flow_name(json(c.flow)), c.name) << c.flow;
}

TEST(EgwctlViewFlows, Arguments) {
  struct Case {
    std::vector<std::string> args;
    const char* error;  // a part of the message; nullptr = accepted
    uint64_t limit;
    bool json;
  } cases[] = {
      {{}, nullptr, 1000, false},
      {{"--limit", "50", "--json"}, nullptr, 50, true},
      {{"--limit", "100000"}, nullptr, 100000, false},
      {{"--service", "web", "--name", "Stripe", "--verdict", "deny", "--rule", "default"},
       nullptr,
       1000,
       false},
      {{"--limit", "0"}, "--limit needs a number from 1 to 100000", 0, false},
      {{"--limit", "100001"}, "--limit needs a number", 0, false},
      {{"--limit", "-3"}, "--limit needs a number", 0, false},
      {{"--limit"}, "--limit needs a value", 0, false},
      {{"--service", ""}, "--service needs a value", 0, false},
      {{"--verdict", "drop"}, "--verdict is allow, deny or reject", 0, false},
      {{"--bogus"}, "unknown argument '--bogus'", 0, false},
      {{"web"}, "unknown argument 'web'", 0, false},
  };
  for (const Case& c : cases) {
    FlowsOptions o;
    std::string err;
    const bool ok = parse_flows_args(c.args, &o, &err);
    if (c.error) {
      EXPECT_FALSE(ok) << joined(c.args);
      EXPECT_NE(err.find(c.error), std::string::npos) << joined(c.args) << ": " << err;
      continue;
    }
    EXPECT_TRUE(ok) << joined(c.args) << ": " << err;
    EXPECT_EQ(o.limit, c.limit) << joined(c.args);
    EXPECT_EQ(o.json, c.json) << joined(c.args);
  }
  FlowsOptions o;
  std::string err;
  ASSERT_TRUE(parse_flows_args(
      {"--service", "web", "--name", "Stripe", "--verdict", "deny", "--rule", "default"}, &o,
      &err));
  EXPECT_EQ(o.filter.service, "web");
  EXPECT_EQ(o.filter.name, "stripe");  // lowered once, compared case-insensitively
  EXPECT_EQ(o.filter.verdict, "deny");
  EXPECT_EQ(o.filter.rule, "default");
}

TEST(EgwctlViewFlows, Table) {
  const Json::Value flows = json(kFlows);
  const ServiceMap m = ServiceMap::from_policy(json(kServicesPolicy));
  const std::string t = render_flows_table({flows[0], flows[2], flows[4]}, m);
  const std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "SRC", "DEST", "PROTO", "NAME", "VERDICT", "RULE", "PKTS", "out/in", "BYTES",
       "out/in", "RTT", "ms", "TTFB", "ms", "STATE"},
      {"web", "198.18.1.7:40000", "198.19.5.5:443", "TCP", "api.stripe.com", "allow", "stripe",
       "9/7", "1.2k/5.4k", "0.18", "12.0", "established"},
      {"web", "[2001:2:0:1::9]:40002", "[2001:db8::1]:443", "TCP", "-", "reject", "(default)",
       "1/0", "74/0", "-", "-", "syn_sent"},
      {"-", "10.9.9.9:1000", "8.8.8.8:53", "UDP", "-", "deny", "(default)", "1/0", "60/0", "-", "-",
       "new"},
  };
  for (const auto& row : rows) EXPECT_TRUE(has_row(t, row)) << joined(row) << "\n" << t;
}

TEST(EgwctlViewGroups, ByServiceAndDestination) {
  const ServiceMap m = ServiceMap::from_policy(json(kServicesPolicy));
  const std::vector<DestGroup> g = group_destinations(json(kFlows), m, 10);
  struct Want {
    const char* service;
    const char* dest;
    uint64_t flows, bytes_out, bytes_in, errors;
    std::optional<uint64_t> rtt, ttfb;
  } want[] = {
      // Two samples: the lower middle is the median.
      {"web", "api.stripe.com", 2, 2000, 6000, 1, 180, 12000},
      {"web", "2001:db8::1", 1, 74, 0, 1, std::nullopt, std::nullopt},  // SYN timed out
      {"", "8.8.8.8", 1, 60, 0, 0, std::nullopt, std::nullopt},         // ties by service name
      {"ci", "example.org", 1, 60, 120, 0, std::nullopt, std::nullopt},
  };
  ASSERT_EQ(g.size(), std::size(want));
  for (size_t i = 0; i < g.size(); ++i) {
    const Want& w = want[i];
    EXPECT_EQ(g[i].service, w.service) << i;
    EXPECT_EQ(g[i].dest, w.dest) << i;
    EXPECT_EQ(g[i].flows, w.flows) << w.dest;
    EXPECT_EQ(g[i].bytes_out, w.bytes_out) << w.dest;
    EXPECT_EQ(g[i].bytes_in, w.bytes_in) << w.dest;
    EXPECT_EQ(g[i].errors, w.errors) << w.dest;
    EXPECT_EQ(g[i].rtt_p50_us, w.rtt) << w.dest;
    EXPECT_EQ(g[i].ttfb_p50_us, w.ttfb) << w.dest;
  }
}

TEST(EgwctlViewGroups, TopNPerService) {
  const ServiceMap m = ServiceMap::from_policy(json(kServicesPolicy));
  // web: 3 flows to a, 2 to b, 1 to c; ci: 1 to d. Top 2 per service.
  Json::Value flows(Json::arrayValue);
  for (auto [src, name, n] : {std::tuple{"198.18.1.1", "c", 1}, std::tuple{"198.18.1.1", "a", 3},
                              std::tuple{"198.18.1.1", "b", 2}, std::tuple{"198.18.2.1", "d", 1}})
    for (int i = 0; i < n; ++i)
      flows.append(
          json(std::string(R"({"src_ip":")") + src + R"(","tls":{"sni":")" + name + R"("}})"));
  const std::vector<DestGroup> g = group_destinations(flows, m, 2);
  std::vector<std::string> got;
  for (const DestGroup& d : g)
    got.push_back(d.service + "/" + d.dest + "=" + std::to_string(d.flows));
  EXPECT_EQ(got, (std::vector<std::string>{"web/a=3", "web/b=2", "ci/d=1"}));
  EXPECT_TRUE(group_destinations(Json::Value(), m, 10).empty());
}

TEST(EgwctlViewNumbers, MedianAndErrorRate) {
  struct MedianCase {
    std::vector<uint64_t> samples;
    std::optional<uint64_t> median;
  } medians[] = {
      {{}, std::nullopt}, {{7}, 7}, {{9, 1}, 1}, {{5, 1, 3}, 3}, {{4, 1, 3, 2}, 2},
  };
  for (const auto& c : medians) EXPECT_EQ(median(c.samples), c.median) << c.samples.size();
  struct RateCase {
    uint64_t hits, resets, syn_timeouts;
    std::optional<double> pct;
  } rates[] = {
      {0, 0, 0, std::nullopt}, {0, 3, 1, std::nullopt},  // resets without new flows: no rate, not
                                                         // infinity
      {200, 4, 2, 3.0},        {10, 0, 0, 0.0},         {4, 4, 0, 100.0},
  };
  for (const auto& c : rates)
    EXPECT_EQ(error_rate_percent(c.hits, c.resets, c.syn_timeouts), c.pct) << c.hits;
}

TEST(EgwctlViewNumbers, Formatting) {
  struct Case {
    std::string got, want;
  } cases[] = {
      {rate_text(0), "0"},         {rate_text(999), "999"},      {rate_text(1200), "1.2k"},
      {rate_text(3.4e6), "3.40M"}, {rate_text(1.25e9), "1.25G"}, {percent_text(std::nullopt), "-"},
      {percent_text(2.5), "2.5%"}, {percent_text(0), "0.0%"},    {ms_text(std::nullopt), "-"},
      {ms_text(180), "0.18"},      {ms_text(12000), "12.0"},     {ms_text(250000), "250"},
  };
  for (const Case& c : cases) EXPECT_EQ(c.got, c.want);
}

// Two /v1/stats answers 2 s apart.
constexpr const char* kStatsBefore = R"j({
  "policy_version": 7, "active_version": 7, "workers": 2, "tsc_hz": 1000,
  "flows_active": 5, "flows_capacity": 65536,
  "ports": [
    {"port":0,"role":"inside","rx_packets":1000,"tx_packets":900,"rx_bytes":100000,"tx_bytes":90000},
    {"port":1,"role":"outside","rx_packets":500,"tx_packets":400,"rx_bytes":50000,"tx_bytes":40000}],
  "per_worker": [{"worker":0,"cycles":1000,"busy_cycles":100},
                 {"worker":1,"cycles":1000,"busy_cycles":0}],
  "rules": [
    {"rule":"stripe","active":true,"hits":100,"resets":1,"syn_timeouts":0,
     "rtt":{"count":100,"sum_us":18000,"p50_us":150,"p90_us":300,"p99_us":2500},
     "ttfb":{"count":50,"sum_us":600000,"p50_us":12000,"p90_us":20000,"p99_us":40000}},
    {"rule":"dns","active":true,"hits":10,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0,"sum_us":0,"p50_us":0,"p90_us":0,"p99_us":0},
     "ttfb":{"count":0,"sum_us":0,"p50_us":0,"p90_us":0,"p99_us":0}},
    {"rule":"(default)","active":true,"hits":5,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}},
    {"rule":"old-rule","active":false,"hits":7,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}}],
  "drops": {"policy_deny":10,"non_ip":4,"ttl_expired":0},
  "drops_total": 14,
  "flow_log": {"lost":0,"sampled_out":3,"written":40,"write_errors":0}
})j";

constexpr const char* kStatsAfter = R"j({
  "policy_version": 8, "active_version": 7, "workers": 2, "tsc_hz": 1000,
  "flows_active": 5, "flows_capacity": 65536,
  "ports": [
    {"port":0,"role":"inside","rx_packets":3000,"tx_packets":2900,"rx_bytes":350000,"tx_bytes":290000},
    {"port":1,"role":"outside","rx_packets":500,"tx_packets":400,"rx_bytes":50000,"tx_bytes":40000}],
  "per_worker": [{"worker":0,"cycles":3000,"busy_cycles":600},
                 {"worker":1,"cycles":3000,"busy_cycles":0}],
  "rules": [
    {"rule":"stripe","active":true,"hits":300,"resets":5,"syn_timeouts":2,
     "rtt":{"count":300,"sum_us":54000,"p50_us":150,"p90_us":300,"p99_us":2500},
     "ttfb":{"count":150,"sum_us":1800000,"p50_us":12000,"p90_us":20000,"p99_us":40000}},
    {"rule":"dns","active":true,"hits":10,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}},
    {"rule":"(default)","active":true,"hits":25,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}},
    {"rule":"old-rule","active":false,"hits":7,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}},
    {"rule":"late","active":true,"hits":1,"resets":0,"syn_timeouts":0,
     "rtt":{"count":0},"ttfb":{"count":0}}],
  "drops": {"policy_deny":30,"non_ip":4,"ttl_expired":0},
  "drops_total": 34,
  "flow_log": {"lost":1,"sampled_out":3,"written":52,"write_errors":2}
})j";

TEST(EgwctlViewTop, FrameFromTwoSnapshots) {
  const ServiceMap m = ServiceMap::from_policy(json(kServicesPolicy));
  TopInput in;
  in.server = "http://gw1:8600";
  in.interval_s = 2;
  in.prev = json(kStatsBefore);
  in.cur = json(kStatsAfter);
  in.dt = 2;
  in.flows = json(kFlows);
  in.services = &m;
  const std::string f = render_top_frame(in);
  const std::vector<std::vector<std::string>> rows = {
      {"egw", "top:", "http://gw1:8600,", "every", "2", "s", "(q", "to", "quit)"},
      {"policy:", "version", "8", "committed,", "7", "active", "flows:", "5", "active", "of",
       "65536"},
      {"workers:", "2", "busy:", "w0", "25.0%", "w1", "0.0%"},
      {"0", "inside", "1.0k", "1.0k", "1.00M", "800.0k"},
      {"1", "outside", "0", "0", "0", "0"},
      // hits/s, hits, RTT p50/p99, TTFB p50 (cumulative histograms), (4+2)/200 errors
      {"stripe", "100", "300", "0.15", "2.50", "12.0", "3.0%"},
      {"(default)", "10", "25", "-", "-", "-", "0.0%"},
      {"dns", "0", "10", "-", "-", "-", "-"},  // no hits in the interval: no error rate
      {"late", "-", "1", "-", "-", "-", "-"},  // new since the previous frame: no rate yet
      {"TOP", "DESTINATIONS", "(5", "live", "flows)"},
      {"web", "api.stripe.com", "2", "2.0k", "6.0k", "0.18", "12.0", "1"},
      {"web", "2001:db8::1", "1", "74", "0", "-", "-", "1"},
      {"ci", "example.org", "1", "60", "120", "-", "-", "0"},
      {"-", "8.8.8.8", "1", "60", "0", "-", "-", "0"},
      {"policy_deny", "10", "30"},
      {"non_ip", "0", "4"},
      {"flow", "log:", "written", "52,", "lost", "1,", "sampled", "out", "3,", "write", "errors",
       "2"},
  };
  for (const auto& row : rows) EXPECT_TRUE(has_row(f, row)) << joined(row) << "\n" << f;
  // Rules by hits per second; an old policy's rule without new hits is left out.
  EXPECT_LT(f.find("stripe"), f.find("(default)"));
  EXPECT_LT(f.find("(default)"), f.find("\ndns"));
  EXPECT_LT(f.find("\ndns"), f.find("\nlate"));
  EXPECT_EQ(f.find("old-rule"), std::string::npos) << f;
  EXPECT_EQ(f.find("ttl_expired"), std::string::npos) << "zero drops are not listed\n" << f;
  EXPECT_EQ(f.find('\033'), std::string::npos) << "terminal codes belong to the caller";
}

TEST(EgwctlViewTop, FirstFrameAndMissingFlows) {
  TopInput in;
  in.server = "http://gw1:8600";
  in.cur = json(kStatsBefore);
  in.flows_error = "HTTP 503 dataplane_disconnected: no flow snapshot";
  const std::string f = render_top_frame(in);
  const std::vector<std::vector<std::string>> rows = {
      {"workers:", "2", "busy:", "w0", "-", "w1", "-"},
      {"0", "inside", "-", "-", "-", "-"},
      {"stripe", "-", "100", "0.15", "2.50", "12.0", "-"},
      {"(no", "flows:", "HTTP", "503", "dataplane_disconnected:", "no", "flow", "snapshot)"},
      {"policy_deny", "-", "10"},
  };
  for (const auto& row : rows) EXPECT_TRUE(has_row(f, row)) << joined(row) << "\n" << f;
}

}  // namespace
}  // namespace egw::mgmt::view
