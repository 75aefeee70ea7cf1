// Unit tests for dataplane/l7/domain_table.cc: tables of {description, patterns, name,
// expected values}, builder errors, open() on corrupt tables, determinism, and 100k
// random patterns checked against a std::map reference.
#include "dataplane/l7/domain_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace egw::l7 {
namespace {

using Values = std::vector<uint32_t>;
using Patterns = std::vector<std::pair<std::string, uint32_t>>;

Name make_name(const std::string& s) {
  Name n;
  EXPECT_TRUE(normalize_name(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &n)) << s;
  return n;
}

std::string build(const Patterns& patterns) {
  DomainTableBuilder b;
  for (const auto& [p, v] : patterns) {
    std::string err;
    EXPECT_TRUE(b.add(p, v, &err)) << p << ": " << err;
  }
  return b.build();
}

Values match(const DomainTable& t, const std::string& raw, size_t max = 64) {
  Name n = make_name(raw);
  Values out(max + 1, 0xdeadbeef);
  size_t count = t.match(n, out.data(), max);
  EXPECT_LE(count, max);
  EXPECT_EQ(out[max], 0xdeadbeefu) << "wrote past max";
  out.resize(count);
  return out;
}

// Header field offsets (see the layout in domain_table.h).
constexpr size_t kOffChecksum = 16, kOffKeyCount = 20, kOffExactSlots = 28, kOffExactMaxProbe = 32,
                 kOffValueCount = 44, kOffNamesLen = 48, kOffStarOff = 52, kOffStarCount = 56;

uint32_t get32(const std::string& s, size_t off) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(s[off + i]);
  return v;
}
void set32(std::string* s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}
// Recomputes the body checksum after a mutation, so open() checks the rest.
void fix_checksum(std::string* s) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = kDomainHeaderLen; i < s->size(); ++i)
    h = (h ^ static_cast<uint8_t>((*s)[i])) * 0x01000193u;
  set32(s, kOffChecksum, h);
}

// "a.a. ... .a" with `labels` labels.
std::string repeat_labels(int labels) {
  std::string s = "a";
  for (int i = 1; i < labels; ++i) s += ".a";
  return s;
}

// ---- matching -------------------------------------------------------------------
struct MatchCase {
  const char* description;
  Patterns patterns;
  std::string name;
  Values expected;
};

