// Tests of RuntimePolicy's name conditions (dataplane/policy.cc): classify()'s needs_name,
// decide_name() over the literal table and the Hyperscan databases (a table of policy,
// flow key, name; regexes in one part or several), the loader's checks of the two name
// sections, and a differential test against a linear evaluator over random policies
// compiled by mgmt::compile_policy.
// Runs in the unit test binary (EAL initialised by tests/test_main.cc).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hs.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <regex>

#include "dataplane/l7/domain_table.h"
#include "dataplane/l7/l7.h"
#include "dataplane/policy.h"
#include "mgmt/compiler.h"
#include "tests/support/blob_builder.h"
#include "tests/support/blob_cases.h"
#include "tests/support/hs_db.h"

namespace egw {
namespace {

using namespace abi;
using test::Blob;

constexpr uint8_t kIcmp6 = 58, kGre = 47;
constexpr int kDefault = -1;

std::string dump(const std::vector<rules::Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  '" + e.path + "': " + e.message + "\n";
  return out;
}

// part: domain_regex patterns per Hyperscan database (small ones make several parts).
std::string compile_blob(const std::string& doc, size_t part = mgmt::kRegexPartPatterns) {
  rules::ParseResult parsed = rules::parse_policy(doc);
  EXPECT_TRUE(parsed.policy.has_value()) << dump(parsed.errors) << doc;
  if (!parsed.policy) return {};
  mgmt::CompileResult res = mgmt::compile_policy(*parsed.policy, doc, 9, part);
  EXPECT_TRUE(res.errors.empty()) << dump(res.errors) << doc;
  return res.blob;
}

std::unique_ptr<RuntimePolicy> load_doc(const std::string& doc, unsigned scratches = 2,
                                        size_t part = mgmt::kRegexPartPatterns) {
  std::string blob = compile_blob(doc, part), err;
  auto p = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), &err,
                               scratches);
  EXPECT_NE(p, nullptr) << err;
  return p;
}

FlowKey make_key(const char* inside, const char* remote, uint8_t proto, uint16_t port) {
  FlowKey k{};
  if (inet_pton(AF_INET, inside, k.inside_ip) == 1) {
    k.family = 4;
    EXPECT_EQ(inet_pton(AF_INET, remote, k.remote_ip), 1) << remote;
  } else {
    k.family = 6;
    EXPECT_EQ(inet_pton(AF_INET6, inside, k.inside_ip), 1) << inside;
    EXPECT_EQ(inet_pton(AF_INET6, remote, k.remote_ip), 1) << remote;
  }
  k.proto = proto;
  k.inside_port = 40000;
  k.remote_port = port;
  return k;
}

l7::Name make_name(const std::string& s) {
  l7::Name n;
  EXPECT_TRUE(l7::normalize_name(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &n)) << s;
  return n;
}

// ---------------------------------------------------------------- semantics table

const char* const kPolicy = R"({"schema":1,"default_action":"deny",
  "services":{"web":{"cidrs":["10.1.0.0/16","fd00:1::/32"]},"ci":{"cidrs":["10.2.0.0/16"]}},
  "rulesets":[{"name":"names","rules":[
    {"id":"dns-plain","from":["any"],"proto":"udp","ports":[53],
     "to":{"cidrs":["198.19.0.53/32"]},"action":"allow"},
    {"id":"exact","from":["web"],"proto":"tcp","ports":[443],
     "to":{"domains":["api.stripe.com"]},"action":"allow"},
    {"id":"wild","from":["web"],"proto":"tcp","ports":[443],
     "to":{"domains":["*.stripe.network"]},"action":"allow"},
    {"id":"regex","from":["ci"],"proto":"tcp","ports":[80,443],
     "to":{"domain_regex":["^[a-z0-9-]+\\.pkg\\.example\\.org$"]},"action":"allow"},
    {"id":"cidr-and-name","from":["any"],"proto":"tcp","ports":[8443],
     "to":{"cidrs":["198.51.100.0/24","2001:db8:5::/48"],"domains":["secure.example.com"]},
     "action":"allow"}
  ]},{"name":"later","rules":[
    {"id":"plain-https","from":["web"],"proto":"tcp","ports":[443],
     "to":{"cidrs":["203.0.113.0/24"]},"action":"reject"},
    {"id":"telemetry","from":["any"],
     "to":{"domains":["*.tracker.example"],"domain_regex":["^telemetry\\."]},"action":"reject"},
    {"id":"dns-names","from":["any"],"proto":"udp","ports":[53],"to":{"domains":["*"]},
     "action":"deny"},
    {"id":"web-any-name","from":["web"],"proto":"tcp","ports":[443],"to":{"domains":["*"]},
     "action":"allow"}
  ]}]})";

enum Rule : int {
  kDnsPlain,
  kExact,
  kWild,
  kRegex,
  kCidrAndName,
  kPlainHttps,
  kTelemetry,
  kDnsNames,
  kWebAnyName
};

struct NameCase {
  const char* desc;
  const char* inside;
  const char* remote;
  uint8_t proto;
  uint16_t port;
  const char* name;  // nullptr: the flow offered no name
  bool needs_name;   // classify() says the flow must wait for its name
  int rule;          // the final decision (kDefault: the default action, deny)
};

