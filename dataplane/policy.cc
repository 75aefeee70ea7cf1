// Runtime policy: validates a compiled blob, copies what it needs and builds
// rte_lpm/rte_lpm6 (source services), rte_acl (ordered rules), the literal domain table
// and the Hyperscan name database from it. load() and the destructor run on the control
// thread; classify*() and decide_name() on worker lcores.
#include "dataplane/policy.h"
#include "dataplane/bytes.h"
#include "dataplane/stats_abi.h"

#include <hs.h>
#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_memory.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <vector>

#include "dataplane/l7/domain_table.h"
#include "dataplane/l7/l7.h"

namespace egw {
namespace {

constexpr uint32_t kMaxServices = 1u << 20;   // service id + 1 fits rte_lpm6's 21-bit next hop
constexpr uint64_t kMaxAclRules = 1u << 17;   // per address family, after expansion
constexpr uint64_t kMaxLpm6Tbl8s = 1u << 20;  // 1 KiB each
constexpr unsigned kBulk = 64;
constexpr unsigned kMaxScratches = 1024;          // scratch_count bound (one per worker)
constexpr uint64_t kMaxRegexDbSize = 1ull << 30;  // deserialized Hyperscan database bound
constexpr size_t kMaxNameCandidates = 256;        // literal matches considered per name
// ACL categories (a multiple of RTE_ACL_RESULTS_MULTIPLIER when more than one): result 0 is
// the first rule whose L3/L4 conditions match, result 1 the first one without a name
// condition. Policies without name conditions build one category.
constexpr uint32_t kCatAll = 0, kCatPlain = 1, kCatReportAll = 2, kCatReportPlain = 3;
constexpr uint32_t kNameCategories = RTE_ACL_RESULTS_MULTIPLIER;
static_assert(kCatReportPlain < kNameCategories);

std::atomic<uint32_t> g_instance{0};  // makes rte_lpm/rte_acl names unique per process

// ---- ACL layouts. Rule values in host byte order; input bytes in network byte order.
// Input: proto (1 byte, alone in the first word), source service id, destination address
// (one or four 32-bit words), destination port + 16-bit pad sharing the last word.
enum : uint8_t { kFProto, kFSvc, kFDst0 };

struct Acl4Input {
  uint8_t proto;
  uint8_t pad0[3];
  uint32_t svc;  // big endian
  uint8_t dst[4];
  uint16_t port;  // big endian
  uint16_t pad1;
};
static_assert(sizeof(Acl4Input) == 16);

struct Acl6Input {
  uint8_t proto;
  uint8_t pad0[3];
  uint32_t svc;  // big endian
  uint8_t dst[16];
  uint16_t port;  // big endian
  uint16_t pad1;
};
static_assert(sizeof(Acl6Input) == 28);

constexpr unsigned kFields4 = 5;  // proto, svc, dst, port, pad
constexpr unsigned kFields6 = 8;  // proto, svc, dst x4, port, pad
RTE_ACL_RULE_DEF(Acl4Rule, kFields4);
RTE_ACL_RULE_DEF(Acl6Rule, kFields6);

// Field definitions for a family: dst_words = 1 (IPv4) or 4 (IPv6).
unsigned acl_defs(unsigned dst_words, rte_acl_field_def* defs) {
  unsigned f = 0;
  defs[f++] = {RTE_ACL_FIELD_TYPE_BITMASK, 1, kFProto, 0, 0};
  defs[f++] = {RTE_ACL_FIELD_TYPE_RANGE, 4, kFSvc, 1, 4};
  for (unsigned w = 0; w < dst_words; ++w, ++f)
    defs[f] = {RTE_ACL_FIELD_TYPE_MASK, 4, static_cast<uint8_t>(f), static_cast<uint8_t>(2 + w),
               8 + 4 * w};
  uint32_t port_off = 8 + 4 * dst_words;
  uint8_t port_in = static_cast<uint8_t>(2 + dst_words);
  defs[f] = {RTE_ACL_FIELD_TYPE_RANGE, 2, static_cast<uint8_t>(f), port_in, port_off};
  ++f;
  defs[f] = {RTE_ACL_FIELD_TYPE_BITMASK, 2, static_cast<uint8_t>(f), port_in, port_off + 2};
  return ++f;
}

const char* section_name(uint32_t type) {
  switch (type) {
    case abi::kSecSettings:
      return "settings";
    case abi::kSecStrings:
      return "strings";
    case abi::kSecServices:
      return "services";
    case abi::kSecServiceCidrs:
      return "service_cidrs";
    case abi::kSecRules:
      return "rules";
    case abi::kSecRuleFrom:
      return "rule_from";
    case abi::kSecRulePorts:
      return "rule_ports";
    case abi::kSecRuleCidrs:
      return "rule_cidrs";
    case abi::kSecDomainTable:
      return "domain_table";
    case abi::kSecNameRegexDb:
      return "name_regex_db";
    case abi::kSecInspect:
      return "inspect";
    case abi::kSecInspectDb:
      return "inspect_db";
    case abi::kSecRuleLimits:
      return "rule_limits";
    default:
      return "unknown";
  }
}

uint32_t elem_size_of(uint32_t type) {
  switch (type) {
    case abi::kSecSettings:
      return sizeof(abi::Settings);
    case abi::kSecStrings:
      return 1;
    case abi::kSecServices:
      return sizeof(abi::ServiceRec);
    case abi::kSecServiceCidrs:
      return sizeof(abi::CidrRec);
    case abi::kSecRules:
      return sizeof(abi::RuleRec);
    case abi::kSecRuleFrom:
      return sizeof(uint32_t);
    case abi::kSecRulePorts:
      return sizeof(abi::PortRange);
    case abi::kSecRuleCidrs:
      return sizeof(abi::CidrRec);
    case abi::kSecInspect:
      return sizeof(abi::InspectRec);
    case abi::kSecRuleLimits:
      return sizeof(abi::LimitRec);
    case abi::kSecDomainTable:
    case abi::kSecNameRegexDb:
    case abi::kSecInspectDb:
      return 1;
    default:
      return 0;
  }
}

uint64_t sat_mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

template <typename T>
std::vector<T> copy_array(const uint8_t* blob, const abi::SectionEntry& s) {
  std::vector<T> v(s.size / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), blob + s.offset, v.size() * sizeof(T));
  return v;
}

struct Arrays {
  abi::PolicyHeader hdr;
  abi::Settings settings;
  std::vector<uint8_t> strings;
  std::vector<abi::ServiceRec> services;
  std::vector<abi::CidrRec> service_cidrs;
  std::vector<abi::RuleRec> rules;
  std::vector<uint32_t> rule_from;
  std::vector<abi::PortRange> rule_ports;
  std::vector<abi::CidrRec> rule_cidrs;
  // Optional name sections: views into the caller's blob (valid during load only).
  const uint8_t* domain_table = nullptr;
  size_t domain_table_len = 0;
  const uint8_t* regex_db = nullptr;
  size_t regex_db_len = 0;
  std::vector<abi::InspectRec> inspect;
  const uint8_t* inspect_db = nullptr;
  size_t inspect_db_len = 0;
  std::vector<abi::LimitRec> limits;
};

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = "policy blob: " + msg;
  return false;
}

bool range_ok(uint32_t first, uint32_t count, size_t size) {
  return uint64_t{first} + count <= size;
}

std::string range_text(uint32_t first, uint32_t count) {
  return "[" + std::to_string(first) + ", +" + std::to_string(count) + ")";
}

