// The API side of auth: who sent a call (its token, from gRPC metadata
// "token", or "authorization" as etcd's gateway sends it) and the checks a
// handler runs before it reads or proposes. Writes are checked again on
// the apply side against the auth revision stamped here (docs/auth.md).
//
// A null AuthStore means auth is not wired in (unit tests of other
// services): every call is let through, as with auth disabled.
#pragma once

#include <optional>
#include <string>

#include "auth/auth_store.h"
#include "base/status.h"
#include "etcdpppb/internal.pb.h"

namespace grpc {
class CallbackServerContext;
class ServerContextBase;
class ServerUnaryReactor;
}  // namespace grpc

namespace etcdpp::api {

// The token the client sent, if any.
std::optional<std::string> TokenOf(const grpc::ServerContextBase& context);

// What a call shows of its sender: its token, and the common name of the
// client certificate TLS verified (only with --client-cert-auth, which
// alone makes the client port ask for certificates).
struct CallCredentials {
  std::optional<std::string> token;
  std::optional<std::string> common_name;
};
CallCredentials CredentialsOf(const grpc::ServerContextBase& context);

// The sender of the call, as etcd decides it: the token's user when there
// is a token (kInvalidAuthToken for one this member does not accept, even
// with a certificate); else the certificate's common name; else an empty
// AuthInfo.
Result<auth::AuthInfo> SenderFrom(const auth::AuthStore* auth, const CallCredentials& credentials);
Result<auth::AuthInfo> SenderOf(const auth::AuthStore* auth,
                                const grpc::ServerContextBase& context);

// "rpc error: code = PermissionDenied desc = etcdserver: permission denied":
// the text of the gRPC error for `status` as etcd's Go client prints it
// (what etcd puts in a refused watch's cancel_reason).
std::string GrpcErrorText(const Status& status);

// Puts the sender into the proposal's header, for the apply side's check.
void StampSender(const auth::AuthInfo& sender, internalpb::InternalRaftRequest* request);

// OK when auth is off or the sender has the root role.
Status CheckAdmin(const auth::AuthStore* auth, const grpc::ServerContextBase& context);
// For unary handlers: nullptr when CheckAdmin passes; else the call's
// reactor, finished with its error.
grpc::ServerUnaryReactor* RefuseUnlessAdmin(const auth::AuthStore* auth,
                                            grpc::CallbackServerContext* context);
// The same for the Maintenance service, whose refusals etcd 3.4 sends
// untranslated: code UNKNOWN, "auth: permission denied", "auth: user name
// is empty", "auth: invalid auth token".
grpc::ServerUnaryReactor* RefuseUnlessAdminForMaintenance(const auth::AuthStore* auth,
                                                          grpc::CallbackServerContext* context);

}  // namespace etcdpp::api
