#include "mgmt/egwctl_view.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "mgmt/client.h"

namespace egw::mgmt::view {

namespace {

// Destinations per service in `top`, and rules before "(N more)".
constexpr size_t kTopDestinations = 10;
constexpr size_t kTopRules = 20;
constexpr size_t kMaxDestText = 40;

// Members of what the server sent, read without trusting its shape: a missing member,
// or a member of something that is not an object, reads as null.
const Json::Value& get(const Json::Value& v, const std::string& key) {
  if (!v.isObject()) return Json::Value::nullSingleton();
  const Json::Value* m = v.find(key.data(), key.data() + key.size());
  return m ? *m : Json::Value::nullSingleton();
}

std::string str(const Json::Value& v) {
  return v.isString() ? v.asString() : "";
}

uint64_t count_of(const Json::Value& v) {
  if (v.isUInt64()) return v.asUInt64();
  if (v.isInt64() && v.asInt64() > 0) return static_cast<uint64_t>(v.asInt64());
  if (v.isDouble() && v.asDouble() > 0) return static_cast<uint64_t>(v.asDouble());
  return 0;
}

std::string text_of(const Json::Value& v) {
  if (v.isString()) return printable(v.asString());
  if (v.isUInt64()) return std::to_string(v.asUInt64());
  if (v.isInt64()) return std::to_string(v.asInt64());
  return "-";
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Parses an address into family (4 or 6) and bytes; false when it is neither.
bool parse_ip(const std::string& text, int* family, uint8_t addr[16]) {
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) {
    *family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), addr) == 1) {
    *family = 6;
    return true;
  }
  return false;
}

bool prefix_holds(const uint8_t* net, const uint8_t* addr, int len) {
  int full = len / 8, rest = len % 8;
  if (!std::equal(net, net + full, addr)) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (net[full] & mask) == (addr[full] & mask);
}

