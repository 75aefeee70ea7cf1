// Runtime policy: a validated compiled blob turned into look-up structures
// (rte_lpm/rte_lpm6 for source services, rte_acl for the ordered rules).
// Built by the control thread (allocates); read-only and shared by all workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/flow_table.h"
#include "dataplane/policy_abi.h"

namespace egw {

struct Decision {
  Verdict verdict;
  uint16_t rule_index;  // kNoRule when the default action decided
};

class RuntimePolicy {
 public:
  // Validates blob (magic, ABI version, sizes, checksum, every offset and index)
  // and builds the look-up structures. Returns nullptr and sets *err on any problem;
  // never reads outside [blob, blob + len). Needs the EAL (rte_acl/rte_lpm memory).
  static std::unique_ptr<RuntimePolicy> load(const uint8_t* blob, size_t len, std::string* err);
  ~RuntimePolicy();

  // Decides a new flow: the source service of key.inside_ip (longest prefix), then
  // the first rule whose every condition matches, else the default action.
  // Worker lcores: no allocation, no locks.
  Decision classify(const FlowKey& key) const;
  // Same decision for up to 64 keys at once (bulk rte_acl_classify).
  void classify_bulk(const FlowKey* const* keys, unsigned n, Decision* out) const;

  uint64_t version() const;
  const char* rule_id(uint16_t rule_index) const;  // "" for kNoRule
  size_t rule_count() const;
  FlowTimeouts timeouts() const;
  const abi::Settings& settings() const;
  // Source service index (0-based) of an inside address, or -1 when none.
  int service_of(const FlowKey& key) const;

  struct Impl;

 private:
  RuntimePolicy() = default;
  std::unique_ptr<Impl> impl_;
};

// Reads a whole file (a compiled policy) into memory; control thread, start-up.
bool read_file(const std::string& path, std::string* out, std::string* err);

}  // namespace egw
