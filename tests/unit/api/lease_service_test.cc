// The Lease service against fakes of what it depends on (a proposer, the
// member's lessor, the channel to the leader, the cluster view), over an
// in-process gRPC server: what is proposed or forwarded, and the answers
// and errors etcd's clients see. No Raft, no peers.
#include "api/lease_service.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/leader_monitor.h"
#include "unit/api/fake_leases.h"
#include "unit/api/fake_member.h"
#include "unit/api/monitored_leader.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;
using testing::Context;
using testing::FakeLeaderChannel;
using testing::FakeLeases;
using testing::FakeMember;
using testing::InProcessServer;
using testing::ScriptedLeaderMonitor;

// Answers lease proposals as the apply side would, or with a scripted error.
// Guarded by mu_: gRPC threads propose while the test thread reads.
class FakeLeaseProposer final : public server::Proposer {
 public:
  void Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response,
               server::ProposeCallback done) override {
    std::optional<Status> error;
    {
      std::lock_guard<std::mutex> lock(mu_);
      proposals_.push_back(request);
      error = error_;
    }
    if (error) return done(*error);
    if (request.has_lease_grant()) {
      auto* grant = static_cast<etcdserverpb::LeaseGrantResponse*>(response);
      grant->set_id(request.lease_grant().id());
      grant->set_ttl(request.lease_grant().ttl());
    } else if (!request.has_lease_revoke()) {
      return done(Status::Unimplemented("not a lease request"));
    }
    done(Status::OK());
  }

  void SetError(std::optional<Status> error) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(error);
  }
  std::vector<internalpb::InternalRaftRequest> proposals() {
    std::lock_guard<std::mutex> lock(mu_);
    return proposals_;
  }

 private:
  std::mutex mu_;
  std::optional<Status> error_;
  std::vector<internalpb::InternalRaftRequest> proposals_;
};

class LeaseServiceTest : public ::testing::Test {
 protected:
  LeaseServiceTest()
      : service_(LeaseServiceDeps{&proposer_, &member_, &leader_, &leases_, nullptr},
                 monitor_.monitor()),
        server_(&service_),
        stub_(etcdserverpb::Lease::NewStub(server_.channel())) {}
  ~LeaseServiceTest() override { leader_.JoinAll(); }

  static std::string KeepAliveReply(int64_t id, int64_t ttl) {
    LeaseKeepAliveResponse resp;
    resp.set_id(id);
    resp.set_ttl(ttl);
    return resp.SerializeAsString();
  }

  grpc::Status Grant(int64_t id, int64_t ttl, etcdserverpb::LeaseGrantResponse* resp) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_id(id);
    req.set_ttl(ttl);
    return stub_->LeaseGrant(Context().get(), req, resp);
  }
  grpc::Status TimeToLive(int64_t id, etcdserverpb::LeaseTimeToLiveResponse* resp) {
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(true);
    return stub_->LeaseTimeToLive(Context().get(), req, resp);
  }
  // One keep-alive on an open stream.
  static bool KeepAlive(
      grpc::ClientReaderWriter<LeaseKeepAliveRequest, LeaseKeepAliveResponse>* stream, int64_t id,
      LeaseKeepAliveResponse* resp) {
    LeaseKeepAliveRequest req;
    req.set_id(id);
    return stream->Write(req) && stream->Read(resp);
  }

  ScriptedLeaderMonitor monitor_;  // outlives the service
  FakeMember member_;
  FakeLeaseProposer proposer_;
  FakeLeases leases_;
  FakeLeaderChannel leader_;
  LeaseService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
};

TEST_F(LeaseServiceTest, GrantWithoutIdProposesOneThisMemberPicked) {
  etcdserverpb::LeaseGrantResponse resp;
  ASSERT_TRUE(Grant(0, 60, &resp).ok());
  auto proposals = proposer_.proposals();
  ASSERT_EQ(proposals.size(), 1u);
  const int64_t picked = proposals[0].lease_grant().id();
  EXPECT_GT(picked, 0);
  EXPECT_EQ(proposals[0].lease_grant().ttl(), 60);
  EXPECT_EQ(resp.id(), picked);
  EXPECT_EQ(resp.ttl(), 60);
  EXPECT_EQ(resp.header().cluster_id(), 0xccu);
  EXPECT_EQ(resp.header().member_id(), 0xaau);
  EXPECT_EQ(resp.header().raft_term(), 7u);

  // A second grant gets another id; a client's own id is kept.
  ASSERT_TRUE(Grant(0, 60, &resp).ok());
  EXPECT_NE(resp.id(), picked);
  ASSERT_TRUE(Grant(0x1234, 60, &resp).ok());
  EXPECT_EQ(proposer_.proposals().back().lease_grant().id(), 0x1234);
}

