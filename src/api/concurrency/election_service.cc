#include "api/concurrency/election_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "api/concurrency/queued_key_call.h"
#include "api/concurrency/turn_waiter.h"

namespace etcdpp::api::concurrency {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;
using v3electionpb::LeaderResponse;

// etcd 3.4's errors, word for word (clients match on them).
constexpr char kErrNotLeader[] = "election: not leader";
constexpr char kErrNoLeader[] = "election: no leader";
constexpr char kErrMissingLeaderKey[] = "\"leader\" field must be provided";
// Ours: a candidate whose key vanished while it waited (etcd 3.4 elects it).
constexpr char kErrCandidateExpired[] = "election: session is expired";

grpc::Status Unknown(const char* message) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, message);
}

std::string PrefixOf(const std::string& name) { return name + "/"; }

// The oldest key under `prefix`: the leader's (etcd's WithFirstCreate).
etcdserverpb::RangeRequest OldestUnder(const std::string& prefix) {
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(PrefixEnd(prefix));
  range.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  range.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  range.set_limit(1);
  return range;
}

// "`key` is the incarnation created at `rev`": the test of leadership.
void CompareCreated(etcdserverpb::TxnRequest* txn, const std::string& key, int64_t rev) {
  auto* compare = txn->add_compare();
  compare->set_key(key);
  compare->set_target(etcdserverpb::Compare::CREATE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_create_revision(rev);
}

etcdserverpb::TxnRequest ProclaimTxn(const std::string& key, int64_t rev, int64_t lease,
                                     const std::string& value) {
  etcdserverpb::TxnRequest txn;
  CompareCreated(&txn, key, rev);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  return txn;
}

// ---------------------------------------------------------------------------
// Campaign: one call (queued_key_call.h has its life).
class CampaignCall final : public QueuedKeyCall<CampaignCall, v3electionpb::CampaignRequest,
                                                v3electionpb::CampaignResponse> {
 public:
  CampaignCall(std::shared_ptr<SelfClient> client, grpc::CallbackServerContext* context,
               const v3electionpb::CampaignRequest* request,
               v3electionpb::CampaignResponse* response)
      : QueuedKeyCall(std::move(client), context, request, response, kErrCandidateExpired) {}

 private:
  friend class QueuedKeyCall;

  // Puts our key with the proposal unless it exists (a candidate may
  // campaign again with the same lease: it keeps its place in the queue).
  void Enter(int64_t lease) {
    lease_ = lease;
    prefix_ = PrefixOf(request_->name());
    key_ = prefix_ + LeaseHex(lease);
    etcdserverpb::TxnRequest txn;
    CompareCreated(&txn, key_, 0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key_);
    put->set_value(request_->value());
    put->set_lease(lease);
    txn.add_failure()->mutable_request_range()->set_key(key_);
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
    header_ = response.header();
    if (response.succeeded()) {
      key_rev_ = response.header().revision();
      WaitForTurn();
      return;
    }
    if (response.responses_size() != 1 || response.responses(0).response_range().kvs_size() == 0) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "election: malformed answer to the entry"));
      return;
    }
    const auto& existing = response.responses(0).response_range().kvs(0);
    key_rev_ = existing.create_revision();
    if (existing.value() == request_->value()) {
      WaitForTurn();
      return;
    }
    // Our key from an earlier campaign holds another proposal: replace it.
    client_->Txn(SelfClient::ChildContext(*context_),
                 ProclaimTxn(key_, key_rev_, lease_, request_->value()),
                 [self = shared_from_this()](const grpc::Status& status,
                                             etcdserverpb::TxnResponse& response) {
                   if (!status.ok()) {
                     ReleaseKey(self->client_, self->key_, self->key_rev_);
                     self->Finish(AsRecipeError(status));
                   } else if (!response.succeeded()) {
                     self->Finish(Unknown(kErrNotLeader));  // The key went away meanwhile.
                   } else {
                     self->WaitForTurn();
                   }
                 });
  }

  void TakeTurn(const etcdserverpb::ResponseHeader&) {
    // etcd answers with the header of the entry txn, not of the wait.
    *response_->mutable_header() = header_;
    auto* leader = response_->mutable_leader();
    leader->set_name(request_->name());
    leader->set_key(key_);
    leader->set_rev(key_rev_);
    leader->set_lease(lease_);
    FinishTurnTaken();
  }

  // Written by the entry steps, before any step that reads them.
  int64_t lease_ = 0;
  etcdserverpb::ResponseHeader header_;
};

