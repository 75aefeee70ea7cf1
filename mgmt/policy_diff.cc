// Rule-level diff of two validated policies (see policy_diff.h). Management side
// (egwctl, single-threaded); pure, never throws.
#include "mgmt/policy_diff.h"

#include <algorithm>
#include <map>
#include <set>

namespace egw::mgmt {
namespace {

using rules::Policy;

const char* action_name(rules::Action a) {
  switch (a) {
    case rules::Action::allow:
      return "allow";
    case rules::Action::deny:
      return "deny";
    case rules::Action::reject:
      return "reject";
  }
  return "?";
}

const char* proto_name(rules::Proto p) {
  switch (p) {
    case rules::Proto::any:
      return "any";
    case rules::Proto::icmp:
      return "icmp";
    case rules::Proto::tcp:
      return "tcp";
    case rules::Proto::udp:
      return "udp";
  }
  return "?";
}

const char* per_name(rules::LimitPer p) {
  return p == rules::LimitPer::source ? "source" : "service";
}

// A rule's rate_limit with its defaults resolved, so that spelling a default out or
// leaving it implicit is no change: "{new_flows_per_s 100, burst 200, per service, ...}".
std::string rate_limit_text(const std::optional<rules::RateLimit>& rl) {
  if (!rl) return "none";
  std::vector<std::string> parts;
  if (rl->new_flows_per_s > 0) {
    parts.push_back("new_flows_per_s " + std::to_string(rl->new_flows_per_s));
    parts.push_back("burst " + std::to_string(rl->burst));
  }
  if (rl->bytes_per_s > 0) {
    parts.push_back("bytes_per_s " + std::to_string(rl->bytes_per_s));
    parts.push_back("bytes_burst " + std::to_string(rl->bytes_burst));
  }
  parts.push_back(std::string("per ") + per_name(rl->per));
  parts.push_back(std::string("over ") + action_name(rl->over));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "{" : ", ") + p;
  return out + "}";
}

std::string quota_text(const std::optional<rules::Quota>& q) {
  if (!q) return "none";
  return std::to_string(q->count) + " per " + per_name(q->per);
}

const char* mode_name(bool report) {
  return report ? "report" : "enforce";
}

std::string port_text(const rules::PortRange& r) {
  return r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

std::vector<std::string> port_texts(const std::vector<rules::PortRange>& v) {
  std::vector<std::string> out;
  for (const auto& r : v) out.push_back(port_text(r));
  return out;
}

std::vector<std::string> cidr_texts(const std::vector<rules::Cidr>& v) {
  std::vector<std::string> out;
  for (const auto& c : v) out.push_back(rules::format_cidr(c));
  return out;
}

std::vector<std::string> from_texts(bool any, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  if (any) out.push_back("any");
  out.insert(out.end(), names.begin(), names.end());
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string list_text(const std::vector<std::string>& v) {
  return "[" + join(v) + "]";
}

// "NAME +a +b -c" for two lists compared as sets, or "" when they hold the same values.
// An empty list means "any" for ports and destinations: the text then says so.
std::string set_change(const char* name, const std::vector<std::string>& before,
                       const std::vector<std::string>& after, const char* empty_means = nullptr) {
  std::set<std::string> b(before.begin(), before.end()), a(after.begin(), after.end());
  if (a == b) return "";
  if (empty_means && (a.empty() || b.empty()))
    return std::string(name) + " " + (b.empty() ? empty_means : list_text(before)) + " -> " +
           (a.empty() ? empty_means : list_text(after));
  std::string out = name;
  for (const auto& s : after)
    if (!b.count(s)) out += " +" + s;
  for (const auto& s : before)
    if (!a.count(s)) out += " -" + s;
  return out;
}

template <typename T>
std::string scalar_change(const char* name, const T& before, const T& after) {
  if (before == after) return "";
  return std::string(name) + " " + before + " -> " + after;
}

void add_part(std::vector<std::string>* parts, std::string s) {
  if (!s.empty()) parts->push_back(std::move(s));
}

// Marks which elements keep their relative order: seq holds, in the new order, each
// common element's old index; the longest increasing subsequence stays, the rest moved.
std::vector<bool> kept_in_order(const std::vector<size_t>& seq) {
  std::vector<size_t> tail_idx;  // tail_idx[k]: index in seq ending an increasing run of k+1
  std::vector<size_t> prev(seq.size(), SIZE_MAX);
  for (size_t i = 0; i < seq.size(); ++i) {
    auto it = std::lower_bound(tail_idx.begin(), tail_idx.end(), seq[i],
                               [&](size_t idx, size_t v) { return seq[idx] < v; });
    size_t k = static_cast<size_t>(it - tail_idx.begin());
    if (k > 0) prev[i] = tail_idx[k - 1];
    if (it == tail_idx.end())
      tail_idx.push_back(i);
    else
      *it = i;
  }
  std::vector<bool> kept(seq.size(), false);
  for (size_t i = tail_idx.empty() ? SIZE_MAX : tail_idx.back(); i != SIZE_MAX; i = prev[i])
    kept[i] = true;
  return kept;
}

// Names of the elements of `after` (also in `before`) that moved relative to the others.
std::set<std::string> moved_names(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after) {
  std::map<std::string, size_t> old_index;
  for (size_t i = 0; i < before.size(); ++i) old_index.emplace(before[i], i);
  std::vector<size_t> seq;
  std::vector<std::string> names;
  for (const auto& n : after) {
    auto it = old_index.find(n);
    if (it == old_index.end()) continue;
    seq.push_back(it->second);
    names.push_back(n);
  }
  std::vector<bool> kept = kept_in_order(seq);
  std::set<std::string> out;
  for (size_t i = 0; i < names.size(); ++i)
    if (!kept[i]) out.insert(names[i]);
  return out;
}

std::string limit_text(const char* name, uint32_t v) {
  if (std::string(name) == "max_flows" && v == 0) return "auto";
  return std::to_string(v);
}

void diff_top(const Policy& b, const Policy& a, std::vector<DiffLine>* out) {
  if (b.schema != a.schema)
    out->push_back({'~', "schema", std::to_string(b.schema) + " -> " + std::to_string(a.schema)});
  if (b.default_action != a.default_action)
    out->push_back(
        {'~', "default_action",
         std::string(action_name(b.default_action)) + " -> " + action_name(a.default_action)});
  if (b.established_keep != a.established_keep)
    out->push_back({'~', "established",
                    std::string(b.established_keep ? "keep" : "reevaluate") + " -> " +
                        (a.established_keep ? "keep" : "reevaluate")});
  struct Field {
    const char* name;
    uint32_t rules::Limits::*member;
  };
  static const Field kFields[] = {
      {"l7_max_bytes", &rules::Limits::l7_max_bytes},
      {"l7_timeout_ms", &rules::Limits::l7_timeout_ms},
      {"tcp_syn_s", &rules::Limits::tcp_syn_s},
      {"tcp_established_s", &rules::Limits::tcp_established_s},
      {"tcp_closing_s", &rules::Limits::tcp_closing_s},
      {"udp_s", &rules::Limits::udp_s},
      {"icmp_s", &rules::Limits::icmp_s},
      {"max_flows", &rules::Limits::max_flows},
      {"inspect_max_bytes", &rules::Limits::inspect_max_bytes},
  };
  for (const Field& f : kFields) {
    uint32_t vb = b.limits.*f.member, va = a.limits.*f.member;
    if (vb != va)
      out->push_back({'~', std::string("limits.") + f.name,
                      limit_text(f.name, vb) + " -> " + limit_text(f.name, va)});
  }
}

void diff_services(const Policy& b, const Policy& a, std::vector<DiffLine>* out) {
  std::map<std::string, const rules::Service*> old_by_name;
  for (const auto& s : b.services) old_by_name.emplace(s.name, &s);
  std::set<std::string> seen;
  for (const auto& s : a.services) {
    seen.insert(s.name);
    auto it = old_by_name.find(s.name);
    if (it == old_by_name.end()) {
      out->push_back({'+', "service " + s.name, "cidrs " + list_text(cidr_texts(s.cidrs))});
      continue;
    }
    std::string change = set_change("cidrs", cidr_texts(it->second->cidrs), cidr_texts(s.cidrs));
    if (!change.empty()) out->push_back({'~', "service " + s.name, change});
  }
  for (const auto& s : b.services)
    if (!seen.count(s.name))
      out->push_back({'-', "service " + s.name, "cidrs " + list_text(cidr_texts(s.cidrs))});
}

std::vector<std::string> ruleset_names(const Policy& p) {
  std::vector<std::string> out;
  for (const auto& rs : p.rulesets) out.push_back(rs.name);
  return out;
}

void diff_rulesets(const Policy& b, const Policy& a, std::vector<DiffLine>* out) {
  std::map<std::string, size_t> old_index, new_index;
  for (size_t i = 0; i < b.rulesets.size(); ++i) old_index.emplace(b.rulesets[i].name, i);
  for (size_t i = 0; i < a.rulesets.size(); ++i) new_index.emplace(a.rulesets[i].name, i);
  std::set<std::string> moved = moved_names(ruleset_names(b), ruleset_names(a));
  for (size_t i = 0; i < a.rulesets.size(); ++i) {
    const auto& rs = a.rulesets[i];
    auto it = old_index.find(rs.name);
    std::string at = "/rulesets/" + std::to_string(i);
    if (it == old_index.end()) {
      out->push_back({'+', "ruleset " + rs.name,
                      "at " + at + ", " + std::to_string(rs.rules.size()) + " rules" +
                          (rs.report ? ", mode report" : "")});
      continue;
    }
    std::vector<std::string> parts;
    if (moved.count(rs.name))
      parts.push_back("moved /rulesets/" + std::to_string(it->second) + " -> " + at);
    add_part(&parts, scalar_change("mode", std::string(mode_name(b.rulesets[it->second].report)),
                                   std::string(mode_name(rs.report))));
    if (!parts.empty()) out->push_back({'~', "ruleset " + rs.name, join(parts, "; ")});
  }
  for (size_t i = 0; i < b.rulesets.size(); ++i) {
    const auto& rs = b.rulesets[i];
    if (!new_index.count(rs.name))
      out->push_back({'-', "ruleset " + rs.name,
                      "was /rulesets/" + std::to_string(i) + ", " +
                          std::to_string(rs.rules.size()) + " rules" +
                          (rs.report ? ", mode report" : "")});
  }
}

struct RuleRef {
  const rules::Rule* rule;
  std::string ruleset;
};

std::map<std::string, RuleRef> rules_by_id(const Policy& p) {
  std::map<std::string, RuleRef> out;
  for (const auto& rs : p.rulesets)
    for (const auto& r : rs.rules) out.emplace(r.id, RuleRef{&r, rs.name});
  return out;
}

// What a rule matches, in one line: "from [web] tcp ports [80] to cidrs [..] -> allow".
std::string rule_summary(const rules::Rule& r) {
  std::string s =
      "from " + list_text(from_texts(r.from_any, r.from)) + " proto " + proto_name(r.proto);
  if (!r.ports.empty()) s += " ports " + list_text(port_texts(r.ports));
  if (!r.to_cidrs.empty()) s += " to.cidrs " + list_text(cidr_texts(r.to_cidrs));
  if (!r.to_domains.empty()) s += " to.domains " + list_text(r.to_domains);
  if (!r.to_domain_regex.empty()) s += " to.domain_regex " + list_text(r.to_domain_regex);
  s += std::string(" action ") + action_name(r.action);
  if (r.rate_limit) s += " rate_limit " + rate_limit_text(r.rate_limit);
  if (r.max_flows) s += " max_flows " + quota_text(r.max_flows);
  return s;
}

std::vector<std::string> rule_field_changes(const rules::Rule& b, const rules::Rule& a) {
  std::vector<std::string> parts;
  add_part(&parts,
           set_change("from", from_texts(b.from_any, b.from), from_texts(a.from_any, a.from)));
  add_part(&parts, scalar_change("proto", std::string(proto_name(b.proto)),
                                 std::string(proto_name(a.proto))));
  add_part(&parts, set_change("ports", port_texts(b.ports), port_texts(a.ports), "any"));
  add_part(&parts, set_change("to.cidrs", cidr_texts(b.to_cidrs), cidr_texts(a.to_cidrs), "any"));
  add_part(&parts, set_change("to.domains", b.to_domains, a.to_domains, "none"));
  add_part(&parts, set_change("to.domain_regex", b.to_domain_regex, a.to_domain_regex, "none"));
  add_part(&parts, scalar_change("action", std::string(action_name(b.action)),
                                 std::string(action_name(a.action))));
  add_part(&parts, scalar_change("rate_limit", rate_limit_text(b.rate_limit),
                                 rate_limit_text(a.rate_limit)));
  add_part(&parts, scalar_change("max_flows", quota_text(b.max_flows), quota_text(a.max_flows)));
  return parts;
}

void diff_rules(const Policy& b, const Policy& a, std::vector<DiffLine>* out) {
  std::map<std::string, RuleRef> old_rules = rules_by_id(b), new_rules = rules_by_id(a);
  // Moves inside a ruleset: among the rules that stay in the same ruleset.
  std::map<std::string, const rules::Ruleset*> old_sets;
  for (const auto& ors : b.rulesets) old_sets.emplace(ors.name, &ors);
  std::set<std::string> moved;
  for (const auto& rs : a.rulesets) {
    auto old_set = old_sets.find(rs.name);
    if (old_set == old_sets.end()) continue;
    std::vector<std::string> before_ids, after_ids;
    for (const auto& r : rs.rules) {
      auto it = old_rules.find(r.id);
      if (it != old_rules.end() && it->second.ruleset == rs.name) after_ids.push_back(r.id);
    }
    for (const auto& r : old_set->second->rules) {
      auto it = new_rules.find(r.id);
      if (it != new_rules.end() && it->second.ruleset == rs.name) before_ids.push_back(r.id);
    }
    std::set<std::string> m = moved_names(before_ids, after_ids);
    moved.insert(m.begin(), m.end());
  }
  for (const auto& rs : a.rulesets) {
    for (const auto& r : rs.rules) {
      std::string subject = "rule " + rs.name + "/" + r.id;
      auto it = old_rules.find(r.id);
      if (it == old_rules.end()) {
        out->push_back({'+', subject, "at " + r.path + ": " + rule_summary(r)});
        continue;
      }
      std::vector<std::string> parts;
      if (it->second.ruleset != rs.name)
        parts.push_back("ruleset " + it->second.ruleset + " -> " + rs.name + " (" +
                        it->second.rule->path + " -> " + r.path + ")");
      else if (moved.count(r.id))
        parts.push_back("moved " + it->second.rule->path + " -> " + r.path);
      std::vector<std::string> fields = rule_field_changes(*it->second.rule, r);
      parts.insert(parts.end(), fields.begin(), fields.end());
      if (!parts.empty()) out->push_back({'~', subject, join(parts, "; ")});
    }
  }
  for (const auto& rs : b.rulesets)
    for (const auto& r : rs.rules)
      if (!new_rules.count(r.id))
        out->push_back(
            {'-', "rule " + rs.name + "/" + r.id, "was " + r.path + ": " + rule_summary(r)});
}

std::string inspect_summary(const rules::InspectRule& r) {
  return "from " + list_text(from_texts(r.from_any, r.from)) + " patterns " +
         list_text(r.patterns) + " action " + action_name(r.action);
}

void diff_inspect(const Policy& b, const Policy& a, std::vector<DiffLine>* out) {
  std::map<std::string, const rules::InspectRule*> old_by_id;
  std::vector<std::string> before_ids, after_ids;
  for (const auto& r : b.inspect) {
    old_by_id.emplace(r.id, &r);
    before_ids.push_back(r.id);
  }
  std::set<std::string> new_ids;
  for (const auto& r : a.inspect) {
    new_ids.insert(r.id);
    after_ids.push_back(r.id);
  }
  std::set<std::string> moved = moved_names(before_ids, after_ids);
  for (const auto& r : a.inspect) {
    auto it = old_by_id.find(r.id);
    if (it == old_by_id.end()) {
      out->push_back({'+', "inspect " + r.id, "at " + r.path + ": " + inspect_summary(r)});
      continue;
    }
    const rules::InspectRule& o = *it->second;
    std::vector<std::string> parts;
    if (moved.count(r.id)) parts.push_back("moved " + o.path + " -> " + r.path);
    add_part(&parts,
             set_change("from", from_texts(o.from_any, o.from), from_texts(r.from_any, r.from)));
    add_part(&parts, set_change("patterns", o.patterns, r.patterns));
    add_part(&parts, scalar_change("action", std::string(action_name(o.action)),
                                   std::string(action_name(r.action))));
    if (!parts.empty()) out->push_back({'~', "inspect " + r.id, join(parts, "; ")});
  }
  for (const auto& r : b.inspect)
    if (!new_ids.count(r.id))
      out->push_back({'-', "inspect " + r.id, "was " + r.path + ": " + inspect_summary(r)});
}

}  // namespace

std::vector<DiffLine> diff_policies(const Policy& before, const Policy& after) {
  std::vector<DiffLine> out;
  diff_top(before, after, &out);
  diff_services(before, after, &out);
  diff_rulesets(before, after, &out);
  diff_rules(before, after, &out);
  diff_inspect(before, after, &out);
  return out;
}

std::string format_diff_line(const DiffLine& line) {
  std::string s(1, line.kind);
  s += " " + line.subject;
  if (!line.detail.empty()) s += ": " + line.detail;
  return s;
}

}  // namespace egw::mgmt