bool check_cidr(const abi::CidrRec& c, const std::string& where, std::string* err) {
  unsigned bytes;
  if (c.family == 4) {
    bytes = 4;
    if (c.prefix > 32)
      return fail(err, where + ": IPv4 prefix /" + std::to_string(c.prefix) + " over 32");
  } else if (c.family == 6) {
    bytes = 16;
    if (c.prefix > 128)
      return fail(err, where + ": IPv6 prefix /" + std::to_string(c.prefix) + " over 128");
  } else {
    return fail(err, where + ": family " + std::to_string(c.family) + " is neither 4 nor 6");
  }
  for (unsigned i = 0; i < 16; ++i) {
    unsigned bit0 = i * 8;
    uint8_t host = 0xff;
    if (i < bytes && bit0 < c.prefix)
      host = c.prefix >= bit0 + 8 ? 0 : uint8_t(0xff >> (c.prefix - bit0));
    if (c.addr[i] & host) return fail(err, where + ": address bits set past the prefix");
  }
  return true;
}

bool check_str(const abi::StrRef& r, size_t strings, const std::string& where, std::string* err) {
  if (uint64_t{r.offset} + r.length > strings)
    return fail(err, where + " " + range_text(r.offset, r.length) +
                         " is outside the strings section (" + std::to_string(strings) + " bytes)");
  return true;
}

// Header, section table and section bounds; copies the sections into `a`.
bool parse_layout(const uint8_t* blob, size_t len, Arrays* a, std::string* err) {
  auto& h = a->hdr;
  if (blob == nullptr || len < sizeof(h))
    return fail(err, std::to_string(len) + " bytes, shorter than the " + std::to_string(sizeof(h)) +
                         "-byte header");
  std::memcpy(&h, blob, sizeof(h));
  if (h.magic != abi::kPolicyMagic) return fail(err, "bad magic (not a compiled egw policy)");
  if (h.abi_version != abi::kPolicyAbiVersion)
    return fail(err, "ABI version " + std::to_string(h.abi_version) + ", this dataplane reads " +
                         std::to_string(abi::kPolicyAbiVersion));
  if (h.header_size != sizeof(h))
    return fail(err, "header_size " + std::to_string(h.header_size) + ", expected " +
                         std::to_string(sizeof(h)));
  if (h.total_size != len)
    return fail(err, "header says total_size " + std::to_string(h.total_size) +
                         " but the blob is " + std::to_string(len) +
                         " bytes (truncated or padded)");
  if (h.total_size > abi::kPolicyMaxSize) return fail(err, "larger than the 1 GiB limit");
  if (h.flags != 0) return fail(err, "reserved header flags are not 0");
  uint64_t sum = abi::fnv1a64(blob + h.header_size, len - h.header_size);
  if (sum != h.checksum) return fail(err, "checksum mismatch (corrupted)");
  uint64_t table_end =
      uint64_t{h.header_size} + uint64_t{h.section_count} * sizeof(abi::SectionEntry);
  if (table_end > len)
    return fail(err, "section table (" + std::to_string(h.section_count) +
                         " entries) extends past the end of the blob");

  const abi::SectionEntry* found[abi::kSecRuleLimits + 1] = {};
  std::vector<abi::SectionEntry> table(h.section_count);
  if (!table.empty())
    std::memcpy(table.data(), blob + h.header_size, table.size() * sizeof(table[0]));
  for (uint32_t i = 0; i < h.section_count; ++i) {
    const auto& s = table[i];
    std::string what = "section " + std::to_string(i) + " (" + section_name(s.type) + ")";
    if (s.offset % 8 != 0)
      return fail(err, what + " offset " + std::to_string(s.offset) + " is not 8-byte aligned");
    if (s.offset < table_end) return fail(err, what + " overlaps the header or the section table");
    if (s.offset > len || s.size > len - s.offset)
      return fail(err, what + " extends past the end of the blob");
    uint32_t want = elem_size_of(s.type);
    if (want == 0) continue;  // unknown type: bounds checked, otherwise ignored
    if (s.elem_size != want)
      return fail(err, what + " elem_size " + std::to_string(s.elem_size) + ", expected " +
                           std::to_string(want));
    if (s.size % want != 0)
      return fail(err, what + " size " + std::to_string(s.size) + " is not a multiple of " +
                           std::to_string(want));
    if (found[s.type]) return fail(err, what + " appears more than once");
    found[s.type] = &s;
  }
  for (uint32_t t = abi::kSecSettings; t <= abi::kSecRuleCidrs; ++t)
    if (!found[t])
      return fail(err, std::string("required section ") + section_name(t) + " is missing");
  if (found[abi::kSecSettings]->size != sizeof(abi::Settings))
    return fail(err, "settings section must hold exactly one element");

  std::memcpy(&a->settings, blob + found[abi::kSecSettings]->offset, sizeof(a->settings));
  a->strings = copy_array<uint8_t>(blob, *found[abi::kSecStrings]);
  a->services = copy_array<abi::ServiceRec>(blob, *found[abi::kSecServices]);
  a->service_cidrs = copy_array<abi::CidrRec>(blob, *found[abi::kSecServiceCidrs]);
  a->rules = copy_array<abi::RuleRec>(blob, *found[abi::kSecRules]);
  a->rule_from = copy_array<uint32_t>(blob, *found[abi::kSecRuleFrom]);
  a->rule_ports = copy_array<abi::PortRange>(blob, *found[abi::kSecRulePorts]);
  a->rule_cidrs = copy_array<abi::CidrRec>(blob, *found[abi::kSecRuleCidrs]);
  if (const auto* s = found[abi::kSecRuleLimits]) a->limits = copy_array<abi::LimitRec>(blob, *s);
  if (const auto* s = found[abi::kSecDomainTable]) {
    a->domain_table = blob + s->offset;
    a->domain_table_len = s->size;
  }
  if (const auto* s = found[abi::kSecNameRegexDb]) {
    a->regex_db = blob + s->offset;
    a->regex_db_len = s->size;
  }
  if (const auto* s = found[abi::kSecInspect]) a->inspect = copy_array<abi::InspectRec>(blob, *s);
  if (const auto* s = found[abi::kSecInspectDb]) {
    a->inspect_db = blob + s->offset;
    a->inspect_db_len = s->size;
  }
  return true;
}

