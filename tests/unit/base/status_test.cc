#include "base/status.h"

#include <gtest/gtest.h>

namespace etcdpp {
namespace {

TEST(StatusTest, OkIsCheapAndOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

// What clients see for etcd codes is tested with the table, in the API
// layer (tests/unit/api/grpc_status_test.cc); base only names them.
TEST(StatusTest, EtcdCodesAreRaisedByCodeAlone) {
  Status s(Code::kCompacted);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kCompacted);
  EXPECT_EQ(s.ToString(), "Compacted");
  EXPECT_EQ(CodeName(Code::kNoLeader), "NoLeader");
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