const NameCase kNameCases[] = {
    {"exact name", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "api.stripe.com", true, kExact},
    {"exact name, IPv6", "fd00:1::5", "2001:db8::1", kProtoTcp, 443, "api.stripe.com", true,
     kExact},
    {"exact does not match a subdomain", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "x.api.stripe.com",
     true, kWebAnyName},
    {"wildcard: one label under", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "a.stripe.network", true,
     kWild},
    {"wildcard: two labels under", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "a.b.stripe.network",
     true, kWild},
    {"wildcard: not the apex", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "stripe.network", true,
     kWebAnyName},
    {"wildcard: not a longer last label", "10.1.0.5", "1.2.3.4", kProtoTcp, 443,
     "evilstripe.network", true, kWebAnyName},
    {"wildcard: not a name under another domain", "10.1.0.5", "1.2.3.4", kProtoTcp, 443,
     "stripe.network.evil.net", true, kWebAnyName},
    {"wildcard, IPv6", "fd00:1::9", "2001:db8::1", kProtoTcp, 443, "x.stripe.network", true, kWild},
    {"\"*\": any name", "10.1.0.5", "1.2.3.4", kProtoTcp, 443, "anything.io", true, kWebAnyName},
    {"\"*\" needs a name: none offered, no plain rule: default", "10.1.0.5", "1.2.3.4", kProtoTcp,
     443, nullptr, true, kDefault},
    {"no name falls through to a later plain rule", "10.1.0.5", "203.0.113.9", kProtoTcp, 443,
     nullptr, true, kPlainHttps},
    {"an earlier name rule beats a later plain rule", "10.1.0.5", "203.0.113.9", kProtoTcp, 443,
     "api.stripe.com", true, kExact},
    {"a failed name falls through to a later plain rule", "10.1.0.5", "203.0.113.9", kProtoTcp, 443,
     "other.com", true, kPlainHttps},
    {"a failed name falls through to a later name rule", "10.1.0.5", "1.2.3.4", kProtoTcp, 443,
     "other.com", true, kWebAnyName},
    {"an earlier plain rule wins: no wait for a name", "10.1.0.5", "198.19.0.53", kProtoUdp, 53,
     "x.tracker.example", false, kDnsPlain},
    {"regex matches", "10.2.3.4", "1.2.3.4", kProtoTcp, 80, "a-1.pkg.example.org", true, kRegex},
    {"regex: one label only", "10.2.3.4", "1.2.3.4", kProtoTcp, 443, "a.b.pkg.example.org", true,
     kDefault},
    {"regex candidate, wrong port: not chosen", "10.2.3.4", "1.2.3.4", kProtoTcp, 8080,
     "a-1.pkg.example.org", true, kDefault},
    {"regex candidate, wrong source service", "10.1.0.5", "1.2.3.4", kProtoTcp, 80,
     "a-1.pkg.example.org", true, kDefault},
    {"regex candidate, wrong proto", "10.2.3.4", "1.2.3.4", kProtoUdp, 80, "a-1.pkg.example.org",
     true, kDefault},
    {"literal candidate, wrong source service", "10.2.3.4", "1.2.3.4", kProtoTcp, 443,
     "api.stripe.com", true, kDefault},
    {"cidrs and name both hold", "10.9.9.9", "198.51.100.7", kProtoTcp, 8443, "secure.example.com",
     true, kCidrAndName},
    {"cidrs and name both hold, IPv6", "fd00:9::1", "2001:db8:5::1", kProtoTcp, 8443,
     "secure.example.com", true, kCidrAndName},
    {"cidr holds, name does not", "10.9.9.9", "198.51.100.7", kProtoTcp, 8443, "other.example.com",
     true, kDefault},
    {"name holds, cidr does not", "10.9.9.9", "192.0.2.1", kProtoTcp, 8443, "secure.example.com",
     true, kDefault},
    {"name holds, cidr of the other family only", "fd00:9::1", "2001:db8:6::1", kProtoTcp, 8443,
     "secure.example.com", true, kDefault},
    {"any proto and port, literal", "10.9.9.9", "8.8.8.8", kProtoTcp, 9999, "t.tracker.example",
     true, kTelemetry},
    {"any proto and port, regex, ICMP", "10.9.9.9", "8.8.8.8", kProtoIcmp, 0, "telemetry.foo.com",
     true, kTelemetry},
    {"any proto, ICMPv6", "fd00:9::1", "2001:db8::1", kIcmp6, 0, "a.b.tracker.example", true,
     kTelemetry},
    {"regex is not anchored at the end", "10.9.9.9", "8.8.8.8", kGre, 0, "telemetry.x", true,
     kTelemetry},
    {"wildcard apex", "10.9.9.9", "8.8.8.8", kProtoTcp, 1, "tracker.example", true, kDefault},
    {"name rule before a later \"*\" rule", "10.9.9.9", "9.9.9.9", kProtoUdp, 53,
     "t.tracker.example", true, kTelemetry},
    {"later \"*\" rule", "10.9.9.9", "9.9.9.9", kProtoUdp, 53, "a.b", true, kDnsNames},
    {"later \"*\" rule, no name", "10.9.9.9", "9.9.9.9", kProtoUdp, 53, nullptr, true, kDefault},
};

