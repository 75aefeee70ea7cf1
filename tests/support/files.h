// Test-only: reading a whole file through the project's own egw::read_file.
#pragma once

#include <string>

#include "dataplane/policy.h"

namespace egw::test {

// The file's bytes, or "" when it cannot be read (tests compare against expectations).
inline std::string file_text(const std::string& path) {
  std::string text, err;
  return read_file(path, &text, &err) ? text : std::string();
}

}  // namespace egw::test
