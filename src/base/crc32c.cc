#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define ETCDPP_CRC32C_HAVE_SSE42 1
#endif

namespace etcdpp::crc32c {
namespace {

constexpr uint32_t kPolynomial = 0x82f63b78u;  // Castagnoli, bit-reflected.

// kTables[0] is the classic byte-at-a-time table; kTables[k][b] is the CRC
// of byte b followed by k zero bytes, which lets the loop fold 8 bytes per step.
constexpr std::array<std::array<uint32_t, 256>, 8> MakeTables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    t[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr auto kTables = MakeTables();

inline uint32_t LoadLE32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) | (uint32_t{u[3]} << 24);
}

#ifdef ETCDPP_CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  uint64_t l = crc ^ 0xffffffffu;
  const char* p = data;
  // Align to 8 bytes so the 64-bit loads below are aligned.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    l = _mm_crc32_u8(static_cast<uint32_t>(l), static_cast<uint8_t>(*p++));
    --n;
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    l = _mm_crc32_u64(l, word);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    l = _mm_crc32_u8(static_cast<uint32_t>(l), static_cast<uint8_t>(*p++));
    --n;
  }
  return static_cast<uint32_t>(l) ^ 0xffffffffu;
}
#endif

internal::ExtendFn ChooseExtend() {
  if (auto hw = internal::HardwareExtend()) return hw;
  return internal::ExtendPortable;
}

}  // namespace

namespace internal {

uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n) {
  uint32_t l = crc ^ 0xffffffffu;
  const char* p = data;
  while (n >= 8) {
    uint32_t lo = LoadLE32(p) ^ l;
    uint32_t hi = LoadLE32(p + 4);
    l = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
        kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    l = kTables[0][(l ^ static_cast<uint8_t>(*p++)) & 0xff] ^ (l >> 8);
    --n;
  }
  return l ^ 0xffffffffu;
}

ExtendFn HardwareExtend() {
#ifdef ETCDPP_CRC32C_HAVE_SSE42
  if (__builtin_cpu_supports("sse4.2")) return ExtendSse42;
#endif
  return nullptr;
}

}  // namespace internal

uint32_t Extend(uint32_t crc, const char* data, size_t n) {
  static const internal::ExtendFn extend = ChooseExtend();
  return extend(crc, data, n);
}

}  // namespace etcdpp::crc32c
