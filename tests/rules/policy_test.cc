// Tests for rules/policy.cc (document parsing and validation) and rules/cidr.cc.
// Tables of documents with the model or the (path, message) they must produce.
#include "tests/support/files.h"
#include "rules/policy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace egw::rules {
namespace {

// A minimal valid document around one rule (JSON text of the rule object).
std::string with_rule(const std::string& rule) {
  return R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},)"
         R"("rulesets":[{"name":"rs","rules":[)" +
         rule + "]}]}";
}

std::string dump(const std::vector<Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  '" + e.path + "': " + e.message + "\n";
  return out;
}

TEST(PolicyParse, ExamplesParse) {
  for (const char* file : {"rules/examples/demo.json", "rules/examples/contract-l34.json",
                           "rules/examples/contract.json", "rules/examples/limits.json"}) {
    std::string text = test::file_text(file);
    ASSERT_FALSE(text.empty()) << file;
    ParseResult r = parse_policy(text);
    EXPECT_TRUE(r.policy.has_value()) << file << "\n" << dump(r.errors);
  }
}

TEST(PolicyParse, ContractExampleModel) {
  ParseResult r = parse_policy(test::file_text("rules/examples/contract.json"));
  ASSERT_TRUE(r.policy) << dump(r.errors);
  const Policy& p = *r.policy;
  EXPECT_EQ(p.default_action, Action::deny);
  ASSERT_EQ(p.services.size(), 2u);
  EXPECT_EQ(p.services[0].name, "payments");  // document order, not key order
  EXPECT_EQ(p.services[1].name, "ci");
  ASSERT_EQ(p.services[0].cidrs.size(), 2u);
  EXPECT_EQ(format_cidr(p.services[0].cidrs[1]), "2001:2:0:1::/64");
  ASSERT_EQ(p.rulesets.size(), 1u);
  const auto& rules = p.rulesets[0].rules;
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].id, "dns");
  EXPECT_TRUE(rules[0].from_any);
  EXPECT_EQ(rules[0].proto, Proto::udp);
  EXPECT_EQ(rules[0].ports, (std::vector<PortRange>{{53, 53}}));
  EXPECT_EQ(rules[0].path, "/rulesets/0/rules/0");
  EXPECT_EQ(rules[1].to_domains, (std::vector<std::string>{"api.stripe.com", "*.stripe.network"}));
  EXPECT_EQ(rules[1].from, (std::vector<std::string>{"payments"}));
  EXPECT_EQ(rules[2].ports, (std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8100}}));
  EXPECT_EQ(rules[2].to_domain_regex.size(), 1u);
  EXPECT_EQ(rules[3].proto, Proto::any);
  EXPECT_EQ(rules[3].action, Action::reject);
  ASSERT_EQ(p.inspect.size(), 1u);
  EXPECT_EQ(p.inspect[0].id, "no-aws-keys");
  EXPECT_EQ(p.inspect[0].path, "/inspect/0");
  EXPECT_EQ(p.inspect[0].action, Action::reject);
}

struct GoodCase {
  const char* description;
  std::string doc;
  void (*check)(const Policy&);
};

TEST(PolicyParse, WellFormedDocuments) {
  const GoodCase cases[] = {
      {"minimal document: defaults", R"({"schema":1})",
       [](const Policy& p) {
         EXPECT_EQ(p.default_action, Action::deny);
         EXPECT_TRUE(p.services.empty());
         EXPECT_EQ(p.limits.l7_max_bytes, 16384u);
         EXPECT_EQ(p.limits.tcp_established_s, 3600u);
         EXPECT_FALSE(p.established_keep);
       }},
      {"default_action allow, established keep",
       R"({"schema":1,"default_action":"allow","established":"keep"})",
       [](const Policy& p) {
         EXPECT_EQ(p.default_action, Action::allow);
         EXPECT_TRUE(p.established_keep);
       }},
      {"every limit", R"({"schema":1,"limits":{"l7_max_bytes":4096,"l7_timeout_ms":100,
        "tcp_syn_s":5,"tcp_established_s":60,"tcp_closing_s":6,"udp_s":7,"icmp_s":8,
        "max_flows":1000}})",
       [](const Policy& p) {
         EXPECT_EQ(p.limits.l7_max_bytes, 4096u);
         EXPECT_EQ(p.limits.l7_timeout_ms, 100u);
         EXPECT_EQ(p.limits.tcp_syn_s, 5u);
         EXPECT_EQ(p.limits.tcp_established_s, 60u);
         EXPECT_EQ(p.limits.tcp_closing_s, 6u);
         EXPECT_EQ(p.limits.udp_s, 7u);
         EXPECT_EQ(p.limits.icmp_s, 8u);
         EXPECT_EQ(p.limits.max_flows, 1000u);
       }},
      {"rule without to: any destination",
       with_rule(R"({"id":"a","from":["web"],"action":"allow"})"),
       [](const Policy& p) {
         const Rule& r = p.rulesets[0].rules[0];
         EXPECT_TRUE(r.to_cidrs.empty());
         EXPECT_TRUE(r.ports.empty());
         EXPECT_EQ(r.proto, Proto::any);
         EXPECT_FALSE(r.from_any);
       }},
      {"port strings and ranges",
       with_rule(R"({"id":"a","from":["any"],"proto":"tcp","ports":["443","1-65535",22],
                   "action":"deny"})"),
       [](const Policy& p) {
         EXPECT_EQ(p.rulesets[0].rules[0].ports,
                   (std::vector<PortRange>{{443, 443}, {1, 65535}, {22, 22}}));
       }},
      {"domains normalized: case, trailing dot",
       with_rule(R"({"id":"a","from":["any"],"to":{"domains":["API.Example.COM.","*","*.x.io"]},
                   "action":"allow"})"),
       [](const Policy& p) {
         EXPECT_EQ(p.rulesets[0].rules[0].to_domains,
                   (std::vector<std::string>{"api.example.com", "*", "*.x.io"}));
       }},
      {"bare address is a host CIDR",
       with_rule(R"({"id":"a","from":["any"],"to":{"cidrs":["198.19.1.1","2001:2::1"]},
                   "action":"allow"})"),
       [](const Policy& p) {
         const auto& c = p.rulesets[0].rules[0].to_cidrs;
         ASSERT_EQ(c.size(), 2u);
         EXPECT_EQ(format_cidr(c[0]), "198.19.1.1/32");
         EXPECT_EQ(format_cidr(c[1]), "2001:2::1/128");
       }},
      {"any together with services",
       with_rule(R"({"id":"a","from":["web","any"],"action":"deny"})"),
       [](const Policy& p) {
         EXPECT_TRUE(p.rulesets[0].rules[0].from_any);
         EXPECT_EQ(p.rulesets[0].rules[0].from, (std::vector<std::string>{"web"}));
       }},
      {"empty rulesets and a non-ASCII (valid UTF-8) service-free document",
       R"({"schema":1,"rulesets":[],"default_action":"reject"})",
       [](const Policy& p) {
         EXPECT_TRUE(p.rulesets.empty());
         EXPECT_EQ(p.default_action, Action::reject);
       }},
      {"rule ids with the whole charset",
       with_rule(R"({"id":"A.b_c:d-9","from":["any"],"action":"allow"})"),
       [](const Policy& p) { EXPECT_EQ(p.rulesets[0].rules[0].id, "A.b_c:d-9"); }},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(c.doc);
    ASSERT_TRUE(r.policy) << dump(r.errors);
    EXPECT_TRUE(r.errors.empty());
    c.check(*r.policy);
  }
}

