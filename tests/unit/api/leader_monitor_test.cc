#include "api/leader_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace etcdpp::api {
namespace {

using std::chrono::milliseconds;

// Counts callbacks and lets the test wait for them without sleeping.
class Fired {
 public:
  void Fire() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  // False if `n` callbacks did not come within a generous bound.
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

TEST(LeaderMonitorTest, EndsRegisteredStreamsOnceWithoutLeader) {
  std::atomic<uint64_t> leader{7};
  LeaderMonitor monitor([&] { return leader.load(); }, milliseconds(5));
  Fired a, b;
  monitor.Register([&] { a.Fire(); });
  monitor.Register([&] { b.Fire(); });
  leader = 0;
  ASSERT_TRUE(a.WaitFor(1));
  ASSERT_TRUE(b.WaitFor(1));
  // Ended streams are forgotten: a later sweep (seen through a stream
  // registered after the first one) does not call them again.
  Fired later;
  monitor.Register([&] { later.Fire(); });
  ASSERT_TRUE(later.WaitFor(1));
  EXPECT_EQ(a.count(), 1);
  EXPECT_EQ(b.count(), 1);
}

TEST(LeaderMonitorTest, UnregisteredStreamIsNeverCalled) {
  std::atomic<uint64_t> leader{7};
  LeaderMonitor monitor([&] { return leader.load(); }, milliseconds(5));
  Fired gone, kept;
  LeaderMonitor::Token token = monitor.Register([&] { gone.Fire(); });
  monitor.Register([&] { kept.Fire(); });
  monitor.Unregister(token);
  leader = 0;
  // Both would be called in the same sweep.
  ASSERT_TRUE(kept.WaitFor(1));
  EXPECT_EQ(gone.count(), 0);
}

TEST(LeaderMonitorTest, StreamsStayWhileThereIsALeader) {
  std::atomic<uint64_t> leader{7};
  std::atomic<int> checks{0};
  LeaderMonitor monitor(
      [&] {
        ++checks;
        return leader.load();
      },
      milliseconds(1));
  Fired fired;
  monitor.Register([&] { fired.Fire(); });
  // Many checks, all with a leader: nothing ends.
  while (checks < 50) std::this_thread::yield();
  EXPECT_EQ(fired.count(), 0);
  leader = 0;
  ASSERT_TRUE(fired.WaitFor(1));
}

}  // namespace
}  // namespace etcdpp::api
