#include "api/client_identity.h"

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

}  // namespace

std::optional<std::string> VerifiedClientCommonName(const grpc::ServerContextBase& ctx) {
  const std::string peer = ctx.peer();
  constexpr std::string_view kPrefix = "fd:";
  if (peer.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
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
