// Tests for rules/names.cc: oversized_repeat, the bounded-repeat scan shared by the
// to.domain_regex and inspect pattern checks (both reach it through policy_test.cc too).
#include "rules/names.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace egw::rules {
namespace {

constexpr size_t npos = std::string_view::npos;

TEST(OversizedRepeat, Table) {
  struct Case {
    const char* description;
    const char* pattern;
    unsigned max_count;
    size_t at;         // npos: none found
    const char* text;  // the repeat reported
  };
  const Case cases[] = {
      {"no repeat", "^abc$", 1000, npos, ""},
      {"repeat of exactly the limit", "a{1000}", 1000, npos, ""},
      {"{n} over the limit", "^a{1001}$", 1000, 2, "{1001}"},
      {"{n,} over the limit", "x{2000,}", 1000, 1, "{2000,}"},
      {"{n,m} with m over the limit", "[a-z]{1,5000}", 1000, 5, "{1,5000}"},
      {"the first of two", "a{5}b{3000}c{4000}", 1000, 5, "{3000}"},
      {"a count past 64 bits", "x{99999999999999999999}", 1000, 1, "{99999999999999999999}"},
      {"the limit is the caller's", "a{11}", 10, 1, "{11}"},
      {"{,m} is not a repeat (PCRE: literal)", "a{,5000}", 1000, npos, ""},
      {"unterminated braces", "a{5000", 1000, npos, ""},
      {"braces in a class", "[{2000}]+", 1000, npos, ""},
      {"a leading ] is a class member", "[]{2000}]", 1000, npos, ""},
      {"a POSIX class inside a class", "[[:alpha:]{2000}]", 1000, npos, ""},
      {"escaped braces", R"(x\{2000\})", 1000, npos, ""},
      {"\\x{...} is an escape, then a real repeat", R"(\x{41}{3000})", 1000, 6, "{3000}"},
      {"quoted braces", R"(\Q{2000}\E)", 1000, npos, ""},
      {"a repeat after a quote", R"(\Qa\E{2000})", 1000, 5, "{2000}"},
      {"a comment", "(?#{5000})ab", 1000, npos, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    std::string text;
    EXPECT_EQ(oversized_repeat(c.pattern, c.max_count, &text), c.at);
    EXPECT_EQ(text, c.text);
  }
}

}  // namespace
}  // namespace egw::rules