// Every value and cross-reference of the copied sections.
bool check_contents(const Arrays& a, std::string* err) {
  const auto& st = a.settings;
  if (st.default_action > abi::kActionReject)
    return fail(err, "settings: unknown default_action " + std::to_string(st.default_action));
  if (st.established_mode > abi::kEstablishedKeep)
    return fail(err, "settings: unknown established_mode " + std::to_string(st.established_mode));
  const std::pair<const char*, uint32_t> timeouts[] = {{"tcp_syn_s", st.tcp_syn_s},
                                                       {"tcp_established_s", st.tcp_established_s},
                                                       {"tcp_closing_s", st.tcp_closing_s},
                                                       {"udp_s", st.udp_s},
                                                       {"icmp_s", st.icmp_s}};
  for (const auto& [name, v] : timeouts)
    if (v == 0) return fail(err, std::string("settings: ") + name + " is 0");

  size_t ns = a.services.size();
  if (ns > kMaxServices) return fail(err, std::to_string(ns) + " services, more than the limit");
  for (size_t i = 0; i < ns; ++i) {
    const auto& s = a.services[i];
    std::string where = "service " + std::to_string(i);
    if (!check_str(s.name, a.strings.size(), where + " name", err)) return false;
    if (!range_ok(s.cidr_first, s.cidr_count, a.service_cidrs.size()))
      return fail(err, where + " cidrs " + range_text(s.cidr_first, s.cidr_count) +
                           " outside the service_cidrs section (" +
                           std::to_string(a.service_cidrs.size()) + ")");
    for (uint32_t k = 0; k < s.cidr_count; ++k)
      if (a.service_cidrs[s.cidr_first + k].ref != i)
        return fail(err, where + ": service cidr " + std::to_string(s.cidr_first + k) +
                             " refers to service " +
                             std::to_string(a.service_cidrs[s.cidr_first + k].ref));
  }
  for (size_t i = 0; i < a.service_cidrs.size(); ++i)
    if (!check_cidr(a.service_cidrs[i], "service cidr " + std::to_string(i), err)) return false;

  if (a.rules.size() > abi::kMaxRules)
    return fail(err, std::to_string(a.rules.size()) + " rules, more than " +
                         std::to_string(abi::kMaxRules));
  for (size_t i = 0; i < a.rules.size(); ++i) {
    const auto& r = a.rules[i];
    std::string where = "rule " + std::to_string(i);
    if (!check_str(r.id, a.strings.size(), where + " id", err)) return false;
    if (r.action > abi::kActionReject)
      return fail(err, where + ": unknown action " + std::to_string(r.action));
    if (r.proto != abi::kProtoAny && r.proto != abi::kProtoIcmp && r.proto != abi::kProtoTcp &&
        r.proto != abi::kProtoUdp)
      return fail(err, where + ": unknown proto " + std::to_string(r.proto));
    if (r.flags & ~uint16_t{abi::kRuleFromAny | abi::kRuleNeedsName | abi::kRuleReport})
      return fail(err, where + ": unknown flags");
    if (!(r.flags & abi::kRuleFromAny) && !range_ok(r.from_first, r.from_count, a.rule_from.size()))
      return fail(err, where + " from " + range_text(r.from_first, r.from_count) +
                           " outside the rule_from section (" + std::to_string(a.rule_from.size()) +
                           ")");
    if (!range_ok(r.port_first, r.port_count, a.rule_ports.size()))
      return fail(err, where + " ports " + range_text(r.port_first, r.port_count) +
                           " outside the rule_ports section (" +
                           std::to_string(a.rule_ports.size()) + ")");
    if (!range_ok(r.cidr_first, r.cidr_count, a.rule_cidrs.size()))
      return fail(err, where + " cidrs " + range_text(r.cidr_first, r.cidr_count) +
                           " outside the rule_cidrs section (" +
                           std::to_string(a.rule_cidrs.size()) + ")");
  }
  for (size_t i = 0; i < a.rule_from.size(); ++i)
    if (a.rule_from[i] >= ns)
      return fail(err, "rule_from " + std::to_string(i) + " names service " +
                           std::to_string(a.rule_from[i]) + " of " + std::to_string(ns));
  for (size_t i = 0; i < a.rule_ports.size(); ++i)
    if (a.rule_ports[i].lo > a.rule_ports[i].hi)
      return fail(err, "rule port range " + std::to_string(i) + " has lo " +
                           std::to_string(a.rule_ports[i].lo) + " > hi " +
                           std::to_string(a.rule_ports[i].hi));
  for (size_t i = 0; i < a.rule_cidrs.size(); ++i)
    if (!check_cidr(a.rule_cidrs[i], "rule cidr " + std::to_string(i), err)) return false;
  for (size_t i = 0; i < a.limits.size(); ++i) {
    const abi::LimitRec& l = a.limits[i];
    const std::string where = "rule_limits " + std::to_string(i);
    if (l.rule >= a.rules.size() || (i > 0 && l.rule <= a.limits[i - 1].rule))
      return fail(err, where + ": rule " + std::to_string(l.rule) +
                           " is not a rule index after the previous entry's");
    const abi::RuleRec& r = a.rules[l.rule];
    if (r.action != abi::kActionAllow || (r.flags & abi::kRuleReport))
      return fail(err, where + ": limits only an allow rule of an enforcing ruleset");
    const uint16_t known = abi::kLimitNewFlows | abi::kLimitBytes | abi::kLimitMaxFlows;
    if (l.flags == 0 || (l.flags & ~known)) return fail(err, where + ": bad flags");
    if (l.per > abi::kPerSource || l.max_flows_per > abi::kPerSource)
      return fail(err, where + ": unknown key kind");
    if (l.over_action != abi::kActionDeny && l.over_action != abi::kActionReject)
      return fail(err, where + ": the action over the limit must be deny or reject");
    if (((l.flags & abi::kLimitNewFlows) && (l.new_flows_per_s == 0 || l.burst == 0)) ||
        ((l.flags & abi::kLimitBytes) && (l.bytes_per_s == 0 || l.bytes_burst == 0)) ||
        ((l.flags & abi::kLimitMaxFlows) && l.max_flows == 0))
      return fail(err, where + ": a rate, burst or quota of 0");
    if (l.reserved[0] | l.reserved[1] | l.reserved[2])
      return fail(err, where + ": reserved bytes are not 0");
  }
  bool names = false;
  for (const auto& r : a.rules) names = names || (r.flags & abi::kRuleNeedsName);
  const bool sections = a.domain_table || a.regex_db;
  if (names && !sections)
    return fail(err,
                "rules have name conditions but the domain_table and name_regex_db "
                "sections are both missing");
  if (!names && sections)
    return fail(err, "a domain_table or name_regex_db section, but no rule has a name condition");

  if (st.inspect_max_bytes > (1u << 31))
    return fail(
        err, "settings: inspect_max_bytes " + std::to_string(st.inspect_max_bytes) + " over 2^31");
  if (a.inspect.size() > abi::kMaxInspectRules)
    return fail(err, std::to_string(a.inspect.size()) + " inspect rules, more than " +
                         std::to_string(abi::kMaxInspectRules));
  if (a.rules.size() + a.inspect.size() > abi::kMaxRules)
    return fail(err, std::to_string(a.rules.size()) + " rules and " +
                         std::to_string(a.inspect.size()) + " inspect rules, more than " +
                         std::to_string(abi::kMaxRules) + " together");
  for (size_t i = 0; i < a.inspect.size(); ++i) {
    const auto& r = a.inspect[i];
    std::string where = "inspect rule " + std::to_string(i);
    if (!check_str(r.id, a.strings.size(), where + " id", err)) return false;
    if (r.action != abi::kActionDeny && r.action != abi::kActionReject)
      return fail(err, where + ": action " + std::to_string(r.action) + " is not deny or reject");
    if (r.flags & ~uint16_t{abi::kRuleFromAny}) return fail(err, where + ": unknown flags");
    if (!(r.flags & abi::kRuleFromAny) && !range_ok(r.from_first, r.from_count, a.rule_from.size()))
      return fail(err, where + " from " + range_text(r.from_first, r.from_count) +
                           " outside the rule_from section (" + std::to_string(a.rule_from.size()) +
                           ")");
  }
  if (a.inspect.empty() != (a.inspect_db == nullptr))
    return fail(err, a.inspect.empty() ? "an inspect_db section but no inspect rule"
                                       : "inspect rules but no inspect_db section");
  return true;
}

uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// Every value of an opened domain table (the layout of dataplane/l7/domain_table.h) names
// a rule with a name condition. Bounds are checked again here: open() vouches for them.
bool check_domain_values(const uint8_t* t, size_t len, const Arrays& a, std::string* err) {
  constexpr size_t kKeyCount = 20, kExactSlots = 28, kWildSlots = 36, kValueCount = 44;
  constexpr uint64_t kKeyLen = 16, kSlotLen = 8;
  if (len < l7::kDomainHeaderLen) return fail(err, "domain_table: shorter than its header");
  const uint64_t values = l7::kDomainHeaderLen + le32(t + kKeyCount) * kKeyLen +
                          (uint64_t{le32(t + kExactSlots)} + le32(t + kWildSlots)) * kSlotLen;
  const uint64_t count = le32(t + kValueCount);
  if (values > len || count > (len - values) / 4)
    return fail(err, "domain_table: values outside the table");
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t rule = le32(t + values + 4 * i);
    if (rule >= a.rules.size())
      return fail(err, "domain_table: value " + std::to_string(rule) + " is not a rule index (" +
                           std::to_string(a.rules.size()) + " rules)");
    if (!(a.rules[rule].flags & abi::kRuleNeedsName))
      return fail(err, "domain_table: rule " + std::to_string(rule) +
                           " has no name condition but is in the table");
  }
  return true;
}

