// What a build of etcdpp is: its release, the git commit it was built from,
// the compiler, the platform, and the etcd API it speaks. The programs print
// it (`etcdpp --version`, `etcdppctl version`) in the line format of etcd's
// own programs, which scripts parse.
//
// The release comes from project(VERSION) in CMakeLists.txt; the commit is
// looked up at every build (cmake/WriteVersionStamp.cmake), so a binary never
// reports the commit of an older configure. Stateless; any thread.
#pragma once

#include <string>
#include <string_view>

namespace etcdpp::version {

// The etcd v3 API generation etcdpp is wire-compatible with ("3.4").
inline constexpr std::string_view kApiVersion = "3.4";

// etcdpp's own release, e.g. "0.1.0".
std::string_view Release();

// Short hash of the commit built, with "-dirty" when the tree had
// uncommitted changes; "unknown" when built outside a git checkout.
std::string_view GitCommit();

// Compiler name and version, e.g. "GCC 12.2.0".
std::string_view Compiler();

// Go's naming for the target, as etcd prints it: "linux/amd64".
std::string_view OsArch();

// `etcdpp --version`: one "Name: value" per line, no trailing newline.
std::string ServerVersionText();

}  // namespace etcdpp::version
