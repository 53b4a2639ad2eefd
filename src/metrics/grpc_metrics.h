// Counts the calls a gRPC server handles, under the names and labels of
// go-grpc-prometheus that etcd exports (grpc_server_started_total,
// grpc_server_handled_total{grpc_code}, grpc_server_msg_received_total,
// grpc_server_msg_sent_total, grpc_server_handling_seconds; labels
// grpc_type, grpc_service, grpc_method). It is a server interceptor, so the
// services know nothing about it. etcd exports the four counters at
// --metrics=basic and adds the latency histogram at --metrics=extensive; so
// do we. Per call: one hash lookup of the method, one small allocation (gRPC
// owns interceptors) and relaxed atomic increments of counters resolved when
// the factory was built; the clock is read only for the histogram. gRPC also
// runs each batch of an intercepted call through one more completion: its
// cost on puts and ranges is measured in BENCHMARKS.md ("gRPC call metrics
// by default").
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/metrics.h"

namespace etcdpp::metrics {

// Every method of `services` (full protobuf names, e.g. "etcdserverpb.KV",
// looked up in the generated descriptor pool) gets its counters now, each
// code at 0 (as etcd shows them), so the hot path only increments. Calls to
// other methods are not counted. `handling_seconds` adds
// grpc_server_handling_seconds (etcd's --metrics=extensive).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetrics(
    Registry& registry, const std::vector<std::string>& services, bool handling_seconds);

// Counts a unary call served outside gRPC (the experimental HTTP/2 front,
// api/h2front) into the same series the interceptor feeds, at the same
// moments: started when the call begins (Started), and when it ends
// (Record) one message received, one sent when OK, handled by code, and
// the histogram when on. `path` is "/<service>/<method>"; other paths are
// not counted. Thread-safe; lives as long as the registry.
class UnaryCallRecorder {
 public:
  virtual ~UnaryCallRecorder() = default;
  virtual void Started(std::string_view path) const = 0;
  virtual void Record(std::string_view path, grpc::StatusCode code,
                      std::chrono::steady_clock::duration elapsed) const = 0;
};

// MakeGrpcServerMetrics' interceptor factory, and a recorder sharing its
// counters (registering the series once).
struct GrpcServerMetrics {
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptors;
  std::shared_ptr<const UnaryCallRecorder> recorder;
};
GrpcServerMetrics MakeGrpcServerMetricsWithRecorder(Registry& registry,
                                                    const std::vector<std::string>& services,
                                                    bool handling_seconds);

}  // namespace etcdpp::metrics
