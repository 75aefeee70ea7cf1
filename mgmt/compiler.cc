// Policy compiler: a validated rules::Policy -> the blob of dataplane/policy_abi.h.
// Management side (egw-mgmt request threads, egwctl); pure, never throws.
#include "mgmt/compiler.h"

#include <hs.h>
#include <json/json.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <thread>
#include <type_traits>

#include "dataplane/l7/domain_table.h"
#include "dataplane/policy_abi.h"
#include "rules/names.h"

namespace egw::mgmt {

namespace {

// One section body under construction.
struct Section {
  uint32_t type;
  uint32_t elem_size;
  std::string bytes;

  template <typename T>
  uint32_t push(const T& rec) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint32_t index = static_cast<uint32_t>(bytes.size() / sizeof(T));
    bytes.append(reinterpret_cast<const char*>(&rec), sizeof(T));
    return index;
  }
  uint32_t count() const { return static_cast<uint32_t>(bytes.size() / elem_size); }
};

uint8_t action_code(rules::Action a) {
  switch (a) {
    case rules::Action::allow:
      return abi::kActionAllow;
    case rules::Action::reject:
      return abi::kActionReject;
    case rules::Action::deny:
      break;
  }
  return abi::kActionDeny;
}

uint8_t proto_code(rules::Proto p) {
  switch (p) {
    case rules::Proto::tcp:
      return abi::kProtoTcp;
    case rules::Proto::udp:
      return abi::kProtoUdp;
    case rules::Proto::icmp:
      return abi::kProtoIcmp;
    case rules::Proto::any:
      break;
  }
  return abi::kProtoAny;
}

uint8_t per_code(rules::LimitPer p) {
  return p == rules::LimitPer::source ? abi::kPerSource : abi::kPerService;
}

// The LimitRec of rule `index`: the rate limit and quota it has (at least one). A quota
// alone refuses with reject, rate_limit's default "over".
abi::LimitRec limit_rec(const rules::Rule& r, uint32_t index) {
  abi::LimitRec rec{};
  rec.rule = index;
  rec.over_action = abi::kActionReject;
  if (const auto& rl = r.rate_limit) {
    rec.per = per_code(rl->per);
    rec.over_action = action_code(rl->over);
    if (rl->new_flows_per_s > 0) {
      rec.flags |= abi::kLimitNewFlows;
      rec.new_flows_per_s = rl->new_flows_per_s;
      rec.burst = rl->burst;
    }
    if (rl->bytes_per_s > 0) {
      rec.flags |= abi::kLimitBytes;
      rec.bytes_per_s = rl->bytes_per_s;
      rec.bytes_burst = rl->bytes_burst;
    }
  }
  if (const auto& q = r.max_flows) {
    rec.flags |= abi::kLimitMaxFlows;
    rec.max_flows = q->count;
    rec.max_flows_per = per_code(q->per);
  }
  return rec;
}

abi::CidrRec cidr_rec(const rules::Cidr& c, uint32_t ref) {
  abi::CidrRec r{};
  r.family = c.family;
  r.prefix = c.prefix;
  r.ref = ref;
  memcpy(r.addr, c.addr.data(), sizeof(r.addr));
  return r;
}

void add_error(CompileResult& res, std::string path, std::string message) {
  if (res.errors.size() < rules::kMaxErrors)
    res.errors.push_back({std::move(path), std::move(message)});
}

// The limits of the format: a rule index (rules, then inspect rules) fits 16 bits.
void check_supported(const rules::Policy& p, CompileResult& res) {
  size_t total = 0;
  for (const rules::Ruleset& rs : p.rulesets) total += rs.rules.size();
  if (total > abi::kMaxRules)
    add_error(
        res, "/rulesets",
        std::to_string(total) + " rules: more than the limit of " + std::to_string(abi::kMaxRules));
  if (p.inspect.size() > abi::kMaxInspectRules)
    add_error(res, "/inspect",
              std::to_string(p.inspect.size()) + " inspect rules: more than the limit of " +
                  std::to_string(abi::kMaxInspectRules));
  else if (total <= abi::kMaxRules && total + p.inspect.size() > abi::kMaxRules)
    add_error(res, "/inspect",
              std::to_string(total) + " rules and " + std::to_string(p.inspect.size()) +
                  " inspect rules: more than the limit of " + std::to_string(abi::kMaxRules) +
                  " together");
}

bool sha256(std::string_view data, uint8_t out[32]) {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
}

// One to.domain_regex pattern of the flattened rules: its rule index and JSON path.
struct RegexEntry {
  const std::string* pattern;
  uint32_t rule;
  std::string path;
};

// Compiles entries [first, first + count) into one block-mode database (id = rule index)
// and appends its serialization to *out. On failure adds one error: at the pattern
// Hyperscan names, else at the part's first pattern (the part as a whole, e.g. too large).
bool compile_regex_part(const std::vector<RegexEntry>& entries, size_t first, size_t count,
                        std::string* out, CompileResult& res) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (size_t i = first; i < first + count; ++i) {
    exprs.push_back(entries[i].pattern->c_str());
    flags.push_back(rules::domain_regex_flags());
    ids.push_back(entries[i].rule);
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* cerr = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(count),
                       HS_MODE_BLOCK, rules::domain_regex_platform(), &db, &cerr) != HS_SUCCESS) {
    const int at = cerr ? cerr->expression : -1;
    std::string msg = cerr && cerr->message ? cerr->message : "unknown error";
    hs_free_compile_error(cerr);
    const bool one = at >= 0 && static_cast<size_t>(at) < count;
    add_error(res, entries[first + (one ? at : 0)].path,
              std::string(one ? "Hyperscan cannot compile the pattern: \""
                              : "Hyperscan cannot compile the domain_regex patterns together "
                                "(this one and the next " +
                                    std::to_string(count - 1) + " form one database): \"") +
                  msg + "\"");
    return false;
  }
  char* bytes = nullptr;
  size_t len = 0;
  hs_error_t rc = hs_serialize_database(db, &bytes, &len);
  hs_free_database(db);
  if (rc != HS_SUCCESS) {
    add_error(res, entries[first].path,
              "serializing the Hyperscan database failed (error " + std::to_string(rc) + ")");
    return false;
  }
  out->append(bytes, len);
  free(bytes);  // Hyperscan's default allocator is malloc
  return true;
}

