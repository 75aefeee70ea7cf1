// Test-only: a serialized Hyperscan database, to put into a blob's name-regex or inspect
// section for loader tests. Header-only.
#pragma once

#include <hs.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace egw::test {

// The patterns (ids 0, 1, ...) compiled with `flags` in `mode` and serialized; "" when
// Hyperscan refuses them.
inline std::string serialized_hs_db(const std::vector<std::string>& patterns, unsigned flags,
                                    unsigned mode) {
  std::vector<const char*> exprs;
  std::vector<unsigned> all_flags, ids;
  for (size_t i = 0; i < patterns.size(); ++i) {
    exprs.push_back(patterns[i].c_str());
    all_flags.push_back(flags);
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), all_flags.data(), ids.data(),
                       static_cast<unsigned>(exprs.size()), mode, nullptr, &db,
                       &err) != HS_SUCCESS) {
    hs_free_compile_error(err);
    return {};
  }
  char* bytes = nullptr;
  size_t len = 0;
  std::string out;
  if (hs_serialize_database(db, &bytes, &len) == HS_SUCCESS) out.assign(bytes, len);
  free(bytes);  // Hyperscan's default allocator is malloc
  hs_free_database(db);
  return out;
}

}  // namespace egw::test
