// etcdserverpb.Lease/LeaseKeepAlive served by the HTTP/2 front itself
// (h2_front.h), with the gRPC service's behaviour (lease_service.cc): both
// answer each request through KeepAliveOnce (api/lease_keepalive.h).
//
// Transport-neutral: the stream gets the request bytes of its HTTP/2
// stream and answers through Hooks, so it knows nothing of nghttp2 or of
// the front's connections. Everything but Hooks::post runs on the thread
// that owns the HTTP/2 stream (a loop of the front).
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/leader_monitor.h"
#include "api/lease_service.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::api::h2front {

inline constexpr std::string_view kLeaseKeepAlivePath = "/etcdserverpb.Lease/LeaseKeepAlive";

class KeepAliveStream {
 public:
  using Task = std::function<void(KeepAliveStream&)>;
  struct Hooks {
    // From any thread: runs `task` on the owning thread with this stream if
    // the stream is still open then, else drops it. Called on the owning
    // thread it may run `task` at once (a renewal answered inline: Pump
    // then goes on with the next request instead of recursing). Copies are
    // kept by renewals in flight and by the leader monitor's registration:
    // the owner counts the stream as in flight until the last copy is gone.
    std::function<void(Task task)> post;
    // Queue `response` on the stream. False when the client is not taking
    // the replies: no further request is read until Writable().
    std::function<bool(const etcdserverpb::LeaseKeepAliveResponse& response)> write;
    // Ends the stream with `status` after what was written.
    std::function<void(const grpc::Status& status)> finish;
    // Ends the stream with `status` at once, dropping what was not sent
    // (the client broke the protocol).
    std::function<void(const grpc::Status& status)> fail;
  };

  // What the gRPC service refuses before the stream starts (a learner, a
  // call that asked for a leader while there is none: CheckCall), or the
  // stream. With `requires_leader` ("hasleader: true"), `monitor` ends it
  // with "etcdserver: no leader" once the member has lost its leader.
  static Result<std::unique_ptr<KeepAliveStream>> Open(const LeaseServiceDeps* member,
                                                       LeaderMonitor* monitor, bool requires_leader,
                                                       uint32_t max_receive_message_bytes,
                                                       Hooks hooks);
  ~KeepAliveStream();
  KeepAliveStream(const KeepAliveStream&) = delete;
  KeepAliveStream& operator=(const KeepAliveStream&) = delete;

  // Request bytes of the HTTP/2 stream (gRPC-framed messages, cut here).
  void Received(std::string_view data);
  // The client ended its side (END_STREAM): the stream ends with OK once
  // every request before it is answered.
  void HalfClosed();
  // The client took enough of the replies: reading goes on.
  void Writable();
  // Request bytes received and not yet taken as a request: the owner stops
  // returning the stream's flow-control window above a bound, so a client
  // that sends faster than it is answered is held back, as gRPC's server
  // holds it back by reading one request at a time.
  size_t buffered() const { return inbound_.size(); }
  bool paused() const { return paused_; }

 private:
  KeepAliveStream(const LeaseServiceDeps* member, uint32_t max_receive, Hooks hooks);

  // Takes requests, one at a time (a renewal is answered before the next
  // request is read, as the gRPC reactor does), while nothing blocks.
  void Pump();
  void OnRenewed(const etcdserverpb::LeaseKeepAliveResponse& response, const Status& renewed);
  void OnNoLeader();
  void End(const grpc::Status& status);
  void Fail(grpc::StatusCode code, const std::string& message);

  const LeaseServiceDeps* const member_;
  const uint32_t max_receive_;
  const Hooks hooks_;
  LeaderMonitor* monitor_ = nullptr;  // set while registered
  LeaderMonitor::Token monitor_token_ = 0;
  std::string inbound_;  // request bytes not yet cut into requests
  bool half_closed_ = false;
  bool renewing_ = false;   // a renewal is outstanding (at most one)
  bool paused_ = false;     // the last write found the client behind
  bool pumping_ = false;    // inside Pump: a renewal answered inline returns to it
  bool no_leader_ = false;  // the monitor asked to end the stream
  bool ended_ = false;      // finish or fail was called
};

}  // namespace etcdpp::api::h2front
