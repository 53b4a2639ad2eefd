// The etcdserverpb.KV gRPC service: Range, Put, DeleteRange, Txn, Compact.
// The methods' bodies are KvHandler's (kv_handler.h), shared with the
// experimental HTTP/2 front; this class only adapts gRPC's calls to them.
#pragma once

#include "api/kv_handler.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/interfaces.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class ReadExecutor;

// Writes are proposed through Raft; reads run on a store snapshot, behind
// the read barrier unless the request is serializable. No handler blocks a
// gRPC thread on Raft: each finishes its call from the member's callback.
// With `auth` (may be null: no checks), reads are checked here and writes
// are stamped with their sender for the apply side's check.
// The pointers are not owned and outlive the service.
class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(server::Proposer* proposer, server::ReadBarrier* barrier,
            const server::ClusterView* cluster, ReadExecutor* reads,
            const auth::AuthStore* auth = nullptr);

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const etcdserverpb::DeleteRangeRequest* request,
                                        etcdserverpb::DeleteRangeResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context,
                                const etcdserverpb::TxnRequest* request,
                                etcdserverpb::TxnResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const etcdserverpb::CompactionRequest* request,
                                    etcdserverpb::CompactionResponse* response) override;

  // The transport-free bodies, for other front ends; lives as long as the service.
  const KvHandler& handler() const { return handler_; }

 private:
  const KvHandler handler_;
};

}  // namespace etcdpp::api
