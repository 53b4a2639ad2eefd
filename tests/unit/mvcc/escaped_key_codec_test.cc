// The slots of key layouts 1-4, which the upgrade to layout 5 and HashKV
// still read.
#include "mvcc/escaped_key_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace etcdpp::mvcc::escaped {
namespace {

using namespace std::string_literals;

TEST(EscapedKeyCodecTest, RoundTripsArbitraryBytes) {
  for (std::string key :
       {""s, "a"s, "\0"s, "\0\0"s, "a\0b"s, "\xff"s, "\0\xff"s, "\xff\0"s, "\0\x01"s, "foo/bar"s}) {
    std::string decoded;
    ASSERT_TRUE(DecodeUserKey(EncodeUserKey(key), &decoded)) << key;
    EXPECT_EQ(decoded, key);
    EXPECT_EQ(EncodeUserKey(key).size(), EscapedSize(key) + 2);
  }
}

TEST(EscapedKeyCodecTest, RejectsMalformedEncodings) {
  std::string out;
  EXPECT_FALSE(DecodeUserKey("", &out));
  EXPECT_FALSE(DecodeUserKey("abc", &out));           // No terminator.
  EXPECT_FALSE(DecodeUserKey("a\0"s, &out));          // Truncated escape.
  EXPECT_FALSE(DecodeUserKey("a\0\x02"s, &out));      // A bucket, not a key.
  EXPECT_FALSE(DecodeUserKey("a\0\x03"s, &out));      // Bad escape.
  EXPECT_FALSE(DecodeUserKey("a\0\x01junk"s, &out));  // Bytes after terminator.
}

// The ordering contract: encode() preserves byte-wise order, including keys
// that are prefixes of each other and keys with 0x00 / 0xFF bytes.
TEST(EscapedKeyCodecTest, PreservesOrderOfTrickyKeys) {
  std::vector<std::string> keys = {"",    "\0"s,  "\0\0"s,  "\0\x01"s, "\0\xff"s, "\x01"s,
                                   "a",   "a\0"s, "a\0\0"s, "a\0b"s,   "a\x01"s,  "ab",
                                   "abc", "b",    "\xfe"s,  "\xff"s,   "\xff\0"s, "\xff\xff"s};
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = 0; j < keys.size(); ++j) {
      EXPECT_EQ(keys[i] < keys[j], EncodeUserKey(keys[i]) < EncodeUserKey(keys[j]))
          << "i=" << i << " j=" << j;
    }
  }
}

TEST(EscapedKeyCodecTest, PreservesOrderOfRandomKeys) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> len(0, 6);
  // A tiny alphabet makes prefixes and 0x00/0xFF collisions frequent.
  const char alphabet[] = {'\0', '\x01', 'a', '\xfe', '\xff'};
  std::uniform_int_distribution<int> pick(0, 4);
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) {
    std::string k;
    for (int n = len(rng); n > 0; --n) k.push_back(alphabet[pick(rng)]);
    keys.push_back(k);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    const std::string& a = keys[i];
    const std::string& b = keys[i + 1];
    EXPECT_EQ(a < b, EncodeUserKey(a) < EncodeUserKey(b));
    EXPECT_EQ(a == b, EncodeUserKey(a) == EncodeUserKey(b));
  }
}

// Key table keys of different user keys order like the user keys, whatever
// the revisions; records of one user key order newest first.
TEST(EscapedKeyCodecTest, KeyTableKeysGroupByUserKeyNewestFirst) {
  EXPECT_LT(MakeKeyTableKey("a", {1, 0}), MakeKeyTableKey("a\0"s, {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a", {1, 0}), MakeKeyTableKey("ab", {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a", {100, 5}), MakeKeyTableKey("a", {100, 4}));
  EXPECT_LT(MakeKeyTableKey("a", {100, 0}), MakeKeyTableKey("a", {99, 7}));
  EXPECT_LT(MakeKeyTableKey("a\xff"s, {1, 0}), MakeKeyTableKey("b", {9, 0}));

  std::string_view enc;
  Revision rev;
  const std::string table_key = MakeKeyTableKey("k\0"s, {7, 3});
  ASSERT_TRUE(mvcc::SplitKeyTableKey(table_key, &enc, &rev));
  EXPECT_EQ(enc, EncodeUserKey("k\0"s));
  EXPECT_EQ(rev, (Revision{7, 3}));
}

}  // namespace
}  // namespace etcdpp::mvcc::escaped