TEST(DomainTable, MatchTable) {
  const Patterns stripe = {{"api.stripe.com", 1}, {"*.stripe.network", 2}};
  const std::vector<MatchCase> cases = {
      {"exact name", stripe, "api.stripe.com", {1}},
      {"exact: sibling not matched", stripe, "www.stripe.com", {}},
      {"exact: subdomain of an exact name not matched", stripe, "x.api.stripe.com", {}},
      {"exact: parent of an exact name not matched", stripe, "stripe.com", {}},
      {"wildcard depth 1", stripe, "m.stripe.network", {2}},
      {"wildcard depth 2", stripe, "a.b.stripe.network", {2}},
      {"wildcard depth 5", stripe, "a.b.c.d.e.stripe.network", {2}},
      {"wildcard: apex not matched", stripe, "stripe.network", {}},
      {"wildcard: parent of the apex not matched", stripe, "network", {}},
      {"wildcard: evilexample.com", {{"*.example.com", 3}}, "evilexample.com", {}},
      {"wildcard: prefix without dot", {{"*.example.com", 3}}, "a.evilexample.com", {}},
      {"wildcard: example.com.evil.net", {{"*.example.com", 3}}, "example.com.evil.net", {}},
      {"wildcard: a.example.com.evil.net", {{"*.example.com", 3}}, "a.example.com.evil.net", {}},
      {"wildcard: example.com itself", {{"*.example.com", 3}}, "example.com", {}},
      {"wildcard on a TLD", {{"*.com", 4}}, "a.b.example.com", {4}},
      {"star matches any name", {{"*", 9}}, "anything.at.all", {9}},
      {"star matches a one-label name", {{"*", 9}}, "localhost", {9}},
      {"several values for one exact pattern",
       {{"x.io", 5}, {"x.io", 1}, {"x.io", 3}},
       "x.io",
       {1, 3, 5}},
      {"several values for one wildcard", {{"*.x.io", 7}, {"*.x.io", 2}}, "a.x.io", {2, 7}},
      {"same value twice kept once", {{"x.io", 5}, {"x.io", 5}}, "x.io", {5}},
      {"exact + wildcards at two depths + star merged ascending",
       {{"a.b.c.io", 40}, {"*.b.c.io", 10}, {"*.c.io", 30}, {"*.io", 20}, {"*", 5}},
       "a.b.c.io",
       {5, 10, 20, 30, 40}},
      {"overlaps deduplicated",
       {{"a.b.io", 3}, {"*.b.io", 3}, {"*.io", 1}, {"*", 1}, {"*", 3}},
       "a.b.io",
       {1, 3}},
      {"exact and wildcard of the same name: apex gets only the exact",
       {{"b.io", 1}, {"*.b.io", 2}},
       "b.io",
       {1}},
      {"exact and wildcard of the same name: subdomain gets only the wildcard",
       {{"b.io", 1}, {"*.b.io", 2}},
       "x.b.io",
       {2}},
      {"pattern upper case and trailing dot", {{"API.Stripe.COM.", 1}}, "api.stripe.com", {1}},
      {"query upper case and trailing dot", {{"api.stripe.com", 1}}, "API.STRIPE.com.", {1}},
      {"wildcard upper case and trailing dot",
       {{"*.Stripe.Network.", 2}},
       "M.STRIPE.NETWORK.",
       {2}},
      {"empty table", {}, "a.b", {}},
      {"hyphen and underscore names", {{"_dmarc.x-y.io", 6}}, "_DMARC.X-Y.io", {6}},
      {"longest name",
       {{"*.b.io", 1}},
       std::string(60, 'a') + "." + std::string(60, 'a') + "." + std::string(60, 'a') + "." +
           std::string(61, 'a') + ".b.io",
       {1}},
      {"many labels: every suffix is probed",
       {{"*.z", 8}},
       [] {
         std::string s;
         for (int i = 0; i < 126; ++i) s += "a.";
         return s + "z";
       }(),
       {8}},
      {"wildcard suffixes of 33 and 40 labels share a label-mask bit",
       {{"*." + repeat_labels(40), 1}, {"*." + repeat_labels(33), 2}},
       "x." + repeat_labels(40),
       {1, 2}},
      {"wildcard suffix of 40 labels: 40-label apex not matched",
       {{"*." + repeat_labels(40), 1}},
       repeat_labels(40),
       {}},
  };
  for (const MatchCase& c : cases) {
    SCOPED_TRACE(c.description);
    const std::string bytes = build(c.patterns);
    DomainTable t;
    std::string err;
    ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err)) << err;
    EXPECT_EQ(match(t, c.name), c.expected);
  }
}

TEST(DomainTable, TruncationKeepsTheSmallestValues) {
  const std::string bytes =
      build({{"a.b.io", 9}, {"a.b.io", 4}, {"*.b.io", 7}, {"*.io", 1}, {"*", 6}});
  DomainTable t;
  std::string err;
  ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err));
  const struct {
    const char* description;
    size_t max;
    Values expected;
  } cases[] = {
      {"max 0 writes nothing", 0, {}},
      {"max 1: the smallest", 1, {1}},
      {"max 3", 3, {1, 4, 6}},
      {"max 5: all", 5, {1, 4, 6, 7, 9}},
      {"max above the count", 10, {1, 4, 6, 7, 9}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    EXPECT_EQ(match(t, "a.b.io", c.max), c.expected);
  }
}

TEST(DomainTable, UnopenedOrInvalidNameMatchesNothing) {
  DomainTable t;
  uint32_t out[4];
  EXPECT_EQ(t.match(make_name("a.io"), out, 4), 0u);
  const std::string bytes = build({{"*", 1}});
  std::string err;
  ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err));
  Name empty;
  EXPECT_EQ(t.match(empty, out, 4), 0u);
  Name too_long;
  too_long.len = 255;
  EXPECT_EQ(t.match(too_long, out, 4), 0u);
}

