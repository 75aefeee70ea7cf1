// libFuzzer target for dataplane/l7/domain_table.cc. First byte picks the mode:
//   0: the rest is a table: open(), then match() on fixed and input-derived names;
//   1: mutations {offset lo, offset hi, xor} of a valid table, checksum fixed up;
//   2: the rest is '\n'-separated patterns: add(), build(), open() must succeed, and
//      match() must agree with a plain reference on the fixed names, every pattern's
//      name, a subdomain of each and the input-derived name.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/l7/domain_table.h"

using egw::l7::DomainTable;
using egw::l7::DomainTableBuilder;
using egw::l7::Name;

namespace {

constexpr size_t kOut = 16;

const char* const kNames[] = {
    "api.stripe.com",
    "m.stripe.network",
    "a.b.stripe.network",
    "stripe.network",
    "evilexample.com",
    "example.com.evil.net",
    "x.example.com",
    "localhost",
    "x.averyveryverylonglabel.example",
    "averyveryverylonglabel.example",
    "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.z"};

void check(bool ok) {
  if (!ok) abort();
}

// match() on `n` must write at most kOut values, strictly ascending, and nothing past.
size_t checked_match(const DomainTable& t, const Name& n, uint32_t* out) {
  uint32_t buf[kOut + 1];
  buf[kOut] = 0xdeadbeef;
  const size_t count = t.match(n, buf, kOut);
  check(count <= kOut && buf[kOut] == 0xdeadbeef);
  for (size_t i = 1; i < count; ++i) check(buf[i - 1] < buf[i]);
  if (out)
    for (size_t i = 0; i < count; ++i) out[i] = buf[i];
  return count;
}

void match_all(const DomainTable& t, const uint8_t* extra, size_t extra_len) {
  Name n;
  for (const char* s : kNames)
    if (egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(s), std::string_view(s).size(),
                                &n))
      checked_match(t, n, nullptr);
  if (egw::l7::normalize_name(extra, extra_len, &n)) checked_match(t, n, nullptr);
  // A Name that normalize_name would never produce: match() must stay in bounds.
  Name raw;
  raw.len = static_cast<uint8_t>(extra_len > egw::l7::kMaxName ? egw::l7::kMaxName : extra_len);
  for (size_t i = 0; i < raw.len; ++i) raw.buf[i] = static_cast<char>(extra[i]);
  checked_match(t, raw, nullptr);
}

// What match() must return, from the patterns' definition: "*", the exact name, and
// every wildcard whose suffix is a proper suffix of the name at a label boundary.
struct Reference {
  std::map<std::string, std::set<uint32_t>> exact, wild;
  std::set<uint32_t> star;

  void add(std::string_view pattern, uint32_t value) {  // one add() accepted
    Name n;
    if (pattern == "*") {
      star.insert(value);
    } else if (pattern.substr(0, 2) == "*.") {
      check(egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(pattern.data() + 2),
                                    pattern.size() - 2, &n));
      wild[std::string(n.buf, n.len)].insert(value);
    } else {
      check(egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(pattern.data()),
                                    pattern.size(), &n));
      exact[std::string(n.buf, n.len)].insert(value);
    }
  }

  void expect(const DomainTable& t, const Name& n) const {
    const std::string name(n.buf, n.len);
    std::set<uint32_t> want = star;
    if (auto it = exact.find(name); it != exact.end())
      want.insert(it->second.begin(), it->second.end());
    for (size_t i = 0; i < name.size(); ++i)
      if (name[i] == '.')
        if (auto it = wild.find(name.substr(i + 1)); it != wild.end())
          want.insert(it->second.begin(), it->second.end());
    uint32_t out[kOut];
    const size_t count = checked_match(t, n, out);
    auto w = want.begin();
    check(count == std::min(want.size(), kOut));
    for (size_t i = 0; i < count; ++i, ++w) check(out[i] == *w);
  }

  void expect(const DomainTable& t, const std::string& raw) const {
    Name n;
    if (egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), &n))
      expect(t, n);
  }
};

const std::string& valid_table() {
  static const std::string table = [] {
    DomainTableBuilder b;
    std::string err;
    const std::pair<const char*, uint32_t> patterns[] = {{"api.stripe.com", 1},
                                                         {"api.stripe.com", 7},
                                                         {"*.stripe.network", 2},
                                                         {"*.example.com", 3},
                                                         {"example.com", 4},
                                                         {"*.com", 5},
                                                         {"*", 9},
                                                         {"localhost", 6},
                                                         {"*.z", 8},
                                                         {"*.averyveryverylonglabel.example", 10},
                                                         {"averyveryverylonglabel.example", 11}};
    for (const auto& [p, v] : patterns) b.add(p, v, &err);
    return b.build();
  }();
  return table;
}

void fix_checksum(std::string* s) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = egw::l7::kDomainHeaderLen; i < s->size(); ++i)
    h = (h ^ static_cast<uint8_t>((*s)[i])) * 0x01000193u;
  for (int i = 0; i < 4; ++i) (*s)[16 + i] = static_cast<char>(h >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  ++data, --size;
  DomainTable t;
  std::string err;
  if (mode == 0) {
    if (t.open(data, size, &err)) match_all(t, data, size < 64 ? size : 64);
  } else if (mode == 1) {
    std::string table = valid_table();
    size_t i = 0;
    for (; i + 3 <= size && i < 3 * 16; i += 3) {
      const size_t off = (data[i] | size_t{data[i + 1]} << 8) % table.size();
      table[off] = static_cast<char>(table[off] ^ data[i + 2]);
    }
    fix_checksum(&table);
    if (t.open(reinterpret_cast<const uint8_t*>(table.data()), table.size(), &err))
      match_all(t, data + i, size - i);
  } else {
    DomainTableBuilder b;
    Reference ref;
    std::vector<std::string> names;  // each accepted pattern's name, and one under it
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    for (uint32_t value = 0; !rest.empty() && value < 256; ++value) {
      const size_t nl = rest.find('\n');
      const std::string_view p = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (!b.add(p, value, &err)) continue;
      ref.add(p, value);
      const std::string_view bare = p.substr(0, 2) == "*." ? p.substr(2) : p;
      names.emplace_back(bare);
      names.push_back("x." + std::string(bare));
    }
    const std::string table = b.build();
    check(t.open(reinterpret_cast<const uint8_t*>(table.data()), table.size(), &err));
    for (const std::string& n : names) ref.expect(t, n);
    for (const char* n : kNames) ref.expect(t, std::string(n));
    Name n;
    if (egw::l7::normalize_name(data, size < 64 ? size : 64, &n)) ref.expect(t, n);
    match_all(t, data, size < 64 ? size : 64);
  }
  return 0;
}