// ACL protocol values a rule expands to in one family (empty: matches nothing there).
unsigned rule_protos(const abi::RuleRec& r, int family, uint8_t out[2]) {
  bool ports = r.port_count > 0;
  switch (r.proto) {
    case abi::kProtoAny:
      if (!ports) {
        out[0] = 0;
        return 1;
      }
      out[0] = abi::kProtoTcp;
      out[1] = abi::kProtoUdp;
      return 2;
    case abi::kProtoIcmp:
      if (ports) return 0;  // ports only ever match TCP/UDP
      out[0] = family == 4 ? uint8_t{1} : uint8_t{58};
      return 1;
    default:
      out[0] = r.proto;
      return 1;
  }
}

// Number of destination CIDRs of family (a rule without CIDRs counts as one "any").
uint64_t rule_dsts(const Arrays& a, const abi::RuleRec& r, int family) {
  if (r.cidr_count == 0) return 1;
  uint64_t n = 0;
  for (uint32_t k = 0; k < r.cidr_count; ++k) n += a.rule_cidrs[r.cidr_first + k].family == family;
  return n;
}

uint64_t acl_entries(const Arrays& a, int family) {
  uint64_t total = 0;
  for (const auto& r : a.rules) {
    uint8_t protos[2];
    uint64_t n = rule_protos(r, family, protos);
    n = sat_mul(n, (r.flags & abi::kRuleFromAny) ? 1 : r.from_count);
    n = sat_mul(n, rule_dsts(a, r, family));
    n = sat_mul(n, r.port_count ? r.port_count : 1);
    total += n;
    if (total > kMaxAclRules) return UINT64_MAX;
  }
  return total;
}

template <typename Rule>
void set_dst(Rule& ar, const abi::CidrRec* c, unsigned dst_words) {
  for (unsigned w = 0; w < dst_words; ++w) {
    auto& f = ar.field[kFDst0 + w];
    int bits = c ? int(c->prefix) - int(32 * w) : 0;
    bits = bits < 0 ? 0 : bits > 32 ? 32 : bits;
    f.value.u32 = c ? be32(c->addr + 4 * w) : 0;
    f.mask_range.u32 = static_cast<uint32_t>(bits);
  }
}

// Expands the rules into ACL entries for one family (Rule = Acl4Rule or Acl6Rule).
// names: the policy has name conditions (two categories, see kCatAll/kCatPlain).
template <typename Rule>
std::vector<Rule> expand(const Arrays& a, int family, unsigned dst_words, bool names) {
  std::vector<Rule> out;
  const unsigned fport = kFDst0 + dst_words, fpad = fport + 1;
  for (uint32_t i = 0; i < a.rules.size(); ++i) {
    const auto& r = a.rules[i];
    uint8_t protos[2];
    unsigned np = rule_protos(r, family, protos);
    bool any_from = r.flags & abi::kRuleFromAny;
    uint32_t nfrom = any_from ? 1 : r.from_count;
    uint32_t ndst = r.cidr_count ? r.cidr_count : 1;
    uint32_t nport = r.port_count ? r.port_count : 1;
    // Report rules answer in categories of their own: the enforcing decision never
    // sees them.
    const bool report = r.flags & abi::kRuleReport;
    uint32_t categories = 1u << (report ? kCatReportAll : kCatAll);
    if (names && !(r.flags & abi::kRuleNeedsName))
      categories |= 1u << (report ? kCatReportPlain : kCatPlain);
    for (unsigned p = 0; p < np; ++p)
      for (uint32_t f = 0; f < nfrom; ++f)
        for (uint32_t d = 0; d < ndst; ++d) {
          const abi::CidrRec* c = r.cidr_count ? &a.rule_cidrs[r.cidr_first + d] : nullptr;
          if (c && c->family != family) continue;
          for (uint32_t q = 0; q < nport; ++q) {
            Rule ar{};
            ar.data.category_mask = categories;
            ar.data.priority = static_cast<int32_t>(abi::kMaxRules - i);
            ar.data.userdata = i + 1;
            ar.field[kFProto].value.u8 = protos[p];
            ar.field[kFProto].mask_range.u8 = protos[p] ? 0xff : 0;
            uint32_t svc = any_from ? 0 : a.rule_from[r.from_first + f] + 1;
            ar.field[kFSvc].value.u32 = svc;
            ar.field[kFSvc].mask_range.u32 = any_from ? UINT32_MAX : svc;
            set_dst(ar, c, dst_words);
            const abi::PortRange* pr = r.port_count ? &a.rule_ports[r.port_first + q] : nullptr;
            ar.field[fport].value.u16 = pr ? pr->lo : 0;
            ar.field[fport].mask_range.u16 = pr ? pr->hi : 0xffff;
            ar.field[fpad].value.u16 = 0;
            ar.field[fpad].mask_range.u16 = 0;
            out.push_back(ar);
          }
        }
  }
  return out;
}

template <typename Rule>
rte_acl_ctx* build_acl(const std::vector<Rule>& rules, unsigned dst_words, uint32_t categories,
                       const char* tag, std::string* err) {
  if (rules.empty()) return nullptr;
  char name[RTE_ACL_NAMESIZE];
  snprintf(name, sizeof(name), "egw_%s_%u", tag, g_instance.fetch_add(1));
  rte_acl_param prm{};
  prm.name = name;
  prm.socket_id = SOCKET_ID_ANY;
  prm.rule_size = sizeof(Rule);
  prm.max_rule_num = static_cast<uint32_t>(rules.size());
  rte_acl_ctx* ctx = rte_acl_create(&prm);
  if (!ctx) {
    fail(err, std::string("rte_acl_create (") + tag + ") failed: " + rte_strerror(rte_errno));
    return nullptr;
  }
  int rc = rte_acl_add_rules(ctx, reinterpret_cast<const rte_acl_rule*>(rules.data()),
                             static_cast<uint32_t>(rules.size()));
  rte_acl_config cfg{};
  cfg.num_categories = categories;
  if (rc == 0) {
    cfg.num_fields = acl_defs(dst_words, cfg.defs);
    rc = rte_acl_build(ctx, &cfg);
  }
  if (rc != 0) {
    fail(err, std::string("building the ") + tag + " ACL (" + std::to_string(rules.size()) +
                  " entries) failed: " + rte_strerror(-rc));
    rte_acl_free(ctx);
    return nullptr;
  }
  return ctx;
}

Verdict verdict_of(uint8_t action) {
  return action == abi::kActionAllow    ? Verdict::allow
         : action == abi::kActionReject ? Verdict::reject
                                        : Verdict::deny;
}

}  // namespace

