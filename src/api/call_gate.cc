#include "api/call_gate.h"

#include <grpcpp/server_context.h>

#include "api/grpc_status.h"

namespace etcdpp::api {
namespace {

// clientv3's rpctypes.MetadataRequireLeaderKey and MetadataHasLeader.
constexpr char kRequireLeaderKey[] = "hasleader";
constexpr char kHasLeader[] = "true";

}  // namespace

bool RequiresLeader(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  // etcd looks at the first value only.
  auto it = metadata.find(kRequireLeaderKey);
  return it != metadata.end() && it->second == kHasLeader;
}

Status CheckCall(const server::ClusterView& server, const grpc::CallbackServerContext& context,
                 LearnerServes learner) {
  return CheckCall(server, RequiresLeader(context), learner);
}

Status CheckCall(const server::ClusterView& server, bool requires_leader, LearnerServes learner) {
  if (learner == LearnerServes::kNo && server.is_learner()) {
    return Status(Code::kNotSupportedForLearner);
  }
  if (server.leader_id() == 0 && requires_leader) return Status(Code::kNoLeader);
  return Status::OK();
}

grpc::ServerUnaryReactor* RefuseCall(const server::ClusterView& server,
                                     grpc::CallbackServerContext* context, LearnerServes learner) {
  Status st = CheckCall(server, *context, learner);
  if (st.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

}  // namespace etcdpp::api
