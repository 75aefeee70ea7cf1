// Policy document (schema 1): strict JSON reading and validation into rules::Policy.
// Management side (egw-mgmt, egwctl); never throws, reports every error with its path.
#include "rules/policy.h"

#include <cstdio>

#include <hs.h>
#include <json/json.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "rules/names.h"

namespace egw::rules {

namespace {

constexpr int kStackLimit = 64;

// Appends one reference token to a JSON pointer, escaped per RFC 6901.
std::string join(const std::string& base, std::string_view key) {
  std::string out = base + "/";
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::string join(const std::string& base, size_t index) {
  return base + "/" + std::to_string(index);
}

std::string quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

const char* type_name(const Json::Value& v) {
  switch (v.type()) {
    case Json::nullValue:
      return "null";
    case Json::intValue:
    case Json::uintValue:
      return "an integer";
    case Json::realValue:
      return "a number with a fraction or exponent";
    case Json::stringValue:
      return "a string";
    case Json::booleanValue:
      return "a boolean";
    case Json::arrayValue:
      return "an array";
    case Json::objectValue:
      return "an object";
  }
  return "?";
}

// Object members in document order (jsoncpp keeps objects sorted by key).
std::vector<std::string> members_in_order(const Json::Value& obj) {
  std::vector<std::string> names = obj.getMemberNames();
  std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return obj[a].getOffsetStart() < obj[b].getOffsetStart();
  });
  return names;
}

class Validator {
 public:
  std::vector<Error> errors;

  void add(std::string path, std::string message) {
    if (errors.size() < kMaxErrors) errors.push_back({std::move(path), std::move(message)});
  }

  bool is_type(const Json::Value& v, Json::ValueType want, const std::string& path,
               const char* want_name) {
    bool ok = v.type() == want || (want == Json::intValue && v.type() == Json::uintValue);
    if (!ok) add(path, std::string("must be ") + want_name + ", not " + type_name(v));
    return ok;
  }
  bool is_object(const Json::Value& v, const std::string& path) {
    return is_type(v, Json::objectValue, path, "an object");
  }
  bool is_array(const Json::Value& v, const std::string& path) {
    return is_type(v, Json::arrayValue, path, "an array");
  }
  bool is_string(const Json::Value& v, const std::string& path) {
    return is_type(v, Json::stringValue, path, "a string");
  }

  // Reports every member of obj not in allowed.
  void check_fields(const Json::Value& obj, const std::string& path,
                    std::initializer_list<const char*> allowed) {
    for (const std::string& name : members_in_order(obj)) {
      bool known = false;
      for (const char* a : allowed) known = known || name == a;
      if (known) continue;
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      add(join(path, name), "unknown field " + quote(name) + " (expected one of: " + list + ")");
    }
  }

  // Reports a missing required member; returns whether it is present.
  bool require(const Json::Value& obj, const char* key, const std::string& path) {
    if (obj.isMember(key)) return true;
    add(path, std::string("missing required field \"") + key + "\"");
    return false;
  }

  // An integer in [lo, hi]; reports and returns nullopt otherwise.
  std::optional<int64_t> integer(const Json::Value& v, const std::string& path, int64_t lo,
                                 int64_t hi, const char* what) {
    if (!is_type(v, Json::intValue, path, "an integer")) return std::nullopt;
    bool too_big = v.type() == Json::uintValue && v.asUInt64() > static_cast<uint64_t>(hi);
    int64_t x = too_big ? hi : v.asInt64();
    if (too_big || x < lo || x > hi) {
      std::string shown =
          v.type() == Json::uintValue ? std::to_string(v.asUInt64()) : std::to_string(v.asInt64());
      add(path, std::string(what) + " " + shown + " is out of range (" + std::to_string(lo) + ".." +
                    std::to_string(hi) + ")");
      return std::nullopt;
    }
    return x;
  }

  std::optional<Action> action(const Json::Value& v, const std::string& path, bool allow_ok) {
    if (!is_string(v, path)) return std::nullopt;
    std::string s = v.asString();
    if (s == "allow" && allow_ok) return Action::allow;
    if (s == "deny") return Action::deny;
    if (s == "reject") return Action::reject;
    add(path, "unknown action " + quote(s) +
                  (allow_ok ? " (expected allow, deny or reject)"
                            : " (an inspect match ends the flow: expected deny or reject)"));
    return std::nullopt;
  }

