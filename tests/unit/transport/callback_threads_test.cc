// A channel whose last reference goes away inside one of its own callbacks
// (a ClientContext freed in its completion callback holds the channel): the
// situation that crashed members at shutdown, and that the callback pool
// kept by KeepGrpcCallbackThreads makes harmless. Without it this test
// frees the pool's queue on the thread still polling it: ASan reports a
// double free, a release build may abort in gRPC's reference counting.
// Its own binary, so nothing else in the process holds the pool.
#include "transport/callback_threads.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

namespace etcdpp::transport {
namespace {

struct OwnedCall {
  grpc::ClientContext ctx;
  // gRPC refuses to send a message without a buffer: one empty slice.
  grpc::Slice empty;
  grpc::ByteBuffer request{&empty, 1};
  grpc::ByteBuffer response;
};

// Starts a call that fails at once and returns when its callback, which
// frees the call and with it the channel's last reference, has run.
void CallAndReleaseInCallback() {
  auto channel =
      grpc::CreateChannel("unix:/nonexistent/etcdpp-test", grpc::InsecureChannelCredentials());
  auto* call = new OwnedCall;
  call->ctx.set_deadline(std::chrono::system_clock::now());
  std::promise<grpc::StatusCode> done;
  std::future<grpc::StatusCode> code = done.get_future();
  {
    grpc::GenericStub stub(channel);
    stub.UnaryCall(&call->ctx, "/etcdpp.Test/Nothing", grpc::StubOptions(), &call->request,
                   &call->response, [call, &done](const grpc::Status& st) {
                     delete call;
                     done.set_value(st.error_code());
                   });
  }
  channel.reset();  // the context alone holds the channel now
  // Past its deadline, or refused by the missing socket first.
  EXPECT_NE(code.get(), grpc::StatusCode::OK);
}

TEST(CallbackThreadsTest, ChannelsReleasedOnTheirOwnCallbackThreadsAreSafe) {
  KeepGrpcCallbackThreads();
  KeepGrpcCallbackThreads();  // idempotent
  for (int i = 0; i < 20; ++i) CallAndReleaseInCallback();
  // The pool still runs callbacks after all those releases.
  CallAndReleaseInCallback();
}

}  // namespace
}  // namespace etcdpp::transport
