#include "auth/auth_store.h"

#include <algorithm>

#include "base/coding.h"
#include "mvcc/kv_store.h"

namespace etcdpp::auth {
namespace {

constexpr char kUsersTable[] = "auth_users";
constexpr char kRolesTable[] = "auth_roles";
constexpr char kAuthTable[] = "auth";
constexpr char kEnabledKey[] = "enabled";
constexpr char kRevisionKey[] = "revision";

using etcdserverpb::RequestOp;
using internalpb::InternalRaftRequest;

etcdserverpb::ResponseHeader* HeaderOf(google::protobuf::Message* response) {
  if (response == nullptr) return nullptr;
  const auto* field = response->GetDescriptor()->FindFieldByName("header");
  if (field == nullptr) return nullptr;
  return static_cast<etcdserverpb::ResponseHeader*>(
      response->GetReflection()->MutableMessage(response, field));
}

template <typename Response>
Response* As(google::protobuf::Message* response) {
  return response == nullptr ? nullptr : static_cast<Response*>(response);
}

bool SameRange(const authpb::Permission& p, std::string_view key, std::string_view end) {
  return p.key() == key && p.range_end() == end;
}

Status CheckOps(const AuthState& state, const AuthInfo& info,
                const google::protobuf::RepeatedPtrField<RequestOp>& ops) {
  for (const RequestOp& op : ops) {
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        ETCDPP_RETURN_IF_ERROR(state.CheckRange(info, op.request_range()));
        break;
      case RequestOp::kRequestPut:
        ETCDPP_RETURN_IF_ERROR(state.CheckPut(info, op.request_put()));
        break;
      case RequestOp::kRequestDeleteRange:
        ETCDPP_RETURN_IF_ERROR(state.CheckDeleteRange(info, op.request_delete_range()));
        break;
      case RequestOp::kRequestTxn:
        ETCDPP_RETURN_IF_ERROR(state.CheckTxn(info, op.request_txn()));
        break;
      default:
        break;
    }
  }
  return Status::OK();
}

}  // namespace

// ---------------------------------------------------------------------------
// AuthState

void AuthState::Rebuild() {
  permissions.clear();
  for (const auto& [name, user] : users) {
    UserPermissions& perms = permissions[name];
    for (const std::string& role_name : user.roles()) {
      if (role_name == kRootRole) perms.root = true;
      auto role = roles.find(role_name);
      if (role == roles.end()) continue;
      for (const authpb::Permission& p : role->second.keypermission()) {
        if (p.permtype() != authpb::Permission::WRITE) perms.read.Add(p.key(), p.range_end());
        if (p.permtype() != authpb::Permission::READ) perms.write.Add(p.key(), p.range_end());
      }
    }
  }
}

bool AuthState::UserHasRole(std::string_view user, std::string_view role) const {
  auto it = users.find(user);
  if (it == users.end()) return false;
  const auto& roles_of = it->second.roles();
  return std::find(roles_of.begin(), roles_of.end(), role) != roles_of.end();
}

Status AuthState::CheckKeys(const AuthInfo& info, Access access, std::string_view key,
                            std::string_view range_end) const {
  if (!enabled) return Status::OK();
  if (info.revision == 0) return Status(Code::kUserEmpty);
  if (info.revision < revision) return Status(Code::kAuthOldRevision);
  auto it = permissions.find(info.username);
  if (it == permissions.end()) return Status(Code::kPermissionDenied);
  if (!it->second.Permits(access, key, range_end)) return Status(Code::kPermissionDenied);
  return Status::OK();
}

Status AuthState::CheckAdmin(const AuthInfo& info) const {
  if (!enabled) return Status::OK();
  if (info.revision == 0 || info.username.empty()) return Status(Code::kUserEmpty);
  auto it = permissions.find(info.username);
  if (it == permissions.end() || !it->second.root) return Status(Code::kPermissionDenied);
  return Status::OK();
}

Status AuthState::CheckRange(const AuthInfo& info, const etcdserverpb::RangeRequest& r) const {
  return CheckKeys(info, Access::kRead, r.key(), r.range_end());
}

Status AuthState::CheckPut(const AuthInfo& info, const etcdserverpb::PutRequest& r) const {
  ETCDPP_RETURN_IF_ERROR(CheckKeys(info, Access::kWrite, r.key(), {}));
  if (r.prev_kv()) return CheckKeys(info, Access::kRead, r.key(), {});
  return Status::OK();
}

Status AuthState::CheckDeleteRange(const AuthInfo& info,
                                   const etcdserverpb::DeleteRangeRequest& r) const {
  if (r.prev_kv()) ETCDPP_RETURN_IF_ERROR(CheckKeys(info, Access::kRead, r.key(), r.range_end()));
  return CheckKeys(info, Access::kWrite, r.key(), r.range_end());
}

