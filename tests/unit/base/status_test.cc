#include "base/status.h"

#include <gtest/gtest.h>

namespace etcdpp {
namespace {

TEST(StatusTest, OkIsCheapAndOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.grpc_code(), GrpcCode::kOk);
}

TEST(StatusTest, EtcdCodesCarryEtcdMessageAndGrpcCode) {
  Status s(Code::kCompacted);
  EXPECT_EQ(s.message(), "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(s.grpc_code(), GrpcCode::kOutOfRange);
  EXPECT_EQ(Status(Code::kRequestTooLarge).message(), "etcdserver: request is too large");
  EXPECT_EQ(Status(Code::kRequestTooLarge).grpc_code(), GrpcCode::kInvalidArgument);
  EXPECT_EQ(Status(Code::kLeaseNotFound).grpc_code(), GrpcCode::kNotFound);
  EXPECT_EQ(Status(Code::kNoLeader).grpc_code(), GrpcCode::kUnavailable);
}

TEST(StatusTest, GenericCodesKeepTheirMessage) {
  Status s = Status::Corruption("wal: bad crc in 0000.wal at offset 64");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "wal: bad crc in 0000.wal at offset 64");
  EXPECT_EQ(s.ToString(), "Corruption: wal: bad crc in 0000.wal at offset 64");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  Result<int> e = Status(Code::kEmptyKey);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::kEmptyKey);
}

}  // namespace
}  // namespace etcdpp
