#include "api/concurrency/turn_waiter.h"

#include <grpcpp/alarm.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace etcdpp::api::concurrency {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// Pauses between retries of a transient failure (an election in progress
// usually ends within a few election timeouts).
constexpr std::chrono::milliseconds kFirstRetryPause{100};
constexpr std::chrono::milliseconds kMaxRetryPause{2000};

TurnWaiter::Outcome Failed(grpc::Status status) {
  TurnWaiter::Outcome outcome;
  outcome.status = std::move(status);
  return outcome;
}

}  // namespace

// One watch stream on the predecessor and on the waiter's own key, from the
// revision after the read that found them. It ends at the first event that
// may change the answer (a deletion of either key, or a watcher the server
// cancelled, e.g. compacted): the waiter then reads again. Deletes itself in
// OnDone, after handing the outcome to the waiter.
class TurnWaiter::DeleteWatch final : public grpc::ClientBidiReactor<WatchRequest, WatchResponse> {
 public:
  DeleteWatch(std::shared_ptr<TurnWaiter> waiter, std::shared_ptr<grpc::ClientContext> context,
              std::vector<std::string> keys, int64_t from_rev)
      : waiter_(std::move(waiter)), context_(std::move(context)) {
    for (size_t i = 0; i < keys.size(); ++i) {
      auto* create = creates_.emplace_back().mutable_create_request();
      create->set_key(keys[i]);
      create->set_start_revision(from_rev);
      create->set_watch_id(static_cast<int64_t>(i) + 1);
    }
  }

  // False if the stream could not open (the client is closed); the caller
  // then still owns this object.
  bool Start() {
    return waiter_->client_->OpenWatch(context_.get(), this, [this] {
      StartWrite(&creates_[0]);
      StartRead(&response_);
      StartCall();
    });
  }

  // Writes are sequential: the next create starts when the one before is sent.
  void OnWriteDone(bool ok) override {
    if (ok && ++next_create_ < creates_.size()) StartWrite(&creates_[next_create_]);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream is over: OnDone follows.
    bool look_again = response_.canceled();
    for (const auto& event : response_.events()) {
      if (event.type() == mvccpb::Event::DELETE) look_again = true;
    }
    if (look_again) {
      woke_ = true;
      context_->TryCancel();
      return;
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    waiter_->OnWatchEnded(woke_ ? grpc::Status::OK : status);
    delete this;
  }

 private:
  const std::shared_ptr<TurnWaiter> waiter_;
  const std::shared_ptr<grpc::ClientContext> context_;
  std::vector<WatchRequest> creates_;
  size_t next_create_ = 0;  // Touched only by the write reactions.
  WatchResponse response_;  // Touched only by the read reactions.
  bool woke_ = false;       // Written by a read reaction, read by OnDone (after it).
};

std::shared_ptr<TurnWaiter> TurnWaiter::Start(std::shared_ptr<SelfClient> client,
                                              const grpc::CallbackServerContext* parent,
                                              std::string prefix, std::string own_key,
                                              int64_t own_rev, Done done) {
  std::shared_ptr<TurnWaiter> waiter(new TurnWaiter(std::move(client), parent, std::move(prefix),
                                                    std::move(own_key), own_rev, std::move(done)));
  waiter->Check();
  return waiter;
}

TurnWaiter::TurnWaiter(std::shared_ptr<SelfClient> client,
                       const grpc::CallbackServerContext* parent, std::string prefix,
                       std::string own_key, int64_t own_rev, Done done)
    : client_(std::move(client)),
      parent_(parent),
      prefix_(std::move(prefix)),
      own_key_(std::move(own_key)),
      own_rev_(own_rev),
      done_(std::move(done)) {}

void TurnWaiter::Cancel() {
  std::shared_ptr<grpc::ClientContext> step;
  std::shared_ptr<grpc::Alarm> timer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    step = step_;
    timer = timer_;
  }
  // Outside the lock: either may run a completion on this thread.
  if (step) step->TryCancel();
  if (timer) timer->Cancel();
}

bool TurnWaiter::BeginStep(std::shared_ptr<grpc::ClientContext> context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  step_ = std::move(context);
  return true;
}

