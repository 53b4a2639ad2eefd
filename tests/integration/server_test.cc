// In-process tests of EtcdServer: the write path (propose, WAL, apply),
// linearizable reads, restart from WAL and from snapshots.
#include "server/etcd_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "integration/single_member_fixture.h"
#include "metrics/etcd_metrics.h"
#include "mvcc/kv_store.h"
#include "raft/raft.h"
#include "server/interfaces.h"
#include "server/kv_applier.h"
#include "server/read_index.h"
#include "server/store_slot.h"

namespace etcdpp::server {
namespace {

class ServerTest : public testing::SingleMemberTest {
 protected:
  ServerTest() : SingleMemberTest("etcdpp-server-test-") {}
};

TEST_F(ServerTest, PutIsAppliedWithIncreasingRevisions) {
  StartServer();
  etcdserverpb::PutResponse r1, r2;
  ASSERT_TRUE(Put("a", "1", &r1).ok());
  ASSERT_TRUE(Put("b", "2", &r2).ok());
  EXPECT_EQ(r1.header().revision() + 1, r2.header().revision());
  EXPECT_EQ(Get("a"), "1");
  EXPECT_EQ(Get("b"), "2");
  EXPECT_NE(server_->member_id(), 0u);
  EXPECT_EQ(server_->leader_id(), server_->member_id());
}

TEST_F(ServerTest, ConcurrentProposalsAreAllApplied) {
  StartServer();
  constexpr int kWrites = 500;
  std::vector<etcdserverpb::PutResponse> responses(kWrites);
  std::vector<std::promise<Status>> done(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    internalpb::InternalRaftRequest request;
    request.mutable_put()->set_key(fmt::format("k{}", i));
    request.mutable_put()->set_value(std::to_string(i));
    server_->Propose(std::move(request), &responses[i],
                     [&done, i](const Status& st) { done[i].set_value(st); });
  }
  std::set<int64_t> revisions;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(done[i].get_future().get().ok());
    revisions.insert(responses[i].header().revision());
  }
  // Every put got its own revision.
  EXPECT_EQ(revisions.size(), static_cast<size_t>(kWrites));
  EXPECT_EQ(Get("k499"), "499");
}

// Proposes a put from a thread allowed to propose inline (the HTTP/2
// front's loops are), runs what it deferred as the front does once its
// events are handled, and waits for the answer.
Status PutFromClientThread(EtcdServer* server, const std::string& key, const std::string& value,
                           etcdserverpb::PutResponse* response) {
  internalpb::InternalRaftRequest request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  std::promise<Status> done;
  server->Propose(std::move(request), response, [&done](const Status& st) { done.set_value(st); });
  InlineProposals::RunDeferred();
  auto answer = done.get_future();
  if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return Status(Code::kTimeout, "no answer within 10 s");
  }
  return answer.get();
}

// A lone write from a client thread skips the raft loop's wake-up: the
// thread proposes it and flushes the WAL itself (server/raft_node.h).
TEST_F(ServerTest, LoneWritesFromAClientThreadAreProposedThereAndSurviveARestart) {
  StartServer();
  ASSERT_TRUE(WaitLinearizable().ok());  // elected, its first entries applied
  constexpr int kWrites = 50;
  uint64_t inline_before = 0;
  uint64_t inline_after = 0;
  std::vector<int64_t> revisions;
  std::thread client([&] {
    InlineProposals::AllowOnThisThread();
    inline_before = metrics::ProposalsInlineTotal().value();
    for (int i = 0; i < kWrites; ++i) {
      etcdserverpb::PutResponse r;
      Status st = PutFromClientThread(server_.get(), fmt::format("k{}", i), std::to_string(i), &r);
      ASSERT_TRUE(st.ok()) << st.ToString();
      revisions.push_back(r.header().revision());
    }
    inline_after = metrics::ProposalsInlineTotal().value();
  });
  client.join();
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kWrites));
  for (size_t i = 1; i < revisions.size(); ++i) EXPECT_EQ(revisions[i], revisions[i - 1] + 1);
  // Each write found the loop asleep with nothing in flight, but for the
  // rare one that met a tick of the loop (every 10 ms here).
  EXPECT_GE(inline_after - inline_before, static_cast<uint64_t>(kWrites / 2));
  server_.reset();

  StartServer();
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(Get(fmt::format("k{}", i)), std::to_string(i));
}

