#include "api/watch_service.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
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

// A watcher's events response still waiting in the queue takes the events of
// its later revisions (coalescing, docs/watch.md) while it stays under this
// size: a stream that is behind then writes, and its client reads, one
// message per watcher for several revisions instead of one per revision. The
// bound keeps such messages far below clients' default receive limit
// (4 MiB in gRPC); a single revision larger than it travels alone, as before.
constexpr size_t kMaxCoalescedBytes = 64 << 10;

// A write completion with more responses queued starts at most this many
// next writes itself before handing the stream to the WritePump (below):
// enough to spare the pump a wake-up per write, few enough that gRPC's
// callback threads still get back to polling the sockets during a fan-out.
// Measured on the fan-out load (BENCHMARKS.md, "Watch fan-out: writes off
// the completion chain"): 0 cost several times the context switches, 64
// brought back the puts stuck behind the fan-out.
constexpr int kInlineWritesPerHandOff = 4;

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
  // An events response: the revision's header shared by the stream, the
  // watch id, the first event and any others. The header and the events
  // are kept alive by the stream's pins (WatchStream::pins_), not by the
  // response: a fan-out's thousand responses then take no reference count
  // of their own.
  bool events = false;
  const std::string* header = nullptr;
  int64_t watch_id = 0;
  const std::string* first_event = nullptr;
  std::vector<const std::string*> more_events;
  size_t size = 0;
  // Position in the stream's queue (WatchStream::next_seq_): tells whether
  // a response a watcher last queued is still waiting and may take more.
  uint64_t seq = 0;
};

class WatchStream;

}  // namespace

// Starts the next write of streams whose write completed with more responses
// queued, on a thread of its own. Started inside the completion's reaction
// every time, a fan-out's writes chain completion to write to completion on
// gRPC's callback threads, whose completion queue then never runs empty;
// those threads poll the sockets only when it does, so every other call of
// the member (the next put among them) waited for the whole fan-out to be
// written. A completion therefore starts only a few writes itself
// (kInlineWritesPerHandOff) and then hands its stream here: the callback
// threads return to polling, and one wake-up of this thread starts the
// writes of every stream handed over meanwhile. Owned by the WatchService;
// its mutex is taken before a stream's, never after.
class WritePump {
 public:
  WritePump();
  ~WritePump();
  // The next write of `stream` is due (called by its write completion).
  void Schedule(WatchStream* stream);
  // `stream` is about to be destroyed: after this returns the pump does not
  // touch it.
  void Forget(WatchStream* stream);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchStream*> due_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::thread thread_;
};

