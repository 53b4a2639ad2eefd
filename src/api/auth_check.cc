#include "api/auth_check.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <iterator>

#include "api/client_identity.h"
#include "api/grpc_status.h"

namespace etcdpp::api {

std::optional<std::string> TokenOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  for (const char* name : {"token", "authorization"}) {
    auto it = metadata.find(name);
    if (it != metadata.end()) return std::string(it->second.data(), it->second.size());
  }
  return std::nullopt;
}

CallCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  CallCredentials credentials;
  credentials.token = TokenOf(context);
  if (!credentials.token) credentials.common_name = VerifiedClientCommonName(context);
  return credentials;
}

Result<auth::AuthInfo> SenderFrom(const auth::AuthStore* auth, const CallCredentials& credentials) {
  if (auth == nullptr) return auth::AuthInfo{};
  if (!credentials.token && credentials.common_name && !credentials.common_name->empty()) {
    return auth->InfoFromCommonName(*credentials.common_name);
  }
  return auth->InfoFromToken(credentials.token);
}

Result<auth::AuthInfo> SenderOf(const auth::AuthStore* auth,
                                const grpc::ServerContextBase& context) {
  if (auth == nullptr) return auth::AuthInfo{};
  return SenderFrom(auth, CredentialsOf(context));
}

std::string GrpcErrorText(const Status& status) {
  // Go's names of the gRPC codes, indexed by code number.
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const grpc::Status st = ToGrpcStatus(status);
  const auto code = static_cast<size_t>(st.error_code());
  const char* name = code < std::size(kNames) ? kNames[code] : "Unknown";
  return std::string("rpc error: code = ") + name + " desc = " + st.error_message();
}

void StampSender(const auth::AuthInfo& sender, internalpb::InternalRaftRequest* request) {
  if (sender.revision == 0) return;
  request->mutable_header()->set_username(sender.username);
  request->mutable_header()->set_auth_revision(sender.revision);
}

Status CheckAdmin(const auth::AuthStore* auth, const grpc::ServerContextBase& context) {
  if (auth == nullptr) return Status::OK();
  auto sender = SenderOf(auth, context);
  if (!sender.ok()) return sender.status();
  return auth->state()->CheckAdmin(*sender);
}

grpc::ServerUnaryReactor* RefuseUnlessAdmin(const auth::AuthStore* auth,
                                            grpc::CallbackServerContext* context) {
  Status st = CheckAdmin(auth, *context);
  if (st.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

grpc::ServerUnaryReactor* RefuseUnlessAdminForMaintenance(const auth::AuthStore* auth,
                                                          grpc::CallbackServerContext* context) {
  Status st = CheckAdmin(auth, *context);
  if (st.ok()) return nullptr;
  std::string message = "auth: permission denied";
  if (st.code() == Code::kUserEmpty) message = "auth: user name is empty";
  if (st.code() == Code::kInvalidAuthToken) message = "auth: invalid auth token";
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNKNOWN, message));
  return reactor;
}

}  // namespace etcdpp::api