TEST_F(LeaseServiceTest, GrantAndRevokeErrorsAreEtcds) {
  etcdserverpb::LeaseGrantResponse granted;
  proposer_.SetError(Status(Code::kLeaseExist));
  grpc::Status st = Grant(0x1234, 60, &granted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "etcdserver: lease already exists");

  proposer_.SetError(Status(Code::kLeaseTTLTooLarge));
  st = Grant(0, 9'000'000'001, &granted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(st.error_message(), "etcdserver: too large lease TTL");

  proposer_.SetError(Status(Code::kLeaseNotFound));
  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(0x999);
  etcdserverpb::LeaseRevokeResponse revoked;
  st = stub_->LeaseRevoke(Context().get(), revoke, &revoked);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "etcdserver: requested lease not found");

  proposer_.SetError(Status(Code::kTimeout));
  st = stub_->LeaseRevoke(Context().get(), revoke, &revoked);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: request timed out");
}

TEST_F(LeaseServiceTest, RevokeIsProposedAndAnsweredWithTheMembersHeader) {
  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(0x42);
  etcdserverpb::LeaseRevokeResponse revoked;
  ASSERT_TRUE(stub_->LeaseRevoke(Context().get(), revoke, &revoked).ok());
  auto proposals = proposer_.proposals();
  ASSERT_EQ(proposals.size(), 1u);
  ASSERT_TRUE(proposals[0].has_lease_revoke());
  EXPECT_EQ(proposals[0].lease_revoke().id(), 0x42);
  EXPECT_EQ(revoked.header().member_id(), 0xaau);
}

