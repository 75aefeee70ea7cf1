// Tests for mgmt/policy_diff.cc: a table of {description, before, after, expected lines};
// documents are parsed with rules::parse_policy first, as egwctl diff does.
#include "mgmt/policy_diff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace egw::mgmt {
namespace {

constexpr const char* kBase = R"({
  "schema": 1,
  "default_action": "deny",
  "services": {
    "web": { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] },
    "ci":  { "cidrs": ["198.18.2.0/24"] }
  },
  "rulesets": [
    { "name": "egress",
      "rules": [
        { "id": "dns", "from": ["any"], "proto": "udp", "ports": [53],
          "to": { "cidrs": ["198.19.0.53/32"] }, "action": "allow" },
        { "id": "http", "from": ["web"], "proto": "tcp", "ports": [80, 8080],
          "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" },
        { "id": "ping", "from": ["web"], "proto": "icmp", "action": "allow" }
      ] },
    { "name": "blocks",
      "rules": [
        { "id": "no-other", "from": ["any"], "to": { "cidrs": ["198.19.2.0/24"] },
          "action": "reject" }
      ] }
  ]
})";

// s with one textual replacement (from must occur exactly once).
std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(s.find(from, at + 1), std::string::npos) << from << " is not unique";
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// kBase with one textual replacement.
std::string edit(const std::string& from, const std::string& to) {
  return replace_once(kBase, from, to);
}

rules::Policy parse(const std::string& doc) {
  rules::ParseResult r = rules::parse_policy(doc);
  std::string errs;
  for (const auto& e : r.errors) errs += e.path + ": " + e.message + "\n";
  EXPECT_TRUE(r.policy.has_value()) << errs << doc;
  return r.policy.value_or(rules::Policy{});
}

struct Case {
  const char* description;
  std::string before, after;
  std::vector<std::string> expected;
};