// ---- builder --------------------------------------------------------------------
TEST(DomainTableBuilder, ErrorsTable) {
  const struct {
    const char* description;
    std::string pattern;
    const char* message;  // a substring of the error
  } cases[] = {
      {"empty", "", "empty name"},
      {"star dot only", "*.", "needs a suffix"},
      {"star dot dot", "*..", "needs a suffix"},
      {"double star", "**.x.io", "'*' is only allowed"},
      {"star inside a label", "a*.x.io", "'*' is only allowed"},
      {"star as a middle label", "a.*.io", "'*' is only allowed"},
      {"star at the end", "x.io.*", "'*' is only allowed"},
      {"two wildcard labels", "*.*.io", "'*' is only allowed"},
      {"star without dot", "*x.io", "'*' is only allowed"},
      {"dot only", ".", "not a valid DNS name"},
      {"leading dot", ".x.io", "not a valid DNS name"},
      {"empty label", "a..io", "not a valid DNS name"},
      {"two trailing dots", "x.io..", "not a valid DNS name"},
      {"space", "a b.io", "not a valid DNS name"},
      {"NUL byte", std::string("a\0b.io", 6), "not a valid DNS name"},
      {"slash", "a/b.io", "not a valid DNS name"},
      {"label of 64", std::string(64, 'a') + ".io", "not a valid DNS name"},
      {"name of 254",
       std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
           std::string(62, 'a'),
       "not a valid DNS name"},
      {"wildcard suffix of 253",
       "*." + std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
           std::string(61, 'a'),
       "too long"},
      {"wildcard with an invalid suffix", "*.a..io", "not a valid DNS name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    DomainTableBuilder b;
    std::string err;
    EXPECT_FALSE(b.add(c.pattern, 1, &err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_EQ(b.size(), 0u);
  }
}

TEST(DomainTableBuilder, SizeCountsDistinctPatterns) {
  DomainTableBuilder b;
  std::string err;
  for (const char* p : {"a.io", "A.IO.", "*.a.io", "*.A.io", "*", "*", "b.io"})
    ASSERT_TRUE(b.add(p, 1, &err)) << p;
  EXPECT_EQ(b.size(), 4u);  // a.io, *.a.io, *, b.io
}

TEST(DomainTableBuilder, Deterministic) {
  Patterns p = {{"api.stripe.com", 3}, {"*.stripe.network", 1}, {"*", 7},    {"x.io", 2},
                {"x.io", 1},           {"*.x.io", 4},           {"b.c.d", 9}};
  const std::string first = build(p);
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(p.begin(), p.end(), rng);
    EXPECT_EQ(build(p), first) << "shuffle " << i;
  }
  EXPECT_EQ(build({}), build({}));
}

// ---- open() on bad tables -------------------------------------------------------
TEST(DomainTable, OpenRejectsTruncationAtEveryLength) {
  const std::string bytes = build({{"api.stripe.com", 1}, {"*.stripe.network", 2}, {"*", 3}});
  DomainTable t;
  std::string err;
  ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err));
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::string cut = bytes.substr(0, len);
    EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), &err))
        << "length " << len;
  }
  std::string longer = bytes + '\0';
  EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(longer.data()), longer.size(), &err));
  uint32_t out[4];
  EXPECT_EQ(t.match(make_name("api.stripe.com"), out, 4), 0u) << "a failed open leaves it closed";
}

