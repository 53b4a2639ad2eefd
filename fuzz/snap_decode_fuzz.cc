// libFuzzer target for the snapshot file decoder: arbitrary bytes must be
// rejected or decoded, never crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "snap/snapshotter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)etcdpp::snap::DecodeSnapshotFile(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
