// The API layer's half of an error: the gRPC code and message a client sees
// for each Code. Lower layers speak in Codes only (base/status.h); this is
// the one place that knows what etcd's clients expect for them.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "base/status.h"

namespace etcdpp::api {

struct EtcdError {
  grpc::StatusCode grpc_code;
  // etcd's message for an etcd code ("etcdserver: ..."); empty for the
  // generic codes, whose message is the caller's.
  std::string_view message;
};

EtcdError EtcdErrorFor(Code code);

// The status's own message if it has one, else etcd's for its code.
std::string ClientMessage(const Status& status);

grpc::Status ToGrpcStatus(const Status& status);

}  // namespace etcdpp::api
