#include "api/auth_service.h"

#include <algorithm>

#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/read_executor.h"
#include "auth/auth_store.h"
#include "auth/password.h"
#include "auth/token_store.h"
#include "mvcc/kv_store.h"

namespace etcdpp::api {
namespace {

using internalpb::InternalRaftRequest;

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* context, const Status& st) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

// Proposes `request` for `sender`; `reactor` finishes once it is applied.
template <typename Response>
void ProposeAs(const AuthServiceDeps& deps, const auth::AuthInfo& sender,
               InternalRaftRequest request, Response* response, grpc::ServerUnaryReactor* reactor) {
  StampSender(sender, &request);
  const server::ClusterView* cluster = deps.cluster;
  deps.proposer->Propose(std::move(request), response,
                         [cluster, reactor, response](const Status& st) {
                           if (st.ok()) cluster->FillHeader(response->mutable_header());
                           reactor->Finish(ToGrpcStatus(st));
                         });
}

}  // namespace

template <typename Response>
grpc::ServerUnaryReactor* AuthService::Propose(grpc::CallbackServerContext* context,
                                               InternalRaftRequest request, Response* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  auto sender = SenderOf(deps_.auth, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ProposeAs(deps_, *sender, std::move(request), response, reactor);
  return reactor;
}

template <typename Response, typename ReadFn>
grpc::ServerUnaryReactor* AuthService::Read(grpc::CallbackServerContext* context,
                                            Response* response, ReadFn read) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  auto sender = SenderOf(deps_.auth, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const server::ClusterView* cluster = deps_.cluster;
  auth::AuthStore* store = deps_.auth;
  deps_.barrier->WaitLinearizable(
      [cluster, store, reactor, response, read, info = std::move(*sender)](const Status& barrier) {
        if (!barrier.ok()) {
          reactor->Finish(ToGrpcStatus(barrier));
          return;
        }
        std::shared_ptr<const auth::AuthState> state = store->state();
        Status st = read(*state, info);
        if (st.ok()) {
          cluster->FillHeader(response->mutable_header());
          response->mutable_header()->set_revision(cluster->revision());
        }
        reactor->Finish(ToGrpcStatus(st));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::AuthEnable(grpc::CallbackServerContext* context,
                                                  const etcdserverpb::AuthEnableRequest* request,
                                                  etcdserverpb::AuthEnableResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_auth_enable() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::AuthDisable(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::AuthDisableRequest* request,
                                                   etcdserverpb::AuthDisableResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_auth_disable() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::AuthStatus(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthStatusRequest* /*request*/,
    etcdserverpb::AuthStatusResponse* response) {
  return Read(context, response, [response](const auth::AuthState& state, const auth::AuthInfo&) {
    response->set_enabled(state.enabled);
    response->set_authrevision(state.revision);
    return Status::OK();
  });
}

grpc::ServerUnaryReactor* AuthService::Authenticate(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthenticateRequest* request,
    etcdserverpb::AuthenticateResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  AuthServiceDeps deps = deps_;
  // The users, passwords and the enabled flag are read after a linearizable
  // barrier, as etcd does: a client that enabled auth, or changed a
  // password, through another member must find that change here. The
  // barrier's callback runs on the apply thread, so it only looks up and
  // hands bcrypt to the password pool.
  deps_.barrier->WaitLinearizable([deps, reactor, request, response](const Status& ready) {
    if (!ready.ok()) {
      reactor->Finish(ToGrpcStatus(ready));
      return;
    }
    std::shared_ptr<const auth::AuthState> state = deps.auth->state();
    if (!state->enabled) {
      reactor->Finish(ToGrpcStatus(Status(Code::kAuthNotEnabled)));
      return;
    }
    auto user = state->users.find(request->name());
    if (user == state->users.end() || user->second.options().no_password()) {
      reactor->Finish(ToGrpcStatus(Status(Code::kAuthFailed)));
      return;
    }
    // bcrypt's cost is paid once here, per Authenticate; requests carrying
    // the token it yields are checked with a map lookup.
    deps.password_pool->Submit(
        [deps, reactor, request, response, hash = user->second.password()]() {
          if (!auth::CheckPassword(hash, request->password())) {
            reactor->Finish(ToGrpcStatus(Status(Code::kAuthFailed)));
            return;
          }
          InternalRaftRequest proposal;
          proposal.mutable_authenticate()->set_name(request->name());
          proposal.mutable_authenticate()->set_token_prefix(auth::NewTokenSecret());
          ProposeAs(deps, auth::AuthInfo{}, std::move(proposal), response, reactor);
        });
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserAdd(grpc::CallbackServerContext* context,
                                               const etcdserverpb::AuthUserAddRequest* request,
                                               etcdserverpb::AuthUserAddResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  if (request->name().empty()) return FinishWith(context, Status(Code::kUserEmpty));
  auto sender = SenderOf(deps_.auth, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  // Refused before bcrypt's time is spent on its password.
  Status admin = deps_.auth->state()->CheckAdmin(*sender);
  if (!admin.ok()) return FinishWith(context, admin);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  AuthServiceDeps deps = deps_;
  deps_.password_pool->Submit([deps, reactor, request, response, info = std::move(*sender)]() {
    InternalRaftRequest proposal;
    auto* add = proposal.mutable_user_add();
    add->set_name(request->name());
    const bool no_password = request->options().no_password();
    add->set_no_password(no_password);
    if (!no_password) {
      auto hash = auth::HashPassword(request->password(), deps.bcrypt_cost);
      if (!hash.ok()) {
        reactor->Finish(ToGrpcStatus(hash.status()));
        return;
      }
      add->set_password_hash(std::move(hash.value()));
    }
    ProposeAs(deps, info, std::move(proposal), response, reactor);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserChangePassword(
    grpc::CallbackServerContext* context,
    const etcdserverpb::AuthUserChangePasswordRequest* request,
    etcdserverpb::AuthUserChangePasswordResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  auto sender = SenderOf(deps_.auth, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  Status admin = deps_.auth->state()->CheckAdmin(*sender);
  if (!admin.ok()) return FinishWith(context, admin);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  AuthServiceDeps deps = deps_;
  deps_.password_pool->Submit([deps, reactor, request, response, info = std::move(*sender)]() {
    auto hash = auth::HashPassword(request->password(), deps.bcrypt_cost);
    if (!hash.ok()) {
      reactor->Finish(ToGrpcStatus(hash.status()));
      return;
    }
    InternalRaftRequest proposal;
    proposal.mutable_user_change_password()->set_name(request->name());
    proposal.mutable_user_change_password()->set_password_hash(std::move(hash.value()));
    ProposeAs(deps, info, std::move(proposal), response, reactor);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserGet(grpc::CallbackServerContext* context,
                                               const etcdserverpb::AuthUserGetRequest* request,
                                               etcdserverpb::AuthUserGetResponse* response) {
  return Read(context, response,
              [request, response](const auth::AuthState& state, const auth::AuthInfo& info) {
                // A user may always look at itself.
                Status admin = state.CheckAdmin(info);
                if (!admin.ok() && request->name() != info.username) return admin;
                auto user = state.users.find(request->name());
                if (user == state.users.end()) return Status(Code::kUserNotFound);
                for (const std::string& role : user->second.roles()) response->add_roles(role);
                return Status::OK();
              });
}

grpc::ServerUnaryReactor* AuthService::UserList(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthUserListRequest* /*request*/,
    etcdserverpb::AuthUserListResponse* response) {
  return Read(context, response,
              [response](const auth::AuthState& state, const auth::AuthInfo& info) {
                ETCDPP_RETURN_IF_ERROR(state.CheckAdmin(info));
                for (const auto& [name, user] : state.users) response->add_users(name);
                return Status::OK();
              });
}

grpc::ServerUnaryReactor* AuthService::UserDelete(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthUserDeleteRequest* request,
    etcdserverpb::AuthUserDeleteResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_user_delete() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::UserGrantRole(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthUserGrantRoleRequest* request,
    etcdserverpb::AuthUserGrantRoleResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_user_grant_role() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::UserRevokeRole(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthUserRevokeRoleRequest* request,
    etcdserverpb::AuthUserRevokeRoleResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_user_revoke_role() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::RoleAdd(grpc::CallbackServerContext* context,
                                               const etcdserverpb::AuthRoleAddRequest* request,
                                               etcdserverpb::AuthRoleAddResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_role_add() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::RoleGet(grpc::CallbackServerContext* context,
                                               const etcdserverpb::AuthRoleGetRequest* request,
                                               etcdserverpb::AuthRoleGetResponse* response) {
  return Read(context, response,
              [request, response](const auth::AuthState& state, const auth::AuthInfo& info) {
                // A user may look at the roles it holds.
                Status admin = state.CheckAdmin(info);
                if (!admin.ok() && !state.UserHasRole(info.username, request->role())) {
                  return admin;
                }
                auto role = state.roles.find(request->role());
                if (role == state.roles.end()) return Status(Code::kRoleNotFound);
                for (const authpb::Permission& p : role->second.keypermission()) {
                  *response->add_perm() = p;
                }
                return Status::OK();
              });
}

grpc::ServerUnaryReactor* AuthService::RoleList(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthRoleListRequest* /*request*/,
    etcdserverpb::AuthRoleListResponse* response) {
  return Read(context, response,
              [response](const auth::AuthState& state, const auth::AuthInfo& info) {
                ETCDPP_RETURN_IF_ERROR(state.CheckAdmin(info));
                for (const auto& [name, role] : state.roles) response->add_roles(name);
                return Status::OK();
              });
}

grpc::ServerUnaryReactor* AuthService::RoleDelete(
    grpc::CallbackServerContext* context, const etcdserverpb::AuthRoleDeleteRequest* request,
    etcdserverpb::AuthRoleDeleteResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_role_delete() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::RoleGrantPermission(
    grpc::CallbackServerContext* context,
    const etcdserverpb::AuthRoleGrantPermissionRequest* request,
    etcdserverpb::AuthRoleGrantPermissionResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_role_grant_permission() = *request;
  return Propose(context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* AuthService::RoleRevokePermission(
    grpc::CallbackServerContext* context,
    const etcdserverpb::AuthRoleRevokePermissionRequest* request,
    etcdserverpb::AuthRoleRevokePermissionResponse* response) {
  InternalRaftRequest proposal;
  *proposal.mutable_role_revoke_permission() = *request;
  return Propose(context, std::move(proposal), response);
}

}  // namespace etcdpp::api
