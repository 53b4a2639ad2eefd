#include "api/leader_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "base/clock.h"
#include "unit/api/monitored_leader.h"

namespace etcdpp::api {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using testing::kMonitorPatience;
using testing::MonitoredLeader;

// Counts callbacks and lets the test wait for them without sleeping.
class Fired {
 public:
  void Fire() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  // False if `n` callbacks did not come within kMonitorPatience.
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kMonitorPatience, [&] { return count_ >= n; });
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

class LeaderMonitorTest : public ::testing::Test {
 protected:
  // The monitor looks every millisecond of real time; the grace it gives a
  // leaderless member is two intervals of the fake clock.
  static constexpr milliseconds kInterval{1};
  static constexpr nanoseconds kGrace = (LeaderMonitor::kMaxNoLeaderChecks - 1) * kInterval;

  FakeClock clock_;  // outlives the monitor
  MonitoredLeader leader_{7};
  LeaderMonitor monitor_{[this] { return leader_.Check(); }, kInterval, &clock_};
};

TEST_F(LeaderMonitorTest, StreamsEndOnlyOnceTheClockPassedTheGrace) {
  Fired a, b;
  monitor_.Register([&] { a.Fire(); });
  monitor_.Register([&] { b.Fire(); });
  leader_.Set(0);
  // However many checks find no leader, the fake time has not moved.
  ASSERT_TRUE(leader_.WaitForChecks(20));
  clock_.Advance(kGrace - nanoseconds(1));
  ASSERT_TRUE(leader_.WaitForChecks(40));
  EXPECT_EQ(a.count(), 0);
  EXPECT_EQ(b.count(), 0);

  clock_.Advance(nanoseconds(1));
  ASSERT_TRUE(a.WaitFor(1));
  ASSERT_TRUE(b.WaitFor(1));
}

TEST_F(LeaderMonitorTest, ALeaderSeenInBetweenRestartsTheGrace) {
  Fired fired;
  monitor_.Register([&] { fired.Fire(); });
  leader_.Set(0);
  ASSERT_TRUE(leader_.WaitForChecks(2));
  clock_.Advance(kGrace - nanoseconds(1));
  leader_.Set(7);
  ASSERT_TRUE(leader_.WaitForChecks(2));
  leader_.Set(0);
  ASSERT_TRUE(leader_.WaitForChecks(2));
  // Leaderless since this fake instant only: a whole grace is still ahead.
  clock_.Advance(kGrace - nanoseconds(1));
  ASSERT_TRUE(leader_.WaitForChecks(20));
  EXPECT_EQ(fired.count(), 0);
  clock_.Advance(nanoseconds(1));
  ASSERT_TRUE(fired.WaitFor(1));
}

TEST_F(LeaderMonitorTest, EndedStreamsAreForgotten) {
  Fired first;
  monitor_.Register([&] { first.Fire(); });
  leader_.Set(0);
  ASSERT_TRUE(leader_.WaitForChecks(1));
  clock_.Advance(kGrace);
  ASSERT_TRUE(first.WaitFor(1));
  // A stream registered later ends in a later sweep; the first stream is
  // not called again.
  Fired later;
  monitor_.Register([&] { later.Fire(); });
  leader_.Set(0);
  ASSERT_TRUE(leader_.WaitForChecks(1));
  clock_.Advance(kGrace);
  ASSERT_TRUE(later.WaitFor(1));
  EXPECT_EQ(first.count(), 1);
}

TEST_F(LeaderMonitorTest, UnregisteredStreamIsNeverCalled) {
  Fired gone, kept;
  LeaderMonitor::Token token = monitor_.Register([&] { gone.Fire(); });
  monitor_.Register([&] { kept.Fire(); });
  monitor_.Unregister(token);
  leader_.Set(0);
  ASSERT_TRUE(leader_.WaitForChecks(1));
  clock_.Advance(kGrace);
  // Both would be called in the same sweep.
  ASSERT_TRUE(kept.WaitFor(1));
  EXPECT_EQ(gone.count(), 0);
}

TEST_F(LeaderMonitorTest, StreamsStayWhileThereIsALeader) {
  Fired fired;
  monitor_.Register([&] { fired.Fire(); });
  ASSERT_TRUE(leader_.WaitForChecks(5));
  clock_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(leader_.WaitForChecks(50));
  EXPECT_EQ(fired.count(), 0);
}

}  // namespace
}  // namespace etcdpp::api
