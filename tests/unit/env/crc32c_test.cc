#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace etcdpp::crc32c {
namespace {

// Test vectors from RFC 3720 (iSCSI), B.4, as used by leveldb's crc32c_test.
TEST(Crc32cTest, StandardResults) {
  char buf[32];
  std::fill(buf, buf + 32, 0);
  EXPECT_EQ(0x8a9136aau, Value(buf, sizeof(buf)));
  std::fill(buf, buf + 32, '\xff');
  EXPECT_EQ(0x62a8ab43u, Value(buf, sizeof(buf)));
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(0x46dd794eu, Value(buf, sizeof(buf)));
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(0x113fdb5cu, Value(buf, sizeof(buf)));
  EXPECT_EQ(0xe3069283u, Value("123456789"));
}

TEST(Crc32cTest, ExtendChainsLikeOneCall) {
  std::string s = "hello world, this is a longer string to cross 8-byte words";
  for (size_t split = 0; split <= s.size(); ++split) {
    EXPECT_EQ(Value(s), Extend(Value(s.data(), split), s.data() + split, s.size() - split));
  }
}

TEST(Crc32cTest, HardwareAndPortableAgreeOnEveryAlignmentAndLength) {
  auto hw = internal::HardwareExtend();
  if (hw == nullptr) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937 rng(42);
  std::string buf(4096 + 16, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4096}) {
      EXPECT_EQ(hw(0x1234u, buf.data() + offset, len),
                internal::ExtendPortable(0x1234u, buf.data() + offset, len))
          << "offset " << offset << " len " << len;
    }
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  uint32_t crc = Value("foo");
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));
}

}  // namespace
}  // namespace etcdpp::crc32c
