#include "api/watch_service.h"

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <grpcpp/support/slice.h>

#include "api/answered_writes.h"
#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/leader_monitor.h"
#include "base/tsan_handoff.h"
#include "mvcc/kv_store.h"
#include "watch/watch_hub.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;
using grpc::ByteBuffer;

// etcd's errors for a refused create (sent as the cancel_reason of a
// created+canceled response with watch_id -1, not as an RPC error).
constexpr char kErrEmptyWatcherRange[] = "mvcc: watcher range is empty";
constexpr char kErrDuplicateWatchId[] = "mvcc: duplicate watch ID provided on the WatchStream";

// A stream's buffer of responses not yet written. When it is full the hub
// stops sending (the watchers fall back to catching up from the store), so a
// client that does not read costs at most this much memory. Control
// responses (created, canceled, progress) are always taken: they are small
// and bounded by the client's own requests. An events response queued costs
// its own header and watch id (tens of bytes) plus references to events
// shared with the stream's other watchers, so the count allows a few
// revisions' worth of a fan-out of a thousand watchers on one stream; the
// byte bound counts every response's full size, as the client receives it.
constexpr size_t kMaxQueuedResponses = 4096;
constexpr size_t kMaxQueuedBytes = 16 << 20;

// WatchResponse fields written directly (etcd's rpc.proto).
constexpr char kHeaderFieldTag = (1 << 3) | 2;   // header, length-delimited
constexpr char kWatchIdFieldTag = (2 << 3) | 0;  // watch_id, varint

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// The grpc::Slice of an encoded event holds a reference to it until gRPC has
// written the last response that carries it.
void ReleaseEncodedEvent(void* held) { delete static_cast<watch::EncodedEvent*>(held); }

grpc::Slice SliceOf(const watch::EncodedEvent& event) {
  return grpc::Slice(const_cast<char*>(event->data()), event->size(), ReleaseEncodedEvent,
                     new watch::EncodedEvent(event));
}

void Serialize(const WatchResponse& response, ByteBuffer* out) {
  bool own = false;
  // Serializing a message we built cannot fail short of running out of memory.
  (void)grpc::SerializationTraits<WatchResponse>::Serialize(response, out, &own);
}

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

// A response queued for writing, with the size the client will receive:
// a whole message (control responses, fragments), or an events response kept
// as its parts until its write starts, so that a queued fan-out response
// costs about a hundred bytes and no gRPC byte buffer. (grpc::ByteBuffer has
// no move: it is handed on with Swap, as a copy would allocate.)
struct Outgoing {
  ByteBuffer bytes;  // A message; empty for an events response.
  // An events response: the stream's shared header slice, the watch id,
  // the first event and any others.
  bool events = false;
  grpc::Slice header;
  int64_t watch_id = 0;
  watch::EncodedEvent first_event;
  std::vector<watch::EncodedEvent> more_events;
  size_t size = 0;
};

