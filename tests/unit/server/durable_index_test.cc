#include "server/durable_index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace etcdpp::server {
namespace {

using namespace std::chrono_literals;

TEST(DurableIndexTest, AReleaseAlreadyDurableRunsAtOnceOnTheCaller) {
  DurableIndex durable(5);
  std::thread::id ran_on;
  durable.RunWhenDurable(5, [&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(DurableIndexTest, AReleaseWaitsForTheSyncThatReachesItAndRunsOnItsThread) {
  DurableIndex durable(5);
  std::vector<int> ran;
  durable.RunWhenDurable(6, [&] { ran.push_back(6); });
  durable.RunWhenDurable(8, [&] { ran.push_back(8); });
  EXPECT_TRUE(ran.empty());
  std::thread::id ran_on;
  durable.RunWhenDurable(8, [&] { ran_on = std::this_thread::get_id(); });
  std::thread syncer([&] { durable.Set(7); });
  syncer.join();
  EXPECT_EQ(ran, std::vector<int>{6});
  std::thread::id syncer_id;
  std::thread second([&] {
    syncer_id = std::this_thread::get_id();
    durable.Set(8);
  });
  second.join();
  EXPECT_EQ(ran, (std::vector<int>{6, 8}));
  EXPECT_EQ(ran_on, syncer_id);
}

TEST(DurableIndexTest, ReleasesRunInQueueOrderEvenWhenOneIsAlreadyDurable) {
  // Queued behind a release that still waits, a durable one waits too: an
  // answer never overtakes an earlier batch's.
  DurableIndex durable(10);
  std::vector<int> ran;
  durable.RunWhenDurable(12, [&] { ran.push_back(12); });
  durable.RunWhenDurable(10, [&] { ran.push_back(10); });
  EXPECT_TRUE(ran.empty());
  durable.Set(12);
  EXPECT_EQ(ran, (std::vector<int>{12, 10}));
}

TEST(DurableIndexTest, WaitForReturnsOnceASyncReachesTheIndex) {
  DurableIndex durable(1);
  std::promise<void> reached;
  std::thread waiter([&] {
    durable.WaitFor(3);
    reached.set_value();
  });
  auto done = reached.get_future();
  durable.Set(2);
  EXPECT_EQ(done.wait_for(50ms), std::future_status::timeout);
  durable.Set(3);
  EXPECT_EQ(done.wait_for(10s), std::future_status::ready);
  waiter.join();
  EXPECT_EQ(durable.index(), 3u);
}

TEST(DurableIndexTest, AFollowersShorterDurableLogLowersTheIndex) {
  // A follower overwrote an uncommitted suffix: entries 9 and 10 on disk
  // before are not the entries 9 and 10 it may apply next.
  DurableIndex durable(10);
  durable.Set(8);
  EXPECT_EQ(durable.index(), 8u);
  bool ran = false;
  durable.RunWhenDurable(9, [&] { ran = true; });
  EXPECT_FALSE(ran);
  durable.Set(9);
  EXPECT_TRUE(ran);
}

TEST(DurableIndexTest, ReleasesFromTwoThreadsRunOnceEachInOrder) {
  // The apply thread queues a release per batch while the raft loop marks
  // syncs: every release runs exactly once, one at a time, in order.
  constexpr uint64_t kBatches = 20000;
  DurableIndex durable(0);
  std::atomic<int> running{0};
  std::vector<uint64_t> ran;
  std::thread applier([&] {
    for (uint64_t i = 1; i <= kBatches; ++i) {
      durable.RunWhenDurable(i, [&, i] {
        EXPECT_EQ(running.fetch_add(1), 0);
        ran.push_back(i);
        running.fetch_sub(1);
      });
    }
  });
  std::thread raft_loop([&] {
    for (uint64_t i = 1; i <= kBatches; ++i) durable.Set(i);
  });
  applier.join();
  raft_loop.join();
  ASSERT_EQ(ran.size(), kBatches);
  for (uint64_t i = 0; i < kBatches; ++i) ASSERT_EQ(ran[i], i + 1);
}

}  // namespace
}  // namespace etcdpp::server