TEST(DomainTable, OpenNegativeTable) {
  const std::string good = build(
      {{"api.stripe.com", 1}, {"api.stripe.com", 5}, {"*.stripe.network", 2}, {"*", 3}, {"*", 4}});
  // Body layout of this table: keys (2 x 16 bytes), exact slots, wild slots, values, names.
  const size_t key0 = kDomainHeaderLen;
  const size_t exact_slots = key0 + 2 * 16;
  const uint32_t nslots = get32(good, kOffExactSlots);
  const size_t values = exact_slots + 2 * 8 * nslots;  // both tables hold 8 slots
  auto first_used_slot = [&](const std::string& s) {
    for (size_t i = 0;; ++i)
      if (get32(s, exact_slots + 8 * i + 4) != 0) return exact_slots + 8 * i;
  };
  const struct {
    const char* description;
    void (*mutate)(std::string*);
    bool fix;  // recompute the checksum afterwards
    const char* message;
  } cases[] = {
      {"bad magic", [](std::string* s) { (*s)[0] ^= 1; }, true, "magic"},
      {"bad version", [](std::string* s) { set32(s, 4, 2); }, true, "version"},
      {"bad header length", [](std::string* s) { set32(s, 8, 60); }, true, "header"},
      {"wildcard label mask wrong", [](std::string* s) { set32(s, 60, 1); }, true, "label mask"},
      {"wildcard label mask empty", [](std::string* s) { set32(s, 60, 0); }, true, "label mask"},
      {"body length too big", [](std::string* s) { set32(s, 12, get32(*s, 12) + 1); }, true,
       "body length"},
      {"bad checksum", [](std::string* s) { (*s)[s->size() - 1] ^= 0x20; }, false, "checksum"},
      {"checksum field flipped", [](std::string* s) { (*s)[kOffChecksum] ^= 1; }, false,
       "checksum"},
      {"key count huge", [](std::string* s) { set32(s, kOffKeyCount, 0xffffffff); }, true,
       "key counts"},
      {"exact count over key count", [](std::string* s) { set32(s, 24, 3); }, true, "key counts"},
      {"slots not a power of two", [](std::string* s) { set32(s, kOffExactSlots, 7); }, true,
       "geometry"},
      {"max probe over slots", [](std::string* s) { set32(s, kOffExactMaxProbe, 9); }, true,
       "geometry"},
      {"max probe zero with keys", [](std::string* s) { set32(s, kOffExactMaxProbe, 0); }, true,
       "geometry"},
      {"value count off by one",
       [](std::string* s) { set32(s, kOffValueCount, get32(*s, kOffValueCount) + 1); }, true,
       "add up"},
      {"names length huge", [](std::string* s) { set32(s, kOffNamesLen, 0xfffffff0); }, true,
       "add up"},
      {"key name offset out of range",
       [](std::string* s) { set32(s, kDomainHeaderLen, 0xffffff00); }, true, "name out of range"},
      {"key name length zero", [](std::string* s) { set32(s, kDomainHeaderLen + 4, 0); }, true,
       "name out of range"},
      {"key name length past names", [](std::string* s) { set32(s, kDomainHeaderLen + 4, 200); },
       true, "name out of range"},
      {"key value offset out of range",
       [](std::string* s) { set32(s, kDomainHeaderLen + 8, 0xfffffffe); }, true, "value list"},
      {"key value count zero", [](std::string* s) { set32(s, kDomainHeaderLen + 12, 0); }, true,
       "value list"},
      {"key value count past values",
       [](std::string* s) { set32(s, kDomainHeaderLen + 12, 0xffffffff); }, true, "value list"},
      {"star list out of range", [](std::string* s) { set32(s, kOffStarOff, 4); }, true, "\"*\""},
      {"star count huge", [](std::string* s) { set32(s, kOffStarCount, 0x80000000); }, true,
       "\"*\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    std::string bad = good;
    c.mutate(&bad);
    if (c.fix) fix_checksum(&bad);
    DomainTable t;
    std::string err;
    EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), &err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }

  // Slot and value mutations that need the layout computed above.
  const struct {
    const char* description;
    size_t off;
    uint32_t value;
    const char* message;
  } slot_cases[] = {
      {"slot names a key past the count", first_used_slot(good) + 4, 3, "bad key"},
      {"exact slot names a wildcard key", first_used_slot(good) + 4, 2, "bad key"},
      {"slot tag wrong", first_used_slot(good), get32(good, first_used_slot(good)) ^ 1,
       "hash puts it"},
      {"values not ascending", values, 9, "value list"},
  };
  for (const auto& c : slot_cases) {
    SCOPED_TRACE(c.description);
    std::string bad = good;
    set32(&bad, c.off, c.value);
    fix_checksum(&bad);
    DomainTable t;
    std::string err;
    EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), &err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }

  // A key moved to another slot than its probe sequence allows.
  std::string moved = good;
  const size_t from = first_used_slot(good);
  size_t to = exact_slots;
  while (to == from || get32(good, to + 4) != 0) to += 8;
  set32(&moved, to, get32(good, from));
  set32(&moved, to + 4, get32(good, from + 4));
  set32(&moved, from, 0);
  set32(&moved, from + 4, 0);
  fix_checksum(&moved);
  DomainTable t;
  std::string err;
  EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(moved.data()), moved.size(), &err));
  // A key removed from its slot.
  std::string dropped = good;
  set32(&dropped, from + 4, 0);
  fix_checksum(&dropped);
  EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(dropped.data()), dropped.size(), &err));
  EXPECT_NE(err.find("no slot"), std::string::npos) << err;
}

