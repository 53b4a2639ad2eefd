// DurableIndex: how far this member's WAL is on disk, and the work that
// must wait until it is.
//
// A leader hands its committed entries to the apply thread as soon as they
// are written to the WAL, before the fdatasync that makes them durable
// returns (docs/durability.md, "Applying while the WAL syncs"), so the
// apply thread's work overlaps the flush. What a client or the disk would
// see of such an entry waits here for the flush: the proposer's answer
// (RunWhenDurable: released by whichever of the two threads comes second,
// so an answer never waits for a thread's wake-up after the flush it
// needed), the store's commit and the watchers' events (WaitFor, on the
// apply thread).
//
// Invariant: an index passed to RunWhenDurable or WaitFor is a committed
// entry's, so the WAL never drops it (only uncommitted suffixes are
// overwritten), and Set never moves the durable index below it once it was
// written there.
//
// Thread-safe. Set belongs to the raft loop, which calls it after every
// sync; the raft loop never waits for the apply thread between handing it
// entries and that Set, so WaitFor cannot deadlock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

namespace etcdpp::server {

class DurableIndex {
 public:
  explicit DurableIndex(uint64_t index = 0) : index_(index) {}
  DurableIndex(const DurableIndex&) = delete;
  DurableIndex& operator=(const DurableIndex&) = delete;

  // The WAL's entries up to `index` are durable and nothing it holds after
  // `index` is. It can fall when a follower's sync made a shorter log
  // durable (an uncommitted suffix overwritten). Runs the releases this
  // reaches on the calling thread, then wakes WaitFor's callers.
  void Set(uint64_t index);

  // Runs `release` once the entry at `index` is durable: at once on this
  // thread when it is, otherwise on the thread whose Set reaches it.
  // Releases run one at a time, in the order they were queued.
  void RunWhenDurable(uint64_t index, std::function<void()> release);

  // Blocks until the entry at `index` is durable.
  void WaitFor(uint64_t index);

  uint64_t index() const;

 private:
  struct Release {
    uint64_t index;
    std::function<void()> run;
  };

  // Runs the queued releases the durable index has reached, unless another
  // thread is already doing so (it looks again after each release, so
  // nothing that became runnable meanwhile is left behind).
  void RunReachedLocked(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::condition_variable reached_;
  uint64_t index_;                // guarded by mu_
  std::deque<Release> releases_;  // guarded by mu_; indexes in order
  bool releasing_ = false;        // guarded by mu_
};

}  // namespace etcdpp::server
