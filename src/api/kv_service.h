// The etcdserverpb.KV gRPC service: Range, Put, DeleteRange, Txn, Compact.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::server {
class EtcdServer;
}

namespace etcdpp::api {

class ReadExecutor;

// Writes go through Raft (EtcdServer::Propose); reads are served from an MVCC
// snapshot, after a ReadIndex round unless the request is serializable.
// Handlers never block a gRPC thread on Raft: they finish from callbacks.
class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(server::EtcdServer* server, ReadExecutor* reads);

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
  server::EtcdServer* const server_;
  ReadExecutor* const reads_;
};

}  // namespace etcdpp::api