// ---- 100k random patterns against a reference -----------------------------------
struct Reference {
  std::map<std::string, std::set<uint32_t>> exact, wild;
  std::set<uint32_t> star;
  Values match(const std::string& name) const {
    std::set<uint32_t> r = star;
    if (auto it = exact.find(name); it != exact.end())
      r.insert(it->second.begin(), it->second.end());
    for (size_t i = 0; i < name.size(); ++i)
      if (name[i] == '.')
        if (auto it = wild.find(name.substr(i + 1)); it != wild.end())
          r.insert(it->second.begin(), it->second.end());
    return Values(r.begin(), r.end());
  }
};

std::string random_label(std::mt19937& rng) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
  const size_t len = 1 + rng() % 10;
  std::string s;
  for (size_t i = 0; i < len; ++i) s += kChars[rng() % (i == 0 ? 36 : 37)];
  return s;
}

std::string random_name(std::mt19937& rng, const std::vector<std::string>& tlds) {
  std::string s = tlds[rng() % tlds.size()];
  const size_t labels = 1 + rng() % 4;
  for (size_t i = 0; i < labels; ++i) s = random_label(rng) + "." + s;
  return s;
}

TEST(DomainTable, RandomPatternsAgainstReference) {
  std::mt19937 rng(20261127);
  const std::vector<std::string> tlds = {"com", "net", "org", "io", "co.uk", "dev"};
  DomainTableBuilder b;
  Reference ref;
  std::vector<std::string> exact_names, wild_suffixes;
  std::string err;
  for (uint32_t i = 0; i < 100000; ++i) {
    const std::string name = random_name(rng, tlds);
    const uint32_t value = rng() % 5000;
    if (i % 2 == 0) {
      ASSERT_TRUE(b.add(name, value, &err)) << err;
      ref.exact[name].insert(value);
      exact_names.push_back(name);
    } else {
      ASSERT_TRUE(b.add("*." + name, value, &err)) << err;
      ref.wild[name].insert(value);
      wild_suffixes.push_back(name);
    }
  }
  const std::string bytes = b.build();
  DomainTable t;
  ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err)) << err;

  uint32_t out[64];
  size_t checked = 0;
  for (const std::string& name : exact_names) {  // every exact name is found
    const Values want = ref.match(name);
    const size_t n = t.match(make_name(name), out, 64);
    ASSERT_EQ(Values(out, out + n), want) << name;
    ASSERT_TRUE(std::binary_search(want.begin(), want.end(), *ref.exact[name].begin()));
    ++checked;
  }
  EXPECT_EQ(checked, exact_names.size());

  // ~50k queries: random names, subdomains and apexes of wildcards, evil look-alikes.
  size_t hits = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string q;
    const std::string& w = wild_suffixes[rng() % wild_suffixes.size()];
    switch (i % 5) {
      case 0:
        q = random_name(rng, tlds);
        break;
      case 1:
        q = random_label(rng) + "." + random_label(rng) + "." + w;
        break;
      case 2:
        q = w;
        break;  // the apex
      case 3:
        q = random_label(rng) + w;
        break;  // evil<suffix>
      case 4:
        q = "x." + w + ".evil.net";
        break;  // <suffix>.evil.net
    }
    if (q.size() > kMaxName) continue;
    const Values want = ref.match(q);
    const size_t n = t.match(make_name(q), out, 64);
    ASSERT_EQ(Values(out, out + n), want) << q;
    hits += want.empty() ? 0 : 1;
  }
  EXPECT_GT(hits, 10000u);  // the queries exercise both hits and misses
}

}  // namespace
}  // namespace egw::l7
