#include "api/watch_stream.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "api/answered_writes.h"
#include "api/grpc_status.h"
#include "api/watch_write_pump.h"
#include "auth/auth_store.h"

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

// The size and the bytes of the watch_id field; empty for id 0 (proto3
// leaves out zero).
size_t WatchIdSize(int64_t watch_id) {
  if (watch_id == 0) return 0;
  size_t size = 2;  // The tag and the varint's last byte.
  for (auto v = static_cast<uint64_t>(watch_id); v >= 0x80; v >>= 7) ++size;
  return size;
}

std::string WatchIdBytes(int64_t watch_id) {
  std::string id;
  if (watch_id == 0) return id;
  id.push_back(kWatchIdFieldTag);
  AppendVarint(static_cast<uint64_t>(watch_id), &id);
  return id;
}

// Builds the message of a queued events response at `at` (o.size bytes):
// one contiguous copy (a few hundred bytes, up to kMaxCoalescedBytes or one
// large revision), cheaper for a transport than a piece per event, and it
// lets the pins go.
void Assemble(const std::string* header, int64_t watch_id, const std::string* first_event,
              std::span<const std::string* const> more_events, char* at) {
  auto append = [&at](const void* data, size_t size) {
    std::memcpy(at, data, size);
    at += size;
  };
  append(header->data(), header->size());
  const std::string id = WatchIdBytes(watch_id);
  append(id.data(), id.size());
  if (first_event != nullptr) append(first_event->data(), first_event->size());
  for (const std::string* e : more_events) append(e->data(), e->size());
}

}  // namespace

WatchStream::WatchStream(const WatchStreamDeps& deps, LeaderMonitor* monitor,
                         CallCredentials credentials, Writer* writer,
                         int inline_writes_per_hand_off, size_t batch_bytes)
    : cluster_(deps.cluster),
      hub_(deps.hub),
      pump_(deps.pump),
      monitor_(monitor),
      auth_(deps.auth),
      barrier_(deps.barrier),
      credentials_(std::move(credentials)),
      writer_(writer),
      inline_writes_per_hand_off_(inline_writes_per_hand_off),
      batch_bytes_(batch_bytes) {}

WatchStream::~WatchStream() { Detach(); }

void WatchStream::Start() {
  if (monitor_ != nullptr) {
    monitor_token_ = monitor_->Register([this] { End(ToGrpcStatus(Status(Code::kNoLeader))); });
  }
}

void WatchStream::Detach() {
  if (detached_) return;
  detached_ = true;
  if (monitor_ != nullptr) monitor_->Unregister(monitor_token_);
  hub_->RemoveSink(this);
  pump_->Forget(this);
}

void WatchStream::WriteDone(bool ok) {
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
    writer_->EndCall(*finish);
    return;
  }
  if (wake) hub_->Wake();
  if (!more) {
    inline_writes_ = 0;  // Drained: the next burst starts its count afresh.
    return;
  }
  // A few writes start right here (no wake-up of the pump for each); then
  // the pump takes over, and the transport's thread goes back to polling. A
  // burst of a few responses (a revision for a few watchers) therefore
  // never waits for the pump's wake-up.
  if (++inline_writes_ <= inline_writes_per_hand_off_) {
    Pump();
  } else {
    inline_writes_ = 0;
    pump_->Schedule(this);
  }
}

bool WatchStream::TrySend(WatchResponse& response, bool force) {
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

// The hub's SendQueued starts the write, once for all the watchers of this
// stream it served in the revision; a write in flight takes the queue by
// itself when it completes.
bool WatchStream::TrySendEvents(int64_t watch_id, int64_t header_revision,
                                std::span<const watch::EncodedEvent> events) {
  std::lock_guard<std::mutex> lock(mu_);
  return TrySendEventsLocked(watch_id, header_revision, events);
}

size_t WatchStream::TrySendEventsBatch(int64_t header_revision,
                                       std::span<const EventsResponse> responses) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t sent = 0;
  for (const EventsResponse& r : responses) {
    if (!TrySendEventsLocked(r.watch_id, header_revision, r.events)) break;
    ++sent;
  }
  return sent;
}

bool WatchStream::TrySendEventsLocked(int64_t watch_id, int64_t header_revision,
                                      std::span<const watch::EncodedEvent> events) {
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
  return true;
}

void WatchStream::SendQueued() { Pump(); }

bool WatchStream::HasRoom() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (out_.empty() || RoomLocked()) return true;
  was_full_ = true;  // The hub is waiting for room: wake it when there is.
  return false;
}

void WatchStream::OnHubStopped() {
  End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"));
}