class WatchStream final : public grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>,
                          public watch::WatchSink {
 public:
  // With `monitor`, the stream ends with "etcdserver: no leader" when its
  // member loses the leader for long (the client asked for a leader).
  // With `auth`, each create is checked for read access to its range, as
  // the stream's token (or certificate) says at that moment (`credentials`:
  // those the stream was opened with).
  WatchStream(const server::ClusterView* cluster, watch::WatchHub* hub, LeaderMonitor* monitor,
              const auth::AuthStore* auth, server::ReadBarrier* barrier,
              CallCredentials credentials)
      : cluster_(cluster),
        hub_(hub),
        monitor_(monitor),
        auth_(auth),
        barrier_(barrier),
        credentials_(std::move(credentials)) {
    if (monitor_ != nullptr) {
      monitor_token_ = monitor_->Register([this] { End(ToGrpcStatus(Status(Code::kNoLeader))); });
    }
    tsan::HandingOff(this);
    tsan::HandingOff(&request_bytes_);
    StartRead(&request_bytes_);
  }

  // ---- gRPC reactions ----

  void OnReadDone(bool ok) override {
    tsan::Reaction reaction(&request_bytes_, this);
    if (!ok) return;  // Half-closed: keep sending until the client cancels (as etcd).
    WatchRequest request;
    grpc::Status parsed =
        grpc::SerializationTraits<WatchRequest>::Deserialize(&request_bytes_, &request);
    if (!parsed.ok()) {
      End(grpc::Status(grpc::StatusCode::INTERNAL, "grpc: error unmarshalling request"));
      return;
    }
    Handle(request);
    request_bytes_.Clear();
    tsan::HandingOff(&request_bytes_);
    StartRead(&request_bytes_);
  }

  void OnWriteDone(bool ok) override {
    tsan::Reaction reaction(&current_, this);
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
      tsan::HandingOff(this);
      Finish(*finish);
      return;
    }
    if (wake) hub_->Wake();
    Pump();
  }

  void OnCancel() override {
    tsan::Reaction reaction(this, this);  // After the constructor, at least.
    End(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
  }

  void OnDone() override {
    tsan::TookBack(this);
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

  bool TrySendEvents(int64_t watch_id, int64_t header_revision,
                     std::span<const watch::EncodedEvent> events) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return true;  // Dropped: the stream is ending.
      if (!out_.empty() && !RoomLocked()) {
        was_full_ = true;
        return false;
      }
      if (!fragment_.empty() && fragment_.count(watch_id) != 0) {
        // Asked for fragments (rare): split as a message.
        EnqueueLocked(watch::DecodeEventsResponse(watch_id, header_revision, events));
      } else {
        EnqueueEncodedLocked(watch_id, header_revision, events);
      }
      // The write in flight pumps the rest when it completes: no second
      // lock for each of a fan-out's responses.
      if (writing_) return true;
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
    // The start revision and the hub's compaction check must see every
    // write already answered, committed or not yet.
    WaitForAnsweredWrites(barrier_);
    const int64_t rev = cluster_->revision();
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
    canceled.mutable_header()->set_revision(cluster_->revision());
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
        ByteBuffer bytes;
        Serialize(part, &bytes);
        PushLocked(&bytes, part.ByteSizeLong());
      }
      return;
    }
    ByteBuffer bytes;
    Serialize(response, &bytes);
    PushLocked(&bytes, response.ByteSizeLong());
  }

  // The response DecodeEventsResponse would build, written as its bytes:
  // header and watch_id, then the shared event entries (field order does not
  // matter to a protobuf parser).
  void EnqueueEncodedLocked(int64_t watch_id, int64_t header_revision,
                            std::span<const watch::EncodedEvent> events) {
    etcdserverpb::ResponseHeader header;
    cluster_->FillHeader(&header);
    header.set_revision(header_revision);
    if (header_slice_.size() == 0 || header.cluster_id() != header_.cluster_id() ||
        header.member_id() != header_.member_id() || header.revision() != header_.revision() ||
        header.raft_term() != header_.raft_term()) {
      header_ = header;
      std::string bytes(1, kHeaderFieldTag);
      const std::string body = header.SerializeAsString();
      AppendVarint(body.size(), &bytes);
      bytes += body;
      header_slice_ = grpc::Slice(bytes);
    }
    out_.emplace_back();
    Outgoing& o = out_.back();
    o.events = true;
    o.header = header_slice_;  // A reference, not a copy.
    o.watch_id = watch_id;
    o.size = header_slice_.size() + WatchIdBytes(watch_id).size();
    for (const watch::EncodedEvent& e : events) {
      if (o.first_event == nullptr) {
        o.first_event = e;
      } else {
        o.more_events.push_back(e);
      }
      o.size += e->size();
    }
    queued_bytes_ += o.size;
  }

  // The watch_id field; empty for id 0 (proto3 leaves out zero).
  static std::string WatchIdBytes(int64_t watch_id) {
    std::string id;
    if (watch_id == 0) return id;
    id.push_back(kWatchIdFieldTag);
    AppendVarint(static_cast<uint64_t>(watch_id), &id);
    return id;
  }

  // Builds the message of a queued events response into `out`.
  void AssembleLocked(const Outgoing& o, ByteBuffer* out) {
    slices_.clear();
    slices_.push_back(o.header);
    if (o.watch_id != 0) {
      // At most 11 bytes: gRPC keeps a slice that small inline (no allocation).
      slices_.emplace_back(WatchIdBytes(o.watch_id));
    }
    if (o.first_event != nullptr) slices_.push_back(CachedSliceLocked(o.first_event));
    for (const watch::EncodedEvent& e : o.more_events) slices_.push_back(CachedSliceLocked(e));
    ByteBuffer bytes(slices_.data(), slices_.size());
    out->Swap(&bytes);
    slices_.clear();
  }

  // The slice of `event`, made once per stream while the event is recent:
  // the watchers of one stream get a revision's events one after another,
  // and are written in that order.
  grpc::Slice CachedSliceLocked(const watch::EncodedEvent& event) {
    for (const auto& [held, slice] : recent_slices_) {
      if (held == event) return slice;
    }
    grpc::Slice slice = SliceOf(event);
    recent_slices_[next_recent_] = {event, slice};
    next_recent_ = (next_recent_ + 1) % recent_slices_.size();
    return slice;
  }

  // Takes `bytes` (leaves it empty).
  void PushLocked(ByteBuffer* bytes, size_t size) {
    queued_bytes_ += size;
    out_.emplace_back();
    out_.back().bytes.Swap(bytes);
    out_.back().size = size;
  }

  // Starts the next write unless one is in flight (gRPC allows one at a time).
  // While more responses wait behind it, the write carries gRPC's buffer
  // hint: it completes once buffered, and the transport sends the buffered
  // responses together with the next write that has no hint (the last one
  // queued), in one socket write instead of one each.
  void Pump() {
    grpc::WriteOptions options;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || out_.empty() || finishing_ || broken_) return;
      writing_ = true;
      current_.Clear();
      if (out_.front().events) {
        AssembleLocked(out_.front(), &current_);
      } else {
        current_.Swap(&out_.front().bytes);
      }
      writing_bytes_ = out_.front().size;
      out_.pop_front();
      if (!out_.empty()) options.set_buffer_hint();
    }
    tsan::HandingOff(&current_);
    StartWrite(&current_, options);
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
    if (now) {
      tsan::HandingOff(this);
      Finish(status);
    }
  }

  const server::ClusterView* const cluster_;
  watch::WatchHub* const hub_;
  LeaderMonitor* const monitor_;
  const auth::AuthStore* const auth_;
  server::ReadBarrier* const barrier_;
  const CallCredentials credentials_;
  LeaderMonitor::Token monitor_token_ = 0;
  ByteBuffer request_bytes_;  // Reading side only (one read at a time).

  // Watch ids of this stream -> hub watcher ids. Lock order: ids_mu_, then
  // the hub's lock, then mu_.
  std::mutex ids_mu_;
  std::map<int64_t, watch::WatchHub::WatcherId> ids_;  // guarded by ids_mu_
  int64_t next_id_ = 0;                                // guarded by ids_mu_

  mutable std::mutex mu_;
  std::deque<Outgoing> out_;  // guarded by mu_
  // The encoded header of the last events response (guarded by mu_): the
  // watchers of a revision share its slice.
  etcdserverpb::ResponseHeader header_;
  grpc::Slice header_slice_;
  // Slices of the last few events queued (guarded by mu_); see CachedSliceLocked.
  std::array<std::pair<watch::EncodedEvent, grpc::Slice>, 8> recent_slices_;
  size_t next_recent_ = 0;
  std::vector<grpc::Slice> slices_;  // guarded by mu_: scratch of AssembleLocked
  size_t queued_bytes_ = 0;          // guarded by mu_: out_ plus the write in flight
  std::set<int64_t> fragment_;       // guarded by mu_: ids that asked for fragments
  bool writing_ = false;             // guarded by mu_
  size_t writing_bytes_ = 0;         // guarded by mu_
  mutable bool was_full_ = false;    // guarded by mu_: the hub found no room since last wake
  bool broken_ = false;              // guarded by mu_: a write failed
  bool finishing_ = false;           // guarded by mu_
  std::optional<grpc::Status> pending_finish_;  // guarded by mu_
  ByteBuffer current_;  // The write in flight (owned by the writer while writing_).
};

}  // namespace

WatchService::WatchService(const server::ClusterView* cluster, watch::WatchHub* hub,
                           LeaderMonitor* monitor, const auth::AuthStore* auth,
                           server::ReadBarrier* barrier)
    : cluster_(cluster), hub_(hub), monitor_(monitor), auth_(auth), barrier_(barrier) {}

grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>* WatchService::Watch(
    grpc::CallbackServerContext* context) {
  Status st = CheckCall(*cluster_, *context, LearnerServes::kNo);
  if (!st.ok()) return new RefusedStream<ByteBuffer, ByteBuffer>(st);
  return new WatchStream(cluster_, hub_, RequiresLeader(*context) ? monitor_ : nullptr, auth_,
                         barrier_, CredentialsOf(*context));
}

}  // namespace etcdpp::api
