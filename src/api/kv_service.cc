#include "api/kv_service.h"

#include "api/call_gate.h"
#include "api/grpc_status.h"

namespace etcdpp::api {
namespace {

// What the handler needs of the call's metadata. The fence is read only for
// writes, the methods that honour it.
KvCallInfo CallInfoOf(const grpc::CallbackServerContext& context, bool write) {
  KvCallInfo call;
  call.credentials = CredentialsOf(context);
  call.requires_leader = RequiresLeader(context);
  if (write) call.fence = FenceOf(context);
  return call;
}

// The handler's completion for a gRPC call: finishes its reactor.
KvDone FinishReactor(grpc::ServerUnaryReactor* reactor) {
  return [reactor](const Status& st) { reactor->Finish(ToGrpcStatus(st)); };
}

}  // namespace

KvService::KvService(server::Proposer* proposer, server::ReadBarrier* barrier,
                     const server::ClusterView* cluster, ReadExecutor* reads,
                     const auth::AuthStore* auth)
    : handler_(proposer, barrier, cluster, reads, auth) {}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_.Range(CallInfoOf(*context, false), request, response, FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_.Put(CallInfoOf(*context, true), request, response, FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_.DeleteRange(CallInfoOf(*context, true), request, response, FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context,
                                         const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_.Txn(CallInfoOf(*context, true), request, response, FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_.Compact(CallInfoOf(*context, false), request, response, FinishReactor(reactor));
  return reactor;
}

}  // namespace etcdpp::api
