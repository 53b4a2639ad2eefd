// Conversion of etcdpp's Status to the grpc::Status etcd's clients expect.
#pragma once

#include <grpcpp/support/status.h>

#include "base/status.h"

namespace etcdpp::api {

inline grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.grpc_code()), status.message());
}

}  // namespace etcdpp::api
