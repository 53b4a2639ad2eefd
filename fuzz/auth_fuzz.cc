// libFuzzer target for the authentication paths: arbitrary bytes are
// (1) decoded as an InternalRaftRequest and applied by AuthStore to one
// store that lives for the whole run (users, roles, grants, enable,
// authenticate, in any order and with any names and ranges), then every
// permission check runs for the sender the bytes name; (2) looked up as a
// token; (3) checked as a password against a fixed bcrypt hash and used as
// a hash setting. Must never crash or touch memory out of bounds; refusals
// must be etcd's errors, and a permission check must agree with the
// AuthState it ran on (root passes, a user without grants never does).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "auth/auth_store.h"
#include "auth/password.h"
#include "etcdpppb/internal.pb.h"
#include "mvcc/kv_store.h"

namespace {

using etcdpp::Code;
using etcdpp::Status;

struct World {
  std::unique_ptr<etcdpp::mvcc::KvStore> store;
  std::unique_ptr<etcdpp::auth::AuthStore> auth;
  std::string hash;
  uint64_t index = 0;
};

World& TheWorld() {
  static World world = [] {
    World w;
    // Invalid UTF-8 in string fields is an ordinary parse failure here.
    google::protobuf::SetLogHandler(nullptr);
    std::string dir = (std::filesystem::temp_directory_path() / "etcdpp-auth-fuzz-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    static std::string to_remove = dir;
    std::atexit([] { std::filesystem::remove_all(to_remove); });
    auto opened = etcdpp::mvcc::KvStore::Open(dir);
    if (!opened.ok()) std::abort();
    w.store = std::move(opened.value());
    w.auth = std::make_unique<etcdpp::auth::AuthStore>();
    if (!w.auth->Load(*w.store).ok()) std::abort();
    auto hash = etcdpp::auth::HashPassword("fuzz", 4);
    if (!hash.ok()) std::abort();
    w.hash = *hash;
    return w;
  }();
  return world;
}

void RequireEtcdError(const Status& st) {
  if (st.ok()) return;
  switch (st.code()) {
    case Code::kInternal:
    case Code::kIOError:
    case Code::kCorruption:
    case Code::kUnimplemented:
      std::abort();
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  etcdpp::internalpb::InternalRaftRequest request;
  if (request.ParseFromString(bytes)) {
    if (etcdpp::auth::AuthStore::IsAuthRequest(request)) {
      auto txn = w.store->Write();
      if (!txn.ok()) std::abort();
      etcdserverpb::AuthenticateResponse resp;
      Status st =
          w.auth->Apply(**txn, request, request.has_authenticate() ? &resp : nullptr, ++w.index);
      RequireEtcdError(st);
      if (!(*txn)->Commit().ok()) std::abort();
    } else {
      RequireEtcdError(w.auth->CheckWrite(request));
    }
    auto state = w.auth->state();
    const etcdpp::auth::AuthInfo sender{request.header().username(), state->revision};
    const auto& r = request.range();
    const Status read = state->CheckRange(sender, r);
    RequireEtcdError(read);
    if (state->enabled) {
      auto perms = state->permissions.find(sender.username);
      const bool root = perms != state->permissions.end() && perms->second.root;
      if (root && !read.ok()) std::abort();
      if (perms == state->permissions.end() && read.ok()) std::abort();
    } else if (!read.ok()) {
      std::abort();
    }
    RequireEtcdError(state->CheckTxn(sender, request.txn()));
  }

  // Token lookups: unknown bytes never name a user.
  auto info = w.auth->InfoFromToken(bytes);
  if (info.ok() && info->username.empty()) std::abort();

  // Password checks: only "fuzz" matches; the bytes as a hash setting must
  // not crash libcrypt's parser (short inputs keep bcrypt rounds cheap).
  if (size <= 80) {
    if (etcdpp::auth::CheckPassword(w.hash, bytes) != (bytes == "fuzz")) std::abort();
    (void)etcdpp::auth::CheckPassword(bytes, "fuzz");
  }
  return 0;
}
