#include "api/concurrency/lock_service.h"

#include <memory>
#include <string>
#include <utility>

#include "api/concurrency/queued_key_call.h"

namespace etcdpp::api::concurrency {
namespace {

// etcd 3.5's error for a contender whose key vanished while it waited.
constexpr char kErrContenderExpired[] = "mutex: session is expired";

// One Lock call (queued_key_call.h has its life).
class LockCall final
    : public QueuedKeyCall<LockCall, v3lockpb::LockRequest, v3lockpb::LockResponse> {
 public:
  LockCall(std::shared_ptr<SelfClient> client, grpc::CallbackServerContext* context,
           const v3lockpb::LockRequest* request, v3lockpb::LockResponse* response)
      : QueuedKeyCall(std::move(client), context, request, response, kErrContenderExpired) {}

 private:
  friend class QueuedKeyCall;

  // etcd's mutex: one txn puts our key unless it exists (a second Lock with
  // the same lease shares the key) and reads the oldest key of the lock.
  void Enter(int64_t lease) {
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
                   self->OnEntered(status, response);
                 });
  }

  void OnEntered(const grpc::Status& status, etcdserverpb::TxnResponse& response) {
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
      TakeTurn(response.header());
      return;
    }
    WaitForTurn();
  }

  void TakeTurn(const etcdserverpb::ResponseHeader& header) {
    *response_->mutable_header() = header;
    response_->set_key(key_);
    FinishTurnTaken();
  }
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
