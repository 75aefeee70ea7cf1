// Tests of RuntimePolicy's inspect rules (dataplane/policy.cc): which flows they cover
// (inspects(), inspect_applies() by source service), their rule indexes, ids and verdicts,
// the scratches shared by both Hyperscan databases, and the loader's checks of the
// inspect sections. Policies are real documents compiled by mgmt::compile_document.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hs.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/parse.h"
#include "dataplane/policy.h"
#include "mgmt/compiler.h"
#include "tests/support/blob_builder.h"
#include "tests/support/blob_cases.h"
#include "tests/support/hs_db.h"

namespace egw {
namespace {

using test::Blob;

std::string dump(const std::vector<rules::Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  '" + e.path + "': " + e.message + "\n";
  return out;
}

Blob compile(const std::string& doc) {
  mgmt::CompileResult res = mgmt::compile_document(doc, 9);
  EXPECT_TRUE(res.errors.empty()) << dump(res.errors) << doc;
  Blob b;
  b.bytes.assign(res.blob.begin(), res.blob.end());
  return b;
}

std::unique_ptr<RuntimePolicy> load(const Blob& b, unsigned scratches = 1) {
  std::string err;
  auto p = RuntimePolicy::load(b.data(), b.size(), &err, scratches);
  EXPECT_NE(p, nullptr) << err;
  return p;
}

FlowKey key(const char* inside, uint8_t proto = kProtoTcp, uint16_t port = 443) {
  FlowKey k{};
  if (inet_pton(AF_INET, inside, k.inside_ip) == 1) {
    k.family = 4;
    inet_pton(AF_INET, "198.19.1.1", k.remote_ip);
  } else {
    k.family = 6;
    EXPECT_EQ(inet_pton(AF_INET6, inside, k.inside_ip), 1) << inside;
    inet_pton(AF_INET6, "2001:2:0:100::1", k.remote_ip);
  }
  k.proto = proto;
  k.inside_port = 40000;
  k.remote_port = port;
  return k;
}

const char* const kDoc = R"({"schema":1,
  "services":{"web":{"cidrs":["198.18.1.0/24","2001:2:0:1::/64"]},
              "ci":{"cidrs":["198.18.2.0/24"]},"db":{"cidrs":["198.18.3.0/24"]}},
  "rulesets":[{"name":"r","rules":[
    {"id":"names","from":["any"],"proto":"tcp","ports":[8443],
     "to":{"domain_regex":["^api\\.egw\\.test$"]},"action":"allow"},
    {"id":"out","from":["any"],"action":"allow"}]}],
  "inspect":[
    {"id":"web-keys","from":["web"],"patterns":["AKIA[0-9A-Z]{16}"],"action":"reject"},
    {"id":"ci-secrets","from":["ci","web"],"patterns":["SECRET-[0-9]{4}"],"action":"deny"}]})";

TEST(PolicyInspect, CoverageByService) {
  const Blob b = compile(kDoc);
  auto p = load(b);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->has_inspect());
  ASSERT_EQ(p->rule_count(), 2u);
  ASSERT_EQ(p->inspect_count(), 2u);
  EXPECT_NE(p->inspect_db(), nullptr);
  EXPECT_NE(p->scratch(0), nullptr);
  EXPECT_EQ(p->scratch(1), nullptr);  // one worker
  struct Case {
    const char* desc;
    FlowKey k;
    bool inspects, web_keys, ci_secrets;
  };
  const Case cases[] = {
      {"web v4", key("198.18.1.7"), true, true, true},
      {"web v6", key("2001:2:0:1::7"), true, true, true},
      {"web, UDP", key("198.18.1.7", kProtoUdp, 53), true, true, true},
      {"ci: its rule only", key("198.18.2.7"), true, false, true},
      {"db: no inspect rule covers it", key("198.18.3.7"), false, false, false},
      {"in no service", key("10.9.9.9"), false, false, false},
      {"v6 in no service", key("2001:db8::1"), false, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.desc);
    EXPECT_EQ(p->inspects(c.k), c.inspects);
    EXPECT_EQ(p->inspect_applies(0, c.k), c.web_keys);
    EXPECT_EQ(p->inspect_applies(1, c.k), c.ci_secrets);
    EXPECT_FALSE(p->inspect_applies(2, c.k));  // no such rule
  }
  // Rule indexes follow the rules: ids and verdicts by index.
  EXPECT_EQ(p->inspect_rule_index(0), 2);
  EXPECT_EQ(p->inspect_rule_index(1), 3);
  EXPECT_STREQ(p->rule_id(1), "out");
  EXPECT_STREQ(p->rule_id(2), "web-keys");
  EXPECT_STREQ(p->rule_id(3), "ci-secrets");
  EXPECT_STREQ(p->rule_id(4), "");
  EXPECT_STREQ(p->rule_id(kNoRule), "");
  EXPECT_EQ(p->inspect_verdict(0), Verdict::reject);
  EXPECT_EQ(p->inspect_verdict(1), Verdict::deny);
  EXPECT_EQ(p->settings().inspect_max_bytes, 1048576u);
}

