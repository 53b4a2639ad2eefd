#include "api/kv_handler.h"

#include <memory>
#include <utility>

#include "api/call_gate.h"
#include "api/read_executor.h"
#include "mvcc/kv_store.h"
#include "server/kv_applier.h"
#include "server/request_validation.h"

namespace etcdpp::api {
namespace {

// Proposes `request`; `done` runs once it is applied (or failed).
template <typename Response>
void ProposeAndFinish(server::Proposer* proposer, const server::ClusterView* cluster,
                      internalpb::InternalRaftRequest request, Response* response, KvDone done) {
  proposer->Propose(std::move(request), response,
                    [cluster, response, done = std::move(done)](const Status& st) {
                      if (st.ok()) cluster->FillHeader(response->mutable_header());
                      done(st);
                    });
}

// Proposes `op` inside the Txn of `fence` (api/write_fence.h). Once
// applied, `unwrap` moves the op's answer into `response`; a fence that no
// longer held fails the call and nothing was written.
template <typename Response, typename Unwrap>
void ProposeFenced(server::Proposer* proposer, const server::ClusterView* cluster,
                   const auth::AuthInfo& sender, const WriteFence& fence,
                   etcdserverpb::RequestOp op, Response* response, Unwrap unwrap, KvDone done) {
  internalpb::InternalRaftRequest proposal;
  StampSender(sender, &proposal);
  *proposal.mutable_txn() = FencedTxn(fence, std::move(op));
  auto fenced = std::make_shared<etcdserverpb::TxnResponse>();
  proposer->Propose(std::move(proposal), fenced.get(),
                    [cluster, response, fenced, unwrap, done = std::move(done)](const Status& st) {
                      if (!st.ok()) return done(st);
                      if (!fenced->succeeded() || fenced->responses_size() != 1) {
                        return done(Status(Code::kFailedPrecondition, kErrStaleFence));
                      }
                      unwrap(*fenced->mutable_responses(0), response);
                      *response->mutable_header() = fenced->header();
                      cluster->FillHeader(response->mutable_header());
                      done(Status::OK());
                    });
}

// The sender of a write, once its credentials and its write fence (if it
// sent one) have been read without error.
Result<auth::AuthInfo> WriterOf(const auth::AuthStore* auth, const KvCallInfo& call) {
  auto sender = SenderFrom(auth, call.credentials);
  if (!sender.ok()) return sender.status();
  if (!call.fence.ok()) return call.fence.status();
  return sender;
}

// Where a kind of write request goes in a RequestOp and in a proposal, and
// where its answer is in a ResponseOp: its protobuf accessors.
template <typename Request, typename Response>
struct WriteSlots {
  Request* (etcdserverpb::RequestOp::*op)();
  Request* (internalpb::InternalRaftRequest::*entry)();
  Response* (etcdserverpb::ResponseOp::*answer)();
};

// Proposes a checked write: on its own or, when the call carries a fence,
// nested in the fence's Txn, its answer taken back out of the Txn's.
template <typename Request, typename Response>
void ProposeWrite(server::Proposer* proposer, const server::ClusterView* cluster,
                  const auth::AuthInfo& sender, const KvCallInfo& call, const Request& request,
                  Response* response, WriteSlots<Request, Response> slots, KvDone done) {
  if (*call.fence) {
    etcdserverpb::RequestOp op;
    *(op.*slots.op)() = request;
    return ProposeFenced(
        proposer, cluster, sender, **call.fence, std::move(op), response,
        [answer = slots.answer](etcdserverpb::ResponseOp& in, Response* out) {
          out->Swap((in.*answer)());
        },
        std::move(done));
  }
  internalpb::InternalRaftRequest proposal;
  StampSender(sender, &proposal);
  *(proposal.*slots.entry)() = request;
  ProposeAndFinish(proposer, cluster, std::move(proposal), response, std::move(done));
}

// Runs `read` (it fills the response and returns a Status) when
// serializable at once, or, if a write this member answered is still being
// committed to the store, on the read pool once it is (so a client reads
// its own answered writes); otherwise on the read pool once the barrier has
// passed, so the read sees every write committed before the call.
template <typename Response, typename ReadFn>
void ReadAndFinish(server::ReadBarrier* barrier, const server::ClusterView* cluster,
                   ReadExecutor* executor, bool serializable, Response* response, ReadFn read,
                   KvDone done) {
  auto shared_done = std::make_shared<KvDone>(std::move(done));
  auto run = [cluster, response, read, shared_done]() {
    Status st = read();
    if (st.ok()) cluster->FillHeader(response->mutable_header());
    (*shared_done)(st);
  };
  auto after_barrier = [executor, run, shared_done](const Status& st) {
    if (!st.ok()) return (*shared_done)(st);
    executor->Submit(run);
  };
  if (serializable) {
    if (barrier->AnsweredWritesVisible()) {
      run();
    } else {
      barrier->WaitAnsweredWrites(after_barrier);
    }
    return;
  }
  barrier->WaitLinearizable(after_barrier);
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

}  // namespace

KvHandler::KvHandler(server::Proposer* proposer, server::ReadBarrier* barrier,
                     const server::ClusterView* cluster, ReadExecutor* reads,
                     const auth::AuthStore* auth)
    : proposer_(proposer), barrier_(barrier), cluster_(cluster), reads_(reads), auth_(auth) {}

void KvHandler::Range(const KvCallInfo& call, const etcdserverpb::RangeRequest* request,
                      etcdserverpb::RangeResponse* response, KvDone done) const {
  Status st = CheckCall(*cluster_, call.requires_leader,
                        request->serializable() ? LearnerServes::kYes : LearnerServes::kNo);
  if (st.ok()) st = server::ValidateRange(*request);
  if (!st.ok()) return done(st);
  auto sender = SenderFrom(auth_, call.credentials);
  if (!sender.ok()) return done(sender.status());
  // The store is taken when the read runs, after the barrier, and never
  // held across it: a snapshot install waits for every holder. The grant
  // is checked then too, against the auth state of that moment.
  const server::ClusterView* cluster = cluster_;
  const auth::AuthStore* auth = auth_;
  ReadAndFinish(
      barrier_, cluster_, reads_, request->serializable(), response,
      [cluster, auth, request, response, info = std::move(*sender)]() -> Status {
        if (auth != nullptr) {
          ETCDPP_RETURN_IF_ERROR(auth->state()->CheckRange(info, *request));
        }
        std::shared_ptr<mvcc::KvStore> store = cluster->store();
        auto view = store->Read();
        if (!view.ok()) return view.status();
        return server::KvApplier::Range(**view, *request, response);
      },
      std::move(done));
}

void KvHandler::Put(const KvCallInfo& call, const etcdserverpb::PutRequest* request,
                    etcdserverpb::PutResponse* response, KvDone done) const {
  Status st = CheckCall(*cluster_, call.requires_leader, LearnerServes::kNo);
  if (st.ok()) st = server::ValidatePut(*request);
  if (!st.ok()) return done(st);
  auto sender = WriterOf(auth_, call);
  if (!sender.ok()) return done(sender.status());
  ProposeWrite(proposer_, cluster_, *sender, call, *request, response,
               WriteSlots<etcdserverpb::PutRequest, etcdserverpb::PutResponse>{
                   &etcdserverpb::RequestOp::mutable_request_put,
                   &internalpb::InternalRaftRequest::mutable_put,
                   &etcdserverpb::ResponseOp::mutable_response_put},
               std::move(done));
}

void KvHandler::DeleteRange(const KvCallInfo& call, const etcdserverpb::DeleteRangeRequest* request,
                            etcdserverpb::DeleteRangeResponse* response, KvDone done) const {
  Status st = CheckCall(*cluster_, call.requires_leader, LearnerServes::kNo);
  if (st.ok()) st = server::ValidateDeleteRange(*request);
  if (!st.ok()) return done(st);
  auto sender = WriterOf(auth_, call);
  if (!sender.ok()) return done(sender.status());
  ProposeWrite(proposer_, cluster_, *sender, call, *request, response,
               WriteSlots<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>{
                   &etcdserverpb::RequestOp::mutable_request_delete_range,
                   &internalpb::InternalRaftRequest::mutable_delete_range,
                   &etcdserverpb::ResponseOp::mutable_response_delete_range},
               std::move(done));
}

void KvHandler::Txn(const KvCallInfo& call, const etcdserverpb::TxnRequest* request,
                    etcdserverpb::TxnResponse* response, KvDone done) const {
  Status st = CheckCall(*cluster_, call.requires_leader, LearnerServes::kNo);
  if (st.ok()) st = server::ValidateTxn(*request, static_cast<int>(cluster_->max_txn_ops()));
  if (!st.ok()) return done(st);
  auto sender = WriterOf(auth_, call);
  if (!sender.ok()) return done(sender.status());
  // A fenced txn is fenced as a whole, reads included: the fenced Txn nests
  // it. An unfenced read-only txn needs no log entry (etcd does the same);
  // it is serializable only when each of its ranges is.
  if (!*call.fence && server::IsReadOnlyTxn(*request)) {
    const server::ClusterView* cluster = cluster_;
    const auth::AuthStore* auth = auth_;
    return ReadAndFinish(
        barrier_, cluster_, reads_, IsSerializableTxn(*request), response,
        [cluster, auth, request, response, info = std::move(*sender)]() -> Status {
          if (auth != nullptr) {
            ETCDPP_RETURN_IF_ERROR(auth->state()->CheckTxn(info, *request));
          }
          std::shared_ptr<mvcc::KvStore> store = cluster->store();
          auto view = store->Read();
          if (!view.ok()) return view.status();
          return server::KvApplier::TxnReadOnly(**view, *request, response);
        },
        std::move(done));
  }
  ProposeWrite(proposer_, cluster_, *sender, call, *request, response,
               WriteSlots<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>{
                   &etcdserverpb::RequestOp::mutable_request_txn,
                   &internalpb::InternalRaftRequest::mutable_txn,
                   &etcdserverpb::ResponseOp::mutable_response_txn},
               std::move(done));
}

void KvHandler::Compact(const KvCallInfo& call, const etcdserverpb::CompactionRequest* request,
                        etcdserverpb::CompactionResponse* response, KvDone done) const {
  Status st = CheckCall(*cluster_, call.requires_leader, LearnerServes::kNo);
  if (!st.ok()) return done(st);
  auto sender = SenderFrom(auth_, call.credentials);
  if (!sender.ok()) return done(sender.status());
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_compaction() = *request;
  ProposeAndFinish(proposer_, cluster_, std::move(proposal), response, std::move(done));
}

}  // namespace etcdpp::api