struct RuntimePolicy::Impl {
  uint64_t version = 0;
  abi::Settings settings{};
  Verdict default_verdict = Verdict::deny;
  std::vector<std::string> rule_ids;
  std::vector<Verdict> rule_verdicts;
  std::vector<uint16_t> rule_slots;  // stats slot by rule index (set_rule_slots)
  rte_lpm* lpm4 = nullptr;
  rte_lpm6* lpm6 = nullptr;
  int default4 = -1, default6 = -1;  // service of a /0 CIDR (rte_lpm needs depth >= 1)
  rte_acl_ctx* acl4 = nullptr;
  rte_acl_ctx* acl6 = nullptr;
  uint32_t categories = 1;  // kNameCategories when some rule has a name condition, or
                            // some ruleset is report-only
  bool has_names = false;
  bool has_report = false;
  // Rate limits and quotas: by rule index, the index into `limits` (-1: none).
  std::vector<abi::LimitRec> limits;
  std::vector<int32_t> limit_of;
  // The rules' L3/L4 arrays, for decide_name()'s direct check of its few candidates.
  std::vector<abi::RuleRec> rules;
  std::vector<uint32_t> rule_from;
  std::vector<abi::PortRange> rule_ports;
  std::vector<abi::CidrRec> rule_cidrs;
  // Name conditions: the literal table (over its own copy of the bytes) and the Hyperscan
  // databases of the domain_regex patterns (id = rule index), in rule order.
  std::vector<uint8_t> domain_bytes;
  l7::DomainTable domains;
  std::vector<hs_database_t*> regex_dbs;
  // Inspect rules: the stream database (id = inspect index), their verdicts, and which
  // source services some inspect rule covers (by service index; inspect_any: every one).
  hs_database_t* inspect_db = nullptr;
  std::vector<abi::InspectRec> inspect;
  std::vector<Verdict> inspect_verdicts;
  std::vector<uint8_t> inspect_services;
  bool inspect_any = false;
  // One scratch per worker, serving every database.
  std::vector<hs_scratch_t*> scratches;
  unsigned scratch_count = 0;

  bool build_lpm(const Arrays& a, std::string* err);
  bool load_names(const Arrays& a, std::string* err);
  bool load_regex_parts(const uint8_t* sec, size_t len, std::string* err);
  bool load_inspect(Arrays& a, std::string* err);
  bool alloc_scratches(std::string* err);
  int service(const FlowKey& k) const;
  bool needs_name(uint32_t rule) const { return rules[rule].flags & abi::kRuleNeedsName; }
  void acl_results(const FlowKey& key, uint32_t res[kNameCategories]) const;
  bool rule_l34_matches(uint32_t rule, const FlowKey& k, int svc) const;
  Decision decide(uint32_t result) const {
    if (result == 0 || result > rule_verdicts.size()) return {default_verdict, kNoRule};
    return {rule_verdicts[result - 1], static_cast<uint16_t>(result - 1)};
  }
  // The decision of one key's ACL results (`categories` of them): the enforcing rules',
  // or (report) the report-only rules'.
  Decision decide(const uint32_t* res, bool report = false) const {
    Decision first = decide(res[report ? kCatReportAll : kCatAll]);
    if (categories == 1 || first.rule_index == kNoRule || !needs_name(first.rule_index))
      return first;
    Decision d = decide(res[report ? kCatReportPlain : kCatPlain]);
    d.needs_name = true;
    d.first_index = first.rule_index;
    return d;
  }
  bool is_report(uint32_t rule) const { return rules[rule].flags & abi::kRuleReport; }
};

bool RuntimePolicy::Impl::build_lpm(const Arrays& a, std::string* err) {
  uint64_t n4 = 0, n6 = 0, tbl8_4 = 1, tbl8_6 = 1;
  for (const auto& c : a.service_cidrs) {
    if (c.family == 4) {
      ++n4;
      tbl8_4 += c.prefix > 24;
    } else {
      ++n6;
      tbl8_6 += c.prefix > 24 ? (c.prefix - 24 + 7) / 8 : 0;
    }
  }
  if (n4 > UINT32_MAX || n6 > UINT32_MAX || tbl8_6 > kMaxLpm6Tbl8s)
    return fail(err, "too many service CIDRs for the LPM tables");
  uint32_t id = g_instance.fetch_add(1);
  char name[RTE_LPM_NAMESIZE];
  if (n4) {
    snprintf(name, sizeof(name), "egw_lpm4_%u", id);
    rte_lpm_config cfg{static_cast<uint32_t>(n4), static_cast<uint32_t>(tbl8_4), 0};
    lpm4 = rte_lpm_create(name, SOCKET_ID_ANY, &cfg);
    if (!lpm4) return fail(err, std::string("rte_lpm_create failed: ") + rte_strerror(rte_errno));
  }
  if (n6) {
    snprintf(name, sizeof(name), "egw_lpm6_%u", id);
    rte_lpm6_config cfg{static_cast<uint32_t>(n6), static_cast<uint32_t>(tbl8_6), 0};
    lpm6 = rte_lpm6_create(name, SOCKET_ID_ANY, &cfg);
    if (!lpm6) return fail(err, std::string("rte_lpm6_create failed: ") + rte_strerror(rte_errno));
  }
  // Services in order: on an identical prefix in two services the first one keeps it.
  for (uint32_t s = 0; s < a.services.size(); ++s) {
    const auto& sv = a.services[s];
    for (uint32_t k = 0; k < sv.cidr_count; ++k) {
      const auto& c = a.service_cidrs[sv.cidr_first + k];
      uint32_t nh = 0;
      int rc = 0;
      if (c.prefix == 0) {
        int& d = c.family == 4 ? default4 : default6;
        if (d < 0) d = static_cast<int>(s);
      } else if (c.family == 4) {
        uint32_t ip = be32(c.addr);
        if (rte_lpm_is_rule_present(lpm4, ip, c.prefix, &nh) == 0)
          rc = rte_lpm_add(lpm4, ip, c.prefix, s + 1);
      } else {
        if (rte_lpm6_is_rule_present(lpm6, c.addr, c.prefix, &nh) == 0)
          rc = rte_lpm6_add(lpm6, c.addr, c.prefix, s + 1);
      }
      if (rc < 0)
        return fail(err, "adding a CIDR of service " + std::to_string(s) +
                             " to the LPM failed: " + rte_strerror(-rc));
    }
  }
  return true;
}

std::string hs_error_text(hs_error_t rc) {
  switch (rc) {
    case HS_INVALID:
      return "invalid or corrupted (HS_INVALID)";
    case HS_NOMEM:
      return "out of memory (HS_NOMEM)";
    case HS_DB_VERSION_ERROR:
      return "built by another Hyperscan version (HS_DB_VERSION_ERROR)";
    case HS_DB_PLATFORM_ERROR:
      return "built for another platform (HS_DB_PLATFORM_ERROR)";
    case HS_DB_MODE_ERROR:
      return "wrong mode (HS_DB_MODE_ERROR)";
    case HS_BAD_ALIGN:
      return "misaligned (HS_BAD_ALIGN)";
    case HS_BAD_ALLOC:
      return "misaligned allocation (HS_BAD_ALLOC)";
    case HS_ARCH_ERROR:
      return "this CPU lacks the instructions Hyperscan needs (HS_ARCH_ERROR)";
    default:
      return "Hyperscan error " + std::to_string(rc);
  }
}

// Deserializes one Hyperscan database of a section after checking its size and mode
// ("BLOCK" or "STREAM", as hs_serialized_database_info describes it).
bool deserialize(const uint8_t* data, size_t len, const char* section, const char* mode,
                 hs_database_t** out, std::string* err) {
  const std::string name = section;
  const char* bytes = reinterpret_cast<const char*>(data);
  size_t size = 0;
  hs_error_t rc = hs_serialized_database_size(bytes, len, &size);
  if (rc != HS_SUCCESS)
    return fail(err, name + ": not a serialized Hyperscan database: " + hs_error_text(rc));
  if (size > kMaxRegexDbSize)
    return fail(
        err, name + ": deserializes to " + std::to_string(size) + " bytes, over the 1 GiB limit");
  char* info = nullptr;
  rc = hs_serialized_database_info(bytes, len, &info);
  if (rc != HS_SUCCESS) return fail(err, name + ": " + hs_error_text(rc));
  const bool ok = info && std::strstr(info, (std::string("Mode: ") + mode).c_str()) != nullptr;
  std::string described = info ? info : "";
  free(info);  // Hyperscan's default allocator is malloc
  if (!ok) {
    std::string want = mode;
    for (char& c : want) c = static_cast<char>(tolower(c));
    return fail(err, name + ": not a " + want + "-mode database (" + described + ")");
  }
  rc = hs_deserialize_database(bytes, len, out);
  if (rc != HS_SUCCESS) {
    *out = nullptr;
    return fail(err, name + ": " + hs_error_text(rc));
  }
  return true;
}