TEST(PolicyInspect, FromAnyCoversEveryInsideSource) {
  auto p = load(compile(R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},
    "inspect":[{"id":"all","from":["any"],"patterns":["x{3}"],"action":"deny"}],
    "limits":{"inspect_max_bytes":0}})"));
  ASSERT_NE(p, nullptr);
  for (const char* inside : {"198.18.1.7", "10.0.0.1", "2001:db8::1"}) {
    SCOPED_TRACE(inside);
    EXPECT_TRUE(p->inspects(key(inside)));
    EXPECT_TRUE(p->inspect_applies(0, key(inside)));
  }
  EXPECT_EQ(p->settings().inspect_max_bytes, 0u);
  EXPECT_STREQ(p->rule_id(p->inspect_rule_index(0)), "all");
}

TEST(PolicyInspect, NoInspectRules) {
  auto p = load(compile(R"({"schema":1,"rulesets":[{"name":"r","rules":[
    {"id":"a","from":["any"],"action":"allow"}]}]})"));
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->has_inspect());
  EXPECT_EQ(p->inspect_count(), 0u);
  EXPECT_FALSE(p->inspects(key("198.18.1.7")));
  EXPECT_EQ(p->inspect_db(), nullptr);
  EXPECT_EQ(p->scratch(0), nullptr);  // no Hyperscan database at all
}

// The scratch of every worker serves both the name database (decide_name) and the
// stream database.
TEST(PolicyInspect, ScratchesServeBothDatabases) {
  const unsigned kWorkers = 3;
  auto p = load(compile(kDoc), kWorkers);
  ASSERT_NE(p, nullptr);
  const FlowKey k = key("198.18.1.7", kProtoTcp, 8443);
  const Decision d = p->classify(k);
  ASSERT_TRUE(d.needs_name);
  l7::Name n;
  const std::string name = "api.egw.test";
  ASSERT_TRUE(l7::normalize_name(reinterpret_cast<const uint8_t*>(name.data()), name.size(), &n));
  auto on_match = [](unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
    static_cast<std::vector<unsigned>*>(ctx)->push_back(id);
    return 0;
  };
  for (unsigned w = 0; w < kWorkers; ++w) {
    SCOPED_TRACE(w);
    EXPECT_EQ(p->decide_name(k, d, &n, w).rule_index, 0);
    hs_stream_t* s = nullptr;
    ASSERT_EQ(hs_open_stream(p->inspect_db(), 0, &s), HS_SUCCESS);
    std::vector<unsigned> ids;
    const std::string data = "x SECRET-12";
    EXPECT_EQ(hs_scan_stream(s, data.data(), static_cast<unsigned>(data.size()), 0, p->scratch(w),
                             on_match, &ids),
              HS_SUCCESS);
    EXPECT_EQ(hs_scan_stream(s, "34", 2, 0, p->scratch(w), on_match, &ids), HS_SUCCESS);
    hs_close_stream(s, nullptr, nullptr, nullptr);
    EXPECT_EQ(ids, std::vector<unsigned>{1});
  }
}

// ---------------------------------------------------------------- loader

constexpr unsigned kFlags = HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL;  // as the compiler's

