// libFuzzer target: arbitrary bytes into RuntimePolicy::load (the compiled policy blob
// loader), then a few classifications (and name decisions, with names made from the
// input) when a blob is accepted. Needs the EAL (rte_lpm, rte_acl memory): initialised
// once, without hugepages or devices.
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/policy.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string prefix = "egw-fuzz-blob-" + std::to_string(getpid());
  std::vector<std::string> args = {"fuzz_blob",
                                   "--no-huge",
                                   "--no-pci",
                                   "--no-shconf",
                                   "-m",
                                   "256",
                                   "-l",
                                   "0",
                                   "--log-level=lib.*:critical",
                                   "--file-prefix",
                                   prefix};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    fprintf(stderr, "fuzz_blob: rte_eal_init failed\n");
    abort();
  }
  return 0;
}

namespace {

// Loads one blob; when accepted, classifies keys made from its bytes, one by one and in bulk.
void exercise(const uint8_t* data, size_t size) {
  std::string err;
  auto p = egw::RuntimePolicy::load(data, size, &err);
  if (!p) {
    if (err.empty()) abort();  // every refusal must say why
    return;
  }
  egw::FlowKey keys[4] = {};
  const egw::FlowKey* ptrs[4];
  for (unsigned i = 0; i < 4; ++i) {
    egw::FlowKey& k = keys[i];
    size_t n = size < sizeof(k) ? size : sizeof(k);
    std::memcpy(&k, data + (size - n) * i / 4, n);
    k.family = (i & 1) ? 6 : 4;
    ptrs[i] = &k;
    egw::Decision d = p->classify(k);
    if (d.rule_index != egw::kNoRule && d.rule_index >= p->rule_count()) abort();
    (void)p->rule_id(d.rule_index);
    (void)p->service_of(k);
    if (d.needs_name != (d.first_index != egw::kNoRule)) abort();
    if (d.needs_name) {
      if (!p->has_name_rules() || d.first_index >= p->rule_count()) abort();
      egw::l7::Name name;
      size_t off = size * i / 4, len = size - off < 64 ? size - off : 64;
      bool named = egw::l7::normalize_name(data + off, len, &name);
      const egw::l7::Name* names[2] = {named ? &name : nullptr, nullptr};
      for (const egw::l7::Name* np : names) {
        egw::Decision f = p->decide_name(k, d, np, 0);
        if (f.needs_name || (f.rule_index != egw::kNoRule && f.rule_index >= p->rule_count()))
          abort();
        if (f.rule_index < d.first_index && f.rule_index != d.rule_index) abort();
      }
    }
  }
  egw::Decision out[4];
  p->classify_bulk(ptrs, 4, out);
  for (unsigned i = 0; i < 4; ++i) {
    egw::Decision one = p->classify(keys[i]);
    if (out[i].rule_index != one.rule_index || out[i].needs_name != one.needs_name ||
        out[i].first_index != one.first_index)
      abort();
  }
  (void)p->timeouts();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exercise(data, size);
  // The same bytes with total_size and the checksum made right, so that mutations reach
  // the section table and contents instead of stopping at the checksum.
  if (size < sizeof(egw::abi::PolicyHeader)) return 0;
  std::vector<uint8_t> fixed(data, data + size);
  egw::abi::PolicyHeader h;
  std::memcpy(&h, fixed.data(), sizeof(h));
  h.total_size = size;
  size_t from = h.header_size <= size ? h.header_size : size;
  h.checksum = egw::abi::fnv1a64(fixed.data() + from, size - from);
  std::memcpy(fixed.data(), &h, sizeof(h));
  if (std::memcmp(fixed.data(), data, sizeof(h)) != 0) exercise(fixed.data(), size);
  return 0;
}
