// Shape checks for the strings of a policy document: UTF-8, DNS names, identifiers.
// Management side (egw-mgmt, egwctl); pure functions, no state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace egw::rules {

// True when s is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
// On failure *bad_offset is the byte offset of the first bad sequence.
bool valid_utf8(std::string_view s, size_t* bad_offset);

// Checks a to.domains literal: a DNS name, "*.name" or "*". Returns the normalized
// form (lower case, no trailing dot); on failure nullopt and *why says what is wrong.
std::optional<std::string> normalize_domain(std::string_view s, std::string* why);

// Service and ruleset names: [a-z0-9][a-z0-9_-]{0,62}.
bool valid_object_name(std::string_view s);

// Rule ids: [A-Za-z0-9._:-]{1,63}.
bool valid_rule_id(std::string_view s);

}  // namespace egw::rules
