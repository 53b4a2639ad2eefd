// A member's maintenance in process: defragmentation while clients write
// and read, the backend quota and its NOSPACE alarm (through restart and
// recovery), and auto-compaction driven by a fake clock.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "integration/single_member_fixture.h"
#include "mvcc/kv_store.h"
#include "server/etcd_server.h"
#include "server/kv_applier.h"

namespace etcdpp::server {
namespace {

// Waits (up to ten seconds of real time) until `done` holds.
template <typename Predicate>
bool Eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class MaintenanceTest : public testing::SingleMemberTest {
 protected:
  MaintenanceTest() : SingleMemberTest("etcdpp-maintenance-test-") {}

  void SetUp() override {
    SingleMemberTest::SetUp();
    // Off by default; on here, where hashes, defragmentation and the
    // store's sizes follow answered writes at once (docs/durability.md).
    options_.answer_before_commit = true;
  }
  // The store once every answered write is committed to it: the member's
  // own readers wait for that commit, so the test's direct looks do too.
  std::shared_ptr<mvcc::KvStore> CommittedStore() {
    std::promise<Status> visible;
    server_->WaitAnsweredWrites([&visible](const Status& st) { visible.set_value(st); });
    EXPECT_TRUE(visible.get_future().get().ok());
    return server_->store();
  }
  std::string CommittedValue(const std::string& key) {
    CommittedStore();
    return StoredValue(key);
  }

  Status DeletePrefix(const std::string& prefix) {
    internalpb::InternalRaftRequest request;
    request.mutable_delete_range()->set_key(prefix);
    std::string end = prefix;
    end.back()++;
    request.mutable_delete_range()->set_range_end(end);
    etcdserverpb::DeleteRangeResponse response;
    return Propose(std::move(request), &response);
  }
  Status Compact(int64_t revision) {
    internalpb::InternalRaftRequest request;
    request.mutable_compaction()->set_revision(revision);
    etcdserverpb::CompactionResponse response;
    return Propose(std::move(request), &response);
  }
  Status Defragment() {
    std::promise<Status> done;
    server_->Defragment([&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
  }
  Status Disarm(uint64_t member, etcdserverpb::AlarmType type) {
    etcdserverpb::AlarmRequest request;
    request.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    request.set_memberid(member);
    request.set_alarm(type);
    etcdserverpb::AlarmResponse response;
    std::promise<Status> done;
    server_->ChangeAlarm(request, &response, [&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
  }
  bool NoSpaceRaised() {
    for (const auto& a : server_->Alarms()) {
      if (a.alarm() == etcdserverpb::NOSPACE && a.memberid() == server_->member_id()) return true;
    }
    return false;
  }

  // For tests on a fake clock; TearDown stops the member, which reads it,
  // before it is destroyed.
  FakeClock fake_clock_;
};

TEST_F(MaintenanceTest, DefragmentShrinksTheStoreKeepsRacingWritesAndNeverStopsReads) {
  StartServer();
  const std::string value(1024, 'v');
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(Put("old/" + std::to_string(i), value).ok());
  ASSERT_TRUE(DeletePrefix("old/").ok());
  ASSERT_TRUE(Compact(CommittedStore()->CurrentRevision()).ok());
  ASSERT_TRUE(Put("kept", "1").ok());
  // The history goes in shares, the most of it while the member is idle.
  ASSERT_TRUE(Eventually([&] { return !CommittedStore()->CompactionPending(); }));
  const uint64_t size_before = CommittedStore()->DbSizeBytes();
  EXPECT_LT(CommittedStore()->DbSizeInUseBytes(), size_before / 2);

  // A reader holding the old store keeps it alive; the defragmentation then
  // waits for it, while new readers already use the copy.
  std::shared_ptr<mvcc::KvStore> old_store = CommittedStore();
  std::promise<Status> defragmented;
  server_->Defragment([&defragmented](const Status& st) { defragmented.set_value(st); });
  std::vector<std::future<Status>> racing;
  for (int i = 0; i < 50; ++i) {
    racing.push_back(std::async(std::launch::async,
                                [this, i] { return Put("racing/" + std::to_string(i), "x"); }));
  }
  ASSERT_TRUE(Eventually([&] { return server_->store().get() != old_store.get(); }));
  EXPECT_EQ(CommittedValue("kept"), "1")
      << "the copy serves reads while the old store is still held";
  {
    auto old_view = old_store->Read();
    ASSERT_TRUE(old_view.ok()) << "the old store still serves its holder";
  }
  old_store.reset();
  ASSERT_TRUE(defragmented.get_future().get().ok());
  for (auto& f : racing) EXPECT_TRUE(f.get().ok());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(CommittedValue("racing/" + std::to_string(i)), "x") << i;
  EXPECT_LT(CommittedStore()->DbSizeBytes(), size_before / 2);
  EXPECT_LE(CommittedStore()->DbSizeInUseBytes(), CommittedStore()->DbSizeBytes());

  // The copy is the store from now on, across restart.
  server_.reset();
  StartServer();
  EXPECT_EQ(CommittedValue("kept"), "1");
  EXPECT_EQ(CommittedValue("racing/49"), "x");
}

TEST_F(MaintenanceTest, QuotaRaisesNoSpaceWhichSurvivesRestartUntilDisarmedAfterDefrag) {
  options_.quota_backend_bytes = 2 << 20;
  StartServer();
  const std::string value(100 * 1024, 'q');
  Status st;
  int written = 0;
  for (; written < 100; ++written) {
    st = Put("fill/" + std::to_string(written), value);
    if (!st.ok()) break;
  }
  ASSERT_EQ(st.code(), Code::kNoSpace) << st.ToString();
  EXPECT_TRUE(NoSpaceRaised()) << "raised before the write is answered";
  EXPECT_EQ(Put("small", "1").code(), Code::kNoSpace);
  internalpb::InternalRaftRequest grant;
  grant.mutable_lease_grant()->set_ttl(60);
  etcdserverpb::LeaseGrantResponse granted;
  EXPECT_EQ(Propose(grant, &granted).code(), Code::kNoSpace);
  // Reads are served.
  EXPECT_EQ(CommittedValue("fill/0"), value);

  // The alarm is replicated state: it survives a restart.
  server_.reset();
  StartServer();
  EXPECT_TRUE(NoSpaceRaised());
  EXPECT_EQ(Put("small", "1").code(), Code::kNoSpace);

  // Deletes and compaction still go through; defrag gives the space back;
  // writes resume once the alarm is disarmed.
  ASSERT_TRUE(DeletePrefix("fill/").ok());
  ASSERT_TRUE(Compact(CommittedStore()->CurrentRevision()).ok());
  ASSERT_TRUE(Defragment().ok());
  EXPECT_LT(CommittedStore()->DbSizeBytes(), options_.quota_backend_bytes / 2);
  EXPECT_EQ(Put("small", "1").code(), Code::kNoSpace) << "still raised until disarmed";
  ASSERT_TRUE(Disarm(server_->member_id(), etcdserverpb::NOSPACE).ok());
  EXPECT_FALSE(NoSpaceRaised());
  EXPECT_TRUE(Put("small", "1").ok());
  EXPECT_EQ(CommittedValue("small"), "1");
}

TEST_F(MaintenanceTest, RevisionAutoCompactionKeepsTheLastRevisionsOnTheFakeClock) {
  FakeClock& clock = fake_clock_;
  options_.clock = &clock;
  options_.auto_compaction.mode = AutoCompactionOptions::Mode::kRevision;
  options_.auto_compaction.revisions = 5;
  StartServer();
  // The single member elects itself once its election timeout passes.
  ASSERT_TRUE(Eventually([&] {
    clock.Advance(options_.heartbeat_interval);
    return server_->leader_id() == server_->member_id();
  }));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put("k", std::to_string(i)).ok());
  const int64_t revision = CommittedStore()->CurrentRevision();
  EXPECT_EQ(CommittedStore()->CompactRevision(), 0);
  // Revision mode steps every five minutes.
  clock.Advance(std::chrono::minutes(5));
  ASSERT_TRUE(Eventually([&] { return CommittedStore()->CompactRevision() == revision - 5; }))
      << "compact revision " << CommittedStore()->CompactRevision();
}

}  // namespace
}  // namespace etcdpp::server