  // Walks every key and string value: UTF-8 must be valid, no NUL characters.
  void check_strings(const Json::Value& v, const std::string& path) {
    auto check = [&](std::string_view s, const std::string& where, const char* what) {
      size_t bad = 0;
      if (!valid_utf8(s, &bad))
        add(where, std::string("invalid UTF-8 in ") + what + " at byte " + std::to_string(bad));
      else if (s.find('\0') != std::string_view::npos)
        add(where, std::string("NUL character in ") + what);
    };
    if (v.isString()) {
      const char* b = nullptr;
      const char* e = nullptr;
      if (v.getString(&b, &e))
        check(std::string_view(b, static_cast<size_t>(e - b)), path, "string");
    } else if (v.isArray()) {
      for (Json::ArrayIndex i = 0; i < v.size(); ++i) check_strings(v[i], join(path, i));
    } else if (v.isObject()) {
      for (const std::string& name : v.getMemberNames()) {
        check(name, join(path, name), "key");
        check_strings(v[name], join(path, name));
      }
    }
  }

  void services(const Json::Value& v, Policy& p);
  void rulesets(const Json::Value& v, Policy& p);
  void inspect(const Json::Value& v, Policy& p);
  void limits(const Json::Value& v, Policy& p);

 private:
  std::map<std::string, size_t> service_index_;
  std::map<std::string, std::string> rule_ids_;  // id -> path of its first use

