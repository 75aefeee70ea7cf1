// Tests for mgmt/compiler.cc: the blob is walked with the dataplane/policy_abi.h structs
// (header, checksum, section table, rule order and fields), the name and inspect sections
// are opened with their own readers (DomainTable, Hyperscan); what the format cannot hold
// is refused at its path.
#include "tests/support/files.h"
#include "mgmt/compiler.h"

#include <gtest/gtest.h>
#include <hs.h>
#include <json/json.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "dataplane/l7/domain_table.h"
#include "dataplane/policy_abi.h"

namespace egw::mgmt {
namespace {

std::string dump(const std::vector<rules::Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  '" + e.path + "': " + e.message + "\n";
  return out;
}

// A read-only view of a blob, checked structurally as it is opened.
class BlobView {
 public:
  explicit BlobView(const std::string& blob) : b_(blob) {
    EXPECT_GE(b_.size(), sizeof(abi::PolicyHeader));
    memcpy(&h_, b_.data(), sizeof(h_));
    for (uint32_t i = 0; i < h_.section_count; ++i) {
      abi::SectionEntry e;
      memcpy(&e, b_.data() + sizeof(h_) + i * sizeof(e), sizeof(e));
      EXPECT_EQ(e.offset % 8, 0u) << "section " << e.type;
      EXPECT_LE(e.offset + e.size, b_.size()) << "section " << e.type;
      EXPECT_EQ(e.size % e.elem_size, 0u) << "section " << e.type;
      EXPECT_EQ(sections_.count(e.type), 0u) << "section " << e.type << " twice";
      sections_[e.type] = e;
    }
  }
  const abi::PolicyHeader& header() const { return h_; }
  bool has(uint32_t type) const { return sections_.count(type) != 0; }

  template <typename T>
  std::vector<T> table(uint32_t type) const {
    std::vector<T> out;
    auto it = sections_.find(type);
    if (it == sections_.end()) return out;
    EXPECT_EQ(it->second.elem_size, sizeof(T));
    out.resize(it->second.size / sizeof(T));
    if (!out.empty()) memcpy(out.data(), b_.data() + it->second.offset, out.size() * sizeof(T));
    return out;
  }
  std::string str(abi::StrRef r) const {
    auto it = sections_.find(abi::kSecStrings);
    if (it == sections_.end() || uint64_t{r.offset} + r.length >= it->second.size) return "<bad>";
    const char* p = b_.data() + it->second.offset + r.offset;
    EXPECT_EQ(p[r.length], '\0');  // NUL-terminated for the dataplane
    return std::string(p, r.length);
  }

 private:
  const std::string& b_;
  abi::PolicyHeader h_{};
  std::map<uint32_t, abi::SectionEntry> sections_;
};

std::string cidr_text(const abi::CidrRec& c) {
  rules::Cidr m;
  m.family = c.family;
  m.prefix = c.prefix;
  memcpy(m.addr.data(), c.addr, 16);
  return rules::format_cidr(m);
}

// An L3/L4-only policy (the demo of the first release): eight sections, no name ones.
const char* const kL34Doc = R"({
  "schema": 1,
  "default_action": "deny",
  "services": {
    "web": { "cidrs": ["198.18.1.0/24", "2001:2:0:1::/64"] }
  },
  "rulesets": [
    { "name": "demo-egress",
      "rules": [
        { "id": "http-allowed", "from": ["web"], "proto": "tcp", "ports": [80, 8080],
          "to": { "cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"] }, "action": "allow" },
        { "id": "ping-allowed", "from": ["web"], "proto": "icmp",
          "to": { "cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"] }, "action": "allow" },
        { "id": "udp-echo", "from": ["web"], "proto": "udp", "ports": [7],
          "to": { "cidrs": ["198.19.1.0/24"] }, "action": "allow" },
        { "id": "block-other-server", "from": ["web"], "proto": "tcp",
          "to": { "cidrs": ["198.19.2.0/24", "2001:2:0:200::/64"] }, "action": "reject" }
      ] }
  ]
})";