// ---------------------------------------------------------------------------
// Observe: streams the leader's key and value, first as it is now (if there
// is a leader), then each change: a new value proclaimed, or a new leader once
// the last one's key is gone. Like etcd, the stream ends with OK when a read
// or watch fails (the client reconnects), and sends nothing while there is
// no leader.
//
// One thing is outstanding at a time, so the steps never race: a read of the
// leader, a read on the inner watch stream, or writes to the client. The
// inner watch is read again only once the writes are done, so a slow client
// slows its watch instead of filling memory. Owns itself (self_) until OnDone.
class ObserveCall final : public grpc::ServerWriteReactor<LeaderResponse>,
                          public std::enable_shared_from_this<ObserveCall> {
 public:
  ObserveCall(std::shared_ptr<SelfClient> client, grpc::CallbackServerContext* context,
              std::string name)
      : client_(std::move(client)), context_(context), prefix_(PrefixOf(name)) {}

  static ObserveCall* Start(std::shared_ptr<ObserveCall> call) {
    call->self_ = call;
    call->FindLeader();
    return call.get();
  }

  void OnCancel() override {
    std::shared_ptr<grpc::ClientContext> step;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      step = step_;
    }
    if (step) step->TryCancel();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      StopWatchAndEnd(Cancelled());
      return;
    }
    WriteNext();
  }

  void OnDone() override { std::shared_ptr<ObserveCall> last = std::move(self_); }

 private:
  class Watch;
  // What the inner watch waits for: the first candidate under the prefix,
  // or the changes of the leader's key.
  enum class Phase { kWaitForLeader, kFollowLeader };
  // What follows the writes in the outbox.
  enum class Next { kFollowLeader, kReadWatch, kFindLeader };

  static grpc::Status Cancelled() {
    return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled");
  }

  bool IsCancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }

  bool BeginStep(std::shared_ptr<grpc::ClientContext> context) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return false;
    step_ = std::move(context);
    return true;
  }

  // etcd's Observe ends its stream with OK when its client's read or watch
  // fails; only a cancellation is reported as such.
  grpc::Status Quietly(const grpc::Status& status) {
    if (IsCancelled()) return Cancelled();
    if (status.error_code() == grpc::StatusCode::CANCELLED ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return status;
    }
    return grpc::Status::OK;
  }

  void FindLeader() {
    std::shared_ptr<grpc::ClientContext> context = SelfClient::ChildContext(*context_);
    if (!BeginStep(context)) {
      Finish(Cancelled());
      return;
    }
    client_->Range(std::move(context), OldestUnder(prefix_),
                   [self = shared_from_this()](const grpc::Status& status,
                                               etcdserverpb::RangeResponse& response) {
                     self->OnLeaderRead(status, response);
                   });
  }

  void OnLeaderRead(const grpc::Status& status, etcdserverpb::RangeResponse& response) {
    if (!status.ok()) {
      Finish(Quietly(status));
      return;
    }
    if (response.kvs_size() == 0) {
      StartWatch(Phase::kWaitForLeader, prefix_, PrefixEnd(prefix_), response.header().revision());
      return;
    }
    LeaderResponse current;
    *current.mutable_header() = response.header();
    *current.mutable_kv() = response.kvs(0);
    leader_key_ = response.kvs(0).key();
    follow_from_ = response.header().revision() + 1;
    outbox_.push_back(std::move(current));
    next_ = Next::kFollowLeader;
    WriteNext();
  }

  void WriteNext() {
    if (IsCancelled()) {
      StopWatchAndEnd(Cancelled());
      return;
    }
    if (outbox_.empty()) {
      AfterWrites();
      return;
    }
    writing_ = std::move(outbox_.front());
    outbox_.pop_front();
    StartWrite(&writing_);
  }

  void AfterWrites() {
    switch (next_) {
      case Next::kFollowLeader:
        StartWatch(Phase::kFollowLeader, leader_key_, "", follow_from_);
        return;
      case Next::kReadWatch:
        ReadWatch();
        return;
      case Next::kFindLeader:
        FindLeader();
        return;
    }
  }

  void StartWatch(Phase phase, const std::string& key, const std::string& range_end,
                  int64_t from_rev);
  void ReadWatch();
  void StopWatch();
  void OnWatchBroken();
  void OnWatchResponse(const WatchResponse& response);
  void OnWatchEnded(const grpc::Status& status);

  void StopWatchAndEnd(const grpc::Status& status) {
    if (watch_ == nullptr) {
      Finish(status);
      return;
    }
    end_when_watch_ends_ = status;
    StopWatch();
  }

  const std::shared_ptr<SelfClient> client_;
  grpc::CallbackServerContext* const context_;
  const std::string prefix_;
  std::shared_ptr<ObserveCall> self_;  // Until OnDone.

  // Touched only by the step running (see the class comment).
  Phase phase_ = Phase::kWaitForLeader;
  Next next_ = Next::kFollowLeader;
  std::string leader_key_;
  int64_t follow_from_ = 0;
  Watch* watch_ = nullptr;           // The inner watch stream, until its OnDone.
  bool stopped_for_writes_ = false;  // We stopped watch_ to write what it brought.
  std::optional<grpc::Status> end_when_watch_ends_;
  std::deque<LeaderResponse> outbox_;
  LeaderResponse writing_;

  std::mutex mu_;
  bool cancelled_ = false;                     // guarded by mu_
  std::shared_ptr<grpc::ClientContext> step_;  // guarded by mu_: the inner call in flight
};

