// The v3lockpb.Lock gRPC service (Lock, Unlock), wire-compatible with etcd
// 3.4: a distributed mutex on etcd's recipe (turn_waiter.h), served by every
// member through its own KV, Lease and Watch services (self_client.h).
//
// Lock(name, lease) puts "<name>/<lease in hex>" with the lease and answers
// once that key is the oldest under "<name>/", with the key and the header of
// the read that saw it so. The key is the lock: it lasts until Unlock(key)
// deletes it or the lease expires, and then the next contender in create
// revision order gets the lock. Its create revision is a fencing token
// (docs/recipes.md).
//
// Beyond etcd 3.4, a Lock never answers a client that is gone: a call
// cancelled while waiting deletes its key, and so does a grant whose answer
// could not be delivered. A contender whose lease expired while it waited
// gets "mutex: session is expired" (etcd 3.5's error) instead of the lock.
#pragma once

#include <memory>

#include "api/concurrency/self_client.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace etcdpp::api::concurrency {

// Thread-safe: each call is its own object (lock_service.cc).
class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  LockService(const SelfClientSlot* client, CallGate gate);

  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* context,
                                 const v3lockpb::LockRequest* request,
                                 v3lockpb::LockResponse* response) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* context,
                                   const v3lockpb::UnlockRequest* request,
                                   v3lockpb::UnlockResponse* response) override;

 private:
  const SelfClientSlot* const client_;
  const CallGate gate_;
};

}  // namespace etcdpp::api::concurrency
