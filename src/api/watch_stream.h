// One etcdserverpb.Watch stream: the watchers a client created on it, and
// the bounded queue of responses the member's watch::WatchHub sends them
// (docs/watch.md). Transport-neutral: requests come in parsed, and responses
// leave through a Writer, one write at a time (one message each for gRPC,
// the messages queued behind it for the HTTP/2 front), so the gRPC service
// (watch_service.cc) and the front adapt the same stream.
//
// Threads: requests arrive on the transport's reading side, one at a time;
// the hub calls the watch::WatchSink methods from its dispatcher thread
// with its lock held; write completions come from the transport's threads;
// the WritePump and the LeaderMonitor call in from theirs. Lock order:
// ids_mu_, then the hub's lock, then mu_; the pump's lock comes before mu_.
#pragma once

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/auth_check.h"
#include "api/leader_monitor.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/interfaces.h"
#include "watch/watch_hub.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class WritePump;

// What every stream of a member shares. Not owned; all outlive the streams.
struct WatchStreamDeps {
  const server::ClusterView* cluster = nullptr;
  watch::WatchHub* hub = nullptr;
  // May be null: no permission checks. Decides which ranges a stream may
  // watch.
  const auth::AuthStore* auth = nullptr;
  // May be null. A create waits for the writes the member answered before
  // their backend commit (api/answered_writes.h).
  server::ReadBarrier* barrier = nullptr;
  WritePump* pump = nullptr;
};

class WatchStream final : public watch::WatchSink {
 public:
  // The transport's side of a stream. At most one write is outstanding: the
  // stream stages a message (or a batch), starts its write, and stages the
  // next only after the transport has called WriteDone.
  class Writer {
   public:
    virtual ~Writer() = default;
    // Room for the next message (one serialized WatchResponse, exactly
    // `size` bytes, never 0), which the stream fills before Write. Called
    // with the stream's lock held: it must not call back into the stream.
    // A stream built with a batch size above 0 may stage several messages
    // before one Write: each goes after the one staged before it.
    virtual char* Stage(size_t size) = 0;
    // Starts writing what was staged; WriteDone follows once the
    // transport has taken it. `more`: responses are queued behind it, so the
    // transport may hold it back to send them together.
    virtual void Write(bool more) = 0;
    // Ends the call with `status`, once, after the last write completed.
    virtual void EndCall(const grpc::Status& status) = 0;
  };

  // A write completion with more responses queued starts at most this many
  // next writes itself before handing the stream to the WritePump: enough
  // to spare the pump a wake-up per write, few enough that gRPC's callback
  // threads still get back to polling the sockets during a fan-out.
  // Measured on the fan-out load (BENCHMARKS.md, "Watch fan-out: writes off
  // the completion chain"): 0 cost several times the context switches, 64
  // brought back the puts stuck behind the fan-out. A transport whose
  // completions come from the thread that sends anyway (the HTTP/2 front's
  // loop) has nothing to gain from the hand-off and passes no limit.
  static constexpr int kGrpcInlineWrites = 4;

  // With `monitor` (the client asked for a leader), the stream ends with
  // "etcdserver: no leader" when its member loses the leader for long.
  // With deps.auth, each create is checked for read access to its range, as
  // the stream's token (or certificate) says at that moment (`credentials`:
  // those the stream was opened with). `writer` outlives the stream.
  // `batch_bytes`: a write takes the queued responses while they fit in
  // that many bytes (at least one), for a transport whose write costs the
  // same for one response as for many (the HTTP/2 front's loop frames and
  // sends them together); 0, one response per write, for gRPC, whose
  // messages each take a write of their own.
  WatchStream(const WatchStreamDeps& deps, LeaderMonitor* monitor, CallCredentials credentials,
              Writer* writer, int inline_writes_per_hand_off = kGrpcInlineWrites,
              size_t batch_bytes = 0);
  // Detach() first.
  ~WatchStream() override;
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Registers with the monitor. Call once the writer can end the call.
  void Start();
  // Leaves the hub, the monitor and the pump: after it returns none of them
  // calls the stream, which may then be destroyed. The transport calls it
  // once the call is over (its last write completed or was dropped).
  void Detach();

  // A create's start revision and compaction check must count every write
  // the member answered before the request (api/answered_writes.h).
  // kWait: Handle blocks its thread until they are visible. kVisible: the
  // caller has waited (ReadBarrier::WaitAnsweredWrites) since the request
  // arrived, so a transport whose thread must not block waits without one.
  enum class AnsweredWrites { kWait, kVisible };
  // A client request (create, cancel, progress).
  void Handle(const etcdserverpb::WatchRequest& request,
              AnsweredWrites answered = AnsweredWrites::kWait);
  // Whether Handle(request) with kWait would block for the answered writes
  // now (a create while some are not yet visible).
  bool WaitsForAnsweredWrites(const etcdserverpb::WatchRequest& request) const;
  // The transport's write completed; `ok` false when it failed (the stream
  // writes nothing more).
  void WriteDone(bool ok);
  // Ends the call with `status` once, after the write in flight, dropping
  // the responses still queued.
  void End(grpc::Status status);
  // Starts the next write unless one is in flight (one at a time).
  void Pump();