// Section 10: the patterns (in rule order) cut into equal parts of at most part_patterns,
// each its own database, behind the part table (abi::RegexDbHeader).
bool compile_regex_db(const std::vector<RegexEntry>& entries, size_t part_patterns,
                      std::string* out, CompileResult& res) {
  const size_t parts = (entries.size() + part_patterns - 1) / part_patterns;
  if (parts > abi::kMaxRegexParts) {
    add_error(res, entries[0].path,
              std::to_string(entries.size()) + " domain_regex patterns, more than the " +
                  std::to_string(abi::kMaxRegexParts * part_patterns) + " a policy can hold");
    return false;
  }
  // The parts compile on every core at once (Hyperscan compiles are independent and
  // thread-safe): a 10k-pattern policy costs one part's time per core, not four. Each
  // part's bytes and errors are its own, assembled in order, so the blob and the error
  // reported (the first failing part's) do not depend on the threads.
  std::vector<size_t> first(parts + 1, 0);
  for (size_t k = 0; k < parts; ++k)  // the first entries % parts parts take one more
    first[k + 1] = first[k] + entries.size() / parts + (k < entries.size() % parts);
  std::vector<std::string> part_bytes(parts);
  std::vector<CompileResult> part_res(parts);
  std::vector<char> ok(parts, 0);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < parts;)
      ok[k] = compile_regex_part(entries, first[k], first[k + 1] - first[k], &part_bytes[k],
                                 part_res[k]);
  };
  const size_t threads =
      std::min<size_t>(parts, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (size_t k = 0; k < parts; ++k) {
    if (ok[k]) continue;
    for (auto& e : part_res[k].errors) res.errors.push_back(std::move(e));
    return false;
  }

  auto align8 = [](size_t x) { return (x + 7) & ~size_t{7}; };
  std::vector<abi::RegexDbPart> table(parts);
  std::string bodies;
  const size_t body0 = sizeof(abi::RegexDbHeader) + parts * sizeof(abi::RegexDbPart);
  for (size_t k = 0; k < parts; ++k) {
    bodies.resize(align8(bodies.size()), '\0');
    table[k].offset = body0 + bodies.size();
    bodies += part_bytes[k];
    table[k].size = part_bytes[k].size();
  }
  const abi::RegexDbHeader h{static_cast<uint32_t>(parts), 0};
  out->assign(reinterpret_cast<const char*>(&h), sizeof(h));
  out->append(reinterpret_cast<const char*>(table.data()), parts * sizeof(abi::RegexDbPart));
  out->append(bodies);
  return true;
}

