// Tests for mgmt/auth.cc (tokens file, generated admin token, bearer check) and the
// address helpers of mgmt/http.cc. Tables of cases.
#include "mgmt/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "mgmt/http.h"
#include "tests/support/temp_dir.h"

namespace egw::mgmt {
namespace {

using test::TempDir;

TEST(TokensFile, Table) {
  struct Case {
    const char* description;
    const char* text;
    bool ok;
    const char* error_part;  // expected in the error message
  } cases[] = {
      {"one admin", "tok-admin-0123456789 admin ops\n", true, ""},
      {"comments, blank lines, tabs, CRLF",
       "# tokens\n\n  tok-a-0123456789abc\tadmin\tops\r\ntok-r-0123456789abc reader ro\n", true, ""},
      {"two fields", "a admin\n", false, ":1: expected"},
      {"four fields", "# x\nt admin n extra\n", false, ":2: expected"},
      {"unknown role", "tok-0123456789abcdef root ops\n", false, "role must be admin or reader"},
      {"duplicate token", "tok-0123456789abcdef admin a\ntok-0123456789abcdef reader b\n", false,
       ":2: this token is already listed"},
      {"control character", "tok-\x01-0123456789 admin a\n", false, "printable ASCII"},
      {"no token at all", "# only a comment\n\n", false, "lists no token"},
  };
  for (const Case& c : cases) {
    TempDir d;
    TokenTable t;
    std::string err;
    bool ok = t.load_file(d.write("tokens", c.text), &err);
    EXPECT_EQ(ok, c.ok) << c.description << ": " << err;
    if (!c.ok) {
      EXPECT_NE(err.find(c.error_part), std::string::npos) << c.description << ": " << err;
    }
  }
  TokenTable none;
  std::string err;
  EXPECT_FALSE(none.load_file("/nonexistent/egw-tokens", &err));
  EXPECT_NE(err.find("--tokens"), std::string::npos) << err;
}

TEST(Authenticate, Table) {
  TempDir d;
  TokenTable t;
  std::string err;
  ASSERT_TRUE(t.load_file(
      d.write("tokens", "tok-admin-0123456789 admin ops\ntok-reader-0123456789 reader ro\n"), &err))
      << err;
  struct Case {
    const char* description;
    const char* header;
    bool ok;
    const char* name;
    Role role;
  } cases[] = {
      {"admin", "Bearer tok-admin-0123456789", true, "ops", Role::admin},
      {"reader", "Bearer tok-reader-0123456789", true, "ro", Role::reader},
      {"scheme is case-insensitive", "bearer tok-admin-0123456789", true, "ops", Role::admin},
      {"extra spaces", "Bearer   tok-admin-0123456789  ", true, "ops", Role::admin},
      {"unknown token", "Bearer tok-admin-0123456780", false, "", Role::reader},
      {"prefix of a token", "Bearer tok-admin", false, "", Role::reader},
      {"token plus suffix", "Bearer tok-admin-0123456789x", false, "", Role::reader},
      {"empty token", "Bearer ", false, "", Role::reader},
      {"basic scheme", "Basic dG9rOng=", false, "", Role::reader},
      {"no scheme", "tok-admin-0123456789", false, "", Role::reader},
      {"empty header", "", false, "", Role::reader},
  };
  for (const Case& c : cases) {
    auto id = t.authenticate(c.header);
    EXPECT_EQ(id.has_value(), c.ok) << c.description;
    if (id && c.ok) {
      EXPECT_EQ(id->name, c.name) << c.description;
      EXPECT_EQ(id->role, c.role) << c.description;
    }
  }
}

TEST(AdminToken, GeneratedOnceMode0600AndReused) {
  TempDir d;
  TokenTable first;
  std::string err;
  ASSERT_TRUE(first.load_or_create_admin(d.path(), &err)) << err;
  const std::string path = d.path() + "/admin.token";
  struct stat st{};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string token;
  std::ifstream(path) >> token;
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto id = first.authenticate("Bearer " + token);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "admin");
  EXPECT_EQ(id->role, Role::admin);

  TokenTable second;  // a restart reuses the file
  ASSERT_TRUE(second.load_or_create_admin(d.path(), &err)) << err;
  EXPECT_TRUE(second.authenticate("Bearer " + token).has_value());
  std::string again;
  std::ifstream(path) >> again;
  EXPECT_EQ(again, token);
}

TEST(HostPort, Table) {
  struct Case {
    const char* description;
    const char* text;
    bool ok;
    const char* host;
    int port;
    bool loopback;
  } cases[] = {
      {"IPv4", "127.0.0.1:8600", true, "127.0.0.1", 8600, true},
      {"IPv4 loopback /8", "127.1.2.3:1", true, "127.1.2.3", 1, true},
      {"any IPv4", "0.0.0.0:8600", true, "0.0.0.0", 8600, false},
      {"IPv6 loopback", "[::1]:8600", true, "::1", 8600, true},
      {"IPv6 any", "[::]:8600", true, "::", 8600, false},
      {"localhost", "localhost:80", true, "localhost", 80, true},
      {"a name", "gw.example:443", true, "gw.example", 443, false},
      {"IPv6 without brackets", "::1:8600", false, "", 0, false},
      {"port too large", "127.0.0.1:65536", false, "", 0, false},
      {"no port", "127.0.0.1", false, "", 0, false},
      {"empty port", "127.0.0.1:", false, "", 0, false},
      {"port not a number", "127.0.0.1:http", false, "", 0, false},
      {"empty host", ":8600", false, "", 0, false},
      {"unclosed bracket", "[::1:8600", false, "", 0, false},
  };
  for (const Case& c : cases) {
    std::string host;
    int port = -1;
    bool ok = http::split_host_port(c.text, &host, &port);
    EXPECT_EQ(ok, c.ok) << c.description;
    if (!ok || !c.ok) continue;
    EXPECT_EQ(host, c.host) << c.description;
    EXPECT_EQ(port, c.port) << c.description;
    EXPECT_EQ(http::is_loopback_host(host), c.loopback) << c.description;
  }
}

}  // namespace
}  // namespace egw::mgmt