void expect_same(const Decision& got, const Decision& want) {
  EXPECT_EQ(got.verdict, want.verdict);
  EXPECT_EQ(got.rule_index, want.rule_index);
  EXPECT_EQ(got.needs_name, want.needs_name);
  EXPECT_EQ(got.first_index, want.first_index);
}

TEST(PolicyNames, Table) {
  for (size_t part : {mgmt::kRegexPartPatterns, size_t{1}}) {  // both regexes in one part, apart
    SCOPED_TRACE("parts of " + std::to_string(part));
    auto p = load_doc(kPolicy, 2, part);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->has_name_rules());
    EXPECT_EQ(p->scratch_count(), 2u);
    const Verdict kVerdicts[] = {Verdict::allow,  Verdict::allow, Verdict::allow,
                                 Verdict::allow,  Verdict::allow, Verdict::reject,
                                 Verdict::reject, Verdict::deny,  Verdict::allow};
    std::vector<FlowKey> keys;
    std::vector<Decision> singles;
    for (const NameCase& c : kNameCases) {
      SCOPED_TRACE(c.desc);
      FlowKey k = make_key(c.inside, c.remote, c.proto, c.port);
      Decision d = p->classify(k);
      keys.push_back(k);
      singles.push_back(d);
      EXPECT_EQ(d.needs_name, c.needs_name);
      Decision final = d;
      if (d.needs_name) {
        EXPECT_NE(d.first_index, kNoRule);
        EXPECT_LT(d.first_index, d.rule_index);  // the plain decision comes later (or default)
        l7::Name n;
        if (c.name) n = make_name(c.name);
        for (unsigned worker : {0u, 1u}) {
          final = p->decide_name(k, d, c.name ? &n : nullptr, worker);
          EXPECT_FALSE(final.needs_name);
          EXPECT_EQ(final.rule_index, c.rule == kDefault ? kNoRule : c.rule)
              << p->rule_id(final.rule_index);
        }
      } else {
        EXPECT_EQ(d.first_index, kNoRule);
        l7::Name n = make_name("api.stripe.com");
        expect_same(p->decide_name(k, d, &n, 0), d);  // nothing to decide: unchanged
      }
      EXPECT_EQ(final.rule_index, c.rule == kDefault ? kNoRule : c.rule);
      EXPECT_EQ(final.verdict, c.rule == kDefault ? Verdict::deny : kVerdicts[c.rule]);
    }
    // classify_bulk agrees with classify, field by field.
    std::vector<const FlowKey*> ptrs;
    for (const FlowKey& k : keys) ptrs.push_back(&k);
    std::vector<Decision> bulk(keys.size());
    p->classify_bulk(ptrs.data(), static_cast<unsigned>(ptrs.size()), bulk.data());
    for (size_t i = 0; i < keys.size(); ++i) {
      SCOPED_TRACE(kNameCases[i].desc);
      expect_same(bulk[i], singles[i]);
    }
  }
}

// ---------------------------------------------------------------- regexes in parts

// Two patterns to a rule: in parts of two, rule i's patterns are part i's.
const char* const kPartsPolicy = R"({"schema":1,"rulesets":[{"name":"r","rules":[
    {"id":"first","from":["any"],"proto":"tcp","ports":[443],
     "to":{"domain_regex":["^first\\.","^both\\."]},"action":"allow"},
    {"id":"mid","from":["any"],"proto":"tcp","ports":[443],
     "to":{"domain_regex":["^mid\\.","^both\\."]},"action":"deny"},
    {"id":"port","from":["any"],"proto":"tcp","ports":[8443],
     "to":{"domain_regex":["^port\\.","^skip\\."]},"action":"reject"},
    {"id":"last","from":["any"],"proto":"tcp",
     "to":{"domain_regex":["\\.last$","^skip\\."]},"action":"allow"}]}]})";

enum PartsRule : int { kFirst, kMid, kPort, kLast };

// Section 10's part count.
uint32_t regex_parts(const std::string& blob) {
  Blob b;
  b.bytes.assign(blob.begin(), blob.end());
  return b.elem<RegexDbHeader>(kSecNameRegexDb, 0).part_count;
}

TEST(PolicyNames, RegexesInParts) {
  struct Case {
    const char* desc;
    const char* name;
    uint16_t port;
    int rule;
  };
  const Case cases[] = {
      {"match in the first part", "first.a", 443, kFirst},
      {"match in the last part", "a.last", 443, kLast},
      {"two parts match: the lower rule", "both.a", 443, kFirst},
      {"a middle part", "mid.a", 443, kMid},
      {"first and last parts match: the lower rule", "first.a.last", 443, kFirst},
      {"a part's match fails L3/L4: a later part's holds", "skip.a", 443, kLast},
      {"the same name on the port that match holds for", "skip.a", 8443, kPort},
      {"no part matches", "none.a", 443, kDefault},
  };
  // Parts of 1 (eight databases), 2 (a rule each), 3 (cut inside rules), 8 (one).
  const std::pair<size_t, uint32_t> sizes[] = {{1, 8}, {2, 4}, {3, 3}, {8, 1}};
  for (auto [part, parts] : sizes) {
    SCOPED_TRACE("parts of " + std::to_string(part));
    const std::string blob = compile_blob(kPartsPolicy, part);
    EXPECT_EQ(regex_parts(blob), parts);
    std::string err;
    auto p =
        RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), &err, 2);
    ASSERT_NE(p, nullptr) << err;
    for (const Case& c : cases) {
      SCOPED_TRACE(c.desc);
      FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, c.port);
      Decision d = p->classify(k);
      ASSERT_TRUE(d.needs_name);
      l7::Name n = make_name(c.name);
      for (unsigned worker : {0u, 1u})
        EXPECT_EQ(p->decide_name(k, d, &n, worker).rule_index,
                  c.rule == kDefault ? kNoRule : c.rule);
    }
  }
}