bool RuntimePolicy::Impl::load_names(const Arrays& a, std::string* err) {
  if (a.domain_table) {
    domain_bytes.assign(a.domain_table, a.domain_table + a.domain_table_len);
    std::string why;
    if (!domains.open(domain_bytes.data(), domain_bytes.size(), &why)) {
      const std::string own = "domain table: ";  // DomainTable's prefix: said once
      if (why.rfind(own, 0) == 0) why.erase(0, own.size());
      return fail(err, "domain_table: " + why);
    }
    if (!check_domain_values(domain_bytes.data(), domain_bytes.size(), a, err)) return false;
  }
  if (!a.regex_db) return true;
  return load_regex_parts(a.regex_db, a.regex_db_len, err);
}

// Section 10: the part table (abi::RegexDbHeader), then each part's database.
bool RuntimePolicy::Impl::load_regex_parts(const uint8_t* sec, size_t len, std::string* err) {
  abi::RegexDbHeader h;
  if (len < sizeof(h))
    return fail(err, "name_regex_db: " + std::to_string(len) + " bytes, shorter than its header");
  std::memcpy(&h, sec, sizeof(h));
  if (h.part_count == 0 || h.part_count > abi::kMaxRegexParts)
    return fail(err, "name_regex_db: part_count " + std::to_string(h.part_count) +
                         " is not in 1.." + std::to_string(abi::kMaxRegexParts));
  if (h.reserved != 0) return fail(err, "name_regex_db: reserved header field is not 0");
  const uint64_t table_end = sizeof(h) + uint64_t{h.part_count} * sizeof(abi::RegexDbPart);
  if (table_end > len)
    return fail(err, "name_regex_db: the table of " + std::to_string(h.part_count) +
                         " parts extends past the section (" + std::to_string(len) + " bytes)");
  std::vector<abi::RegexDbPart> parts(h.part_count);
  std::memcpy(parts.data(), sec + sizeof(h), parts.size() * sizeof(parts[0]));
  regex_dbs.reserve(parts.size());
  uint64_t next = table_end, total = 0;  // parts in order, none overlapping another
  for (size_t k = 0; k < parts.size(); ++k) {
    const abi::RegexDbPart& p = parts[k];
    const std::string what = "name_regex_db part " + std::to_string(k);
    if (p.offset % 8 != 0)
      return fail(err, what + " offset " + std::to_string(p.offset) + " is not 8-byte aligned");
    if (p.offset < next)
      return fail(err, what + " offset " + std::to_string(p.offset) +
                           " overlaps the part table or the previous part");
    if (p.offset > len || p.size > len - p.offset)
      return fail(err, what + " [" + std::to_string(p.offset) + ", +" + std::to_string(p.size) +
                           ") extends past the section (" + std::to_string(len) + " bytes)");
    next = p.offset + p.size;
    hs_database_t* db = nullptr;
    if (!deserialize(sec + p.offset, p.size, what.c_str(), "BLOCK", &db, err)) return false;
    regex_dbs.push_back(db);
    size_t size = 0;
    if (hs_database_size(db, &size) != HS_SUCCESS || (total += size) > kMaxRegexDbSize)
      return fail(err, "name_regex_db: its parts deserialize to more than the 1 GiB limit");
  }
  return true;
}

bool RuntimePolicy::Impl::load_inspect(Arrays& a, std::string* err) {
  if (!deserialize(a.inspect_db, a.inspect_db_len, "inspect_db", "STREAM", &inspect_db, err))
    return false;
  size_t state = 0;
  const hs_error_t rc = hs_stream_size(inspect_db, &state);
  if (rc != HS_SUCCESS) return fail(err, "inspect_db: " + hs_error_text(rc));
  if (state > abi::kInspectStreamBlock)
    return fail(err, "inspect_db: streams of " + std::to_string(state) + " bytes, over the " +
                         std::to_string(abi::kInspectStreamBlock) + "-byte block of a flow");
  inspect_services.assign(a.services.size(), 0);
  for (const auto& r : a.inspect) {
    inspect_verdicts.push_back(verdict_of(r.action));
    if (r.flags & abi::kRuleFromAny) inspect_any = true;
    for (uint32_t i = 0; !(r.flags & abi::kRuleFromAny) && i < r.from_count; ++i)
      inspect_services[a.rule_from[r.from_first + i]] = 1;
  }
  inspect = std::move(a.inspect);
  return true;
}

// One scratch for every database (hs_alloc_scratch grows it to fit each), then a clone
// per further worker.
bool RuntimePolicy::Impl::alloc_scratches(std::string* err) {
  hs_scratch_t* s = nullptr;
  std::vector<const hs_database_t*> dbs(regex_dbs.begin(), regex_dbs.end());
  if (inspect_db) dbs.push_back(inspect_db);
  for (const hs_database_t* db : dbs) {
    const hs_error_t rc = hs_alloc_scratch(db, &s);
    if (rc != HS_SUCCESS) {
      hs_free_scratch(s);
      return fail(err, "Hyperscan scratch: " + hs_error_text(rc));
    }
  }
  if (s == nullptr) return true;
  scratches.reserve(scratch_count);
  scratches.push_back(s);
  while (scratches.size() < scratch_count) {
    hs_scratch_t* c = nullptr;
    const hs_error_t rc = hs_clone_scratch(scratches[0], &c);
    if (rc != HS_SUCCESS) return fail(err, "Hyperscan scratch: " + hs_error_text(rc));
    scratches.push_back(c);
  }
  return true;
}

int RuntimePolicy::Impl::service(const FlowKey& k) const {
  uint32_t nh = 0;
  if (k.family == 4) {
    if (lpm4 && rte_lpm_lookup(lpm4, be32(k.inside_ip), &nh) == 0) return static_cast<int>(nh) - 1;
    return default4;
  }
  if (k.family == 6) {
    if (lpm6 && rte_lpm6_lookup(lpm6, k.inside_ip, &nh) == 0) return static_cast<int>(nh) - 1;
    return default6;
  }
  return -1;
}

