// Tests for mgmt/api.cc: the current version's stored blob, checked before every
// (re)publish and recompiled from its document when this build's dataplane would refuse
// it (a blob of another ABI version after an upgrade, or a damaged header).
#include "mgmt/api.h"

#include <gtest/gtest.h>
#include <json/json.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <sstream>

#include "dataplane/policy_abi.h"
#include "mgmt/compiler.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace egw::mgmt {
namespace {

using test::TempDir;

// A document with every kind of rule the name and inspect stages compile.
const char* const kDocument = R"({"schema":1,"default_action":"deny",
  "services":{"web":{"cidrs":["198.18.1.0/24"]}},
  "rulesets":[{"name":"r","rules":[
    {"id":"names","from":["web"],"proto":"tcp","ports":[443],
     "to":{"domains":["api.example.com","*.ok.example"],"domain_regex":["^a[0-9]+\\.example\\.org$"]},
     "action":"allow"},
    {"id":"l4","from":["any"],"proto":"udp","ports":[53],"to":{"cidrs":["198.19.0.53/32"]},
     "action":"allow"}]}],
  "inspect":[{"id":"keys","from":["any"],"patterns":["AKIA[0-9A-Z]{16}","secret=[a-z]+"],
              "action":"reject"}]})";

abi::PolicyHeader header_of(const std::string& blob) {
  abi::PolicyHeader h{};
  if (blob.size() >= sizeof(h)) std::memcpy(&h, blob.data(), sizeof(h));
  return h;
}

std::string with_header(std::string blob, const std::function<void(abi::PolicyHeader&)>& edit) {
  abi::PolicyHeader h = header_of(blob);
  edit(h);
  std::memcpy(blob.data(), &h, sizeof(h));
  return blob;
}

std::vector<Json::Value> audit_lines(const std::string& path) {
  std::vector<Json::Value> out;
  std::istringstream in(test::file_text(path));
  std::string line, err;
  Json::CharReaderBuilder b;
  std::unique_ptr<Json::CharReader> reader(b.newCharReader());
  while (std::getline(in, line)) {
    Json::Value v;
    EXPECT_TRUE(reader->parse(line.data(), line.data() + line.size(), &v, &err)) << line;
    out.push_back(v);
  }
  return out;
}

