#include "api/watch_service.h"

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/leader_monitor.h"
#include "mvcc/kv_store.h"
#include "watch/watch_hub.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// etcd's errors for a refused create (sent as the cancel_reason of a
// created+canceled response with watch_id -1, not as an RPC error).
constexpr char kErrEmptyWatcherRange[] = "mvcc: watcher range is empty";
constexpr char kErrDuplicateWatchId[] = "mvcc: duplicate watch ID provided on the WatchStream";

// A stream's buffer of responses not yet written. When it is full the hub
// stops sending (the watchers fall back to catching up from the store), so a
// client that does not read costs at most this much memory. Control
// responses (created, canceled, progress) are always taken: they are small
// and bounded by the client's own requests.
constexpr size_t kMaxQueuedResponses = 1024;
constexpr size_t kMaxQueuedBytes = 16 << 20;

// etcd's sendFragments: a response over the limit with more than one event
// is split into several with fragment=true, all but the last.
std::vector<WatchResponse> Fragment(WatchResponse&& response, size_t max_bytes) {
  std::vector<WatchResponse> out;
  if (response.ByteSizeLong() < max_bytes || response.events_size() < 2) {
    out.push_back(std::move(response));
    return out;
  }
  WatchResponse base = response;
  base.clear_events();
  base.set_fragment(true);
  int next = 0;
  while (next < response.events_size()) {
    WatchResponse part = base;
    size_t size = part.ByteSizeLong();
    while (next < response.events_size()) {
      const size_t event_bytes = response.events(next).ByteSizeLong() + 2 + 4;  // tag+length
      if (part.events_size() > 0 && size + event_bytes >= max_bytes) break;
      *part.add_events() = response.events(next);
      size += event_bytes;
      ++next;
    }
    if (next == response.events_size()) part.set_fragment(false);
    out.push_back(std::move(part));
  }
  return out;
}

