// A RoundScheduler for tests: holds the watch hub's rounds back on request,
// and tells a test when the hub has done everything it can for the writes so
// far, so that "nothing more arrived" is a fact and not a guess after a sleep.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "watch/watch_hub.h"

namespace etcdpp::watch {

// Thread safety: every method may be called from any thread; mu_ guards all
// state. The hub must not outlive it.
class TestRoundScheduler : public RoundScheduler {
 public:
  bool MayStartRound() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (held_) return false;
    in_round_ = true;
    rounds_started_++;
    return true;
  }

  void RoundFinished(bool more_work) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_round_ = false;
      // Rounds run one at a time, so the one ending is the latest started.
      if (!more_work) last_quiet_round_ = rounds_started_;
    }
    cv_.notify_all();
  }

  // From now on the hub starts no round, so writes pile up unread as behind
  // a slow hub; a round in progress has finished when this returns.
  void Hold() {
    std::unique_lock<std::mutex> lock(mu_);
    held_ = true;
    cv_.wait(lock, [this] { return !in_round_; });
  }

  // Lets rounds run again, starting one for whatever piled up.
  void Release(WatchHub* hub) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    hub->Wake();
  }

  // Waits until a round that started after this call has ended with nothing
  // more to do. That round read the store after every write made before the
  // call, so each response those writes will ever cause for a sink that had
  // room has been handed to it. False after `limit` (or while held).
  bool WaitForQuietRound(WatchHub* hub,
                         std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    uint64_t started_before;
    {
      std::lock_guard<std::mutex> lock(mu_);
      started_before = rounds_started_;
    }
    hub->Wake();
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return last_quiet_round_ > started_before; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool in_round_ = false;
  uint64_t rounds_started_ = 0;
  // The number of the latest round that ended with no more work (0: none).
  uint64_t last_quiet_round_ = 0;
};

}  // namespace etcdpp::watch
