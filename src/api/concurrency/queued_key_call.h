// The life of a call that queues a key and waits for its turn: Lock and
// Campaign. Both get a lease (EnsureLease), put "<name>/<lease in hex>",
// wait until that key is the oldest under "<name>/" (turn_waiter.h) and
// answer. What they share is the bookkeeping around those steps:
//
// - the call owns itself (self_) from Start until gRPC's OnDone;
// - a cancellation reaches the wait in progress, whichever step it lands in;
// - a key that won its turn but whose answer never reached the client
//   (cancelled after the grant) is released in OnDone, so no lock or
//   leadership is held by a client that does not know it holds it;
// - a key given up while waiting is released before the answer.
//
// Derived supplies Enter(lease) (the queueing txn, which ends either in
// FinishTurnTaken or in WaitForTurn) and TakeTurn(header) (fills the answer
// and calls FinishTurnTaken).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "api/concurrency/self_client.h"
#include "api/concurrency/turn_waiter.h"

namespace etcdpp::api::concurrency {

// The steps run one after another from completion callbacks; only the flags
// below mu_ are shared with OnCancel and OnDone, which gRPC may run at any
// time on its own threads.
template <typename Derived, typename Request, typename Response>
class QueuedKeyCall : public grpc::ServerUnaryReactor,
                      public std::enable_shared_from_this<Derived> {
 public:
  static grpc::ServerUnaryReactor* Start(std::shared_ptr<Derived> call) {
    call->self_ = call;
    EnsureLease(*call->client_, *call->context_, call->request_->lease(),
                [call](const grpc::Status& status, int64_t lease) {
                  if (!status.ok()) {
                    call->Finish(AsRecipeError(status));
                    return;
                  }
                  call->Enter(lease);
                });
    return call.get();
  }

  void OnCancel() override {
    std::shared_ptr<TurnWaiter> waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      waiter = waiter_;
    }
    if (waiter) waiter->Cancel();
  }

  void OnDone() override {
    std::shared_ptr<Derived> last = std::move(self_);
    bool turn_taken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      turn_taken = turn_taken_;
    }
    if (turn_taken && context_->IsCancelled()) ReleaseKey(client_, key_, key_rev_);
  }

 protected:
  // `session_expired` is the UNKNOWN error for a key that vanished while it
  // waited (its lease expired, or someone deleted it).
  QueuedKeyCall(std::shared_ptr<SelfClient> client, grpc::CallbackServerContext* context,
                const Request* request, Response* response, const char* session_expired)
      : client_(std::move(client)),
        context_(context),
        request_(request),
        response_(response),
        session_expired_(session_expired) {}

  bool Cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }

  // Waits for key_ (created at key_rev_) to become the oldest under prefix_.
  void WaitForTurn() {
    std::shared_ptr<TurnWaiter> waiter =
        TurnWaiter::Start(client_, context_, prefix_, key_, key_rev_,
                          [self = this->shared_from_this()](const TurnWaiter::Outcome& outcome) {
                            self->OnTurn(outcome);
                          });
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
      if (!cancelled) waiter_ = waiter;
    }
    if (cancelled) waiter->Cancel();  // OnCancel ran before waiter_ was set.
  }

  // Answers OK with the key held; from here on OnDone releases it if the
  // answer is not delivered.
  void FinishTurnTaken() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      turn_taken_ = true;
    }
    Finish(grpc::Status::OK);
  }

  const std::shared_ptr<SelfClient> client_;
  grpc::CallbackServerContext* const context_;
  const Request* const request_;
  Response* const response_;
  // Written by Derived::Enter, before any step that reads them.
  std::string prefix_;
  std::string key_;
  int64_t key_rev_ = 0;

 private:
  void OnTurn(const TurnWaiter::Outcome& outcome) {
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiter_.reset();
      cancelled = cancelled_;
    }
    if (outcome.status.ok() && outcome.own_key_lost) {
      Finish(grpc::Status(grpc::StatusCode::UNKNOWN, session_expired_));
      return;
    }
    if (!outcome.status.ok() || cancelled) {
      // Given up: the key leaves the queue so its turn never comes later.
      ReleaseKey(client_, key_, key_rev_);
      Finish(cancelled ? grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")
                       : AsRecipeError(outcome.status));
      return;
    }
    static_cast<Derived*>(this)->TakeTurn(outcome.header);
  }

  const char* const session_expired_;
  std::shared_ptr<Derived> self_;  // Until OnDone.

  std::mutex mu_;
  bool cancelled_ = false;              // guarded by mu_
  bool turn_taken_ = false;             // guarded by mu_
  std::shared_ptr<TurnWaiter> waiter_;  // guarded by mu_: while waiting
};

}  // namespace etcdpp::api::concurrency