namespace {

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
              CallCredentials credentials, WritePump* pump)
      : cluster_(cluster),
        hub_(hub),
        pump_(pump),
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
    bool more = false;
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
      more = !out_.empty() && !finishing_ && !broken_;
    }
    if (finish) {
      tsan::HandingOff(this);
      Finish(*finish);
      return;
    }
    if (wake) hub_->Wake();
    if (!more) {
      inline_writes_ = 0;  // Drained: the next burst starts its count afresh.
      return;
    }
    // A few writes start right here (no wake-up of the pump for each); then
    // the pump takes over, and the callback thread goes back to polling. A
    // burst of a few responses (a revision for a few watchers) therefore
    // never waits for the pump's wake-up.
    if (++inline_writes_ <= kInlineWritesPerHandOff) {
      Pump();
    } else {
      inline_writes_ = 0;
      pump_->Schedule(this);
    }
  }

  void OnCancel() override {
    tsan::Reaction reaction(this, this);  // After the constructor, at least.
    End(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
  }

  void OnDone() override {
    tsan::TookBack(this);
    if (monitor_ != nullptr) monitor_->Unregister(monitor_token_);
    hub_->RemoveSink(this);
    pump_->Forget(this);
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
      merge_floor_ = std::max(merge_floor_, out_.front().seq + 1);
      out_.pop_front();
      UnpinLocked();
      if (!out_.empty()) options.set_buffer_hint();
    }
    tsan::HandingOff(&current_);
    StartWrite(&current_, options);
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
      open_events_.erase(id);
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
    // The header is encoded once per revision, and the watchers of that
    // revision share it (its term is the one when the revision's first
    // response was queued).
    if (header_bytes_ == nullptr || header_.revision() != header_revision) {
      etcdserverpb::ResponseHeader header;
      cluster_->FillHeader(&header);
      header.set_revision(header_revision);
      header_ = header;
      auto bytes = std::make_shared<std::string>(1, kHeaderFieldTag);
      const std::string body = header.SerializeAsString();
      AppendVarint(body.size(), bytes.get());
      *bytes += body;
      header_bytes_ = std::move(bytes);
    }
    size_t event_bytes = 0;
    for (const watch::EncodedEvent& e : events) event_bytes += e->size();
    if (Outgoing* open = OpenEventsLocked(watch_id);
        open != nullptr && open->size + event_bytes <= kMaxCoalescedBytes) {
      // Coalesce: the events follow the ones already waiting, and the
      // response takes the newer header (its revision is the latest one).
      const size_t before = open->size;
      open->size = open->size - open->header->size() + header_bytes_->size() + event_bytes;
      PinLocked(header_bytes_, open->seq);
      open->header = header_bytes_.get();
      for (const watch::EncodedEvent& e : events) {
        PinLocked(e, open->seq);
        open->more_events.push_back(e.get());
      }
      queued_bytes_ = queued_bytes_ - before + open->size;
      return;
    }
    out_.emplace_back();
    Outgoing& o = out_.back();
    o.seq = next_seq_++;
    o.events = true;
    PinLocked(header_bytes_, o.seq);
    o.header = header_bytes_.get();
    o.watch_id = watch_id;
    o.size = header_bytes_->size() + WatchIdSize(watch_id);
    for (const watch::EncodedEvent& e : events) {
      PinLocked(e, o.seq);
      if (o.first_event == nullptr) {
        o.first_event = e.get();
      } else {
        o.more_events.push_back(e.get());
      }
    }
    o.size += event_bytes;
    queued_bytes_ += o.size;
    open_events_[watch_id] = {o.seq, &o};
  }

  // The events response of `watch_id` that is still queued and may take
  // more events, or null. It may while its write has not started and every
  // response queued after it is an events response: a control response
  // (created, canceled, a progress report) closes every response queued
  // before it, so nothing is ever reordered around one. merge_floor_ is the
  // first queue position still open; an entry below it is never
  // dereferenced (its response may be gone).
  Outgoing* OpenEventsLocked(int64_t watch_id) {
    auto it = open_events_.find(watch_id);
    if (it == open_events_.end()) return nullptr;
    if (it->second.first < merge_floor_) {
      open_events_.erase(it);
      return nullptr;
    }
    return it->second.second;
  }

  // The size and the bytes of the watch_id field; empty for id 0 (proto3
  // leaves out zero).
  static size_t WatchIdSize(int64_t watch_id) {
    if (watch_id == 0) return 0;
    size_t size = 2;  // The tag and the varint's last byte.
    for (auto v = static_cast<uint64_t>(watch_id); v >= 0x80; v >>= 7) ++size;
    return size;
  }

  static std::string WatchIdBytes(int64_t watch_id) {
    std::string id;
    if (watch_id == 0) return id;
    id.push_back(kWatchIdFieldTag);
    AppendVarint(static_cast<uint64_t>(watch_id), &id);
    return id;
  }

  // Keeps `event` alive while the queued response at `seq` refers to it.
  // A stream's watchers take a revision's events one after another, so the
  // pin is nearly always one of the last few.
  void PinLocked(const watch::EncodedEvent& event, uint64_t seq) {
    const size_t look = std::min<size_t>(pins_.size(), 4);
    for (size_t i = 0; i < look; ++i) {
      Pin& pin = pins_[pins_.size() - 1 - i];
      if (pin.event == event) {
        pin.last_seq = std::max(pin.last_seq, seq);
        return;
      }
    }
    pins_.push_back(Pin{event, seq});
  }

  // Drops the pins no queued response refers to any more: every response
  // referring to a pin has a position at most its last_seq, and the queue
  // holds positions from its front's on (an assembled write holds copies).
  void UnpinLocked() {
    const uint64_t first_queued = out_.empty() ? next_seq_ : out_.front().seq;
    while (!pins_.empty() && pins_.front().last_seq < first_queued) pins_.pop_front();
  }

  // Builds the message of a queued events response into `out`: one
  // contiguous copy (a few hundred bytes, up to kMaxCoalescedBytes or one
  // large revision), cheaper for gRPC than a slice per event, and it lets
  // the pins go.
  static void AssembleLocked(const Outgoing& o, ByteBuffer* out) {
    grpc::Slice message(o.size);
    auto* at = const_cast<uint8_t*>(message.begin());
    auto append = [&at](const void* data, size_t size) {
      std::memcpy(at, data, size);
      at += size;
    };
    append(o.header->data(), o.header->size());
    const std::string id = WatchIdBytes(o.watch_id);
    append(id.data(), id.size());
    if (o.first_event != nullptr) append(o.first_event->data(), o.first_event->size());
    for (const std::string* e : o.more_events) append(e->data(), e->size());
    ByteBuffer bytes(&message, 1);
    out->Swap(&bytes);
  }

  // Takes `bytes` (leaves it empty).
  void PushLocked(ByteBuffer* bytes, size_t size) {
    queued_bytes_ += size;
    out_.emplace_back();
    out_.back().bytes.Swap(bytes);
    out_.back().size = size;
    out_.back().seq = next_seq_++;
    merge_floor_ = next_seq_;
  }

  // Finishes the RPC once (after the write in flight, if any).
  void End(grpc::Status status) {
    bool now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return;
      finishing_ = true;
      out_.clear();
      pins_.clear();
      merge_floor_ = next_seq_;
      open_events_.clear();
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
  WritePump* const pump_;
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
  // The encoded header field of the last events response (guarded by mu_):
  // the watchers of a revision share it.
  etcdserverpb::ResponseHeader header_;
  std::shared_ptr<const std::string> header_bytes_;
  // The headers and events the queued responses refer to, each with the
  // last queue position referring to it (guarded by mu_); see PinLocked.
  struct Pin {
    watch::EncodedEvent event;
    uint64_t last_seq = 0;
  };
  std::deque<Pin> pins_;
  size_t queued_bytes_ = 0;     // guarded by mu_: out_ plus the write in flight
  std::set<int64_t> fragment_;  // guarded by mu_: ids that asked for fragments
  // Coalescing (see OpenEventsLocked), guarded by mu_: the queue position
  // the next response gets, the first position still open to coalescing,
  // and each watch id's last queued events response with its position.
  uint64_t next_seq_ = 0;
  uint64_t merge_floor_ = 0;
  std::unordered_map<int64_t, std::pair<uint64_t, Outgoing*>> open_events_;
  // Writes started by completions since the pump last took over or the
  // queue last ran empty (only the completion of the write in flight
  // touches it).
  int inline_writes_ = 0;
  bool writing_ = false;           // guarded by mu_
  size_t writing_bytes_ = 0;       // guarded by mu_
  mutable bool was_full_ = false;  // guarded by mu_: the hub found no room since last wake
  bool broken_ = false;            // guarded by mu_: a write failed
  bool finishing_ = false;         // guarded by mu_
  std::optional<grpc::Status> pending_finish_;  // guarded by mu_
  ByteBuffer current_;  // The write in flight (owned by the writer while writing_).
};

}  // namespace

