// h2floor_grpc_twin: the control for h2floor_server. The same trivial Range
// handler (an empty RangeResponse with a fixed header, whatever the request)
// on gRPC C++'s callback API, with etcdpp's channel arguments, so that the
// two differ only in the transport (docs/grpc_floor.md).
//
//   h2floor_grpc_twin [--port P] [--threads N]
//
// --threads caps gRPC's thread pool through its ResourceQuota; the callback
// API runs handlers on gRPC's own threads, which is what etcdpp does too.
// Prints "listening on 127.0.0.1:P" once serving.

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "floor_server.h"

namespace {

// Stateless: any gRPC thread may run Range.
class TrivialKv final : public etcdserverpb::KV::CallbackService {
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest*,
                                  etcdserverpb::RangeResponse* response) override {
    auto* header = response->mutable_header();
    h2floor::FillHeader(header);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  h2floor::ServerFlags flags;
  if (!h2floor::ParseServerFlags(argc, argv, "h2floor_grpc_twin", &flags)) return 2;
  int port = flags.port;
  const int threads = flags.threads;
  // As etcdpp's main does: abseil's deadlock detection (on in Debian's
  // build) costs gRPC's mutexes a graph update on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  TrivialKv service;
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound_port);
  // etcdpp's client-port arguments (src/api/client_server.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, std::numeric_limits<int>::max());
  grpc::ResourceQuota quota("h2floor_grpc_twin");
  quota.SetMaxThreads(threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    std::fprintf(stderr, "h2floor_grpc_twin: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", bound_port);
  std::fflush(stdout);
  server->Wait();
}