struct BadCase {
  const char* description;
  std::string doc;
  std::string path;     // expected path of (one of) the errors
  const char* message;  // substring of its message
};

TEST(PolicyParse, MalformedDocuments) {
  const BadCase cases[] = {
      {"not JSON", "{", "", "malformed JSON"},
      {"empty input", "", "", "malformed JSON"},
      {"root is an array", "[]", "", "must be an object"},
      {"root is a number", "1", "", "malformed JSON"},
      {"trailing garbage", R"({"schema":1} x)", "", "malformed JSON"},
      {"block comment", "{\"schema\":1 /* c */}", "", "comments are not allowed"},
      {"line comment", "{\"schema\":1 // c\n}", "", "line 1, column 13: comments are not allowed"},
      {"slash inside a string is fine, but tab is not", "{\"schema\":1,\"a/b\":\"\t\"}", "",
       "control character inside a string"},
      {"single quotes", "{'schema':1}", "", "malformed JSON"},
      {"trailing comma", R"({"schema":1,})", "", "malformed JSON"},
      {"NaN", R"({"schema":NaN})", "", "malformed JSON"},
      {"duplicate key", R"({"schema":1,"schema":1})", "/schema", "Duplicate key"},
      {"duplicate key deep inside, named by its path",
       "{\"schema\":1,\n \"rulesets\":[{\"name\":\"a\",\"rules\":[],\n \"name\":\"b\"}]}",
       "/rulesets/0/name", "Duplicate key: 'name'"},
      {"duplicate service name",
       R"({"schema":1,"services":{"a":{"cidrs":["198.18.0.0/24"]},"a~/b":{},"a~/b":{}}})",
       "/services/a~0~1b", "Duplicate key"},
      {"missing schema", "{}", "", "missing required field \"schema\""},
      {"schema 2", R"({"schema":2})", "/schema", "unsupported schema 2"},
      {"schema as string", R"({"schema":"1"})", "/schema", "must be an integer, not a string"},
      {"schema as float", R"({"schema":1.0})", "/schema", "must be an integer"},
      {"unknown root field", R"({"schema":1,"rule":[]})", "/rule", "unknown field \"rule\""},
      {"unknown field key escaped", R"({"schema":1,"a/b~c":1})", "/a~1b~0c", "unknown field"},
      {"bad default_action", R"({"schema":1,"default_action":"drop"})", "/default_action",
       "unknown action \"drop\""},
      {"bad established", R"({"schema":1,"established":"forever"})", "/established",
       "unknown mode"},
      {"services not an object", R"({"schema":1,"services":[]})", "/services", "must be an object"},
      {"service named any", R"({"schema":1,"services":{"any":{"cidrs":["10.0.0.0/8"]}}})",
       "/services/any", "reserved"},
      {"bad service name", R"({"schema":1,"services":{"Web":{"cidrs":["10.0.0.0/8"]}}})",
       "/services/Web", "bad service name"},
      {"service without cidrs", R"({"schema":1,"services":{"web":{}}})", "/services/web",
       "missing required field \"cidrs\""},
      {"service with empty cidrs", R"({"schema":1,"services":{"web":{"cidrs":[]}}})",
       "/services/web/cidrs", "empty list"},
      {"unknown field in a service",
       R"({"schema":1,"services":{"web":{"cidrs":["10.0.0.0/8"],"cidr":1}}})", "/services/web/cidr",
       "unknown field"},
      {"same CIDR in two services",
       R"({"schema":1,"services":{"a":{"cidrs":["10.0.0.0/8"]},"b":{"cidrs":["10.0.0.0/8"]}}})",
       "/services/b/cidrs/0", "already in another service (/services/a/cidrs/0)"},
      {"CIDR with host bits", R"({"schema":1,"services":{"a":{"cidrs":["198.18.1.5/24"]}}})",
       "/services/a/cidrs/0", "did you mean 198.18.1.0/24"},
      {"same CIDR spelt twice in a list",
       R"({"schema":1,"services":{"a":{"cidrs":["2001:2::/48","2001:0002::/48"]}}})",
       "/services/a/cidrs/1", "2001:2::/48 is listed twice (first at /services/a/cidrs/0)"},
      {"CIDR not a string", R"({"schema":1,"services":{"a":{"cidrs":[10]}}})",
       "/services/a/cidrs/0", "must be a string, not an integer"},
      {"rulesets not an array", R"({"schema":1,"rulesets":{}})", "/rulesets", "must be an array"},
      {"ruleset without name", R"({"schema":1,"rulesets":[{"rules":[]}]})", "/rulesets/0",
       "missing required field \"name\""},
      {"ruleset without rules", R"({"schema":1,"rulesets":[{"name":"a"}]})", "/rulesets/0",
       "missing required field \"rules\""},
      {"duplicate ruleset names",
       R"({"schema":1,"rulesets":[{"name":"a","rules":[]},{"name":"a","rules":[]}]})",
       "/rulesets/1/name", "duplicate ruleset name"},
      {"unknown field in a ruleset", R"({"schema":1,"rulesets":[{"name":"a","rules":[],"x":0}]})",
       "/rulesets/0/x", "unknown field"},
      {"rule not an object", with_rule("3"), "/rulesets/0/rules/0", "must be an object"},
      {"missing id", with_rule(R"({"from":["web"],"action":"allow"})"), "/rulesets/0/rules/0",
       "missing required field \"id\""},
      {"missing action", with_rule(R"({"id":"a","from":["web"]})"), "/rulesets/0/rules/0",
       "missing required field \"action\""},
      {"missing from", with_rule(R"({"id":"a","action":"allow"})"), "/rulesets/0/rules/0",
       "missing required field \"from\""},
      {"empty from", with_rule(R"({"id":"a","from":[],"action":"allow"})"),
       "/rulesets/0/rules/0/from", "empty list"},
      {"unknown service in from", with_rule(R"({"id":"a","from":["db"],"action":"allow"})"),
       "/rulesets/0/rules/0/from/0", "unknown service \"db\""},
      {"from listed twice", with_rule(R"({"id":"a","from":["web","web"],"action":"allow"})"),
       "/rulesets/0/rules/0/from/1", "listed twice"},
      {"bad id charset", with_rule(R"({"id":"a b","from":["web"],"action":"allow"})"),
       "/rulesets/0/rules/0/id", "bad rule id"},
      {"id too long",
       with_rule(R"({"id":")" + std::string(64, 'x') + R"(","from":["web"],"action":"allow"})"),
       "/rulesets/0/rules/0/id", "bad rule id"},
      {"duplicate rule id",
       with_rule(
           R"({"id":"a","from":["web"],"action":"allow"},{"id":"a","from":["web"],"action":"deny"})"),
       "/rulesets/0/rules/1/id", "duplicate rule id \"a\" (first used at /rulesets/0/rules/0)"},
      {"rule id reused by inspect",
       R"({"schema":1,"rulesets":[{"name":"r","rules":[{"id":"x","from":["any"],"action":"deny"}]}],
          "inspect":[{"id":"x","from":["any"],"patterns":["a"],"action":"deny"}]})",
       "/inspect/0/id", "duplicate rule id"},
      {"bad action", with_rule(R"({"id":"a","from":["web"],"action":"permit"})"),
       "/rulesets/0/rules/0/action", "unknown action \"permit\""},
      {"bad proto", with_rule(R"({"id":"a","from":["web"],"proto":"sctp","action":"allow"})"),
       "/rulesets/0/rules/0/proto", "unknown proto"},
      {"unknown rule field", with_rule(R"({"id":"a","from":["web"],"action":"allow","port":[80]})"),
       "/rulesets/0/rules/0/port", "unknown field \"port\""},
      {"port over 65535",
       with_rule(R"({"id":"a","from":["web"],"ports":[70000],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "out of range"},
      {"negative port", with_rule(R"({"id":"a","from":["web"],"ports":[-1],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "out of range"},
      {"huge port",
       with_rule(R"({"id":"a","from":["web"],"ports":[18446744073709551615],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "out of range"},
      {"port 0", with_rule(R"({"id":"a","from":["web"],"ports":[0],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "port 0"},
      {"port range from 0",
       with_rule(R"({"id":"a","from":["web"],"ports":["0-10"],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "port 0"},
      {"inverted range",
       with_rule(R"({"id":"a","from":["web"],"ports":[80,"8100-8000"],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/1", "inverted port range \"8100-8000\""},
      {"range over 65535",
       with_rule(R"({"id":"a","from":["web"],"ports":["1-99999"],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "out of range"},
      {"port word", with_rule(R"({"id":"a","from":["web"],"ports":["http"],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "bad port \"http\""},
      {"port with spaces",
       with_rule(R"({"id":"a","from":["web"],"ports":["80 - 90"],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "bad port"},
      {"port as float", with_rule(R"({"id":"a","from":["web"],"ports":[80.5],"action":"allow"})"),
       "/rulesets/0/rules/0/ports/0", "must be a port number"},
      {"empty ports", with_rule(R"({"id":"a","from":["web"],"ports":[],"action":"allow"})"),
       "/rulesets/0/rules/0/ports", "empty ports list"},
      {"ports with icmp",
       with_rule(R"({"id":"a","from":["web"],"proto":"icmp","ports":[1],"action":"allow"})"),
       "/rulesets/0/rules/0/ports", "ICMP has no ports"},
      {"to not an object", with_rule(R"({"id":"a","from":["web"],"to":[],"action":"allow"})"),
       "/rulesets/0/rules/0/to", "must be an object"},
      {"empty to object", with_rule(R"({"id":"a","from":["web"],"to":{},"action":"allow"})"),
       "/rulesets/0/rules/0/to", "empty \"to\""},
      {"empty to.cidrs",
       with_rule(R"({"id":"a","from":["web"],"to":{"cidrs":[]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/cidrs", "empty list"},
      {"empty to.domains",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":[]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains", "empty list"},
      {"unknown field in to",
       with_rule(R"({"id":"a","from":["web"],"to":{"cidr":["1.2.3.4/32"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/cidr", "unknown field"},
      {"bad CIDR in to",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"cidrs":["1.2.3.4/32","1.2.3/24"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/cidrs/1", "not an IPv4 address"},
      {"host bits in to",
       with_rule(R"({"id":"a","from":["web"],"to":{"cidrs":["2001:2::1/48"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/cidrs/0", "did you mean 2001:2::/48"},
      {"regex metacharacter in a domain",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"domains":["ok.com","a+.example.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/1", "regex metacharacter '+'"},
      {"anchored regex in domains",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"domains":["^api\\.x\\.com$"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "regex metacharacter"},
      {"wildcard inside a label",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"domains":["a*.example.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "'*' is only allowed"},
      {"double wildcard",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"domains":["*.*.example.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "'*' is only allowed"},
      {"empty label",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":["a..com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "empty label"},
      {"label over 63",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":[")" + std::string(64, 'a') +
                 R"(.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "longer than 63"},
      {"label with leading hyphen",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":["-a.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "starts or ends with '-'"},
      {"IP literal as domain",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":["198.19.1.1"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "use to.cidrs"},
      {"space in a domain",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":["a b.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "invalid character ' '"},
      {"non-ASCII domain",
       with_rule(R"({"id":"a","from":["web"],"to":{"domains":["bücher.de"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/0", "punycode"},
      {"domain listed twice ignoring case",
       with_rule(
           R"({"id":"a","from":["web"],"to":{"domains":["a.com","A.com"]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domains/1", "listed twice"},
      {"empty domain_regex string",
       with_rule(R"({"id":"a","from":["web"],"to":{"domain_regex":[""]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domain_regex/0", "empty pattern"},
      {"empty domain_regex list",
       with_rule(R"({"id":"a","from":["web"],"to":{"domain_regex":[]},"action":"allow"})"),
       "/rulesets/0/rules/0/to/domain_regex", "empty list"},
      {"inspect without patterns",
       R"({"schema":1,"inspect":[{"id":"i","from":["any"],"action":"deny"}]})", "/inspect/0",
       "missing required field \"patterns\""},
      {"inspect with allow",
       R"({"schema":1,"inspect":[{"id":"i","from":["any"],"patterns":["x"],"action":"allow"}]})",
       "/inspect/0/action", "expected deny or reject"},
      {"inspect empty pattern",
       R"({"schema":1,"inspect":[{"id":"i","from":["any"],"patterns":[""],"action":"deny"}]})",
       "/inspect/0/patterns/0", "empty pattern"},
      {"limits unknown key", R"({"schema":1,"limits":{"tcp_s":5}})", "/limits/tcp_s",
       "unknown field"},
      {"limit zero", R"({"schema":1,"limits":{"udp_s":0}})", "/limits/udp_s", "out of range"},
      {"limit too large", R"({"schema":1,"limits":{"l7_max_bytes":1000000000}})",
       "/limits/l7_max_bytes", "out of range"},
      {"limit as string", R"({"schema":1,"limits":{"icmp_s":"5"}})", "/limits/icmp_s",
       "must be an integer"},
      {"NUL in a string via escape", R"({"schema":1,"services":{"a\u0000":{"cidrs":[]}}})",
       std::string("/services/a\0", 12), "NUL character"},
      {"lone low surrogate via escape", R"({"schema":1,"default_action":"\udc00"})",
       "/default_action", "invalid UTF-8"},
      {"raw invalid UTF-8", std::string("{\"schema\":1,\"x\":\"\xff\"}"), "",
       "invalid UTF-8 at byte 17"},
      {"overlong UTF-8", std::string("{\"schema\":1,\"x\":\"\xc0\xaf\"}"), "", "invalid UTF-8"},
      {"UTF-8 surrogate encoded", std::string("{\"schema\":1,\"x\":\"\xed\xa0\x80\"}"), "",
       "invalid UTF-8"},
      {"truncated UTF-8", std::string("{\"schema\":1,\"x\":\"\xe2\x82\"}"), "", "invalid UTF-8"},
      {"deep nesting",
       std::string(R"({"schema":1,"x":)") + std::string(200, '[') + std::string(200, ']') + "}", "",
       "nested deeper than 64"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(c.doc);
    EXPECT_FALSE(r.policy.has_value());
    bool found = false;
    for (const Error& e : r.errors)
      found = found || (e.path == c.path && e.message.find(c.message) != std::string::npos);
    EXPECT_TRUE(found) << "want '" << c.path << "': " << c.message << "\ngot:\n" << dump(r.errors);
  }
}

TEST(PolicyParse, ReportsEveryErrorNotJustTheFirst) {
  std::string doc = R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.1/24"]}},
    "rulesets":[{"name":"rs","rules":[
      {"id":"a","from":["db"],"action":"allow"},
      {"id":"b","from":["any"],"ports":["9-1"],"action":"allow"}]}]})";
  ParseResult r = parse_policy(doc);
  ASSERT_EQ(r.errors.size(), 3u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "/services/web/cidrs/0");
  EXPECT_EQ(r.errors[1].path, "/rulesets/0/rules/0/from/0");
  EXPECT_EQ(r.errors[2].path, "/rulesets/0/rules/1/ports/0");
}

TEST(PolicyParse, ErrorsAreCappedAtTheLimit) {
  std::string ports;
  for (int i = 0; i < 300; ++i) ports += std::string(i ? "," : "") + "0";
  ParseResult r = parse_policy(
      with_rule(R"({"id":"a","from":["any"],"ports":[)" + ports + R"(],"action":"allow"})"));
  EXPECT_EQ(r.errors.size(), kMaxErrors);
}

TEST(PolicyParse, NestingWithinTheLimitIsOnlyAnUnknownField) {
  std::string doc =
      std::string(R"({"schema":1,"x":)") + std::string(40, '[') + std::string(40, ']') + "}";
  ParseResult r = parse_policy(doc);
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "/x");
}

struct CidrCase {
  const char* description;
  const char* text;
  const char* formatted;  // nullptr: must fail
  const char* why;        // substring of the reason when it fails
};

// A document whose one rule has to.domain_regex = [pattern] (JSON-escaped here).
std::string with_regex(const std::string& pattern) {
  std::string esc;
  for (char c : pattern) {
    if (c == '\\' || c == '"') esc += '\\';
    esc += c;
  }
  return with_rule(R"({"id":"a","from":["web"],"to":{"domain_regex":[")" + esc +
                   R"("]},"action":"allow"})");
}

TEST(PolicyParse, DomainRegexValidation) {
  const std::string path = "/rulesets/0/rules/0/to/domain_regex/0";
  struct Case {
    const char* description;
    std::string pattern;
    const char* message;  // nullptr: valid
  };
  const Case cases[] = {
      {"anchored name pattern", R"(^[a-z0-9-]+\.pkg\.example\.org$)", nullptr},
      {"unanchored substring", "tracker", nullptr},
      {"repeat of exactly the limit", "^a{1000}$", nullptr},
      {"braces in a class are not a repeat", "^[{2000}]+$", nullptr},
      {"escaped braces are not a repeat", R"(^x\{2000\}$)", nullptr},
      {"quoted braces are not a repeat", R"(^\Q{2000}\E$)", nullptr},
      {"hex escape with braces", R"(^\x{61}{3}$)", nullptr},
      {"a comment with braces", "^(?#{5000})ab$", nullptr},
      {"1024 bytes", "^" + std::string(1022, 'a') + "$", nullptr},
      {"1025 bytes", "^" + std::string(1023, 'a') + "$",
       "1025 bytes, longer than the limit of 1024"},
      {"bounded repeat {n} over 1000", "^a{1001}$",
       "bounded repeat {1001} at byte 2 counts over 1000"},
      {"bounded repeat {n,m} with m over 1000", "^[a-z]{1,5000}\\.x$", "bounded repeat {1,5000}"},
      {"bounded repeat {n,} over 1000", "x{2000,}", "bounded repeat {2000,}"},
      {"huge repeat count", "x{99999999999999999999}", "counts over 1000"},
      {"unterminated class", "^[a-z",
       "Hyperscan cannot compile it: \"Unterminated character class"},
      {"back-reference", R"(^(a)\1$)", "Back-references are unsupported"},
      {"unbalanced parenthesis", "^(ab$", "Hyperscan cannot compile it"},
      {"matches the empty string: star", "a*", "can match the empty string"},
      {"matches the empty string: optional, anchored", "^a?$", "can match the empty string"},
      {"matches the empty string: anchor only", "^", "can match the empty string"},
      {"matches the empty string: word boundary", R"(\b)", "can match the empty string"},
      {"matches the empty string: empty alternative", "(foo|)", "can match the empty string"},
      {"empty pattern", "", "empty pattern"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(with_regex(c.pattern));
    if (c.message == nullptr) {
      EXPECT_TRUE(r.errors.empty()) << dump(r.errors);
      ASSERT_TRUE(r.policy.has_value());
      EXPECT_EQ(r.policy->rulesets[0].rules[0].to_domain_regex,
                (std::vector<std::string>{c.pattern}));
      continue;
    }
    ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
    EXPECT_EQ(r.errors[0].path, path);
    EXPECT_NE(r.errors[0].message.find(c.message), std::string::npos) << r.errors[0].message;
  }
}

TEST(PolicyParse, EveryBadRegexIsReportedAtItsPath) {
  ParseResult r = parse_policy(with_rule(
      R"({"id":"a","from":["web"],"to":{"domain_regex":["^ok$","a{5000}","[","^fine\\.x$","x*"]},
          "action":"allow"})"));
  ASSERT_EQ(r.errors.size(), 3u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "/rulesets/0/rules/0/to/domain_regex/1");
  EXPECT_EQ(r.errors[1].path, "/rulesets/0/rules/0/to/domain_regex/2");
  EXPECT_EQ(r.errors[2].path, "/rulesets/0/rules/0/to/domain_regex/4");
}

TEST(PolicyParse, L7MaxBytesRange) {
  struct Case {
    int64_t value;
    bool ok;
  };
  const Case cases[] = {{63, false},   {64, true},     {16384, true},
                        {65536, true}, {65537, false}, {1048576, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    ParseResult r =
        parse_policy(R"({"schema":1,"limits":{"l7_max_bytes":)" + std::to_string(c.value) + "}}");
    if (c.ok) {
      ASSERT_TRUE(r.policy.has_value()) << dump(r.errors);
      EXPECT_EQ(r.policy->limits.l7_max_bytes, static_cast<uint32_t>(c.value));
    } else {
      ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
      EXPECT_EQ(r.errors[0].path, "/limits/l7_max_bytes");
      EXPECT_NE(r.errors[0].message.find("out of range (64..65536)"), std::string::npos)
          << r.errors[0].message;
    }
  }
}

TEST(Cidr, ParseTable) {
  const CidrCase cases[] = {
      {"v4 /24", "198.18.1.0/24", "198.18.1.0/24", nullptr},
      {"v4 /0", "0.0.0.0/0", "0.0.0.0/0", nullptr},
      {"v4 /32", "198.19.0.53/32", "198.19.0.53/32", nullptr},
      {"v4 bare address", "10.1.2.3", "10.1.2.3/32", nullptr},
      {"v4 /31", "10.0.0.2/31", "10.0.0.2/31", nullptr},
      {"v6 /64", "2001:2:0:1::/64", "2001:2:0:1::/64", nullptr},
      {"v6 /0", "::/0", "::/0", nullptr},
      {"v6 /128", "2001:2::1/128", "2001:2::1/128", nullptr},
      {"v6 uncompressed", "2001:0002:0000:0000:0000:0000:0000:0000/48", "2001:2::/48", nullptr},
      {"v6 /127", "2001:2::2/127", "2001:2::2/127", nullptr},
      {"v4-mapped v6", "::ffff:198.18.0.0/112", "::ffff:198.18.0.0/112", nullptr},
      {"v4 host bits", "198.18.1.5/24", nullptr, "did you mean 198.18.1.0/24"},
      {"v4 host bits inside a byte", "10.0.0.3/31", nullptr, "did you mean 10.0.0.2/31"},
      {"v6 host bits", "2001:2::1/64", nullptr, "did you mean 2001:2::/64"},
      {"v4 prefix over 32", "10.0.0.0/33", nullptr, "over 32"},
      {"v6 prefix over 128", "::/129", nullptr, "over 128"},
      {"empty prefix", "10.0.0.0/", nullptr, "bad prefix"},
      {"negative prefix", "10.0.0.0/-1", nullptr, "bad prefix"},
      {"prefix with leading zero", "10.0.0.0/08", nullptr, "bad prefix"},
      {"prefix with junk", "10.0.0.0/8x", nullptr, "bad prefix"},
      {"two slashes", "10.0.0.0/8/8", nullptr, "bad prefix"},
      {"three octets", "10.0.0/24", nullptr, "not an IPv4 address"},
      {"octet over 255", "10.0.0.256/32", nullptr, "not an IPv4 address"},
      {"leading zeros in an octet", "010.0.0.0/8", nullptr, "not an IPv4 address"},
      {"hostname", "example.com/24", nullptr, "not an IPv4 address"},
      {"v6 with zone", "fe80::1%eth0/128", nullptr, "not an IPv6 address"},
      {"v6 two ::", "2001::2::/64", nullptr, "not an IPv6 address"},
      {"empty", "", nullptr, "empty"},
      {"spaces", " 10.0.0.0/8", nullptr, "not an IPv4 address"},
  };
  for (const CidrCase& c : cases) {
    SCOPED_TRACE(c.description);
    std::string why;
    auto r = parse_cidr(c.text, &why);
    if (c.formatted != nullptr) {
      ASSERT_TRUE(r) << why;
      EXPECT_EQ(format_cidr(*r), c.formatted);
      EXPECT_EQ(r->family, std::string_view(c.text).find(':') != std::string_view::npos ? 6 : 4);
    } else {
      EXPECT_FALSE(r);
      EXPECT_NE(why.find(c.why), std::string::npos) << why;
    }
  }
}

// An inspect rule with the given patterns (JSON array text) and action, plus limits.
std::string with_inspect(const std::string& patterns, const std::string& action = "deny",
                         const std::string& limits = "") {
  return R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},)"
         R"("inspect":[{"id":"i","from":["web"],"patterns":)" +
         patterns + R"(,"action":")" + action + "\"}]" +
         (limits.empty() ? "" : R"(,"limits":)" + limits) + "}";
}

TEST(PolicyParse, InspectRules) {
  struct Case {
    const char* description;
    std::string doc;
    const char* path;     // nullptr: valid
    const char* message;  // or the inspect_max_bytes it must give
    uint32_t max_bytes = 1048576;
  };
  const std::string long_ok(kMaxInspectPatternLength, 'a');
  const Case cases[] = {
      {"the contract's pattern, reject", with_inspect(R"(["AKIA[0-9A-Z]{16}"])", "reject"),
       nullptr, ""},
      {"upper case, bytes and dots are fine in payload patterns",
       with_inspect(R"(["-----BEGIN RSA PRIVATE KEY-----", "\\x00\\xffsecret.", "(?i)password="])"),
       nullptr, ""},
      {"a pattern of exactly the limit", with_inspect("[\"" + long_ok + "\"]"), nullptr, ""},
      {"repeat of exactly 1000", with_inspect(R"(["x[0-9]{1000}"])"), nullptr, ""},
      {"braces in a class and an escape are not repeats",
       with_inspect(R"(["a[{2000}]b", "\\x{41}{3}", "c\\{5000}"])"), nullptr, ""},
      {"inspect_max_bytes 0 (inspect nothing)", with_inspect(R"(["x"])", "deny",
                                                             R"({"inspect_max_bytes":0})"),
       nullptr, "", 0},
      {"inspect_max_bytes 2^31", with_inspect(R"(["x"])", "deny",
                                              R"({"inspect_max_bytes":2147483648})"),
       nullptr, "", 2147483648u},
      {"allow makes no sense", with_inspect(R"(["x"])", "allow"), "/inspect/0/action",
       "an inspect match ends the flow: expected deny or reject"},
      {"pattern over 1024 bytes", with_inspect("[\"" + long_ok + "b\"]"),
       "/inspect/0/patterns/0", "pattern of 1025 bytes, longer than the limit of 1024"},
      {"bounded repeat over 1000", with_inspect(R"(["ok", "a{1001}"])"), "/inspect/0/patterns/1",
       "bounded repeat {1001} at byte 1 counts over 1000"},
      {"open repeat over 1000", with_inspect(R"(["[a-z]{2000,}x"])"), "/inspect/0/patterns/0",
       "bounded repeat {2000,}"},
      {"range repeat over 1000", with_inspect(R"(["(ab){1,5000}"])"), "/inspect/0/patterns/0",
       "bounded repeat {1,5000}"},
      {"matches the empty string", with_inspect(R"(["a*"])"), "/inspect/0/patterns/0",
       "can match the empty string, so it would match every payload"},
      {"an alternative that is empty", with_inspect(R"x(["(secret|)"])x"), "/inspect/0/patterns/0",
       "can match the empty string"},
      {"back-reference: Hyperscan refuses it", with_inspect(R"(["(a)\\1"])"),
       "/inspect/0/patterns/0", "Hyperscan cannot compile it: \"Back-references"},
      {"unbalanced group", with_inspect(R"(["(abc"])"), "/inspect/0/patterns/0",
       "Hyperscan cannot compile it"},
      {"empty pattern", with_inspect(R"([""])"), "/inspect/0/patterns/0", "empty pattern"},
      {"pattern listed twice", with_inspect(R"(["x", "x"])"), "/inspect/0/patterns/1",
       "listed twice"},
      {"empty patterns list", with_inspect("[]"), "/inspect/0/patterns", "empty list"},
      {"inspect_max_bytes over 2^31",
       with_inspect(R"(["x"])", "deny", R"({"inspect_max_bytes":2147483649})"),
       "/limits/inspect_max_bytes", "out of range (0..2147483648)"},
      {"negative inspect_max_bytes",
       with_inspect(R"(["x"])", "deny", R"({"inspect_max_bytes":-1})"),
       "/limits/inspect_max_bytes", "out of range"},
      {"inspect_max_bytes as a string",
       with_inspect(R"(["x"])", "deny", R"({"inspect_max_bytes":"1"})"),
       "/limits/inspect_max_bytes", "must be an integer"},
      {"unknown service in from",
       R"({"schema":1,"inspect":[{"id":"i","from":["db"],"patterns":["x"],"action":"deny"}]})",
       "/inspect/0/from/0", "unknown service \"db\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(c.doc);
    if (c.path == nullptr) {
      ASSERT_TRUE(r.policy) << dump(r.errors);
      EXPECT_EQ(r.policy->limits.inspect_max_bytes, c.max_bytes);
      ASSERT_EQ(r.policy->inspect.size(), 1u);
      EXPECT_FALSE(r.policy->inspect[0].patterns.empty());
      continue;
    }
    EXPECT_FALSE(r.policy.has_value());
    bool found = false;
    for (const Error& e : r.errors)
      found = found || (e.path == c.path && e.message.find(c.message) != std::string::npos);
    EXPECT_TRUE(found) << "want '" << c.path << "': " << c.message << "\ngot:\n" << dump(r.errors);
  }
}

// A document whose ruleset (with `mode`, unless empty) holds an allow rule and then
// rule "b" (action, plus the members in extra): b's fields are at /rulesets/0/rules/1.
std::string limited(const std::string& extra, const std::string& action = "allow",
                    const std::string& mode = "") {
  return R"({"schema":1,"services":{"web":{"cidrs":["198.18.1.0/24"]}},"rulesets":[{"name":"rs",)" +
         (mode.empty() ? "" : R"("mode":")" + mode + "\",") +
         R"("rules":[{"id":"a","from":["web"],"action":"allow"},)"
         R"({"id":"b","from":["web"],"action":")" +
         action + "\"" + (extra.empty() ? "" : "," + extra) + "}]}]}";
}

TEST(PolicyParse, RateLimitsQuotasAndModes) {
  using P = LimitPer;
  struct Case {
    const char* description;
    std::string doc;
    std::optional<RateLimit> rate_limit;
    std::optional<Quota> max_flows;
    bool report = false;
  };
  const Case cases[] = {
      {"no limits", limited(""), std::nullopt, std::nullopt},
      {"new flows only: burst = rate, per service, over reject",
       limited(R"("rate_limit":{"new_flows_per_s":100})"),
       RateLimit{100, 100, 0, 0, P::service, Action::reject}, std::nullopt},
      {"new flows with every option",
       limited(R"("rate_limit":{"new_flows_per_s":10,"burst":50,"per":"source","over":"deny"})"),
       RateLimit{10, 50, 0, 0, P::source, Action::deny}, std::nullopt},
      {"bounds of new_flows_per_s and burst",
       limited(R"("rate_limit":{"new_flows_per_s":10000000,"burst":1})"),
       RateLimit{10000000, 1, 0, 0, P::service, Action::reject}, std::nullopt},
      {"bytes as an integer: burst at least 64 KiB",
       limited(R"("rate_limit":{"bytes_per_s":1000})"),
       RateLimit{0, 0, 1000, 65536, P::service, Action::reject}, std::nullopt},
      {"bytes \"10M\": 10,000,000 B/s, burst a tenth",
       limited(R"("rate_limit":{"bytes_per_s":"10M"})"),
       RateLimit{0, 0, 10000000, 1000000, P::service, Action::reject}, std::nullopt},
      {"suffixes k, K, G and plain digits",
       limited(R"("rate_limit":{"bytes_per_s":"2G","bytes_burst":"5k"})"),
       RateLimit{0, 0, 2000000000, 5000, P::service, Action::reject}, std::nullopt},
      {"K and plain digit strings",
       limited(R"("rate_limit":{"bytes_per_s":"7K","bytes_burst":"123"})"),
       RateLimit{0, 0, 7000, 123, P::service, Action::reject}, std::nullopt},
      {"the largest byte rate, as text and as a number",
       limited(R"("rate_limit":{"bytes_per_s":"100G","bytes_burst":100000000000})"),
       RateLimit{0, 0, 100000000000, 100000000000, P::service, Action::reject}, std::nullopt},
      {"both rates",
       limited(R"("rate_limit":{"new_flows_per_s":5,"bytes_per_s":"1M","per":"source"})"),
       RateLimit{5, 5, 1000000, 100000, P::source, Action::reject}, std::nullopt},
      {"max_flows as a number: per service", limited(R"("max_flows":1)"), std::nullopt,
       Quota{1, P::service}},
      {"max_flows as an object", limited(R"("max_flows":{"count":100000000,"per":"source"})"),
       std::nullopt, Quota{100000000, P::source}},
      {"max_flows object without per", limited(R"("max_flows":{"count":7})"), std::nullopt,
       Quota{7, P::service}},
      {"rate_limit and max_flows together",
       limited(R"("rate_limit":{"new_flows_per_s":3,"over":"deny"},"max_flows":{"count":9})"),
       RateLimit{3, 3, 0, 0, P::service, Action::deny}, Quota{9, P::service}},
      {"mode enforce, explicit", limited("", "allow", "enforce"), std::nullopt, std::nullopt},
      {"mode report, with a deny rule", limited("", "deny", "report"), std::nullopt, std::nullopt,
       true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(c.doc);
    ASSERT_TRUE(r.policy) << dump(r.errors);
    const Ruleset& rs = r.policy->rulesets[0];
    EXPECT_EQ(rs.report, c.report);
    EXPECT_EQ(rs.rules[0].rate_limit, std::nullopt);
    EXPECT_EQ(rs.rules[1].rate_limit, c.rate_limit);
    EXPECT_EQ(rs.rules[1].max_flows, c.max_flows);
  }
}

TEST(PolicyParse, RateLimitQuotaAndModeErrors) {
  const std::string rl = "/rulesets/0/rules/1/rate_limit";
  const std::string mf = "/rulesets/0/rules/1/max_flows";
  auto bytes = [](const std::string& v) {
    return limited(R"("rate_limit":{"bytes_per_s":)" + v + "}");
  };
  const std::string bps = rl + "/bytes_per_s";
  const BadCase cases[] = {
      {"rate_limit not an object", limited(R"("rate_limit":100)"), rl, "must be an object"},
      {"empty rate_limit", limited(R"("rate_limit":{})"), rl,
       "give new_flows_per_s or bytes_per_s (or both)"},
      {"rate_limit with only per and over",
       limited(R"("rate_limit":{"per":"source","over":"deny"})"), rl,
       "give new_flows_per_s or bytes_per_s"},
      {"unknown field in rate_limit", limited(R"("rate_limit":{"new_flows_per_s":1,"rate":2})"),
       rl + "/rate", "unknown field \"rate\""},
      {"new_flows_per_s 0", limited(R"("rate_limit":{"new_flows_per_s":0})"),
       rl + "/new_flows_per_s", "new_flows_per_s 0 is out of range (1..10000000)"},
      {"new_flows_per_s over the bound", limited(R"("rate_limit":{"new_flows_per_s":10000001})"),
       rl + "/new_flows_per_s", "out of range"},
      {"new_flows_per_s as a string", limited(R"("rate_limit":{"new_flows_per_s":"100"})"),
       rl + "/new_flows_per_s", "must be an integer, not a string"},
      {"new_flows_per_s with a fraction", limited(R"("rate_limit":{"new_flows_per_s":1.5})"),
       rl + "/new_flows_per_s", "must be an integer"},
      {"burst 0", limited(R"("rate_limit":{"new_flows_per_s":1,"burst":0})"), rl + "/burst",
       "burst 0 is out of range"},
      {"burst over the bound", limited(R"("rate_limit":{"new_flows_per_s":1,"burst":10000001})"),
       rl + "/burst", "out of range"},
      {"burst without new_flows_per_s", limited(R"("rate_limit":{"bytes_per_s":1,"burst":5})"),
       rl + "/burst", "give new_flows_per_s too"},
      {"bits are not bytes", bytes(R"("10Mbit")"), bps, "bad bytes_per_s \"10Mbit\""},
      {"fraction", bytes(R"("1.5M")"), bps, "bad bytes_per_s \"1.5M\""},
      {"empty string", bytes(R"("")"), bps, "bad bytes_per_s \"\""},
      {"negative string", bytes(R"("-1")"), bps, "bad bytes_per_s \"-1\""},
      {"lower-case m", bytes(R"("10m")"), bps, "bad bytes_per_s"},
      {"lower-case g", bytes(R"("1g")"), bps, "bad bytes_per_s"},
      {"suffix alone", bytes(R"("M")"), bps, "bad bytes_per_s"},
      {"space", bytes(R"(" 10M")"), bps, "bad bytes_per_s"},
      {"two suffixes", bytes(R"("1MM")"), bps, "bad bytes_per_s"},
      {"zero string", bytes(R"("0")"), bps, "bytes_per_s \"0\" is out of range"},
      {"zero with a suffix", bytes(R"("0k")"), bps, "out of range"},
      {"over 100G as text", bytes(R"("101G")"), bps, "bytes_per_s \"101G\" is out of range"},
      {"many digits", bytes(R"("99999999999999999999999")"), bps, "out of range"},
      {"zero", bytes("0"), bps, "bytes_per_s 0 is out of range (1..100000000000)"},
      {"negative", bytes("-1"), bps, "bytes_per_s -1 is out of range"},
      {"over 100G as a number", bytes("100000000001"), bps, "out of range"},
      {"over int64", bytes("18446744073709551615"), bps, "out of range"},
      {"a boolean", bytes("true"), bps,
       "must be an integer or a string such as \"10M\", not a boolean"},
      {"a fraction number", bytes("1.5"), bps, "must be an integer"},
      {"bytes_burst without bytes_per_s",
       limited(R"("rate_limit":{"new_flows_per_s":1,"bytes_burst":"1M"})"), rl + "/bytes_burst",
       "give bytes_per_s too"},
      {"bad bytes_burst", limited(R"("rate_limit":{"bytes_per_s":"1M","bytes_burst":"0"})"),
       rl + "/bytes_burst", "bytes_burst \"0\" is out of range"},
      {"bytes_burst in bits", limited(R"("rate_limit":{"bytes_per_s":"1M","bytes_burst":"8Mb"})"),
       rl + "/bytes_burst", "bad bytes_burst"},
      {"unknown per", limited(R"("rate_limit":{"new_flows_per_s":1,"per":"client"})"), rl + "/per",
       "unknown per \"client\" (expected service"},
      {"per not a string", limited(R"("rate_limit":{"new_flows_per_s":1,"per":1})"), rl + "/per",
       "must be a string"},
      {"over allow", limited(R"("rate_limit":{"new_flows_per_s":1,"over":"allow"})"), rl + "/over",
       "unknown over action \"allow\" (expected deny or reject"},
      {"rate_limit on a deny rule", limited(R"("rate_limit":{"new_flows_per_s":1})", "deny"), rl,
       "rate_limit applies to allow rules: a deny or reject rule has nothing to limit"},
      {"rate_limit on a reject rule", limited(R"("rate_limit":{"bytes_per_s":1})", "reject"), rl,
       "rate_limit applies to allow rules"},
      {"max_flows on a deny rule", limited(R"("max_flows":5)", "deny"), mf,
       "max_flows applies to allow rules: a deny or reject rule has nothing to limit"},
      {"rate_limit in a report ruleset",
       limited(R"("rate_limit":{"new_flows_per_s":1})", "allow", "report"), rl,
       "rate_limit in a report-only ruleset would limit nothing"},
      {"max_flows in a report ruleset", limited(R"("max_flows":5)", "allow", "report"), mf,
       "max_flows in a report-only ruleset would limit nothing"},
      {"max_flows 0", limited(R"("max_flows":0)"), mf,
       "max_flows 0 is out of range (1..100000000)"},
      {"max_flows over the bound", limited(R"("max_flows":100000001)"), mf, "out of range"},
      {"max_flows as a string", limited(R"("max_flows":"5")"), mf,
       "must be an integer or an object {\"count\": N, \"per\": ...}, not a string"},
      {"max_flows as a fraction", limited(R"("max_flows":2.5)"), mf,
       "must be an integer or an object"},
      {"max_flows object without count", limited(R"("max_flows":{"per":"source"})"), mf,
       "missing required field \"count\""},
      {"max_flows count 0", limited(R"("max_flows":{"count":0})"), mf + "/count",
       "count 0 is out of range"},
      {"max_flows count as a string", limited(R"("max_flows":{"count":"1"})"), mf + "/count",
       "must be an integer, not a string"},
      {"max_flows unknown per", limited(R"("max_flows":{"count":1,"per":"host"})"), mf + "/per",
       "unknown per \"host\""},
      {"max_flows unknown field", limited(R"("max_flows":{"count":1,"over":"deny"})"), mf + "/over",
       "unknown field \"over\" (expected one of: count, per)"},
      {"unknown mode", limited("", "allow", "audit"), "/rulesets/0/mode",
       "unknown mode \"audit\" (expected enforce or report)"},
      {"mode not a string", R"({"schema":1,"rulesets":[{"name":"a","mode":true,"rules":[]}]})",
       "/rulesets/0/mode", "must be a string, not a boolean"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.description);
    ParseResult r = parse_policy(c.doc);
    EXPECT_FALSE(r.policy.has_value());
    bool found = false;
    for (const Error& e : r.errors)
      found = found || (e.path == c.path && e.message.find(c.message) != std::string::npos);
    EXPECT_TRUE(found) << "want '" << c.path << "': " << c.message << "\ngot:\n" << dump(r.errors);
  }
}

TEST(Cidr, ModelFields) {
  std::string why;
  auto v4 = parse_cidr("198.18.1.0/24", &why);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, 4);
  EXPECT_EQ(v4->prefix, 24);
  EXPECT_EQ(v4->addr[0], 198);
  EXPECT_EQ(v4->addr[2], 1);
  EXPECT_EQ(v4->addr[4], 0);  // bytes past the IPv4 address stay zero
  auto v6 = parse_cidr("2001:2:0:1::/64", &why);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, 6);
  EXPECT_EQ(v6->prefix, 64);
  EXPECT_EQ(v6->addr[0], 0x20);
  EXPECT_EQ(v6->addr[7], 1);
  EXPECT_EQ(parse_cidr("nope", nullptr), std::nullopt);  // why may be null
}

}  // namespace
}  // namespace egw::rules
