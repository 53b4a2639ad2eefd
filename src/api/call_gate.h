// What etcd 3.4 checks before a client RPC reaches its handler (its v3rpc
// unary and stream interceptors), in etcd's order:
//   1. a learner serves only serializable Range and Status; any other call,
//      and every stream, fails with kNotSupportedForLearner ("etcdserver: rpc
//      not supported for learner"), so clients move to a voting member;
//   2. a call that asked for a leader (metadata "hasleader: true", what
//      clientv3.WithRequireLeader sends; etcdctl's watch does) fails with
//      kNoLeader ("etcdserver: no leader") while this member knows none.
// A stream that asked for a leader is also ended with kNoLeader later, once
// its member has lost the leader for a while (LeaderMonitor).
#pragma once

#include <grpcpp/support/server_callback.h>

#include "api/grpc_status.h"
#include "base/status.h"
#include "base/tsan_handoff.h"

namespace grpc {
class CallbackServerContext;
}

#include "server/interfaces.h"

namespace etcdpp::api {

// Whether a learner answers the call (etcd's isRPCSupportedForLearner).
enum class LearnerServes { kNo, kYes };

// The client sent "hasleader: true".
bool RequiresLeader(const grpc::CallbackServerContext& context);

// OK when the call may run; else the error etcd gives.
Status CheckCall(const server::ClusterView& server, const grpc::CallbackServerContext& context,
                 LearnerServes learner);
// The same for a call whose metadata was read elsewhere (api/kv_handler.h).
Status CheckCall(const server::ClusterView& server, bool requires_leader, LearnerServes learner);

// For unary handlers: nullptr when the call may run; else the call's reactor,
// already finished with CheckCall's error (the handler returns it).
grpc::ServerUnaryReactor* RefuseCall(const server::ClusterView& server,
                                     grpc::CallbackServerContext* context, LearnerServes learner);

// The reactor of a stream CheckCall refused: it only finishes with the error.
template <typename Request, typename Response>
class RefusedStream final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedStream(const Status& refusal) {
    tsan::HandingOff(this);
    this->Finish(ToGrpcStatus(refusal));
  }
  void OnDone() override {
    tsan::TookBack(this);
    delete this;
  }
};

}  // namespace etcdpp::api