Status AuthState::CheckTxn(const AuthInfo& info, const etcdserverpb::TxnRequest& r) const {
  if (!enabled) return Status::OK();
  for (const etcdserverpb::Compare& c : r.compare()) {
    ETCDPP_RETURN_IF_ERROR(CheckKeys(info, Access::kRead, c.key(), c.range_end()));
  }
  ETCDPP_RETURN_IF_ERROR(CheckOps(*this, info, r.success()));
  return CheckOps(*this, info, r.failure());
}

// ---------------------------------------------------------------------------
// AuthStore

AuthStore::AuthStore(std::chrono::seconds token_ttl, Clock* clock,
                     std::shared_ptr<const JwtTokens> jwt)
    : tokens_(token_ttl, clock),
      jwt_(std::move(jwt)),
      state_(std::make_shared<const AuthState>()) {}

Status AuthStore::Load(const mvcc::KvStore& store) {
  auto next = std::make_shared<AuthState>();
  auto read = store.Read();
  if (!read.ok()) return read.status();
  if (auto table = (*read)->OpenTable(kUsersTable); table.ok()) {
    mvcc::Cursor c = table->NewCursor();
    for (bool on = c.SeekFirst(); on; on = c.Next()) {
      authpb::User user;
      if (!user.ParseFromArray(c.value().data(), static_cast<int>(c.value().size()))) {
        return Status::Corruption("auth: malformed user record");
      }
      next->users[std::string(c.key())] = std::move(user);
    }
    ETCDPP_RETURN_IF_ERROR(c.status());
  } else if (table.status().code() != Code::kNotFound) {
    return table.status();
  }
  if (auto table = (*read)->OpenTable(kRolesTable); table.ok()) {
    mvcc::Cursor c = table->NewCursor();
    for (bool on = c.SeekFirst(); on; on = c.Next()) {
      authpb::Role role;
      if (!role.ParseFromArray(c.value().data(), static_cast<int>(c.value().size()))) {
        return Status::Corruption("auth: malformed role record");
      }
      next->roles[std::string(c.key())] = std::move(role);
    }
    ETCDPP_RETURN_IF_ERROR(c.status());
  } else if (table.status().code() != Code::kNotFound) {
    return table.status();
  }
  if (auto table = (*read)->OpenTable(kAuthTable); table.ok()) {
    auto enabled = table->Get(kEnabledKey);
    if (!enabled.ok()) return enabled.status();
    next->enabled = enabled->has_value() && **enabled == "1";
    auto revision = table->Get(kRevisionKey);
    if (!revision.ok()) return revision.status();
    if (revision->has_value()) {
      if ((*revision)->size() != 8) return Status::Corruption("auth: malformed revision");
      next->revision = GetBE64((*revision)->data());
    }
  } else if (table.status().code() != Code::kNotFound) {
    return table.status();
  }
  next->Rebuild();
  if (!next->enabled) tokens_.InvalidateAll();
  Publish(std::move(next));
  return Status::OK();
}

void AuthStore::Publish(std::shared_ptr<const AuthState> next) {
  state_.store(std::move(next), std::memory_order_release);
}

AuthInfo AuthStore::InfoFromCommonName(std::string_view common_name) const {
  return AuthInfo{std::string(common_name), state()->revision};
}

Result<AuthInfo> AuthStore::InfoFromToken(const std::optional<std::string>& token) const {
  if (!token) return AuthInfo{};
  if (jwt_ != nullptr) {
    std::optional<JwtClaims> claims = jwt_->Verify(*token);
    if (!claims) return Status(Code::kInvalidAuthToken);
    return AuthInfo{std::move(claims->username), claims->revision};
  }
  // The revision is read before the token: a change applied in between
  // makes the request look older, never newer, than what it was checked at.
  const uint64_t revision = state()->revision;
  std::optional<std::string> user = tokens_.Lookup(*token);
  if (!user) return Status(Code::kInvalidAuthToken);
  return AuthInfo{std::move(*user), revision};
}

bool AuthStore::IsAuthRequest(const InternalRaftRequest& request) {
  switch (request.request_case()) {
    case InternalRaftRequest::kAuthEnable:
    case InternalRaftRequest::kAuthDisable:
    case InternalRaftRequest::kAuthenticate:
    case InternalRaftRequest::kUserAdd:
    case InternalRaftRequest::kUserDelete:
    case InternalRaftRequest::kUserChangePassword:
    case InternalRaftRequest::kUserGrantRole:
    case InternalRaftRequest::kUserRevokeRole:
    case InternalRaftRequest::kRoleAdd:
    case InternalRaftRequest::kRoleDelete:
    case InternalRaftRequest::kRoleGrantPermission:
    case InternalRaftRequest::kRoleRevokePermission:
      return true;
    default:
      return false;
  }
}

