// Password hashes: bcrypt through the system's libcrypt (libxcrypt), as etcd
// stores them. Only hashes are kept, in the store and in Raft entries; the
// plain password never leaves the member that received it.
//
// Both functions are slow on purpose (2^cost rounds) and thread-safe; call
// them off the apply thread (the API hashes before proposing).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace etcdpp::auth {

// etcd's default bcrypt cost.
inline constexpr int kDefaultBcryptCost = 10;

// A "$2b$<cost>$..." hash of `password` with a fresh random salt.
Result<std::string> HashPassword(std::string_view password, int cost = kDefaultBcryptCost);

// True when `password` hashes to `hash` (with the salt and cost `hash`
// carries). The comparison takes the same time wherever the hashes differ.
bool CheckPassword(std::string_view hash, std::string_view password);

}  // namespace etcdpp::auth
