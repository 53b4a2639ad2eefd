// Lease keep-alive throughput: S keep-alive streams spread over C
// connections (as etcd's tool spreads its --clients over --conns), each
// with its own lease, each keeping one LeaseKeepAlive request
// outstanding (write, read, write...), until `total` keep-alives were
// answered; reports keep-alives/s and latency (etcd's tools/benchmark
// "lease-keepalive", over long-lived streams as clientv3's KeepAlive uses).
// Every stream is driven from the calling thread through one completion
// queue (no thread per stream), so the tool's own CPU stays small.
#pragma once

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace etcdpp::bench {

struct LeaseKeepAliveOptions {
  std::vector<std::string> endpoints;  // streams are spread over them
  // TLS (--cacert, --cert, --key); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  int streams = 10;
  // Connections the streams share, round robin (at most one per stream).
  int conns = 1;
  int64_t total = 10000;
  int64_t ttl = 60;
  std::chrono::seconds timeout{120};
};

struct LeaseKeepAliveResult {
  std::string error;  // Empty on success.
  int64_t keepalives = 0;
  double total_s = 0;
  double per_s = 0;
  double avg_latency_s = 0;
  double p99_latency_s = 0;
};

LeaseKeepAliveResult RunLeaseKeepAlive(const LeaseKeepAliveOptions& options);
// The same load over the tool's own HTTP/2 client (h2_client.h), all
// driven by the calling thread: plaintext only (options.credentials must
// be null).
LeaseKeepAliveResult RunLeaseKeepAliveOverH2(const LeaseKeepAliveOptions& options);

}  // namespace etcdpp::bench