// Client threads proposing inline, and a thread that is not allowed to,
// all at once: each client thread's writes are applied in its order, every
// write gets its own revision, and all of them survive a restart.
TEST_F(ServerTest, ClientThreadsProposingInlineBesideTheLoopAreAllApplied) {
  StartServer();
  constexpr int kThreads = 4;
  constexpr int kWrites = 100;
  std::vector<std::vector<int64_t>> revisions(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t <= kThreads; ++t) {
    threads.emplace_back([&, t] {
      const bool client_thread = t < kThreads;
      if (client_thread) InlineProposals::AllowOnThisThread();
      for (int i = 0; i < kWrites; ++i) {
        etcdserverpb::PutResponse r;
        const std::string key = fmt::format("t{}-{}", t, i);
        Status st = client_thread ? PutFromClientThread(server_.get(), key, "v", &r)
                                  : Put(server_.get(), key, "v", &r);
        ASSERT_TRUE(st.ok()) << st.ToString();
        revisions[t].push_back(r.header().revision());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<int64_t> all;
  for (const std::vector<int64_t>& mine : revisions) {
    ASSERT_EQ(mine.size(), static_cast<size_t>(kWrites));
    for (size_t i = 1; i < mine.size(); ++i) EXPECT_LT(mine[i - 1], mine[i]);
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>((kThreads + 1) * kWrites));
  server_.reset();

  StartServer();
  for (int t = 0; t <= kThreads; ++t) EXPECT_EQ(Get(fmt::format("t{}-{}", t, kWrites - 1)), "v");
}

// --backend-batch-interval: answered writes wait in the open
// transaction (the delay here is far longer than the test), and every kind
// of reader that must see them commits them at once; they survive a stop.
TEST_F(ServerTest, HeldBackCommitIsForcedByReadersAndSurvivesStop) {
  options_.backend_commit_delay = std::chrono::hours(1);
  StartServer();
  const uint64_t committed_before = server_->commit_index();
  ASSERT_TRUE(Put("a", "1").ok());
  EXPECT_EQ(StoredValue("a"), "<absent>");  // answered, not yet committed
  // Status reports it applied, as etcd does once it answered.
  EXPECT_GT(server_->applied_index(), committed_before);
  std::promise<Status> visible;
  server_->WaitAnsweredWrites([&visible](const Status& st) { visible.set_value(st); });
  ASSERT_TRUE(visible.get_future().get().ok());
  EXPECT_EQ(StoredValue("a"), "1");

  ASSERT_TRUE(Put("b", "2").ok());
  EXPECT_EQ(Get("b"), "2");  // a linearizable read

  ASSERT_TRUE(Put("c", "3").ok());
  server_.reset();
  options_.backend_commit_delay = std::chrono::milliseconds(0);
  StartServer();
  EXPECT_EQ(Get("c"), "3");
}

TEST_F(ServerTest, RestartReplaysTheWal) {
  StartServer();
  etcdserverpb::PutResponse r;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put("key", std::to_string(i), &r).ok());
  const int64_t last_revision = r.header().revision();
  const uint64_t member_id = server_->member_id();
  server_.reset();

  StartServer();
  EXPECT_EQ(server_->member_id(), member_id);
  EXPECT_EQ(Get("key"), "19");
  ASSERT_TRUE(Put("key", "20", &r).ok());
  EXPECT_EQ(r.header().revision(), last_revision + 1);
}

TEST_F(ServerTest, SnapshotsCutTheWalAndRestartFromThem) {
  options_.snapshot_count = 50;
  options_.snapshot_catchup_entries = 10;
  StartServer();
  etcdserverpb::PutResponse r;
  for (int i = 0; i < 400; ++i)
    ASSERT_TRUE(Put(fmt::format("k{}", i % 7), fmt::format("v{}", i), &r).ok());
  const int64_t last_revision = r.header().revision();
  server_.reset();
  ASSERT_FALSE(std::filesystem::is_empty(dir_ / "member" / "snap"));

  StartServer();
  EXPECT_EQ(Get("k0"), "v399");
  EXPECT_EQ(Get("k6"), "v398");
  ASSERT_TRUE(Put("x", "y", &r).ok());
  EXPECT_EQ(r.header().revision(), last_revision + 1);
}

// Large entries make a snapshot due long before the count does, so the
// in-memory log stays small; the member restarts from that snapshot.
TEST_F(ServerTest, SnapshotsAreDueByEntryBytesToo) {
  options_.snapshot_count = 1000000;
  options_.snapshot_bytes = 64 << 10;
  options_.snapshot_catchup_bytes = 16 << 10;
  StartServer();
  etcdserverpb::PutResponse r;
  const std::string value(4096, 'v');
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(Put(fmt::format("k{}", i % 7), value + std::to_string(i), &r).ok());
  }
  const int64_t last_revision = r.header().revision();
  server_.reset();
  int snap_files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "member" / "snap")) {
    if (f.path().extension() == ".snap") ++snap_files;
  }
  EXPECT_GT(snap_files, 0) << "240 KiB of entries took no snapshot";

  StartServer();
  EXPECT_EQ(Get("k3"), value + "59");
  EXPECT_EQ(Get("k2"), value + "58");
  ASSERT_TRUE(Put("x", "y", &r).ok());
  EXPECT_EQ(r.header().revision(), last_revision + 1);
}

TEST_F(ServerTest, OversizedRequestIsRefused) {
  options_.max_request_bytes = 1024;
  StartServer();
  etcdserverpb::PutResponse r;
  Status st = Put("big", std::string(4096, 'x'), &r);
  EXPECT_EQ(st.code(), Code::kRequestTooLarge);
  EXPECT_EQ(Get("big"), "<absent>");
}

