// The HTTP/2 front of the client port (--h2-front, on by default;
// docs/grpc_floor.md says why and what it measured).
//
// With it on, the client port's listener hands HTTP/2 (gRPC) connections
// here instead of to gRPC C++. The front is an nghttp2
// server speaking gRPC's wire format (grpc_wire.h) that serves
// etcdserverpb.KV's unary methods (Range, Put, DeleteRange, Txn, Compact)
// itself, through the same KvHandler as the gRPC KV service, and
// Lease/LeaseKeepAlive (when given the lease service's parts) through the
// same KeepAliveOnce as the gRPC Lease service, and relays
// every other stream of the same connection to the member's gRPC server
// over its in-process channel (forwarder.h). TLS connections come through
// the listener's TLS relay, as plaintext; one whose client showed a
// certificate stays on gRPC (http/listener.h says why).
//
// Threads: `threads` event loops (epoll), each owning the connections it
// was given (round robin) and every nghttp2 session on them; nothing of a
// connection is touched by another thread. Answers produced elsewhere (the
// apply thread for writes, the read pool, gRPC's threads for relayed
// streams) reach the owning loop through its mailbox: a queue under a mutex
// and an eventfd written only when the queue turns non-empty, so a batch
// of answers costs the loop one wake-up.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace grpc {
class Channel;
}

namespace etcdpp::api {

class KvHandler;
class LeaderMonitor;
struct LeaseServiceDeps;
struct WatchStreamDeps;

struct H2FrontOptions {
  // Serves the KV methods; outlives the front.
  const KvHandler* kv = nullptr;
  // The member's gRPC server, in process: every other method goes there.
  std::shared_ptr<grpc::Channel> channel;
  // When set, Lease/LeaseKeepAlive is served here too, as the gRPC Lease
  // service serves it (h2front/lease_keepalive_stream.h); else it is
  // relayed. `leader_monitor` (may be null: never) ends the streams that
  // asked for a leader once the member has lost it. Both outlive the front.
  const LeaseServiceDeps* lease = nullptr;
  LeaderMonitor* leader_monitor = nullptr;
  // When set, Watch/Watch is served here too, by the same api::WatchStream
  // as the gRPC Watch service (h2front/watch_stream_adapter.h); else it is
  // relayed. `leader_monitor` ends its streams that asked for a leader as
  // above. Outlives the front.
  const WatchStreamDeps* watch = nullptr;
  // A watch stream whose client has left more than half of its stream
  // window unacknowledged is behind: its writes wait (and later revisions
  // merge into its queued responses) until the client acknowledges. A
  // client that has not done so within this limit is taken to acknowledge
  // only later in its window, and its stream stops waiting on the window
  // (h2_front.cc, kWatchBufferedBytes).
  std::chrono::milliseconds watch_window_hold_limit{100};
  // The largest message accepted (as the gRPC server's max receive size);
  // beyond it a call fails with RESOURCE_EXHAUSTED as from gRPC.
  uint32_t max_receive_message_bytes = 4 << 20;
  int threads = 1;
  // Told of every KV call the front serves itself when it begins (its
  // request headers are in and acceptable) and when it ends (path, code,
  // time from its first header to its status; CANCELLED when its stream
  // closed first), for the grpc_server_* metrics the gRPC interceptor keeps
  // for the rest: every call begun is ended once. Either may be empty.
  // Called on the loops.
  std::function<void(std::string_view path)> record_native_start;
  std::function<void(std::string_view path, grpc::StatusCode code,
                     std::chrono::steady_clock::duration elapsed)>
      record_native_call;
};

class H2Front {
 public:
  static Result<std::unique_ptr<H2Front>> Start(const H2FrontOptions& options);
  // Stop(), if not done.
  ~H2Front();

  // Takes over connected socket `fd` (its first bytes still unread), from
  // any thread. Once Stop() has begun it is closed at once. `common_name`:
  // the verified client certificate behind it (the listener's TLS relay);
  // its calls show it as gRPC's show a certificate (api/client_identity.h).
  void Adopt(int fd, std::optional<std::string> common_name = std::nullopt);

  // Stops as gRPC's server does with a deadline: every connection gets
  // GOAWAY naming the last stream it took (later ones are not served, so a
  // client may retry them elsewhere), and the calls already taken go on,
  // native ones until answered, for up to `grace`; a connection closes once
  // its calls have ended. At the deadline whatever is left is closed and
  // its relayed calls cancelled. Returns once every call in flight (native
  // or relayed) has let go of the front. Call it before the gRPC server,
  // which relayed calls need, shuts down.
  void Stop(std::chrono::milliseconds grace);

  // The client's messages on relayed streams received and queued for their
  // gRPC calls, not yet taken by them, over all streams: bytes now and the
  // most there ever were. A stream stops getting HTTP/2 window while 1 MiB
  // of its own waits, so it holds at most that plus one window (1 MiB) and
  // one message.
  struct RelayQueue {
    int64_t bytes = 0;
    int64_t peak_bytes = 0;
  };
  RelayQueue relay_queue() const;

  struct Impl;

 private:
  explicit H2Front(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace etcdpp::api
