// Tests of RuntimePolicy (dataplane/policy.cc): blob validation (negative table), the
// classification semantics (table), and a differential test against a linear evaluator.
// Runs in the unit test binary (EAL initialised by tests/test_main.cc).
#include "dataplane/policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <random>

#include "tests/support/blob_builder.h"
#include "tests/support/blob_cases.h"

namespace egw {
namespace {

using test::Blob;
using test::BlobRule;
using test::BlobService;
using test::BlobSpec;
using test::build_blob;

constexpr uint8_t kIcmp6 = 58, kGre = 47;

FlowKey make_key(const std::string& inside, const std::string& remote, uint8_t proto,
                 uint16_t port) {
  FlowKey k{};
  if (inet_pton(AF_INET, inside.c_str(), k.inside_ip) == 1) {
    k.family = 4;
    EXPECT_EQ(inet_pton(AF_INET, remote.c_str(), k.remote_ip), 1) << remote;
  } else {
    k.family = 6;
    EXPECT_EQ(inet_pton(AF_INET6, inside.c_str(), k.inside_ip), 1) << inside;
    EXPECT_EQ(inet_pton(AF_INET6, remote.c_str(), k.remote_ip), 1) << remote;
  }
  k.proto = proto;
  k.inside_port = 40000;
  k.remote_port = port;
  return k;
}

std::unique_ptr<RuntimePolicy> load(const Blob& b, std::string* err) {
  return RuntimePolicy::load(b.data(), b.size(), err);
}

// A policy exercising every kind of condition (also the base of the negative table).
BlobSpec base_spec() {
  BlobSpec s;
  s.services = {
      {"corp", {"10.0.0.0/8", "fd00::/8"}},
      {"payments", {"10.1.0.0/16", "fd00:1::/32"}},
      {"ci", {"10.2.0.0/16"}},
      {"pay-hot", {"10.1.5.0/24"}},
  };
  auto rule = [](std::string id, uint8_t action, uint8_t proto, std::vector<std::string> from,
                 std::vector<std::pair<uint16_t, uint16_t>> ports, std::vector<std::string> cidrs) {
    BlobRule r;
    r.id = std::move(id);
    r.action = action;
    r.proto = proto;
    r.from_any = from.empty();
    r.from = std::move(from);
    r.ports = std::move(ports);
    r.cidrs = std::move(cidrs);
    return r;
  };
  using namespace abi;
  s.rules = {
      rule("hot-ssh", kActionDeny, kProtoTcp, {"pay-hot"}, {{22, 22}}, {}),
      rule("dns", kActionAllow, kProtoUdp, {}, {{53, 53}},
           {"198.19.0.53/32", "2001:db8:53::53/128"}),
      rule("pay-web", kActionAllow, kProtoTcp, {"payments"}, {{443, 443}, {8000, 8100}},
           {"203.0.113.0/24", "2001:db8:1::/48"}),
      rule("ci-deny", kActionDeny, kProtoTcp, {"ci"}, {}, {"192.0.2.0/24"}),
      rule("ci-web", kActionAllow, kProtoTcp, {"ci"}, {{443, 443}}, {"192.0.2.0/24"}),
      rule("icmp", kActionAllow, kProtoIcmp, {"corp"}, {}, {}),
      rule("ports-any-proto", kActionReject, kProtoAny, {}, {{7000, 7001}}, {"198.51.100.0/24"}),
      rule("v6-only", kActionAllow, kProtoAny, {}, {}, {"2001:db8:ff::/48"}),
      rule("corp-any", kActionAllow, kProtoAny, {"corp", "ci"}, {}, {"198.51.100.7/32"}),
  };
  s.version = 42;
  return s;
}

// ---------------------------------------------------------------- loader: negative table

using namespace abi;

const test::BlobCorruption kBadCases[] = {
    {"empty input", [](Blob& b) { b.bytes.clear(); }, "shorter than the 72-byte header"},
    {"bad magic", [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.magic = 0x12345678; }); },
     "bad magic"},
    {"older ABI version (before name conditions)",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.abi_version = 1; }); },
     "ABI version 1, this dataplane reads 5"},
    {"older ABI version (domain table version 1)",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.abi_version = 2; }); },
     "ABI version 2, this dataplane reads 5"},
    {"older ABI version (regexes in one database)",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.abi_version = 3; }); },
     "ABI version 3, this dataplane reads 5"},
    {"older ABI version (no rate limits, no report rulesets)",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.abi_version = 4; }); },
     "ABI version 4, this dataplane reads 5"},
    {"newer ABI version",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.abi_version = 6; }); }, "ABI version 6"},
    {"wrong header_size",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.header_size = 80; }); }, "header_size 80"},
    {"total_size larger than the blob",
     [](Blob& b) { b.edit_header([&](PolicyHeader& h) { h.total_size = b.size() + 8; }, false); },
     "total_size"},
    {"trailing bytes after total_size", [](Blob& b) { b.bytes.resize(b.size() + 8, 0); },
     "total_size"},
    {"reserved flags set", [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.flags = 1; }); },
     "flags"},
    {"bad checksum", [](Blob& b) { b.bytes[b.size() - 1] ^= 0x40; }, "checksum"},
    {"checksum field altered",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.checksum ^= 1; }, false); }, "checksum"},
    {"section table past the end",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.section_count = 100000; }); },
     "section table"},
    {"section table count overflow",
     [](Blob& b) { b.edit_header([](PolicyHeader& h) { h.section_count = 0xffffffff; }); },
     "section table"},
    {"section past the end",
     [](Blob& b) { b.edit_section(kSecRules, [](SectionEntry& s) { s.size += 40 * 1000; }); },
     "section 4 (rules) extends past the end of the blob"},
    {"section offset near 2^64",
     [](Blob& b) {
       b.edit_section(kSecRuleCidrs, [](SectionEntry& s) { s.offset = 0xfffffffffffffff8ull; });
     },
     "section 7 (rule_cidrs) extends past the end of the blob"},
    {"section size near 2^64",
     [](Blob& b) {
       b.edit_section(kSecStrings, [](SectionEntry& s) { s.size = 0xffffffffffffffffull; });
     },
     "section 1 (strings) extends past the end of the blob"},
    {"misaligned section",
     [](Blob& b) { b.edit_section(kSecServices, [](SectionEntry& s) { s.offset += 4; }); },
     "section 2 (services) offset"},
    {"section over the header",
     [](Blob& b) { b.edit_section(kSecServices, [](SectionEntry& s) { s.offset = 8; }); },
     "section 2 (services) overlaps the header"},
    {"wrong elem_size",
     [](Blob& b) { b.edit_section(kSecRules, [](SectionEntry& s) { s.elem_size = 36; }); },
     "section 4 (rules) elem_size 36, expected 40"},
    {"size not a multiple of elem_size",
     [](Blob& b) { b.edit_section(kSecRules, [](SectionEntry& s) { s.size -= 8; }); },
     "not a multiple of 40"},
    {"missing section",
     [](Blob& b) { b.edit_section(kSecRulePorts, [](SectionEntry& s) { s.type = 99; }); },
     "required section rule_ports is missing"},
    {"duplicate section",
     [](Blob& b) {
       b.edit_section(kSecRuleCidrs, [](SectionEntry& s) { s.type = kSecServiceCidrs; });
     },
     "section 7 (service_cidrs) appears more than once"},
    {"two settings elements",
     [](Blob& b) { b.edit_section(kSecSettings, [](SectionEntry& s) { s.size = 80; }); },
     "exactly one element"},
    {"no settings element",
     [](Blob& b) { b.edit_section(kSecSettings, [](SectionEntry& s) { s.size = 0; }); },
     "exactly one element"},
    {"rule id out of strings",
     [](Blob& b) { b.edit_elem<RuleRec>(kSecRules, 0, [](RuleRec& r) { r.id.offset = 100000; }); },
     "rule 0 id"},
    {"rule id offset+length overflow",
     [](Blob& b) {
       b.edit_elem<RuleRec>(kSecRules, 2, [](RuleRec& r) { r.id = {0xffffffff, 2}; });
     },
     "rule 2 id"},
    {"service name out of strings",
     [](Blob& b) {
       b.edit_elem<ServiceRec>(kSecServices, 1, [](ServiceRec& s) { s.name.length = 100000; });
     },
     "service 1 name"},
    {"service cidr range overflow",
     [](Blob& b) {
       b.edit_elem<ServiceRec>(kSecServices, 0,
                               [](ServiceRec& s) { s.cidr_first = 0xffffffff, s.cidr_count = 2; });
     },
     "service 0 cidrs"},
    {"service cidr refers to another service",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecServiceCidrs, 0, [](CidrRec& c) { c.ref = 2; }); },
     "refers to service 2"},
    {"rule from range overflow",
     [](Blob& b) {
       b.edit_elem<RuleRec>(kSecRules, 0,
                            [](RuleRec& r) { r.from_first = 0xffffffff, r.from_count = 2; });
     },
     "rule 0 from"},
    {"rule port range overflow",
     [](Blob& b) {
       b.edit_elem<RuleRec>(kSecRules, 2,
                            [](RuleRec& r) { r.port_first = 0xffffffff, r.port_count = 2; });
     },
     "rule 2 ports"},
    {"rule cidr range past the array",
     [](Blob& b) { b.edit_elem<RuleRec>(kSecRules, 2, [](RuleRec& r) { r.cidr_count = 1000; }); },
     "rule 2 cidrs"},
    {"rule_from names a missing service",
     [](Blob& b) { b.edit_elem<uint32_t>(kSecRuleFrom, 0, [](uint32_t& v) { v = 99; }); },
     "names service 99"},
    {"IPv4 prefix over 32",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecRuleCidrs, 0, [](CidrRec& c) { c.prefix = 33; }); },
     "rule cidr 0: IPv4 prefix /33"},
    {"IPv6 prefix over 128",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecServiceCidrs, 1, [](CidrRec& c) { c.prefix = 129; }); },
     "service cidr 1: IPv6 prefix /129"},
    {"bad family",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecRuleCidrs, 1, [](CidrRec& c) { c.family = 5; }); },
     "rule cidr 1: family 5"},
    {"host bits set",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecServiceCidrs, 2, [](CidrRec& c) { c.addr[3] = 1; }); },
     "service cidr 2: address bits set past the prefix"},
    {"IPv4 address with bytes past 4",
     [](Blob& b) { b.edit_elem<CidrRec>(kSecRuleCidrs, 0, [](CidrRec& c) { c.addr[9] = 1; }); },
     "rule cidr 0: address bits set"},
    {"port lo > hi",
     [](Blob& b) {
       b.edit_elem<PortRange>(kSecRulePorts, 1, [](PortRange& p) { p.lo = 90, p.hi = 80; });
     },
     "lo 90 > hi 80"},
    {"bad action",
     [](Blob& b) { b.edit_elem<RuleRec>(kSecRules, 3, [](RuleRec& r) { r.action = 3; }); },
     "rule 3: unknown action 3"},
    {"bad proto",
     [](Blob& b) { b.edit_elem<RuleRec>(kSecRules, 3, [](RuleRec& r) { r.proto = 2; }); },
     "rule 3: unknown proto 2"},
    {"unknown rule flags",
     [](Blob& b) { b.edit_elem<RuleRec>(kSecRules, 3, [](RuleRec& r) { r.flags = 8; }); },
     "rule 3: unknown flags"},
    {"a rule needs a name but there is no name section",
     [](Blob& b) {
       b.edit_elem<RuleRec>(kSecRules, 3, [](RuleRec& r) { r.flags |= kRuleNeedsName; });
     },
     "the domain_table and name_regex_db sections are both missing"},
    {"bad default action",
     [](Blob& b) {
       b.edit_elem<Settings>(kSecSettings, 0, [](Settings& s) { s.default_action = 7; });
     },
     "unknown default_action 7"},
    {"bad established mode",
     [](Blob& b) {
       b.edit_elem<Settings>(kSecSettings, 0, [](Settings& s) { s.established_mode = 2; });
     },
     "unknown established_mode 2"},
    {"zero timeout",
     [](Blob& b) { b.edit_elem<Settings>(kSecSettings, 0, [](Settings& s) { s.udp_s = 0; }); },
     "udp_s is 0"},
};

