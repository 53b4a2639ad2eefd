// SimpleTokens: etcd's "simple" auth tokens. A token is an opaque random
// string naming a user; it lives in memory only, on every member (the
// Authenticate entry registers it through Raft), and expires after `ttl`
// without use. Each use pushes its expiry back by `ttl`, as etcd does.
//
// Token format (clients treat it as opaque): 16 random letters, '.', and the
// Raft index of the Authenticate entry, e.g. "kPqZrTfWbYhMsLdA.42".
//
// Threads: any. Lookups (every authenticated request) take the mutex in
// shared mode only; the expiry is an atomic so a lookup can extend it
// without the exclusive lock. Assign / invalidation take it exclusively.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace etcdpp::auth {

inline constexpr std::chrono::seconds kDefaultTokenTtl{300};

// 16 random letters (OpenSSL's generator): the part of a token nobody can guess.
std::string NewTokenSecret();
// The token clients receive: "<secret>.<index>".
std::string FormatToken(std::string_view secret, uint64_t index);

class SimpleTokens {
 public:
  explicit SimpleTokens(std::chrono::seconds ttl = kDefaultTokenTtl, Clock* clock = Clock::Real());

  // Registers `token` for `user` (apply thread). Expired tokens are dropped here.
  void Assign(const std::string& token, const std::string& user);
  // The user `token` names, or nullopt when unknown or expired. A hit
  // extends the token's life.
  std::optional<std::string> Lookup(std::string_view token) const;
  // After the user's password changed or the user was deleted.
  void InvalidateUser(std::string_view user);
  // Auth was disabled: every token dies.
  void InvalidateAll();
  size_t size() const;

 private:
  struct Entry {
    std::string user;
    // Clock ticks (steady_clock rep) after which the token is dead.
    mutable std::atomic<Clock::TimePoint::rep> expires;
  };
  Clock::TimePoint::rep Deadline() const;

  const std::chrono::seconds ttl_;
  Clock* const clock_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> tokens_;  // guarded by mu_
};

}  // namespace etcdpp::auth