TEST(PolicyNames, NoNameRulesMeansNoWaiting) {
  auto p = load_doc(R"({"schema":1,"rulesets":[{"name":"r","rules":[
      {"id":"a","from":["any"],"proto":"tcp","ports":[443],"action":"allow"}]}]})");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->has_name_rules());
  FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, 443);
  Decision d = p->classify(k);
  EXPECT_FALSE(d.needs_name);
  EXPECT_EQ(d.rule_index, 0);
  l7::Name n = make_name("a.b");
  expect_same(p->decide_name(k, d, &n, 0), d);
}

// A rule whose literal and regex entries both match a name is one candidate; a name
// matching many rules picks the first whose L3/L4 conditions hold.
TEST(PolicyNames, ManyCandidatesPickTheFirstThatHolds) {
  std::string rules;
  for (int i = 0; i < 300; ++i) {
    // Rules 0..299 all name "x.many.test"; only rule 290 is for port 443.
    rules += std::string(i ? "," : "") + R"({"id":"r)" + std::to_string(i) +
             R"(","from":["any"],"proto":"tcp","ports":[)" + (i == 290 ? "443" : "1") +
             R"(],"to":{"domains":["x.many.test"],"domain_regex":["^x\\.many"]},"action":"allow"})";
  }
  auto p = load_doc(R"({"schema":1,"rulesets":[{"name":"r","rules":[)" + rules + "]}]}");
  ASSERT_NE(p, nullptr);
  FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, 443);
  Decision d = p->classify(k);
  ASSERT_TRUE(d.needs_name);
  EXPECT_EQ(d.first_index, 290);
  l7::Name n = make_name("x.many.test");
  // Rule 290 is past the literal table's 256-candidate bound: the regex finds it.
  EXPECT_EQ(p->decide_name(k, d, &n, 0).rule_index, 290);
  k.remote_port = 1;
  d = p->classify(k);
  EXPECT_EQ(d.first_index, 0);
  EXPECT_EQ(p->decide_name(k, d, &n, 1).rule_index, 0);
}

// The documented bound: of the literal entries matching one name, only the 256 lowest
// rule indexes are candidates (docs/policy.md).
TEST(PolicyNames, LiteralCandidatesAreBounded) {
  std::string rules;
  for (int i = 0; i < 300; ++i)
    rules += std::string(i ? "," : "") + R"({"id":"r)" + std::to_string(i) +
             R"(","from":["any"],"proto":"tcp","ports":[)" + std::to_string(1000 + i) +
             R"(],"to":{"domains":["*.many.test"]},"action":"allow"})";
  auto p = load_doc(R"({"schema":1,"rulesets":[{"name":"r","rules":[)" + rules + "]}]}");
  ASSERT_NE(p, nullptr);
  l7::Name n = make_name("x.many.test");
  const std::pair<uint16_t, int> cases[] = {{1000, 0}, {1255, 255}, {1256, kDefault}};
  for (auto [port, rule] : cases) {
    SCOPED_TRACE(port);
    FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, port);
    Decision d = p->classify(k);
    ASSERT_TRUE(d.needs_name);
    EXPECT_EQ(p->decide_name(k, d, &n, 0).rule_index, rule == kDefault ? kNoRule : rule);
  }
}

// ---------------------------------------------------------------- loader: name sections

const char* const kSectionsDoc = R"({"schema":1,"rulesets":[{"name":"r","rules":[
    {"id":"plain","from":["any"],"proto":"udp","action":"allow"},
    {"id":"lit","from":["any"],"to":{"domains":["a.x.io"]},"action":"allow"},
    {"id":"re","from":["any"],"to":{"domain_regex":["^[a-z]+\\.y\\.io$","^b[0-9]+\\.",
      "^c[a-z]{2,9}\\.[a-z]+\\.z$","tracker"]},"action":"deny"}]}]})";

// kSectionsDoc with its four regexes in two parts.
Blob sections_blob() {
  Blob b;
  std::string s = compile_blob(kSectionsDoc, 2);
  b.bytes.assign(s.begin(), s.end());
  return b;
}

// Blob offset of section 10's entry of part k, and of part k's database.
size_t part_entry(const Blob& b, size_t k) {
  return b.section(b.section_index(kSecNameRegexDb)).offset + sizeof(RegexDbHeader) +
         k * sizeof(RegexDbPart);
}
size_t part_body(const Blob& b, size_t k) {
  return b.section(b.section_index(kSecNameRegexDb)).offset +
         b.get<RegexDbPart>(part_entry(b, k)).offset;
}

template <typename F>
void edit_part(Blob& b, size_t k, F f) {
  RegexDbPart part = b.get<RegexDbPart>(part_entry(b, k));
  f(part);
  b.put(part_entry(b, k), part);
  b.reseal();
}

