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

#include <memory>
#include <string>
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

}  // namespace etcdpp::metrics
