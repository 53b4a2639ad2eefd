// The client port: accepts every connection itself and tells gRPC from HTTP
// by the first bytes (sniff.h). An HTTP/2 connection (gRPC) is handed, as
// its socket, to the gRPC server (grpc::AddInsecureChannelFromFd) before
// anything is read from it: from then on gRPC owns it exactly as if it had
// accepted it, with no hop or copy per request. Anything else is HTTP/1.1,
// served here with Boost.Beast: /health, /version, /metrics, the v3 JSON
// gateway and the v2 API (v2_api.h); a keep-alive connection stays HTTP.
//
// On an https:// address TLS ends here (OpenSSL, through Asio): after the
// handshake the connection's plaintext is relayed, both ways, through a
// socketpair whose other end goes to gRPC (AddInsecureChannelFromFd) or to
// the HTTP/1.1 server above, chosen by ALPN (h2 or http/1.1) or, without
// ALPN, by the decrypted first bytes. The verified client certificate's
// common name is recorded for the API layer (api/client_identity.h). The
// relay costs one copy and two local-socket syscalls per read and per write
// (docs/tls.md). Metrics listeners
// (--listen-metrics-urls) serve only /metrics and /health, without sniffing.
//
// Threads: `threads` Asio threads run accepts, sniffing and HTTP; each
// connection is served on its own strand. The gateway's gRPC calls complete
// on gRPC's threads and hand their results back to the connection's strand.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace grpc {
class Server;
}

namespace etcdpp::api {
class H2Front;
}

namespace etcdpp::metrics {
class Registry;
}
namespace etcdpp::tls {
class ServerContextSource;
}

namespace etcdpp::http {

class V2Api;

struct ListenerOptions {
  // host:port, sniffed: gRPC and HTTP (the --listen-client-urls).
  std::vector<std::string> client_addresses;
  // host:port, TLS first, then sniffed like the above (the https:// ones).
  std::vector<std::string> tls_client_addresses;
  // The certificates of tls_client_addresses; required if there are any.
  std::shared_ptr<tls::ServerContextSource> tls;
  // host:port, HTTP only: /metrics and /health (the --listen-metrics-urls).
  std::vector<std::string> metrics_addresses;
  // Takes the gRPC connections and answers the gateway (in-process channel).
  // Must outlive the Listener; shut it down after Stop().
  grpc::Server* grpc_server = nullptr;
  // With --h2-front (the default): takes the HTTP/2 connections instead of
  // grpc_server, plaintext ones as accepted and TLS ones through the relay,
  // with the verified client certificate's name if the client showed one
  // (api/client_identity.h). Must outlive the Listener.
  api::H2Front* h2_front = nullptr;
  metrics::Registry* registry = nullptr;
  // /version's reply.
  std::string server_version = "3.4.0";
  std::string cluster_version = "3.4.0";
  // Serve the web console at /ui on the client addresses (src/ui).
  bool enable_ui = true;
  // Largest HTTP request body accepted (413 beyond).
  uint64_t max_body_bytes = 16 << 20;
  int threads = 2;
  // The v2 API (--enable-v2); null: /v2/ paths are not found, as in etcd
  // without the flag. Must outlive the Listener.
  V2Api* v2 = nullptr;
};

class Listener {
 public:
  // Binds every address (all the addresses a host name resolves to) and starts serving.
  static Result<std::unique_ptr<Listener>> Start(const ListenerOptions& options);
  // Stop(), then waits for the gateway's calls to end: shut the gRPC server
  // down (or let its calls finish) before destroying the Listener.
  ~Listener();

  // Stops accepting and serving HTTP, and cancels the gateway's streams.
  // Open connections are closed when the Listener is destroyed. Connections
  // already handed to gRPC are gRPC's (grpc::Server::Shutdown ends them).
  void Stop();

  struct Impl;

 private:
  explicit Listener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace etcdpp::http