// One inspect pattern: its inspect index and JSON path.
struct PatternEntry {
  const std::string* pattern;
  uint32_t inspect;
  std::string path;
};

std::string hs_compile_message(hs_compile_error_t* e) {
  std::string m = e && e->message ? e->message : "unknown error";
  hs_free_compile_error(e);
  return m;
}

// Compiles every inspect pattern into one stream-mode database (id = inspect index) and
// serializes it into *out. Refuses a set whose per-flow stream state would not fit the
// dataplane's block. A set Hyperscan refuses without naming a pattern is compiled one
// pattern at a time to find the ones it refuses (the failure path only).
bool compile_inspect_db(const std::vector<PatternEntry>& entries, std::string* out,
                        CompileResult& res) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (const PatternEntry& e : entries) {
    exprs.push_back(e.pattern->c_str());
    flags.push_back(rules::inspect_pattern_flags());
    ids.push_back(e.inspect);
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* cerr = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                       HS_MODE_STREAM, rules::domain_regex_platform(), &db, &cerr) != HS_SUCCESS) {
    const int at = cerr ? cerr->expression : -1;
    const std::string msg = hs_compile_message(cerr);
    if (at >= 0 && static_cast<size_t>(at) < entries.size()) {
      add_error(res, entries[at].path, "Hyperscan cannot compile it: \"" + msg + "\"");
      return false;
    }
    size_t named = 0;
    for (const PatternEntry& e : entries) {
      hs_database_t* one = nullptr;
      if (hs_compile(e.pattern->c_str(), rules::inspect_pattern_flags(), HS_MODE_STREAM,
                     rules::domain_regex_platform(), &one, &cerr) != HS_SUCCESS) {
        add_error(res, e.path, "Hyperscan cannot compile it: \"" + hs_compile_message(cerr) + "\"");
        ++named;
      }
      hs_free_database(one);
    }
    if (named == 0)
      add_error(res, "/inspect",
                "Hyperscan cannot compile the inspect patterns together (all of them form one "
                "database): \"" +
                    msg + "\"");
    return false;
  }
  size_t state = 0;
  hs_error_t rc = hs_stream_size(db, &state);
  if (rc == HS_SUCCESS && state > abi::kInspectStreamBlock) {
    hs_free_database(db);
    add_error(res, "/inspect",
              "the inspect patterns need " + std::to_string(state) +
                  " bytes of stream state per flow, more than the dataplane's " +
                  std::to_string(abi::kInspectStreamBlock) +
                  "-byte block: use fewer patterns, or shorter bounded repeats and windows");
    return false;
  }
  char* bytes = nullptr;
  size_t len = 0;
  if (rc == HS_SUCCESS) rc = hs_serialize_database(db, &bytes, &len);
  hs_free_database(db);
  if (rc != HS_SUCCESS) {
    add_error(res, "/inspect",
              "serializing the Hyperscan database failed (error " + std::to_string(rc) + ")");
    return false;
  }
  out->assign(bytes, len);
  free(bytes);  // Hyperscan's default allocator is malloc
  return true;
}