template <typename F>
void edit_regex_header(Blob& b, F f) {
  b.edit_elem<RegexDbHeader>(kSecNameRegexDb, 0, f);
}

// A section 10 of one part: the database.
std::string one_part(const std::string& db) {
  const RegexDbHeader h{1, 0};
  const RegexDbPart part{sizeof(h) + sizeof(RegexDbPart), db.size()};
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) +
         std::string(reinterpret_cast<const char*>(&part), sizeof(part)) + db;
}

// Overwrites the start of the section of `type` with bytes and sets its size to theirs.
void replace_section(Blob& b, uint32_t type, const std::string& bytes) {
  abi::SectionEntry e = b.section(b.section_index(type));
  ASSERT_LE(bytes.size(), e.size + 7);  // the body is 8-byte padded
  std::memcpy(b.bytes.data() + e.offset, bytes.data(), bytes.size());
  b.edit_section(type, [&](abi::SectionEntry& s) { s.size = bytes.size(); });
}

std::string domain_table(uint32_t value) {
  l7::DomainTableBuilder t;
  std::string err;
  EXPECT_TRUE(t.add("a.x.io", value, &err)) << err;
  return t.build();
}

const test::BlobCorruption kSectionCases[] = {
    {"domain table byte flipped",
     [](Blob& b) {
       auto e = b.section(b.section_index(abi::kSecDomainTable));
       b.bytes[e.offset + e.size - 3] ^= 0x20;
       b.reseal();
     },
     "domain_table: checksum mismatch"},
    {"domain table truncated",
     [](Blob& b) {
       b.edit_section(abi::kSecDomainTable, [](abi::SectionEntry& s) { s.size -= 8; });
     },
     "domain_table: body length"},
    {"domain table empty",
     [](Blob& b) {
       b.edit_section(abi::kSecDomainTable, [](abi::SectionEntry& s) { s.size = 0; });
     },
     "domain_table: shorter than its header"},
    {"domain table value past the rules",
     [](Blob& b) { replace_section(b, abi::kSecDomainTable, domain_table(3)); },
     "domain_table: value 3 is not a rule index (3 rules)"},
    {"domain table value names a rule without a name condition",
     [](Blob& b) { replace_section(b, abi::kSecDomainTable, domain_table(0)); },
     "domain_table: rule 0 has no name condition"},
    {"regex database byte flipped (last part)",
     [](Blob& b) {
       b.bytes[part_body(b, 1) + b.get<RegexDbPart>(part_entry(b, 1)).size / 2] ^= 0x01;
       b.reseal();
     },
     "name_regex_db part 1: invalid or corrupted"},
    {"regex section truncated: the last part runs past it",
     [](Blob& b) {
       b.edit_section(abi::kSecNameRegexDb, [](abi::SectionEntry& s) { s.size -= 8; });
     },
     "name_regex_db part 1 ["},
    {"regex section shorter than its header",
     [](Blob& b) {
       b.edit_section(abi::kSecNameRegexDb, [](abi::SectionEntry& s) { s.size = 4; });
     },
     "name_regex_db: 4 bytes, shorter than its header"},
    {"regex section cut inside its part table",
     [](Blob& b) {
       b.edit_section(abi::kSecNameRegexDb, [](abi::SectionEntry& s) { s.size = 16; });
     },
     "name_regex_db: the table of 2 parts extends past the section (16 bytes)"},
    {"part count 0",
     [](Blob& b) { edit_regex_header(b, [](RegexDbHeader& h) { h.part_count = 0; }); },
     "name_regex_db: part_count 0 is not in 1..4096"},
    {"part count over the limit",
     [](Blob& b) { edit_regex_header(b, [](RegexDbHeader& h) { h.part_count = 4097; }); },
     "name_regex_db: part_count 4097 is not in 1..4096"},
    {"part count whose table runs past the section",
     [](Blob& b) { edit_regex_header(b, [](RegexDbHeader& h) { h.part_count = 4096; }); },
     "name_regex_db: the table of 4096 parts extends past the section"},
    {"part count 3: the last part's database as the third entry",
     [](Blob& b) { edit_regex_header(b, [](RegexDbHeader& h) { h.part_count = 3; }); },
     "name_regex_db part 0 offset 40 overlaps the part table or the previous part"},
    {"reserved header field set",
     [](Blob& b) { edit_regex_header(b, [](RegexDbHeader& h) { h.reserved = 1; }); },
     "name_regex_db: reserved header field is not 0"},
    {"part offset not aligned",
     [](Blob& b) { edit_part(b, 1, [](RegexDbPart& p) { p.offset += 4; }); },
     "name_regex_db part 1 offset"},
    {"part offset inside the part table",
     [](Blob& b) { edit_part(b, 0, [](RegexDbPart& p) { p.offset = 8; }); },
     "name_regex_db part 0 offset 8 overlaps the part table or the previous part"},
    {"part offset inside the previous part",
     [](Blob& b) { edit_part(b, 1, [](RegexDbPart& p) { p.offset -= 8; }); },
     "name_regex_db part 1 offset"},
    {"part offset past the section",
     [](Blob& b) { edit_part(b, 1, [](RegexDbPart& p) { p.offset = uint64_t{1} << 62; }); },
     "name_regex_db part 1 [4611686018427387904, +"},
    {"part size past the section",
     [](Blob& b) { edit_part(b, 0, [](RegexDbPart& p) { p.size = ~uint64_t{0}; }); },
     "name_regex_db part 0 [40, +18446744073709551615) extends past the section"},
    {"part cut to its first bytes",
     [](Blob& b) { edit_part(b, 0, [](RegexDbPart& p) { p.size = 16; }); },
     "name_regex_db part 0: not a serialized Hyperscan database"},
    {"part magic overwritten",
     [](Blob& b) {
       std::memset(b.bytes.data() + part_body(b, 1), 0, 8);
       b.reseal();
     },
     "name_regex_db part 1: not a serialized Hyperscan database"},
    {"part in streaming mode",
     [](Blob& b) {
       replace_section(
           b, abi::kSecNameRegexDb,
           one_part(test::serialized_hs_db({"^x"}, HS_FLAG_SINGLEMATCH, HS_MODE_STREAM)));
     },
     "name_regex_db part 0: not a block-mode database"},
    {"name sections missing",
     [](Blob& b) {
       b.edit_section(abi::kSecDomainTable, [](abi::SectionEntry& s) { s.type = 99; });
       b.edit_section(abi::kSecNameRegexDb, [](abi::SectionEntry& s) { s.type = 98; });
     },
     "rules have name conditions but the domain_table and name_regex_db sections are both "
     "missing"},
    {"name sections without a rule that needs them",
     [](Blob& b) {
       for (size_t i = 1; i < 3; ++i)
         b.edit_elem<abi::RuleRec>(abi::kSecRules, i,
                                   [](abi::RuleRec& r) { r.flags &= ~abi::kRuleNeedsName; });
     },
     "no rule has a name condition"},
    {"domain table twice",
     [](Blob& b) {
       b.edit_section(abi::kSecNameRegexDb,
                      [](abi::SectionEntry& s) { s.type = abi::kSecDomainTable; });
     },
     "(domain_table) appears more than once"},
};

