// What the process's allocator gives back to the system.
#pragma once

namespace etcdpp {

// Hands the pages the allocator holds free back to the system now, where
// the allocator can (jemalloc, which the etcdpp binary links; elsewhere,
// sanitizer builds and tests, nothing happens). jemalloc returns freed
// pages only as later allocations tick its decay clock, so memory freed
// all at once by a quiet member (a closed store's page copies after a
// defragmentation) would otherwise stay resident. Returns whether it ran.
bool ReturnFreePagesToSystem();

}  // namespace etcdpp
