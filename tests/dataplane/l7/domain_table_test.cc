// Unit tests for dataplane/l7/domain_table.cc: tables of {description, patterns, name,
// expected values}, builder errors, open() on corrupt tables, determinism, and 100k
// random patterns checked against a std::map reference.
#include "dataplane/l7/domain_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
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

// Header field offsets and slot layout (see domain_table.h).
constexpr size_t kOffChecksum = 16, kOffNodeCount = 24, kOffBuckets = 32, kOffListWords = 40,
                 kOffValueCount = 44, kOffLabelsLen = 48, kOffStarList = 52;
constexpr size_t kSlotLen = 32, kSlotKinds = 13, kSlotTag = 15, kSlotLabel = 16;

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
      {"label of 22 bytes (kept outside the slot)",
       {{"averyveryverylonglabel.io", 1}},
       "averyveryverylonglabel.io",
       {1}},
      {"label of 22 bytes: last byte differs",
       {{"averyveryverylonglabel.io", 1}},
       "averyveryverylonglabex.io",
       {}},
      {"wildcard under a label of 63 bytes",
       {{"*." + std::string(63, 'q') + ".io", 2}},
       "x." + std::string(63, 'q') + ".io",
       {2}},
      {"labels of 8, 9 and 16 bytes",
       {{"abcdefgh.abcdefghi.abcdefghijklmnop", 3}},
       "abcdefgh.abcdefghi.abcdefghijklmnop",
       {3}},
      {"label of 16 bytes: last byte differs",
       {{"abcdefghijklmnop.io", 3}},
       "abcdefghijklmnoq.io",
       {}},
      {"label of 8 bytes: a 9th byte is another label", {{"abcdefgh.io", 3}}, "abcdefghi.io", {}},
      {"same label under another parent", {{"api.a.io", 1}, {"*.b.io", 2}}, "api.b.io", {2}},
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

// Where a built table's sections start (offsets from the table start).
struct Layout {
  size_t slots, lists, labels;
  uint32_t slot_count;
};

Layout layout_of(const std::string& t) {
  Layout l;
  l.slots = (kDomainHeaderLen + 4 * size_t{get32(t, kOffValueCount)} + 63) / 64 * 64;
  l.slot_count = 2 * get32(t, kOffBuckets);
  l.lists = l.slots + kSlotLen * l.slot_count;
  l.labels = l.lists + 4 * size_t{get32(t, kOffListWords)};
  return l;
}

// Offset of the slot whose node has `label` (inline), or of the first empty slot for "".
size_t slot_of(const std::string& t, const std::string& label) {
  const Layout l = layout_of(t);
  for (size_t i = 0; i < l.slot_count; ++i) {
    const size_t off = l.slots + kSlotLen * i;
    if (static_cast<uint8_t>(t[off + 12]) == label.size() &&
        (label.size() > 16 || t.compare(off + kSlotLabel, label.size(), label) == 0))
      return off;
  }
  ADD_FAILURE() << "no slot for \"" << label << "\"";
  return 0;
}

uint32_t slot_index(const std::string& t, size_t off) {
  return static_cast<uint32_t>((off - layout_of(t).slots) / kSlotLen);
}

std::string open_error(const std::string& bytes) {
  DomainTable t;
  std::string err;
  EXPECT_FALSE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err));
  return err;
}

