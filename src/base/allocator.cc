#include "base/allocator.h"

#include <cstddef>

// Declared weak so that binaries without jemalloc (sanitizer builds, the
// tests) link, with the symbol null.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace etcdpp {

bool ReturnFreePagesToSystem() {
  if (mallctl == nullptr) return false;
  // 4096 is MALLCTL_ARENAS_ALL (jemalloc 5): the command purges every arena.
  return mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0;
}

}  // namespace etcdpp
