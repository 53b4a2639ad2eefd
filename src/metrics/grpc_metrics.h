// Counts the calls a gRPC server handles, under the names and labels of
// go-grpc-prometheus that etcd exports (grpc_server_started_total,
// grpc_server_handled_total{grpc_code}, grpc_server_msg_received_total,
// grpc_server_msg_sent_total, grpc_server_handling_seconds; labels
// grpc_type, grpc_service, grpc_method). It is a server interceptor, so the
// services know nothing about it; but gRPC runs every batch of an
// intercepted call through one more completion, which costs CPU on every
// call (measured ~10% on a serializable range), hence opt-in (--metrics=extensive).
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
// other methods are not counted.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetrics(
    Registry& registry, const std::vector<std::string>& services);

}  // namespace etcdpp::metrics