std::vector<Case> cases() {
  const std::string rule_http =
      R"({ "id": "http", "from": ["web"], "proto": "tcp", "ports": [80, 8080],
          "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" },)";
  const std::string rule_dns =
      R"({ "id": "dns", "from": ["any"], "proto": "udp", "ports": [53],
          "to": { "cidrs": ["198.19.0.53/32"] }, "action": "allow" },)";
  // http taken out and put back after ping, the last rule of egress.
  std::string moved_rule = replace_once(
      edit(rule_http, ""), R"("proto": "icmp", "action": "allow" })",
      R"("proto": "icmp", "action": "allow" }, )" + rule_http.substr(0, rule_http.size() - 1));
  std::string rulesets_swapped = R"({"schema":1,"default_action":"deny",
    "services":{"web":{"cidrs":["198.18.1.0/24","2001:2:0:1::/64"]},"ci":{"cidrs":["198.18.2.0/24"]}},
    "rulesets":[
      {"name":"blocks","rules":[{"id":"no-other","from":["any"],"to":{"cidrs":["198.19.2.0/24"]},"action":"reject"}]},
      {"name":"egress","rules":[
        {"id":"dns","from":["any"],"proto":"udp","ports":[53],"to":{"cidrs":["198.19.0.53/32"]},"action":"allow"},
        {"id":"http","from":["web"],"proto":"tcp","ports":[80,8080],"to":{"cidrs":["198.19.1.0/24"]},"action":"allow"},
        {"id":"ping","from":["web"],"proto":"icmp","action":"allow"}]}]})";
  // Same content: every object's keys in another order, set-like lists reordered.
  std::string reordered = R"({"rulesets":[
      {"rules":[
        {"action":"allow","to":{"cidrs":["198.19.0.53/32"]},"ports":[53],"proto":"udp","from":["any"],"id":"dns"},
        {"to":{"cidrs":["198.19.1.0/24"]},"id":"http","action":"allow","ports":[8080,80],"from":["web"],"proto":"tcp"},
        {"proto":"icmp","action":"allow","id":"ping","from":["web"]}],"name":"egress"},
      {"name":"blocks","rules":[{"to":{"cidrs":["198.19.2.0/24"]},"action":"reject","from":["any"],"id":"no-other"}]}],
    "services":{"ci":{"cidrs":["198.18.2.0/24"]},"web":{"cidrs":["2001:2:0:1::/64","198.18.1.0/24"]}},
    "default_action":"deny","schema":1})";
  // http with these members after its action.
  auto http_with = [](const std::string& extra) {
    return edit(R"("to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" })",
                R"("to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow", )" + extra + " }");
  };
  return {
      {"identical documents", kBase, kBase, {}},
      {"reordered keys and set-like lists are no change", kBase, reordered, {}},
      {"explicit defaults equal omitted ones",
       kBase,
       edit(R"("default_action": "deny",)",
            R"("default_action": "deny", "established": "reevaluate", "limits": {"udp_s": 60},)"),
       {}},
      {"default_action change",
       kBase,
       edit(R"("default_action": "deny")", R"("default_action": "allow")"),
       {"~ default_action: deny -> allow"}},
      {"established and limits",
       kBase,
       edit(
           R"("default_action": "deny",)",
           R"("default_action": "deny", "established": "keep", "limits": {"udp_s": 120, "max_flows": 1000},)"),
       {"~ established: reevaluate -> keep", "~ limits.udp_s: 60 -> 120",
        "~ limits.max_flows: auto -> 1000"}},
      {"inspect_max_bytes changed, to none",
       kBase,
       edit(R"("default_action": "deny",)",
            R"("default_action": "deny", "limits": {"inspect_max_bytes": 0},)"),
       {"~ limits.inspect_max_bytes: 1048576 -> 0"}},
      {"rule added at the end of a ruleset",
       kBase,
       edit(R"("proto": "icmp", "action": "allow" })",
            R"("proto": "icmp", "action": "allow" },
               { "id": "ntp", "from": ["ci"], "proto": "udp", "ports": [123], "action": "allow" })"),
       {"+ rule egress/ntp: at /rulesets/0/rules/3: from [ci] proto udp ports [123] action allow"}},
      {"rule added in the middle does not make the others 'moved'",
       kBase,
       edit(rule_http,
            R"({ "id": "ntp", "from": ["ci"], "proto": "udp", "ports": [123], "action": "deny" },
        )" + rule_http),
       {"+ rule egress/ntp: at /rulesets/0/rules/1: from [ci] proto udp ports [123] action deny"}},
      {"rule removed",
       kBase,
       edit(rule_http, ""),
       {"- rule egress/http: was /rulesets/0/rules/1: from [web] proto tcp ports [80, 8080] "
        "to.cidrs [198.19.1.0/24] action allow"}},
      {"rule fields changed",
       kBase,
       edit(R"("ports": [80, 8080],
          "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow")",
            R"("ports": [80, 443],
          "to": { "cidrs": ["198.19.1.0/24", "198.19.3.0/24"], "domains": ["a.example"] },
          "action": "deny")"),
       {"~ rule egress/http: ports +443 -8080; to.cidrs +198.19.3.0/24; "
        "to.domains none -> [a.example]; action allow -> deny"}},
      {"rule from and proto changed, ports dropped to any",
       kBase,
       edit(R"("id": "dns", "from": ["any"], "proto": "udp", "ports": [53],)",
            R"("id": "dns", "from": ["web", "ci"], "proto": "any",)"),
       {"~ rule egress/dns: from +web +ci -any; proto udp -> any; ports [53] -> any"}},
      {"rule moved inside its ruleset",
       kBase,
       moved_rule,
       // http went down one place, or ping up one: the same order; the diff keeps the
       // longest run in order and names the other as moved.
       {"~ rule egress/ping: moved /rulesets/0/rules/2 -> /rulesets/0/rules/1"}},
      {"rule moved to another ruleset",
       kBase,
       replace_once(edit(rule_http, ""), R"("action": "reject" })",
                    R"("action": "reject" }, )" + rule_http.substr(0, rule_http.size() - 1)),
       {"~ rule blocks/http: ruleset egress -> blocks (/rulesets/0/rules/1 -> "
        "/rulesets/1/rules/1)"}},
      {"rulesets swapped: one reported as moved",
       kBase,
       rulesets_swapped,
       {"~ ruleset blocks: moved /rulesets/1 -> /rulesets/0"}},
      {"ruleset added and removed",
       kBase,
       edit(R"("name": "blocks")", R"("name": "blocks-v2")"),
       {"+ ruleset blocks-v2: at /rulesets/1, 1 rules",
        "- ruleset blocks: was /rulesets/1, 1 rules",
        "~ rule blocks-v2/no-other: ruleset blocks -> blocks-v2 (/rulesets/1/rules/0 -> "
        "/rulesets/1/rules/0)"}},
      {"service CIDRs added and removed",
       kBase,
       edit(R"("ci":  { "cidrs": ["198.18.2.0/24"] })",
            R"("ci":  { "cidrs": ["198.18.3.0/24", "2001:2:0:3::/64"] })"),
       {"~ service ci: cidrs +198.18.3.0/24 +2001:2:0:3::/64 -198.18.2.0/24"}},
      {"service added and removed",
       kBase,
       edit(R"("ci":  { "cidrs": ["198.18.2.0/24"] })",
            R"("build":  { "cidrs": ["198.18.2.0/24"] })"),
       {"+ service build: cidrs [198.18.2.0/24]", "- service ci: cidrs [198.18.2.0/24]"}},
      {"inspect rule added",
       kBase,
       edit(R"("default_action": "deny",)",
            R"("default_action": "deny", "inspect": [{ "id": "keys", "from": ["any"],
               "patterns": ["AKIA[0-9A-Z]{16}"], "action": "reject" }],)"),
       {"+ inspect keys: at /inspect/0: from [any] patterns [AKIA[0-9A-Z]{16}] action reject"}},
      {"rate_limit added",
       kBase,
       http_with(R"("rate_limit": {"new_flows_per_s": 10})"),
       {"~ rule egress/http: rate_limit none -> {new_flows_per_s 10, burst 10, per service, "
        "over reject}"}},
      {"rate_limit defaults spelt out are no change",
       http_with(R"("rate_limit": {"bytes_per_s": "10M"})"),
       http_with(R"("rate_limit": {"bytes_per_s": 10000000, "bytes_burst": "1M",
                                   "per": "service", "over": "reject"})"),
       {}},
      {"rate_limit changed",
       http_with(R"("rate_limit": {"bytes_per_s": "10M"})"),
       http_with(R"("rate_limit": {"bytes_per_s": "20M", "over": "deny"})"),
       {"~ rule egress/http: rate_limit {bytes_per_s 10000000, bytes_burst 1000000, per service, "
        "over reject} -> {bytes_per_s 20000000, bytes_burst 2000000, per service, over deny}"}},
      {"max_flows added",
       kBase,
       http_with(R"("max_flows": 100)"),
       {"~ rule egress/http: max_flows none -> 100 per service"}},
      {"max_flows keyed per source",
       http_with(R"("max_flows": 100)"),
       http_with(R"("max_flows": {"count": 100, "per": "source"})"),
       {"~ rule egress/http: max_flows 100 per service -> 100 per source"}},
      {"limits removed",
       http_with(R"("max_flows": 5, "rate_limit": {"new_flows_per_s": 1, "burst": 3})"),
       kBase,
       {"~ rule egress/http: rate_limit {new_flows_per_s 1, burst 3, per service, over reject} "
        "-> none; max_flows 5 per service -> none"}},
      {"ruleset mode changed",
       kBase,
       edit(R"("name": "blocks",)", R"("name": "blocks", "mode": "report",)"),
       {"~ ruleset blocks: mode enforce -> report"}},
      {"explicit enforce is no change",
       kBase,
       edit(R"("name": "blocks",)", R"("name": "blocks", "mode": "enforce",)"),
       {}},
      {"report ruleset added, a rule with limits in the summary",
       kBase,
       edit(R"("action": "reject" }
      ] })",
            R"("action": "reject" }
      ] },
    { "name": "audit", "mode": "report",
      "rules": [ { "id": "would-deny", "from": ["ci"], "action": "deny" } ] })"),
       {"+ ruleset audit: at /rulesets/2, 1 rules, mode report",
        "+ rule audit/would-deny: at /rulesets/2/rules/0: from [ci] proto any action deny"}},
      {"new rule with limits: in its summary",
       kBase,
       edit(R"("proto": "icmp", "action": "allow" })",
            R"("proto": "icmp", "action": "allow" },
               { "id": "ntp", "from": ["ci"], "action": "allow", "max_flows": 2,
                 "rate_limit": {"new_flows_per_s": 4, "per": "source"} })"),
       {"+ rule egress/ntp: at /rulesets/0/rules/3: from [ci] proto any action allow "
        "rate_limit {new_flows_per_s 4, burst 4, per source, over reject} max_flows 2 per "
        "service"}},
  };
}

