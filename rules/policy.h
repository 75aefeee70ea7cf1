// The policy document (schema 1): model, parser and validator.
// Management side (egw-mgmt, egwctl); never linked into worker lcores.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace Json {
class Value;
}

namespace egw::rules {

enum class Action : uint8_t { allow = 0, deny = 1, reject = 2 };
enum class Proto : uint8_t { any = 0, icmp = 1, tcp = 6, udp = 17 };

struct Cidr {
  uint8_t family = 4;  // 4 or 6
  uint8_t prefix = 0;
  std::array<uint8_t, 16> addr{};  // network byte order; host bits are zero
  bool operator==(const Cidr&) const = default;
};

struct PortRange {
  uint16_t lo = 0, hi = 0;  // inclusive
  bool operator==(const PortRange&) const = default;
};

struct Service {
  std::string name;
  std::vector<Cidr> cidrs;
};

// What a rule's limits are counted per: the rule and the flow's source service, or the
// rule and the flow's inside address.
enum class LimitPer : uint8_t { service = 0, source = 1 };

// "rate_limit" of an allow rule. A rate of 0 is absent (the document requires >= 1);
// at least one of the two is set. Defaults are resolved here: the compiler copies.
struct RateLimit {
  uint32_t new_flows_per_s = 0;
  uint32_t burst = 0;        // new flows at once; set with new_flows_per_s
  uint64_t bytes_per_s = 0;  // bytes (not bits) per second, each direction separately
  uint64_t bytes_burst = 0;  // set with bytes_per_s
  LimitPer per = LimitPer::service;
  Action over = Action::reject;  // deny or reject: a new flow over the rate (or quota)
  bool operator==(const RateLimit&) const = default;
};

// "max_flows" of an allow rule: concurrent flows per key.
struct Quota {
  uint32_t count = 0;  // >= 1
  LimitPer per = LimitPer::service;
  bool operator==(const Quota&) const = default;
};

constexpr uint32_t kMaxNewFlowsPerS = 10000000;    // new_flows_per_s and burst
constexpr uint64_t kMaxBytesPerS = 100000000000;   // 100G: bytes_per_s and bytes_burst
constexpr uint64_t kMinDefaultBytesBurst = 65536;  // bytes_burst default: max(rate/10, this)
constexpr uint32_t kMaxRuleFlows = 100000000;      // max_flows of a rule

struct Rule {
  std::string id;
  std::string path;               // JSON path of the rule, e.g. /rulesets/0/rules/2
  bool from_any = false;          // "any" in from
  std::vector<std::string> from;  // service names (without "any")
  Proto proto = Proto::any;
  std::vector<PortRange> ports;              // empty = any port
  std::vector<Cidr> to_cidrs;                // empty = any destination
  std::vector<std::string> to_domains;       // normalized: "name", "*.suffix" or "*"
  std::vector<std::string> to_domain_regex;  // each parses alone (check_domain_regex)
  Action action = Action::deny;
  std::optional<RateLimit> rate_limit;  // allow rules of enforcing rulesets only
  std::optional<Quota> max_flows;       // likewise; a new flow over it gets rate_limit's
                                        // "over" action (reject without rate_limit)
};

struct Ruleset {
  std::string name;
  std::vector<Rule> rules;
  bool report = false;  // "mode": "report": evaluated beside, never deciding a flow
};

struct InspectRule {
  std::string id;
  std::string path;
  bool from_any = false;
  std::vector<std::string> from;
  std::vector<std::string> patterns;  // each checked alone (check_inspect_pattern)
  Action action = Action::deny;
};

// Inspect pattern bounds (those of to.domain_regex) and Hyperscan flags, at validation
// and in the compiled stream database: one report per pattern and flow, and `.` matches
// any byte (a payload is not made of lines).
constexpr size_t kMaxInspectPatternLength = 1024;
constexpr unsigned kMaxInspectRepeat = 1000;
unsigned inspect_pattern_flags();

// Checks an inspect pattern: length, bounded repeats, Hyperscan accepts it, and it
// cannot match the empty string (it would match every payload). On failure returns
// false and *why says what is wrong (quoting Hyperscan's message).
bool check_inspect_pattern(std::string_view pattern, std::string* why);

struct Limits {
  uint32_t l7_max_bytes = 16384;
  uint32_t l7_timeout_ms = 5000;
  uint32_t tcp_syn_s = 30;
  uint32_t tcp_established_s = 3600;
  uint32_t tcp_closing_s = 30;
  uint32_t udp_s = 60;
  uint32_t icmp_s = 30;
  uint32_t max_flows = 0;                // 0 = from the dataplane's configured memory
  uint32_t inspect_max_bytes = 1048576;  // outbound payload bytes inspected per flow; 0 = none
};

struct Policy {
  int schema = 1;
  Action default_action = Action::deny;
  std::vector<Service> services;  // in document order
  std::vector<Ruleset> rulesets;
  std::vector<InspectRule> inspect;
  Limits limits;
  bool established_keep = false;  // "established": "keep"
};

// One problem found in a document: where (a JSON pointer, "" for the root) and what.
struct Error {
  std::string path;
  std::string message;
};

constexpr size_t kMaxErrors = 100;

struct ParseResult {
  std::optional<Policy> policy;  // set only when errors is empty
  std::vector<Error> errors;     // every problem found, up to kMaxErrors
};

// Parses and validates a policy document. Never throws.
ParseResult parse_policy(std::string_view json_text);

// Reads JSON text the strict way every egw input is read: valid UTF-8, no comments
// or raw control characters, no duplicate keys, nesting at most 64 deep, one root
// value. On failure returns false and appends the problems (path "") to *errors.
bool read_json_strict(std::string_view text, Json::Value* root, std::vector<Error>* errors);

// Parses "198.18.1.0/24" or "2001:2::/48" (strict: host bits must be zero).
// On failure returns nullopt and sets *why.
std::optional<Cidr> parse_cidr(std::string_view text, std::string* why);
std::string format_cidr(const Cidr& c);

}  // namespace egw::rules
