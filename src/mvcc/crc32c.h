// CRC-32C (Castagnoli), the checksum etcd uses for HashKV.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace etcdpp::mvcc {

namespace internal {
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
inline constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();
}  // namespace internal

// Extends `crc` (0 to start) with `data`.
inline uint32_t Crc32cExtend(uint32_t crc, std::string_view data) {
  uint32_t c = ~crc;
  for (unsigned char b : data) c = internal::kCrc32cTable[(c ^ b) & 0xff] ^ (c >> 8);
  return ~c;
}

}  // namespace etcdpp::mvcc
