// etcdserverpb.Watch/Watch served by the HTTP/2 front itself (h2_front.h):
// the front's side of an api::WatchStream (api/watch_stream.h), the stream
// the gRPC Watch service serves too, so watchers, the queue bound,
// coalescing, auth and the errors are the same code on both paths.
//
// Transport-neutral like KeepAliveStream: it gets the request bytes of its
// HTTP/2 stream and answers through Hooks. Received, HalfClosed, Writable
// and the destructor run on the thread that owns the HTTP/2 stream (a loop
// of the front). The WatchStream::Writer methods run on whichever thread
// the WatchStream writes from (the hub's dispatcher, the loop, the write
// pump, the leader monitor): they only queue bytes under out_mu_ and post
// to the owning thread.
//
// Flow: a written message goes into outbox_, and the owning thread moves
// the outbox to the HTTP/2 stream and completes the write at once while
// the client keeps up (the stream's unsent replies stay under a bound), so
// a burst of responses costs one post. Past the bound the write stays
// uncompleted until the client takes enough (Writable): the WatchStream's
// queue then fills, and the hub falls back to catching its watchers up
// from the store, as with a gRPC client that does not read.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth_check.h"
#include "api/leader_monitor.h"
#include "api/watch_stream.h"
#include "base/status.h"

namespace etcdpp::api::h2front {

inline constexpr std::string_view kWatchPath = "/etcdserverpb.Watch/Watch";

// What one write of a watch stream takes from its queue: the responses
// waiting, framed back to back, up to this many bytes (one at least).
// Without it each response of a fan-out took its own pass through the
// stream's and the adapter's locks and the connection's write; a bound
// well below the connection's per-stream backlog (kWatchBufferedBytes in
// h2_front.cc) keeps a client that falls behind holding back at the same
// point.
inline constexpr size_t kWriteBatchBytes = 16 << 10;

class WatchStreamAdapter final : public WatchStream::Writer {
 public:
  using Task = std::function<void(WatchStreamAdapter&)>;
  struct Hooks {
    // From any thread, never inline: runs `task` later on the owning thread
    // with this stream if the stream is still open then, else drops it.
    // Copies are kept by the stream and by waits for answered writes: the
    // owner counts the stream as in flight until the last copy is gone.
    std::function<void(Task task)> post;
    // Appends framed reply messages to the HTTP/2 stream. False when the
    // client is behind (its unsent replies are over the owner's bound): no
    // write completes until Writable().
    std::function<bool(std::string&& framed)> write;
    // Ends the stream with `status` after what was written.
    std::function<void(const grpc::Status& status)> finish;
    // Ends the stream with `status` at once (the client broke the protocol).
    std::function<void(const grpc::Status& status)> fail;
  };

  // What the gRPC service refuses before the stream starts (a learner, a
  // call that asked for a leader while there is none: CheckCall), or the
  // stream. With `requires_leader`, `monitor` ends it with "etcdserver: no
  // leader" once the member has lost its leader. `credentials`: the
  // metadata's token, checked by each create as the gRPC stream checks it.
  static Result<std::unique_ptr<WatchStreamAdapter>> Open(
      const WatchStreamDeps* member, LeaderMonitor* monitor, bool requires_leader,
      CallCredentials credentials, uint32_t max_receive_message_bytes, Hooks hooks);
  ~WatchStreamAdapter() override;
  WatchStreamAdapter(const WatchStreamAdapter&) = delete;
  WatchStreamAdapter& operator=(const WatchStreamAdapter&) = delete;

  // Request bytes of the HTTP/2 stream (gRPC-framed messages, cut here).
  void Received(std::string_view data);
  // The client ended its side: the stream goes on sending (as etcd's) until
  // the client resets it or the member ends it.
  void HalfClosed() {}
  // The backlog the last write found has drained (the owner tracks it): the
  // write held back completes.
  void Writable();
  // Request bytes not yet taken (they wait while a create waits for the
  // member's answered writes): the owner holds back the stream's window
  // above a bound.
  size_t buffered() const { return inbound_.size(); }

  // ---- WatchStream::Writer (any thread) ----
  char* Stage(size_t size) override;
  void Write(bool more) override;
  void EndCall(const grpc::Status& status) override;

 private:
  WatchStreamAdapter(const WatchStreamDeps* member, LeaderMonitor* monitor,
                     CallCredentials credentials, uint32_t max_receive, Hooks hooks);

  // Takes requests in order while none waits for answered writes.
  void TakeRequests();
  // The writes a create waited for are visible: it runs, then the rest.
  void WritesVisible();
  // The client broke the protocol: the stream ends at once.
  void Fail(const grpc::Status& status);
  // Owning thread: moves the outbox to the HTTP/2 stream and completes the
  // write it ends with, while the client keeps up.
  void Flush();

  const WatchStreamDeps* const member_;
  const uint32_t max_receive_;
  const Hooks hooks_;

  // Owning thread only.
  std::string inbound_;           // request bytes not yet cut into requests
  bool awaiting_writes_ = false;  // a create waits for answered writes
  bool blocked_ = false;          // the client is behind: a write is held back
  bool ended_ = false;            // fail was called

  // The messages staged for the next write (the writer's: one write at a
  // time).
  std::string staged_;

  std::mutex out_mu_;  // a leaf
  // Guarded by out_mu_: the writes' batches of framed messages for the
  // owner, each handed on whole (never appended to another: ReplyBytes).
  std::vector<std::string> outbox_;
  bool write_pending_ = false;  // guarded by out_mu_: a Write not yet completed
  bool flush_posted_ = false;   // guarded by out_mu_: a Flush is due on the owner

  // Last: destroyed (after Detach in the destructor) before what it writes to.
  WatchStream stream_;
};

}  // namespace etcdpp::api::h2front
