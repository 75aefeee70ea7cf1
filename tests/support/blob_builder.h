// Test-only: builds compiled policy blobs (dataplane/policy_abi.h) straight from a small
// description, without the policy compiler, and edits fields of a built blob for negative tests.
// Header-only; used by unit tests and the fuzz corpus writer (any thread).
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/policy_abi.h"

namespace egw::test {

struct BlobService {
  std::string name;
  std::vector<std::string> cidrs;  // "198.18.1.0/24", "2001:db8::/32"
};

struct BlobRule {
  std::string id;
  uint8_t action = abi::kActionAllow;
  uint8_t proto = abi::kProtoAny;
  bool from_any = true;
  std::vector<std::string> from;                     // service names (from_any = false)
  std::vector<std::pair<uint16_t, uint16_t>> ports;  // inclusive ranges; empty = any
  std::vector<std::string> cidrs;                    // destinations; empty = any
  uint32_t ruleset = 0;
};

inline abi::Settings default_settings() {
  abi::Settings s{};
  s.default_action = abi::kActionDeny;
  s.established_mode = abi::kEstablishedReevaluate;
  s.l7_max_bytes = 16384;
  s.l7_timeout_ms = 5000;
  s.tcp_syn_s = 30;
  s.tcp_established_s = 3600;
  s.tcp_closing_s = 30;
  s.udp_s = 60;
  s.icmp_s = 30;
  return s;
}

struct BlobSpec {
  std::vector<BlobService> services;
  std::vector<BlobRule> rules;
  abi::Settings settings = default_settings();
  uint64_t version = 1;
};

// "a.b.c.d/p" or "v6/p" -> CidrRec with the host bits cleared. Throws on a bad string
// (tests only: a typo in a test table should fail loudly).
inline abi::CidrRec parse_cidr(const std::string& text, uint32_t ref = 0) {
  abi::CidrRec c{};
  c.ref = ref;
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  int max = 32;
  if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
    c.family = 4;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
    c.family = 6;
    max = 128;
  } else {
    throw std::invalid_argument("blob_builder: bad CIDR " + text);
  }
  int p = slash == std::string::npos ? max : std::stoi(text.substr(slash + 1));
  if (p < 0 || p > max) throw std::invalid_argument("blob_builder: bad prefix in " + text);
  c.prefix = static_cast<uint8_t>(p);
  for (int i = 0; i < 16; ++i) {
    int bit0 = i * 8;
    if (bit0 >= p)
      c.addr[i] = 0;
    else if (p < bit0 + 8)
      c.addr[i] &= static_cast<uint8_t>(0xff << (bit0 + 8 - p));
  }
  return c;
}

// A built blob plus typed editors. Every edit_* reseals (recomputes the checksum)
// unless reseal = false; edit the bytes directly for anything else.
class Blob {
 public:
  std::vector<uint8_t> bytes;

  const uint8_t* data() const { return bytes.data(); }
  size_t size() const { return bytes.size(); }

  abi::PolicyHeader header() const { return get<abi::PolicyHeader>(0); }
  template <typename F>
  void edit_header(F f, bool reseal_after = true) {
    auto h = header();
    f(h);
    put(0, h);
    if (reseal_after) reseal();
  }

  // Index in the section table of the (first) section of `type`; throws when absent.
  uint32_t section_index(uint32_t type) const {
    auto h = header();
    for (uint32_t i = 0; i < h.section_count; ++i)
      if (section(i).type == type) return i;
    throw std::invalid_argument("blob_builder: no section of type " + std::to_string(type));
  }
  abi::SectionEntry section(uint32_t index) const {
    return get<abi::SectionEntry>(sizeof(abi::PolicyHeader) + index * sizeof(abi::SectionEntry));
  }
  // Points the section of `type` at `body`, appended to the blob 8-byte aligned, and
  // reseals (the old body stays in the blob, unreferenced).
  void put_section(uint32_t type, const std::string& body) {
    while (bytes.size() % 8) bytes.push_back(0);
    const uint64_t off = bytes.size();
    bytes.insert(bytes.end(), body.begin(), body.end());
    while (bytes.size() % 8) bytes.push_back(0);
    edit_section(type, [&](abi::SectionEntry& s) {
      s.offset = off;
      s.size = body.size();
    });
  }

  template <typename F>
  void edit_section(uint32_t type, F f, bool reseal_after = true) {
    uint32_t i = section_index(type);
    auto s = section(i);
    f(s);
    put(sizeof(abi::PolicyHeader) + i * sizeof(abi::SectionEntry), s);
    if (reseal_after) reseal();
  }

  // Element i of the section of `type`, as T.
  template <typename T>
  T elem(uint32_t type, size_t i) const {
    return get<T>(section(section_index(type)).offset + i * sizeof(T));
  }
  template <typename T, typename F>
  void edit_elem(uint32_t type, size_t i, F f, bool reseal_after = true) {
    size_t off = section(section_index(type)).offset + i * sizeof(T);
    T v = get<T>(off);
    f(v);
    put(off, v);
    if (reseal_after) reseal();
  }

