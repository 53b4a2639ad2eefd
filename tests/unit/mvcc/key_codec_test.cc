// Key layout 5's slots: the zero-run encoding E and the long-key rule.
#include "mvcc/key_codec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace etcdpp::mvcc {
namespace {

using namespace std::string_literals;

std::string Zeros(size_t n) { return std::string(n, '\0'); }

// Keys whose zero runs sit on every code boundary (1, 125, 126, 250, 251)
// at the end of a key and before a byte, plus prefixes of each other.
std::vector<std::string> TrickyKeys() {
  std::vector<std::string> keys = {"",    "\0"s,  "\0\0"s,  "\0\x01"s, "\0\xff"s, "\x01"s,
                                   "a",   "a\0"s, "a\0\0"s, "a\0b"s,   "a\x01"s,  "ab",
                                   "abc", "b",    "\xfe"s,  "\xff"s,   "\xff\0"s, "\xff\xff"s};
  for (size_t n : {1, 2, 124, 125, 126, 127, 249, 250, 251, 252, 300}) {
    keys.push_back(Zeros(n));
    keys.push_back(Zeros(n) + "\x01");
    keys.push_back(Zeros(n) + "\xff");
    keys.push_back(fmt::format("p{}", Zeros(n)));
    keys.push_back(fmt::format("p{}q", Zeros(n)));
    keys.push_back(fmt::format("p{}q{}", Zeros(n), Zeros(n)));
  }
  return keys;
}

TEST(KeyCodecTest, EncodesZeroRunsInTwoBytesPer125) {
  EXPECT_EQ(EncodeUserKey(""), "\0\x01"s);
  EXPECT_EQ(EncodeUserKey("a"), "a\0\x01"s);
  EXPECT_EQ(EncodeUserKey("a\0"s), "a\0\x02"s);
  EXPECT_EQ(EncodeUserKey("\0b"s),
            "\0\xfc"
            "b\0\x01"s);
  EXPECT_EQ(EncodeUserKey(Zeros(125)), "\0\x7e"s);
  EXPECT_EQ(EncodeUserKey(Zeros(126)), "\0\x7f\0\x02"s);
  EXPECT_EQ(EncodeUserKey(Zeros(125) + "x"), "\0\x80x\0\x01"s);
  EXPECT_EQ(EncodeUserKey(Zeros(256)), "\0\x7f\0\x7f\0\x07"s);
  // etcdctl check perf's keys: a prefix, a varint, zeros to 256 bytes.
  const std::string perf = "/etcdctl-check-perf/" + "\x96\x01"s + Zeros(254);
  EXPECT_EQ(EncodeUserKey(perf).size(), 20 + 2 + 6);
}

TEST(KeyCodecTest, RoundTripsArbitraryBytes) {
  for (const std::string& key : TrickyKeys()) {
    const std::string enc = EncodeUserKey(key);
    std::string decoded;
    ASSERT_TRUE(DecodeUserKey(enc, &decoded)) << testing::PrintToString(enc);
    EXPECT_EQ(decoded, key);
    EXPECT_EQ(enc.size(), EncodedSize(key)) << testing::PrintToString(key);
  }
}

TEST(KeyCodecTest, RejectsWhatEDoesNotWrite) {
  std::string out;
  EXPECT_FALSE(DecodeUserKey("", &out));
  EXPECT_FALSE(DecodeUserKey("abc", &out));             // No end.
  EXPECT_FALSE(DecodeUserKey("a\0"s, &out));            // Truncated code.
  EXPECT_FALSE(DecodeUserKey("a\0\0"s, &out));          // 00 is no code.
  EXPECT_FALSE(DecodeUserKey("a\0\xff\0\x01"s, &out));  // Nor FF (layout 4's escape).
  EXPECT_FALSE(
      DecodeUserKey("a\0\xfd"
                    "b\0\x01"s,
                    &out));                           // Nor FD.
  EXPECT_FALSE(DecodeUserKey("a\0\x01junk"s, &out));  // Bytes after the end.
  EXPECT_FALSE(DecodeUserKey("a\0\x02junk"s, &out));  // After a run that ends the key.
  EXPECT_FALSE(DecodeUserKey("a\0\xfc"s, &out));      // A run before no byte.
  EXPECT_FALSE(
      DecodeUserKey("a\0\xfc\0\xfc"
                    "b\0\x01"s,
                    &out));                            // Runs not maximal.
  EXPECT_FALSE(DecodeUserKey("\0\x7f\0\x01"s, &out));  // 125 zeros are 00 7E.
  EXPECT_FALSE(
      DecodeUserKey("\0\x7f"
                    "b\0\x01"s,
                    &out));  // 7F says more zeros follow.
  EXPECT_TRUE(
      DecodeUserKey("\0\x7f\0\xfc"
                    "b\0\x01"s,
                    &out));
  EXPECT_EQ(out, Zeros(126) + "b");
}

TEST(KeyCodecTest, PlainViewOnlyWithoutZeroBytes) {
  std::string_view v;
  std::string enc = EncodeUserKey("plain");
  ASSERT_TRUE(PlainUserKey(enc, &v));
  EXPECT_EQ(v, "plain");
  EXPECT_FALSE(PlainUserKey(EncodeUserKey("has\0zero"s), &v));
  // A run that ends the key also ends in two bytes; it is no plain key.
  EXPECT_FALSE(PlainUserKey(EncodeUserKey("ab\0"s), &v));
  EXPECT_FALSE(PlainUserKey(EncodeUserKey(Zeros(3)), &v));
}

// The ordering contract: E preserves byte-wise order and is prefix-free.
void ExpectOrderAndPrefixFree(const std::string& a, const std::string& b) {
  const std::string ea = EncodeUserKey(a), eb = EncodeUserKey(b);
  EXPECT_EQ(a < b, ea < eb) << testing::PrintToString(a) << " " << testing::PrintToString(b);
  EXPECT_EQ(a == b, ea == eb);
  if (a != b) {
    EXPECT_NE(ea, eb.substr(0, ea.size()))
        << testing::PrintToString(a) << " " << testing::PrintToString(b);
  }
}

TEST(KeyCodecTest, PreservesOrderOfTrickyKeys) {
  const std::vector<std::string> keys = TrickyKeys();
  for (const std::string& a : keys) {
    for (const std::string& b : keys) ExpectOrderAndPrefixFree(a, b);
  }
}

// Random keys of zero runs (often near a code boundary) and a few bytes.
std::string RandomRunKey(std::mt19937& rng) {
  static const size_t kRuns[] = {0, 1, 2, 124, 125, 126, 250, 251};
  static const char kBytes[] = {'\x01', 'a', '\xfe', '\xff'};
  std::uniform_int_distribution<int> parts(0, 4), run(0, 7), byte(0, 3), jitter(0, 2);
  std::string k;
  for (int n = parts(rng); n > 0; --n) {
    k += Zeros(kRuns[run(rng)] + (jitter(rng) == 0 ? 1 : 0));
    for (int m = jitter(rng); m > 0; --m) k.push_back(kBytes[byte(rng)]);
  }
  return k;
}

TEST(KeyCodecTest, PreservesOrderOfRandomKeys) {
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
  for (int i = 0; i < 500; ++i) keys.push_back(RandomRunKey(rng));
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    ExpectOrderAndPrefixFree(keys[i], keys[i + 1]);
    ExpectOrderAndPrefixFree(keys[i + 1], keys[i]);
    std::string decoded;
    ASSERT_TRUE(DecodeUserKey(EncodeUserKey(keys[i]), &decoded));
    EXPECT_EQ(decoded, keys[i]);
    EXPECT_EQ(EncodedSize(keys[i]), EncodeUserKey(keys[i]).size());
  }
}