// While more responses wait behind the write, `more` lets the transport
// hold it back (gRPC's buffer hint: the write completes once buffered, and
// the buffered responses leave with the next write that has no hint, the
// last one queued), one socket write instead of one each.
void WatchStream::Pump() {
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || out_.empty() || finishing_ || broken_) return;
    writing_ = true;
    writing_bytes_ = 0;
    // A staged response is out of reach of coalescing (merge_floor_).
    do {
      Outgoing& front = out_.front();
      char* at = writer_->Stage(front.size);
      if (front.events) {
        Assemble(front.header, front.watch_id, front.first_event, front.more_events, at);
      } else {
        std::memcpy(at, front.bytes.data(), front.bytes.size());
      }
      writing_bytes_ += front.size;
      merge_floor_ = std::max(merge_floor_, front.seq + 1);
      out_.pop_front();
    } while (!out_.empty() && writing_bytes_ + out_.front().size <= batch_bytes_);
    UnpinLocked();
    more = !out_.empty();
  }
  writer_->Write(more);
}

bool WatchStream::WaitsForAnsweredWrites(const WatchRequest& request) const {
  return request.request_union_case() == WatchRequest::kCreateRequest && barrier_ != nullptr &&
         !barrier_->AnsweredWritesVisible();
}

void WatchStream::Handle(const WatchRequest& request, AnsweredWrites answered) {
  switch (request.request_union_case()) {
    case WatchRequest::kCreateRequest:
      Create(request.create_request(), answered);
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

void WatchStream::Create(const etcdserverpb::WatchCreateRequest& create, AnsweredWrites answered) {
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
  if (answered == AnsweredWrites::kWait) WaitForAnsweredWrites(barrier_);
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

Status WatchStream::CheckPermitted(const etcdserverpb::WatchCreateRequest& create) const {
  if (auth_ == nullptr) return Status::OK();
  auto sender = SenderFrom(auth_, credentials_);
  if (!sender.ok()) return sender.status();
  return auth_->state()->CheckKeys(*sender, auth::Access::kRead, create.key(), create.range_end());
}

void WatchStream::Cancel(int64_t id) {
  std::lock_guard<std::mutex> ids_lock(ids_mu_);
  auto it = ids_.find(id);
  if (it == ids_.end()) return;  // etcd answers nothing for an unknown id.
  hub_->Remove(it->second);
  ids_.erase(it);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fragment_.erase(id);
    open_events_.Erase(id);
  }
  WatchResponse canceled;
  canceled.mutable_header()->set_revision(cluster_->revision());
  canceled.set_watch_id(id);
  canceled.set_canceled(true);
  Send(std::move(canceled));
}

void WatchStream::Send(WatchResponse&& response) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    EnqueueLocked(std::move(response));
  }
  Pump();
}

bool WatchStream::RoomLocked() const {
  return out_.size() < kMaxQueuedResponses && queued_bytes_ < kMaxQueuedBytes;
}

void WatchStream::EnqueueLocked(WatchResponse&& response) {
  const int64_t rev = response.header().revision();
  cluster_->FillHeader(response.mutable_header());
  response.mutable_header()->set_revision(rev);
  if (fragment_.count(response.watch_id()) != 0) {
    for (WatchResponse& part : Fragment(std::move(response), cluster_->max_request_bytes())) {
      PushLocked(part.SerializeAsString());
    }
    return;
  }
  PushLocked(response.SerializeAsString());
}

// The response DecodeEventsResponse would build, written as its bytes:
// header and watch_id, then the shared event entries (field order does not
// matter to a protobuf parser).
void WatchStream::EnqueueEncodedLocked(int64_t watch_id, int64_t header_revision,
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
    PinHeaderLocked(open->seq);
    open->header = header_bytes_.get();
    PinEventsLocked(events, open->seq);
    for (const watch::EncodedEvent& e : events) open->more_events.push_back(e.get());
    queued_bytes_ = queued_bytes_ - before + open->size;
    return;
  }
  out_.emplace_back();
  Outgoing& o = out_.back();
  o.seq = next_seq_++;
  o.events = true;
  PinHeaderLocked(o.seq);
  o.header = header_bytes_.get();
  o.watch_id = watch_id;
  o.size = header_bytes_->size() + WatchIdSize(watch_id);
  PinEventsLocked(events, o.seq);
  for (const watch::EncodedEvent& e : events) {
    if (o.first_event == nullptr) {
      o.first_event = e.get();
    } else {
      o.more_events.push_back(e.get());
    }
  }
  o.size += event_bytes;
  queued_bytes_ += o.size;
  open_events_.Set(watch_id, {o.seq, &o});
}