TEST(PolicyNames, LoaderRefusesBadNameSections) {
  const Blob good = sections_blob();
  std::string err;
  ASSERT_NE(RuntimePolicy::load(good.data(), good.size(), &err), nullptr) << err;
  test::expect_refused(good, kSectionCases);
}

TEST(PolicyNames, LoaderChecksScratchCount) {
  const Blob good = sections_blob();
  struct Case {
    unsigned count;
    bool ok;
  };
  for (Case c :
       {Case{0, false}, Case{1, true}, Case{64, true}, Case{1024, true}, Case{1025, false}}) {
    SCOPED_TRACE(c.count);
    std::string err;
    auto p = RuntimePolicy::load(good.data(), good.size(), &err, c.count);
    EXPECT_EQ(p != nullptr, c.ok) << err;
    if (p) {
      EXPECT_EQ(p->scratch_count(), c.count);
      // The last worker's scratch works.
      FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, 80);
      Decision d = p->classify(k);
      ASSERT_TRUE(d.needs_name);
      l7::Name n = make_name("b7.q");
      EXPECT_EQ(p->decide_name(k, d, &n, c.count - 1).rule_index, 2);
    } else {
      EXPECT_NE(err.find("scratch_count"), std::string::npos) << err;
    }
  }
}

TEST(PolicyNames, KeepsItsOwnCopyOfTheNameSections) {
  Blob b = sections_blob();
  std::string err;
  auto p = RuntimePolicy::load(b.data(), b.size(), &err);
  ASSERT_NE(p, nullptr) << err;
  std::fill(b.bytes.begin(), b.bytes.end(), 0xa5);
  b.bytes.clear();
  b.bytes.shrink_to_fit();
  FlowKey k = make_key("10.0.0.1", "1.2.3.4", kProtoTcp, 80);
  Decision d = p->classify(k);
  ASSERT_TRUE(d.needs_name);
  const std::pair<const char*, int> names[] = {
      {"a.x.io", 1}, {"q.y.io", 2}, {"cab.d.z", 2}, {"a.tracker.b", 2}, {"x.io", kDefault}};
  for (auto [name, rule] : names) {
    l7::Name n = make_name(name);
    EXPECT_EQ(p->decide_name(k, d, &n, 0).rule_index, rule == kDefault ? kNoRule : rule) << name;
  }
}

// ---------------------------------------------------------------- differential test

const char* const kSvcCidrs[][2] = {
    {"10.0.0.0/16", "fd00:a::/32"}, {"10.1.0.0/16", nullptr}, {"10.2.0.0/16", "fd00:c::/32"}};
const char* const kDstCidrs[] = {"198.19.0.0/16", "198.19.1.0/24", "2001:db8::/32",
                                 "2001:db8:1::/48"};
const char* const kPorts[] = {"53", "80", "443", "\"8000-8100\""};
const char* const kDomains[] = {
    "example.com",     "*.example.com",      "*",           "x.io",         "*.x.io",
    "api.example.com", "*.svc3.example.org", "tracker.net", "*.tracker.net"};
const char* const kRegexes[] = {"^api\\.", "\\.example\\.com$",
                                "^[a-z]+\\.svc[0-9]\\.example\\.org$", "tracker",
                                "^a[0-9]*\\.x\\.io$"};
