// Tests for mgmt/client.cc (egwctl's REST client): URL parsing, token files, where the
// settings come from, and the contract's error format made readable. Tables of cases.
#include "mgmt/client.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace egw::mgmt {
namespace {

using test::TempDir;

TEST(Client, ParseServerUrl) {
  struct Case {
    const char* description;
    const char* url;
    bool ok;
    bool tls;
    const char* host;
    int port;
    const char* path;
  };
  const Case cases[] = {
      {"http with port", "http://127.0.0.1:8600", true, false, "127.0.0.1", 8600, ""},
      {"https default port", "https://gw1.example", true, true, "gw1.example", 443, ""},
      {"http default port, trailing slash", "http://gw1/", true, false, "gw1", 80, ""},
      {"path prefix kept", "https://gw1:9000/egw/", true, true, "gw1", 9000, "/egw"},
      {"IPv6 literal", "http://[::1]:8600", true, false, "::1", 8600, ""},
      {"IPv6 with hex letters", "https://[2001:db8::1]", true, true, "2001:db8::1", 443, ""},
      {"no scheme", "127.0.0.1:8600", false, false, "", 0, ""},
      {"other scheme", "ftp://gw1", false, false, "", 0, ""},
      {"port 0", "http://gw1:0", false, false, "", 0, ""},
      {"port too big", "http://gw1:65536", false, false, "", 0, ""},
      {"port not a number", "http://gw1:86a0", false, false, "", 0, ""},
      {"empty host", "http://:8600", false, false, "", 0, ""},
      {"credentials in URL", "http://user@gw1", false, false, "", 0, ""},
      {"unterminated IPv6", "http://[::1:8600", false, false, "", 0, ""},
      {"query", "http://gw1/x?y=1", false, false, "", 0, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ServerUrl u;
    std::string err;
    ASSERT_EQ(parse_server_url(c.url, &u, &err), c.ok) << err;
    if (!c.ok) {
      EXPECT_FALSE(err.empty());
      continue;
    }
    EXPECT_EQ(u.tls, c.tls);
    EXPECT_EQ(u.host, c.host);
    EXPECT_EQ(u.port, c.port);
    EXPECT_EQ(u.path, c.path);
  }
}

TEST(Client, TokenFromFileText) {
  struct Case {
    const char* description;
    const char* text;
    const char* token;
  };
  const Case cases[] = {
      {"bare token with newline", "abc123\n", "abc123"},
      {"surrounding blanks", "  abc123  \r\n", "abc123"},
      {"tokens-file line: first word", "abc123 admin ops\n", "abc123"},
      {"comments and blank lines first", "# generated\n\nabc123\n", "abc123"},
      {"empty", "", ""},
      {"only blanks", " \n\t\n", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    EXPECT_EQ(token_from_file_text(c.text), c.token);
  }
}

TEST(Client, ResolveConfig) {
  TempDir dir, empty_dir;
  ASSERT_FALSE(dir.path().empty());
  dir.write("server", "https://from-file:9443\n");
  dir.write("token", "file-token\n");
  std::string flag_token = dir.write("flag.token", "flag-token admin me\n");
  std::string blank_token = dir.write("blank.token", "\n");
  struct Case {
    const char* description;
    ClientFlags flags;
    ClientEnv env;
    bool ok;
    const char* server;
    const char* server_origin;
    const char* token;
  };
  const Case cases[] = {
      {"nothing: default server, no token",
       {},
       {"", "", empty_dir.path()},
       true,
       kDefaultServer,
       "default",
       ""},
      {"no config dir at all", {}, {"", "", ""}, true, kDefaultServer, "default", ""},
      {"config files", {}, {"", "", dir.path()}, true, "https://from-file:9443", "", "file-token"},
      {"environment beats files",
       {},
       {"http://env:1/", "env-token", dir.path()},
       true,
       "http://env:1",
       "EGW_SERVER",
       "env-token"},
      {"flags beat environment",
       {"http://flag:2", flag_token},
       {"http://env:1", "env-token", dir.path()},
       true,
       "http://flag:2",
       "--server",
       "flag-token"},
      {"missing token file named by flag",
       {"", dir.path() + "/nope"},
       {"", "", ""},
       false,
       "",
       "",
       ""},
      {"token file without a token", {"", blank_token}, {"", "", ""}, false, "", "", ""},
      {"bad URL", {"gw1:8600"}, {"", "", ""}, false, "", "", ""},
      {"--cacert with http", {"http://gw1", "", "/ca.pem"}, {"", "", ""}, false, "", "", ""},
      {"--cert without --key", {"https://gw1", "", "", "/c.pem"}, {"", "", ""}, false, "", "", ""},
      {"token with a space", {}, {"", "a b", ""}, false, "", "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ClientConfig cfg;
    std::string err;
    ASSERT_EQ(resolve_config(c.flags, c.env, &cfg, &err), c.ok) << err;
    if (!c.ok) {
      EXPECT_FALSE(err.empty());
      continue;
    }
    EXPECT_EQ(cfg.server, c.server);
    if (*c.server_origin) {
      EXPECT_EQ(cfg.server_origin, c.server_origin);
    }
    EXPECT_EQ(cfg.token, c.token);
  }
}

TEST(Client, FormatApiError) {
  struct Case {
    const char* description;
    int status;
    const char* body;
    const char* expected;
  };
  const Case cases[] = {
      {"contract error with details", 400,
       R"({"error":{"code":"invalid_policy","message":"2 errors","details":[
           {"path":"/rulesets/0/rules/2/to/domains/1","message":"bad name"},
           {"path":"","message":"top"}]}})",
       "HTTP 400 invalid_policy: 2 errors\n  /rulesets/0/rules/2/to/domains/1: bad name\n"
       "  (document): top"},
      {"no details", 412, R"({"error":{"code":"version_conflict","message":"active is 8"}})",
       "HTTP 412 version_conflict: active is 8"},
      {"not JSON", 502, "<html>bad gateway</html>", "HTTP 502: <html>bad gateway</html>"},
      {"empty body", 500, "", "HTTP 500: (no error body)"},
      {"JSON of another shape", 404, R"({"oops":1})", "HTTP 404: {\"oops\":1}"},
      {"terminal escapes neutralized", 400,
       "{\"error\":{\"code\":\"x\",\"message\":\"a\\u001b[2Jb\"}}", "HTTP 400 x: a?[2Jb"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ApiResponse r;
    r.status = c.status;
    r.body = c.body;
    std::string err;
    r.json_ok = parse_json(r.body, &r.json, &err);
    EXPECT_EQ(format_api_error(r), c.expected);
  }
}

TEST(Client, SmallHelpers) {
  EXPECT_EQ(url_encode("fix dns: één/2"), "fix%20dns%3A%20%C3%A9%C3%A9n%2F2");
  ApiResponse r;
  r.headers["etag"] = "\"7\"";
  EXPECT_EQ(r.etag_version(), "7");
  r.headers["etag"] = "W/\"8\"";
  EXPECT_EQ(r.etag_version(), "8");
  r.headers.clear();
  EXPECT_EQ(r.etag_version(), "");
  Json::Value v;
  std::string err;
  EXPECT_FALSE(parse_json(R"({"a":1,"a":2})", &v, &err));  // duplicate keys refused
  EXPECT_FALSE(parse_json("{\"a\":1} // c", &v, &err));
  EXPECT_TRUE(parse_json(R"([{"version":1}])", &v, &err)) << err;
}

TEST(Client, UnreachableServerIsATransportError) {
  // Port 1 on loopback: nothing listens there in a test environment.
  ClientConfig cfg;
  cfg.server = "http://127.0.0.1:1";
  cfg.connect_timeout_s = 2;
  Client c(cfg);
  ApiResponse r;
  std::string err;
  EXPECT_FALSE(c.call("GET", "/v1/health", "", {}, &r, &err));
  EXPECT_EQ(err.rfind("cannot reach egw-mgmt at http://127.0.0.1:1: ", 0), 0u) << err;
}

}  // namespace
}  // namespace egw::mgmt