Status AuthStore::CheckWrite(const InternalRaftRequest& request) const {
  std::shared_ptr<const AuthState> state = this->state();
  if (!state->enabled) return Status::OK();
  const AuthInfo info{request.header().username(), request.header().auth_revision()};
  switch (request.request_case()) {
    case InternalRaftRequest::kPut:
      return state->CheckPut(info, request.put());
    case InternalRaftRequest::kDeleteRange:
      return state->CheckDeleteRange(info, request.delete_range());
    case InternalRaftRequest::kTxn:
      return state->CheckTxn(info, request.txn());
    default:
      return Status::OK();
  }
}

Status AuthStore::Apply(mvcc::WriteTxn& txn, const InternalRaftRequest& request,
                        google::protobuf::Message* response, uint64_t index) {
  std::shared_ptr<const AuthState> current = state();
  const AuthInfo sender{request.header().username(), request.header().auth_revision()};
  if (!request.has_authenticate()) ETCDPP_RETURN_IF_ERROR(current->CheckAdmin(sender));
  if (etcdserverpb::ResponseHeader* header = HeaderOf(response)) header->set_revision(txn.Rev());

  auto next = std::make_shared<AuthState>(*current);
  bool changed = true;
  switch (request.request_case()) {
    case InternalRaftRequest::kAuthEnable: {
      if (next->enabled) {
        changed = false;
        break;
      }
      auto root = next->users.find(kRootUser);
      if (root == next->users.end()) return Status(Code::kRootUserNotExist);
      if (!next->UserHasRole(kRootUser, kRootRole)) return Status(Code::kRootRoleNotExist);
      next->enabled = true;
      break;
    }
    case InternalRaftRequest::kAuthDisable:
      if (!next->enabled) {
        changed = false;
        break;
      }
      next->enabled = false;
      tokens_.InvalidateAll();
      break;
    case InternalRaftRequest::kAuthenticate: {
      const auto& r = request.authenticate();
      if (!next->enabled) return Status(Code::kAuthNotEnabled);
      auto user = next->users.find(r.name());
      if (user == next->users.end() || user->second.options().no_password()) {
        return Status(Code::kAuthFailed);
      }
      if (jwt_ != nullptr) {
        // A JWT is stateless: only the member that answers the client
        // signs one, with the revision its permissions are as of.
        if (auto* resp = As<etcdserverpb::AuthenticateResponse>(response)) {
          auto token = jwt_->Sign(r.name(), next->revision);
          if (!token.ok()) return token.status();
          resp->set_token(std::move(*token));
        }
        changed = false;
        break;
      }
      const std::string token = FormatToken(r.token_prefix(), index);
      tokens_.Assign(token, r.name());
      if (auto* resp = As<etcdserverpb::AuthenticateResponse>(response)) resp->set_token(token);
      changed = false;
      break;
    }
    case InternalRaftRequest::kUserAdd: {
      const auto& r = request.user_add();
      if (r.name().empty()) return Status(Code::kUserEmpty);
      if (next->users.count(r.name()) != 0) return Status(Code::kUserAlreadyExist);
      authpb::User& user = next->users[r.name()];
      user.set_name(r.name());
      user.set_password(r.password_hash());
      user.mutable_options()->set_no_password(r.no_password());
      break;
    }
    case InternalRaftRequest::kUserDelete: {
      const auto& r = request.user_delete();
      if (next->enabled && r.name() == kRootUser) return Status(Code::kInvalidAuthMgmt);
      if (next->users.erase(r.name()) == 0) return Status(Code::kUserNotFound);
      tokens_.InvalidateUser(r.name());
      break;
    }
    case InternalRaftRequest::kUserChangePassword: {
      const auto& r = request.user_change_password();
      auto user = next->users.find(r.name());
      if (user == next->users.end()) return Status(Code::kUserNotFound);
      user->second.set_password(r.password_hash());
      tokens_.InvalidateUser(r.name());
      break;
    }
    case InternalRaftRequest::kUserGrantRole: {
      const auto& r = request.user_grant_role();
      auto user = next->users.find(r.user());
      if (user == next->users.end()) return Status(Code::kUserNotFound);
      // The root role needs no record of its own: it grants everything.
      if (r.role() != kRootRole && next->roles.count(r.role()) == 0) {
        return Status(Code::kRoleNotFound);
      }
      auto* roles = user->second.mutable_roles();
      auto pos = std::lower_bound(roles->begin(), roles->end(), r.role());
      if (pos != roles->end() && *pos == r.role()) {
        changed = false;  // already granted: etcd answers OK and changes nothing
        break;
      }
      roles->Add(std::string(r.role()));
      std::sort(roles->begin(), roles->end());
      break;
    }
    case InternalRaftRequest::kUserRevokeRole: {
      const auto& r = request.user_revoke_role();
      if (next->enabled && r.name() == kRootUser && r.role() == kRootRole) {
        return Status(Code::kInvalidAuthMgmt);
      }
      auto user = next->users.find(r.name());
      if (user == next->users.end()) return Status(Code::kUserNotFound);
      auto* roles = user->second.mutable_roles();
      auto pos = std::find(roles->begin(), roles->end(), r.role());
      if (pos == roles->end()) return Status(Code::kRoleNotGranted);
      roles->erase(pos);
      break;
    }
    case InternalRaftRequest::kRoleAdd: {
      const auto& r = request.role_add();
      if (r.name().empty()) return Status(Code::kRoleEmpty);
      if (next->roles.count(r.name()) != 0) return Status(Code::kRoleAlreadyExist);
      next->roles[r.name()].set_name(r.name());
      break;
    }
    case InternalRaftRequest::kRoleDelete: {
      const auto& r = request.role_delete();
      if (next->enabled && r.role() == kRootRole) return Status(Code::kInvalidAuthMgmt);
      if (next->roles.erase(r.role()) == 0) return Status(Code::kRoleNotFound);
      for (auto& [name, user] : next->users) {
        auto* roles = user.mutable_roles();
        auto pos = std::find(roles->begin(), roles->end(), r.role());
        if (pos != roles->end()) roles->erase(pos);
      }
      break;
    }
    case InternalRaftRequest::kRoleGrantPermission: {
      const auto& r = request.role_grant_permission();
      auto role = next->roles.find(r.name());
      if (role == next->roles.end()) return Status(Code::kRoleNotFound);
      auto* perms = role->second.mutable_keypermission();
      auto same = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return SameRange(p, r.perm().key(), r.perm().range_end());
      });
      if (same != perms->end()) {
        same->set_permtype(r.perm().permtype());
      } else {
        *perms->Add() = r.perm();
        std::stable_sort(perms->begin(), perms->end(),
                         [](const authpb::Permission& a, const authpb::Permission& b) {
                           return a.key() < b.key();
                         });
      }
      break;
    }
    case InternalRaftRequest::kRoleRevokePermission: {
      const auto& r = request.role_revoke_permission();
      auto role = next->roles.find(r.role());
      if (role == next->roles.end()) return Status(Code::kRoleNotFound);
      auto* perms = role->second.mutable_keypermission();
      auto same = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return SameRange(p, r.key(), r.range_end());
      });
      if (same == perms->end()) return Status(Code::kPermissionNotGranted);
      perms->erase(same);
      break;
    }
    default:
      return Status::InvalidArgument("not an auth request");
  }
  if (!changed) return Status::OK();
  ++next->revision;
  next->Rebuild();
  ETCDPP_RETURN_IF_ERROR(Persist(txn, *current, *next));
  Publish(std::move(next));
  return Status::OK();
}

