// What the API tests give a LeaderMonitor: the leader it sees, set by the
// test, and a wait for the monitor to have looked since it changed. Shared by
// the monitor's own tests and the services whose streams it ends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "api/leader_monitor.h"
#include "base/clock.h"

namespace etcdpp::api::testing {

// Waits are bounded in real time; time itself moves only through the fake
// clock, so nothing here sleeps.
inline constexpr std::chrono::seconds kMonitorPatience{10};

// The member's leader as the monitor sees it. Thread-safe: the monitor's
// thread checks while the test thread sets and waits.
class MonitoredLeader {
 public:
  explicit MonitoredLeader(uint64_t leader) : leader_(leader) {}

  // The monitor's view of the member (LeaderMonitor's leader function).
  uint64_t Check() {
    std::lock_guard<std::mutex> lock(mu_);
    ++checks_;
    cv_.notify_all();
    return leader_;
  }
  void Set(uint64_t leader) {
    std::lock_guard<std::mutex> lock(mu_);
    leader_ = leader;
    checks_ = 0;
  }
  // Waits until `n` checks ran since the last Set (so the monitor saw it).
  bool WaitForChecks(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kMonitorPatience, [&] { return checks_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t leader_;  // guarded by mu_
  int checks_ = 0;   // guarded by mu_; since the last Set
};

// A LeaderMonitor for a service under test: it looks every millisecond of
// real time, on a fake clock, at a member that has leader 1 until the test
// takes it away.
class ScriptedLeaderMonitor {
 public:
  LeaderMonitor* monitor() { return &monitor_; }

  // The member loses its leader for longer than the monitor's grace: every
  // stream registered with the monitor (every one that asked for a leader)
  // is ended. False if the monitor never looked.
  [[nodiscard]] bool LoseLeaderForGood() {
    leader_.Set(0);
    if (!leader_.WaitForChecks(1)) return false;
    clock_.Advance(std::chrono::hours(1));
    return true;
  }

 private:
  FakeClock clock_;  // outlives the monitor
  MonitoredLeader leader_{1};
  LeaderMonitor monitor_{[this] { return leader_.Check(); }, std::chrono::milliseconds(1), &clock_};
};

}  // namespace etcdpp::api::testing
