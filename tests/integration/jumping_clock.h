// A clock for tests of running clusters: real time plus jumps. Members run
// on it as usual (ticks, heartbeats), and a test skips ahead with Jump()
// instead of sleeping through a wait measured in seconds. All members of a
// cluster share one, so their deadlines move together.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/clock.h"

namespace etcdpp::testing {

class JumpingClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::steady_clock::now() + std::chrono::nanoseconds(offset_ns_.load());
  }
  WallTimePoint WallNow() const override {
    return std::chrono::system_clock::now() +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(
               std::chrono::nanoseconds(offset_ns_.load()));
  }
  void Jump(std::chrono::nanoseconds by) { offset_ns_ += by.count(); }

 private:
  std::atomic<int64_t> offset_ns_{0};
};

}  // namespace etcdpp::testing
