// Everything a member serves its clients, wired together: the gRPC services
// (api::ClientServer, listening nowhere itself), the Listener that owns the
// client URLs and hands it the gRPC connections, the HTTP endpoints and the
// metrics they expose. The program's one call to start serving clients.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace etcdpp::server {
class EtcdServer;
}
namespace etcdpp::metrics {
class Registry;
}
namespace etcdpp::api {
class ClientServer;
class H2Front;
}  // namespace etcdpp::api
namespace etcdpp::tls {
class ServerContextSource;
}

namespace etcdpp::http {

class Listener;
class V2Api;

struct ClientPortOptions {
  std::vector<std::string> client_addresses;   // host:port (--listen-client-urls)
  std::vector<std::string> metrics_addresses;  // host:port (--listen-metrics-urls)
  // host:port of the https:// --listen-client-urls, served with `tls`.
  std::vector<std::string> tls_client_addresses;
  std::shared_ptr<tls::ServerContextSource> tls;
  // Where the metrics go; null: metrics::DefaultRegistry(). One ClientPort
  // per registry (the names are registered once).
  metrics::Registry* registry = nullptr;
  // grpc_server_started/handled/msg_* are always counted (as etcd's
  // --metrics=basic); this adds the per-method latency histogram
  // grpc_server_handling_seconds (etcd's --metrics=extensive).
  bool grpc_handling_seconds = false;
  // The web console at /ui (--enable-ui).
  bool enable_ui = true;
  // Serve the v2 API (/v2/keys, /v2/members, ...): etcd's --enable-v2,
  // off by default as in etcd 3.4.
  bool enable_v2 = false;
  // --h2-front: gRPC connections go to the HTTP/2 front
  // (api/h2front/h2_front.h) instead of gRPC C++: plaintext ones, and TLS
  // ones through the TLS relay unless the client showed a certificate.
  bool h2_front = true;
};

class ClientPort {
 public:
  static Result<std::unique_ptr<ClientPort>> Start(server::EtcdServer* server,
                                                   const ClientPortOptions& options);
  ~ClientPort();

  // Stops HTTP, then gRPC (waiting up to `grace_ms` for calls in flight).
  void Shutdown(int grace_ms);

 private:
  ClientPort() = default;
  std::unique_ptr<api::ClientServer> grpc_;
  std::unique_ptr<V2Api> v2_;  // outlives the listener that calls it
  // Outlives the listener that hands it connections; stopped before grpc_.
  std::unique_ptr<api::H2Front> front_;
  std::unique_ptr<Listener> listener_;
};

}  // namespace etcdpp::http
