// The bodies of etcdserverpb.KV's five methods, free of any transport: the
// gRPC service (kv_service.h) and the experimental HTTP/2 front
// (h2front/h2_front.h) both call them, so the two paths validate, check
// auth, propose, read and answer identically (same codes, messages and
// response headers).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "api/auth_check.h"
#include "api/write_fence.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/interfaces.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class ReadExecutor;

// What a KV call carries besides its request, read from the transport's
// metadata before the handler runs.
struct KvCallInfo {
  // The "token" (or "authorization") metadata and the client certificate.
  CallCredentials credentials;
  // The client sent "hasleader: true" (call_gate.h).
  bool requires_leader = false;
  // The write fence of write_fence.h, or its parse error.
  Result<std::optional<WriteFence>> fence = std::optional<WriteFence>();
};

// Runs once per call, with OK once the response is filled, or the error the
// client gets. May run on the caller's thread (before the handler method
// returns), on the apply thread, or on the read pool.
using KvDone = std::function<void(const Status&)>;

// Stateless beyond its pointers (not owned; they outlive it), so any thread
// may call it. The request and the response must stay alive until `done`
// has run.
class KvHandler {
 public:
  KvHandler(server::Proposer* proposer, server::ReadBarrier* barrier,
            const server::ClusterView* cluster, ReadExecutor* reads,
            const auth::AuthStore* auth = nullptr);

  void Range(const KvCallInfo& call, const etcdserverpb::RangeRequest* request,
             etcdserverpb::RangeResponse* response, KvDone done) const;
  void Put(const KvCallInfo& call, const etcdserverpb::PutRequest* request,
           etcdserverpb::PutResponse* response, KvDone done) const;
  void DeleteRange(const KvCallInfo& call, const etcdserverpb::DeleteRangeRequest* request,
                   etcdserverpb::DeleteRangeResponse* response, KvDone done) const;
  void Txn(const KvCallInfo& call, const etcdserverpb::TxnRequest* request,
           etcdserverpb::TxnResponse* response, KvDone done) const;
  void Compact(const KvCallInfo& call, const etcdserverpb::CompactionRequest* request,
               etcdserverpb::CompactionResponse* response, KvDone done) const;

 private:
  server::Proposer* const proposer_;
  server::ReadBarrier* const barrier_;
  const server::ClusterView* const cluster_;
  ReadExecutor* const reads_;
  const auth::AuthStore* const auth_;
};

}  // namespace etcdpp::api