  void rule_id(const Json::Value& obj, const std::string& path, std::string* out);
  void from(const Json::Value& obj, const std::string& path, bool* any,
            std::vector<std::string>* out);
  // Each valid CIDR with the path of its entry.
  std::vector<std::pair<Cidr, std::string>> cidr_list(const Json::Value& v,
                                                      const std::string& path);
  std::vector<PortRange> ports(const Json::Value& v, const std::string& path, Proto proto);
  std::optional<PortRange> port(const Json::Value& v, const std::string& path);
  void to(const Json::Value& v, const std::string& path, Rule& r);
  std::optional<Rule> rule(const Json::Value& v, const std::string& path, bool report);
  std::optional<RateLimit> rate_limit(const Json::Value& v, const std::string& path);
  std::optional<Quota> quota(const Json::Value& v, const std::string& path);
  std::optional<uint64_t> byte_amount(const Json::Value& v, const std::string& path,
                                      const char* what);
  std::optional<LimitPer> per(const Json::Value& v, const std::string& path);
  // A non-empty array of strings, each unique; calls each(string, path) for each entry.
  template <typename F>
  void string_list(const Json::Value& v, const std::string& path, const char* what, F each);
};

template <typename F>
void Validator::string_list(const Json::Value& v, const std::string& path, const char* what,
                            F each) {
  if (!is_array(v, path)) return;
  if (v.empty()) {
    add(path, std::string("empty list: give at least one ") + what);
    return;
  }
  std::map<std::string, Json::ArrayIndex> seen;
  for (Json::ArrayIndex i = 0; i < v.size(); ++i) {
    std::string p = join(path, i);
    if (!is_string(v[i], p)) continue;
    std::string s = v[i].asString();
    auto [it, fresh] = seen.emplace(s, i);
    if (!fresh) {
      add(p, quote(s) + " is listed twice (first at " + join(path, it->second) + ")");
      continue;
    }
    each(s, p);
  }
}

std::vector<std::pair<Cidr, std::string>> Validator::cidr_list(const Json::Value& v,
                                                               const std::string& path) {
  std::vector<std::pair<Cidr, std::string>> out;
  std::map<std::string, std::string> seen;  // normalized text -> path (same CIDR spelt twice)
  string_list(v, path, "CIDR", [&](const std::string& s, const std::string& p) {
    std::string why;
    if (auto c = parse_cidr(s, &why)) {
      auto [it, fresh] = seen.emplace(format_cidr(*c), p);
      if (!fresh)
        add(p, it->first + " is listed twice (first at " + it->second + ")");
      else
        out.emplace_back(*c, p);
    } else {
      add(p, why);
    }
  });
  return out;
}

void Validator::services(const Json::Value& v, Policy& p) {
  const std::string path = "/services";
  if (!is_object(v, path)) return;
  std::map<std::string, std::string> cidr_owner;  // CIDR text -> path where first listed
  for (const std::string& name : members_in_order(v)) {
    std::string sp = join(path, name);
    if (name == "any") {
      add(sp, "\"any\" is reserved (it means every inside source in rules' from)");
      continue;
    }
    if (!valid_object_name(name)) {
      add(sp, "bad service name " + quote(name) + " (expected [a-z0-9][a-z0-9_-]{0,62})");
      continue;
    }
    const Json::Value& s = v[name];
    if (!is_object(s, sp)) continue;
    check_fields(s, sp, {"cidrs"});
    Service svc{name, {}};
    if (require(s, "cidrs", sp)) {
      std::string cp = join(sp, "cidrs");
      for (auto& [cidr, entry] : cidr_list(s["cidrs"], cp)) {
        std::string text = format_cidr(cidr);
        auto [it, fresh] = cidr_owner.emplace(text, entry);
        if (!fresh)
          add(entry, text + " is already in another service (" + it->second +
                         "): a source address belongs to one service only");
        svc.cidrs.push_back(cidr);
      }
    }
    service_index_[name] = p.services.size();
    p.services.push_back(std::move(svc));
  }
}

void Validator::rule_id(const Json::Value& obj, const std::string& path, std::string* out) {
  if (!require(obj, "id", path)) return;
  std::string ip = join(path, "id");
  if (!is_string(obj["id"], ip)) return;
  std::string id = obj["id"].asString();
  if (!valid_rule_id(id)) {
    add(ip, "bad rule id " + quote(id) + " (expected 1 to 63 of A-Z a-z 0-9 . _ : -)");
    return;
  }
  auto [it, fresh] = rule_ids_.emplace(id, path);
  if (!fresh) add(ip, "duplicate rule id " + quote(id) + " (first used at " + it->second + ")");
  *out = id;
}

void Validator::from(const Json::Value& obj, const std::string& path, bool* any,
                     std::vector<std::string>* out) {
  if (!require(obj, "from", path)) return;
  string_list(obj["from"], join(path, "from"), "source (a service name or \"any\")",
              [&](const std::string& s, const std::string& p) {
                if (s == "any") {
                  *any = true;
                } else if (service_index_.count(s) == 0) {
                  add(p, "unknown service " + quote(s) + " (not defined in /services)");
                } else {
                  out->push_back(s);
                }
              });
}

std::optional<PortRange> Validator::port(const Json::Value& v, const std::string& path) {
  if (v.type() == Json::intValue || v.type() == Json::uintValue) {
    auto x = integer(v, path, 0, 65535, "port");
    if (!x) return std::nullopt;
    if (*x == 0) {
      add(path, "port 0 is not a destination port (ports are 1..65535)");
      return std::nullopt;
    }
    return PortRange{static_cast<uint16_t>(*x), static_cast<uint16_t>(*x)};
  }
  if (!v.isString()) {
    add(path,
        std::string("must be a port number or a \"LO-HI\" range string, not ") + type_name(v));
    return std::nullopt;
  }
  std::string s = v.asString();
  auto number = [](std::string_view t, long* out) {
    if (t.empty() || t.size() > 5 || t.find_first_not_of("0123456789") != t.npos) return false;
    if (t.size() > 1 && t[0] == '0') return false;
    *out = std::stol(std::string(t));
    return true;
  };
  size_t dash = s.find('-');
  long lo = 0, hi = 0;
  bool ok = dash == std::string::npos ? number(s, &lo) && (hi = lo, true)
                                      : number(std::string_view(s).substr(0, dash), &lo) &&
                                            number(std::string_view(s).substr(dash + 1), &hi);
  if (!ok) {
    add(path,
        "bad port " + quote(s) + " (expected a number like 443 or a range like \"8000-8100\")");
    return std::nullopt;
  }
  if (lo > 65535 || hi > 65535) {
    add(path, "port range " + quote(s) + " is out of range (1..65535)");
    return std::nullopt;
  }
  if (lo == 0) {
    add(path, "port 0 is not a destination port (ports are 1..65535)");
    return std::nullopt;
  }
  if (lo > hi) {
    add(path, "inverted port range " + quote(s) + " (did you mean \"" + std::to_string(hi) + "-" +
                  std::to_string(lo) + "\"?)");
    return std::nullopt;
  }
  return PortRange{static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
}

std::vector<PortRange> Validator::ports(const Json::Value& v, const std::string& path,
                                        Proto proto) {
  std::vector<PortRange> out;
  if (!is_array(v, path)) return out;
  if (proto == Proto::icmp) {
    add(path, "ports with proto \"icmp\": ICMP has no ports (remove \"ports\")");
    return out;
  }
  if (v.empty()) {
    add(path, "empty ports list (omit \"ports\" for any port)");
    return out;
  }
  for (Json::ArrayIndex i = 0; i < v.size(); ++i)
    if (auto r = port(v[i], join(path, i))) out.push_back(*r);
  return out;
}

void Validator::to(const Json::Value& v, const std::string& path, Rule& r) {
  if (!is_object(v, path)) return;
  check_fields(v, path, {"cidrs", "domains", "domain_regex"});
  if (!v.isMember("cidrs") && !v.isMember("domains") && !v.isMember("domain_regex")) {
    add(path, "empty \"to\" (omit \"to\" for any destination)");
    return;
  }
  if (v.isMember("cidrs")) {
    for (auto& e : cidr_list(v["cidrs"], join(path, "cidrs"))) r.to_cidrs.push_back(e.first);
  }
  if (v.isMember("domains")) {
    std::set<std::string> normalized;
    string_list(v["domains"], join(path, "domains"), "domain name",
                [&](const std::string& s, const std::string& p) {
                  std::string why;
                  auto d = normalize_domain(s, &why);
                  if (!d)
                    add(p, "bad domain " + quote(s) + ": " + why);
                  else if (!normalized.insert(*d).second)
                    add(p, quote(s) + " is listed twice (names compare case-insensitively)");
                  else
                    r.to_domains.push_back(*d);
                });
  }
  if (v.isMember("domain_regex")) {
    string_list(v["domain_regex"], join(path, "domain_regex"), "pattern",
                [&](const std::string& s, const std::string& p) {
                  std::string why;
                  if (check_domain_regex(s, &why))
                    r.to_domain_regex.push_back(s);
                  else
                    add(p, why);
                });
  }
}

// A byte rate or burst: an integer, or a string of digits with an optional SI suffix
// (k/K = 1e3, M = 1e6, G = 1e9) in bytes, in 1..kMaxBytesPerS. No "m" or "g": a
// lower-case M reads as milli or as megabits, and bits are not meant.
std::optional<uint64_t> Validator::byte_amount(const Json::Value& v, const std::string& path,
                                               const char* what) {
  if (v.type() == Json::intValue || v.type() == Json::uintValue)
    return integer(v, path, 1, static_cast<int64_t>(kMaxBytesPerS), what);
  if (!v.isString()) {
    add(path, std::string("must be an integer or a string such as \"10M\", not ") + type_name(v));
    return std::nullopt;
  }
  const std::string s = v.asString();
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  uint64_t mult = 1;
  if (digits + 1 == s.size()) {
    switch (s[digits]) {
      case 'k':
      case 'K':
        mult = 1000;
        break;
      case 'M':
        mult = 1000000;
        break;
      case 'G':
        mult = 1000000000;
        break;
      default:
        mult = 0;
    }
  }
  if (digits == 0 || mult == 0 || digits + 1 < s.size()) {
    add(path, std::string("bad ") + what + " " + quote(s) +
                  " (expected bytes, not bits: an integer or digits with an optional k, M or G "
                  "suffix, e.g. \"10M\" = 10000000 bytes)");
    return std::nullopt;
  }
  // More than 12 digits is over the bound whatever the suffix; fewer cannot overflow.
  uint64_t x = digits > 12 ? kMaxBytesPerS + 1 : std::stoull(s.substr(0, digits)) * mult;
  if (x < 1 || x > kMaxBytesPerS) {
    add(path, std::string(what) + " " + quote(s) + " is out of range (1.." +
                  std::to_string(kMaxBytesPerS) + ", i.e. up to \"100G\")");
    return std::nullopt;
  }
  return x;
}

std::optional<LimitPer> Validator::per(const Json::Value& v, const std::string& path) {
  if (!is_string(v, path)) return std::nullopt;
  const std::string s = v.asString();
  if (s == "service") return LimitPer::service;
  if (s == "source") return LimitPer::source;
  add(path, "unknown per " + quote(s) +
                " (expected service: the flow's source service, or source: its inside address)");
  return std::nullopt;
}

std::optional<RateLimit> Validator::rate_limit(const Json::Value& v, const std::string& path) {
  if (!is_object(v, path)) return std::nullopt;
  const size_t before = errors.size();
  check_fields(v, path, {"new_flows_per_s", "burst", "bytes_per_s", "bytes_burst", "per", "over"});
  RateLimit rl;
  const bool flows = v.isMember("new_flows_per_s"), bytes = v.isMember("bytes_per_s");
  if (!flows && !bytes)
    add(path,
        "give new_flows_per_s or bytes_per_s (or both): a rate_limit without a rate "
        "limits nothing");
  if (flows) {
    if (auto x = integer(v["new_flows_per_s"], join(path, "new_flows_per_s"), 1, kMaxNewFlowsPerS,
                         "new_flows_per_s"))
      rl.new_flows_per_s = rl.burst = static_cast<uint32_t>(*x);
  }
  if (v.isMember("burst")) {
    const std::string bp = join(path, "burst");
    if (!flows)
      add(bp, "burst is the depth of the new_flows_per_s bucket: give new_flows_per_s too");
    else if (auto x = integer(v["burst"], bp, 1, kMaxNewFlowsPerS, "burst"))
      rl.burst = static_cast<uint32_t>(*x);
  }
  if (bytes) {
    if (auto x = byte_amount(v["bytes_per_s"], join(path, "bytes_per_s"), "bytes_per_s")) {
      rl.bytes_per_s = *x;
      rl.bytes_burst = std::max(*x / 10, kMinDefaultBytesBurst);
    }
  }
  if (v.isMember("bytes_burst")) {
    const std::string bp = join(path, "bytes_burst");
    if (!bytes)
      add(bp, "bytes_burst is the depth of the bytes_per_s bucket: give bytes_per_s too");
    else if (auto x = byte_amount(v["bytes_burst"], bp, "bytes_burst"))
      rl.bytes_burst = *x;
  }
  if (v.isMember("per")) {
    if (auto p = per(v["per"], join(path, "per"))) rl.per = *p;
  }
  if (v.isMember("over")) {
    const std::string op = join(path, "over");
    if (is_string(v["over"], op)) {
      const std::string s = v["over"].asString();
      if (s == "deny")
        rl.over = Action::deny;
      else if (s == "reject")
        rl.over = Action::reject;
      else
        add(op, "unknown over action " + quote(s) +
                    " (expected deny or reject: what a new flow over the limit gets)");
    }
  }
  if (errors.size() != before) return std::nullopt;
  return rl;
}

std::optional<Quota> Validator::quota(const Json::Value& v, const std::string& path) {
  Quota q;
  if (v.type() == Json::intValue || v.type() == Json::uintValue) {
    auto x = integer(v, path, 1, kMaxRuleFlows, "max_flows");
    if (!x) return std::nullopt;
    q.count = static_cast<uint32_t>(*x);
    return q;
  }
  if (!v.isObject()) {
    add(path, std::string("must be an integer or an object {\"count\": N, \"per\": ...}, not ") +
                  type_name(v));
    return std::nullopt;
  }
  const size_t before = errors.size();
  check_fields(v, path, {"count", "per"});
  if (require(v, "count", path)) {
    if (auto x = integer(v["count"], join(path, "count"), 1, kMaxRuleFlows, "count"))
      q.count = static_cast<uint32_t>(*x);
  }
  if (v.isMember("per")) {
    if (auto p = per(v["per"], join(path, "per"))) q.per = *p;
  }
  if (errors.size() != before) return std::nullopt;
  return q;
}

std::optional<Rule> Validator::rule(const Json::Value& v, const std::string& path, bool report) {
  if (!is_object(v, path)) return std::nullopt;
  check_fields(v, path,
               {"id", "from", "proto", "ports", "to", "action", "rate_limit", "max_flows"});
  size_t before = errors.size();
  Rule r;
  r.path = path;
  rule_id(v, path, &r.id);
  from(v, path, &r.from_any, &r.from);
  if (v.isMember("proto")) {
    std::string pp = join(path, "proto");
    if (is_string(v["proto"], pp)) {
      std::string s = v["proto"].asString();
      if (s == "tcp")
        r.proto = Proto::tcp;
      else if (s == "udp")
        r.proto = Proto::udp;
      else if (s == "icmp")
        r.proto = Proto::icmp;
      else if (s != "any")
        add(pp, "unknown proto " + quote(s) + " (expected tcp, udp, icmp or any)");
    }
  }
  if (v.isMember("ports")) r.ports = ports(v["ports"], join(path, "ports"), r.proto);
  if (v.isMember("to")) to(v["to"], join(path, "to"), r);
  bool action_known = false;
  if (require(v, "action", path)) {
    if (auto a = action(v["action"], join(path, "action"), true)) {
      r.action = *a;
      action_known = true;
    }
  }
  if (v.isMember("rate_limit"))
    r.rate_limit = rate_limit(v["rate_limit"], join(path, "rate_limit"));
  if (v.isMember("max_flows")) r.max_flows = quota(v["max_flows"], join(path, "max_flows"));
  for (const char* key : {"rate_limit", "max_flows"}) {
    if (!v.isMember(key)) continue;
    if (report)
      add(join(path, key), std::string(key) +
                               " in a report-only ruleset would limit nothing: its rules never "
                               "decide a flow");
    else if (action_known && r.action != Action::allow)
      add(join(path, key), std::string(key) +
                               " applies to allow rules: a deny or reject rule has nothing to "
                               "limit");
  }
  if (errors.size() != before) return std::nullopt;
  return r;
}

void Validator::rulesets(const Json::Value& v, Policy& p) {
  const std::string path = "/rulesets";
  if (!is_array(v, path)) return;
  std::map<std::string, std::string> names;
  for (Json::ArrayIndex i = 0; i < v.size(); ++i) {
    std::string rp = join(path, i);
    const Json::Value& rs = v[i];
    if (!is_object(rs, rp)) continue;
    check_fields(rs, rp, {"name", "rules", "mode"});
    Ruleset out;
    if (rs.isMember("mode") && is_string(rs["mode"], join(rp, "mode"))) {
      const std::string m = rs["mode"].asString();
      if (m == "report")
        out.report = true;
      else if (m != "enforce")
        add(join(rp, "mode"), "unknown mode " + quote(m) + " (expected enforce or report)");
    }
    if (require(rs, "name", rp) && is_string(rs["name"], join(rp, "name"))) {
      out.name = rs["name"].asString();
      if (!valid_object_name(out.name)) {
        add(join(rp, "name"),
            "bad ruleset name " + quote(out.name) + " (expected [a-z0-9][a-z0-9_-]{0,62})");
      } else {
        auto [it, fresh] = names.emplace(out.name, rp);
        if (!fresh)
          add(join(rp, "name"),
              "duplicate ruleset name " + quote(out.name) + " (first at " + it->second + ")");
      }
    }
    if (require(rs, "rules", rp)) {
      std::string lp = join(rp, "rules");
      const Json::Value& rules = rs["rules"];
      if (is_array(rules, lp)) {
        for (Json::ArrayIndex k = 0; k < rules.size(); ++k)
          if (auto r = rule(rules[k], join(lp, k), out.report)) out.rules.push_back(std::move(*r));
      }
    }
    p.rulesets.push_back(std::move(out));
  }
}

void Validator::inspect(const Json::Value& v, Policy& p) {
  const std::string path = "/inspect";
  if (!is_array(v, path)) return;
  for (Json::ArrayIndex i = 0; i < v.size(); ++i) {
    std::string ip = join(path, i);
    const Json::Value& in = v[i];
    if (!is_object(in, ip)) continue;
    check_fields(in, ip, {"id", "from", "patterns", "action"});
    InspectRule r;
    r.path = ip;
    rule_id(in, ip, &r.id);
    from(in, ip, &r.from_any, &r.from);
    if (require(in, "patterns", ip)) {
      string_list(in["patterns"], join(ip, "patterns"), "pattern",
                  [&](const std::string& s, const std::string& pp) {
                    std::string why;
                    if (check_inspect_pattern(s, &why))
                      r.patterns.push_back(s);
                    else
                      add(pp, why);
                  });
    }
    if (require(in, "action", ip)) {
      if (auto a = action(in["action"], join(ip, "action"), false)) r.action = *a;
    }
    p.inspect.push_back(std::move(r));
  }
}

void Validator::limits(const Json::Value& v, Policy& p) {
  const std::string path = "/limits";
  if (!is_object(v, path)) return;
  struct Bound {
    const char* key;
    uint32_t Limits::*field;
    int64_t lo, hi;
  };
  static const Bound kBounds[] = {
      {"l7_max_bytes", &Limits::l7_max_bytes, 64, 65536},  // the dataplane's stream buffers
      {"l7_timeout_ms", &Limits::l7_timeout_ms, 1, 600000},
      {"tcp_syn_s", &Limits::tcp_syn_s, 1, 3600},
      {"tcp_established_s", &Limits::tcp_established_s, 1, 7 * 86400},
      {"tcp_closing_s", &Limits::tcp_closing_s, 1, 3600},
      {"udp_s", &Limits::udp_s, 1, 86400},
      {"icmp_s", &Limits::icmp_s, 1, 3600},
      {"max_flows", &Limits::max_flows, 1, 1 << 26},
      {"inspect_max_bytes", &Limits::inspect_max_bytes, 0, int64_t{1} << 31},  // 0: none
  };
  check_fields(v, path,
               {"l7_max_bytes", "l7_timeout_ms", "tcp_syn_s", "tcp_established_s", "tcp_closing_s",
                "udp_s", "icmp_s", "max_flows", "inspect_max_bytes"});
  for (const Bound& b : kBounds) {
    if (!v.isMember(b.key)) continue;
    if (auto x = integer(v[b.key], join(path, b.key), b.lo, b.hi, b.key))
      p.limits.*b.field = static_cast<uint32_t>(*x);
  }
}

// Turns jsoncpp's "* Line 3, Column 5\n  Message\n" into "line 3, column 5: Message".
// The JSON pointer of the value (or object key) at `offset` of `text`, found by a small
// scanner, for jsoncpp errors that only give a line and column (duplicate keys).
std::string json_pointer_at(std::string_view text, size_t offset) {
  struct Frame {
    bool object;
    size_t index = 0;
    std::string key;
    bool want_key = true;
  };
  std::vector<Frame> stack;
  auto read_string = [&](size_t& i) {  // i at the opening quote; leaves i at the closing one
    std::string out;
    for (++i; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) ++i;
      out += text[i];
    }
    return out;
  };
  for (size_t i = 0; i < text.size() && i <= offset; ++i) {
    const char c = text[i];
    if (c == '{' || c == '[') {
      stack.push_back({c == '{'});
    } else if ((c == '}' || c == ']') && !stack.empty() && i < offset) {
      stack.pop_back();
    } else if (c == ',' && !stack.empty()) {
      if (stack.back().object) {
        stack.back().want_key = true;
      } else {
        ++stack.back().index;
      }
    } else if (c == '"') {
      const bool key = !stack.empty() && stack.back().object && stack.back().want_key;
      std::string str = read_string(i);
      if (key) {
        stack.back().key = std::move(str);
        stack.back().want_key = false;
      }
    }
  }
  std::string path;
  for (const Frame& f : stack) {
    if (!f.object) {
      path += "/" + std::to_string(f.index);
    } else if (!f.key.empty()) {
      path += "/";
      for (char ch : f.key) path += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);
    }
  }
  return path;
}