TEST(PolicyLoad, RejectsBadBlobs) {
  const Blob good = build_blob(base_spec());
  std::string err;
  ASSERT_NE(load(good, &err), nullptr) << err;
  test::expect_refused(good, kBadCases);
}

TEST(PolicyLoad, RejectsEveryTruncation) {
  const Blob good = build_blob(base_spec());
  const size_t lens[] = {0, 1, 71, 72, 73, 100, good.size() / 2, good.size() - 8, good.size() - 1};
  for (size_t len : lens) {
    SCOPED_TRACE("truncated at " + std::to_string(len));
    std::vector<uint8_t> cut(good.bytes.begin(), good.bytes.begin() + static_cast<long>(len));
    std::string err;
    EXPECT_EQ(RuntimePolicy::load(cut.data(), cut.size(), &err), nullptr);
    EXPECT_TRUE(err.find(len < 72 ? "shorter than" : "total_size") != std::string::npos) << err;
  }
  // Every prefix, also with the header's total_size and checksum fixed up: never accepted
  // unless it is the whole blob, never read past the end (ASan).
  for (size_t len = 72; len < good.size(); len += 8) {
    Blob cut;
    cut.bytes.assign(good.bytes.begin(), good.bytes.begin() + static_cast<long>(len));
    cut.reseal();
    std::string err;
    EXPECT_EQ(load(cut, &err), nullptr) << "resealed prefix of " << len << " bytes loaded";
  }
  std::string err;
  EXPECT_EQ(RuntimePolicy::load(nullptr, 0, &err), nullptr);
}

