// The client-facing gRPC server: every etcd v3 service registered on the
// --listen-client-urls. Methods a later milestone builds answer UNIMPLEMENTED
// (gRPC's default for a callback service method without a reactor).
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace etcdpp::server {
class EtcdServer;
}

namespace etcdpp::api {
namespace concurrency {
class SelfClientSlot;
}

class KvHandler;
class KvService;
class LeaderMonitor;
class LeaseService;
struct LeaseServiceDeps;
class ReadExecutor;
class WatchService;
struct WatchStreamDeps;

class ClientServer {
 public:
  // Binds every address ("127.0.0.1:2379") and starts serving. With no
  // address it listens nowhere and is handed connections through
  // grpc_server() (http::Listener does, for the client port). `interceptors`
  // see every call (metrics).
  using Interceptors =
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>;
  static Result<std::unique_ptr<ClientServer>> Start(server::EtcdServer* server,
                                                     const std::vector<std::string>& addresses,
                                                     Interceptors interceptors = {});
  ~ClientServer();

  // Stops accepting, waits up to `grace_ms` for calls in flight, cancels the rest.
  void Shutdown(int grace_ms);

  grpc::Server* grpc_server() const { return grpc_server_.get(); }
  // The KV service's transport-free bodies (the HTTP/2 front serves them too).
  const KvHandler& kv_handler() const;
  // What the Lease service answers keep-alives with, and the monitor that
  // ends the streams that asked for a leader (the HTTP/2 front serves
  // LeaseKeepAlive with them too). Both live as long as this server.
  const LeaseServiceDeps* lease_deps() const;
  LeaderMonitor* leader_monitor() const { return leader_monitor_.get(); }
  // What the Watch service's streams share (the HTTP/2 front serves Watch
  // with it too); lives as long as this server.
  const WatchStreamDeps* watch_deps() const;
  // The largest message the gRPC server accepts: --max-request-bytes plus framing.
  uint32_t max_receive_message_bytes() const { return max_receive_message_bytes_; }

 private:
  ClientServer() = default;

  std::unique_ptr<ReadExecutor> reads_;
  std::unique_ptr<ReadExecutor> password_pool_;
  // Outlives every stream that registers with it (destroyed after the
  // services and the gRPC server, or in Shutdown once they are done).
  std::unique_ptr<LeaderMonitor> leader_monitor_;
  // The Lock and Election services' channel to the others; outlives them.
  std::unique_ptr<concurrency::SelfClientSlot> self_client_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  KvService* kv_ = nullptr;        // one of services_
  LeaseService* lease_ = nullptr;  // one of services_
  WatchService* watch_ = nullptr;  // one of services_
  uint32_t max_receive_message_bytes_ = 0;
  std::unique_ptr<grpc::Server> grpc_server_;
};

}  // namespace etcdpp::api