// Lays out header, section table and 8-byte aligned bodies; fills size and checksum.
std::string assemble(std::vector<Section>& sections, uint64_t version, const uint8_t sha[32]) {
  abi::PolicyHeader h{};
  h.magic = abi::kPolicyMagic;
  h.abi_version = abi::kPolicyAbiVersion;
  h.header_size = sizeof(abi::PolicyHeader);
  h.policy_version = version;
  h.section_count = static_cast<uint32_t>(sections.size());
  memcpy(h.source_sha256, sha, 32);
  auto align8 = [](uint64_t x) { return (x + 7) & ~uint64_t{7}; };
  uint64_t off = align8(sizeof(h) + sections.size() * sizeof(abi::SectionEntry));
  std::vector<abi::SectionEntry> table;
  for (const Section& s : sections) {
    table.push_back({s.type, s.elem_size, off, s.bytes.size()});
    off = align8(off + s.bytes.size());
  }
  h.total_size = off;
  std::string blob(off, '\0');
  memcpy(blob.data() + sizeof(h), table.data(), table.size() * sizeof(abi::SectionEntry));
  for (size_t i = 0; i < sections.size(); ++i)
    memcpy(blob.data() + table[i].offset, sections[i].bytes.data(), sections[i].bytes.size());
  h.checksum = abi::fnv1a64(reinterpret_cast<const uint8_t*>(blob.data()) + sizeof(h),
                            blob.size() - sizeof(h));
  memcpy(blob.data(), &h, sizeof(h));
  return blob;
}