// Columns separated by two spaces, numbers right-aligned, no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::pair<std::string, bool>> header) {
    std::vector<std::string> row;
    for (auto& [title, right] : header) {
      row.push_back(title);
      right_.push_back(right);
    }
    rows_.push_back(std::move(row));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }

  std::string render(const std::string& indent = "") const {
    std::vector<size_t> width(right_.size(), 0);
    for (const auto& row : rows_)
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    std::string out;
    for (const auto& row : rows_) {
      std::string line = indent;
      for (size_t c = 0; c < row.size(); ++c) {
        std::string pad(width[c] - row[c].size(), ' ');
        if (c) line += "  ";
        line += right_[c] ? pad + row[c] : row[c] + pad;
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::string endpoint(const Json::Value& ip, const Json::Value& port) {
  std::string a = text_of(ip);
  if (a.find(':') != std::string::npos) a = "[" + a + "]";
  return port.isNumeric() ? a + ":" + text_of(port) : a;
}

std::string shorten(const std::string& s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max - 3) + "...";
}

std::string rule_text(const Json::Value& rule_id) {
  return rule_id.isNull() ? "(default)" : text_of(rule_id);
}

bool syn_timed_out(const Json::Value& flow) {
  const Json::Value& f = get(flow, "flow");
  return str(get(f, "reason")) == "timeout" && str(get(f, "state")) == "syn_sent";
}

std::optional<uint64_t> flow_rtt_us(const Json::Value& flow) {
  uint64_t rtt = count_of(get(get(flow, "tcp"), "rtt_us"));  // 0: no SYN-ACK seen
  return rtt ? std::optional<uint64_t>(rtt) : std::nullopt;
}

std::optional<uint64_t> flow_ttfb_us(const Json::Value& flow) {
  const Json::Value& t = get(get(flow, "flow"), "ttfb_us");
  return t.isNumeric() ? std::optional<uint64_t>(count_of(t)) : std::nullopt;
}

// A counter's increase per second between two snapshots; none without a previous one
// or when the counter went back (a dataplane restart).
std::optional<double> per_second(const Json::Value& cur, const Json::Value& prev, double dt) {
  if (prev.isNull() || dt <= 0) return std::nullopt;
  uint64_t a = count_of(cur), b = count_of(prev);
  if (a < b) return std::nullopt;
  return static_cast<double>(a - b) / dt;
}

std::string opt_rate(std::optional<double> v, double scale = 1) {
  return v ? rate_text(*v * scale) : "-";
}

std::string hist_ms(const Json::Value& h, const char* field) {
  if (count_of(get(h, "count")) == 0) return "-";
  return ms_text(count_of(get(h, field)));
}

void render_header(const TopInput& in, std::string& out) {
  const Json::Value& s = in.cur;
  char line[256];
  snprintf(line, sizeof(line),
           "policy: version %s committed, %s active    flows: %s active of %s\n",
           text_of(get(s, "policy_version")).c_str(), text_of(get(s, "active_version")).c_str(),
           text_of(get(s, "flows_active")).c_str(), text_of(get(s, "flows_capacity")).c_str());
  out += line;
  const Json::Value& workers = get(s, "per_worker");
  out += "workers: " + text_of(get(s, "workers"));
  if (workers.isArray() && workers.size() != 0) {
    out += "  busy:";
    const Json::Value& pw = get(in.prev, "per_worker");
    for (Json::ArrayIndex i = 0; i < workers.size(); ++i) {
      const Json::Value& w = workers[i];
      std::optional<double> busy;
      if (pw.isArray() && i < pw.size()) {
        std::optional<double> cycles = per_second(get(w, "cycles"), get(pw[i], "cycles"), in.dt);
        std::optional<double> b =
            per_second(get(w, "busy_cycles"), get(pw[i], "busy_cycles"), in.dt);
        if (cycles && b && *cycles > 0) busy = 100.0 * *b / *cycles;
      }
      out += "  w" + text_of(get(w, "worker")) + " " + percent_text(busy);
    }
  }
  out += "\n";
}

void render_ports(const TopInput& in, std::string& out) {
  Table t({{"PORT", false},
           {"ROLE", false},
           {"RX pps", true},
           {"TX pps", true},
           {"RX bit/s", true},
           {"TX bit/s", true}});
  const Json::Value& ports = get(in.cur, "ports");
  const Json::Value& prev = get(in.prev, "ports");
  for (Json::ArrayIndex i = 0; ports.isArray() && i < ports.size(); ++i) {
    const Json::Value& p = ports[i];
    const Json::Value& q =
        prev.isArray() && i < prev.size() ? prev[i] : Json::Value::nullSingleton();
    auto rate = [&](const char* f, double scale) {
      return opt_rate(per_second(get(p, f), get(q, f), in.dt), scale);
    };
    t.add({text_of(get(p, "port")), get(p, "role").isString() ? text_of(get(p, "role")) : "-",
           rate("rx_packets", 1), rate("tx_packets", 1), rate("rx_bytes", 8), rate("tx_bytes", 8)});
  }
  out += t.render();
}

void render_rules(const TopInput& in, std::string& out) {
  std::map<std::string, const Json::Value*> before;
  const Json::Value& prev = get(in.prev, "rules");
  for (Json::ArrayIndex i = 0; prev.isArray() && i < prev.size(); ++i)
    if (get(prev[i], "rule").isString()) before[str(get(prev[i], "rule"))] = &prev[i];
  struct Row {
    std::optional<double> hits_s;
    uint64_t hits;
    std::string id;
    const Json::Value* r;
    std::optional<double> err;
  };
  std::vector<Row> rows;
  const Json::Value& rules = get(in.cur, "rules");
  for (Json::ArrayIndex i = 0; rules.isArray() && i < rules.size(); ++i) {
    const Json::Value& r = rules[i];
    const std::string id = str(get(r, "rule"));
    auto b = before.find(id);
    Row row{std::nullopt, count_of(get(r, "hits")), id, &r, std::nullopt};
    if (b != before.end() && in.dt > 0) {
      const Json::Value& p = *b->second;
      row.hits_s = per_second(get(r, "hits"), get(p, "hits"), in.dt);
      uint64_t dh =
          count_of(get(r, "hits")) - std::min(count_of(get(r, "hits")), count_of(get(p, "hits")));
      uint64_t dr = count_of(get(r, "resets")) -
                    std::min(count_of(get(r, "resets")), count_of(get(p, "resets")));
      uint64_t ds = count_of(get(r, "syn_timeouts")) -
                    std::min(count_of(get(r, "syn_timeouts")), count_of(get(p, "syn_timeouts")));
      row.err = error_rate_percent(dh, dr, ds);
    }
    // A rule of an older policy stays listed while flows it decided still count.
    bool active = !get(r, "active").isBool() || get(r, "active").asBool();
    if (active || (row.hits_s && *row.hits_s > 0)) rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tuple(a.hits_s.value_or(-1), a.hits, b.id) >
           std::tuple(b.hits_s.value_or(-1), b.hits, a.id);
  });
  Table t({{"RULE", false},
           {"HITS/s", true},
           {"HITS", true},
           {"RTT p50 ms", true},
           {"RTT p99 ms", true},
           {"TTFB p50 ms", true},
           {"ERR %", true}});
  for (size_t i = 0; i < rows.size() && i < kTopRules; ++i) {
    const Row& r = rows[i];
    const Json::Value& rule = *r.r;
    std::string name = printable(r.id);
    if (get(rule, "active").isBool() && !get(rule, "active").asBool()) name += " (old)";
    t.add({name, opt_rate(r.hits_s), std::to_string(r.hits), hist_ms(get(rule, "rtt"), "p50_us"),
           hist_ms(get(rule, "rtt"), "p99_us"), hist_ms(get(rule, "ttfb"), "p50_us"),
           percent_text(r.err)});
  }
  out += t.render();
  if (rows.empty()) out += "(no rules)\n";
  if (rows.size() > kTopRules)
    out += "(" + std::to_string(rows.size() - kTopRules) + " more rules)\n";
}

void render_destinations(const TopInput& in, std::string& out) {
  if (!in.flows.isArray()) {
    out += "(no flows: " + in.flows_error + ")\n";
    return;
  }
  static const ServiceMap kNone;
  const ServiceMap& services = in.services ? *in.services : kNone;
  std::vector<DestGroup> groups = group_destinations(in.flows, services, kTopDestinations);
  Table t({{"SERVICE", false},
           {"DESTINATION", false},
           {"FLOWS", true},
           {"BYTES out", true},
           {"BYTES in", true},
           {"RTT p50 ms", true},
           {"TTFB p50 ms", true},
           {"ERRORS", true}});
  for (const DestGroup& g : groups)
    t.add({g.service.empty() ? "-" : printable(g.service), shorten(printable(g.dest), kMaxDestText),
           std::to_string(g.flows), rate_text(static_cast<double>(g.bytes_out)),
           rate_text(static_cast<double>(g.bytes_in)), ms_text(g.rtt_p50_us),
           ms_text(g.ttfb_p50_us), std::to_string(g.errors)});
  out += t.render();
  if (groups.empty()) out += "(no flows)\n";
}

void render_drops(const TopInput& in, std::string& out) {
  const Json::Value& drops = get(in.cur, "drops");
  std::vector<std::tuple<double, uint64_t, std::string>> rows;
  if (drops.isObject()) {
    for (const auto& name : drops.getMemberNames()) {
      uint64_t total = count_of(get(drops, name));
      if (total == 0) continue;
      std::optional<double> r =
          per_second(get(drops, name), get(get(in.prev, "drops"), name), in.dt);
      rows.emplace_back(r.value_or(-1), total, name);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tuple(std::get<0>(a), std::get<1>(a), std::get<2>(b)) >
           std::tuple(std::get<0>(b), std::get<1>(b), std::get<2>(a));
  });
  Table t({{"DROP REASON", false}, {"per s", true}, {"total", true}});
  for (const auto& [r, total, name] : rows)
    t.add({printable(name), r < 0 ? "-" : rate_text(r), std::to_string(total)});
  out += t.render();
  if (rows.empty()) out += "(no drops)\n";
}

void render_flow_log(const TopInput& in, std::string& out) {
  const Json::Value& f = get(in.cur, "flow_log");
  if (!f.isObject()) return;
  out += "flow log: written " + text_of(get(f, "written")) + ", lost " + text_of(get(f, "lost")) +
         ", sampled out " + text_of(get(f, "sampled_out"));
  if (count_of(get(f, "write_errors"))) out += ", write errors " + text_of(get(f, "write_errors"));
  out += "\n";
}

}  // namespace

