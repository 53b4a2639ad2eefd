// AuthStore: users, roles and their key permissions (etcd's auth store),
// replicated through Raft and persisted in the MVCC store's LMDB file, so a
// Raft snapshot carries it with the keys.
//
// Layout (named tables of mvcc::KvStore):
//   auth_users:  name -> authpb::User (password = bcrypt hash, roles sorted)
//   auth_roles:  name -> authpb::Role (permissions sorted by key)
//   auth:        "enabled" -> "0" | "1";  "revision" -> 8 bytes big-endian
// The revision starts at 1 and grows by one with every change that
// succeeds, enabling and disabling included; a request carries the revision
// its token was checked at, and the apply side refuses it when the store
// has moved on (kAuthOldRevision), so a permission change is never raced by
// a request that was checked against the old permissions.
//
// Threads: the apply thread writes (Apply, Load). Every other thread reads
// through state(): an immutable AuthState published by pointer swap, so a
// permission check takes no lock shared with the writer or other readers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.h"
#include "auth/permission.h"
#include "auth/token_store.h"
#include "authpb/auth.pb.h"
#include "base/clock.h"
#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"

namespace google::protobuf {
class Message;
}
namespace etcdpp::mvcc {
class KvStore;
class WriteTxn;
}  // namespace etcdpp::mvcc

namespace etcdpp::auth {

inline constexpr char kRootUser[] = "root";
inline constexpr char kRootRole[] = "root";

// Who sent a request, as its token said when the request arrived.
// revision 0: no token (etcd's empty AuthInfo).
struct AuthInfo {
  std::string username;
  uint64_t revision = 0;
};

// One published version of the auth store. Never changed once published.
struct AuthState {
  bool enabled = false;
  uint64_t revision = 1;
  std::map<std::string, authpb::User, std::less<>> users;
  std::map<std::string, authpb::Role, std::less<>> roles;
  // Derived from users and roles by Rebuild().
  std::map<std::string, UserPermissions, std::less<>> permissions;

  void Rebuild();
  bool UserHasRole(std::string_view user, std::string_view role) const;

  // etcd's checks, in its order: auth off -> OK; no user -> kUserEmpty;
  // token older than the store -> kAuthOldRevision (key checks only);
  // unknown user or missing grant -> kPermissionDenied.
  Status CheckKeys(const AuthInfo& info, Access access, std::string_view key,
                   std::string_view range_end) const;
  Status CheckAdmin(const AuthInfo& info) const;
  Status CheckRange(const AuthInfo& info, const etcdserverpb::RangeRequest& r) const;
  Status CheckPut(const AuthInfo& info, const etcdserverpb::PutRequest& r) const;
  Status CheckDeleteRange(const AuthInfo& info, const etcdserverpb::DeleteRangeRequest& r) const;
  // Every compare needs read access, every op of both branches its own
  // access, nested txns included.
  Status CheckTxn(const AuthInfo& info, const etcdserverpb::TxnRequest& r) const;
};

class AuthStore {
 public:
  // With `jwt`, Authenticate hands out JWTs signed by it and requests are
  // checked by verifying theirs; otherwise simple tokens with `token_ttl`.
  explicit AuthStore(std::chrono::seconds token_ttl = kDefaultTokenTtl,
                     Clock* clock = Clock::Real(), std::shared_ptr<const JwtTokens> jwt = nullptr);

  // Reads the store's tables (at start, and after a snapshot install
  // replaced the store). Tokens survive only if auth stays enabled.
  Status Load(const mvcc::KvStore& store);

  // The current version; cheap, lock-free for the caller's purposes.
  std::shared_ptr<const AuthState> state() const { return state_.load(std::memory_order_acquire); }
  SimpleTokens& tokens() { return tokens_; }

  // The request's AuthInfo from its token: no token -> empty AuthInfo;
  // an unknown or expired token (a JWT not signed by our key) ->
  // kInvalidAuthToken. A JWT's AuthInfo carries the revision it was made
  // at, a simple token's the store's current one.
  Result<AuthInfo> InfoFromToken(const std::optional<std::string>& token) const;

  // The AuthInfo of a request that came with a verified client certificate
  // and no token: the certificate's common name is the user, checked
  // against the store's current revision (as etcd does).
  AuthInfo InfoFromCommonName(std::string_view common_name) const;

  // True for the requests Apply handles.
  static bool IsAuthRequest(const internalpb::InternalRaftRequest& request);

  // Apply thread. Applies an auth request written at Raft index `index`;
  // `response` (may be null) has the request's response type. Errors leave
  // the store unchanged, except LMDB failures (the caller aborts).
  Status Apply(mvcc::WriteTxn& txn, const internalpb::InternalRaftRequest& request,
               google::protobuf::Message* response, uint64_t index);
  // Apply thread. Re-checks a KV write (put, delete, txn) against the
  // sender in its header, as of the store's current version. Compaction
  // is open to every user, as in etcd 3.4.
  Status CheckWrite(const internalpb::InternalRaftRequest& request) const;

 private:
  using Mutation = Status (AuthStore::*)(AuthState&, const internalpb::InternalRaftRequest&,
                                         google::protobuf::Message*, uint64_t);
  Status Persist(mvcc::WriteTxn& txn, const AuthState& before, const AuthState& after);
  void Publish(std::shared_ptr<const AuthState> next);

  SimpleTokens tokens_;
  const std::shared_ptr<const JwtTokens> jwt_;  // null: simple tokens
  std::atomic<std::shared_ptr<const AuthState>> state_;
};

}  // namespace etcdpp::auth