CompileResult compile(const rules::Policy& p, std::string_view source, uint64_t version,
                      size_t regex_part_patterns) {
  CompileResult res;
  check_supported(p, res);
  if (!res.errors.empty()) return res;

  Section settings{abi::kSecSettings, sizeof(abi::Settings), {}};
  Section strings{abi::kSecStrings, 1, {}};
  Section services{abi::kSecServices, sizeof(abi::ServiceRec), {}};
  Section service_cidrs{abi::kSecServiceCidrs, sizeof(abi::CidrRec), {}};
  Section rules{abi::kSecRules, sizeof(abi::RuleRec), {}};
  Section rule_from{abi::kSecRuleFrom, sizeof(uint32_t), {}};
  Section rule_ports{abi::kSecRulePorts, sizeof(abi::PortRange), {}};
  Section rule_cidrs{abi::kSecRuleCidrs, sizeof(abi::CidrRec), {}};
  Section domain_table{abi::kSecDomainTable, 1, {}};
  Section regex_db{abi::kSecNameRegexDb, 1, {}};
  Section inspect{abi::kSecInspect, sizeof(abi::InspectRec), {}};
  Section inspect_db{abi::kSecInspectDb, 1, {}};
  Section limits{abi::kSecRuleLimits, sizeof(abi::LimitRec), {}};
  l7::DomainTableBuilder domains;
  std::vector<RegexEntry> regexes;
  std::vector<PatternEntry> patterns;

  // Strings are NUL-terminated in the section (length excludes the NUL) so the
  // dataplane can hand out const char* without copying.
  auto str = [&](const std::string& s) {
    abi::StrRef ref{static_cast<uint32_t>(strings.bytes.size()), static_cast<uint32_t>(s.size())};
    strings.bytes += s;
    strings.bytes += '\0';
    return ref;
  };

  abi::Settings st{};
  st.default_action = action_code(p.default_action);
  st.established_mode = p.established_keep ? abi::kEstablishedKeep : abi::kEstablishedReevaluate;
  st.l7_max_bytes = p.limits.l7_max_bytes;
  st.l7_timeout_ms = p.limits.l7_timeout_ms;
  st.tcp_syn_s = p.limits.tcp_syn_s;
  st.tcp_established_s = p.limits.tcp_established_s;
  st.tcp_closing_s = p.limits.tcp_closing_s;
  st.udp_s = p.limits.udp_s;
  st.icmp_s = p.limits.icmp_s;
  st.max_flows = p.limits.max_flows;
  st.inspect_max_bytes = p.limits.inspect_max_bytes;
  settings.push(st);

  std::map<std::string, uint32_t> service_index;
  for (const rules::Service& s : p.services) {
    abi::ServiceRec rec{};
    rec.name = str(s.name);
    rec.cidr_first = service_cidrs.count();
    uint32_t index = services.count();
    for (const rules::Cidr& c : s.cidrs) service_cidrs.push(cidr_rec(c, index));
    rec.cidr_count = service_cidrs.count() - rec.cidr_first;
    service_index[s.name] = services.push(rec);
    res.stats.service_cidrs += s.cidrs.size();
  }

  for (size_t ri = 0; ri < p.rulesets.size(); ++ri) {
    const bool report = p.rulesets[ri].report;
    for (const rules::Rule& r : p.rulesets[ri].rules) {
      abi::RuleRec rec{};
      rec.id = str(r.id);
      rec.action = action_code(r.action);
      rec.proto = proto_code(r.proto);
      const uint32_t index = rules.count();
      rec.flags = r.from_any ? abi::kRuleFromAny : 0;
      if (!r.to_domains.empty() || !r.to_domain_regex.empty()) rec.flags |= abi::kRuleNeedsName;
      if (report) {
        rec.flags |= abi::kRuleReport;
        ++res.stats.report_rules;
      }
      if (r.rate_limit || r.max_flows) limits.push(limit_rec(r, index));
      res.stats.rate_limited_rules += r.rate_limit.has_value();
      res.stats.max_flows_rules += r.max_flows.has_value();
      rec.ruleset = static_cast<uint32_t>(ri);
      rec.from_first = rule_from.count();
      if (!r.from_any) {
        for (const std::string& name : r.from) {
          auto it = service_index.find(name);
          if (it == service_index.end()) {
            add_error(res, r.path + "/from", "unknown service \"" + name + "\"");
            continue;
          }
          rule_from.push(it->second);
        }
      }
      rec.from_count = rule_from.count() - rec.from_first;
      rec.port_first = rule_ports.count();
      for (const rules::PortRange& pr : r.ports) rule_ports.push(abi::PortRange{pr.lo, pr.hi});
      rec.port_count = rule_ports.count() - rec.port_first;
      rec.cidr_first = rule_cidrs.count();
      for (const rules::Cidr& c : r.to_cidrs) rule_cidrs.push(cidr_rec(c, 0));
      rec.cidr_count = rule_cidrs.count() - rec.cidr_first;
      for (size_t k = 0; k < r.to_domains.size(); ++k) {
        std::string why;
        if (!domains.add(r.to_domains[k], index, &why))
          add_error(res, r.path + "/to/domains/" + std::to_string(k), why);
      }
      for (size_t k = 0; k < r.to_domain_regex.size(); ++k)
        regexes.push_back(
            {&r.to_domain_regex[k], index, r.path + "/to/domain_regex/" + std::to_string(k)});
      res.stats.domains += r.to_domains.size();
      res.stats.regexes += r.to_domain_regex.size();
      rules.push(rec);
    }
  }
  for (const rules::InspectRule& in : p.inspect) {
    abi::InspectRec rec{};
    rec.id = str(in.id);
    rec.action = action_code(in.action);
    rec.flags = in.from_any ? abi::kRuleFromAny : 0;
    rec.from_first = rule_from.count();
    if (!in.from_any) {
      for (const std::string& name : in.from) {
        auto it = service_index.find(name);
        if (it == service_index.end()) {
          add_error(res, in.path + "/from", "unknown service \"" + name + "\"");
          continue;
        }
        rule_from.push(it->second);
      }
    }
    rec.from_count = rule_from.count() - rec.from_first;
    const uint32_t index = inspect.push(rec);
    for (size_t k = 0; k < in.patterns.size(); ++k)
      patterns.push_back({&in.patterns[k], index, in.path + "/patterns/" + std::to_string(k)});
  }
  if (!res.errors.empty()) return res;
  if (!regexes.empty() && !compile_regex_db(regexes, regex_part_patterns, &regex_db.bytes, res))
    return res;
  if (!patterns.empty() && !compile_inspect_db(patterns, &inspect_db.bytes, res)) return res;
  if (strings.bytes.size() > UINT32_MAX) {
    add_error(res, "", "names and ids take more than 4 GiB");
    return res;
  }

  uint8_t sha[32];
  if (!sha256(source, sha)) {
    add_error(res, "", "SHA-256 of the source document failed (OpenSSL)");
    return res;
  }
  std::vector<Section> all = {settings, strings,   services,   service_cidrs,
                              rules,    rule_from, rule_ports, rule_cidrs};
  if (domains.size() > 0) {
    domain_table.bytes = domains.build();
    all.push_back(std::move(domain_table));
  }
  if (!regexes.empty()) all.push_back(std::move(regex_db));
  if (!patterns.empty()) {
    all.push_back(std::move(inspect));
    all.push_back(std::move(inspect_db));
  }
  if (limits.count() > 0) all.push_back(std::move(limits));
  res.blob = assemble(all, version, sha);
  if (res.blob.size() > abi::kPolicyMaxSize) {
    res.blob.clear();
    add_error(res, "", "compiled policy larger than the 1 GiB limit");
    return res;
  }
  res.stats.services = p.services.size();
  res.stats.rulesets = p.rulesets.size();
  res.stats.rules = rules.count();
  res.stats.inspect_rules = p.inspect.size();
  res.stats.inspect_patterns = patterns.size();
  return res;
}

}  // namespace