  // ---- watch::WatchSink (called with the hub's lock held) ----
  bool TrySend(etcdserverpb::WatchResponse& response, bool force) override;
  bool TrySendEvents(int64_t watch_id, int64_t header_revision,
                     std::span<const watch::EncodedEvent> events) override;
  size_t TrySendEventsBatch(int64_t header_revision,
                            std::span<const EventsResponse> responses) override;
  void SendQueued() override;
  bool HasRoom() const override;
  void OnHubStopped() override;

 private:
  // A response queued for writing, with the size the client will receive:
  // a whole message (control responses, fragments), or an events response
  // kept as its parts until its write starts, so that a queued fan-out
  // response costs about a hundred bytes and no message of its own.
  struct Outgoing {
    std::string bytes;  // A message; empty for an events response.
    // An events response: the revision's header shared by the stream, the
    // watch id, the first event and any others. The header and the events
    // are kept alive by the stream's pins (pins_), not by the response: a
    // fan-out's thousand responses then take no reference count of their
    // own.
    bool events = false;
    const std::string* header = nullptr;
    int64_t watch_id = 0;
    const std::string* first_event = nullptr;
    std::vector<const std::string*> more_events;
    size_t size = 0;
    // Position in the stream's queue (next_seq_): tells whether a response
    // a watcher last queued is still waiting and may take more.
    uint64_t seq = 0;
  };

  void Create(const etcdserverpb::WatchCreateRequest& create, AnsweredWrites answered);
  Status CheckPermitted(const etcdserverpb::WatchCreateRequest& create) const;
  void Cancel(int64_t id);
  // Queues a control response (never refused).
  void Send(etcdserverpb::WatchResponse&& response);
  bool RoomLocked() const;
  void EnqueueLocked(etcdserverpb::WatchResponse&& response);
  bool TrySendEventsLocked(int64_t watch_id, int64_t header_revision,
                           std::span<const watch::EncodedEvent> events);
  void EnqueueEncodedLocked(int64_t watch_id, int64_t header_revision,
                            std::span<const watch::EncodedEvent> events);
  Outgoing* OpenEventsLocked(int64_t watch_id);
  void PinLocked(const watch::EncodedEvent& event, uint64_t seq);
  void PinHeaderLocked(uint64_t seq);
  void PinEventsLocked(std::span<const watch::EncodedEvent> events, uint64_t seq);
  void UnpinLocked();
  void PushLocked(std::string&& bytes);

  const server::ClusterView* const cluster_;
  watch::WatchHub* const hub_;
  WritePump* const pump_;
  LeaderMonitor* const monitor_;
  const auth::AuthStore* const auth_;
  server::ReadBarrier* const barrier_;
  const CallCredentials credentials_;
  Writer* const writer_;
  const int inline_writes_per_hand_off_;
  const size_t batch_bytes_;
  LeaderMonitor::Token monitor_token_ = 0;
  bool detached_ = false;

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
  // Pins are numbered from the stream's first (pins_dropped_ is the
  // number of pins_.front()); the header's last pin, and the first of the
  // last list of several events pinned (list_pin_size_ of them), so that
  // the next response with the same ones takes those pins again.
  uint64_t pins_dropped_ = 0;
  uint64_t header_pin_ = UINT64_MAX;
  uint64_t list_pin_ = UINT64_MAX;
  size_t list_pin_size_ = 0;
  size_t queued_bytes_ = 0;     // guarded by mu_: out_ plus the write in flight
  std::set<int64_t> fragment_;  // guarded by mu_: ids that asked for fragments
  // Coalescing (see OpenEventsLocked), guarded by mu_: the queue position
  // the next response gets, the first position still open to coalescing,
  // and each watch id's last queued events response with its position.
  uint64_t next_seq_ = 0;
  uint64_t merge_floor_ = 0;
  // Each watch id's last queued events response with its queue position.
  // A stream numbers its watchers from 0 (as etcd), so ids below kDenseIds
  // are looked up in a vector by id, once per response of a fan-out, and
  // only ids a client chose beyond them in a map.
  class OpenEvents {
   public:
    struct Entry {
      uint64_t seq = 0;
      Outgoing* response = nullptr;  // null: none
    };
    // The id's entry, or null.
    Entry* Find(int64_t id);
    void Set(int64_t id, Entry entry);
    void Erase(int64_t id);
    void Clear();

   private:
    static constexpr int64_t kDenseIds = int64_t{1} << 16;
    std::vector<Entry> dense_;
    std::unordered_map<int64_t, Entry> sparse_;
  };
  OpenEvents open_events_;
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
};

}  // namespace etcdpp::api
