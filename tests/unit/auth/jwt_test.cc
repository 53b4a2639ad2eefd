#include "auth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "unit/mvcc/temp_dir.h"

namespace etcdpp::auth {
namespace {

using namespace std::chrono_literals;

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(length));
  BIO_free(bio);
  return text;
}

// A fresh key pair made by OpenSSL: "RSA" (2048 bits) or "EC" with a curve.
KeyPair NewKeyPair(const char* type, const char* curve = nullptr) {
  EVP_PKEY* key = curve == nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, size_t{2048})
                                   : EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve);
  EXPECT_NE(key, nullptr);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  EXPECT_EQ(PEM_write_bio_PUBKEY(pub, key), 1);
  EVP_PKEY_free(key);
  return {BioText(priv), BioText(pub)};
}

const KeyPair& Rsa() {
  static const KeyPair pair = NewKeyPair("RSA");
  return pair;
}

std::unique_ptr<JwtTokens> Make(const std::string& method, const KeyPair& keys, Clock* clock,
                                bool with_private = true, bool with_public = true) {
  JwtOptions options;
  options.sign_method = method;
  if (with_private) options.private_key_pem = keys.private_pem;
  if (with_public) options.public_key_pem = keys.public_pem;
  options.ttl = 60s;
  auto created = JwtTokens::Create(options, clock);
  EXPECT_TRUE(created.ok()) << method << ": " << created.status().ToString();
  return created.ok() ? std::move(created.value()) : nullptr;
}

TEST(Base64UrlTest, RoundTripsAndRefusesOtherSpellings) {
  for (std::string bytes : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe"}) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(bytes)), bytes);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v=").has_value());  // padding
  EXPECT_FALSE(Base64UrlDecode("Zm9+").has_value());   // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());      // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());     // non-zero bits past the last byte
  EXPECT_EQ(Base64UrlDecode("Zg"), "f");
}

class JwtMethodTest : public ::testing::TestWithParam<const char*> {};

TEST_P(JwtMethodTest, SignedTokenVerifiesOnAnotherMemberWithTheSameKey) {
  const std::string method = GetParam();
  KeyPair keys;
  if (method[0] == 'R' || method[0] == 'P') keys = Rsa();
  if (method == "ES256") keys = NewKeyPair("EC", "P-256");
  if (method == "ES384") keys = NewKeyPair("EC", "P-384");
  if (method == "ES512") keys = NewKeyPair("EC", "P-521");
  if (method[0] == 'H') keys = {"a shared secret of the cluster", ""};
  FakeClock clock;
  auto signer = Make(method, keys, &clock, true, method[0] != 'H');
  // The other member holds only the public key (HMAC: the same secret).
  auto verifier = Make(method, keys, &clock, method[0] == 'H', method[0] != 'H');
  ASSERT_TRUE(signer && verifier);
  EXPECT_EQ(verifier->can_sign(), method[0] == 'H');

  auto token = signer->Sign("alice", 7);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto claims = verifier->Verify(*token);
  ASSERT_TRUE(claims.has_value()) << *token;
  EXPECT_EQ(claims->username, "alice");
  EXPECT_EQ(claims->revision, 7u);

  // The header names the method; the claims are etcd's.
  const std::string header = *Base64UrlDecode(token->substr(0, token->find('.')));
  EXPECT_EQ(header, R"({"alg":")" + method + R"(","typ":"JWT"})");
  const size_t dot = token->find('.');
  const std::string payload = *Base64UrlDecode(token->substr(dot + 1, token->rfind('.') - dot - 1));
  EXPECT_NE(payload.find(R"("revision":7,"username":"alice"})"), std::string::npos) << payload;

  // Tampered claims (another user) keep the signature but fail it.
  std::string forged_payload = payload;
  forged_payload.replace(forged_payload.find("alice"), 5, "root!");
  const std::string forged = token->substr(0, dot + 1) + Base64UrlEncode(forged_payload) +
                             token->substr(token->rfind('.'));
  EXPECT_FALSE(verifier->Verify(forged).has_value());
  // A flipped signature byte fails.
  std::string flipped = *token;
  char& c = flipped[flipped.rfind('.') + 3];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifier->Verify(flipped).has_value());

  // Expired after ttl (60 s), valid up to it.
  clock.Advance(59s);
  EXPECT_TRUE(verifier->Verify(*token).has_value());
  clock.Advance(2s);
  EXPECT_FALSE(verifier->Verify(*token).has_value());
}