TEST(Compiler, HeaderAndChecksum) {
  std::string doc = kL34Doc;
  CompileResult res = compile_document(doc, 42);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  BlobView v(res.blob);
  const abi::PolicyHeader& h = v.header();
  EXPECT_EQ(h.magic, abi::kPolicyMagic);
  EXPECT_EQ(h.abi_version, abi::kPolicyAbiVersion);
  EXPECT_EQ(h.header_size, sizeof(abi::PolicyHeader));
  EXPECT_EQ(h.policy_version, 42u);
  EXPECT_EQ(h.total_size, res.blob.size());
  EXPECT_EQ(h.total_size % 8, 0u);
  EXPECT_EQ(h.flags, 0u);
  EXPECT_EQ(h.abi_version, 5u);
  EXPECT_EQ(h.section_count, 8u);
  const auto* bytes = reinterpret_cast<const uint8_t*>(res.blob.data());
  EXPECT_EQ(h.checksum, abi::fnv1a64(bytes + h.header_size, h.total_size - h.header_size));
  uint8_t sha[32];
  unsigned len = 0;
  ASSERT_EQ(EVP_Digest(doc.data(), doc.size(), sha, &len, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(memcmp(sha, h.source_sha256, 32), 0);
  for (uint32_t t : {abi::kSecSettings, abi::kSecStrings, abi::kSecServices, abi::kSecServiceCidrs,
                     abi::kSecRules, abi::kSecRuleFrom, abi::kSecRulePorts, abi::kSecRuleCidrs})
    EXPECT_TRUE(v.has(t)) << t;
  EXPECT_FALSE(v.has(abi::kSecDomainTable));
  EXPECT_FALSE(v.has(abi::kSecNameRegexDb));
}

TEST(Compiler, L34RulesInOrder) {
  CompileResult res = compile_document(kL34Doc, 0);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  EXPECT_EQ(res.stats.services, 1u);
  EXPECT_EQ(res.stats.rules, 4u);
  BlobView v(res.blob);
  auto settings = v.table<abi::Settings>(abi::kSecSettings);
  ASSERT_EQ(settings.size(), 1u);
  EXPECT_EQ(settings[0].default_action, abi::kActionDeny);
  EXPECT_EQ(settings[0].established_mode, abi::kEstablishedReevaluate);
  EXPECT_EQ(settings[0].l7_max_bytes, 16384u);
  EXPECT_EQ(settings[0].tcp_established_s, 3600u);
  EXPECT_EQ(settings[0].max_flows, 0u);

  auto services = v.table<abi::ServiceRec>(abi::kSecServices);
  auto scidrs = v.table<abi::CidrRec>(abi::kSecServiceCidrs);
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(v.str(services[0].name), "web");
  ASSERT_EQ(services[0].cidr_count, 2u);
  EXPECT_EQ(cidr_text(scidrs[services[0].cidr_first]), "198.18.1.0/24");
  EXPECT_EQ(cidr_text(scidrs[services[0].cidr_first + 1]), "2001:2:0:1::/64");
  EXPECT_EQ(scidrs[1].ref, 0u);

  auto rules = v.table<abi::RuleRec>(abi::kSecRules);
  auto from = v.table<uint32_t>(abi::kSecRuleFrom);
  auto ports = v.table<abi::PortRange>(abi::kSecRulePorts);
  auto rcidrs = v.table<abi::CidrRec>(abi::kSecRuleCidrs);
  struct Want {
    const char* id;
    uint8_t action, proto;
    std::vector<std::pair<uint16_t, uint16_t>> ports;
    std::vector<std::string> cidrs;
  };
  const Want want[] = {
      {"http-allowed",
       abi::kActionAllow,
       abi::kProtoTcp,
       {{80, 80}, {8080, 8080}},
       {"198.19.1.0/24", "2001:2:0:100::/64"}},
      {"ping-allowed",
       abi::kActionAllow,
       abi::kProtoIcmp,
       {},
       {"198.19.1.0/24", "2001:2:0:100::/64"}},
      {"udp-echo", abi::kActionAllow, abi::kProtoUdp, {{7, 7}}, {"198.19.1.0/24"}},
      {"block-other-server",
       abi::kActionReject,
       abi::kProtoTcp,
       {},
       {"198.19.2.0/24", "2001:2:0:200::/64"}},
  };
  ASSERT_EQ(rules.size(), std::size(want));
  for (size_t i = 0; i < rules.size(); ++i) {
    SCOPED_TRACE(want[i].id);
    const abi::RuleRec& r = rules[i];
    EXPECT_EQ(v.str(r.id), want[i].id);
    EXPECT_EQ(r.action, want[i].action);
    EXPECT_EQ(r.proto, want[i].proto);
    EXPECT_EQ(r.flags, 0u);
    EXPECT_EQ(r.ruleset, 0u);
    ASSERT_EQ(r.from_count, 1u);
    EXPECT_EQ(from.at(r.from_first), 0u);  // service index of "web"
    ASSERT_EQ(r.port_count, want[i].ports.size());
    for (size_t k = 0; k < r.port_count; ++k) {
      EXPECT_EQ(ports.at(r.port_first + k).lo, want[i].ports[k].first);
      EXPECT_EQ(ports.at(r.port_first + k).hi, want[i].ports[k].second);
    }
    ASSERT_EQ(r.cidr_count, want[i].cidrs.size());
    for (size_t k = 0; k < r.cidr_count; ++k)
      EXPECT_EQ(cidr_text(rcidrs.at(r.cidr_first + k)), want[i].cidrs[k]);
  }
}

TEST(Compiler, ContractL34Example) {
  CompileResult res = compile_document(test::file_text("rules/examples/contract-l34.json"), 7);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  BlobView v(res.blob);
  auto services = v.table<abi::ServiceRec>(abi::kSecServices);
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(v.str(services[0].name), "payments");  // document order
  EXPECT_EQ(v.str(services[1].name), "ci");
  auto scidrs = v.table<abi::CidrRec>(abi::kSecServiceCidrs);
  ASSERT_EQ(scidrs.size(), 3u);
  EXPECT_EQ(scidrs[2].ref, 1u);
  auto settings = v.table<abi::Settings>(abi::kSecSettings);
  EXPECT_EQ(settings[0].udp_s, 30u);
  EXPECT_EQ(settings[0].tcp_established_s, 7200u);
  auto rules = v.table<abi::RuleRec>(abi::kSecRules);
  auto from = v.table<uint32_t>(abi::kSecRuleFrom);
  auto ports = v.table<abi::PortRange>(abi::kSecRulePorts);
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(v.str(rules[0].id), "dns");
  EXPECT_EQ(rules[0].flags, abi::kRuleFromAny);
  EXPECT_EQ(rules[0].from_count, 0u);
  EXPECT_EQ(v.str(rules[2].id), "artifacts");
  ASSERT_EQ(rules[2].from_count, 1u);
  EXPECT_EQ(from.at(rules[2].from_first), 1u);  // "ci"
  ASSERT_EQ(rules[2].port_count, 3u);
  EXPECT_EQ(ports.at(rules[2].port_first + 2).lo, 8000);
  EXPECT_EQ(ports.at(rules[2].port_first + 2).hi, 8100);
  EXPECT_EQ(rules[3].proto, abi::kProtoAny);
  EXPECT_EQ(rules[3].port_count, 0u);
  EXPECT_EQ(rules[3].action, abi::kActionReject);
}

TEST(Compiler, RulesetsFlattenedInOrder) {
  std::string doc = R"({"schema":1,"default_action":"allow","established":"keep","rulesets":[
    {"name":"b","rules":[{"id":"b1","from":["any"],"action":"deny"},{"id":"b2","from":["any"],"action":"deny"}]},
    {"name":"a","rules":[]},
    {"name":"c","rules":[{"id":"c1","from":["any"],"action":"reject"}]}]})";
  CompileResult res = compile_document(doc, 0);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  BlobView v(res.blob);
  auto rules = v.table<abi::RuleRec>(abi::kSecRules);
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(v.str(rules[0].id), "b1");
  EXPECT_EQ(v.str(rules[1].id), "b2");
  EXPECT_EQ(v.str(rules[2].id), "c1");
  EXPECT_EQ(rules[2].ruleset, 2u);
  auto settings = v.table<abi::Settings>(abi::kSecSettings);
  EXPECT_EQ(settings[0].default_action, abi::kActionAllow);
  EXPECT_EQ(settings[0].established_mode, abi::kEstablishedKeep);
}