const test::BlobCorruption kLoaderCases[] = {
    {"inspect action allow",
     [](Blob& b) {
       b.edit_elem<abi::InspectRec>(abi::kSecInspect, 1,
                                    [](abi::InspectRec& r) { r.action = abi::kActionAllow; });
     },
     "inspect rule 1: action 0 is not deny or reject"},
    {"inspect unknown flags",
     [](Blob& b) {
       b.edit_elem<abi::InspectRec>(abi::kSecInspect, 0, [](abi::InspectRec& r) { r.flags = 4; });
     },
     "inspect rule 0: unknown flags"},
    {"inspect from outside rule_from",
     [](Blob& b) {
       b.edit_elem<abi::InspectRec>(abi::kSecInspect, 1,
                                    [](abi::InspectRec& r) { r.from_first = 1000; });
     },
     "inspect rule 1 from [1000, +2) outside the rule_from section"},
    {"inspect id outside the strings",
     [](Blob& b) {
       b.edit_elem<abi::InspectRec>(abi::kSecInspect, 0,
                                    [](abi::InspectRec& r) { r.id.offset = 1u << 30; });
     },
     "inspect rule 0 id"},
    {"inspect_max_bytes over 2^31",
     [](Blob& b) {
       b.edit_elem<abi::Settings>(abi::kSecSettings, 0,
                                  [](abi::Settings& s) { s.inspect_max_bytes = (1u << 31) + 1; });
     },
     "settings: inspect_max_bytes 2147483649 over 2^31"},
    {"inspect rules without their database",
     [](Blob& b) { b.edit_section(abi::kSecInspectDb, [](abi::SectionEntry& s) { s.type = 99; }); },
     "inspect rules but no inspect_db section"},
    {"a database without inspect rules",
     [](Blob& b) { b.edit_section(abi::kSecInspect, [](abi::SectionEntry& s) { s.size = 0; }); },
     "an inspect_db section but no inspect rule"},
    {"inspect section twice",
     [](Blob& b) {
       b.edit_section(abi::kSecInspectDb, [](abi::SectionEntry& s) {
         s.type = abi::kSecInspect;
         s.elem_size = sizeof(abi::InspectRec);
         s.size = sizeof(abi::InspectRec);
       });
     },
     "(inspect) appears more than once"},
    {"inspect element size",
     [](Blob& b) {
       b.edit_section(abi::kSecInspect, [](abi::SectionEntry& s) { s.elem_size = 20; });
     },
     "(inspect) elem_size 20, expected 24"},
    {"database byte flipped",
     [](Blob& b) {
       auto e = b.section(b.section_index(abi::kSecInspectDb));
       b.bytes[e.offset + e.size / 2] ^= 0x01;
       b.reseal();
     },
     "inspect_db: invalid or corrupted"},
    {"database cut to its first bytes",
     [](Blob& b) { b.edit_section(abi::kSecInspectDb, [](abi::SectionEntry& s) { s.size = 16; }); },
     "inspect_db: not a serialized Hyperscan database"},
    {"database in block mode",
     [](Blob& b) {
       b.put_section(abi::kSecInspectDb, test::serialized_hs_db({"AKIA"}, kFlags, HS_MODE_BLOCK));
     },
     "inspect_db: not a stream-mode database"},
    {"stream state over the block",
     [](Blob& b) {
       std::vector<std::string> wide;  // 16 distinct 1000-byte windows: ~2.3 KB of state
       for (int i = 0; i < 16; ++i) wide.push_back("k" + std::to_string(i) + ".{1000}z");
       b.put_section(abi::kSecInspectDb, test::serialized_hs_db(wide, kFlags, HS_MODE_STREAM));
     },
     "-byte block of a flow"},
    {"more rules and inspect rules than a rule index holds",
     [](Blob& b) {
       std::string recs(sizeof(abi::InspectRec) * (abi::kMaxInspectRules + 1), '\0');
       b.put_section(abi::kSecInspect, recs);
     },
     "4097 inspect rules, more than 4096"},
};

TEST(PolicyInspect, LoaderRefusesBadInspectSections) {
  const Blob good = compile(kDoc);
  std::string err;
  ASSERT_NE(RuntimePolicy::load(good.data(), good.size(), &err), nullptr) << err;
  // A database compiled elsewhere with the same patterns loads (the section is replaceable).
  Blob same = good;
  same.put_section(abi::kSecInspectDb,
                   test::serialized_hs_db({"AKIA[0-9A-Z]{16}", "SECRET-[0-9]{4}"}, kFlags,
                                          HS_MODE_STREAM));
  EXPECT_NE(RuntimePolicy::load(same.data(), same.size(), &err), nullptr) << err;
  test::expect_refused(good, kLoaderCases);
}

}  // namespace
}  // namespace egw