TEST(ApiCurrentBlob, RecompiledWhenTheDataplaneWouldRefuseIt) {
  const CompileResult good = compile_document(kDocument, 1);
  ASSERT_TRUE(good.errors.empty()) << good.errors[0].path << ": " << good.errors[0].message;
  struct Case {
    const char* description;
    std::string document;  // stored as version 1
    std::string blob;      // stored as its blob
    bool ok;               // current_blob() succeeds
    bool recompiled;       // and replaced the stored blob
    const char* why;       // in the audit detail / the error
  };
  const Case cases[] = {
      {"a blob of this ABI: published as stored", kDocument, good.blob, true, false, nullptr},
      {"an ABI 1 blob (before an upgrade)", kDocument,
       with_header(good.blob, [](abi::PolicyHeader& h) { h.abi_version = 1; }), true, true,
       "policy ABI version 1, this build's is 5"},
      {"a blob of a later ABI (a downgrade)", kDocument,
       with_header(good.blob, [](abi::PolicyHeader& h) { h.abi_version = 9; }), true, true,
       "policy ABI version 9"},
      {"bad magic", kDocument, with_header(good.blob, [](abi::PolicyHeader& h) { h.magic = 0; }),
       true, true, "bad magic"},
      {"a flipped byte after the header", kDocument,
       [&] {
         std::string b = good.blob;
         b[b.size() - 1] ^= 0x40;
         return b;
       }(),
       true, true, "checksum mismatch"},
      {"truncated", kDocument, good.blob.substr(0, good.blob.size() - 8), true, true,
       "the file has"},
      {"shorter than a header", kDocument, "EGWP", true, true, "shorter than a policy header"},
      {"stamped with another version", kDocument,
       with_header(good.blob, [](abi::PolicyHeader& h) { h.policy_version = 7; }), true, true,
       "stamped with version 7"},
      {"ABI 1 and a document this build refuses", R"({"schema":1,"retired":true})",
       with_header(good.blob, [](abi::PolicyHeader& h) { h.abi_version = 1; }), false, false,
       "no longer compiles with this build: /retired: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    TempDir t;
    const std::string dir = t.path() + "/state";
    PolicyStore store;
    AuditLog audit;
    std::string err;
    ASSERT_TRUE(store.open(dir, &err)) << err;
    ASSERT_TRUE(audit.open(dir + "/audit.jsonl", &err)) << err;
    ASSERT_EQ(store.commit(c.document, c.blob, "alice", "", &err), 1u) << err;
    VersionInfo info;
    ASSERT_TRUE(store.info(1, &info));
    Publisher publisher("egw-api-test-" + std::to_string(getpid()));  // never started
    TokenTable tokens;
    Api api(store, audit, publisher, tokens, ApiConfig{});

    uint64_t version = 0;
    std::string blob;
    EXPECT_EQ(api.current_blob(&version, &blob, &err), c.ok) << err;
    EXPECT_EQ(version, 1u);
    std::string stored, stored_current = test::file_text(store.current_blob_path());
    ASSERT_TRUE(store.read_blob(1, &stored, &err)) << err;
    const auto lines = audit_lines(dir + "/audit.jsonl");
    if (!c.ok) {
      EXPECT_TRUE(blob.empty());
      EXPECT_NE(err.find(c.why), std::string::npos) << err;
      EXPECT_EQ(api.policy_error(), err);
      EXPECT_EQ(stored, c.blob);  // kept as it was, and not published
      EXPECT_EQ(stored_current, c.blob);
      ASSERT_EQ(lines.size(), 1u);
      EXPECT_EQ(lines[0]["status"].asInt(), 500);
      EXPECT_EQ(lines[0]["detail"].asString(), err);
      continue;
    }
    EXPECT_TRUE(api.policy_error().empty()) << api.policy_error();
    EXPECT_EQ(blob, good.blob);  // deterministic: the same bytes as a fresh compile
    EXPECT_EQ(stored, blob);
    EXPECT_EQ(stored_current, blob);
    EXPECT_EQ(header_of(blob).abi_version, abi::kPolicyAbiVersion);
    EXPECT_EQ(header_of(blob).policy_version, 1u);
    if (!c.recompiled) {
      EXPECT_TRUE(lines.empty());
      continue;
    }
    ASSERT_EQ(lines.size(), 1u);
    const Json::Value& a = lines[0];
    EXPECT_EQ(a["method"].asString(), "RECOMPILE");
    EXPECT_EQ(a["path"].asString(), "/v1/policy");
    EXPECT_EQ(a["status"].asInt(), 200);
    EXPECT_TRUE(a["token"].isNull());
    EXPECT_EQ(a["version"].asUInt64(), 1u);
    EXPECT_EQ(a["sha256_before"].asString(), info.sha256);
    EXPECT_EQ(a["sha256_after"].asString(), info.sha256);
    EXPECT_NE(a["detail"].asString().find(c.why), std::string::npos) << a["detail"];
    EXPECT_NE(a["detail"].asString().find("recompiled"), std::string::npos) << a["detail"];

    // Checked again (the next reconnect): nothing left to do.
    std::string again;
    EXPECT_TRUE(api.current_blob(&version, &again, &err)) << err;
    EXPECT_EQ(again, blob);
    EXPECT_EQ(audit_lines(dir + "/audit.jsonl").size(), 1u);
  }
}

TEST(ApiCurrentBlob, NothingCommitted) {
  TempDir t;
  PolicyStore store;
  AuditLog audit;
  std::string err, blob;
  ASSERT_TRUE(store.open(t.path() + "/state", &err)) << err;
  ASSERT_TRUE(audit.open(t.path() + "/state/audit.jsonl", &err)) << err;
  Publisher publisher("egw-api-test-" + std::to_string(getpid()));
  TokenTable tokens;
  Api api(store, audit, publisher, tokens, ApiConfig{});
  uint64_t version = 99;
  EXPECT_TRUE(api.current_blob(&version, &blob, &err)) << err;
  EXPECT_EQ(version, 0u);
  EXPECT_TRUE(blob.empty());
  EXPECT_TRUE(api.policy_error().empty());
  EXPECT_TRUE(audit_lines(t.path() + "/state/audit.jsonl").empty());
}

// The "stats" of REST answers: every CompileStats field and the blob size.
TEST(ApiStatsJson, EveryField) {
  const CompileResult cr = compile_document(kDocument, 0);
  ASSERT_TRUE(cr.errors.empty());
  const Json::Value s = compile_stats_json(cr);
  const struct {
    const char* key;
    uint64_t want;
  } fields[] = {
      {"services", 1},        {"service_cidrs", 1},    {"rulesets", 1},
      {"rules", 2},           {"domains", 2},          {"regexes", 1},
      {"inspect_rules", 1},   {"inspect_patterns", 2}, {"rate_limited_rules", 0},
      {"max_flows_rules", 0}, {"report_rules", 0},     {"compiled_bytes", cr.blob.size()}};
  EXPECT_EQ(s.size(), std::size(fields));
  for (const auto& f : fields) EXPECT_EQ(s[f.key].asUInt64(), f.want) << f.key;
}

}  // namespace
}  // namespace egw::mgmt