TEST(DomainTable, OpenNegativeTable) {
  // Nodes com, stripe.com, api.stripe.com, network, stripe.network, io and a 22-byte
  // label under it; values {1, 2, 3, 4, 5, 6}; lists {1, 5} (at 0) and "*"'s {3, 4} (at 3).
  const std::string good = build({{"api.stripe.com", 1},
                                  {"api.stripe.com", 5},
                                  {"*.stripe.network", 2},
                                  {"*", 3},
                                  {"*", 4},
                                  {"averyveryverylonglabel.io", 6}});
  ASSERT_EQ(get32(good, kOffNodeCount), 7u);
  ASSERT_EQ(get32(good, kOffValueCount), 6u);
  ASSERT_EQ(get32(good, kOffListWords), 6u);
  ASSERT_EQ(get32(good, kOffStarList), 4u);
  const Layout l = layout_of(good);
  const size_t api = slot_of(good, "api"), com = slot_of(good, "com"), empty = slot_of(good, "");
  const size_t long_label = slot_of(good, "averyveryverylonglabel");
  using Mutation = std::function<void(std::string*)>;
  auto at = [](size_t off, uint32_t v) -> Mutation {
    return [=](std::string* s) { set32(s, off, v); };
  };
  auto byte_at = [](size_t off, uint8_t v) -> Mutation {
    return [=](std::string* s) { (*s)[off] = static_cast<char>(v); };
  };
  const struct {
    const char* description;
    Mutation mutate;
    bool fix;  // recompute the checksum afterwards
    const char* message;
  } cases[] = {
      {"bad magic", [](std::string* s) { (*s)[0] ^= 1; }, true, "magic"},
      {"bad version", at(4, 1), true, "version"},
      {"bad header length", at(8, 60), true, "header"},
      {"body length too big", at(12, get32(good, 12) + 1), true, "body length"},
      {"bad checksum", [](std::string* s) { (*s)[s->size() - 1] ^= 0x20; }, false, "checksum"},
      {"checksum field flipped", [](std::string* s) { (*s)[kOffChecksum] ^= 1; }, false,
       "checksum"},
      {"word 20 not zero", at(20, 1), true, "reserved"},
      {"word 28 not zero", at(28, 1), true, "reserved"},
      {"word 36 not zero", at(36, 1), true, "reserved"},
      {"word 56 not zero", at(56, 1), true, "reserved"},
      {"word 60 not zero", at(60, 1), true, "reserved"},
      {"more nodes than slots", at(kOffNodeCount, l.slot_count + 1), true, "geometry"},
      {"buckets huge", at(kOffBuckets, 0x80000000), true, "geometry"},
      {"no buckets for the nodes", at(kOffBuckets, 0), true, "geometry"},
      {"no nodes in the buckets", at(kOffNodeCount, 0), true, "geometry"},
      {"node count off by one", at(kOffNodeCount, 6), true, "node count"},
      {"value count moving the slots", at(kOffValueCount, 17), true, "add up"},
      {"value count into the padding", at(kOffValueCount, 7), true, "ascending"},
      {"list words huge", at(kOffListWords, 0xfffffff0), true, "add up"},
      {"labels length off by one", at(kOffLabelsLen, 23), true, "add up"},
      {"star list past the lists", at(kOffStarList, 100), true, "\"*\""},
      {"star list of no value", at(l.lists + 4 * 3, 0), true, "\"*\""},
      {"padding after the values", byte_at(kDomainHeaderLen + 24, 1), true, "padding"},
      {"value set not ascending", at(kDomainHeaderLen, 2), true, "ascending"},
      {"a value of the set unused", at(l.lists + 4 * 2, 2), true, "no list"},
      {"list not ascending", at(l.lists + 4 * 1, 5), true, "value list"},
      {"list count past the lists", at(l.lists, 100), true, "value list"},
      {"one value not in the set", at(long_label + 4, 9), true, "value list"},
      {"no value but a word", at(com + 4, 1), true, "value list"},
      {"value kind 3", byte_at(api + kSlotKinds, 3), true, "value list"},
      {"unknown kinds bits", byte_at(api + kSlotKinds, 0x12), true, "kinds"},
      {"byte 14 not zero", byte_at(api + 14, 1), true, "kinds"},
      {"empty slot not zero", byte_at(empty + 4, 1), true, "empty but not zero"},
      {"label length 64", byte_at(api + 12, 64), true, "label too long"},
      {"parent past the slots", at(api, l.slot_count + 1), true, "parent is no node"},
      {"parent an empty slot", at(api, slot_index(good, empty) + 1), true, "parent is no node"},
      {"parent cycle", at(com, slot_index(good, api) + 1), true, "cycle"},
      {"upper-case label byte", byte_at(api + kSlotLabel, 'A'), true, "label byte"},
      {"label padding not zero", byte_at(api + kSlotLabel + 3, 'x'), true, "padding"},
      {"long label past the label bytes", at(long_label + kSlotLabel, 1), true, "out of range"},
      {"long label offset padding", byte_at(long_label + kSlotLabel + 4, 1), true, "padding"},
      {"long label byte", byte_at(l.labels, '.'), true, "label byte"},
      {"tag wrong",
       [&](std::string* s) { (*s)[api + kSlotTag] = static_cast<char>(good[api + kSlotTag] ^ 1); },
       true, "where its hash puts it"},
      {"label changed", byte_at(api + kSlotLabel + 2, 'j'), true, "where its hash puts it"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    std::string bad = good;
    c.mutate(&bad);
    if (c.fix) fix_checksum(&bad);
    const std::string err = open_error(bad);
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
}

TEST(DomainTable, OpenRejectsASuffixLongerThanAName) {
  // Two 253-byte names; hang the top label of one under the leaf of the other.
  const std::string a = std::string(63, 'a') + "." + std::string(63, 'a') + "." +
                        std::string(63, 'a') + "." + std::string(61, 'a');
  const std::string b = std::string(63, 'b') + "." + std::string(63, 'b') + "." +
                        std::string(63, 'b') + "." + std::string(61, 'b');
  std::string bytes = build({{a, 1}, {b, 2}});
  const Layout l = layout_of(bytes);
  size_t a_leaf = 0, b_top = 0;
  for (size_t i = 0; i < l.slot_count; ++i) {
    const size_t off = l.slots + kSlotLen * i;
    const uint32_t label_off = get32(bytes, off + kSlotLabel);
    const bool leaf = static_cast<uint8_t>(bytes[off + 12]) == 63 && get32(bytes, off) != 0 &&
                      bytes[l.labels + label_off] == 'a';
    if (leaf && a_leaf == 0) {
      // The leaf is the one no other node names as parent.
      bool is_parent = false;
      for (size_t k = 0; k < l.slot_count; ++k)
        is_parent = is_parent || get32(bytes, l.slots + kSlotLen * k) == i + 1;
      if (!is_parent) a_leaf = off;
    }
    if (static_cast<uint8_t>(bytes[off + 12]) == 61 && bytes[l.labels + label_off] == 'b')
      b_top = off;
  }
  ASSERT_NE(a_leaf, 0u);
  ASSERT_NE(b_top, 0u);
  set32(&bytes, b_top, slot_index(bytes, a_leaf) + 1);
  fix_checksum(&bytes);
  const std::string err = open_error(bytes);
  EXPECT_NE(err.find("name too long"), std::string::npos) << err;
}

TEST(DomainTable, OpenRejectsADuplicateNode) {
  // A copy of a node in another slot of its buckets (or elsewhere: then it is misplaced).
  bool duplicate_seen = false;
  for (const char* name : {"x.io", "y.io", "z.io", "w.io", "v.io", "u.io"}) {
    const std::string good = build({{name, 1}});
    const Layout l = layout_of(good);
    const size_t node = slot_of(good, std::string(name, 1));
    for (size_t i = 0; i < l.slot_count; ++i) {
      const size_t off = l.slots + kSlotLen * i;
      if (good[off + 12] != 0) continue;
      std::string bad = good;
      bad.replace(off, kSlotLen, good, node, kSlotLen);
      set32(&bad, kOffNodeCount, get32(good, kOffNodeCount) + 1);
      fix_checksum(&bad);
      const std::string err = open_error(bad);
      const bool duplicate = err.find("duplicate node") != std::string::npos;
      EXPECT_TRUE(duplicate || err.find("where its hash puts it") != std::string::npos) << err;
      duplicate_seen = duplicate_seen || duplicate;
    }
  }
  EXPECT_TRUE(duplicate_seen) << "no copy landed in the node's buckets";
}

TEST(DomainTable, ValueSetFirstInTheBody) {
  // Every value once, ascending, at the body start, and words 20, 28 and 36 zero: where a
  // version-1 reader (dataplane/policy.cc's check_domain_values) finds the values.
  const std::string bytes = build({{"a.io", 7}, {"a.io", 3}, {"*.io", 3}, {"*", 9}, {"b.io", 1}});
  EXPECT_EQ(get32(bytes, 20), 0u);
  EXPECT_EQ(get32(bytes, 28), 0u);
  EXPECT_EQ(get32(bytes, 36), 0u);
  ASSERT_EQ(get32(bytes, kOffValueCount), 4u);
  Values set;
  for (size_t i = 0; i < 4; ++i) set.push_back(get32(bytes, kDomainHeaderLen + 4 * i));
  EXPECT_EQ(set, (Values{1, 3, 7, 9}));
}

TEST(DomainTable, OpenKeepsItsOwnCopy) {
  std::string bytes = build({{"api.stripe.com", 1}, {"*.stripe.network", 2}});
  DomainTable t;
  std::string err;
  ASSERT_TRUE(t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err)) << err;
  std::fill(bytes.begin(), bytes.end(), '\xff');  // shared memory rewritten after the check
  EXPECT_EQ(match(t, "api.stripe.com"), (Values{1}));
  EXPECT_EQ(match(t, "a.stripe.network"), (Values{2}));
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
