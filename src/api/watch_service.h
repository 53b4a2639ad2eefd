// The etcdserverpb.Watch gRPC service: one bidi stream carries many watchers
// (etcd 3.4's v3rpc watchServer). Watchers live in the member's
// watch::WatchHub; each stream is an api::WatchStream (watch_stream.h), which
// this service only connects to a gRPC reactor. docs/watch.md.
#pragma once

#include <memory>

#include "etcdserverpb/rpc.grpc.pb.h"

#include "api/watch_stream.h"
#include "server/interfaces.h"

namespace etcdpp::watch {
class WatchHub;
}

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class LeaderMonitor;
class WritePump;

// The method is registered raw (bytes in and out, same wire messages): a
// stream writes the hub's encoded events as they are, shared by all the
// watchers of a revision, instead of building a message per watcher.
class WatchService final
    : public etcdserverpb::Watch::WithRawCallbackMethod_Watch<etcdserverpb::Watch::Service> {
 public:
  // `monitor` ends streams that asked for a leader when there is none. Not
  // owned; all three outlive the service and its streams.
  // `auth` (may be null: no checks) decides which ranges a stream may watch.
  // With `barrier` (may be null), a create waits for the writes the member
  // answered before their backend commit (api/answered_writes.h).
  WatchService(const server::ClusterView* cluster, watch::WatchHub* hub, LeaderMonitor* monitor,
               const auth::AuthStore* auth = nullptr, server::ReadBarrier* barrier = nullptr);
  // After every stream has ended (the gRPC server has shut down).
  ~WatchService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* context) override;

  // What its streams share (the HTTP/2 front's streams too); lives as long
  // as the service.
  const WatchStreamDeps* deps() const { return &deps_; }

 private:
  const server::ClusterView* const cluster_;
  LeaderMonitor* const monitor_;
  // Starts the writes of streams with responses queued behind a completed
  // one (a thread of its own; api/watch_write_pump.h says why).
  std::unique_ptr<WritePump> pump_;
  WatchStreamDeps deps_;  // Set once in the constructor.
};

}  // namespace etcdpp::api
