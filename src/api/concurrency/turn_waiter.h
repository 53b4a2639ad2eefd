// The wait at the heart of etcd's mutex and election recipes.
//
// Each contender puts one key under a common prefix ("<name>/<lease in
// hex>"), attached to its lease. Raft gives every key a distinct create
// revision, and the contender whose key has the smallest one holds the lock
// (or leads). A contender waits only for the key created just before its own
// to go away (deleted, or dropped when its lease expires), then looks again:
// each departure wakes exactly one waiter (no thundering herd), and the order
// of create revisions is the queue.
//
// One step beyond etcd 3.4: a contender whose own key is gone (its lease
// expired while it waited, or someone deleted the key) is never told it is
// next; it gets `own_key_lost` and must start over with a live lease.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "api/concurrency/self_client.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::api::concurrency {

// Owned by shared_ptr: by itself while a call or a timer is pending, and by
// whoever may Cancel it. Guarded by mu_ where noted; the steps themselves run
// one at a time, each started from the completion of the one before.
class TurnWaiter : public std::enable_shared_from_this<TurnWaiter> {
 public:
  struct Outcome {
    grpc::Status status;  // A failed read or watch, or CANCELLED.
    bool own_key_lost = false;
    // Of the read that found no older key: the revision at which own_key
    // became the oldest.
    etcdserverpb::ResponseHeader header;
  };
  using Done = std::function<void(const Outcome&)>;

  // Waits until no key under `prefix` created before `own_rev` is left and
  // `own_key` still exists, then calls `done` once. `parent` (the client's
  // call) must stay unfinished until then: its deadline and cancellation
  // bound every step.
  static std::shared_ptr<TurnWaiter> Start(std::shared_ptr<SelfClient> client,
                                           const grpc::CallbackServerContext* parent,
                                           std::string prefix, std::string own_key, int64_t own_rev,
                                           Done done);

  // Ends the wait soon with CANCELLED (a no-op once `done` has run).
  void Cancel();

 private:
  class DeleteWatch;

  TurnWaiter(std::shared_ptr<SelfClient> client, const grpc::CallbackServerContext* parent,
             std::string prefix, std::string own_key, int64_t own_rev, Done done);

  void Check();
  void OnChecked(const grpc::Status& status, etcdserverpb::TxnResponse& response);
  void Watch(const std::string& predecessor, int64_t from_rev);
  void OnWatchEnded(const grpc::Status& status);
  // Runs Check again after a pause that grows with each failure in a row.
  void RetryLater();
  void Finish(Outcome outcome);
  // Registers the context of the step about to start so Cancel can reach it;
  // false if the wait was cancelled (the step must not start).
  bool BeginStep(std::shared_ptr<grpc::ClientContext> context);

  const std::shared_ptr<SelfClient> client_;
  const grpc::CallbackServerContext* const parent_;
  const std::string prefix_;
  const std::string own_key_;
  const int64_t own_rev_;
  Done done_;                  // Called once, by Finish.
  int failures_in_a_row_ = 0;  // Touched only by the step running.

  std::mutex mu_;
  bool cancelled_ = false;                     // guarded by mu_
  std::shared_ptr<grpc::ClientContext> step_;  // guarded by mu_: the call in flight
  std::shared_ptr<grpc::Alarm> timer_;         // guarded by mu_: the pause in progress
};

}  // namespace etcdpp::api::concurrency