// The inner watch of an ObserveCall: one watcher, read one response at a
// time when the observer asks. A hold keeps OnDone back until the observer
// releases the stream, so the stream never ends behind the observer's back
// (say, cancelled while the observer writes): the observer learns of a
// failed read, decides, and releases. Deletes itself in OnDone.
class ObserveCall::Watch final : public grpc::ClientBidiReactor<WatchRequest, WatchResponse> {
 public:
  Watch(std::shared_ptr<ObserveCall> observer, std::shared_ptr<grpc::ClientContext> context,
        WatchRequest create)
      : observer_(std::move(observer)), context_(std::move(context)), create_(std::move(create)) {}

  // False if the stream could not open (the client is closed); the caller
  // then still owns this object.
  bool Start() {
    return observer_->client_->OpenWatch(context_.get(), this, [this] {
      AddHold();
      StartWrite(&create_);
      StartRead(&response_);
      StartCall();
    });
  }
  void ReadNext() { StartRead(&response_); }
  // Ends the stream; OnDone (and the observer's OnWatchEnded) follows.
  void Release() {
    context_->TryCancel();
    RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      observer_->OnWatchResponse(response_);
    } else {
      observer_->OnWatchBroken();
    }
  }
  void OnDone(const grpc::Status& status) override {
    observer_->OnWatchEnded(status);
    delete this;
  }

 private:
  const std::shared_ptr<ObserveCall> observer_;
  const std::shared_ptr<grpc::ClientContext> context_;
  WatchRequest create_;
  WatchResponse response_;
};

void ObserveCall::StartWatch(Phase phase, const std::string& key, const std::string& range_end,
                             int64_t from_rev) {
  std::shared_ptr<grpc::ClientContext> context = SelfClient::ChildContext(*context_);
  if (!BeginStep(context)) {
    Finish(Cancelled());
    return;
  }
  phase_ = phase;
  WatchRequest create;
  create.mutable_create_request()->set_key(key);
  create.mutable_create_request()->set_range_end(range_end);
  create.mutable_create_request()->set_start_revision(from_rev);
  watch_ = new Watch(shared_from_this(), std::move(context), std::move(create));
  if (!watch_->Start()) {
    delete watch_;
    watch_ = nullptr;
    Finish(grpc::Status::OK);  // As for any failed watch: the stream ends quietly.
  }
}

void ObserveCall::ReadWatch() { watch_->ReadNext(); }

void ObserveCall::StopWatch() { watch_->Release(); }

// The stream failed or was cancelled under a read: release it, and finish
// when it is done (neither stopped_for_writes_ nor end_when_watch_ends_ is
// set, so OnWatchEnded reports the failure).
void ObserveCall::OnWatchBroken() { StopWatch(); }

void ObserveCall::OnWatchResponse(const WatchResponse& response) {
  if (response.canceled()) {
    // Compacted past our revision, or refused: etcd's observer gives up.
    StopWatchAndEnd(grpc::Status::OK);
    return;
  }
  if (phase_ == Phase::kWaitForLeader) {
    for (const auto& event : response.events()) {
      if (event.type() != mvccpb::Event::PUT) continue;  // A delete elects nobody.
      LeaderResponse first;
      *first.mutable_header() = response.header();
      first.mutable_header()->set_revision(event.kv().mod_revision());
      *first.mutable_kv() = event.kv();
      leader_key_ = event.kv().key();
      follow_from_ = event.kv().mod_revision() + 1;
      outbox_.push_back(std::move(first));
      // This watch covers the whole prefix; the leader's key gets its own.
      next_ = Next::kFollowLeader;
      stopped_for_writes_ = true;
      StopWatch();
      return;
    }
    ReadWatch();
    return;
  }
  // Following the leader's key: each new value is news; its deletion means
  // the next candidate, if any, leads.
  for (const auto& event : response.events()) {
    if (event.type() == mvccpb::Event::DELETE) {
      next_ = Next::kFindLeader;
      stopped_for_writes_ = true;
      StopWatch();
      return;
    }
    LeaderResponse change;
    *change.mutable_header() = response.header();
    *change.mutable_kv() = event.kv();
    outbox_.push_back(std::move(change));
  }
  next_ = Next::kReadWatch;
  WriteNext();
}