// The byte offset of jsoncpp's "Line L, Column C" in text, or npos.
size_t offset_of(std::string_view text, const std::string& where) {
  unsigned line = 0, column = 0;
  if (sscanf(where.c_str(), "Line %u, Column %u", &line, &column) != 2 || line == 0 || column == 0)
    return std::string::npos;
  size_t off = 0;
  for (unsigned l = 1; l < line; ++l) {
    off = text.find('\n', off);
    if (off == std::string_view::npos) return std::string::npos;
    ++off;
  }
  off += column - 1;
  return off < text.size() ? off : std::string::npos;
}

std::vector<std::string> reader_messages(const std::string& errs) {
  std::vector<std::string> out;
  std::istringstream in(errs);
  std::string line, where;
  while (std::getline(in, line)) {
    if (line.rfind("* ", 0) == 0) {
      where = line.substr(2);
      if (!where.empty()) where[0] = static_cast<char>(tolower(where[0]));
      size_t c = where.find(", Column");
      if (c != std::string::npos) where.replace(c, 8, ", column");
    } else if (line.rfind("  ", 0) == 0 && line.find_first_not_of(' ') != std::string::npos) {
      std::string msg = line.substr(line.find_first_not_of(' '));
      if (msg.rfind("See ", 0) == 0) continue;  // "See Line N, Column M for detail."
      out.push_back(where.empty() ? msg : where + ": " + msg);
    }
  }
  if (out.empty() && !errs.empty()) out.push_back(errs);
  return out;
}