TEST(KeyCodecTest, SlotsAreInlineUpToTheLimitThenBucketAndHash) {
  const std::string at_limit(kMaxInlineSlotBytes - 2, 'k');
  std::string slot;
  AppendKeySlot(at_limit, &slot);
  EXPECT_EQ(slot, EncodeUserKey(at_limit));
  EXPECT_FALSE(IsLongSlot(slot));

  const std::string over = at_limit + "k";
  slot.clear();
  AppendKeySlot(over, &slot);
  ASSERT_EQ(slot.size(), kLongSlotBytes);
  EXPECT_TRUE(IsLongSlot(slot));
  EXPECT_EQ(BucketOf(slot), EncodeUserKey(over).substr(0, kMaxInlineSlotBytes));
  const auto hash = KeyHash(over);
  EXPECT_EQ(slot.substr(kMaxInlineSlotBytes), std::string(hash.data(), hash.size()));
  std::string position;
  AppendKeyPosition(over, &position);
  EXPECT_EQ(position, BucketOf(slot));

  // A bucket may cut a run's code off: the key of 477 'k's and 300 zeros
  // has 00 7F 00 7F at bytes 477-480.
  const std::string cut = at_limit + Zeros(300);
  slot.clear();
  AppendKeySlot(cut, &slot);
  ASSERT_EQ(slot.size(), kLongSlotBytes);
  EXPECT_EQ(BucketOf(slot), at_limit + "\0\x7f"s);
  // Zeros no longer make a key long: check perf's 256-byte keys are inline.
  EXPECT_TRUE(IsInlineKey("/perf/" + Zeros(10000)));
}

