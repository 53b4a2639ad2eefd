#include "api/concurrency/lock_service.h"

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "api/concurrency/turn_waiter.h"

namespace etcdpp::api::concurrency {
namespace {

// etcd 3.5's error for a contender whose key vanished while it waited.
constexpr char kErrSessionExpired[] = "mutex: session is expired";

// One Lock call, from the request to the answer and, if the client gives up,
// the release of its key. Owns itself (self_) until gRPC's OnDone; the steps
// run one after another from completion callbacks.
class LockCall final : public grpc::ServerUnaryReactor,
                       public std::enable_shared_from_this<LockCall> {
 public:
  LockCall(std::shared_ptr<SelfClient> client, grpc::CallbackServerContext* context,
           const v3lockpb::LockRequest* request, v3lockpb::LockResponse* response)
      : client_(std::move(client)), context_(context), request_(request), response_(response) {}

  static grpc::ServerUnaryReactor* Start(std::shared_ptr<LockCall> call) {
    call->self_ = call;
    EnsureLease(*call->client_, *call->context_, call->request_->lease(),
                [call](const grpc::Status& status, int64_t lease) {
                  if (!status.ok()) {
                    call->Finish(AsRecipeError(status));
                    return;
                  }
                  call->Enqueue(lease);
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
    std::shared_ptr<LockCall> last = std::move(self_);
    // A grant the client never received must not hold the lock.
    bool granted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      granted = granted_;
    }
    if (granted && context_->IsCancelled()) ReleaseKey(client_, key_, key_rev_);
  }

 private:
  // etcd's mutex: one txn puts our key unless it exists (a second Lock with
  // the same lease shares the key) and reads the oldest key of the lock.
  void Enqueue(int64_t lease) {
    prefix_ = request_->name() + "/";
    key_ = prefix_ + LeaseHex(lease);
    etcdserverpb::TxnRequest txn;
    auto* absent = txn.add_compare();
    absent->set_key(key_);
    absent->set_target(etcdserverpb::Compare::CREATE);
    absent->set_result(etcdserverpb::Compare::EQUAL);
    absent->set_create_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key_);
    put->set_lease(lease);
    txn.add_failure()->mutable_request_range()->set_key(key_);
    for (auto* branch : {txn.mutable_success(), txn.mutable_failure()}) {
      auto* oldest = branch->Add()->mutable_request_range();
      oldest->set_key(prefix_);
      oldest->set_range_end(PrefixEnd(prefix_));
      oldest->set_sort_target(etcdserverpb::RangeRequest::CREATE);
      oldest->set_sort_order(etcdserverpb::RangeRequest::ASCEND);
      oldest->set_limit(1);
    }
    client_->Txn(SelfClient::DetachedContext(kEnqueueTimeout), std::move(txn),
                 [self = shared_from_this()](const grpc::Status& status,
                                             etcdserverpb::TxnResponse& response) {
                   self->OnEnqueued(status, response);
                 });
  }

  void OnEnqueued(const grpc::Status& status, etcdserverpb::TxnResponse& response) {
    if (!status.ok()) {
      if (OutcomeUnknown(status)) ReleaseKey(client_, key_, 0);
      Finish(AsRecipeError(status));
      return;
    }
    if (response.responses_size() != 2 ||
        (!response.succeeded() && response.responses(0).response_range().kvs_size() == 0)) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "lock: malformed answer to the enqueue"));
      return;
    }
    key_rev_ = response.succeeded()
                   ? response.header().revision()
                   : response.responses(0).response_range().kvs(0).create_revision();
    if (Cancelled()) {
      ReleaseKey(client_, key_, key_rev_);
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
      return;
    }
    const auto& oldest = response.responses(1).response_range();
    if (oldest.kvs_size() == 0 || oldest.kvs(0).create_revision() == key_rev_) {
      Grant(response.header());
      return;
    }
    std::shared_ptr<TurnWaiter> waiter = TurnWaiter::Start(
        client_, context_, prefix_, key_, key_rev_,
        [self = shared_from_this()](const TurnWaiter::Outcome& outcome) { self->OnTurn(outcome); });
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
      if (!cancelled) waiter_ = waiter;
    }
    if (cancelled) waiter->Cancel();  // OnCancel ran before waiter_ was set.
  }

  void OnTurn(const TurnWaiter::Outcome& outcome) {
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiter_.reset();
      cancelled = cancelled_;
    }
    if (outcome.status.ok() && outcome.own_key_lost) {
      Finish(grpc::Status(grpc::StatusCode::UNKNOWN, kErrSessionExpired));
      return;
    }
    if (outcome.status.ok() && !cancelled) {
      Grant(outcome.header);
      return;
    }
    // Given up: the key leaves the queue so it is never granted later.
    ReleaseKey(client_, key_, key_rev_);
    Finish(cancelled ? grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")
                     : AsRecipeError(outcome.status));
  }

  bool Cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }

  void Grant(const etcdserverpb::ResponseHeader& header) {
    *response_->mutable_header() = header;
    response_->set_key(key_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      granted_ = true;
    }
    Finish(grpc::Status::OK);
  }

  const std::shared_ptr<SelfClient> client_;
  grpc::CallbackServerContext* const context_;
  const v3lockpb::LockRequest* const request_;
  v3lockpb::LockResponse* const response_;
  std::shared_ptr<LockCall> self_;  // Until OnDone.
  // Written by Enqueue, before any step that reads them.
  std::string prefix_;
  std::string key_;
  int64_t key_rev_ = 0;

  std::mutex mu_;
  bool cancelled_ = false;              // guarded by mu_
  bool granted_ = false;                // guarded by mu_
  std::shared_ptr<TurnWaiter> waiter_;  // guarded by mu_: while waiting
};

}  // namespace

LockService::LockService(const SelfClientSlot* client, CallGate gate)
    : client_(client), gate_(std::move(gate)) {}

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* context,
                                            const v3lockpb::LockRequest* request,
                                            v3lockpb::LockResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  return LockCall::Start(std::make_shared<LockCall>(std::move(client), context, request, response));
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* context,
                                              const v3lockpb::UnlockRequest* request,
                                              v3lockpb::UnlockResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(request->key());
  client->DeleteRange(
      SelfClient::ChildContext(*context), std::move(del),
      [reactor, response](const grpc::Status& status, etcdserverpb::DeleteRangeResponse& deleted) {
        if (status.ok()) *response->mutable_header() = deleted.header();
        reactor->Finish(AsRecipeError(status));
      });
  return reactor;
}

}  // namespace etcdpp::api::concurrency
