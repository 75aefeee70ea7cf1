// libFuzzer target: rules::parse_policy over arbitrary bytes and, when the document is
// valid, mgmt::compile_policy, whose blob must be self-consistent. No EAL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "dataplane/policy_abi.h"
#include "mgmt/compiler.h"
#include "rules/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  egw::rules::ParseResult parsed = egw::rules::parse_policy(text);
  if (parsed.errors.size() > egw::rules::kMaxErrors) abort();
  if (parsed.policy.has_value() != parsed.errors.empty()) abort();
  if (!parsed.policy) return 0;
  egw::mgmt::CompileResult res = egw::mgmt::compile_policy(*parsed.policy, text, 1);
  if (res.errors.empty() == res.blob.empty()) abort();
  if (res.blob.empty()) return 0;
  egw::abi::PolicyHeader h;
  if (res.blob.size() < sizeof(h)) abort();
  memcpy(&h, res.blob.data(), sizeof(h));
  const auto* b = reinterpret_cast<const uint8_t*>(res.blob.data());
  if (h.magic != egw::abi::kPolicyMagic || h.total_size != res.blob.size() ||
      h.checksum != egw::abi::fnv1a64(b + h.header_size, h.total_size - h.header_size))
    abort();
  return 0;
}
