#include "auth/token_store.h"

#include <openssl/rand.h>

#include <mutex>

namespace etcdpp::auth {

std::string NewTokenSecret() {
  constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  unsigned char random[16];
  if (RAND_bytes(random, sizeof(random)) != 1) {
    // No randomness means no secret token can be made; running on with a
    // predictable one would hand out access.
    std::abort();
  }
  std::string secret;
  secret.reserve(sizeof(random));
  // 256 % 52 != 0 leaves a small bias toward the first letters; with 16
  // letters the secret keeps far more than 80 bits of entropy.
  for (unsigned char r : random) secret.push_back(kLetters[r % kLetters.size()]);
  return secret;
}

std::string FormatToken(std::string_view secret, uint64_t index) {
  return std::string(secret) + "." + std::to_string(index);
}

SimpleTokens::SimpleTokens(std::chrono::seconds ttl, Clock* clock) : ttl_(ttl), clock_(clock) {}

Clock::TimePoint::rep SimpleTokens::Deadline() const {
  return (clock_->Now() + ttl_).time_since_epoch().count();
}

void SimpleTokens::Assign(const std::string& token, const std::string& user) {
  const auto now = clock_->Now().time_since_epoch().count();
  std::unique_lock lock(mu_);
  std::erase_if(tokens_, [now](const auto& kv) {
    return kv.second->expires.load(std::memory_order_relaxed) <= now;
  });
  auto entry = std::make_unique<Entry>();
  entry->user = user;
  entry->expires.store(Deadline(), std::memory_order_relaxed);
  tokens_[token] = std::move(entry);
}

std::optional<std::string> SimpleTokens::Lookup(std::string_view token) const {
  const auto now = clock_->Now().time_since_epoch().count();
  std::shared_lock lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  const Entry& entry = *it->second;
  if (entry.expires.load(std::memory_order_relaxed) <= now) return std::nullopt;
  entry.expires.store(Deadline(), std::memory_order_relaxed);
  return entry.user;
}

void SimpleTokens::InvalidateUser(std::string_view user) {
  std::unique_lock lock(mu_);
  std::erase_if(tokens_, [user](const auto& kv) { return kv.second->user == user; });
}

void SimpleTokens::InvalidateAll() {
  std::unique_lock lock(mu_);
  tokens_.clear();
}

size_t SimpleTokens::size() const {
  std::shared_lock lock(mu_);
  return tokens_.size();
}

}  // namespace etcdpp::auth