ServiceMap ServiceMap::from_policy(const Json::Value& policy) {
  ServiceMap m;
  const Json::Value& services = get(policy, "services");
  if (!services.isObject()) return m;
  for (const auto& name : services.getMemberNames()) {
    const Json::Value& cidrs = get(get(services, name), "cidrs");
    for (Json::ArrayIndex i = 0; cidrs.isArray() && i < cidrs.size(); ++i) {
      if (!cidrs[i].isString()) continue;
      const std::string text = cidrs[i].asString();
      const size_t slash = text.find('/');
      Entry e;
      e.service = name;
      if (!parse_ip(text.substr(0, slash), &e.family, e.addr)) continue;
      const int max = e.family == 4 ? 32 : 128;
      e.len = max;
      if (slash != std::string::npos) {
        const std::string len = text.substr(slash + 1);
        if (len.empty() || len.size() > 3 ||
            len.find_first_not_of("0123456789") != std::string::npos)
          continue;
        e.len = std::stoi(len);
        if (e.len > max) continue;
      }
      m.entries_.push_back(e);
    }
  }
  return m;
}

std::string ServiceMap::lookup(const std::string& ip) const {
  int family = 0;
  uint8_t addr[16] = {};
  if (!parse_ip(ip, &family, addr)) return "";
  const Entry* best = nullptr;
  for (const Entry& e : entries_)
    if (e.family == family && (!best || e.len > best->len) && prefix_holds(e.addr, addr, e.len))
      best = &e;
  return best ? best->service : "";
}

