// The Maintenance and Cluster services against a fake member: they report
// what the member's view says and pass membership changes and leader moves
// to its admin interface, with etcd's errors on the way back.
#include "api/maintenance_service.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <fstream>

#include "mvcc/kv_store.h"
#include "unit/api/fake_member.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::api {
namespace {

using testing::Context;
using testing::FakeMember;
using testing::InProcessServer;

server::Member MakeMember(uint64_t id, const std::string& name, bool learner = false) {
  server::Member m;
  m.id = id;
  m.name = name;
  m.peer_urls = {"http://127.0.0.1:" + std::to_string(2380 + id)};
  m.client_urls = {"http://127.0.0.1:" + std::to_string(2379 + id)};
  m.is_learner = learner;
  return m;
}

class MaintenanceServiceTest : public ::testing::Test {
 protected:
  MaintenanceServiceTest()
      : service_(&member_, &member_),
        server_(&service_),
        stub_(etcdserverpb::Maintenance::NewStub(server_.channel())) {}

  FakeMember member_;
  MaintenanceService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> stub_;
};

TEST_F(MaintenanceServiceTest, StatusReportsTheMembersRaftState) {
  etcdserverpb::StatusResponse resp;
  ASSERT_TRUE(stub_->Status(Context().get(), etcdserverpb::StatusRequest(), &resp).ok());
  EXPECT_EQ(resp.header().member_id(), 0xaau);
  EXPECT_EQ(resp.leader(), 1u);
  EXPECT_EQ(resp.raftindex(), 42u);
  EXPECT_EQ(resp.raftappliedindex(), 41u);
  EXPECT_EQ(resp.raftterm(), 7u);
  EXPECT_EQ(resp.version(), kEtcdApiVersion);
  EXPECT_GT(resp.dbsize(), 0);
}

TEST_F(MaintenanceServiceTest, StatusIsServedByALearner) {
  member_.learner = true;
  etcdserverpb::StatusResponse resp;
  EXPECT_TRUE(stub_->Status(Context().get(), etcdserverpb::StatusRequest(), &resp).ok());
  etcdserverpb::HashKVResponse hash;
  grpc::Status st = stub_->HashKV(Context().get(), etcdserverpb::HashKVRequest(), &hash);
  EXPECT_EQ(st.error_message(), "etcdserver: rpc not supported for learner");
}

TEST_F(MaintenanceServiceTest, MoveLeaderAsksTheAdminWithinTheRequestTimeout) {
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(3);
  etcdserverpb::MoveLeaderResponse resp;
  ASSERT_TRUE(stub_->MoveLeader(Context().get(), req, &resp).ok());
  EXPECT_EQ(member_.last_transferee.get(), 3u);
  // The client's deadline (10 s) is later than the member's request timeout.
  EXPECT_EQ(member_.last_transfer_timeout.get(), std::chrono::milliseconds(7000));
  EXPECT_EQ(resp.header().member_id(), 0xaau);
}

TEST_F(MaintenanceServiceTest, MoveLeaderErrorsAreEtcds) {
  member_.admin_error = Status(Code::kNotLeader);
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(3);
  etcdserverpb::MoveLeaderResponse resp;
  grpc::Status st = stub_->MoveLeader(Context().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "etcdserver: not leader");
}

void PutKey(FakeMember& member, const std::string& key, const std::string& value) {
  internalpb::InternalRaftRequest request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  etcdserverpb::PutResponse resp;
  member.Propose(request, &resp, [](const Status& st) { ASSERT_TRUE(st.ok()) << st.ToString(); });
}

TEST_F(MaintenanceServiceTest, SnapshotStreamsAStoreCopyEndingInItsSha256) {
  // Enough data for several chunks.
  for (int i = 0; i < 200; ++i) PutKey(member_, "key" + std::to_string(i), std::string(1000, 'v'));
  auto context = Context();
  auto reader = stub_->Snapshot(context.get(), etcdserverpb::SnapshotRequest());
  std::vector<etcdserverpb::SnapshotResponse> chunks;
  etcdserverpb::SnapshotResponse chunk;
  while (reader->Read(&chunk)) chunks.push_back(chunk);
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(chunks.size(), 3u);
  std::string data;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    data += chunks[i].blob();
    // remaining_bytes counts what is left of the copy after this chunk.
    EXPECT_EQ(chunks[i].remaining_bytes(),
              i + 2 == chunks.size()
                  ? 0u
                  : chunks[i + 1].remaining_bytes() + chunks[i + 1].blob().size());
  }
  EXPECT_EQ(chunks[0].blob().size(), 32u * 1024);
  const etcdserverpb::SnapshotResponse& last = chunks.back();
  EXPECT_EQ(last.remaining_bytes(), 0u);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  EXPECT_EQ(last.blob(), std::string(reinterpret_cast<const char*>(digest), sizeof(digest)));