TEST_F(ServerTest, SecondServerOnTheSameDataDirIsRefused) {
  StartServer();
  auto second = EtcdServer::Start(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().ToString();
}

TEST_F(ServerTest, StopFailsPendingRequestsWithStopped) {
  StartServer();
  server_->Stop();
  etcdserverpb::PutResponse r;
  EXPECT_EQ(Put("a", "1", &r).code(), Code::kStopped);
}

// A replaced store is handed back for closing only once its last reader has
// let go; the wait is on the readers' releases, from any thread.
TEST(StoreSlotTest, RetireWaitsForTheLastReaderOfTheOldStore) {
  const auto base = std::filesystem::temp_directory_path() /
                    ("etcdpp-store-slot-" + std::to_string(std::random_device()()));
  auto first = mvcc::KvStore::Open((base / "a").string());
  auto second = mvcc::KvStore::Open((base / "b").string());
  ASSERT_TRUE(first.ok() && second.ok());
  mvcc::KvStore* old_raw = first->get();
  StoreSlot slot(std::move(first.value()));
  std::shared_ptr<mvcc::KvStore> reader = slot.Get();
  ASSERT_EQ(reader.get(), old_raw);

  slot.Publish(std::move(second.value()));
  EXPECT_NE(slot.Get().get(), old_raw);  // new readers get the new store
  std::promise<void> release;
  std::thread holder([&] {
    release.get_future().wait();
    reader.reset();  // the last handle to the old store, on another thread
  });
  auto retired = std::async(std::launch::async, [&] { return slot.Retire(); });
  EXPECT_EQ(retired.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  std::shared_ptr<mvcc::KvStore> old = retired.get();
  holder.join();
  EXPECT_EQ(old.get(), old_raw);
  EXPECT_EQ(old.use_count(), 1);
  old.reset();
  std::filesystem::remove_all(base);
}

// One ReadIndex round in flight; reads arriving meanwhile share the next.
TEST(ReadIndexBatcherTest, OneRoundInFlightAndTheNextBatchWaits) {
  ReadIndexBatcher batcher;
  std::vector<std::string> outcomes;
  auto read = [&](std::string name) {
    return [&outcomes, name](const Status& st) { outcomes.push_back(name + ":" + st.ToString()); };
  };
  const Clock::TimePoint t0 = Clock::Real()->Now();
  batcher.Add(read("a"));
  batcher.Add(read("b"));
  std::optional<std::string> first = batcher.MaybeStart(t0, std::chrono::seconds(5));
  ASSERT_TRUE(first.has_value());
  batcher.Add(read("c"));
  EXPECT_FALSE(batcher.CanStart());
  EXPECT_FALSE(batcher.MaybeStart(t0, std::chrono::seconds(5)).has_value());

  // A state for another context is ignored; the matching one confirms a and b.
  EXPECT_FALSE(batcher.Confirm(raft::ReadState{7, "stale-ctx"}).has_value());
  std::optional<ConfirmedReads> confirmed = batcher.Confirm(raft::ReadState{42, *first});
  ASSERT_TRUE(confirmed.has_value());
  EXPECT_EQ(confirmed->index, 42u);
  EXPECT_EQ(confirmed->callbacks.size(), 2u);

  // c goes out in the next round, which then expires on its deadline.
  std::optional<std::string> second = batcher.MaybeStart(t0, std::chrono::seconds(5));
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(batcher.OnTick(t0 + std::chrono::seconds(1)), second);  // asked again
  EXPECT_FALSE(batcher.OnTick(t0 + std::chrono::seconds(5)).has_value());
  EXPECT_EQ(outcomes, std::vector<std::string>{"c:Timeout"});

  AppliedReadQueue queue;
  queue.Add(std::move(*confirmed));
  queue.RunUpTo(41);
  EXPECT_EQ(outcomes.size(), 1u);
  queue.RunUpTo(42);
  EXPECT_EQ(outcomes, (std::vector<std::string>{"c:Timeout", "a:OK", "b:OK"}));
}

// The leader keys pending ReadIndex requests by context, whichever member
// sent them: two members' batchers (or one member's before and after a
// restart) must not hand out the same contexts.
TEST(ReadIndexBatcherTest, ContextsDifferBetweenBatchers) {
  const Clock::TimePoint now = Clock::Real()->Now();
  std::set<std::string> seen;
  for (int member = 0; member < 8; ++member) {
    ReadIndexBatcher batcher;
    for (int round = 0; round < 4; ++round) {
      batcher.Add([](const Status&) {});
      std::optional<std::string> ctx = batcher.MaybeStart(now, std::chrono::seconds(5));
      ASSERT_TRUE(ctx.has_value());
      EXPECT_TRUE(seen.insert(*ctx).second) << "context reused";
      ASSERT_TRUE(batcher.Confirm(raft::ReadState{1, *ctx}).has_value());
    }
  }
}

}  // namespace
}  // namespace etcdpp::server
