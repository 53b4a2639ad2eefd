// The client-visible error table: gRPC codes and etcd's exact messages
// (clientv3's rpctypes match on them), and how a Status becomes one.
#include "api/grpc_status.h"

#include <gtest/gtest.h>

namespace etcdpp::api {
namespace {

TEST(GrpcStatusTest, EtcdCodesGetEtcdsCodeAndMessage) {
  grpc::Status compacted = ToGrpcStatus(Status(Code::kCompacted));
  EXPECT_EQ(compacted.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(compacted.error_message(), "etcdserver: mvcc: required revision has been compacted");
  grpc::Status too_large = ToGrpcStatus(Status(Code::kRequestTooLarge));
  EXPECT_EQ(too_large.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(too_large.error_message(), "etcdserver: request is too large");
  EXPECT_EQ(ToGrpcStatus(Status(Code::kLeaseNotFound)).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status no_leader = ToGrpcStatus(Status(Code::kNoLeader));
  EXPECT_EQ(no_leader.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(no_leader.error_message(), "etcdserver: no leader");
  EXPECT_EQ(ToGrpcStatus(Status(Code::kTimeoutLeaderTransfer)).error_message(),
            "etcdserver: request timed out, leader transfer took too long");
}

TEST(GrpcStatusTest, GenericCodesKeepTheCallersMessage) {
  grpc::Status st = ToGrpcStatus(Status::Unimplemented("alarm activation is not supported yet"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(st.error_message(), "alarm activation is not supported yet");
  EXPECT_EQ(ToGrpcStatus(Status(Code::kInvalidArgument, "etcdserver: invalid sort option"))
                .error_message(),
            "etcdserver: invalid sort option");
}

TEST(GrpcStatusTest, AnExplicitMessageWinsOverTheTable) {
  EXPECT_EQ(ClientMessage(Status(Code::kNoLeader, "custom")), "custom");
  EXPECT_EQ(ClientMessage(Status(Code::kNoLeader)), "etcdserver: no leader");
}

TEST(GrpcStatusTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(Status::OK()).ok()); }

}  // namespace
}  // namespace etcdpp::api