  // The copy is a store that opens with every key.
  etcdpp::testing::TempDir restored;
  std::ofstream(restored.path() + "/data.mdb", std::ios::binary) << data;
  auto store = mvcc::KvStore::Open(restored.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto view = (*store)->Read();
  ASSERT_TRUE(view.ok());
  auto range = (*view)->Range("key", std::string("kez"), mvcc::RangeOptions{});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->count, 200);
  EXPECT_EQ(range->rev, member_.store()->CurrentRevision());
}

TEST_F(MaintenanceServiceTest, HashCoversTheWholeBackendAndOnlyChangesWithIt) {
  PutKey(member_, "a", "1");
  etcdserverpb::HashResponse first, again, after;
  ASSERT_TRUE(stub_->Hash(Context().get(), etcdserverpb::HashRequest(), &first).ok());
  ASSERT_TRUE(stub_->Hash(Context().get(), etcdserverpb::HashRequest(), &again).ok());
  EXPECT_EQ(first.hash(), again.hash());
  EXPECT_EQ(first.header().revision(), member_.store()->CurrentRevision());
  PutKey(member_, "a", "2");
  ASSERT_TRUE(stub_->Hash(Context().get(), etcdserverpb::HashRequest(), &after).ok());
  EXPECT_NE(first.hash(), after.hash());
}

TEST_F(MaintenanceServiceTest, ALearnerRefusesSnapshotDefragmentAndHash) {
  member_.learner = true;
  auto context = Context();
  auto reader = stub_->Snapshot(context.get(), etcdserverpb::SnapshotRequest());
  etcdserverpb::SnapshotResponse chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_message(), "etcdserver: rpc not supported for learner");
  etcdserverpb::DefragmentResponse defrag;
  EXPECT_EQ(stub_->Defragment(Context().get(), etcdserverpb::DefragmentRequest(), &defrag)
                .error_message(),
            "etcdserver: rpc not supported for learner");
  etcdserverpb::HashResponse hash;
  EXPECT_EQ(stub_->Hash(Context().get(), etcdserverpb::HashRequest(), &hash).error_message(),
            "etcdserver: rpc not supported for learner");
}