void ObserveCall::OnWatchEnded(const grpc::Status& status) {
  watch_ = nullptr;
  if (end_when_watch_ends_) {
    Finish(*end_when_watch_ends_);
  } else if (stopped_for_writes_) {
    stopped_for_writes_ = false;
    WriteNext();
  } else {
    Finish(Quietly(status));  // Ended by itself: a failure or a cancellation.
  }
}

class RefusedObserve final : public grpc::ServerWriteReactor<LeaderResponse> {
 public:
  explicit RefusedObserve(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

ElectionService::ElectionService(const SelfClientSlot* client, CallGate gate)
    : client_(client), gate_(std::move(gate)) {}

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* context,
                                                    const v3electionpb::CampaignRequest* request,
                                                    v3electionpb::CampaignResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  return CampaignCall::Start(
      std::make_shared<CampaignCall>(std::move(client), context, request, response));
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* context,
                                                    const v3electionpb::ProclaimRequest* request,
                                                    v3electionpb::ProclaimResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  if (!request->has_leader()) return FinishNow(context, Unknown(kErrMissingLeaderKey));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // A LeaderKey without a lease gets a new one, as in etcd (its session).
  EnsureLease(
      *client, *context, request->leader().lease(),
      [client, context, request, response, reactor](const grpc::Status& status, int64_t lease) {
        if (!status.ok()) {
          reactor->Finish(AsRecipeError(status));
          return;
        }
        const auto& leader = request->leader();
        client->Txn(
            SelfClient::ChildContext(*context),
            ProclaimTxn(leader.key(), leader.rev(), lease, request->value()),
            [response, reactor](const grpc::Status& status, etcdserverpb::TxnResponse& txn) {
              if (!status.ok()) {
                reactor->Finish(AsRecipeError(status));
              } else if (!txn.succeeded()) {
                reactor->Finish(Unknown(kErrNotLeader));
              } else {
                *response->mutable_header() = txn.header();
                reactor->Finish(grpc::Status::OK);
              }
            });
      });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* context,
                                                  const v3electionpb::LeaderRequest* request,
                                                  v3electionpb::LeaderResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  client->Range(
      SelfClient::ChildContext(*context), OldestUnder(PrefixOf(request->name())),
      [response, reactor](const grpc::Status& status, etcdserverpb::RangeResponse& range) {
        if (!status.ok()) {
          reactor->Finish(AsRecipeError(status));
        } else if (range.kvs_size() == 0) {
          reactor->Finish(Unknown(kErrNoLeader));
        } else {
          *response->mutable_header() = range.header();
          *response->mutable_kv() = range.kvs(0);
          reactor->Finish(grpc::Status::OK);
        }
      });
  return reactor;
}

grpc::ServerWriteReactor<LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* context, const v3electionpb::LeaderRequest* request) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return new RefusedObserve(refusal);
  return ObserveCall::Start(
      std::make_shared<ObserveCall>(std::move(client), context, request->name()));
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* context,
                                                  const v3electionpb::ResignRequest* request,
                                                  v3electionpb::ResignResponse* response) {
  grpc::Status refusal;
  std::shared_ptr<SelfClient> client = Admit(*client_, gate_, *context, &refusal);
  if (!client) return FinishNow(context, refusal);
  if (!request->has_leader()) return FinishNow(context, Unknown(kErrMissingLeaderKey));
  // Deletes the key only if it is still the leader's incarnation; resigning
  // when no longer leader is a success, as in etcd.
  etcdserverpb::TxnRequest txn;
  CompareCreated(&txn, request->leader().key(), request->leader().rev());
  txn.add_success()->mutable_request_delete_range()->set_key(request->leader().key());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  client->Txn(SelfClient::ChildContext(*context), std::move(txn),
              [response, reactor](const grpc::Status& status, etcdserverpb::TxnResponse& done) {
                if (status.ok()) *response->mutable_header() = done.header();
                reactor->Finish(AsRecipeError(status));
              });
  return reactor;
}

}  // namespace etcdpp::api::concurrency