// What jsoncpp lets through although JSON forbids it: comments (it skips them even with
// allowComments=false) and raw control characters inside strings. Empty when clean.
std::string lexical_problem(std::string_view text) {
  bool in_string = false, escaped = false;
  size_t line = 1, column = 1;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    auto at = [&] { return "line " + std::to_string(line) + ", column " + std::to_string(column); };
    if (in_string) {
      if (c < 0x20)
        return "malformed JSON: " + at() + ": control character inside a string (escape it)";
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '/') {
      return "malformed JSON: " + at() + ": comments are not allowed";
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {};
}

}  // namespace

unsigned inspect_pattern_flags() {
  return HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL;
}

// Cheap checks only (hs_expression_info parses, it does not compile): what only a
// compile can refuse is refused by mgmt::compile_policy at the pattern's path.
bool check_inspect_pattern(std::string_view pattern, std::string* why) {
  return check_hs_pattern(pattern, inspect_pattern_flags(), kMaxInspectPatternLength,
                          kMaxInspectRepeat, "every payload: make it need at least one byte", why);
}

bool read_json_strict(std::string_view text, Json::Value* root, std::vector<Error>* errors) {
  size_t bad = 0;
  if (!valid_utf8(text, &bad)) {
    errors->push_back({"", "invalid UTF-8 at byte " + std::to_string(bad)});
    return false;
  }
  if (std::string lex = lexical_problem(text); !lex.empty()) {
    errors->push_back({"", lex});
    return false;
  }
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  builder["allowComments"] = false;
  builder["collectComments"] = false;
  builder["strictRoot"] = true;
  builder["rejectDupKeys"] = true;
  builder["failIfExtra"] = true;
  builder["allowSpecialFloats"] = false;
  builder["allowSingleQuotes"] = false;
  builder["allowNumericKeys"] = false;
  builder["allowDroppedNullPlaceholders"] = false;
  builder["stackLimit"] = kStackLimit;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  std::string errs;
  bool ok = false;
  try {
    ok = reader->parse(text.data(), text.data() + text.size(), root, &errs);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.find("stackLimit") != std::string::npos)
      what = "JSON nested deeper than " + std::to_string(kStackLimit) + " levels";
    errors->push_back({"", what});
    return false;
  }
  if (!ok) {
    // A duplicate key is named by its path; other syntax errors by line and column.
    std::istringstream raw(errs);
    std::string dup_path;
    for (std::string line, where; std::getline(raw, line);) {
      if (line.rfind("* ", 0) == 0) where = line.substr(2);
      if (line.find("Duplicate key") != std::string::npos) {
        const size_t off = offset_of(text, where);
        if (off != std::string::npos) dup_path = json_pointer_at(text, off);
        break;
      }
    }
    for (std::string& m : reader_messages(errs)) {
      const bool dup = m.find("Duplicate key") != std::string::npos;
      if (errors->size() < kMaxErrors)
        errors->push_back({dup ? dup_path : "", "malformed JSON: " + m});
    }
    if (errors->empty()) errors->push_back({"", "malformed JSON"});
    return false;
  }
  return true;
}

