// Auto-compaction (--auto-compaction-mode, --auto-compaction-retention): the
// leader proposes Compaction through Raft on a schedule, like a client's
// `etcdctl compaction`, so every member compacts at the same revision.
//
// CompactionSchedule is the decision alone (no thread, no clock of its own):
// it is handed the time and the current revision at each step and says
// which revision to compact, if any. The schedules are etcd's:
//
//  periodic, retention P: a step every P/10 (P capped at one hour for the
//    step and for the compaction interval). Each step samples the current
//    revision, keeping the samples of the last P. The first compaction comes
//    P after start, the next ones every min(P, 1h), each at the oldest sample
//    kept: the revision the store had about P ago. So with P = 1h, history
//    older than an hour is dropped once an hour.
//  revision, retention N: a step every five minutes; compacts at
//    current - N whenever that is positive and moved since the last time.
//
// Only the leader compacts (a follower's steps only sample); a failed
// proposal is retried at the next step.
//
// AutoCompactor runs a schedule on a thread of its own, reading time from
// the server's Clock; it wakes every 100 ms of real time to notice a fake
// clock that moved.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/status.h"
#include "server/server_options.h"

namespace etcdpp::server {

// Parses etcd's flag pair: mode "periodic" or "revision"; retention for
// periodic is a whole number of hours ("1") or a Go duration ("30m",
// "1h30m"), for revision a whole number of revisions. "0" means off.
Result<AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                  const std::string& retention);

// Single-threaded: its owner calls Step.
class CompactionSchedule {
 public:
  // `start_revision`: the store's revision at `start` (the first sample).
  CompactionSchedule(const AutoCompactionOptions& options, Clock::TimePoint start,
                     int64_t start_revision);

  // Time between steps.
  Clock::TimePoint::duration step_interval() const { return step_; }
  // One step at `now`. Returns the revision to compact, or 0 for none.
  int64_t Step(Clock::TimePoint now, int64_t current_revision, bool leader);
  // The outcome of the compaction Step asked for: OK or kCompacted count as
  // done (someone compacted at least as far); anything else is retried.
  void Done(const Status& status, Clock::TimePoint now, int64_t revision);

 private:
  AutoCompactionOptions options_;
  Clock::TimePoint::duration step_;
  // Periodic.
  Clock::TimePoint::duration interval_;  // between compactions after the first
  Clock::TimePoint::duration wait_;      // before the next compaction, from last_done_
  Clock::TimePoint last_done_;
  size_t samples_kept_ = 0;
  std::deque<int64_t> samples_;
  // Revision.
  int64_t last_compacted_ = 0;
};

class AutoCompactor {
 public:
  // `compact(revision, done)` proposes the compaction; `done` gets its
  // outcome, on any thread, possibly after Stop.
  using CompactFn = std::function<void(int64_t revision, std::function<void(const Status&)> done)>;
  AutoCompactor(const AutoCompactionOptions& options, Clock* clock,
                std::function<int64_t()> current_revision, std::function<bool()> is_leader,
                CompactFn compact);
  ~AutoCompactor();
  AutoCompactor(const AutoCompactor&) = delete;
  AutoCompactor& operator=(const AutoCompactor&) = delete;

  void Start();
  void Stop();

 private:
  void Run();
  // Proposes and waits for the outcome; nullopt when stopped first.
  std::optional<Status> CompactAndWait(int64_t revision);
  // True once stopping (after a wait of at most `wait`).
  bool WaitForStop(std::chrono::milliseconds wait);

  Clock* const clock_;
  const std::function<int64_t()> current_revision_;
  const std::function<bool()> is_leader_;
  const CompactFn compact_;
  CompactionSchedule schedule_;  // the thread's own

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::server