// A LimitRec as the compiler must write it (reserved bytes zero).
abi::LimitRec limit(uint32_t rule, uint16_t flags, uint8_t per, uint8_t over, uint32_t flows,
                    uint32_t burst, uint64_t bytes, uint64_t bytes_burst, uint32_t max_flows,
                    uint8_t max_flows_per) {
  abi::LimitRec r{};
  r.rule = rule;
  r.flags = flags;
  r.per = per;
  r.over_action = over;
  r.new_flows_per_s = flows;
  r.burst = burst;
  r.bytes_per_s = bytes;
  r.bytes_burst = bytes_burst;
  r.max_flows = max_flows;
  r.max_flows_per = max_flows_per;
  return r;
}

TEST(Compiler, RuleLimitsAndReportRulesets) {
  const std::string head = R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},
    "rulesets":[)";
  struct Case {
    const char* desc;
    std::string rulesets;
    std::vector<abi::LimitRec> limits;  // empty: no section 13
    std::vector<bool> report;           // kRuleReport of each rule, in order
    size_t rate_limited, max_flows;
  };
  const Case cases[] = {
      {"no limits, no report ruleset: no section",
       R"({"name":"e","rules":[{"id":"a","from":["web"],"action":"allow"},
           {"id":"b","from":["any"],"action":"deny"}]})",
       {},
       {false, false},
       0,
       0},
      {"limits on some rules, and a report ruleset",
       R"({"name":"e","rules":[
           {"id":"plain","from":["web"],"proto":"udp","ports":[53],"action":"allow"},
           {"id":"api","from":["web"],"action":"allow",
            "rate_limit":{"new_flows_per_s":100,"burst":200,"per":"source","over":"deny"}},
           {"id":"bulk","from":["any"],"action":"allow",
            "rate_limit":{"bytes_per_s":"10M"},"max_flows":{"count":50,"per":"source"}},
           {"id":"conns","from":["web"],"action":"allow","max_flows":1000},
           {"id":"both","from":["web"],"action":"allow","rate_limit":
            {"new_flows_per_s":7,"bytes_per_s":1000,"bytes_burst":"2k","over":"reject"}},
           {"id":"no","from":["any"],"action":"deny"}]},
         {"name":"audit","mode":"report","rules":[
           {"id":"would-deny","from":["any"],"action":"deny"},
           {"id":"would-allow","from":["web"],"action":"allow"}]})",
       {limit(1, abi::kLimitNewFlows, abi::kPerSource, abi::kActionDeny, 100, 200, 0, 0, 0, 0),
        limit(2, abi::kLimitBytes | abi::kLimitMaxFlows, abi::kPerService, abi::kActionReject, 0, 0,
              10000000, 1000000, 50, abi::kPerSource),
        limit(3, abi::kLimitMaxFlows, abi::kPerService, abi::kActionReject, 0, 0, 0, 0, 1000,
              abi::kPerService),
        limit(4, abi::kLimitNewFlows | abi::kLimitBytes, abi::kPerService, abi::kActionReject, 7, 7,
              1000, 2000, 0, 0)},
       {false, false, false, false, false, false, true, true},
       3,
       2},
      {"a report ruleset alone: flags but no section",
       R"({"name":"audit","mode":"report","rules":[{"id":"r","from":["any"],"action":"reject"}]},
         {"name":"e","mode":"enforce","rules":[{"id":"a","from":["web"],"action":"allow"}]})",
       {},
       {true, false},
       0,
       0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    CompileResult res = compile_document(head + c.rulesets + "]}", 0);
    ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
    BlobView v(res.blob);
    EXPECT_EQ(v.header().section_count, 8u + !c.limits.empty());
    EXPECT_EQ(v.has(abi::kSecRuleLimits), !c.limits.empty());
    auto limits = v.table<abi::LimitRec>(abi::kSecRuleLimits);
    ASSERT_EQ(limits.size(), c.limits.size());
    for (size_t i = 0; i < limits.size(); ++i) {
      SCOPED_TRACE("limit " + std::to_string(i));
      const abi::LimitRec &got = limits[i], &want = c.limits[i];
      EXPECT_EQ(got.rule, want.rule);
      EXPECT_EQ(got.flags, want.flags);
      EXPECT_EQ(got.per, want.per);
      EXPECT_EQ(got.over_action, want.over_action);
      EXPECT_EQ(got.new_flows_per_s, want.new_flows_per_s);
      EXPECT_EQ(got.burst, want.burst);
      EXPECT_EQ(got.bytes_per_s, want.bytes_per_s);
      EXPECT_EQ(got.bytes_burst, want.bytes_burst);
      EXPECT_EQ(got.max_flows, want.max_flows);
      EXPECT_EQ(got.max_flows_per, want.max_flows_per);
      EXPECT_EQ(memcmp(&got, &want, sizeof(got)), 0) << "reserved bytes must be zero";
    }
    auto rules = v.table<abi::RuleRec>(abi::kSecRules);
    ASSERT_EQ(rules.size(), c.report.size());
    size_t reports = 0;
    for (size_t i = 0; i < rules.size(); ++i) {
      EXPECT_EQ((rules[i].flags & abi::kRuleReport) != 0, c.report[i]) << "rule " << i;
      reports += c.report[i];
    }
    EXPECT_EQ(res.stats.rate_limited_rules, c.rate_limited);
    EXPECT_EQ(res.stats.max_flows_rules, c.max_flows);
    EXPECT_EQ(res.stats.report_rules, reports);
    const Json::Value st = compile_stats_json(res);
    EXPECT_EQ(st["rate_limited_rules"].asUInt64(), c.rate_limited);
    EXPECT_EQ(st["max_flows_rules"].asUInt64(), c.max_flows);
    EXPECT_EQ(st["report_rules"].asUInt64(), reports);
  }
}