namespace {

ParseResult validate(std::string_view text) {
  ParseResult res;
  Json::Value root;
  if (!read_json_strict(text, &root, &res.errors)) return res;
  Validator val;
  val.check_strings(root, "");
  if (!val.errors.empty()) {
    res.errors = std::move(val.errors);
    return res;
  }
  if (!val.is_object(root, "")) {
    res.errors = std::move(val.errors);
    return res;
  }
  Policy p;
  val.check_fields(
      root, "",
      {"schema", "default_action", "services", "rulesets", "inspect", "limits", "established"});
  if (val.require(root, "schema", "") &&
      val.is_type(root["schema"], Json::intValue, "/schema", "an integer")) {
    const Json::Value& s = root["schema"];
    if (s.type() != Json::intValue || s.asInt64() != 1)
      val.add("/schema", "unsupported schema " +
                             (s.type() == Json::uintValue ? std::to_string(s.asUInt64())
                                                          : std::to_string(s.asInt64())) +
                             " (this version reads schema 1)");
  }
  if (root.isMember("default_action")) {
    if (auto a = val.action(root["default_action"], "/default_action", true)) p.default_action = *a;
  }
  if (root.isMember("services")) val.services(root["services"], p);
  if (root.isMember("rulesets")) val.rulesets(root["rulesets"], p);
  if (root.isMember("inspect")) val.inspect(root["inspect"], p);
  if (root.isMember("limits")) val.limits(root["limits"], p);
  if (root.isMember("established") && val.is_string(root["established"], "/established")) {
    std::string e = root["established"].asString();
    if (e == "keep")
      p.established_keep = true;
    else if (e != "reevaluate")
      val.add("/established", "unknown mode " + quote(e) + " (expected reevaluate or keep)");
  }
  res.errors = std::move(val.errors);
  if (res.errors.empty()) res.policy = std::move(p);
  return res;
}

}  // namespace

ParseResult parse_policy(std::string_view json_text) {
  try {
    return validate(json_text);
  } catch (const std::exception& e) {
    ParseResult res;
    res.errors.push_back({"", std::string("cannot read the document: ") + e.what()});
    return res;
  }
}

}  // namespace egw::rules
