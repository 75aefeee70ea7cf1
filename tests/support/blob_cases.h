// Negative tables for the policy loader: a corruption of a good blob and the error it
// must be refused with. Shared by the loader's tests of every section (policy_test,
// policy_names_test, policy_inspect_test).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <span>
#include <string>

#include "dataplane/policy.h"
#include "tests/support/blob_builder.h"

namespace egw::test {

struct BlobCorruption {
  const char* desc;
  std::function<void(Blob&)> corrupt;
  const char* want;  // substring of the error
};

// Every corruption of `good` is refused, with an error that names it and says where it
// comes from ("policy blob: ...").
inline void expect_refused(const Blob& good, std::span<const BlobCorruption> cases) {
  std::string err;
  for (const BlobCorruption& c : cases) {
    SCOPED_TRACE(c.desc);
    Blob b = good;
    c.corrupt(b);
    err.clear();
    EXPECT_EQ(RuntimePolicy::load(b.data(), b.size(), &err), nullptr);
    EXPECT_NE(err.find(c.want), std::string::npos) << "error: " << err;
    EXPECT_EQ(err.rfind("policy blob: ", 0), 0u) << err;
  }
}

}  // namespace egw::test