TEST(Compiler, LimitsExample) {
  CompileResult res = compile_document(test::file_text("rules/examples/limits.json"), 0);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  EXPECT_GT(res.stats.rate_limited_rules, 0u);
  EXPECT_GT(res.stats.max_flows_rules, 0u);
  EXPECT_GT(res.stats.report_rules, 0u);
  EXPECT_TRUE(BlobView(res.blob).has(abi::kSecRuleLimits));
}

TEST(Compiler, EmptyPolicyCompiles) {
  CompileResult res = compile_document(R"({"schema":1})", 0);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  BlobView v(res.blob);
  EXPECT_TRUE(v.table<abi::RuleRec>(abi::kSecRules).empty());
  EXPECT_EQ(v.header().total_size, res.blob.size());
}

// The inspect ids (hs ids) a serialized stream database reports over data fed in the
// given pieces, one stream.
std::vector<unsigned> stream_matches(const std::string& bytes,
                                     const std::vector<std::string>& pieces) {
  hs_database_t* db = nullptr;
  EXPECT_EQ(hs_deserialize_database(bytes.data(), bytes.size(), &db), HS_SUCCESS);
  std::vector<unsigned> ids;
  if (!db) return ids;
  char* info = nullptr;
  EXPECT_EQ(hs_database_info(db, &info), HS_SUCCESS);
  EXPECT_NE(std::string(info ? info : "").find("Mode: STREAM"), std::string::npos) << info;
  free(info);
  size_t state = 0;
  EXPECT_EQ(hs_stream_size(db, &state), HS_SUCCESS);
  EXPECT_LE(state, abi::kInspectStreamBlock);
  hs_scratch_t* scratch = nullptr;
  hs_stream_t* stream = nullptr;
  EXPECT_EQ(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
  EXPECT_EQ(hs_open_stream(db, 0, &stream), HS_SUCCESS);
  auto on_match = [](unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
    static_cast<std::vector<unsigned>*>(ctx)->push_back(id);
    return 0;
  };
  for (const std::string& p : pieces)
    EXPECT_EQ(hs_scan_stream(stream, p.data(), static_cast<unsigned>(p.size()), 0, scratch,
                             on_match, &ids),
              HS_SUCCESS);
  hs_close_stream(stream, scratch, on_match, &ids);
  hs_free_scratch(scratch);
  hs_free_database(db);
  return ids;
}

TEST(Compiler, InspectSections) {
  const std::string doc = R"({"schema":1,
    "services":{"web":{"cidrs":["198.18.1.0/24"]},"ci":{"cidrs":["198.18.2.0/24"]}},
    "rulesets":[{"name":"r","rules":[{"id":"web-out","from":["web"],"action":"allow"}]}],
    "inspect":[
      {"id":"no-aws-keys","from":["any"],"patterns":["AKIA[0-9A-Z]{16}"],"action":"reject"},
      {"id":"no-keys","from":["ci","web"],
       "patterns":["-----BEGIN [A-Z ]*PRIVATE KEY-----","(?i)password=.{8}"],"action":"deny"}],
    "limits":{"inspect_max_bytes":4096}})";
  CompileResult res = compile_document(doc, 0);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  EXPECT_EQ(res.stats.rules, 1u);
  EXPECT_EQ(res.stats.inspect_rules, 2u);
  EXPECT_EQ(res.stats.inspect_patterns, 3u);
  BlobView v(res.blob);
  EXPECT_EQ(v.header().section_count, 10u);
  auto settings = v.table<abi::Settings>(abi::kSecSettings);
  EXPECT_EQ(settings.at(0).inspect_max_bytes, 4096u);
  auto inspect = v.table<abi::InspectRec>(abi::kSecInspect);
  auto from = v.table<uint32_t>(abi::kSecRuleFrom);
  ASSERT_EQ(inspect.size(), 2u);
  EXPECT_EQ(v.str(inspect[0].id), "no-aws-keys");
  EXPECT_EQ(inspect[0].action, abi::kActionReject);
  EXPECT_EQ(inspect[0].flags, abi::kRuleFromAny);
  EXPECT_EQ(inspect[0].from_count, 0u);
  EXPECT_EQ(v.str(inspect[1].id), "no-keys");
  EXPECT_EQ(inspect[1].action, abi::kActionDeny);
  EXPECT_EQ(inspect[1].flags, 0u);
  ASSERT_EQ(inspect[1].from_count, 2u);
  EXPECT_EQ(from.at(inspect[1].from_first), 1u);      // "ci"
  EXPECT_EQ(from.at(inspect[1].from_first + 1), 0u);  // "web"
  auto db = v.table<char>(abi::kSecInspectDb);
  const std::string bytes(db.begin(), db.end());
  struct Scan {
    const char* what;
    std::vector<std::string> pieces;
    std::vector<unsigned> ids;
  };
  const Scan scans[] = {
      {"key in one piece", {"id=AKIAABCDEFGHIJKLMNOP&x"}, {0}},
      {"key split in two", {"id=AKIAABCDEF", "GHIJKLMNOP"}, {0}},
      {"key in 1-byte pieces",
       {"A", "K", "I", "A", "0", "1", "2", "3", "4", "5",
        "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"},
       {0}},
      {"one report per pattern (single match)", {"AKIAABCDEFGHIJKLMNOP AKIAABCDEFGHIJKLMNOP"}, {0}},
      {"second rule, its second pattern (dot-all, case-insensitive)",
       {"PassWord=ab\ncd\x01"
        "ef"},
       {1}},
      {"both rules", {"-----BEGIN RSA PRIVATE KEY-----\nAKIAABCDEFGHIJKLMNOP"}, {1, 0}},
      {"too short a key", {"AKIAABCDEFGHIJKLMNO"}, {}},
  };
  for (const Scan& s : scans) {
    SCOPED_TRACE(s.what);
    EXPECT_EQ(stream_matches(bytes, s.pieces), s.ids);
  }
}

