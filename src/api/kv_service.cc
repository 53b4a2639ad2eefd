#include "api/kv_service.h"

#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/read_executor.h"
#include "api/write_fence.h"
#include "mvcc/kv_store.h"
#include "server/kv_applier.h"
#include "server/request_validation.h"

namespace etcdpp::api {
namespace {

// Proposes `request`; the call finishes once it is applied (or failed).
template <typename Response>
grpc::ServerUnaryReactor* ProposeAndFinish(server::Proposer* proposer,
                                           const server::ClusterView* cluster,
                                           grpc::CallbackServerContext* context,
                                           internalpb::InternalRaftRequest request,
                                           Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  proposer->Propose(std::move(request), response, [cluster, reactor, response](const Status& st) {
    if (st.ok()) cluster->FillHeader(response->mutable_header());
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

// Proposes `op` inside the Txn of `fence` (api/write_fence.h). Once
// applied, `unwrap` moves the op's answer into `response`; a fence that no
// longer held fails the call and nothing was written.
template <typename Response, typename Unwrap>
grpc::ServerUnaryReactor* ProposeFenced(server::Proposer* proposer,
                                        const server::ClusterView* cluster,
                                        grpc::CallbackServerContext* context,
                                        const auth::AuthInfo& sender, const WriteFence& fence,
                                        etcdserverpb::RequestOp op, Response* response,
                                        Unwrap unwrap) {
  internalpb::InternalRaftRequest proposal;
  StampSender(sender, &proposal);
  *proposal.mutable_txn() = FencedTxn(fence, std::move(op));
  auto fenced = std::make_shared<etcdserverpb::TxnResponse>();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  proposer->Propose(std::move(proposal), fenced.get(),
                    [cluster, reactor, response, fenced, unwrap](const Status& st) {
                      if (!st.ok()) {
                        reactor->Finish(ToGrpcStatus(st));
                        return;
                      }
                      if (!fenced->succeeded() || fenced->responses_size() != 1) {
                        reactor->Finish(StaleFenceStatus());
                        return;
                      }
                      unwrap(*fenced->mutable_responses(0), response);
                      *response->mutable_header() = fenced->header();
                      cluster->FillHeader(response->mutable_header());
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

// Runs `read` (it fills the response and returns a Status) when
// serializable at once, or, if a write this member answered is still being
// committed to the store, on the read pool once it is (so a client reads
// its own answered writes); otherwise on the read pool once the barrier has
// passed, so the read sees every write committed before the call.
template <typename Response, typename ReadFn>
grpc::ServerUnaryReactor* ReadAndFinish(server::ReadBarrier* barrier,
                                        const server::ClusterView* cluster, ReadExecutor* executor,
                                        grpc::CallbackServerContext* context, bool serializable,
                                        Response* response, ReadFn read) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto run = [cluster, reactor, response, read]() {
    Status st = read();
    if (st.ok()) cluster->FillHeader(response->mutable_header());
    reactor->Finish(ToGrpcStatus(st));
  };
  if (serializable) {
    if (barrier->AnsweredWritesVisible()) {
      run();
    } else {
      barrier->WaitAnsweredWrites([executor, reactor, run](const Status& st) {
        if (!st.ok()) {
          reactor->Finish(ToGrpcStatus(st));
          return;
        }
        executor->Submit(run);
      });
    }
    return reactor;
  }
  barrier->WaitLinearizable([executor, reactor, run](const Status& st) {
    if (!st.ok()) {
      reactor->Finish(ToGrpcStatus(st));
      return;
    }
    executor->Submit(run);
  });
  return reactor;
}

// etcd's isTxnSerializable: a read-only txn is served locally only if each of
// its ranges asked to be.
bool IsSerializableTxn(const etcdserverpb::TxnRequest& txn) {
  for (const auto* branch : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *branch) {
      if (op.has_request_range() && !op.request_range().serializable()) return false;
      if (op.has_request_txn() && !IsSerializableTxn(op.request_txn())) return false;
    }
  }
  return true;
}

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* context, const Status& st) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

}  // namespace

KvService::KvService(server::Proposer* proposer, server::ReadBarrier* barrier,
                     const server::ClusterView* cluster, ReadExecutor* reads,
                     const auth::AuthStore* auth)
    : proposer_(proposer), barrier_(barrier), cluster_(cluster), reads_(reads), auth_(auth) {}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  if (auto* refused = RefuseCall(
          *cluster_, context, request->serializable() ? LearnerServes::kYes : LearnerServes::kNo))
    return refused;
  Status st = server::ValidateRange(*request);
  if (!st.ok()) return FinishWith(context, st);
  auto sender = SenderOf(auth_, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  // The store is taken when the read runs, after the barrier, and never
  // held across it: a snapshot install waits for every holder. The grant
  // is checked then too, against the auth state of that moment.
  const server::ClusterView* cluster = cluster_;
  const auth::AuthStore* auth = auth_;
  return ReadAndFinish(barrier_, cluster_, reads_, context, request->serializable(), response,
                       [cluster, auth, request, response, info = std::move(*sender)]() -> Status {
                         if (auth != nullptr) {
                           ETCDPP_RETURN_IF_ERROR(auth->state()->CheckRange(info, *request));
                         }
                         std::shared_ptr<mvcc::KvStore> store = cluster->store();
                         auto view = store->Read();
                         if (!view.ok()) return view.status();
                         return server::KvApplier::Range(**view, *request, response);
                       });
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  Status st = server::ValidatePut(*request);
  if (!st.ok()) return FinishWith(context, st);
  auto sender = SenderOf(auth_, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  auto fence = FenceOf(*context);
  if (!fence.ok()) return FinishWith(context, fence.status());
  if (*fence) {
    etcdserverpb::RequestOp op;
    *op.mutable_request_put() = *request;
    return ProposeFenced(proposer_, cluster_, context, *sender, **fence, std::move(op), response,
                         [](etcdserverpb::ResponseOp& answer, etcdserverpb::PutResponse* out) {
                           out->Swap(answer.mutable_response_put());
                         });
  }
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_put() = *request;
  return ProposeAndFinish(proposer_, cluster_, context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  Status st = server::ValidateDeleteRange(*request);
  if (!st.ok()) return FinishWith(context, st);
  auto sender = SenderOf(auth_, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  auto fence = FenceOf(*context);
  if (!fence.ok()) return FinishWith(context, fence.status());
  if (*fence) {
    etcdserverpb::RequestOp op;
    *op.mutable_request_delete_range() = *request;
    return ProposeFenced(
        proposer_, cluster_, context, *sender, **fence, std::move(op), response,
        [](etcdserverpb::ResponseOp& answer, etcdserverpb::DeleteRangeResponse* out) {
          out->Swap(answer.mutable_response_delete_range());
        });
  }
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_delete_range() = *request;
  return ProposeAndFinish(proposer_, cluster_, context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context,
                                         const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  Status st = server::ValidateTxn(*request, static_cast<int>(cluster_->max_txn_ops()));
  if (!st.ok()) return FinishWith(context, st);
  auto sender = SenderOf(auth_, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  auto fence = FenceOf(*context);
  if (!fence.ok()) return FinishWith(context, fence.status());
  if (*fence) {
    // Fenced as a whole, reads included: the fenced Txn nests it.
    etcdserverpb::RequestOp op;
    *op.mutable_request_txn() = *request;
    return ProposeFenced(proposer_, cluster_, context, *sender, **fence, std::move(op), response,
                         [](etcdserverpb::ResponseOp& answer, etcdserverpb::TxnResponse* out) {
                           out->Swap(answer.mutable_response_txn());
                         });
  }
  if (server::IsReadOnlyTxn(*request)) {
    // A read-only txn needs no log entry (etcd does the same); it is
    // serializable only when each of its ranges is.
    const server::ClusterView* cluster = cluster_;
    const auth::AuthStore* auth = auth_;
    return ReadAndFinish(barrier_, cluster_, reads_, context, IsSerializableTxn(*request), response,
                         [cluster, auth, request, response, info = std::move(*sender)]() -> Status {
                           if (auth != nullptr) {
                             ETCDPP_RETURN_IF_ERROR(auth->state()->CheckTxn(info, *request));
                           }
                           std::shared_ptr<mvcc::KvStore> store = cluster->store();
                           auto view = store->Read();
                           if (!view.ok()) return view.status();
                           return server::KvApplier::TxnReadOnly(**view, *request, response);
                         });
  }
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_txn() = *request;
  return ProposeAndFinish(proposer_, cluster_, context, std::move(proposal), response);
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  auto sender = SenderOf(auth_, *context);
  if (!sender.ok()) return FinishWith(context, sender.status());
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_compaction() = *request;
  return ProposeAndFinish(proposer_, cluster_, context, std::move(proposal), response);
}

}  // namespace etcdpp::api