bool ServiceMap::has(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return e.service == name; });
}

std::vector<std::string> ServiceMap::names() const {
  std::set<std::string> s;
  for (const Entry& e : entries_) s.insert(e.service);
  return {s.begin(), s.end()};
}

std::string flow_name(const Json::Value& flow) {
  static const std::pair<const char*, const char*> kFields[] = {
      {"tls", "sni"}, {"http", "hostname"}, {"dns", "rrname"}, {"quic", "sni"}};
  for (const auto& [obj, field] : kFields) {
    const Json::Value& v = get(get(flow, obj), field);
    if (v.isString() && !v.asString().empty()) return v.asString();
  }
  return "";
}

bool parse_flows_args(const std::vector<std::string>& args, FlowsOptions* out, std::string* err) {
  *out = FlowsOptions{};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      out->json = true;
      continue;
    }
    if (a != "--limit" && a != "--service" && a != "--name" && a != "--verdict" && a != "--rule") {
      *err = "flows: unknown argument '" + printable(a) + "'";
      return false;
    }
    if (i + 1 == args.size() || args[i + 1].empty()) {
      *err = "flows: " + a + " needs a value";
      return false;
    }
    const std::string& v = args[++i];
    if (a == "--limit") {
      if (v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) == 0 || std::stoul(v) > 100000) {
        *err = "flows: --limit needs a number from 1 to 100000";
        return false;
      }
      out->limit = std::stoul(v);
    } else if (a == "--service") {
      out->filter.service = v;
    } else if (a == "--name") {
      out->filter.name = lower(v);
    } else if (a == "--verdict") {
      if (v != "allow" && v != "deny" && v != "reject") {
        *err = "flows: --verdict is allow, deny or reject (not '" + printable(v) + "')";
        return false;
      }
      out->filter.verdict = v;
    } else {
      out->filter.rule = v;
    }
  }
  return true;
}

bool flow_matches(const Json::Value& flow, const FlowFilter& f, const ServiceMap& services) {
  if (!f.service.empty() && services.lookup(str(get(flow, "src_ip"))) != f.service) return false;
  if (!f.name.empty() && lower(flow_name(flow)).find(f.name) == std::string::npos) return false;
  if (!f.verdict.empty() && str(get(flow, "verdict")) != f.verdict) return false;
  if (f.rule) {
    const Json::Value& id = get(flow, "rule_id");
    if (*f.rule == "default" ? !id.isNull() : !(id.isString() && id.asString() == *f.rule))
      return false;
  }
  return true;
}

std::string render_flows_table(const std::vector<Json::Value>& flows, const ServiceMap& services) {
  Table t({{"SERVICE", false},
           {"SRC", false},
           {"DEST", false},
           {"PROTO", false},
           {"NAME", false},
           {"VERDICT", false},
           {"RULE", false},
           {"PKTS out/in", true},
           {"BYTES out/in", true},
           {"RTT ms", true},
           {"TTFB ms", true},
           {"STATE", false}});
  for (const Json::Value& fl : flows) {
    const std::string service = services.lookup(str(get(fl, "src_ip")));
    const std::string name = flow_name(fl);
    const Json::Value& f = get(fl, "flow");
    t.add({service.empty() ? "-" : printable(service),
           endpoint(get(fl, "src_ip"), get(fl, "src_port")),
           endpoint(get(fl, "dest_ip"), get(fl, "dest_port")), text_of(get(fl, "proto")),
           name.empty() ? "-" : printable(name), text_of(get(fl, "verdict")),
           rule_text(get(fl, "rule_id")),
           text_of(get(f, "pkts_toserver")) + "/" + text_of(get(f, "pkts_toclient")),
           rate_text(static_cast<double>(count_of(get(f, "bytes_toserver")))) + "/" +
               rate_text(static_cast<double>(count_of(get(f, "bytes_toclient")))),
           ms_text(flow_rtt_us(fl)), ms_text(flow_ttfb_us(fl)), text_of(get(f, "state"))});
  }
  return t.render();
}