TEST(PolicyDiff, Table) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.description);
    std::vector<DiffLine> lines = diff_policies(parse(c.before), parse(c.after));
    std::vector<std::string> got;
    for (const auto& l : lines) got.push_back(format_diff_line(l));
    EXPECT_EQ(got, c.expected);
  }
}

TEST(PolicyDiff, ReverseOfAddIsRemove) {
  rules::Policy a = parse(kBase), b = parse(kBase);
  b.rulesets[0].rules.pop_back();
  std::vector<DiffLine> fwd = diff_policies(a, b), back = diff_policies(b, a);
  ASSERT_EQ(fwd.size(), 1u);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(fwd[0].kind, '-');
  EXPECT_EQ(back[0].kind, '+');
  EXPECT_EQ(fwd[0].subject, back[0].subject);
}

TEST(PolicyDiff, EmptyBeforeListsEverythingAsAdded) {
  rules::Policy empty;
  std::vector<DiffLine> lines = diff_policies(empty, parse(kBase));
  size_t added = 0;
  for (const auto& l : lines) added += l.kind == '+';
  EXPECT_EQ(added, lines.size());
  EXPECT_EQ(lines.size(), 2u + 2u + 4u);  // services, rulesets, rules
}

}  // namespace
}  // namespace egw::mgmt