// For keys j and k in different buckets, j's table keys sort below
// position(k) iff j < k: what range scans rely on. Keys around the limit,
// with runs cut at every byte near it.
TEST(KeyCodecTest, TableKeysOrderAgainstPositionsAroundTheLimit) {
  std::vector<std::string> keys;
  for (size_t n = kMaxInlineSlotBytes - 6; n <= kMaxInlineSlotBytes + 2; ++n) {
    for (const std::string& tail :
         {""s, "\0"s, "\x01"s, "\xff"s, Zeros(126), Zeros(126) + "z", Zeros(3) + "z", "z"s}) {
      keys.push_back(std::string(n, 'p') + tail);
      keys.push_back(std::string(n, 'p') + tail + "a");
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) keys.push_back(std::string(470, 'p') + RandomRunKey(rng));
  for (const std::string& j : keys) {
    std::string j_slot;
    AppendKeySlot(j, &j_slot);
    const std::string j_table_key = j_slot + std::string(kRevisionBytes, '\x55');
    for (const std::string& k : keys) {
      if (j == k) continue;
      std::string k_slot, k_position;
      AppendKeySlot(k, &k_slot);
      AppendKeyPosition(k, &k_position);
      if (IsLongSlot(j_slot) && IsLongSlot(k_slot) && BucketOf(j_slot) == BucketOf(k_slot)) {
        continue;
      }
      EXPECT_EQ(j_table_key < k_position, j < k)
          << testing::PrintToString(j) << " " << testing::PrintToString(k);
    }
  }
}

// Key table keys of different user keys order like the user keys, whatever
// the revisions; records of one user key order newest first.
TEST(KeyCodecTest, KeyTableKeysGroupByUserKeyNewestFirst) {
  EXPECT_LT(MakeKeyTableKey("a", {1, 0}), MakeKeyTableKey("a\0"s, {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a", {1, 0}), MakeKeyTableKey("ab", {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a\0"s, {1, 0}), MakeKeyTableKey("a\0\0"s, {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a\0\0"s, {1, 0}), MakeKeyTableKey("a\0b"s, {100, 0}));
  EXPECT_LT(MakeKeyTableKey("a", {100, 5}), MakeKeyTableKey("a", {100, 4}));
  EXPECT_LT(MakeKeyTableKey("a", {100, 0}), MakeKeyTableKey("a", {99, 7}));
  EXPECT_LT(MakeKeyTableKey("a\xff"s, {1, 0}), MakeKeyTableKey("b", {9, 0}));

  std::string_view enc;
  Revision rev;
  const std::string table_key = MakeKeyTableKey("k\0"s, {7, 3});
  ASSERT_TRUE(SplitKeyTableKey(table_key, &enc, &rev));
  EXPECT_EQ(enc, EncodeUserKey("k\0"s));
  EXPECT_EQ(rev, (Revision{7, 3}));
}

}  // namespace
}  // namespace etcdpp::mvcc