const char* const kNames[] = {"example.com",
                              "api.example.com",
                              "a.b.example.com",
                              "evilexample.com",
                              "example.com.evil.net",
                              "x.io",
                              "a1.x.io",
                              "a.x.io",
                              "b.svc3.example.org",
                              "b.svc4.example.org",
                              "tracker.net",
                              "t.tracker.net",
                              "trackers.io",
                              nullptr};

struct GenRule {
  std::vector<int> from;  // service indexes; empty = any
  uint8_t proto = kProtoAny;
  std::vector<int> ports, cidrs, domains, regexes;  // indexes into the pools
  int action = 0;
};

struct GenPolicy {
  int default_action = 0;
  std::vector<GenRule> rules;
};

struct Gen {
  std::mt19937_64 rng;
  bool with_regex;
  Gen(uint64_t seed, bool regex) : rng(seed), with_regex(regex) {}
  int pick(int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); }
  std::vector<int> distinct(int pool, int max) {
    std::vector<int> out;
    for (int i = 0, n = 1 + pick(max); i < n; ++i) {
      int v = pick(pool);
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
    return out;
  }

  GenPolicy policy() {
    static const uint8_t kProtos[] = {kProtoAny, kProtoTcp, kProtoUdp, kProtoIcmp};
    GenPolicy g;
    g.default_action = pick(3);
    for (int i = 0, n = 20 + pick(20); i < n; ++i) {
      GenRule r;
      if (pick(3)) r.from = distinct(3, 2);
      r.proto = kProtos[pick(4)];
      if (r.proto != kProtoIcmp && pick(2)) r.ports = distinct(std::size(kPorts), 2);
      if (pick(5) < 2) r.cidrs = distinct(std::size(kDstCidrs), 2);
      if (pick(2)) r.domains = distinct(std::size(kDomains), 3);
      if (with_regex && pick(4) == 0) r.regexes = distinct(std::size(kRegexes), 2);
      r.action = pick(3);
      g.rules.push_back(r);
    }
    return g;
  }

  FlowKey key() {
    static const uint8_t kKeyProtos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kIcmp6, kGre};
    static const uint16_t kKeyPorts[] = {53, 80, 443, 8050, 9999};
    FlowKey k{};
    k.family = pick(2) ? 4 : 6;
    std::string inside, remote;
    if (k.family == 4) {
      inside = "10." + std::to_string(pick(4)) + ".0." + std::to_string(1 + pick(9));
      remote = pick(3) ? "198.19." + std::to_string(pick(3)) + ".7" : "192.0.2.7";
    } else {
      static const char* const kIn[] = {"fd00:a::5", "fd00:c::5", "fd00:b::5"};
      static const char* const kOut[] = {"2001:db8::7", "2001:db8:1::7", "2001:db9::7"};
      inside = kIn[pick(3)];
      remote = kOut[pick(3)];
    }
    k = make_key(inside.c_str(), remote.c_str(), kKeyProtos[pick(5)], kKeyPorts[pick(5)]);
    return k;
  }
};

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; ++p) {
    if (*p == '\\' || *p == '"') out += '\\';
    out += *p;
  }
  return out + "\"";
}

std::string render(const GenPolicy& g) {
  static const char* const kActions[] = {"allow", "deny", "reject"};
  auto list = [](const std::vector<int>& idx, auto item) {
    std::string out = "[";
    for (size_t i = 0; i < idx.size(); ++i) out += (i ? "," : "") + item(idx[i]);
    return out + "]";
  };
  std::string doc = R"({"schema":1,"default_action":")" + std::string(kActions[g.default_action]) +
                    R"(","services":{)";
  for (int s = 0; s < 3; ++s) {
    doc += (s ? "," : "") + std::string("\"s") + std::to_string(s) + "\":{\"cidrs\":[\"" +
           kSvcCidrs[s][0] + "\"" +
           (kSvcCidrs[s][1] ? std::string(",\"") + kSvcCidrs[s][1] + "\"" : "") + "]}";
  }
  doc += R"(},"rulesets":[{"name":"gen","rules":[)";
  for (size_t i = 0; i < g.rules.size(); ++i) {
    const GenRule& r = g.rules[i];
    doc += std::string(i ? "," : "") + "{\"id\":\"r" + std::to_string(i) + "\",\"from\":" +
           (r.from.empty() ? std::string("[\"any\"]")
                           : list(r.from, [](int s) { return "\"s" + std::to_string(s) + "\""; }));
    const char* proto = r.proto == kProtoTcp    ? "tcp"
                        : r.proto == kProtoUdp  ? "udp"
                        : r.proto == kProtoIcmp ? "icmp"
                                                : "any";
    doc += ",\"proto\":\"" + std::string(proto) + "\"";
    if (!r.ports.empty())
      doc += ",\"ports\":" + list(r.ports, [](int p) { return std::string(kPorts[p]); });
    std::string to;
    if (!r.cidrs.empty())
      to += "\"cidrs\":" + list(r.cidrs, [](int c) { return json_string(kDstCidrs[c]); });
    if (!r.domains.empty())
      to += std::string(to.empty() ? "" : ",") +
            "\"domains\":" + list(r.domains, [](int d) { return json_string(kDomains[d]); });
    if (!r.regexes.empty())
      to += std::string(to.empty() ? "" : ",") +
            "\"domain_regex\":" + list(r.regexes, [](int x) { return json_string(kRegexes[x]); });
    if (!to.empty()) doc += ",\"to\":{" + to + "}";
    doc += ",\"action\":\"" + std::string(kActions[r.action]) + "\"}";
  }
  return doc + "]}]}";
}

