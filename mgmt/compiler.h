// Policy compiler: a validated rules::Policy -> the blob of dataplane/policy_abi.h.
// Management side (egw-mgmt request threads, egwctl); pure, never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/policy.h"

namespace Json {
class Value;
}

namespace egw::mgmt {

struct CompileStats {
  size_t services = 0;
  size_t service_cidrs = 0;
  size_t rulesets = 0;
  size_t rules = 0;
  size_t domains = 0;  // to.domains entries, over all rules
  size_t regexes = 0;  // to.domain_regex patterns, over all rules
  size_t inspect_rules = 0;
  size_t inspect_patterns = 0;    // patterns over all inspect rules
  size_t rate_limited_rules = 0;  // rules with rate_limit
  size_t max_flows_rules = 0;     // rules with max_flows
  size_t report_rules = 0;        // rules of "mode": "report" rulesets
};

struct CompileResult {
  std::string blob;                  // empty when errors is not
  std::vector<rules::Error> errors;  // every problem found, up to rules::kMaxErrors
  CompileStats stats;
};

// domain_regex patterns per Hyperscan database of section 10 (abi::RegexDbHeader): well
// below where a set of one shape falls off Hyperscan's cliff (^[a-z0-9-]+\.svcN\.example
// \.org$: 0.1 us a hit at 5 000 patterns, 25 us at 6 000), few enough that a part
// compiles in seconds (4 s; 10 s at 4 000), many enough that a name scans few parts
// (10 000 patterns: 4). The set is cut into equal parts of at most this.
constexpr size_t kRegexPartPatterns = 2500;

// Compiles policy (already validated) into a blob. source_document is the JSON text it
// was parsed from (its SHA-256 goes into the header); policy_version is 0 offline.
// Refuses, with one error per path, what does not compile: a domain_regex or inspect
// pattern set Hyperscan refuses as a whole, an inspect stream state over the per-flow block.
// regex_part_patterns: tests make small parts with it.
CompileResult compile_policy(const rules::Policy& policy, std::string_view source_document,
                             uint64_t policy_version,
                             size_t regex_part_patterns = kRegexPartPatterns);

// The compile statistics as egw's JSON answers carry them (the "stats" object of
// POST /v1/policy/validate, PUT /v1/policy, ...): counts and compiled_bytes.
Json::Value compile_stats_json(const CompileResult& cr);

// Parses, validates and compiles a document; returns every error of the first stage
// that failed.
CompileResult compile_document(std::string_view json, uint64_t policy_version);

}  // namespace egw::mgmt