TEST(PolicyLoad, RejectsTooManyRulesAndOversizedExpansion) {
  struct Case {
    const char* desc;
    std::function<BlobSpec()> spec;
    const char* want;
  };
  const Case cases[] = {
      {"more rules than kMaxRules",
       [] {
         BlobSpec s;
         s.rules.resize(kMaxRules + 1);
         for (auto& r : s.rules) r.id = "r";
         return s;
       },
       "65001 rules"},
      {"from x cidrs x ports expands past the classifier limit",
       [] {
         BlobSpec s;
         BlobRule r;
         r.id = "huge";
         r.proto = kProtoTcp;
         for (int i = 0; i < 400; ++i) r.ports.push_back({uint16_t(i), uint16_t(i)});
         for (int i = 0; i < 400; ++i)
           r.cidrs.push_back("10." + std::to_string(i / 250) + "." + std::to_string(i % 250) +
                             ".0/24");
         s.rules.push_back(r);
         return s;
       },
       "classifier entries"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    std::string err;
    EXPECT_EQ(load(build_blob(c.spec()), &err), nullptr);
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
}

TEST(PolicyLoad, KeepsItsOwnCopy) {
  std::string err;
  Blob b = build_blob(base_spec());
  std::vector<uint8_t> copy = b.bytes;
  auto p = RuntimePolicy::load(copy.data(), copy.size(), &err);
  ASSERT_NE(p, nullptr) << err;
  std::fill(copy.begin(), copy.end(), 0xa5);  // the blob memory goes away after load
  copy.clear();
  copy.shrink_to_fit();
  EXPECT_EQ(p->version(), 42u);
  EXPECT_EQ(p->rule_count(), 9u);
  EXPECT_STREQ(p->rule_id(2), "pay-web");
  EXPECT_STREQ(p->rule_id(kNoRule), "");
  EXPECT_STREQ(p->rule_id(9), "");
  auto d = p->classify(make_key("10.1.6.9", "203.0.113.5", kProtoTcp, 443));
  EXPECT_EQ(d.verdict, Verdict::allow);
  EXPECT_EQ(d.rule_index, 2);
}

TEST(PolicyLoad, SettingsAndTimeouts) {
  BlobSpec s = base_spec();
  s.settings.tcp_syn_s = 5;
  s.settings.tcp_established_s = 7200;
  s.settings.tcp_closing_s = 9;
  s.settings.udp_s = 11;
  s.settings.icmp_s = 13;
  s.settings.max_flows = 1000;
  s.settings.established_mode = kEstablishedKeep;
  std::string err;
  auto p = load(build_blob(s), &err);
  ASSERT_NE(p, nullptr) << err;
  FlowTimeouts t = p->timeouts();
  EXPECT_EQ(t.tcp_syn_ns, 5000000000ull);
  EXPECT_EQ(t.tcp_established_ns, 7200000000000ull);
  EXPECT_EQ(t.tcp_closing_ns, 9000000000ull);
  EXPECT_EQ(t.udp_ns, 11000000000ull);
  EXPECT_EQ(t.icmp_ns, 13000000000ull);
  EXPECT_EQ(t.other_ns, 11000000000ull);
  EXPECT_EQ(p->settings().max_flows, 1000u);
  EXPECT_EQ(p->settings().established_mode, kEstablishedKeep);
}

// ---------------------------------------------------------------- classification table

struct ClassCase {
  const char* desc;
  const char* inside;
  const char* remote;
  uint8_t proto;
  uint16_t port;
  Verdict verdict;
  int rule;  // -1: the default action
};

const ClassCase kClassCases[] = {
    {"longest prefix: pay-hot (/24) inside payments (/16) hits hot-ssh", "10.1.5.9", "1.2.3.4",
     kProtoTcp, 22, Verdict::deny, 0},
    {"payments (not pay-hot) does not hit hot-ssh", "10.1.6.9", "1.2.3.4", kProtoTcp, 22,
     Verdict::deny, -1},
    {"pay-hot is not payments: pay-web does not apply", "10.1.5.9", "203.0.113.5", kProtoTcp, 443,
     Verdict::deny, -1},
    {"payments to its web destination", "10.1.6.9", "203.0.113.5", kProtoTcp, 443, Verdict::allow,
     2},
    {"port range low end", "10.1.6.9", "203.0.113.5", kProtoTcp, 8000, Verdict::allow, 2},
    {"port range inside", "10.1.6.9", "203.0.113.5", kProtoTcp, 8050, Verdict::allow, 2},
    {"port range high end", "10.1.6.9", "203.0.113.5", kProtoTcp, 8100, Verdict::allow, 2},
    {"port just past the range", "10.1.6.9", "203.0.113.5", kProtoTcp, 8101, Verdict::deny, -1},
    {"port just below the range", "10.1.6.9", "203.0.113.5", kProtoTcp, 7999, Verdict::deny, -1},
    {"udp does not match a tcp rule", "10.1.6.9", "203.0.113.5", kProtoUdp, 443, Verdict::deny, -1},
    {"destination outside the rule's CIDR", "10.1.6.9", "203.0.114.5", kProtoTcp, 443,
     Verdict::deny, -1},
    {"from any: a service", "10.9.9.9", "198.19.0.53", kProtoUdp, 53, Verdict::allow, 1},
    {"from any: an inside source in no service", "172.16.0.1", "198.19.0.53", kProtoUdp, 53,
     Verdict::allow, 1},
    {"/32 destination, neighbour address", "10.9.9.9", "198.19.0.54", kProtoUdp, 53, Verdict::deny,
     -1},
    {"no service: a service rule does not match", "172.16.0.1", "8.8.8.8", kProtoIcmp, 0,
     Verdict::deny, -1},
    {"icmp rule matches ICMP on v4", "10.9.9.9", "8.8.8.8", kProtoIcmp, 0, Verdict::allow, 5},
    {"icmp rule matches ICMPv6 on v6", "fd00:5::1", "2001:4860::8888", kIcmp6, 0, Verdict::allow,
     5},
    {"icmp rule: proto 1 on v6 is not ICMPv6", "fd00:5::1", "2001:4860::8888", kProtoIcmp, 0,
     Verdict::deny, -1},
    {"icmp rule: proto 58 on v4 is not ICMP", "10.9.9.9", "8.8.8.8", kIcmp6, 0, Verdict::deny, -1},
    {"earlier deny shadows a later allow", "10.2.3.4", "192.0.2.10", kProtoTcp, 443, Verdict::deny,
     3},
    {"ports + proto any: tcp", "10.2.3.4", "198.51.100.9", kProtoTcp, 7000, Verdict::reject, 6},
    {"ports + proto any: udp", "10.2.3.4", "198.51.100.9", kProtoUdp, 7001, Verdict::reject, 6},
    {"ports never match ICMP (ci has no icmp rule)", "10.2.3.4", "198.51.100.9", kProtoIcmp, 7000,
     Verdict::deny, -1},
    {"ports never match other protocols", "10.2.3.4", "198.51.100.9", kGre, 7000, Verdict::deny,
     -1},
    {"icmp rule before the ports rule", "10.9.9.9", "198.51.100.9", kProtoIcmp, 0, Verdict::allow,
     5},
    {"ports rule before the any-proto rule", "10.9.9.9", "198.51.100.7", kProtoTcp, 7000,
     Verdict::reject, 6},
    {"proto any, no ports: GRE", "10.9.9.9", "198.51.100.7", kGre, 0, Verdict::allow, 8},
    {"proto any, no ports: tcp any port", "10.9.9.9", "198.51.100.7", kProtoTcp, 1234,
     Verdict::allow, 8},
    {"second service of a from list", "10.2.0.1", "198.51.100.7", kProtoUdp, 9, Verdict::allow, 8},
    {"service not in the from list", "10.1.6.9", "198.51.100.7", kProtoUdp, 9, Verdict::deny, -1},
    {"v6 from any to a v6 /128", "fd00:1::5", "2001:db8:53::53", kProtoUdp, 53, Verdict::allow, 1},
    {"v6 source in no service, from any", "2001:db8:99::1", "2001:db8:53::53", kProtoUdp, 53,
     Verdict::allow, 1},
    {"v6 longest prefix: payments", "fd00:1::5", "2001:db8:1:2::1", kProtoTcp, 443, Verdict::allow,
     2},
    {"v6 destination outside the /48", "fd00:1::5", "2001:db8:2::1", kProtoTcp, 443, Verdict::deny,
     -1},
    {"v6 corp is not payments", "fd00:2::5", "2001:db8:1:2::1", kProtoTcp, 443, Verdict::deny, -1},
    {"v6-only rule: v6 destination", "2001:db8:99::1", "2001:db8:ff:1::1", kGre, 0, Verdict::allow,
     7},
    {"v6 rule CIDR does not make a v4 match", "172.16.0.1", "32.1.13.184", kGre, 0, Verdict::deny,
     -1},
    {"v4 rule CIDR does not make a v6 match", "fd00:1::5", "::ffff:203.0.113.5", kProtoTcp, 443,
     Verdict::deny, -1},
};

void expect_case(const RuntimePolicy& p, const ClassCase& c) {
  FlowKey k = make_key(c.inside, c.remote, c.proto, c.port);
  Decision d = p.classify(k);
  EXPECT_EQ(d.verdict, c.verdict);
  EXPECT_EQ(d.rule_index, c.rule < 0 ? kNoRule : c.rule);
  const FlowKey* kp = &k;
  Decision b{};
  p.classify_bulk(&kp, 1, &b);
  EXPECT_EQ(b.verdict, d.verdict);
  EXPECT_EQ(b.rule_index, d.rule_index);
}

TEST(PolicyClassify, Table) {
  std::string err;
  auto p = load(build_blob(base_spec()), &err);
  ASSERT_NE(p, nullptr) << err;
  for (const auto& c : kClassCases) {
    SCOPED_TRACE(c.desc);
    expect_case(*p, c);
  }
  // All of them in one bulk call, mixed families.
  std::vector<FlowKey> keys;
  for (const auto& c : kClassCases) keys.push_back(make_key(c.inside, c.remote, c.proto, c.port));
  std::vector<const FlowKey*> ptrs;
  for (auto& k : keys) ptrs.push_back(&k);
  std::vector<Decision> out(keys.size());
  p->classify_bulk(ptrs.data(), static_cast<unsigned>(ptrs.size()), out.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE(kClassCases[i].desc);
    EXPECT_EQ(out[i].verdict, kClassCases[i].verdict);
    EXPECT_EQ(out[i].rule_index, kClassCases[i].rule < 0 ? kNoRule : kClassCases[i].rule);
  }
}

TEST(PolicyClassify, DefaultActions) {
  struct Case {
    const char* desc;
    uint8_t default_action;
    bool with_v6_rule;
    const char* inside;
    const char* remote;
    Verdict want;
  };
  const Case cases[] = {
      {"no rules, default allow", kActionAllow, false, "10.0.0.1", "1.1.1.1", Verdict::allow},
      {"no rules, default deny", kActionDeny, false, "10.0.0.1", "1.1.1.1", Verdict::deny},
      {"no rules, default reject", kActionReject, false, "fd00::1", "2001:db8::1", Verdict::reject},
      {"only v6 rules: v4 flow gets the default", kActionReject, true, "10.0.0.1", "1.1.1.1",
       Verdict::reject},
      {"only v6 rules: unmatched v6 flow gets the default", kActionAllow, true, "fd00::1",
       "2001:db8::1", Verdict::allow},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    BlobSpec s;
    s.settings.default_action = c.default_action;
    if (c.with_v6_rule) {
      BlobRule r;
      r.id = "v6";
      r.action = kActionDeny;
      r.cidrs = {"2001:db8:ff::/48"};
      s.rules.push_back(r);
    }
    std::string err;
    auto p = load(build_blob(s), &err);
    ASSERT_NE(p, nullptr) << err;
    Decision d = p->classify(make_key(c.inside, c.remote, kProtoTcp, 80));
    EXPECT_EQ(d.verdict, c.want);
    EXPECT_EQ(d.rule_index, kNoRule);
    EXPECT_EQ(p->service_of(make_key(c.inside, c.remote, kProtoTcp, 80)), -1);
  }
}

TEST(PolicyClassify, ServiceOf) {
  BlobSpec s;
  s.services = {{"everything", {"0.0.0.0/0", "::/0"}},
                {"ten", {"10.0.0.0/8"}},
                {"host", {"10.1.2.3/32", "fd00::1/128"}},
                {"dup", {"10.0.0.0/8"}}};  // same prefix as "ten": the first service keeps it
  struct Case {
    const char* desc;
    const char* inside;
    int want;
  };
  const Case cases[] = {
      {"/0 catches the rest (v4)", "192.168.1.1", 0},
      {"/8", "10.200.0.1", 1},
      {"/32 host", "10.1.2.3", 2},
      {"neighbour of the /32", "10.1.2.4", 1},
      {"/0 catches the rest (v6)", "2001:db8::1", 0},
      {"/128 host", "fd00::1", 2},
  };
  std::string err;
  auto p = load(build_blob(s), &err);
  ASSERT_NE(p, nullptr) << err;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    const char* remote =
        std::string(c.inside).find(':') == std::string::npos ? "1.1.1.1" : "2001:db8::2";
    EXPECT_EQ(p->service_of(make_key(c.inside, remote, kProtoTcp, 1)), c.want);
  }
}

// ---------------------------------------------------------------- differential test

struct Cidr {
  int family;
  int prefix;
  uint8_t addr[16];
};

Cidr to_cidr(const std::string& text) {
  abi::CidrRec r = test::parse_cidr(text);
  Cidr c{r.family, r.prefix, {}};
  std::memcpy(c.addr, r.addr, 16);
  return c;
}

bool contains(const Cidr& c, int family, const uint8_t* ip) {
  if (c.family != family) return false;
  for (int bit = 0; bit < c.prefix; ++bit) {
    uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((c.addr[bit / 8] & m) != (ip[bit / 8] & m)) return false;
  }
  return true;
}

// The semantics of the contract, read literally: one linear pass, no cleverness.
Decision reference_classify(const BlobSpec& s, const FlowKey& k) {
  int svc = -1, best = -1;
  for (size_t i = 0; i < s.services.size(); ++i)
    for (const auto& t : s.services[i].cidrs) {
      Cidr c = to_cidr(t);
      if (contains(c, k.family, k.inside_ip) && c.prefix > best)
        best = c.prefix, svc = static_cast<int>(i);
    }
  for (size_t i = 0; i < s.rules.size(); ++i) {
    const auto& r = s.rules[i];
    bool from = r.from_any;
    for (const auto& name : r.from) from = from || (svc >= 0 && s.services[svc].name == name);
    if (!from) continue;
    if (r.proto == kProtoIcmp && k.proto != (k.family == 4 ? uint8_t{kProtoIcmp} : kIcmp6))
      continue;
    if ((r.proto == kProtoTcp || r.proto == kProtoUdp) && k.proto != r.proto) continue;
    if (!r.ports.empty()) {
      if (k.proto != kProtoTcp && k.proto != kProtoUdp) continue;
      bool hit = false;
      for (auto [lo, hi] : r.ports) hit = hit || (k.remote_port >= lo && k.remote_port <= hi);
      if (!hit) continue;
    }
    if (!r.cidrs.empty()) {
      bool hit = false;
      for (const auto& t : r.cidrs) hit = hit || contains(to_cidr(t), k.family, k.remote_ip);
      if (!hit) continue;
    }
    Verdict v = r.action == kActionAllow  ? Verdict::allow
                : r.action == kActionDeny ? Verdict::deny
                                          : Verdict::reject;
    return {v, static_cast<uint16_t>(i)};
  }
  uint8_t d = s.settings.default_action;
  return {d == kActionAllow  ? Verdict::allow
          : d == kActionDeny ? Verdict::deny
                             : Verdict::reject,
          kNoRule};
}

// Addresses drawn from a few nested blocks so that CIDRs and keys actually meet.
struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  uint32_t pick(uint32_t n) { return static_cast<uint32_t>(rng() % n); }

  void addr(int family, uint8_t* out) {
    std::memset(out, 0, 16);
    if (family == 4) {
      static const uint8_t kBase[][2] = {{10, 0}, {10, 1}, {10, 2}, {192, 0}, {198, 51}};
      const auto& b = kBase[pick(5)];
      out[0] = b[0];
      out[1] = pick(4) ? b[1] : static_cast<uint8_t>(pick(4));
      out[2] = static_cast<uint8_t>(pick(4));
      out[3] = static_cast<uint8_t>(pick(8) ? pick(8) : pick(256));
    } else {
      out[0] = pick(2) ? 0xfd : 0x20;
      out[1] = pick(2) ? 0x00 : 0x01;
      out[3] = static_cast<uint8_t>(pick(3));
      out[5] = static_cast<uint8_t>(pick(3));
      out[15] = static_cast<uint8_t>(pick(8));
    }
  }
  std::string cidr(int family) {
    uint8_t a[16];
    addr(family, a);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family == 4 ? AF_INET : AF_INET6, a, text, sizeof(text));
    static const int k4[] = {0, 8, 16, 20, 24, 28, 30, 32};
    static const int k6[] = {0, 8, 16, 32, 40, 48, 64, 100, 120, 128};
    int p = family == 4 ? k4[pick(8)] : k6[pick(10)];
    return std::string(text) + "/" + std::to_string(p);
  }
  std::pair<uint16_t, uint16_t> ports() {
    static const uint16_t kEdges[] = {0, 1, 22, 53, 80, 443, 444, 1000, 8080, 65534, 65535};
    uint16_t a = kEdges[pick(11)], b = pick(2) ? a : kEdges[pick(11)];
    return {std::min(a, b), std::max(a, b)};
  }

  BlobSpec policy() {
    BlobSpec s;
    unsigned ns = 3 + pick(6);
    for (unsigned i = 0; i < ns; ++i) {
      BlobService sv{"svc" + std::to_string(i), {}};
      unsigned nc = 1 + pick(3);
      for (unsigned j = 0; j < nc; ++j) sv.cidrs.push_back(cidr(pick(3) ? 4 : 6));
      // Never /0 in a random service: it would own every source and hide the "no service" case.
      for (auto& c : sv.cidrs)
        if (c.size() > 2 && c.compare(c.size() - 2, 2, "/0") == 0) c.replace(c.size() - 1, 1, "8");
      s.services.push_back(sv);
    }
    static const uint8_t kProtos[] = {kProtoAny, kProtoIcmp, kProtoTcp, kProtoUdp};
    unsigned nr = 40 + pick(20);
    for (unsigned i = 0; i < nr; ++i) {
      BlobRule r;
      r.id = "rule-" + std::to_string(i);
      r.action = static_cast<uint8_t>(pick(3));
      r.proto = kProtos[pick(4)];
      r.from_any = pick(3) == 0;
      if (!r.from_any)
        for (unsigned j = 0, n = 1 + pick(3); j < n; ++j)
          r.from.push_back(s.services[pick(ns)].name);
      if (pick(2))
        for (unsigned j = 0, n = 1 + pick(3); j < n; ++j) r.ports.push_back(ports());
      if (pick(4))
        for (unsigned j = 0, n = 1 + pick(3); j < n; ++j) r.cidrs.push_back(cidr(pick(2) ? 4 : 6));
      s.rules.push_back(r);
    }
    s.settings.default_action = static_cast<uint8_t>(pick(3));
    return s;
  }

  FlowKey key() {
    static const uint8_t kProtos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kIcmp6, kGre};
    static const uint16_t kPorts[] = {0, 1, 22, 53, 80, 443, 444, 999, 1000, 8080, 65535};
    FlowKey k{};
    k.family = pick(2) ? 4 : 6;
    addr(k.family, k.inside_ip);
    addr(k.family, k.remote_ip);
    k.proto = kProtos[pick(5)];
    k.inside_port = static_cast<uint16_t>(pick(65536));
    k.remote_port = pick(4) ? kPorts[pick(11)] : static_cast<uint16_t>(pick(65536));
    return k;
  }
};

