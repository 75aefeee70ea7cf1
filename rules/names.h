// Shape checks for the strings of a policy document: UTF-8, DNS names, identifiers.
// Management side (egw-mgmt, egwctl); pure functions, no state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

struct hs_platform_info;

namespace egw::rules {

// True when s is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
// On failure *bad_offset is the byte offset of the first bad sequence.
bool valid_utf8(std::string_view s, size_t* bad_offset);

// Checks a to.domains literal: a DNS name, "*.name" or "*". Returns the normalized
// form (lower case, no trailing dot); on failure nullopt and *why says what is wrong.
std::optional<std::string> normalize_domain(std::string_view s, std::string* why);

// to.domain_regex bounds: pattern length, and the largest count of a bounded repeat.
constexpr size_t kMaxDomainRegexLength = 1024;
constexpr unsigned kMaxRegexRepeat = 1000;

// Byte offset of the first bounded repeat ({n}, {n,}, {n,m}) of pattern (PCRE syntax)
// counting over max_count, or npos; then *text is the repeat. Braces in escapes (\x{41},
// \Q...\E), character classes and (?#...) comments are not repeats. Shared by the
// to.domain_regex and inspect pattern checks.
size_t oversized_repeat(std::string_view pattern, unsigned max_count, std::string* text);

// Hyperscan flags (at validation and in the compiled database) and target platform (of
// the database) of every to.domain_regex pattern: single match, block mode, a generic
// x86-64 target (the same document compiles to the same bytes on any host, and runs on
// any CPU).
unsigned domain_regex_flags();
const hs_platform_info* domain_regex_platform();

// Checks a Hyperscan pattern compiled with `flags`: not empty, at most max_length bytes,
// no bounded repeat over max_repeat, Hyperscan parses it (hs_expression_info: syntax and
// unsupported constructs, not a full compile) and it cannot match the empty string
// (*why then ends with "...would match " + empty_hint). Shared by to.domain_regex and
// inspect patterns.
bool check_hs_pattern(std::string_view pattern, unsigned flags, size_t max_length,
                      unsigned max_repeat, const char* empty_hint, std::string* why);

// Checks a to.domain_regex pattern: length, bounded repeats, Hyperscan parses it
// (hs_expression_info: syntax and unsupported constructs, not a full compile), and it
// cannot match the empty string (it would match every name). On failure returns false
// and *why says what is wrong (quoting Hyperscan's message).
bool check_domain_regex(std::string_view pattern, std::string* why);

// Service and ruleset names: [a-z0-9][a-z0-9_-]{0,62}.
bool valid_object_name(std::string_view s);

// Rule ids: [A-Za-z0-9._:-]{1,63}.
bool valid_rule_id(std::string_view s);

}  // namespace egw::rules