INSTANTIATE_TEST_SUITE_P(AllMethods, JwtMethodTest,
                         ::testing::Values("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                           "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"));

TEST(JwtTest, AnotherKeysTokenOrMethodIsRefused) {
  FakeClock clock;
  auto ours = Make("RS256", Rsa(), &clock);
  auto theirs = Make("RS256", NewKeyPair("RSA"), &clock);
  auto token = theirs->Sign("alice", 1);
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE(ours->Verify(*token).has_value());

  // Same key, other method in the header: refused before any signature check.
  auto ps = Make("PS256", Rsa(), &clock);
  auto ps_token = ps->Sign("alice", 1);
  ASSERT_TRUE(ps_token.ok());
  EXPECT_FALSE(ours->Verify(*ps_token).has_value());

  // "alg":"none" with an empty signature.
  const std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                           Base64UrlEncode(R"({"revision":1,"username":"root"})") + ".";
  EXPECT_FALSE(ours->Verify(none).has_value());
  for (std::string junk : {"", ".", "..", "a.b.c", "a.b.c.d", "simpletoken.12"}) {
    EXPECT_FALSE(ours->Verify(junk).has_value()) << junk;
  }
}

TEST(JwtTest, CreateRefusesBadKeys) {
  JwtOptions options;
  options.sign_method = "RS256";
  EXPECT_FALSE(JwtTokens::Create(options).ok());  // no key at all
  options.private_key_pem = Rsa().private_pem;
  options.public_key_pem = NewKeyPair("RSA").public_pem;
  EXPECT_FALSE(JwtTokens::Create(options).ok());  // halves of two pairs
  options.sign_method = "ES256";
  options.public_key_pem.clear();
  EXPECT_FALSE(JwtTokens::Create(options).ok());  // RSA key, ECDSA method
  options.private_key_pem = NewKeyPair("EC", "P-384").private_pem;
  EXPECT_FALSE(JwtTokens::Create(options).ok());  // wrong curve
  options.private_key_pem = "not a key";
  EXPECT_FALSE(JwtTokens::Create(options).ok());
  options.sign_method = "XX999";
  EXPECT_FALSE(JwtTokens::Create(options).ok());
}

TEST(JwtTest, RememberedTokensStillExpireAndTheMemoryIsBounded) {
  FakeClock clock;
  auto tokens = Make("HS256", {"secret", ""}, &clock, true, false);
  ASSERT_TRUE(tokens);
  // More distinct tokens than are remembered: each verifies, before and
  // after the memory was emptied.
  std::vector<std::string> issued;
  for (size_t i = 0; i <= JwtTokens::kMaxVerifiedTokens; ++i) {
    auto token = tokens->Sign("user" + std::to_string(i), i);
    ASSERT_TRUE(token.ok());
    issued.push_back(*token);
    ASSERT_TRUE(tokens->Verify(issued.back()).has_value()) << i;
  }
  auto first = tokens->Verify(issued.front());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->username, "user0");
  EXPECT_EQ(tokens->Verify(issued.back())->revision, JwtTokens::kMaxVerifiedTokens);
  // A remembered token expires like any other.
  clock.Advance(61s);
  EXPECT_FALSE(tokens->Verify(issued.back()).has_value());
}

TEST(JwtTest, VerifyOnlyMemberCannotSign) {
  auto verifier = Make("RS256", Rsa(), Clock::Real(), false, true);
  ASSERT_TRUE(verifier);
  EXPECT_FALSE(verifier->can_sign());
  EXPECT_FALSE(verifier->Sign("alice", 1).ok());
}

TEST(AuthTokenFlagTest, ParsesLikeEtcd) {
  etcdpp::testing::TempDir dir;
  const std::string priv = dir.path() + "/priv.pem";
  const std::string pub = dir.path() + "/pub.pem";
  std::ofstream(priv) << Rsa().private_pem;
  std::ofstream(pub) << Rsa().public_pem;

  auto simple = ParseAuthTokenFlag("simple");
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(simple->kind, AuthTokenConfig::Kind::kSimple);

  auto jwt = ParseAuthTokenFlag("jwt,pub-key=" + pub + ",priv-key=" + priv +
                                ",sign-method=RS512,ttl=1h30m");
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  EXPECT_EQ(jwt->kind, AuthTokenConfig::Kind::kJwt);
  EXPECT_EQ(jwt->jwt.sign_method, "RS512");
  EXPECT_EQ(jwt->jwt.ttl, 5400s);
  EXPECT_EQ(jwt->jwt.private_key_pem, Rsa().private_pem);
  EXPECT_EQ(jwt->jwt.public_key_pem, Rsa().public_pem);
  EXPECT_TRUE(JwtTokens::Create(jwt->jwt).ok());

  auto defaults = ParseAuthTokenFlag("jwt,priv-key=" + priv + ",sign-method=RS256");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->jwt.ttl, 300s);

  for (const std::string& bad :
       std::vector<std::string>{"jwt", "jwt,sign-method=FOO256,priv-key=" + priv,
                                "jwt,sign-method=RS256,sign-method=RS256,priv-key=" + priv,
                                "jwt,sign-method=RS256,color=blue", "jwt,sign-method",
                                "jwt,sign-method=RS256,priv-key=/nonexistent/key.pem",
                                "jwt,sign-method=RS256,ttl=5parsecs", "bearer", "simple,ttl=5m"}) {
    EXPECT_FALSE(ParseAuthTokenFlag(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace etcdpp::auth
