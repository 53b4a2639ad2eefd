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

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(server::EtcdServer* server);

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;

 private:
  server::EtcdServer* const server_;
};

}  // namespace etcdpp::api