TEST(Compiler, InspectErrors) {
  std::string rules;  // 16 patterns of a 1000-byte window: ~2.3 KB of stream state
  for (int i = 0; i < 16; ++i)
    rules += std::string(i ? "," : "") + R"({"id":"i)" + std::to_string(i) +
             R"(","from":["any"],"patterns":["k)" + std::to_string(i) +
             R"(.{1000}z"],"action":"deny"})";
  const std::string big = R"({"schema":1,"inspect":[)" + rules + "]}";
  CompileResult res = compile_document(big, 0);
  EXPECT_TRUE(res.blob.empty());
  ASSERT_EQ(res.errors.size(), 1u) << dump(res.errors);
  EXPECT_EQ(res.errors[0].path, "/inspect");
  EXPECT_NE(res.errors[0].message.find("bytes of stream state per flow, more than the "
                                       "dataplane's 2048-byte block"),
            std::string::npos)
      << res.errors[0].message;

  // What only a compile refuses is reported at the pattern Hyperscan names (validation
  // would have refused this one: compile_policy is handed it directly).
  rules::Policy p;
  rules::InspectRule in;
  in.id = "i";
  in.path = "/inspect/0";
  in.from_any = true;
  in.patterns = {"fine", "(a)\\1"};
  p.inspect.push_back(in);
  res = compile_policy(p, "{}", 0);
  ASSERT_EQ(res.errors.size(), 1u) << dump(res.errors);
  EXPECT_EQ(res.errors[0].path, "/inspect/0/patterns/1");
  EXPECT_NE(res.errors[0].message.find("Hyperscan cannot compile it"), std::string::npos);

  // Counts: inspect rules alone, and with the rules (one 16-bit rule index space).
  p.inspect.clear();
  for (uint32_t i = 0; i <= abi::kMaxInspectRules; ++i) {
    in.id = "i" + std::to_string(i);
    in.path = "/inspect/" + std::to_string(i);
    in.patterns = {"x" + std::to_string(i)};
    p.inspect.push_back(in);
  }
  res = compile_policy(p, "{}", 0);
  ASSERT_EQ(res.errors.size(), 1u) << dump(res.errors);
  EXPECT_EQ(res.errors[0].path, "/inspect");
  EXPECT_NE(res.errors[0].message.find("4097 inspect rules: more than the limit of 4096"),
            std::string::npos);
  p.inspect.resize(10);
  p.rulesets.resize(1);
  for (uint32_t i = 0; i < abi::kMaxRules - 9; ++i) {
    rules::Rule r;
    r.id = "r" + std::to_string(i);
    r.from_any = true;
    p.rulesets[0].rules.push_back(r);
  }
  res = compile_policy(p, "{}", 0);
  ASSERT_EQ(res.errors.size(), 1u) << dump(res.errors);
  EXPECT_EQ(res.errors[0].path, "/inspect");
  EXPECT_NE(res.errors[0].message.find("64991 rules and 10 inspect rules: more than the limit "
                                       "of 65000 together"),
            std::string::npos)
      << res.errors[0].message;
  p.rulesets[0].rules.pop_back();
  EXPECT_TRUE(compile_policy(p, "{}", 0).errors.empty());
}

