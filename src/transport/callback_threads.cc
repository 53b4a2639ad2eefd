#include "transport/callback_threads.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <mutex>

namespace etcdpp::transport {

void KeepGrpcCallbackThreads() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A server holds its reference to the pool from the registration of a
    // callback service until it is destroyed; this one never is (both are
    // deliberately leaked, and reachable, so leak checkers stay quiet). It
    // listens on no port, so nothing can call it, and no call of ours
    // completes on a pool thread: nothing here for TSan to see crossing
    // threads inside uninstrumented gRPC.
    static auto* const service = new grpc::CallbackGenericService;
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(service);
    static auto* const server = builder.BuildAndStart().release();
    (void)server;
  });
}

}  // namespace etcdpp::transport