TEST_F(LeaseServiceTest, KeepAliveOnThePrimaryAnswersEachRequestInTurn) {
  leases_.Set(5, 30);
  auto ctx = Context();
  auto stream = stub_->LeaseKeepAlive(ctx.get());
  for (int i = 0; i < 3; ++i) {
    LeaseKeepAliveResponse resp;
    ASSERT_TRUE(KeepAlive(stream.get(), 5, &resp));
    EXPECT_EQ(resp.id(), 5);
    EXPECT_EQ(resp.ttl(), 30);
    EXPECT_EQ(resp.header().member_id(), 0xaau);
    EXPECT_EQ(resp.header().revision(), 1);  // the member's store, empty
  }
  // A lease that does not exist answers TTL 0, and the stream goes on.
  LeaseKeepAliveResponse gone;
  ASSERT_TRUE(KeepAlive(stream.get(), 6, &gone));
  EXPECT_EQ(gone.id(), 6);
  EXPECT_EQ(gone.ttl(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(leases_.renewals(), 4);
  EXPECT_TRUE(leader_.calls().empty());
}

TEST_F(LeaseServiceTest, KeepAliveOnAFollowerIsForwardedToTheLeader) {
  leases_.SetPrimary(false);
  leader_.SetReply(KeepAliveReply(5, 12));
  auto ctx = Context();
  auto stream = stub_->LeaseKeepAlive(ctx.get());
  LeaseKeepAliveResponse resp;
  ASSERT_TRUE(KeepAlive(stream.get(), 5, &resp));
  EXPECT_EQ(resp.id(), 5);
  EXPECT_EQ(resp.ttl(), 12);
  auto calls = leader_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, lease::kPeerRenewMethod);
  LeaseKeepAliveRequest forwarded;
  ASSERT_TRUE(forwarded.ParseFromString(calls[0].body));
  EXPECT_EQ(forwarded.id(), 5);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(LeaseServiceTest, KeepAliveEndsWithTheLeadersTrouble) {
  leases_.SetPrimary(false);
  struct Case {
    Status leader_error;
    std::string message;
  };
  // No leader reachable; the leader no longer primary (a retryable change).
  for (const Case& c : {Case{Status(Code::kNoLeader), "etcdserver: no leader"},
                        Case{Status(Code::kNotLeader), "etcdserver: leader changed"}}) {
    leader_.SetReply(c.leader_error);
    auto ctx = Context();
    auto stream = stub_->LeaseKeepAlive(ctx.get());
    LeaseKeepAliveResponse resp;
    EXPECT_FALSE(KeepAlive(stream.get(), 5, &resp));
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(st.error_message(), c.message);
  }
}

TEST_F(LeaseServiceTest, KeepAliveThatAskedForALeaderEndsWhenTheMemberLosesIt) {
  leases_.Set(5, 30);
  auto ctx = Context(/*require_leader=*/true);
  auto stream = stub_->LeaseKeepAlive(ctx.get());
  LeaseKeepAliveResponse resp;
  ASSERT_TRUE(KeepAlive(stream.get(), 5, &resp));
  // The stream waits for its next request when the leader goes away.
  ASSERT_TRUE(monitor_.LoseLeaderForGood());
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
}

TEST_F(LeaseServiceTest, CallsThatAskForALeaderAreRefusedWithoutOne) {
  member_.leader = 0;
  auto ctx = Context(/*require_leader=*/true);
  auto stream = stub_->LeaseKeepAlive(ctx.get());
  LeaseKeepAliveResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
  EXPECT_EQ(leases_.renewals(), 0);
}

TEST_F(LeaseServiceTest, LearnersServeNoLeaseCall) {
  member_.learner = true;
  etcdserverpb::LeaseGrantResponse granted;
  grpc::Status st = Grant(0, 60, &granted);
  EXPECT_EQ(st.error_message(), "etcdserver: rpc not supported for learner");
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  st = TimeToLive(5, &ttl);
  EXPECT_EQ(st.error_message(), "etcdserver: rpc not supported for learner");
  auto ctx = Context();
  auto stream = stub_->LeaseKeepAlive(ctx.get());
  LeaseKeepAliveResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_EQ(stream->Finish().error_message(), "etcdserver: rpc not supported for learner");
  EXPECT_TRUE(proposer_.proposals().empty());
}

TEST_F(LeaseServiceTest, TimeToLiveOnThePrimaryAndForUnknownLeases) {
  leases_.Set(5, 30);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  ASSERT_TRUE(TimeToLive(5, &resp).ok());
  EXPECT_EQ(resp.id(), 5);
  EXPECT_EQ(resp.ttl(), 29);
  EXPECT_EQ(resp.grantedttl(), 30);
  ASSERT_EQ(resp.keys_size(), 1);
  EXPECT_EQ(resp.header().member_id(), 0xaau);
  // etcd answers a lease that does not exist with TTL -1, not an error.
  etcdserverpb::LeaseTimeToLiveResponse unknown;
  ASSERT_TRUE(TimeToLive(6, &unknown).ok());
  EXPECT_EQ(unknown.id(), 6);
  EXPECT_EQ(unknown.ttl(), -1);
  EXPECT_TRUE(leader_.calls().empty());
}

TEST_F(LeaseServiceTest, TimeToLiveOnAFollowerIsForwardedToTheLeader) {
  leases_.SetPrimary(false);
  etcdserverpb::LeaseTimeToLiveResponse leaders;
  leaders.set_id(5);
  leaders.set_ttl(8);
  leaders.set_grantedttl(10);
  leader_.SetReply(leaders.SerializeAsString());
  etcdserverpb::LeaseTimeToLiveResponse resp;
  ASSERT_TRUE(TimeToLive(5, &resp).ok());
  EXPECT_EQ(resp.ttl(), 8);
  EXPECT_EQ(resp.grantedttl(), 10);
  // The header is the member's that answered the client.
  EXPECT_EQ(resp.header().member_id(), 0xaau);
  auto calls = leader_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, lease::kPeerTimeToLiveMethod);
  etcdserverpb::LeaseTimeToLiveRequest forwarded;
  ASSERT_TRUE(forwarded.ParseFromString(calls[0].body));
  EXPECT_EQ(forwarded.id(), 5);
  EXPECT_TRUE(forwarded.keys());

  // Without a leader the client is told so.
  leader_.SetReply(Status(Code::kNoLeader));
  grpc::Status st = TimeToLive(5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
}

TEST_F(LeaseServiceTest, LeasesListsWhatTheMemberHasApplied) {
  leases_.SetPrimary(false);  // any member answers
  leases_.Set(3, 10);
  leases_.Set(9, 10);
  etcdserverpb::LeaseLeasesResponse resp;
  ASSERT_TRUE(stub_->LeaseLeases(Context().get(), {}, &resp).ok());
  ASSERT_EQ(resp.leases_size(), 2);
  EXPECT_EQ(resp.leases(0).id(), 3);
  EXPECT_EQ(resp.leases(1).id(), 9);
  EXPECT_EQ(resp.header().member_id(), 0xaau);
  EXPECT_TRUE(leader_.calls().empty());
}

}  // namespace
}  // namespace etcdpp::api