class WatchStream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>,
                          public watch::WatchSink {
 public:
  // With `monitor`, the stream ends with "etcdserver: no leader" when its
  // member loses the leader for long (the client asked for a leader).
  // With `auth`, each create is checked for read access to its range, as
  // the stream's token (or certificate) says at that moment (`credentials`:
  // those the stream was opened with).
  WatchStream(const server::ClusterView* cluster, watch::WatchHub* hub, LeaderMonitor* monitor,
              const auth::AuthStore* auth, CallCredentials credentials)
      : cluster_(cluster),
        hub_(hub),
        monitor_(monitor),
        auth_(auth),
        credentials_(std::move(credentials)) {
    if (monitor_ != nullptr) {
      monitor_token_ = monitor_->Register([this] { End(ToGrpcStatus(Status(Code::kNoLeader))); });
    }
    StartRead(&request_);
  }

  // ---- gRPC reactions ----

  void OnReadDone(bool ok) override {
    if (!ok) return;  // Half-closed: keep sending until the client cancels (as etcd).
    Handle(request_);
    request_.Clear();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool wake = false;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      queued_bytes_ -= writing_bytes_;
      writing_bytes_ = 0;
      if (!ok) broken_ = true;
      if (pending_finish_) {
        finish = std::move(pending_finish_);
        pending_finish_.reset();
      }
      wake = was_full_ && RoomLocked();
      if (wake) was_full_ = false;
    }
    if (finish) {
      Finish(*finish);
      return;
    }
    if (wake) hub_->Wake();
    Pump();
  }

  void OnCancel() override { End(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled")); }

  void OnDone() override {
    if (monitor_ != nullptr) monitor_->Unregister(monitor_token_);
    hub_->RemoveSink(this);
    delete this;
  }

  // ---- watch::WatchSink (called with the hub's lock held) ----

  bool TrySend(WatchResponse& response, bool force) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return true;  // Dropped: the stream is ending.
      if (!force && !out_.empty() && !RoomLocked()) {
        was_full_ = true;
        return false;
      }
      EnqueueLocked(std::move(response));
    }
    Pump();
    return true;
  }

  bool HasRoom() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (out_.empty() || RoomLocked()) return true;
    was_full_ = true;  // The hub is waiting for room: wake it when there is.
    return false;
  }

  void OnHubStopped() override {
    End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"));
  }

 private:
  void Handle(const WatchRequest& request) {
    switch (request.request_union_case()) {
      case WatchRequest::kCreateRequest:
        Create(request.create_request());
        break;
      case WatchRequest::kCancelRequest:
        Cancel(request.cancel_request().watch_id());
        break;
      case WatchRequest::kProgressRequest:
        hub_->RequestProgress(this);
        break;
      default:
        break;  // etcd ignores what it does not know.
    }
  }

  void Create(const etcdserverpb::WatchCreateRequest& create) {
    watch::WatchSpec spec;
    // etcd: an empty key means "\0" (the smallest key); range_end "\0" means
    // every key >= key, which is also our KeyRange's spelling.
    spec.key = create.key().empty() ? std::string(1, '\0') : create.key();
    spec.range_end = create.range_end();
    spec.prev_kv = create.prev_kv();
    spec.progress_notify = create.progress_notify();
    for (int f : create.filters()) {
      if (f == etcdserverpb::WatchCreateRequest::NOPUT) spec.no_put = true;
      if (f == etcdserverpb::WatchCreateRequest::NODELETE) spec.no_delete = true;
    }
    const int64_t rev = cluster_->store()->CurrentRevision();
    spec.start_revision = create.start_revision() == 0 ? rev + 1 : create.start_revision();

    std::lock_guard<std::mutex> ids_lock(ids_mu_);
    std::optional<std::string> error;
    const bool from_key = spec.range_end == std::string(1, '\0');
    if (Status refused = CheckPermitted(create); !refused.ok()) {
      // etcd sends the full text of the gRPC error here.
      error = GrpcErrorText(refused);
    } else if (!spec.range_end.empty() && !from_key && spec.key >= spec.range_end) {
      error = kErrEmptyWatcherRange;
    } else if (create.watch_id() != 0 && ids_.count(create.watch_id()) != 0) {
      error = kErrDuplicateWatchId;
    }
    WatchResponse created;
    created.mutable_header()->set_revision(rev);
    created.set_created(true);
    if (error) {
      created.set_watch_id(-1);
      created.set_canceled(true);
      created.set_cancel_reason(*error);
      Send(std::move(created));
      return;
    }
    int64_t id = create.watch_id();
    if (id == 0) {
      while (ids_.count(next_id_) != 0) ++next_id_;
      id = next_id_++;
    }
    spec.watch_id = id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (create.fragment()) fragment_.insert(id);
    }
    created.set_watch_id(id);
    // Queued before the watcher exists, so it precedes all its events.
    Send(std::move(created));
    auto hub_id = hub_->Add(this, spec);
    if (!hub_id.ok()) {
      End(grpc::Status(grpc::StatusCode::UNAVAILABLE, ClientMessage(hub_id.status())));
      return;
    }
    ids_[id] = *hub_id;
  }

  Status CheckPermitted(const etcdserverpb::WatchCreateRequest& create) const {
    if (auth_ == nullptr) return Status::OK();
    auto sender = SenderFrom(auth_, credentials_);
    if (!sender.ok()) return sender.status();
    return auth_->state()->CheckKeys(*sender, auth::Access::kRead, create.key(),
                                     create.range_end());
  }

  void Cancel(int64_t id) {
    std::lock_guard<std::mutex> ids_lock(ids_mu_);
    auto it = ids_.find(id);
    if (it == ids_.end()) return;  // etcd answers nothing for an unknown id.
    hub_->Remove(it->second);
    ids_.erase(it);
    {
      std::lock_guard<std::mutex> lock(mu_);
      fragment_.erase(id);
    }
    WatchResponse canceled;
    canceled.mutable_header()->set_revision(cluster_->store()->CurrentRevision());
    canceled.set_watch_id(id);
    canceled.set_canceled(true);
    Send(std::move(canceled));
  }

  // Queues a control response (never refused).
  void Send(WatchResponse&& response) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return;
      EnqueueLocked(std::move(response));
    }
    Pump();
  }

  bool RoomLocked() const {
    return out_.size() < kMaxQueuedResponses && queued_bytes_ < kMaxQueuedBytes;
  }

  void EnqueueLocked(WatchResponse&& response) {
    const int64_t rev = response.header().revision();
    cluster_->FillHeader(response.mutable_header());
    response.mutable_header()->set_revision(rev);
    if (fragment_.count(response.watch_id()) != 0) {
      for (WatchResponse& part : Fragment(std::move(response), cluster_->max_request_bytes())) {
        queued_bytes_ += part.ByteSizeLong();
        out_.push_back(std::move(part));
      }
      return;
    }
    queued_bytes_ += response.ByteSizeLong();
    out_.push_back(std::move(response));
  }

  // Starts the next write unless one is in flight (gRPC allows one at a time).
  void Pump() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || out_.empty() || finishing_ || broken_) return;
      writing_ = true;
      current_ = std::move(out_.front());
      out_.pop_front();
      writing_bytes_ = current_.ByteSizeLong();
    }
    StartWrite(&current_);
  }

  // Finishes the RPC once (after the write in flight, if any).
  void End(grpc::Status status) {
    bool now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return;
      finishing_ = true;
      out_.clear();
      queued_bytes_ = writing_bytes_;
      if (writing_) {
        pending_finish_ = std::move(status);
      } else {
        now = true;
      }
    }
    if (now) Finish(status);
  }

  const server::ClusterView* const cluster_;
  watch::WatchHub* const hub_;
  LeaderMonitor* const monitor_;
  const auth::AuthStore* const auth_;
  const CallCredentials credentials_;
  LeaderMonitor::Token monitor_token_ = 0;
  WatchRequest request_;  // Reading side only (one read at a time).

  // Watch ids of this stream -> hub watcher ids. Lock order: ids_mu_, then
  // the hub's lock, then mu_.
  std::mutex ids_mu_;
  std::map<int64_t, watch::WatchHub::WatcherId> ids_;  // guarded by ids_mu_
  int64_t next_id_ = 0;                                // guarded by ids_mu_

  mutable std::mutex mu_;
  std::deque<WatchResponse> out_;  // guarded by mu_
  size_t queued_bytes_ = 0;        // guarded by mu_: out_ plus the write in flight
  std::set<int64_t> fragment_;     // guarded by mu_: ids that asked for fragments
  bool writing_ = false;           // guarded by mu_
  size_t writing_bytes_ = 0;       // guarded by mu_
  mutable bool was_full_ = false;  // guarded by mu_: the hub found no room since last wake
  bool broken_ = false;            // guarded by mu_: a write failed
  bool finishing_ = false;         // guarded by mu_
  std::optional<grpc::Status> pending_finish_;  // guarded by mu_
  WatchResponse current_;  // The write in flight (owned by the writer while writing_).
};

}  // namespace

WatchService::WatchService(const server::ClusterView* cluster, watch::WatchHub* hub,
                           LeaderMonitor* monitor, const auth::AuthStore* auth)
    : cluster_(cluster), hub_(hub), monitor_(monitor), auth_(auth) {}

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* WatchService::Watch(
    grpc::CallbackServerContext* context) {
  Status st = CheckCall(*cluster_, *context, LearnerServes::kNo);
  if (!st.ok()) return new RefusedStream<WatchRequest, WatchResponse>(st);
  return new WatchStream(cluster_, hub_, RequiresLeader(*context) ? monitor_ : nullptr, auth_,
                         CredentialsOf(*context));
}

}  // namespace etcdpp::api
