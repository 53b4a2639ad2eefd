// The etcdserverpb.Auth gRPC service: enabling auth, authenticating, users
// and roles (docs/auth.md).
//
// Changes go through Raft and are applied by auth::AuthStore on every
// member; passwords are hashed here, on the member that received them,
// before anything is proposed, so the log holds only bcrypt hashes and the
// apply thread never spends bcrypt's time. Hashing and password checks run
// on `password_pool`, not on gRPC's threads. Gets and lists are answered
// locally after the read barrier. The pointers are not owned and outlive
// the service.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/interfaces.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class ReadExecutor;

struct AuthServiceDeps {
  server::Proposer* proposer;
  server::ReadBarrier* barrier;
  const server::ClusterView* cluster;
  auth::AuthStore* auth;
  ReadExecutor* password_pool;
  int bcrypt_cost;
};

class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(AuthServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* AuthEnable(grpc::CallbackServerContext* context,
                                       const etcdserverpb::AuthEnableRequest* request,
                                       etcdserverpb::AuthEnableResponse* response) override;
  grpc::ServerUnaryReactor* AuthDisable(grpc::CallbackServerContext* context,
                                        const etcdserverpb::AuthDisableRequest* request,
                                        etcdserverpb::AuthDisableResponse* response) override;
  grpc::ServerUnaryReactor* AuthStatus(grpc::CallbackServerContext* context,
                                       const etcdserverpb::AuthStatusRequest* request,
                                       etcdserverpb::AuthStatusResponse* response) override;
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* context,
                                         const etcdserverpb::AuthenticateRequest* request,
                                         etcdserverpb::AuthenticateResponse* response) override;
  grpc::ServerUnaryReactor* UserAdd(grpc::CallbackServerContext* context,
                                    const etcdserverpb::AuthUserAddRequest* request,
                                    etcdserverpb::AuthUserAddResponse* response) override;
  grpc::ServerUnaryReactor* UserGet(grpc::CallbackServerContext* context,
                                    const etcdserverpb::AuthUserGetRequest* request,
                                    etcdserverpb::AuthUserGetResponse* response) override;
  grpc::ServerUnaryReactor* UserList(grpc::CallbackServerContext* context,
                                     const etcdserverpb::AuthUserListRequest* request,
                                     etcdserverpb::AuthUserListResponse* response) override;
  grpc::ServerUnaryReactor* UserDelete(grpc::CallbackServerContext* context,
                                       const etcdserverpb::AuthUserDeleteRequest* request,
                                       etcdserverpb::AuthUserDeleteResponse* response) override;
  grpc::ServerUnaryReactor* UserChangePassword(
      grpc::CallbackServerContext* context,
      const etcdserverpb::AuthUserChangePasswordRequest* request,
      etcdserverpb::AuthUserChangePasswordResponse* response) override;
  grpc::ServerUnaryReactor* UserGrantRole(
      grpc::CallbackServerContext* context, const etcdserverpb::AuthUserGrantRoleRequest* request,
      etcdserverpb::AuthUserGrantRoleResponse* response) override;
  grpc::ServerUnaryReactor* UserRevokeRole(
      grpc::CallbackServerContext* context, const etcdserverpb::AuthUserRevokeRoleRequest* request,
      etcdserverpb::AuthUserRevokeRoleResponse* response) override;
  grpc::ServerUnaryReactor* RoleAdd(grpc::CallbackServerContext* context,
                                    const etcdserverpb::AuthRoleAddRequest* request,
                                    etcdserverpb::AuthRoleAddResponse* response) override;
  grpc::ServerUnaryReactor* RoleGet(grpc::CallbackServerContext* context,
                                    const etcdserverpb::AuthRoleGetRequest* request,
                                    etcdserverpb::AuthRoleGetResponse* response) override;
  grpc::ServerUnaryReactor* RoleList(grpc::CallbackServerContext* context,
                                     const etcdserverpb::AuthRoleListRequest* request,
                                     etcdserverpb::AuthRoleListResponse* response) override;
  grpc::ServerUnaryReactor* RoleDelete(grpc::CallbackServerContext* context,
                                       const etcdserverpb::AuthRoleDeleteRequest* request,
                                       etcdserverpb::AuthRoleDeleteResponse* response) override;
  grpc::ServerUnaryReactor* RoleGrantPermission(
      grpc::CallbackServerContext* context,
      const etcdserverpb::AuthRoleGrantPermissionRequest* request,
      etcdserverpb::AuthRoleGrantPermissionResponse* response) override;
  grpc::ServerUnaryReactor* RoleRevokePermission(
      grpc::CallbackServerContext* context,
      const etcdserverpb::AuthRoleRevokePermissionRequest* request,
      etcdserverpb::AuthRoleRevokePermissionResponse* response) override;

 private:
  template <typename Response>
  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* context,
                                    internalpb::InternalRaftRequest request, Response* response);
  template <typename Response, typename ReadFn>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* context, Response* response,
                                 ReadFn read);

  const AuthServiceDeps deps_;
};

}  // namespace etcdpp::api
