// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78): the
// checksum of every WAL record and snapshot file.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run
// time), a slicing-by-8 table otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace etcdpp::crc32c {

// Returns the CRC-32C of concat(A, data[0, n)) where `crc` is the CRC-32C of
// some string A. Extend(0, data, n) is the CRC of data alone, so records can
// be checksummed piecewise without copying them together.
uint32_t Extend(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Masking (as in leveldb): the CRC of a string that embeds its own CRCs is
// weak, so stored CRCs are rotated and offset. Store Mask(crc), compare
// Unmask(stored) with the recomputed CRC.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// Exposed for tests: the two implementations behind Extend.
namespace internal {
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
// Null when the CPU (or build target) has no SSE4.2.
using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);
ExtendFn HardwareExtend();
}  // namespace internal

}  // namespace etcdpp::crc32c