TEST_F(MaintenanceServiceTest, WithoutABackendAdminDefragmentSaysItIsUnbuilt) {
  etcdserverpb::DefragmentResponse resp;
  grpc::Status st = stub_->Defragment(Context().get(), etcdserverpb::DefragmentRequest(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// A backend admin with one raised alarm; changes are not faked.
class OneAlarmBackend final : public server::BackendAdmin {
 public:
  void Defragment(server::ProposeCallback done) override { done(Status::OK()); }
  std::vector<etcdserverpb::AlarmMember> Alarms() const override {
    etcdserverpb::AlarmMember a;
    a.set_memberid(0xaa);
    a.set_alarm(etcdserverpb::NOSPACE);
    return {a};
  }
  void ChangeAlarm(const etcdserverpb::AlarmRequest&, etcdserverpb::AlarmResponse*,
                   server::ProposeCallback done) override {
    done(Status::Unimplemented("not faked"));
  }
};

class AlarmGetTest : public ::testing::Test {
 protected:
  AlarmGetTest()
      : service_(&member_, &member_, &backend_, nullptr, &member_),
        server_(&service_),
        stub_(etcdserverpb::Maintenance::NewStub(server_.channel())) {}

  FakeMember member_;
  OneAlarmBackend backend_;
  MaintenanceService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> stub_;
};

TEST_F(AlarmGetTest, ListsTheAlarmsAfterAReadIndex) {
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  etcdserverpb::AlarmResponse resp;
  ASSERT_TRUE(stub_->Alarm(Context().get(), req, &resp).ok());
  EXPECT_EQ(member_.barrier_waits.get(), 1);
  ASSERT_EQ(resp.alarms_size(), 1);
  EXPECT_EQ(resp.alarms(0).alarm(), etcdserverpb::NOSPACE);
}

TEST_F(AlarmGetTest, AFailedReadIndexFailsTheGetWithEtcdsError) {
  member_.barrier_error = Status(Code::kTimeout);
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  etcdserverpb::AlarmResponse resp;
  grpc::Status st = stub_->Alarm(Context().get(), req, &resp);
  EXPECT_EQ(st.error_message(), "etcdserver: request timed out");
  EXPECT_EQ(resp.alarms_size(), 0);
}

class ClusterServiceTest : public ::testing::Test {
 protected:
  ClusterServiceTest()
      : service_(&member_, &member_),
        server_(&service_),
        stub_(etcdserverpb::Cluster::NewStub(server_.channel())) {
    member_.members = {MakeMember(1, "one"), MakeMember(2, "two")};
  }

  FakeMember member_;
  ClusterService service_;
  InProcessServer server_;
  std::unique_ptr<etcdserverpb::Cluster::Stub> stub_;
};

TEST_F(ClusterServiceTest, MemberListShowsEveryMember) {
  etcdserverpb::MemberListResponse resp;
  ASSERT_TRUE(stub_->MemberList(Context().get(), etcdserverpb::MemberListRequest(), &resp).ok());
  ASSERT_EQ(resp.members_size(), 2);
  EXPECT_EQ(resp.members(0).id(), 1u);
  EXPECT_EQ(resp.members(0).name(), "one");
  EXPECT_EQ(resp.members(1).peerurls(0), "http://127.0.0.1:2382");
  EXPECT_EQ(resp.header().cluster_id(), 0xccu);
}

TEST_F(ClusterServiceTest, MemberAddAnswersWithTheNewMemberAndTheList) {
  etcdserverpb::MemberAddRequest req;
  req.add_peerurls("http://127.0.0.1:9999");
  req.set_islearner(true);
  etcdserverpb::MemberAddResponse resp;
  ASSERT_TRUE(stub_->MemberAdd(Context().get(), req, &resp).ok());
  EXPECT_EQ(resp.member().id(), 0x1234u);
  EXPECT_TRUE(resp.member().islearner());
  EXPECT_EQ(resp.member().peerurls(0), "http://127.0.0.1:9999");
  EXPECT_EQ(resp.members_size(), 3);
}

TEST_F(ClusterServiceTest, MembershipErrorsAreEtcds) {
  member_.admin_error = Status(Code::kMemberNotFound);
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(9);
  etcdserverpb::MemberRemoveResponse resp;
  grpc::Status st = stub_->MemberRemove(Context().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "etcdserver: member not found");
  EXPECT_EQ(member_.admin_calls.get(), std::vector<std::string>{"remove 9"});
}

TEST_F(ClusterServiceTest, RemoveUpdatePromoteReachTheAdmin) {
  member_.members.Update([](std::vector<server::Member>& all) {
    all.push_back(MakeMember(3, "three", /*learner=*/true));
  });
  etcdserverpb::MemberPromoteRequest promote;
  promote.set_id(3);
  etcdserverpb::MemberPromoteResponse promoted;
  ASSERT_TRUE(stub_->MemberPromote(Context().get(), promote, &promoted).ok());
  ASSERT_EQ(promoted.members_size(), 3);
  EXPECT_FALSE(promoted.members(2).islearner());

  etcdserverpb::MemberUpdateRequest update;
  update.set_id(2);
  update.add_peerurls("http://127.0.0.1:7777");
  etcdserverpb::MemberUpdateResponse updated;
  ASSERT_TRUE(stub_->MemberUpdate(Context().get(), update, &updated).ok());
  EXPECT_EQ(updated.members(1).peerurls(0), "http://127.0.0.1:7777");

  etcdserverpb::MemberRemoveRequest remove;
  remove.set_id(1);
  etcdserverpb::MemberRemoveResponse removed;
  ASSERT_TRUE(stub_->MemberRemove(Context().get(), remove, &removed).ok());
  EXPECT_EQ(removed.members_size(), 2);
  EXPECT_EQ(member_.admin_calls.get(),
            (std::vector<std::string>{"promote 3", "update 2", "remove 1"}));
}

TEST_F(ClusterServiceTest, LearnerRefusesMembershipCalls) {
  member_.learner = true;
  etcdserverpb::MemberListResponse resp;
  grpc::Status st = stub_->MemberList(Context().get(), etcdserverpb::MemberListRequest(), &resp);
  EXPECT_EQ(st.error_message(), "etcdserver: rpc not supported for learner");
}

}  // namespace
}  // namespace etcdpp::api