// The contract's example without its inspect rule: every name condition compiles.
std::string contract_without_inspect() {
  std::string doc = test::file_text("rules/examples/contract.json");
  size_t at = doc.find(",\n  \"inspect\"");
  EXPECT_NE(at, std::string::npos);
  return doc.substr(0, at) + "\n}\n";
}

l7::Name name_of(const char* s) {
  l7::Name n;
  EXPECT_TRUE(l7::normalize_name(reinterpret_cast<const uint8_t*>(s), strlen(s), &n)) << s;
  return n;
}

// The parts of a name_regex_db section (abi::RegexDbHeader), each checked to lie inside
// it, 8-byte aligned, after the table and the previous part.
std::vector<std::vector<uint8_t>> regex_parts(const std::vector<uint8_t>& sec) {
  std::vector<std::vector<uint8_t>> parts;
  abi::RegexDbHeader h{};
  EXPECT_GE(sec.size(), sizeof(h));
  if (sec.size() < sizeof(h)) return parts;
  std::memcpy(&h, sec.data(), sizeof(h));
  EXPECT_EQ(h.reserved, 0u);
  uint64_t next = sizeof(h) + uint64_t{h.part_count} * sizeof(abi::RegexDbPart);
  EXPECT_LE(next, sec.size());
  if (next > sec.size()) return parts;
  for (uint32_t k = 0; k < h.part_count; ++k) {
    abi::RegexDbPart p{};
    std::memcpy(&p, sec.data() + sizeof(h) + k * sizeof(p), sizeof(p));
    EXPECT_EQ(p.offset % 8, 0u) << "part " << k;
    EXPECT_EQ(p.offset, (next + 7) & ~uint64_t{7}) << "part " << k;  // no gap but padding
    EXPECT_LE(p.offset + p.size, sec.size()) << "part " << k;
    if (p.offset + p.size > sec.size()) return parts;
    parts.emplace_back(sec.begin() + p.offset, sec.begin() + p.offset + p.size);
    next = p.offset + p.size;
  }
  EXPECT_EQ((next + 7) & ~uint64_t{7}, (sec.size() + 7) & ~uint64_t{7});  // nothing after
  return parts;
}

