// A fresh directory under /tmp for one test, removed with everything in it when the test
// ends. Test-only; used by the management-plane tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace egw::test {

class TempDir {
 public:
  // /tmp/egw-WHAT-XXXXXX
  explicit TempDir(const std::string& what = "test") {
    std::string tmpl = "/tmp/egw-" + what + "-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr) << "mkdtemp " << tmpl;
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes text to path()/name with mode 0600 (what secrets need); returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string f = path_ + "/" + name;
    std::ofstream(f) << text;
    chmod(f.c_str(), 0600);
    return f;
  }

 private:
  std::string path_;
};

}  // namespace egw::test
