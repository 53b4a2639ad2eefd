#pragma once

// Endpoints and channels shared by the loads. The streaming loads (watch
// fan-out, lease keep-alive) put each stream on its own TCP connection, as
// separate clients would have.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace etcdpp::bench {

// "http://host:port" -> "host:port"; an endpoint without a scheme is kept.
std::string StripScheme(const std::string& endpoint);

// A channel of its own (not shared through gRPC's subchannel pool) to
// `endpoint`, with no cap on received message size. `creds` may be null for
// plaintext.
std::shared_ptr<grpc::Channel> ConnectOwnChannel(
    const std::string& endpoint, const std::shared_ptr<grpc::ChannelCredentials>& creds);

inline double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace etcdpp::bench