std::vector<DestGroup> group_destinations(const Json::Value& flows, const ServiceMap& services,
                                          size_t top_n) {
  struct Acc {
    DestGroup g;
    std::vector<uint64_t> rtt, ttfb;
  };
  std::map<std::pair<std::string, std::string>, Acc> acc;
  for (Json::ArrayIndex i = 0; flows.isArray() && i < flows.size(); ++i) {
    const Json::Value& fl = flows[i];
    if (!fl.isObject()) continue;
    std::string dest = flow_name(fl);
    if (dest.empty()) dest = str(get(fl, "dest_ip"));
    const std::string service = services.lookup(str(get(fl, "src_ip")));
    Acc& a = acc[{service, dest}];
    a.g.service = service;
    a.g.dest = dest;
    a.g.flows += 1;
    a.g.bytes_out += count_of(get(get(fl, "flow"), "bytes_toserver"));
    a.g.bytes_in += count_of(get(get(fl, "flow"), "bytes_toclient"));
    if (count_of(get(get(fl, "tcp"), "resets")) != 0 || syn_timed_out(fl)) a.g.errors += 1;
    if (auto r = flow_rtt_us(fl)) a.rtt.push_back(*r);
    if (auto t = flow_ttfb_us(fl)) a.ttfb.push_back(*t);
  }
  std::map<std::string, std::vector<DestGroup>> by_service;
  std::map<std::string, uint64_t> service_flows;
  for (auto& [key, a] : acc) {
    a.g.rtt_p50_us = median(std::move(a.rtt));
    a.g.ttfb_p50_us = median(std::move(a.ttfb));
    service_flows[key.first] += a.g.flows;
    by_service[key.first].push_back(std::move(a.g));
  }
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const auto& [s, n] : service_flows) order.emplace_back(n, s);
  // Largest first; ties by name so that frames do not reshuffle.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<DestGroup> out;
  for (const auto& [n, s] : order) {
    std::vector<DestGroup>& g = by_service[s];
    std::stable_sort(g.begin(), g.end(),
                     [](const DestGroup& a, const DestGroup& b) { return a.flows > b.flows; });
    for (size_t i = 0; i < g.size() && i < top_n; ++i) out.push_back(std::move(g[i]));
  }
  return out;
}

std::optional<uint64_t> median(std::vector<uint64_t> samples) {
  if (samples.empty()) return std::nullopt;
  auto mid = samples.begin() + static_cast<long>((samples.size() - 1) / 2);
  std::nth_element(samples.begin(), mid, samples.end());
  return *mid;
}

std::optional<double> error_rate_percent(uint64_t hits, uint64_t resets, uint64_t syn_timeouts) {
  if (hits == 0) return std::nullopt;
  return 100.0 * static_cast<double>(resets + syn_timeouts) / static_cast<double>(hits);
}

std::string rate_text(double v) {
  char buf[32];
  if (v >= 1e9)
    snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6)
    snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e3)
    snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else
    snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

std::string percent_text(std::optional<double> pct) {
  if (!pct) return "-";
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f%%", *pct);
  return buf;
}

std::string ms_text(std::optional<uint64_t> us) {
  if (!us) return "-";
  const double ms = static_cast<double>(*us) / 1000.0;
  char buf[32];
  snprintf(buf, sizeof(buf), ms < 10 ? "%.2f" : ms < 100 ? "%.1f" : "%.0f", ms);
  return buf;
}

std::string render_top_frame(const TopInput& in) {
  std::string out = "egw top: " + printable(in.server) + ", every " + rate_text(in.interval_s) +
                    " s (q to quit)\n";
  render_header(in, out);
  out += "\n";
  render_ports(in, out);
  out += "\nRULES\n";
  render_rules(in, out);
  out += "\nTOP DESTINATIONS";
  if (in.flows.isArray()) out += " (" + std::to_string(in.flows.size()) + " live flows)";
  out += "\n";
  render_destinations(in, out);
  out += "\nDROPS\n";
  render_drops(in, out);
  out += "\n";
  render_flow_log(in, out);
  return out;
}

}  // namespace egw::mgmt::view