std::unique_ptr<RuntimePolicy> RuntimePolicy::load(const uint8_t* blob, size_t len,
                                                   std::string* err, unsigned scratch_count) {
  if (scratch_count == 0 || scratch_count > kMaxScratches) {
    fail(err, "scratch_count " + std::to_string(scratch_count) + " is not in 1.." +
                  std::to_string(kMaxScratches));
    return nullptr;
  }
  Arrays a;
  if (!parse_layout(blob, len, &a, err) || !check_contents(a, err)) return nullptr;
  uint64_t e4 = acl_entries(a, 4), e6 = acl_entries(a, 6);
  if (e4 > kMaxAclRules || e6 > kMaxAclRules) {
    fail(err, "rules expand to more than " + std::to_string(kMaxAclRules) +
                  " classifier entries in one address family (from x cidrs x ports x protos)");
    return nullptr;
  }

  std::unique_ptr<RuntimePolicy> p(new RuntimePolicy());
  p->impl_ = std::make_unique<Impl>();
  Impl& m = *p->impl_;
  m.version = a.hdr.policy_version;
  m.settings = a.settings;
  m.default_verdict = verdict_of(a.settings.default_action);
  m.rule_ids.reserve(a.rules.size());
  m.rule_verdicts.reserve(a.rules.size());
  for (const auto& r : a.rules) {
    auto first = a.strings.begin() + r.id.offset;
    m.rule_ids.emplace_back(first, first + r.id.length);
    m.rule_verdicts.push_back(verdict_of(r.action));
  }
  for (const auto& r : a.inspect) {  // named by rule index too, after the rules
    auto first = a.strings.begin() + r.id.offset;
    m.rule_ids.emplace_back(first, first + r.id.length);
  }
  const bool names = a.domain_table || a.regex_db;  // check_contents: iff a rule needs names
  for (const auto& r : a.rules) m.has_report = m.has_report || (r.flags & abi::kRuleReport);
  m.has_names = names;
  m.categories = names || m.has_report ? kNameCategories : 1;
  m.limits = a.limits;
  m.limit_of.assign(a.rules.size(), -1);
  for (size_t i = 0; i < m.limits.size(); ++i) m.limit_of[m.limits[i].rule] = static_cast<int32_t>(i);
  m.scratch_count = scratch_count;
  if (names && !m.load_names(a, err)) return nullptr;
  if (a.inspect_db && !m.load_inspect(a, err)) return nullptr;
  if (!m.alloc_scratches(err)) return nullptr;
  if (!m.build_lpm(a, err)) return nullptr;
  auto r4 = expand<Acl4Rule>(a, 4, 1, names);
  m.acl4 = build_acl(r4, 1, m.categories, "acl4", err);
  if (!r4.empty() && !m.acl4) return nullptr;
  auto r6 = expand<Acl6Rule>(a, 6, 4, names);
  m.acl6 = build_acl(r6, 4, m.categories, "acl6", err);
  if (!r6.empty() && !m.acl6) return nullptr;
  m.rules = std::move(a.rules);
  m.rule_from = std::move(a.rule_from);
  m.rule_ports = std::move(a.rule_ports);
  m.rule_cidrs = std::move(a.rule_cidrs);
  return p;
}

RuntimePolicy::~RuntimePolicy() {
  if (!impl_) return;
  for (hs_scratch_t* s : impl_->scratches) hs_free_scratch(s);
  for (hs_database_t* db : impl_->regex_dbs) hs_free_database(db);
  hs_free_database(impl_->inspect_db);
  rte_acl_free(impl_->acl4);
  rte_acl_free(impl_->acl6);
  rte_lpm_free(impl_->lpm4);
  rte_lpm6_free(impl_->lpm6);
}

namespace {

void fill4(Acl4Input* in, const FlowKey& k, int svc) {
  std::memset(in, 0, sizeof(*in));
  in->proto = k.proto;
  in->svc = htonl(static_cast<uint32_t>(svc + 1));
  std::memcpy(in->dst, k.remote_ip, 4);
  in->port = htons(k.remote_port);
}

void fill6(Acl6Input* in, const FlowKey& k, int svc) {
  std::memset(in, 0, sizeof(*in));
  in->proto = k.proto;
  in->svc = htonl(static_cast<uint32_t>(svc + 1));
  std::memcpy(in->dst, k.remote_ip, 16);
  in->port = htons(k.remote_port);
}

// The destination CIDR c holds k's remote address (host bits of c are zero: checked).
bool cidr_holds(const abi::CidrRec& c, const FlowKey& k) {
  if (c.family != k.family) return false;
  const unsigned full = c.prefix / 8, rest = c.prefix % 8;
  if (std::memcmp(c.addr, k.remote_ip, full) != 0) return false;
  return rest == 0 || (k.remote_ip[full] & uint8_t(0xff << (8 - rest))) == c.addr[full];
}

}  // namespace

// The rule's from/proto/ports/cidrs against the key, as its ACL entries would match them.
bool RuntimePolicy::Impl::rule_l34_matches(uint32_t rule, const FlowKey& k, int svc) const {
  const abi::RuleRec& r = rules[rule];
  if (!(r.flags & abi::kRuleFromAny)) {
    bool from = false;
    for (uint32_t i = 0; i < r.from_count && !from; ++i)
      from = svc >= 0 && rule_from[r.from_first + i] == static_cast<uint32_t>(svc);
    if (!from) return false;
  }
  uint8_t protos[2];
  const unsigned np = rule_protos(r, k.family, protos);
  bool proto = false;
  for (unsigned i = 0; i < np; ++i) proto = proto || protos[i] == 0 || protos[i] == k.proto;
  if (!proto) return false;
  if (r.port_count) {
    bool port = false;
    for (uint32_t i = 0; i < r.port_count && !port; ++i) {
      const abi::PortRange& pr = rule_ports[r.port_first + i];
      port = k.remote_port >= pr.lo && k.remote_port <= pr.hi;
    }
    if (!port) return false;
  }
  if (r.cidr_count) {
    bool dst = false;
    for (uint32_t i = 0; i < r.cidr_count && !dst; ++i)
      dst = cidr_holds(rule_cidrs[r.cidr_first + i], k);
    if (!dst) return false;
  }
  return true;
}

// One key's ACL results, every category.
void RuntimePolicy::Impl::acl_results(const FlowKey& key, uint32_t res[kNameCategories]) const {
  if (key.family == 4 && acl4) {
    Acl4Input in;
    fill4(&in, key, service(key));
    const uint8_t* d = reinterpret_cast<const uint8_t*>(&in);
    rte_acl_classify(acl4, &d, res, 1, categories);
  } else if (key.family == 6 && acl6) {
    Acl6Input in;
    fill6(&in, key, service(key));
    const uint8_t* d = reinterpret_cast<const uint8_t*>(&in);
    rte_acl_classify(acl6, &d, res, 1, categories);
  }
}

Decision RuntimePolicy::classify(const FlowKey& key) const {
  uint32_t res[kNameCategories] = {};
  impl_->acl_results(key, res);
  return impl_->decide(res);
}

Decision RuntimePolicy::classify_report(const FlowKey& key) const {
  uint32_t res[kNameCategories] = {};
  impl_->acl_results(key, res);
  return impl_->decide(res, true);
}

bool RuntimePolicy::has_report() const {
  return impl_->has_report;
}

const abi::LimitRec* RuntimePolicy::limit(uint16_t rule_index) const {
  if (rule_index >= impl_->limit_of.size() || impl_->limit_of[rule_index] < 0) return nullptr;
  return &impl_->limits[static_cast<size_t>(impl_->limit_of[rule_index])];
}

bool RuntimePolicy::has_limits() const {
  return !impl_->limits.empty();
}

Verdict RuntimePolicy::rule_verdict(uint16_t rule_index) const {
  if (rule_index >= impl_->rule_verdicts.size()) return impl_->default_verdict;
  return impl_->rule_verdicts[rule_index];
}

void RuntimePolicy::classify_bulk(const FlowKey* const* keys, unsigned n, Decision* out) const {
  const Impl& m = *impl_;
  for (unsigned base = 0; base < n; base += kBulk) {
    unsigned cnt = n - base < kBulk ? n - base : kBulk;
    Acl4Input in4[kBulk];
    Acl6Input in6[kBulk];
    const uint8_t* d4[kBulk];
    const uint8_t* d6[kBulk];
    uint32_t r4[kBulk * kNameCategories], r6[kBulk * kNameCategories];
    uint8_t idx4[kBulk], idx6[kBulk];
    unsigned n4 = 0, n6 = 0;
    for (unsigned i = 0; i < cnt; ++i) {
      const FlowKey& k = *keys[base + i];
      out[base + i] = m.decide(0u);
      if (k.family == 4 && m.acl4) {
        fill4(&in4[n4], k, m.service(k));
        d4[n4] = reinterpret_cast<const uint8_t*>(&in4[n4]);
        idx4[n4++] = static_cast<uint8_t>(i);
      } else if (k.family == 6 && m.acl6) {
        fill6(&in6[n6], k, m.service(k));
        d6[n6] = reinterpret_cast<const uint8_t*>(&in6[n6]);
        idx6[n6++] = static_cast<uint8_t>(i);
      }
    }
    if (n4) rte_acl_classify(m.acl4, d4, r4, n4, m.categories);
    if (n6) rte_acl_classify(m.acl6, d6, r6, n6, m.categories);
    for (unsigned j = 0; j < n4; ++j) out[base + idx4[j]] = m.decide(r4 + j * m.categories);
    for (unsigned j = 0; j < n6; ++j) out[base + idx6[j]] = m.decide(r6 + j * m.categories);
  }
}

