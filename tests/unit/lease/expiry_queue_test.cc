#include "lease/expiry_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace etcdpp::lease {
namespace {

using TimePoint = LeaseExpiryQueue::TimePoint;

TimePoint At(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

// Pops everything, returning ids in pop order.
std::vector<int64_t> Drain(LeaseExpiryQueue& q) {
  std::vector<int64_t> ids;
  while (!q.empty()) {
    ids.push_back(q.Top().id);
    q.Remove(q.Top().id);
  }
  return ids;
}

TEST(LeaseExpiryQueueTest, TopIsEarliestDeadline) {
  LeaseExpiryQueue q;
  q.Upsert(1, At(300));
  q.Upsert(2, At(100));
  q.Upsert(3, At(200));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.Top().id, 2);
  EXPECT_EQ(Drain(q), (std::vector<int64_t>{2, 3, 1}));
}

TEST(LeaseExpiryQueueTest, UpsertMovesTheLeasesOnlyItem) {
  LeaseExpiryQueue q;
  q.Upsert(1, At(100));
  q.Upsert(2, At(200));
  // A keep-alive pushes lease 1 behind lease 2; the queue still holds one
  // item per lease (no stale duplicates).
  q.Upsert(1, At(500));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.Top().id, 2);
  q.Upsert(1, At(50));
  EXPECT_EQ(q.Top().id, 1);
  EXPECT_EQ(q.Top().at, At(50));
}

TEST(LeaseExpiryQueueTest, RemoveFromMiddleKeepsOrder) {
  LeaseExpiryQueue q;
  for (int64_t id = 1; id <= 10; ++id) q.Upsert(id, At(id * 10));
  q.Remove(5);
  q.Remove(1);
  q.Remove(42);  // absent: no-op
  EXPECT_FALSE(q.Contains(5));
  EXPECT_EQ(Drain(q), (std::vector<int64_t>{2, 3, 4, 6, 7, 8, 9, 10}));
}

TEST(LeaseExpiryQueueTest, ResetBuildsHeap) {
  LeaseExpiryQueue q;
  q.Upsert(99, At(1));
  q.Reset({{At(30), 3}, {At(10), 1}, {At(20), 2}});
  EXPECT_FALSE(q.Contains(99));
  EXPECT_EQ(Drain(q), (std::vector<int64_t>{1, 2, 3}));
}

// Random operations against a std::map model: pop order always matches.
TEST(LeaseExpiryQueueTest, MatchesModelUnderRandomOperations) {
  std::mt19937_64 rng(7);
  LeaseExpiryQueue q;
  std::map<int64_t, int64_t> model;  // id -> deadline ms
  for (int step = 0; step < 20000; ++step) {
    const int64_t id = static_cast<int64_t>(rng() % 500);
    switch (rng() % 3) {
      case 0:
      case 1: {
        const int64_t at = static_cast<int64_t>(rng() % 100000);
        q.Upsert(id, At(at));
        model[id] = at;
        break;
      }
      default:
        q.Remove(id);
        model.erase(id);
    }
    ASSERT_EQ(q.size(), model.size());
    if (!model.empty()) {
      int64_t min_at = INT64_MAX;
      for (auto& [i, at] : model) min_at = std::min(min_at, at);
      ASSERT_EQ(q.Top().at, At(min_at));
      ASSERT_EQ(model[q.Top().id], min_at);
    }
  }
}

}  // namespace
}  // namespace etcdpp::lease