// The events response of `watch_id` that is still queued and may take
// more events, or null. It may while its write has not started and every
// response queued after it is an events response: a control response
// (created, canceled, a progress report) closes every response queued
// before it, so nothing is ever reordered around one. merge_floor_ is the
// first queue position still open; an entry below it is never
// dereferenced (its response may be gone).
WatchStream::Outgoing* WatchStream::OpenEventsLocked(int64_t watch_id) {
  OpenEvents::Entry* open = open_events_.Find(watch_id);
  if (open == nullptr) return nullptr;
  if (open->seq < merge_floor_) {
    open_events_.Erase(watch_id);
    return nullptr;
  }
  return open->response;
}

WatchStream::OpenEvents::Entry* WatchStream::OpenEvents::Find(int64_t id) {
  if (id >= 0 && id < kDenseIds) {
    if (static_cast<size_t>(id) >= dense_.size()) return nullptr;
    Entry& entry = dense_[static_cast<size_t>(id)];
    return entry.response != nullptr ? &entry : nullptr;
  }
  auto it = sparse_.find(id);
  return it != sparse_.end() ? &it->second : nullptr;
}

void WatchStream::OpenEvents::Set(int64_t id, Entry entry) {
  if (id >= 0 && id < kDenseIds) {
    if (static_cast<size_t>(id) >= dense_.size()) dense_.resize(static_cast<size_t>(id) + 1);
    dense_[static_cast<size_t>(id)] = entry;
    return;
  }
  sparse_[id] = entry;
}

void WatchStream::OpenEvents::Erase(int64_t id) {
  if (id >= 0 && id < kDenseIds) {
    if (static_cast<size_t>(id) < dense_.size()) dense_[static_cast<size_t>(id)] = Entry{};
    return;
  }
  sparse_.erase(id);
}

void WatchStream::OpenEvents::Clear() {
  dense_.clear();
  sparse_.clear();
}

// Keeps `event` alive while the queued response at `seq` refers to it.
// A stream's watchers take a revision's events one after another, so the
// pin is nearly always one of the last few.
void WatchStream::PinLocked(const watch::EncodedEvent& event, uint64_t seq) {
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

// As PinLocked for the current header, which a revision's responses share
// while their events are pinned between them.
void WatchStream::PinHeaderLocked(uint64_t seq) {
  if (header_pin_ >= pins_dropped_ && header_pin_ - pins_dropped_ < pins_.size()) {
    Pin& pin = pins_[header_pin_ - pins_dropped_];
    if (pin.event == header_bytes_) {
      pin.last_seq = std::max(pin.last_seq, seq);
      return;
    }
  }
  header_pin_ = pins_dropped_ + pins_.size();
  pins_.push_back(Pin{header_bytes_, seq});
}

// As PinLocked for each of `events`. Responses of several events come from
// the hub in rows that share them (each watcher of a key gets the same
// revisions), so a list equal to the last one pinned takes its pins again.
void WatchStream::PinEventsLocked(std::span<const watch::EncodedEvent> events, uint64_t seq) {
  if (events.size() == 1) {
    PinLocked(events[0], seq);
    return;
  }
  if (list_pin_ >= pins_dropped_ && list_pin_size_ == events.size() &&
      list_pin_ - pins_dropped_ + events.size() <= pins_.size()) {
    const size_t first = list_pin_ - pins_dropped_;
    bool same = true;
    for (size_t i = 0; i < events.size() && same; ++i) same = pins_[first + i].event == events[i];
    if (same) {
      for (size_t i = 0; i < events.size(); ++i) {
        pins_[first + i].last_seq = std::max(pins_[first + i].last_seq, seq);
      }
      return;
    }
  }
  list_pin_ = pins_dropped_ + pins_.size();
  list_pin_size_ = events.size();
  for (const watch::EncodedEvent& e : events) pins_.push_back(Pin{e, seq});
}

// Drops the pins no queued response refers to any more: every response
// referring to a pin has a position at most its last_seq, and the queue
// holds positions from its front's on (a staged write holds copies).
void WatchStream::UnpinLocked() {
  const uint64_t first_queued = out_.empty() ? next_seq_ : out_.front().seq;
  while (!pins_.empty() && pins_.front().last_seq < first_queued) {
    pins_.pop_front();
    ++pins_dropped_;
  }
}

void WatchStream::PushLocked(std::string&& bytes) {
  queued_bytes_ += bytes.size();
  out_.emplace_back();
  out_.back().size = bytes.size();
  out_.back().bytes = std::move(bytes);
  out_.back().seq = next_seq_++;
  merge_floor_ = next_seq_;
}

void WatchStream::End(grpc::Status status) {
  bool now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    finishing_ = true;
    out_.clear();
    pins_dropped_ += pins_.size();
    pins_.clear();
    merge_floor_ = next_seq_;
    open_events_.Clear();
    queued_bytes_ = writing_bytes_;
    if (writing_) {
      pending_finish_ = std::move(status);
    } else {
      now = true;
    }
  }
  if (now) writer_->EndCall(status);
}

}  // namespace etcdpp::api