namespace {

// decide_name()'s search: the lowest candidate rule below `best` whose L3/L4 conditions
// hold for the key (a Hyperscan match callback context, on the worker's stack).
struct NameSearch {
  const RuntimePolicy::Impl* m;
  const FlowKey* key;
  int svc;
  uint32_t first;  // no candidate below the first L3/L4 match can match
  uint32_t best;   // the plain decision's rule (or past the last rule)
  bool report;     // among the report-only rules, not the enforcing ones

  // True when rule became the best; candidates >= best are not looked at.
  bool offer(uint32_t rule) {
    if (rule < first || rule >= best || rule >= m->rules.size() || !m->needs_name(rule) ||
        m->is_report(rule) != report || !m->rule_l34_matches(rule, *key, svc))
      return false;
    best = rule;
    return true;
  }
};

int on_regex_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  auto* s = static_cast<NameSearch*>(ctx);
  s->offer(id);
  return s->best == s->first ? 1 : 0;  // nothing can beat the first candidate: stop
}

}  // namespace

Decision RuntimePolicy::decide_name(const FlowKey& key, const Decision& d, const l7::Name* name,
                                    unsigned worker, bool report) const {
  const Impl& m = *impl_;
  Decision plain{d.verdict, d.rule_index};
  if (!d.needs_name || name == nullptr || name->len == 0 || name->len > l7::kMaxName ||
      (key.family != 4 && key.family != 6))
    return plain;
  NameSearch s{&m, &key, m.service(key), d.first_index,
               d.rule_index == kNoRule ? static_cast<uint32_t>(m.rules.size()) : d.rule_index,
               report};
  // Literal matches come ascending: the first that holds is the best of them.
  uint32_t cand[kMaxNameCandidates];
  const size_t n = m.domains.match(*name, cand, kMaxNameCandidates);
  for (size_t i = 0; i < n && cand[i] < s.best; ++i)
    if (s.offer(cand[i])) break;
  if (!m.regex_dbs.empty() && s.best != s.first) {
    assert(worker < m.scratches.size());
    // Parts follow rule order: once one gives a winner, no later part can beat it.
    const uint32_t before = s.best;
    if (worker >= m.scratches.size()) return Decision{Verdict::deny, kNoRule};
    for (const hs_database_t* db : m.regex_dbs) {
      const hs_error_t rc =
          hs_scan(db, name->buf, name->len, 0, m.scratches[worker], on_regex_match, &s);
      // A scan that failed may have missed a deny rule's pattern: fail closed.
      if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return Decision{Verdict::deny, kNoRule};
      if (s.best != before) break;
    }
  }
  if (s.best == plain.rule_index || s.best >= m.rules.size()) return plain;
  return m.decide(s.best + 1);
}

bool RuntimePolicy::has_name_rules() const {
  return impl_->has_names;
}

unsigned RuntimePolicy::scratch_count() const {
  return impl_->scratch_count;
}

uint64_t RuntimePolicy::version() const {
  return impl_->version;
}

const char* RuntimePolicy::rule_id(uint16_t rule_index) const {
  if (rule_index >= impl_->rule_ids.size()) return "";
  return impl_->rule_ids[rule_index].c_str();
}

uint16_t RuntimePolicy::rule_slot(uint16_t rule_index) const {
  if (rule_index == kNoRule) return stats::kSlotDefault;
  if (rule_index < impl_->rule_slots.size()) return impl_->rule_slots[rule_index];
  const uint32_t slot = uint32_t{rule_index} + stats::kFirstRuleSlot;
  return slot <= stats::kMaxRuleSlots ? static_cast<uint16_t>(slot) : stats::kSlotOther;
}

void RuntimePolicy::set_rule_slots(std::vector<uint16_t> slots) {
  impl_->rule_slots = std::move(slots);
}

size_t RuntimePolicy::rule_count() const {
  return impl_->rule_verdicts.size();
}

bool RuntimePolicy::has_inspect() const {
  return impl_->inspect_db != nullptr;
}

size_t RuntimePolicy::inspect_count() const {
  return impl_->inspect.size();
}

bool RuntimePolicy::inspects(const FlowKey& key) const {
  const Impl& m = *impl_;
  if (m.inspect_db == nullptr) return false;
  if (m.inspect_any) return true;
  const int svc = m.service(key);
  return svc >= 0 && static_cast<size_t>(svc) < m.inspect_services.size() &&
         m.inspect_services[static_cast<size_t>(svc)] != 0;
}

bool RuntimePolicy::inspect_applies(uint32_t index, const FlowKey& key) const {
  const Impl& m = *impl_;
  if (index >= m.inspect.size()) return false;
  const abi::InspectRec& r = m.inspect[index];
  if (r.flags & abi::kRuleFromAny) return true;
  const int svc = m.service(key);
  for (uint32_t i = 0; i < r.from_count; ++i)
    if (svc >= 0 && m.rule_from[r.from_first + i] == static_cast<uint32_t>(svc)) return true;
  return false;
}

uint16_t RuntimePolicy::inspect_rule_index(uint32_t index) const {
  return static_cast<uint16_t>(impl_->rule_verdicts.size() + index);
}

Verdict RuntimePolicy::inspect_verdict(uint32_t index) const {
  const Impl& m = *impl_;
  return index < m.inspect_verdicts.size() ? m.inspect_verdicts[index] : Verdict::deny;
}

const hs_database* RuntimePolicy::inspect_db() const {
  return impl_->inspect_db;
}

hs_scratch* RuntimePolicy::scratch(unsigned worker) const {
  const Impl& m = *impl_;
  return worker < m.scratches.size() ? m.scratches[worker] : nullptr;
}

FlowTimeouts RuntimePolicy::timeouts() const {
  constexpr uint64_t kSec = 1000000000ull;
  const auto& s = impl_->settings;
  FlowTimeouts t;
  t.tcp_syn_ns = s.tcp_syn_s * kSec;
  t.tcp_established_ns = s.tcp_established_s * kSec;
  t.tcp_closing_ns = s.tcp_closing_s * kSec;
  t.udp_ns = s.udp_s * kSec;
  t.icmp_ns = s.icmp_s * kSec;
  t.other_ns = s.udp_s * kSec;
  return t;
}

const abi::Settings& RuntimePolicy::settings() const {
  return impl_->settings;
}

int RuntimePolicy::service_of(const FlowKey& key) const {
  return impl_->service(key);
}

bool read_file(const std::string& path, std::string* out, std::string* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    if (err) *err = "cannot stat " + path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    if (err) *err = path + (S_ISDIR(st.st_mode) ? ": is a directory" : ": not a regular file");
    ::close(fd);
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) > abi::kPolicyMaxSize) {
    if (err) *err = path + ": larger than the 1 GiB limit";
    ::close(fd);
    return false;
  }
  out->clear();
  out->reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) *err = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > abi::kPolicyMaxSize) {
      if (err) *err = path + ": larger than the 1 GiB limit";
      ::close(fd);
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace egw
