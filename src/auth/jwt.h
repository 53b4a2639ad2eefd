// JwtTokens: etcd's "jwt" auth tokens (--auth-token jwt,...). A token is a
// JSON Web Token (RFC 7519) signed with the member's key; any member that
// holds the key (or only its public half) verifies it by itself, so JWTs
// need no state shared between members and survive restarts until `exp`.
//
// Token format, as etcd 3.4 makes it (three base64url parts, no padding):
//   base64url({"alg":"RS256","typ":"JWT"}) "."
//   base64url({"exp":<unix seconds>,"revision":<auth revision>,"username":"<name>"}) "."
//   base64url(signature over the first two parts)
// `revision` is the auth store's revision when the token was made: a
// request carrying it is refused with kAuthOldRevision once any user, role
// or permission changed since (AuthState::CheckKeys), as etcd does.
//
// Signatures are OpenSSL's (EVP): RS256/384/512 (PKCS#1 v1.5), PS256/384/512
// (PSS, salt of the digest's length; any salt length is accepted when
// verifying, as Go's verifier does), ES256/384/512 (P-256/384/521, the JWS
// raw r||s form), HS256/384/512 (HMAC keyed with the priv-key file's bytes).
//
// Threads: Sign and Verify may run on any thread; the keys are immutable
// after Create, the cache of verified tokens is guarded by verified_mu_.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"

namespace etcdpp::auth {

inline constexpr std::chrono::seconds kDefaultJwtTtl{std::chrono::minutes(5)};

// The options of "--auth-token jwt,...": key files' contents, not paths.
struct JwtOptions {
  std::string sign_method;  // "RS256", "ES256", ... (etcd's names)
  std::string public_key_pem;
  std::string private_key_pem;  // for HS*: the shared secret, raw bytes
  std::chrono::seconds ttl = kDefaultJwtTtl;
};

// What --auth-token asks for.
struct AuthTokenConfig {
  enum class Kind { kSimple, kJwt };
  Kind kind = Kind::kSimple;
  JwtOptions jwt;
};

// Parses --auth-token as etcd 3.4 does: "simple", or "jwt" followed by
// ",key=value" options among pub-key, priv-key (file paths, read here),
// sign-method (required) and ttl (a Go duration, default 5m). An unknown
// kind or option, a duplicate option, or an unreadable file is an error.
Result<AuthTokenConfig> ParseAuthTokenFlag(std::string_view flag);

// What a verified token says.
struct JwtClaims {
  std::string username;
  uint64_t revision = 0;
};

class JwtTokens {
 public:
  // Loads the keys: at least one must be given; with only the public key the
  // member verifies but cannot sign (Authenticate on it fails); with both they
  // must be halves of one pair. The key's type must fit the sign method.
  static Result<std::unique_ptr<JwtTokens>> Create(const JwtOptions& options,
                                                   Clock* clock = Clock::Real());
  ~JwtTokens();
  JwtTokens(const JwtTokens&) = delete;
  JwtTokens& operator=(const JwtTokens&) = delete;

  bool can_sign() const;
  std::chrono::seconds ttl() const { return ttl_; }

  // A token for `username` at auth `revision`, valid for ttl from now.
  Result<std::string> Sign(std::string_view username, uint64_t revision) const;
  // The claims of `token` if it is well formed, names this member's sign
  // method, carries a valid signature by this member's key and has not
  // expired; nullopt otherwise (the caller's kInvalidAuthToken). A token
  // that verified once is remembered (up to kMaxVerifiedTokens of them), so
  // its later requests cost a map lookup and the expiry check, not a
  // signature check.
  std::optional<JwtClaims> Verify(std::string_view token) const;

  static constexpr size_t kMaxVerifiedTokens = 4096;

 private:
  struct Keys;
  struct Verified {
    JwtClaims claims;
    std::optional<double> expires;  // "exp", unix seconds
  };
  JwtTokens(std::unique_ptr<Keys> keys, std::chrono::seconds ttl, Clock* clock);
  std::optional<Verified> VerifySignatureAndClaims(std::string_view token, double now) const;
  double WallSeconds() const;

  const std::unique_ptr<Keys> keys_;
  const std::chrono::seconds ttl_;
  Clock* const clock_;
  // Lookups take it shared; only a first verification takes it exclusively.
  // When full it is emptied (tokens then verify again), which bounds memory
  // however many tokens clients present.
  mutable std::shared_mutex verified_mu_;
  mutable std::map<std::string, Verified, std::less<>> verified_;  // guarded by verified_mu_
};

// base64url without padding (RFC 7515 section 2), exposed for tests.
std::string Base64UrlEncode(std::string_view bytes);
// nullopt for characters outside the alphabet, padding, an impossible
// length, or non-zero bits after the last byte (so each token has one
// spelling).
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace etcdpp::auth