TEST(PolicyClassify, DifferentialAgainstLinearEvaluator) {
  const uint64_t kSeeds[] = {1, 2, 3, 0xdecafbad, 20261127};
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Gen g(seed);
    BlobSpec spec = g.policy();
    std::string err;
    auto p = load(build_blob(spec), &err);
    ASSERT_NE(p, nullptr) << err;
    std::vector<FlowKey> keys(4000);
    for (auto& k : keys) k = g.key();
    size_t matched = 0;
    for (const auto& k : keys) {
      Decision want = reference_classify(spec, k);
      Decision got = p->classify(k);
      matched += want.rule_index != kNoRule;
      ASSERT_EQ(got.rule_index, want.rule_index) << "single classify disagrees";
      ASSERT_EQ(got.verdict, want.verdict);
    }
    EXPECT_GT(matched, keys.size() / 10)
        << "random keys hit too few rules to be a useful comparison";
    // Bulk in uneven chunks (1..100: over the 64-key batch too).
    for (size_t i = 0; i < keys.size();) {
      unsigned n = std::min<unsigned>(1 + g.pick(100), static_cast<unsigned>(keys.size() - i));
      std::vector<const FlowKey*> ptrs;
      for (unsigned j = 0; j < n; ++j) ptrs.push_back(&keys[i + j]);
      std::vector<Decision> out(n);
      p->classify_bulk(ptrs.data(), n, out.data());
      for (unsigned j = 0; j < n; ++j) {
        Decision want = reference_classify(spec, keys[i + j]);
        ASSERT_EQ(out[j].rule_index, want.rule_index) << "bulk classify disagrees at key " << i + j;
        ASSERT_EQ(out[j].verdict, want.verdict);
      }
      i += n;
    }
  }
}

// ---------------------------------------------------------------- read_file

TEST(PolicyReadFile, Cases) {
  char dir[] = "/tmp/egw-policy-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/p.bin";
  Blob b = build_blob(base_spec());
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(b.data(), 1, b.size(), f), b.size());
  fclose(f);

  struct Case {
    const char* desc;
    std::string path;
    bool ok;
    const char* want;
  };
  const Case cases[] = {
      {"a regular file", path, true, ""},
      {"a missing file", std::string(dir) + "/missing", false, "No such file"},
      {"a directory", dir, false, "is a directory"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    std::string out, err;
    EXPECT_EQ(read_file(c.path, &out, &err), c.ok);
    if (c.ok) {
      EXPECT_EQ(out.size(), b.size());
      auto p = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(out.data()), out.size(), &err);
      EXPECT_NE(p, nullptr) << err;
    } else {
      EXPECT_NE(err.find(c.want), std::string::npos) << err;
      EXPECT_NE(err.find(c.path), std::string::npos) << err;
    }
  }
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace egw
