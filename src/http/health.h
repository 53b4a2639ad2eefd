// /health: whether this member can serve, as etcd 3.4 decides it: no alarm
// raised, a leader known, and a linearizable read completing within a
// second. Asked through the member's own gRPC server (in-process channel),
// like the gateway, so it checks the path clients take.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "metrics/metrics.h"

namespace etcdpp::http {

class HealthChecker {
 public:
  // Counts checks in `registry` (etcd_server_health_success / _failures).
  HealthChecker(std::shared_ptr<grpc::Channel> channel, metrics::Registry& registry);
  ~HealthChecker();

  // `done(healthy)` runs on a gRPC thread, within about 3 s.
  void Check(std::function<void(bool healthy)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace etcdpp::http
