// Rule-level diff of two validated policies, for `egwctl diff`. Management side
// (egwctl, single-threaded); pure functions, never throw.
#pragma once

#include <string>
#include <vector>

#include "rules/policy.h"

namespace egw::mgmt {

// One difference. kind is '+' (added), '-' (removed) or '~' (changed or moved);
// subject names the object ("rule payments-egress/stripe", "service ci",
// "default_action"); detail says what changed ("ports +8443; action allow -> deny").
struct DiffLine {
  char kind = '~';
  std::string subject;
  std::string detail;
  bool operator==(const DiffLine&) const = default;
};

// Compares before (the active policy) with after (the candidate), semantically: the
// order of JSON keys and of set-like lists (CIDRs, ports, names, patterns, from) does
// not count; the order of rulesets, of rules inside a ruleset and of inspect rules does.
// Rules and inspect rules are matched by id, rulesets and services by name. Lines come
// in a fixed order: top-level settings, services, rulesets, rules, inspect rules.
std::vector<DiffLine> diff_policies(const rules::Policy& before, const rules::Policy& after);

// "~ rule payments-egress/stripe: ports +8443"
std::string format_diff_line(const DiffLine& line);

}  // namespace egw::mgmt
