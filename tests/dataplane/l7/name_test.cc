// Unit tests for dataplane/l7/name.cc (normalize_name): a table of good names with their
// normal form and of bad names, each parsed from an exact-size heap copy.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"

namespace egw::l7 {
namespace {

// normalize_name over an exact-size heap copy, so ASan flags any over-read.
bool normalize(const std::string& raw, Name* out) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[raw.size()]);
  if (!raw.empty()) std::memcpy(copy.get(), raw.data(), raw.size());
  return normalize_name(copy.get(), raw.size(), out);
}

std::string labels(size_t count, size_t each) {
  std::string s;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) s += '.';
    s += std::string(each, static_cast<char>('a' + i % 26));
  }
  return s;
}

struct GoodName {
  const char* desc;
  std::string raw;
  std::string want;
};

TEST(NormalizeName, Good) {
  const std::string n253 = labels(3, 63) + "." + std::string(61, 'z');
  const std::vector<GoodName> cases = {
      {"plain", "www.example.com", "www.example.com"},
      {"single label", "localhost", "localhost"},
      {"single character", "a", "a"},
      {"upper case folded", "WWW.Example.COM", "www.example.com"},
      {"one trailing dot removed", "example.com.", "example.com"},
      {"upper case and trailing dot", "API.STRIPE.COM.", "api.stripe.com"},
      {"digits, hyphen, underscore", "_dmarc.x-1.9up.example", "_dmarc.x-1.9up.example"},
      {"leading and trailing hyphen kept (not a hostname rule here)", "-a-.b", "-a-.b"},
      {"all-numeric labels", "1.2.3.4", "1.2.3.4"},
      {"xn-- punycode", "xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"label of 63", std::string(63, 'q') + ".com", std::string(63, 'q') + ".com"},
      {"name of 253", n253, n253},
      {"name of 253 plus trailing dot", n253 + ".", n253},
  };
  for (const GoodName& c : cases) {
    SCOPED_TRACE(c.desc);
    Name n;
    ASSERT_TRUE(normalize(c.raw, &n));
    EXPECT_EQ(std::string(n.buf, n.len), c.want);
    EXPECT_EQ(n.buf[n.len], '\0');
  }
}

struct BadName {
  const char* desc;
  std::string raw;
};

TEST(NormalizeName, Bad) {
  const std::string n253 = labels(3, 63) + "." + std::string(61, 'z');
  const std::vector<BadName> cases = {
      {"empty", ""},
      {"root only", "."},
      {"two dots", ".."},
      {"two trailing dots", "example.com.."},
      {"leading dot", ".example.com"},
      {"empty label inside", "a..b"},
      {"label of 64", std::string(64, 'q') + ".com"},
      {"name of 254", n253 + "z"},
      {"name of 254 plus trailing dot", n253 + "z."},
      {"name of 256", labels(4, 63) + "zzz"},
      {"NUL inside", std::string("ok.example\0.evil", 16)},
      {"NUL at the end", std::string("ok.example\0", 11)},
      {"NUL alone", std::string("\0", 1)},
      {"space", "a b.com"},
      {"tab", "a\tb.com"},
      {"CR LF", "ok.com\r\n"},
      {"DEL", "a\x7f.com"},
      {"wildcard star", "*.example.com"},
      {"slash", "ex/ample.com"},
      {"backslash", "ex\\ample.com"},
      {"colon and port", "example.com:443"},
      {"at sign (userinfo)", "ok@evil.com"},
      {"IPv6 literal", "[::1]"},
      {"percent-encoding", "ex%61mple.com"},
      {"UTF-8 byte", "\xc3\xa9.com"},
      {"high byte", "\xff"},
      {"comma", "a,b.com"},
  };
  for (const BadName& c : cases) {
    SCOPED_TRACE(c.desc);
    Name n;
    n.len = 7;
    EXPECT_FALSE(normalize(c.raw, &n));
    EXPECT_EQ(n.len, 0);
  }
}

// Every byte value alone as a one-character name: only [A-Za-z0-9_-] is accepted.
TEST(NormalizeName, EveryByte) {
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    const bool want = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                      b == '-' || b == '_';
    Name n;
    EXPECT_EQ(normalize(raw, &n), want) << "byte " << b;
  }
}

}  // namespace
}  // namespace egw::l7
