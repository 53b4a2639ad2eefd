// The etcdserverpb.Watch gRPC service: one bidi stream carries many watchers
// (etcd 3.4's v3rpc watchServer). Watchers live in the member's
// watch::WatchHub; this layer turns requests into hub calls and queues the
// hub's responses on the stream. docs/watch.md.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::server {
class EtcdServer;
}

namespace etcdpp::api {

class LeaderMonitor;

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  // `monitor` ends streams that asked for a leader when there is none.
  WatchService(server::EtcdServer* server, LeaderMonitor* monitor);

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;

 private:
  server::EtcdServer* const server_;
  LeaderMonitor* const monitor_;
};

}  // namespace etcdpp::api
