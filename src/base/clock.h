// Clock: the one source of time for code that must be testable without
// waiting. Production uses RealClock; tests use FakeClock and move time
// forward by hand, so a deadline of seconds expires in microseconds.
//
// Time points are steady_clock points, so a fake clock that starts at the
// real now stays comparable with times other modules take from the real
// clock (the transport's stream ages, for instance).
#pragma once

#include <atomic>
#include <chrono>

namespace etcdpp {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using WallTimePoint = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  // Monotonic: for deadlines and intervals. Never goes back.
  virtual TimePoint Now() const = 0;
  // Calendar time: only where a value must differ across restarts (ids).
  virtual WallTimePoint WallNow() const = 0;

  // The process-wide real clock; never null, never destroyed.
  static Clock* Real();
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTimePoint WallNow() const override { return std::chrono::system_clock::now(); }
};

inline Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

// Time stands still until Advance. Thread-safe: any thread may read it while
// the test thread advances it. Code that sleeps until a deadline must wake
// up on its own now and then (the raft loop does, once per heartbeat of real
// time) to notice that the fake time moved.
class FakeClock final : public Clock {
 public:
  FakeClock()
      : now_(std::chrono::steady_clock::now().time_since_epoch().count()),
        wall_(std::chrono::system_clock::now().time_since_epoch().count()) {}

  TimePoint Now() const override {
    return TimePoint(TimePoint::duration(now_.load(std::memory_order_acquire)));
  }
  WallTimePoint WallNow() const override {
    return WallTimePoint(WallTimePoint::duration(wall_.load(std::memory_order_acquire)));
  }
  void Advance(std::chrono::nanoseconds by) {
    now_.fetch_add(std::chrono::duration_cast<TimePoint::duration>(by).count(),
                   std::memory_order_acq_rel);
    wall_.fetch_add(std::chrono::duration_cast<WallTimePoint::duration>(by).count(),
                    std::memory_order_acq_rel);
  }

 private:
  std::atomic<TimePoint::rep> now_;
  std::atomic<WallTimePoint::rep> wall_;
};

}  // namespace etcdpp
