// The compiled policy blob: the one format egw-mgmt/egwctl write and the dataplane loads.
// It crosses process boundaries (file, shared memory): every layout is fixed and asserted.
// All integers little endian (x86-64 and arm64 hosts); offsets from the blob start.
#pragma once

#include <cstddef>
#include <cstdint>

namespace egw::abi {

constexpr uint32_t kPolicyMagic = 0x50574745;    // "EGWP"
constexpr uint16_t kPolicyAbiVersion = 5;        // 2: name conditions (sections 9, 10),
                                                 // inspect rules (sections 11, 12);
                                                 // 3: domain table version 2;
                                                 // 4: section 10 in parts;
                                                 // 5: rate limits and quotas (section
                                                 // 13), report-only rulesets
constexpr uint64_t kPolicyMaxSize = 1ull << 30;  // 1 GiB: anything larger is refused

// Blob = PolicyHeader, SectionEntry[section_count], then section bodies (8-byte aligned).
struct PolicyHeader {
  uint32_t magic;           // kPolicyMagic
  uint16_t abi_version;     // kPolicyAbiVersion
  uint16_t header_size;     // sizeof(PolicyHeader)
  uint64_t policy_version;  // set by egw-mgmt at commit; 0 from `egwctl compile`
  uint64_t total_size;      // bytes of the whole blob
  uint64_t checksum;        // fnv1a64 of bytes [header_size, total_size)
  uint32_t section_count;
  uint32_t flags;             // reserved, 0
  uint8_t source_sha256[32];  // SHA-256 of the policy document it was compiled from
};
static_assert(sizeof(PolicyHeader) == 72);

enum SectionType : uint32_t {
  kSecSettings = 1,      // one Settings
  kSecStrings = 2,       // bytes: names and ids, referenced by (offset, length)
  kSecServices = 3,      // ServiceRec[]; service index i has id i + 1 (0 = no service)
  kSecServiceCidrs = 4,  // CidrRec[]; ref = service index
  kSecRules = 5,         // RuleRec[], in evaluation order (rulesets flattened)
  kSecRuleFrom = 6,      // uint32_t[]: service indices referenced by RuleRec::from_*
  kSecRulePorts = 7,     // PortRange[]
  kSecRuleCidrs = 8,     // CidrRec[]; destination CIDRs of rules (ref unused, 0)
  // Optional; present only when some rule has the name condition they serve.
  kSecDomainTable = 9,   // bytes: l7::DomainTableBuilder::build() of every to.domains
                         // entry, value = the rule index
  kSecNameRegexDb = 10,  // bytes: RegexDbHeader, RegexDbPart[part_count], then each part's
                         // hs_serialize_database() of one block-mode database, id = the
                         // rule index: the to.domain_regex patterns in rule order, split
                         // into parts (see RegexDbHeader)
  // Optional; present together, only when the policy has inspect rules.
  kSecInspect = 11,    // InspectRec[], in document order (the inspect index)
  kSecInspectDb = 12,  // bytes: hs_serialize_database() of one stream-mode database of
                       // every inspect pattern, id = the inspect index
  // Optional; present only when some rule has rate_limit or max_flows.
  kSecRuleLimits = 13,  // LimitRec[], by rule index ascending, at most one per rule
};

// Hyperscan falls off a cliff on a database of thousands of patterns of one shape (each
// hit scans for tens of microseconds), so the patterns are split into parts of at most
// a few thousand, scanned in turn. Parts follow rule order: no id of a part is below an
// id of an earlier part, so the first part with a winning match ends the search.
constexpr uint32_t kMaxRegexParts = 4096;

struct RegexDbHeader {
  uint32_t part_count;  // 1..kMaxRegexParts
  uint32_t reserved;    // 0
};
static_assert(sizeof(RegexDbHeader) == 8);

struct RegexDbPart {
  uint64_t offset;  // from the section start, 8-byte aligned, after the part table and
                    // the previous part
  uint64_t size;    // bytes of the serialized database
};
static_assert(sizeof(RegexDbPart) == 16);

struct SectionEntry {
  uint32_t type;       // SectionType
  uint32_t elem_size;  // sizeof one element (1 for kSecStrings)
  uint64_t offset;     // from the blob start, 8-byte aligned
  uint64_t size;       // bytes; a multiple of elem_size
};
static_assert(sizeof(SectionEntry) == 24);

struct StrRef {
  uint32_t offset;  // within kSecStrings
  uint32_t length;
};
static_assert(sizeof(StrRef) == 8);

enum : uint8_t { kActionAllow = 0, kActionDeny = 1, kActionReject = 2 };
enum : uint8_t { kProtoAny = 0, kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17 };
enum : uint8_t { kEstablishedReevaluate = 0, kEstablishedKeep = 1 };

struct Settings {
  uint8_t default_action;    // kAction*
  uint8_t established_mode;  // kEstablished*
  uint16_t reserved0;
  uint32_t l7_max_bytes;
  uint32_t l7_timeout_ms;
  uint32_t tcp_syn_s;
  uint32_t tcp_established_s;
  uint32_t tcp_closing_s;
  uint32_t udp_s;
  uint32_t icmp_s;
  uint32_t max_flows;          // per worker; 0 = sized from the dataplane's configuration
  uint32_t inspect_max_bytes;  // outbound payload bytes inspected per flow; 0 = none
};
static_assert(sizeof(Settings) == 40);

struct CidrRec {
  uint8_t family;  // 4 or 6
  uint8_t prefix;  // 0..32 or 0..128
  uint16_t reserved;
  uint32_t ref;      // service index for kSecServiceCidrs
  uint8_t addr[16];  // network byte order; IPv4 in addr[0..3]; host bits zero
};
static_assert(sizeof(CidrRec) == 24);

struct ServiceRec {
  StrRef name;
  uint32_t cidr_first;  // into kSecServiceCidrs
  uint32_t cidr_count;
};
static_assert(sizeof(ServiceRec) == 16);

struct PortRange {
  uint16_t lo, hi;  // inclusive, lo <= hi
};
static_assert(sizeof(PortRange) == 4);

enum : uint16_t {
  kRuleFromAny = 1u << 0,    // "any" in from: every inside source, in a service or not
  kRuleNeedsName = 1u << 1,  // to.domains or to.domain_regex: decided once the name is known
  kRuleReport = 1u << 2,     // of a "mode": "report" ruleset: evaluated beside the
                             // enforcing rules, never deciding a flow
};

struct RuleRec {
  StrRef id;
  uint8_t action;       // kAction*
  uint8_t proto;        // kProto*
  uint16_t flags;       // kRule*
  uint32_t ruleset;     // index of its ruleset in the document
  uint32_t from_first;  // into kSecRuleFrom (ignored with kRuleFromAny)
  uint32_t from_count;
  uint32_t port_first;  // into kSecRulePorts; count 0 = any port
  uint32_t port_count;
  uint32_t cidr_first;  // into kSecRuleCidrs; count 0 = any destination
  uint32_t cidr_count;
};
static_assert(sizeof(RuleRec) == 40);

constexpr uint32_t kMaxRules = 65000;  // rule indices fit FlowEntry::rule_index (uint16)

// What a limit is counted per: the rule and the flow's source service, or the rule and
// the flow's inside address.
enum : uint8_t { kPerService = 0, kPerSource = 1 };
enum : uint16_t {
  kLimitNewFlows = 1u << 0,  // new_flows_per_s and burst are set
  kLimitBytes = 1u << 1,     // bytes_per_s and bytes_burst are set
  kLimitMaxFlows = 1u << 2,  // max_flows is set
};

// A rule's rate limit and connection quota (an allow rule of an enforcing ruleset).
struct LimitRec {
  uint32_t rule;         // rule index
  uint16_t flags;        // kLimit*
  uint8_t per;           // kPer*: the token buckets' key
  uint8_t over_action;   // kActionDeny or kActionReject: a new flow over the rate or quota
  uint32_t new_flows_per_s;  // >= 1
  uint32_t burst;            // new flows at once, >= 1
  uint64_t bytes_per_s;      // >= 1; each direction of the key's flows separately
  uint64_t bytes_burst;      // >= 1
  uint32_t max_flows;        // concurrent flows of the key, >= 1
  uint8_t max_flows_per;     // kPer*
  uint8_t reserved[3];       // 0
};
static_assert(sizeof(LimitRec) == 40);

// An inspect rule. Its rule index (FlowEntry::rule_index, flow records) is the rule
// count + its inspect index, so rules and inspect rules together stay within kMaxRules.
struct InspectRec {
  StrRef id;
  uint8_t action;  // kActionDeny or kActionReject
  uint8_t reserved0;
  uint16_t flags;       // kRuleFromAny only
  uint32_t from_first;  // into kSecRuleFrom (ignored with kRuleFromAny)
  uint32_t from_count;
  uint32_t reserved1;
};
static_assert(sizeof(InspectRec) == 24);

constexpr uint32_t kMaxInspectRules = 4096;  // per-rule match counters of a worker
// Per-flow Hyperscan stream state: the dataplane gives every inspected flow one block of
// this size (hs_stream_size of the database must fit; the compiler refuses larger sets).
constexpr uint32_t kInspectStreamBlock = 2048;

// FNV-1a, 64 bit: the blob checksum (corruption and truncation, not authentication).
inline uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace egw::abi
