#include "auth/token_store.h"

#include <gtest/gtest.h>

#include <cctype>

namespace etcdpp::auth {
namespace {

using namespace std::chrono_literals;

TEST(TokenTest, SecretIsSixteenLettersAndTokensCarryTheIndex) {
  const std::string secret = NewTokenSecret();
  ASSERT_EQ(secret.size(), 16u);
  for (char c : secret) EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(c))) << secret;
  EXPECT_NE(secret, NewTokenSecret());
  EXPECT_EQ(FormatToken("abc", 42), "abc.42");
}

TEST(SimpleTokensTest, TokenExpiresAfterTtlWithoutUse) {
  FakeClock clock;
  SimpleTokens tokens(300s, &clock);
  tokens.Assign("t.1", "alice");
  ASSERT_EQ(tokens.Lookup("t.1"), "alice");
  clock.Advance(299s);
  EXPECT_EQ(tokens.Lookup("t.1"), "alice");  // extends to 299 + 300
  clock.Advance(299s);
  EXPECT_EQ(tokens.Lookup("t.1"), "alice");
  clock.Advance(300s);
  EXPECT_EQ(tokens.Lookup("t.1"), std::nullopt);
  EXPECT_EQ(tokens.Lookup("unknown"), std::nullopt);
}

TEST(SimpleTokensTest, ExpiredTokensAreDroppedOnTheNextAssign) {
  FakeClock clock;
  SimpleTokens tokens(10s, &clock);
  tokens.Assign("a.1", "alice");
  clock.Advance(11s);
  tokens.Assign("b.2", "bob");
  EXPECT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens.Lookup("b.2"), "bob");
}

TEST(SimpleTokensTest, InvalidationByUserAndAll) {
  FakeClock clock;
  SimpleTokens tokens(10s, &clock);
  tokens.Assign("a.1", "alice");
  tokens.Assign("a.2", "alice");
  tokens.Assign("b.3", "bob");
  tokens.InvalidateUser("alice");
  EXPECT_EQ(tokens.Lookup("a.1"), std::nullopt);
  EXPECT_EQ(tokens.Lookup("a.2"), std::nullopt);
  EXPECT_EQ(tokens.Lookup("b.3"), "bob");
  tokens.InvalidateAll();
  EXPECT_EQ(tokens.Lookup("b.3"), std::nullopt);
}

}  // namespace
}  // namespace etcdpp::auth
