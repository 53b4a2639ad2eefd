#include "auth/password.h"

#include <gtest/gtest.h>

namespace etcdpp::auth {
namespace {

// The lowest cost bcrypt allows keeps the test fast; the format and the
// check do not depend on it.
constexpr int kTestCost = 4;

TEST(PasswordTest, HashIsBcryptWithTheCostAndChecksRoundTrip) {
  auto hash = HashPassword("s3cret", kTestCost);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(hash->rfind("$2b$04$", 0), 0u) << *hash;
  EXPECT_EQ(hash->size(), 60u);
  EXPECT_TRUE(CheckPassword(*hash, "s3cret"));
  EXPECT_FALSE(CheckPassword(*hash, "s3cret "));
  EXPECT_FALSE(CheckPassword(*hash, ""));
}

TEST(PasswordTest, EachHashHasItsOwnSalt) {
  auto a = HashPassword("same", kTestCost);
  auto b = HashPassword("same", kTestCost);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(CheckPassword(*a, "same"));
  EXPECT_TRUE(CheckPassword(*b, "same"));
}

TEST(PasswordTest, DefaultCostIsEtcds) {
  EXPECT_EQ(kDefaultBcryptCost, 10);
  auto hash = HashPassword("pw");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->rfind("$2b$10$", 0), 0u);
}

TEST(PasswordTest, MalformedHashesAndNulBytesNeverMatch) {
  EXPECT_FALSE(CheckPassword("", ""));
  EXPECT_FALSE(CheckPassword("not-a-hash", "not-a-hash"));
  EXPECT_FALSE(CheckPassword("$2b$04$", ""));
  EXPECT_FALSE(HashPassword(std::string("a\0b", 3), kTestCost).ok());
  auto hash = HashPassword("a", kTestCost);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(CheckPassword(*hash, std::string("a\0b", 3)));
}

}  // namespace
}  // namespace etcdpp::auth
