// One HTTP/2 stream of the front relayed, message by message, to the
// member's own gRPC server over its in-process channel: every method the
// front does not serve itself (Watch, LeaseKeepAlive, Snapshot, Observe,
// and the unary methods of Lease, Cluster, Maintenance, Auth, Lock and
// Election). The call is a generic bidi stream of raw messages (gRPC's
// GenericStub over ByteBuffer), which carries unary and streaming methods
// alike, so the services, their interceptors (metrics) and their checks
// run exactly as for a call that came to gRPC directly.
//
// Threads: the front's loop thread calls Send, HalfClose, ReadMore and
// Cancel; gRPC's threads run the reactions, which report through `sink`
// (in order: headers, messages, then exactly one kFinished). gRPC may run
// two reactions at once (OnReadInitialMetadataDone and OnReadDone, say), so
// the order is kept by reporting under `report_mu_`, headers first. `mu_`
// guards the flow state. The forwarder keeps itself alive until gRPC's
// OnDone; `sink` is destroyed with it, so whatever the sink holds (the
// front's count of calls in flight, say) is let go only once gRPC is done
// with the call and the forwarder, its ClientContext included, is gone.
//
// Flow control: one read from gRPC is outstanding at a time, and the next
// is started only when the loop asks (ReadMore), once the client's stream
// has taken the previous message: a slow reader holds the server's
// messages back in gRPC's own flow control instead of in the front. The
// other way, Send reports how many of the client's bytes wait for gRPC to
// take them (a write completes once the call has taken its message), and
// the loop stops returning the client's HTTP/2 window while that is above
// its bound, asking to be told (kDrained) when it falls back.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace etcdpp::api::h2front {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Client bytes queued in the forwarders sharing it and not yet taken by
// gRPC: now, and the most there ever were. Updated from any thread.
struct QueuedBytes {
  std::atomic<int64_t> now{0};
  std::atomic<int64_t> peak{0};

  void Add(int64_t delta) {
    const int64_t after = now.fetch_add(delta, std::memory_order_relaxed) + delta;
    int64_t seen = peak.load(std::memory_order_relaxed);
    while (after > seen && !peak.compare_exchange_weak(seen, after, std::memory_order_relaxed)) {
    }
  }
};

struct ForwardEvent {
  // kDrained: the queue fell to the mark NotifyWhenQueuedAtMost set.
  enum class Kind { kHeaders, kMessage, kDrained, kFinished };
  Kind kind;
  Metadata metadata;    // kHeaders: initial metadata; kFinished: trailing metadata
  std::string message;  // kMessage: the serialized message
  grpc::Status status;  // kFinished
};
using ForwardSink = std::function<void(ForwardEvent)>;

class Forwarder final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts the call of `method` ("/pkg.Service/Method") with the client's
  // `metadata` (names lower-case; "-bin" values already decoded) and
  // `deadline` if it sent one. Its queued client bytes are also counted in
  // `queued` (may be null), which must outlive it.
  static std::shared_ptr<Forwarder> Start(grpc::GenericStub* stub, std::string method,
                                          const Metadata& metadata,
                                          std::optional<std::chrono::nanoseconds> timeout,
                                          ForwardSink sink, QueuedBytes* queued = nullptr);

  // A message from the client; sent after the ones before it. Returns the
  // bytes of the client's messages now queued, this one included, that
  // gRPC has not taken yet.
  size_t Send(std::string message);
  // Reports kDrained once at most `bytes` are queued: at once if that is so
  // already, else when gRPC's writes bring the queue down to it.
  void NotifyWhenQueuedAtMost(size_t bytes);
  // The bytes of the client's messages queued now, not yet taken by gRPC.
  size_t queued();
  // The client ended its side (END_STREAM): no Send follows.
  void HalfClose();
  // The client's stream took the last message reported: read the next.
  void ReadMore();
  // The client's stream is gone: cancel the call (idempotent).
  void Cancel();

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  Forwarder(std::string method, ForwardSink sink, QueuedBytes* queued);

 private:
  // The gRPC operations decided under mu_, started after it is released
  // (a reaction may run inline and take mu_ again).
  struct Actions {
    const grpc::ByteBuffer* write = nullptr;
    bool writes_done = false;
    bool start_read = false;
    int remove_holds = 0;
    bool drained = false;  // report kDrained
  };
  void Run(const Actions& actions);
  // Under mu_: once no write is in flight and the write side is over, its hold goes.
  void CloseWritesIfIdle(Actions* actions);
  // Under mu_: the queue's bytes and the shared gauge move by `delta` together.
  void CountQueued(int64_t delta);
  // Under mu_: drops the queued messages from `keep` on (the one in flight
  // is at the front), with their bytes.
  void DropQueued(size_t keep);
  // Under mu_: the queue lost `bytes`; reports kDrained if it reached the mark.
  void Dequeued(size_t bytes, Actions* actions);
  // Under report_mu_: reports kHeaders unless done already.
  void ReportHeaders();

  const std::string method_;  // outlives the call: gRPC keeps a pointer to it
  const ForwardSink sink_;
  QueuedBytes* const queued_gauge_;  // may be null
  grpc::ClientContext context_;
  grpc::ByteBuffer incoming_;        // the read in flight fills it
  std::shared_ptr<Forwarder> self_;  // set by Start, dropped in OnDone

  // Serializes kHeaders and kMessage reports, so a message never overtakes
  // the headers (gRPC has the initial metadata read before the first
  // OnReadDone, but may run that reaction before OnReadInitialMetadataDone).
  std::mutex report_mu_;
  bool headers_reported_ = false;  // guarded by report_mu_

  std::mutex mu_;
  std::deque<grpc::ByteBuffer> outbox_;  // front: the write in flight
  size_t queued_bytes_ = 0;              // the payload bytes in outbox_
  std::optional<size_t> drain_mark_;     // NotifyWhenQueuedAtMost's, until reported
  bool writing_ = false;
  bool half_closed_ = false;  // the client sent END_STREAM
  bool writes_over_ = false;  // no more writes: half-closed, cancelled or failed
  bool write_hold_ = true;    // the write side's hold (taken before StartCall)
  bool read_hold_ = true;     // the read side's hold
  bool read_outstanding_ = false;
  bool cancelled_ = false;
};

}  // namespace etcdpp::api::h2front
