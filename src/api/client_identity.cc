#include "api/client_identity.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <map>
#include <mutex>

namespace etcdpp::api {
namespace {

struct Entry {
  uint64_t ticket = 0;
  std::optional<std::string> common_name;
};

struct IdentityTable {
  std::mutex mu;
  std::map<int, Entry> by_fd;  // guarded by mu
  uint64_t next_ticket = 1;    // guarded by mu
};

IdentityTable& Table() {
  static IdentityTable* table = new IdentityTable();  // never destroyed: used at exit
  return *table;
}

// Drawn once per process; never leaves it.
constexpr size_t kSealBytes = 32;
const std::string& Seal() {
  static const std::string* seal = [] {
    auto* bytes = new std::string(kSealBytes, '\0');  // never destroyed: used at exit
    // Without randomness no value can be trusted: abort rather than serve
    // calls whose identity anyone could claim.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes->data()), kSealBytes) != 1) std::abort();
    return bytes;
  }();
  return *seal;
}

// The name a relayed call's metadata states, if its value carries the seal.
std::optional<std::string> RelayedCommonName(const grpc::ServerContextBase& ctx) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(kRelayedIdentityKey);
  if (it == metadata.end()) return std::nullopt;
  const std::string_view value(it->second.data(), it->second.size());
  const std::string& seal = Seal();
  if (value.size() < seal.size() || CRYPTO_memcmp(value.data(), seal.data(), seal.size()) != 0) {
    return std::nullopt;
  }
  return std::string(value.substr(seal.size()));
}

}  // namespace

std::string SealedIdentity(std::string_view common_name) {
  std::string value = Seal();
  value.append(common_name);
  return value;
}

std::optional<std::string> VerifiedClientCommonName(const grpc::ServerContextBase& ctx) {
  const std::string peer = ctx.peer();
  constexpr std::string_view kPrefix = "fd:";
  // Not a connection gRPC itself serves: a call the front relayed, whose
  // name only the sealed metadata entry can state.
  if (peer.compare(0, kPrefix.size(), kPrefix) != 0) return RelayedCommonName(ctx);
  // A connection gRPC serves: its name is in the table, whatever its
  // metadata says.
  int fd = 0;
  for (size_t i = kPrefix.size(); i < peer.size(); ++i) {
    if (peer[i] < '0' || peer[i] > '9') return std::nullopt;
    fd = fd * 10 + (peer[i] - '0');
  }
  IdentityTable& table = Table();
  std::lock_guard<std::mutex> lock(table.mu);
  auto it = table.by_fd.find(fd);
  if (it == table.by_fd.end()) return std::nullopt;
  return it->second.common_name;
}

uint64_t BindClientIdentity(int fd, std::optional<std::string> common_name) {
  IdentityTable& table = Table();
  std::lock_guard<std::mutex> lock(table.mu);
  const uint64_t ticket = table.next_ticket++;
  if (common_name.has_value()) {
    table.by_fd[fd] = Entry{ticket, std::move(common_name)};
  } else {
    table.by_fd.erase(fd);
  }
  return ticket;
}

void UnbindClientIdentity(int fd, uint64_t ticket) {
  IdentityTable& table = Table();
  std::lock_guard<std::mutex> lock(table.mu);
  auto it = table.by_fd.find(fd);
  if (it != table.by_fd.end() && it->second.ticket == ticket) table.by_fd.erase(it);
}

}  // namespace etcdpp::api