CompileResult compile_policy(const rules::Policy& policy, std::string_view source_document,
                             uint64_t policy_version, size_t regex_part_patterns) {
  try {
    return compile(policy, source_document, policy_version,
                   std::max<size_t>(regex_part_patterns, 1));
  } catch (const std::exception& e) {
    CompileResult res;
    res.errors.push_back({"", std::string("compiler failed: ") + e.what()});
    return res;
  }
}

CompileResult compile_document(std::string_view json, uint64_t policy_version) {
  rules::ParseResult parsed = rules::parse_policy(json);
  if (!parsed.policy) {
    CompileResult res;
    res.errors = std::move(parsed.errors);
    return res;
  }
  return compile_policy(*parsed.policy, json, policy_version);
}

Json::Value compile_stats_json(const CompileResult& cr) {
  Json::Value stats(Json::objectValue);
  stats["services"] = Json::UInt64(cr.stats.services);
  stats["service_cidrs"] = Json::UInt64(cr.stats.service_cidrs);
  stats["rulesets"] = Json::UInt64(cr.stats.rulesets);
  stats["rules"] = Json::UInt64(cr.stats.rules);
  stats["domains"] = Json::UInt64(cr.stats.domains);
  stats["regexes"] = Json::UInt64(cr.stats.regexes);
  stats["inspect_rules"] = Json::UInt64(cr.stats.inspect_rules);
  stats["inspect_patterns"] = Json::UInt64(cr.stats.inspect_patterns);
  stats["rate_limited_rules"] = Json::UInt64(cr.stats.rate_limited_rules);
  stats["max_flows_rules"] = Json::UInt64(cr.stats.max_flows_rules);
  stats["report_rules"] = Json::UInt64(cr.stats.report_rules);
  stats["compiled_bytes"] = Json::UInt64(cr.blob.size());
  return stats;
}

}  // namespace egw::mgmt
