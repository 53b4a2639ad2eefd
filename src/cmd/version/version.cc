#include "cmd/version/version.h"

// Generated into the build tree by cmake/WriteVersionStamp.cmake; defines
// ETCDPP_RELEASE and ETCDPP_GIT_COMMIT as string literals.
#include "version_stamp.h"

namespace etcdpp::version {

std::string_view Release() { return ETCDPP_RELEASE; }

std::string_view GitCommit() { return ETCDPP_GIT_COMMIT; }

std::string_view Compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " __VERSION__;
#else
  return "unknown";
#endif
}

std::string_view OsArch() {
#if defined(__linux__) && defined(__x86_64__)
  return "linux/amd64";
#elif defined(__linux__) && defined(__aarch64__)
  return "linux/arm64";
#elif defined(__linux__)
  return "linux/unknown";
#else
  return "unknown/unknown";
#endif
}

std::string ServerVersionText() {
  std::string text;
  text.append("etcdpp Version: ").append(Release());
  text.append("\nGit SHA: ").append(GitCommit());
  text.append("\nCompiler: ").append(Compiler());
  text.append("\nOS/Arch: ").append(OsArch());
  text.append("\nAPI version: ").append(kApiVersion);
  return text;
}

}  // namespace etcdpp::version