WritePump::WritePump() : thread_([this] { Run(); }) {}

WritePump::~WritePump() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void WritePump::Schedule(WatchStream* stream) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake = due_.empty();
    due_.push_back(stream);
  }
  if (wake) cv_.notify_one();
}

void WritePump::Forget(WatchStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(due_, stream);
}

void WritePump::Run() {
  std::vector<WatchStream*> due;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !due_.empty(); });
    if (stopping_) return;
    // Under mu_, so that Forget cannot return while a stream is being
    // pumped; a completion that schedules its stream meanwhile waits.
    due.swap(due_);
    for (WatchStream* stream : due) stream->Pump();
    due.clear();
  }
}

WatchService::WatchService(const server::ClusterView* cluster, watch::WatchHub* hub,
                           LeaderMonitor* monitor, const auth::AuthStore* auth,
                           server::ReadBarrier* barrier)
    : cluster_(cluster),
      hub_(hub),
      monitor_(monitor),
      auth_(auth),
      barrier_(barrier),
      pump_(std::make_unique<WritePump>()) {}

WatchService::~WatchService() = default;

grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>* WatchService::Watch(
    grpc::CallbackServerContext* context) {
  Status st = CheckCall(*cluster_, *context, LearnerServes::kNo);
  if (!st.ok()) return new RefusedStream<ByteBuffer, ByteBuffer>(st);
  return new WatchStream(cluster_, hub_, RequiresLeader(*context) ? monitor_ : nullptr, auth_,
                         barrier_, CredentialsOf(*context), pump_.get());
}

}  // namespace etcdpp::api