Status AuthStore::Persist(mvcc::WriteTxn& txn, const AuthState& before, const AuthState& after) {
  auto users = txn.OpenTable(kUsersTable);
  if (!users.ok()) return users.status();
  for (const auto& [name, user] : before.users) {
    if (after.users.count(name) == 0) ETCDPP_RETURN_IF_ERROR(users->Delete(name));
  }
  for (const auto& [name, user] : after.users) {
    auto old = before.users.find(name);
    const std::string encoded = user.SerializeAsString();
    if (old != before.users.end() && old->second.SerializeAsString() == encoded) continue;
    ETCDPP_RETURN_IF_ERROR(users->Put(name, encoded));
  }
  auto roles = txn.OpenTable(kRolesTable);
  if (!roles.ok()) return roles.status();
  for (const auto& [name, role] : before.roles) {
    if (after.roles.count(name) == 0) ETCDPP_RETURN_IF_ERROR(roles->Delete(name));
  }
  for (const auto& [name, role] : after.roles) {
    auto old = before.roles.find(name);
    const std::string encoded = role.SerializeAsString();
    if (old != before.roles.end() && old->second.SerializeAsString() == encoded) continue;
    ETCDPP_RETURN_IF_ERROR(roles->Put(name, encoded));
  }
  auto meta = txn.OpenTable(kAuthTable);
  if (!meta.ok()) return meta.status();
  ETCDPP_RETURN_IF_ERROR(meta->Put(kEnabledKey, after.enabled ? "1" : "0"));
  std::string revision(8, '\0');
  PutBE64(revision.data(), after.revision);
  return meta->Put(kRevisionKey, revision);
}

}  // namespace etcdpp::auth