// The rule indexes (hs ids) of the patterns of one serialized block database matching name.
std::vector<unsigned> part_matches(const std::vector<uint8_t>& bytes, const char* name) {
  hs_database_t* db = nullptr;
  EXPECT_EQ(hs_deserialize_database(reinterpret_cast<const char*>(bytes.data()), bytes.size(), &db),
            HS_SUCCESS);
  std::vector<unsigned> ids;
  if (!db) return ids;
  char* info = nullptr;
  EXPECT_EQ(hs_database_info(db, &info), HS_SUCCESS);
  EXPECT_NE(std::string(info ? info : "").find("Mode: BLOCK"), std::string::npos) << info;
  free(info);
  hs_scratch_t* scratch = nullptr;
  EXPECT_EQ(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
  auto on_match = [](unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
    static_cast<std::vector<unsigned>*>(ctx)->push_back(id);
    return 0;
  };
  EXPECT_EQ(hs_scan(db, name, static_cast<unsigned>(strlen(name)), 0, scratch, on_match, &ids),
            HS_SUCCESS);
  hs_free_scratch(scratch);
  hs_free_database(db);
  return ids;
}

// The rule indexes matching name over every part of a name_regex_db section, in order.
std::vector<unsigned> regex_matches(const std::vector<uint8_t>& sec, const char* name) {
  std::vector<unsigned> ids;
  for (const auto& part : regex_parts(sec)) {
    const std::vector<unsigned> more = part_matches(part, name);
    ids.insert(ids.end(), more.begin(), more.end());
  }
  return ids;
}

TEST(Compiler, NameSections) {
  const std::string rules_head =
      R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},"rulesets":[{"name":"r","rules":[)"
      R"({"id":"plain","from":["any"],"proto":"udp","ports":[53],"action":"allow"},)";
  struct Case {
    const char* desc;
    std::string rules;  // after the plain rule 0
    bool table, regex;
    size_t domains, regexes;
    std::vector<uint16_t> flags;  // per rule, kRuleNeedsName bits
    const char* name;             // looked up in both sections
    std::vector<uint32_t> table_hits;
    std::vector<unsigned> regex_hits;
  };
  const Case cases[] = {
      {"no names: neither section",
       R"({"id":"b","from":["web"],"to":{"cidrs":["198.19.0.0/16"]},"action":"deny"})",
       false,
       false,
       0,
       0,
       {0, 0},
       "api.x.io",
       {},
       {}},
      {"domains only",
       R"({"id":"b","from":["web"],"to":{"domains":["api.x.io","*.x.io"]},"action":"allow"},)"
       R"({"id":"c","from":["any"],"to":{"domains":["*"]},"action":"deny"})",
       true,
       false,
       3,
       0,
       {0, abi::kRuleNeedsName, abi::kRuleNeedsName},
       "api.x.io",
       {1, 2},
       {}},
      {"regex only",
       R"({"id":"b","from":["web"],"to":{"domain_regex":["^api\\.","\\.x\\.io$"]},"action":"allow"},)"
       R"({"id":"c","from":["any"],"to":{"cidrs":["198.19.0.0/16"]},"action":"deny"},)"
       R"({"id":"d","from":["any"],"to":{"domain_regex":["^[a-z]+\\.x\\.io$"]},"action":"deny"})",
       false,
       true,
       0,
       3,
       {0, abi::kRuleNeedsName, 0, abi::kRuleNeedsName},
       "api.x.io",
       {},
       {1, 3}},
      {"both, in one rule and with cidrs",
       R"({"id":"b","from":["web"],"to":{"cidrs":["198.19.0.0/16"],"domains":["a.x.io"],)"
       R"("domain_regex":["^b\\.x\\.io$"]},"action":"allow"})",
       true,
       true,
       1,
       1,
       {0, abi::kRuleNeedsName},
       "b.x.io",
       {},
       {1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    CompileResult res = compile_document(rules_head + c.rules + "]}]}", 0);
    ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
    EXPECT_EQ(res.stats.domains, c.domains);
    EXPECT_EQ(res.stats.regexes, c.regexes);
    BlobView v(res.blob);
    EXPECT_EQ(v.header().abi_version, 5u);
    EXPECT_EQ(v.header().section_count, 8u + c.table + c.regex);
    EXPECT_EQ(v.has(abi::kSecDomainTable), c.table);
    EXPECT_EQ(v.has(abi::kSecNameRegexDb), c.regex);
    auto rules = v.table<abi::RuleRec>(abi::kSecRules);
    ASSERT_EQ(rules.size(), c.flags.size());
    for (size_t i = 0; i < rules.size(); ++i)
      EXPECT_EQ(rules[i].flags & abi::kRuleNeedsName, c.flags[i]) << "rule " << i;
    if (c.table) {
      auto bytes = v.table<uint8_t>(abi::kSecDomainTable);
      l7::DomainTable t;
      std::string err;
      ASSERT_TRUE(t.open(bytes.data(), bytes.size(), &err)) << err;
      uint32_t out[8];
      size_t n = t.match(name_of(c.name), out, 8);
      EXPECT_EQ(std::vector<uint32_t>(out, out + n), c.table_hits);
    }
    if (c.regex) {
      auto ids = regex_matches(v.table<uint8_t>(abi::kSecNameRegexDb), c.name);
      std::sort(ids.begin(), ids.end());
      EXPECT_EQ(ids, c.regex_hits);  // one match per rule (HS_FLAG_SINGLEMATCH)
    }
  }
}

TEST(Compiler, ContractExampleNames) {
  CompileResult res = compile_document(contract_without_inspect(), 5);
  ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
  EXPECT_EQ(res.stats.rules, 4u);
  EXPECT_EQ(res.stats.domains, 3u);
  EXPECT_EQ(res.stats.regexes, 1u);
  EXPECT_EQ(res.stats.inspect_rules, 0u);
  EXPECT_EQ(res.stats.inspect_patterns, 0u);
  BlobView v(res.blob);
  EXPECT_EQ(v.header().section_count, 10u);
  auto rules = v.table<abi::RuleRec>(abi::kSecRules);
  ASSERT_EQ(rules.size(), 4u);
  const uint16_t want_flags[] = {abi::kRuleFromAny, abi::kRuleNeedsName, abi::kRuleNeedsName,
                                 abi::kRuleFromAny | abi::kRuleNeedsName};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(rules[i].flags, want_flags[i]) << v.str(rules[i].id);
  EXPECT_EQ(regex_matches(v.table<uint8_t>(abi::kSecNameRegexDb), "a-1.pkg.example.org"),
            std::vector<unsigned>{2});
  EXPECT_TRUE(regex_matches(v.table<uint8_t>(abi::kSecNameRegexDb), "a.b.pkg.example.org").empty());
}

// What validation lets through but the compiler still refuses, from a hand-built model.
TEST(Compiler, NameCompileErrorsNameTheirPath) {
  struct Case {
    const char* desc;
    std::vector<std::string> domains, regexes;
    size_t part;  // domain_regex patterns per database
    const char* path;
    const char* message;
  };
  const Case cases[] = {
      {"a domain the table refuses",
       {"ok.io", "a..b"},
       {},
       kRegexPartPatterns,
       "/rulesets/0/rules/1/to/domains/1",
       "not a valid DNS name"},
      {"a pattern Hyperscan refuses",
       {},
       {"^ok$", "(a)\\1"},
       kRegexPartPatterns,
       "/rulesets/0/rules/1/to/domain_regex/1",
       "Hyperscan cannot compile the pattern: \"Back-references are unsupported."},
      {"a pattern Hyperscan refuses, in the last of three parts",
       {},
       {"^ok$", "^ok2$", "^ok3$", "^ok4$", "(a)\\1"},
       2,
       "/rulesets/0/rules/1/to/domain_regex/4",
       "Hyperscan cannot compile the pattern: \"Back-references are unsupported."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    rules::Policy p;
    p.rulesets.push_back({"r", {}});
    for (int i = 0; i < 2; ++i) {
      rules::Rule r;
      r.id = "r" + std::to_string(i);
      r.path = "/rulesets/0/rules/" + std::to_string(i);
      r.from_any = true;
      if (i == 1) r.to_domains = c.domains, r.to_domain_regex = c.regexes;
      p.rulesets[0].rules.push_back(r);
    }
    CompileResult res = compile_policy(p, "{}", 0, c.part);
    EXPECT_TRUE(res.blob.empty());
    ASSERT_EQ(res.errors.size(), 1u) << dump(res.errors);
    EXPECT_EQ(res.errors[0].path, c.path);
    EXPECT_NE(res.errors[0].message.find(c.message), std::string::npos) << res.errors[0].message;
  }
}

// Parts of at most N patterns, as equal as they can be, in rule order; the same blob every
// time.
TEST(Compiler, RegexPartsFollowRuleOrder) {
  // Five rules of three patterns; every pattern matches "x.all".
  std::string rules;
  for (int i = 0; i < 5; ++i) {
    rules += std::string(i ? "," : "") + R"({"id":"r)" + std::to_string(i) +
             R"(","from":["any"],"to":{"domain_regex":[)";
    for (int k = 0; k < 3; ++k)
      rules += std::string(k ? "," : "") + "\"all(" + std::to_string(i * 3 + k) + ")?$\"";
    rules += R"(]},"action":"allow"})";
  }
  const std::string doc = R"({"schema":1,"rulesets":[{"name":"r","rules":[)" + rules + "]}]}";
  const rules::ParseResult parsed = rules::parse_policy(doc);
  ASSERT_TRUE(parsed.policy) << dump(parsed.errors);
  struct Case {
    size_t part;
    std::vector<std::vector<unsigned>> ids;  // per part, the rules matching "x.all"
  };
  const Case cases[] = {
      {kRegexPartPatterns, {{0, 1, 2, 3, 4}}},
      {15, {{0, 1, 2, 3, 4}}},
      {8, {{0, 1, 2}, {2, 3, 4}}},         // 8 + 7: cut inside rule 2
      {4, {{0, 1}, {1, 2}, {2, 3}, {4}}},  // 4 + 4 + 4 + 3
      {1, {{0}, {0}, {0}, {1}, {1}, {1}, {2}, {2}, {2}, {3}, {3}, {3}, {4}, {4}, {4}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("parts of " + std::to_string(c.part));
    CompileResult res = compile_policy(*parsed.policy, doc, 1, c.part);
    ASSERT_TRUE(res.errors.empty()) << dump(res.errors);
    EXPECT_EQ(res.blob, compile_policy(*parsed.policy, doc, 1, c.part).blob);
    BlobView v(res.blob);
    const auto parts = regex_parts(v.table<uint8_t>(abi::kSecNameRegexDb));
    ASSERT_EQ(parts.size(), c.ids.size());
    for (size_t k = 0; k < parts.size(); ++k) {
      std::vector<unsigned> ids = part_matches(parts[k], "x.all");
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      EXPECT_EQ(ids, c.ids[k]) << "part " << k;
    }
  }
}

TEST(Compiler, ValidationErrorsComeFirstAndAllOfThem) {
  CompileResult res = compile_document(
      R"({"schema":1,"rulesets":[{"name":"r","rules":[{"id":"a","from":["nope"],"ports":[0],"action":"x"}]}]})",
      0);
  EXPECT_TRUE(res.blob.empty());
  EXPECT_EQ(res.errors.size(), 3u) << dump(res.errors);
}

TEST(Compiler, TooManyRules) {
  rules::Policy p;
  p.rulesets.push_back({"big", {}});
  for (uint32_t i = 0; i <= abi::kMaxRules; ++i) {
    rules::Rule r;
    r.id = "r" + std::to_string(i);
    r.from_any = true;
    r.path = "/rulesets/0/rules/" + std::to_string(i);
    p.rulesets[0].rules.push_back(r);
  }
  CompileResult res = compile_policy(p, "{}", 0);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].path, "/rulesets");
  EXPECT_NE(res.errors[0].message.find("more than the limit of 65000"), std::string::npos);
  p.rulesets[0].rules.pop_back();
  EXPECT_TRUE(compile_policy(p, "{}", 0).errors.empty());
}

TEST(Compiler, Deterministic) {
  // Hyperscan's serialized databases are byte-stable for the same patterns (generic
  // platform, see rules::domain_regex_platform), so the whole blob is.
  const std::pair<const char*, std::string> docs[] = {
      {"L3/L4", kL34Doc},
      {"contract-l34.json", test::file_text("rules/examples/contract-l34.json")},
      {"contract.json without inspect (names)", contract_without_inspect()},
      {"contract.json (names, inspect)", test::file_text("rules/examples/contract.json")},
  };
  for (const auto& [file, doc] : docs) {
    CompileResult a = compile_document(doc, 3), b = compile_document(doc, 3);
    ASSERT_TRUE(a.errors.empty()) << file;
    EXPECT_EQ(a.blob, b.blob) << file;
    CompileResult c = compile_document(doc + "\n", 3);  // another source: another sha256
    EXPECT_NE(a.blob, c.blob) << file;
    EXPECT_EQ(a.blob.size(), c.blob.size());
  }
}

}  // namespace
}  // namespace egw::mgmt
