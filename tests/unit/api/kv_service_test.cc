// The KV service against a fake member: what reaches the proposer and the
// read barrier, and the status codes and messages clients see (etcd's).
#include "api/kv_service.h"

#include <gtest/gtest.h>

#include "api/read_executor.h"
#include "unit/api/fake_member.h"

namespace etcdpp::api {
namespace {

using testing::Context;
using testing::FakeMember;
using testing::InProcessServer;

class KvServiceTest : public ::testing::Test {
 protected:
  KvServiceTest()
      : reads_(1),
        service_(&member_, &member_, &member_, &reads_),
        server_(&service_),
        stub_(etcdserverpb::KV::NewStub(server_.channel())) {}

  grpc::Status Put(const std::string& key, const std::string& value,
                   etcdserverpb::PutResponse* resp) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    return stub_->Put(Context().get(), req, resp);
  }

  grpc::Status Get(const std::string& key, bool serializable, etcdserverpb::RangeResponse* resp,
                   bool require_leader = false) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_serializable(serializable);
    return stub_->Range(Context(require_leader).get(), req, resp);
  }

  FakeMember member_;
  ReadExecutor reads_;
  KvService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
};

TEST_F(KvServiceTest, PutIsProposedAndAnsweredWithTheMembersHeader) {
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put("k", "v", &put).ok());
  EXPECT_EQ(member_.proposals.get(), 1);
  EXPECT_EQ(put.header().cluster_id(), 0xccu);
  EXPECT_EQ(put.header().member_id(), 0xaau);
  EXPECT_EQ(put.header().raft_term(), 7u);
  EXPECT_EQ(put.header().revision(), 2);
}

TEST_F(KvServiceTest, LinearizableRangeWaitsForTheBarrierSerializableDoesNot) {
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put("k", "v", &put).ok());
  etcdserverpb::RangeResponse linearizable;
  ASSERT_TRUE(Get("k", false, &linearizable).ok());
  EXPECT_EQ(member_.barrier_waits.get(), 1);
  ASSERT_EQ(linearizable.kvs_size(), 1);
  EXPECT_EQ(linearizable.kvs(0).value(), "v");
  EXPECT_EQ(linearizable.header().member_id(), 0xaau);

  etcdserverpb::RangeResponse serializable;
  ASSERT_TRUE(Get("k", true, &serializable).ok());
  EXPECT_EQ(member_.barrier_waits.get(), 1);
  ASSERT_EQ(serializable.kvs_size(), 1);
}

TEST_F(KvServiceTest, BarrierErrorReachesTheClientUnchanged) {
  member_.barrier_error = Status(Code::kTimeout);
  etcdserverpb::RangeResponse resp;
  grpc::Status st = Get("k", false, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: request timed out");
}

TEST_F(KvServiceTest, ProposalErrorReachesTheClientUnchanged) {
  member_.propose_error = Status(Code::kRequestTooLarge);
  etcdserverpb::PutResponse put;
  grpc::Status st = Put("k", "v", &put);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "etcdserver: request is too large");
}

TEST_F(KvServiceTest, InvalidRequestsAreRefusedBeforeProposing) {
  etcdserverpb::PutResponse put;
  grpc::Status st = Put("", "v", &put);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "etcdserver: key is not provided");
  EXPECT_EQ(member_.proposals.get(), 0);
}

TEST_F(KvServiceTest, TxnOpsLimitComesFromTheMember) {
  member_.txn_ops_limit = 1;
  etcdserverpb::TxnRequest txn;
  for (const char* key : {"a", "b"}) {
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value("v");
  }
  etcdserverpb::TxnResponse resp;
  grpc::Status st = stub_->Txn(Context().get(), txn, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "etcdserver: too many operations in txn request");
  EXPECT_EQ(member_.proposals.get(), 0);
}

TEST_F(KvServiceTest, ReadOnlyTxnNeedsNoProposal) {
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put("k", "v", &put).ok());
  etcdserverpb::TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key("k");
  etcdserverpb::TxnResponse resp;
  ASSERT_TRUE(stub_->Txn(Context().get(), txn, &resp).ok());
  EXPECT_EQ(member_.proposals.get(), 1);  // the put only
  EXPECT_EQ(member_.barrier_waits.get(), 1);
  ASSERT_EQ(resp.responses_size(), 1);
  EXPECT_EQ(resp.responses(0).response_range().kvs(0).value(), "v");
}

TEST_F(KvServiceTest, LearnerServesOnlySerializableReads) {
  member_.learner = true;
  etcdserverpb::PutResponse put;
  grpc::Status st = Put("k", "v", &put);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: rpc not supported for learner");
  etcdserverpb::RangeResponse resp;
  EXPECT_FALSE(Get("k", false, &resp).ok());
  EXPECT_TRUE(Get("k", true, &resp).ok());
  EXPECT_EQ(member_.proposals.get(), 0);
}

TEST_F(KvServiceTest, RequireLeaderFailsWithoutOne) {
  member_.leader = 0;
  etcdserverpb::RangeResponse resp;
  grpc::Status st = Get("k", true, &resp, /*require_leader=*/true);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
  EXPECT_TRUE(Get("k", true, &resp, /*require_leader=*/false).ok());
}

}  // namespace
}  // namespace etcdpp::api
