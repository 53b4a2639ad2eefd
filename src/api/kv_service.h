// The etcdserverpb.KV gRPC service: Range, Put, DeleteRange, Txn, Compact.
#pragma once

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

 private:
  server::Proposer* const proposer_;
  server::ReadBarrier* const barrier_;
  const server::ClusterView* const cluster_;
  ReadExecutor* const reads_;
  const auth::AuthStore* const auth_;
};

}  // namespace etcdpp::api