bool holds(const char* cidr_text, int family, const uint8_t* ip) {
  abi::CidrRec c = test::parse_cidr(cidr_text);
  if (c.family != family) return false;
  for (int bit = 0; bit < c.prefix; ++bit) {
    uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((c.addr[bit / 8] & m) != (ip[bit / 8] & m)) return false;
  }
  return true;
}

bool domain_matches(const std::string& d, const std::string& name) {
  if (d == "*") return true;
  if (d.rfind("*.", 0) == 0) {
    const std::string suffix = d.substr(1);  // ".example.com"
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return name == d;
}

// The contract read literally: the first rule whose every condition holds, in order.
struct RefResult {
  int first_l34 = kDefault;  // first rule whose from/proto/ports/cidrs hold
  int rule = kDefault;       // the final decision with this name
};

RefResult reference(const GenPolicy& g, const FlowKey& k, const char* name) {
  int svc = -1;
  for (int s = 0; s < 3; ++s)
    for (const char* c : kSvcCidrs[s])
      if (c && holds(c, k.family, k.inside_ip)) svc = s;
  RefResult out;
  for (size_t i = 0; i < g.rules.size(); ++i) {
    const GenRule& r = g.rules[i];
    if (!r.from.empty() && std::find(r.from.begin(), r.from.end(), svc) == r.from.end()) continue;
    const int icmp = k.family == 4 ? int{kProtoIcmp} : int{kIcmp6};
    if (r.proto == kProtoIcmp && k.proto != icmp) continue;
    if ((r.proto == kProtoTcp || r.proto == kProtoUdp) && k.proto != r.proto) continue;
    if (!r.ports.empty()) {
      if (k.proto != kProtoTcp && k.proto != kProtoUdp) continue;
      bool hit = false;
      for (int p : r.ports) {
        int lo = p == 3 ? 8000 : std::atoi(kPorts[p]), hi = p == 3 ? 8100 : lo;
        hit = hit || (k.remote_port >= lo && k.remote_port <= hi);
      }
      if (!hit) continue;
    }
    if (!r.cidrs.empty()) {
      bool hit = false;
      for (int c : r.cidrs) hit = hit || holds(kDstCidrs[c], k.family, k.remote_ip);
      if (!hit) continue;
    }
    if (out.first_l34 == kDefault) out.first_l34 = static_cast<int>(i);
    if (!r.domains.empty() || !r.regexes.empty()) {
      bool hit = false;
      for (int d : r.domains) hit = hit || (name && domain_matches(kDomains[d], name));
      static const std::vector<std::regex> kCompiled(std::begin(kRegexes), std::end(kRegexes));
      for (int x : r.regexes) hit = hit || (name && std::regex_search(name, kCompiled[x]));
      if (!hit) continue;
    }
    out.rule = static_cast<int>(i);
    return out;
  }
  return out;
}

TEST(PolicyNames, DifferentialAgainstLinearEvaluator) {
  struct Run {
    uint64_t seed;
    bool regex;
    size_t part;  // domain_regex patterns per database
  };
  const Run runs[] = {{1, false, mgmt::kRegexPartPatterns},
                      {2, false, mgmt::kRegexPartPatterns},
                      {3, true, mgmt::kRegexPartPatterns},
                      {0xdecafbad, true, 1},
                      {20261127, true, 2}};
  for (const Run& run : runs) {
    SCOPED_TRACE("seed " + std::to_string(run.seed) + (run.regex ? " with regex" : "") +
                 ", parts of " + std::to_string(run.part));
    Gen gen(run.seed, run.regex);
    GenPolicy g = gen.policy();
    auto p = load_doc(render(g), 3, run.part);
    ASSERT_NE(p, nullptr);
    size_t waited = 0, by_name = 0;
    for (int i = 0; i < 3000; ++i) {
      FlowKey k = gen.key();
      const char* name = kNames[gen.pick(std::size(kNames))];
      RefResult want = reference(g, k, name);
      const bool want_wait =
          want.first_l34 != kDefault &&
          (!g.rules[want.first_l34].domains.empty() || !g.rules[want.first_l34].regexes.empty());
      Decision d = p->classify(k);
      ASSERT_EQ(d.needs_name, want_wait) << "key " << i;
      Decision final = d;
      if (d.needs_name) {
        ASSERT_EQ(d.first_index, want.first_l34);
        l7::Name n;
        if (name) n = make_name(name);
        final = p->decide_name(k, d, name ? &n : nullptr, static_cast<unsigned>(i % 3));
        ++waited;
        by_name += final.rule_index != d.rule_index;
      }
      ASSERT_EQ(final.rule_index, want.rule == kDefault ? kNoRule : want.rule)
          << "key " << i << " name " << (name ? name : "(none)");
    }
    EXPECT_GT(waited, 300u) << "too few flows waited for a name to be a useful comparison";
    EXPECT_GT(by_name, 50u) << "too few names changed the decision";
  }
}

}  // namespace
}  // namespace egw