// One linearizable read of both facts the decision needs, at one revision:
// the newest key older than ours, and whether ours still exists.
void TurnWaiter::Check() {
  std::shared_ptr<grpc::ClientContext> context = SelfClient::ChildContext(*parent_);
  if (!BeginStep(context)) {
    Finish(Failed(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")));
    return;
  }
  etcdserverpb::TxnRequest txn;
  auto* older = txn.add_success()->mutable_request_range();
  older->set_key(prefix_);
  older->set_range_end(PrefixEnd(prefix_));
  older->set_sort_target(etcdserverpb::RangeRequest::CREATE);
  older->set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  older->set_limit(1);
  older->set_max_create_revision(own_rev_ - 1);  // own_rev_ > 1: revision 1 holds no key.
  auto* own = txn.add_success()->mutable_request_range();
  own->set_key(own_key_);
  own->set_keys_only(true);
  client_->Txn(
      std::move(context), std::move(txn),
      [self = shared_from_this()](const grpc::Status& status, etcdserverpb::TxnResponse& response) {
        self->OnChecked(status, response);
      });
}

void TurnWaiter::OnChecked(const grpc::Status& status, etcdserverpb::TxnResponse& response) {
  if (!status.ok()) {
    if (IsTransient(status)) {
      RetryLater();
    } else {
      Finish(Failed(status));
    }
    return;
  }
  failures_in_a_row_ = 0;
  if (response.responses_size() != 2) {
    Finish(
        Failed(grpc::Status(grpc::StatusCode::INTERNAL, "lock: malformed read of the lock queue")));
    return;
  }
  const auto& older = response.responses(0).response_range();
  const auto& own = response.responses(1).response_range();
  if (own.kvs_size() == 0) {
    Outcome lost;
    lost.own_key_lost = true;
    lost.header = response.header();
    Finish(std::move(lost));
    return;
  }
  if (older.kvs_size() == 0) {
    Outcome turn;
    turn.header = response.header();
    Finish(std::move(turn));
    return;
  }
  Watch(older.kvs(0).key(), response.header().revision() + 1);
}

void TurnWaiter::Watch(const std::string& predecessor, int64_t from_rev) {
  std::shared_ptr<grpc::ClientContext> context = SelfClient::ChildContext(*parent_);
  if (!BeginStep(context)) {
    Finish(Failed(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")));
    return;
  }
  auto* watch =
      new DeleteWatch(shared_from_this(), std::move(context), {predecessor, own_key_}, from_rev);
  if (!watch->Start()) {
    // The client closed (the member is stopping): no reaction will ever
    // reach the watch, so it cannot delete itself or end this wait.
    delete watch;
    Finish(Failed(grpc::Status(grpc::StatusCode::UNAVAILABLE, kErrStopped)));
  }
}

void TurnWaiter::OnWatchEnded(const grpc::Status& status) {
  if (status.ok()) {
    Check();
  } else if (IsTransient(status)) {
    RetryLater();
  } else {
    Finish(Failed(status));
  }
}

void TurnWaiter::RetryLater() {
  auto pause = kFirstRetryPause * (1 << std::min(failures_in_a_row_, 5));
  ++failures_in_a_row_;
  pause = std::min(pause, kMaxRetryPause);
  auto timer = std::make_shared<grpc::Alarm>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) {
      timer.reset();
    } else {
      timer_ = timer;
    }
  }
  if (!timer) {
    Finish(Failed(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")));
    return;
  }
  // The alarm's callback keeps this waiter alive; the waiter drops the alarm
  // when it fires, which frees the callback (gRPC holds its own reference
  // to the alarm until the callback returns).
  timer->Set(std::chrono::system_clock::now() + pause, [self = shared_from_this()](bool) {
    std::shared_ptr<grpc::Alarm> fired;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      fired = std::move(self->timer_);
    }
    self->Check();  // Also when cancelled: Check sees it and finishes.
  });
}

void TurnWaiter::Finish(Outcome outcome) {
  Done done = std::exchange(done_, nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    step_.reset();
  }
  if (done) done(outcome);
}

}  // namespace etcdpp::api::concurrency
