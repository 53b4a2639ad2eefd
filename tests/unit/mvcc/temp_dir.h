// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace etcdpp::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/etcdpp-test-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace etcdpp::testing