  // Recomputes total_size from the byte count and the checksum.
  void reseal() {
    auto h = header();
    h.total_size = bytes.size();
    h.checksum = abi::fnv1a64(bytes.data() + h.header_size, bytes.size() - h.header_size);
    put(0, h);
  }
  template <typename T>
  T get(size_t off) const {
    if (off + sizeof(T) > bytes.size()) throw std::out_of_range("blob_builder: read past the blob");
    T v;
    std::memcpy(&v, bytes.data() + off, sizeof(T));
    return v;
  }
  template <typename T>
  void put(size_t off, const T& v) {
    if (off + sizeof(T) > bytes.size())
      throw std::out_of_range("blob_builder: write past the blob");
    std::memcpy(bytes.data() + off, &v, sizeof(T));
  }
};

// Writes spec as a blob: header, 8 section entries (types 1..8 in order), bodies 8-aligned.
inline Blob build_blob(const BlobSpec& spec) {
  std::vector<uint8_t> strings;
  auto add_str = [&](const std::string& s) {
    abi::StrRef r{static_cast<uint32_t>(strings.size()), static_cast<uint32_t>(s.size())};
    strings.insert(strings.end(), s.begin(), s.end());
    return r;
  };
  std::map<std::string, uint32_t> service_index;
  std::vector<abi::ServiceRec> services;
  std::vector<abi::CidrRec> service_cidrs;
  for (uint32_t i = 0; i < spec.services.size(); ++i) {
    const auto& s = spec.services[i];
    service_index[s.name] = i;
    abi::ServiceRec r{};
    r.name = add_str(s.name);
    r.cidr_first = static_cast<uint32_t>(service_cidrs.size());
    r.cidr_count = static_cast<uint32_t>(s.cidrs.size());
    for (const auto& c : s.cidrs) service_cidrs.push_back(parse_cidr(c, i));
    services.push_back(r);
  }
  std::vector<abi::RuleRec> rules;
  std::vector<uint32_t> rule_from;
  std::vector<abi::PortRange> rule_ports;
  std::vector<abi::CidrRec> rule_cidrs;
  for (const auto& r : spec.rules) {
    abi::RuleRec rec{};
    rec.id = add_str(r.id);
    rec.action = r.action;
    rec.proto = r.proto;
    rec.flags = r.from_any ? abi::kRuleFromAny : 0;
    rec.ruleset = r.ruleset;
    rec.from_first = static_cast<uint32_t>(rule_from.size());
    if (!r.from_any) {
      for (const auto& name : r.from) {
        auto it = service_index.find(name);
        if (it == service_index.end())
          throw std::invalid_argument("blob_builder: unknown service " + name);
        rule_from.push_back(it->second);
      }
      rec.from_count = static_cast<uint32_t>(r.from.size());
    }
    rec.port_first = static_cast<uint32_t>(rule_ports.size());
    rec.port_count = static_cast<uint32_t>(r.ports.size());
    for (const auto& [lo, hi] : r.ports) rule_ports.push_back({lo, hi});
    rec.cidr_first = static_cast<uint32_t>(rule_cidrs.size());
    rec.cidr_count = static_cast<uint32_t>(r.cidrs.size());
    for (const auto& c : r.cidrs) rule_cidrs.push_back(parse_cidr(c));
    rules.push_back(rec);
  }

  struct Body {
    uint32_t type, elem_size;
    std::vector<uint8_t> data;
  };
  auto raw = [](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(v[0]));
  };
  std::vector<Body> bodies = {
      {abi::kSecSettings, sizeof(abi::Settings), raw(std::vector<abi::Settings>{spec.settings})},
      {abi::kSecStrings, 1, strings},
      {abi::kSecServices, sizeof(abi::ServiceRec), raw(services)},
      {abi::kSecServiceCidrs, sizeof(abi::CidrRec), raw(service_cidrs)},
      {abi::kSecRules, sizeof(abi::RuleRec), raw(rules)},
      {abi::kSecRuleFrom, sizeof(uint32_t), raw(rule_from)},
      {abi::kSecRulePorts, sizeof(abi::PortRange), raw(rule_ports)},
      {abi::kSecRuleCidrs, sizeof(abi::CidrRec), raw(rule_cidrs)},
  };

  Blob b;
  size_t off = sizeof(abi::PolicyHeader) + bodies.size() * sizeof(abi::SectionEntry);
  off = (off + 7) & ~size_t{7};
  b.bytes.assign(off, 0);
  for (uint32_t i = 0; i < bodies.size(); ++i) {
    abi::SectionEntry e{bodies[i].type, bodies[i].elem_size, off, bodies[i].data.size()};
    b.put(sizeof(abi::PolicyHeader) + i * sizeof(abi::SectionEntry), e);
    b.bytes.insert(b.bytes.end(), bodies[i].data.begin(), bodies[i].data.end());
    off = (b.bytes.size() + 7) & ~size_t{7};
    b.bytes.resize(off, 0);
  }
  abi::PolicyHeader h{};
  h.magic = abi::kPolicyMagic;
  h.abi_version = abi::kPolicyAbiVersion;
  h.header_size = sizeof(abi::PolicyHeader);
  h.policy_version = spec.version;
  h.section_count = static_cast<uint32_t>(bodies.size());
  b.put(0, h);
  b.reseal();
  return b;
}

}  // namespace egw::test
