// Linearizable reads, in two halves.
//
// ReadIndexBatcher (raft loop thread only): reads that arrive while a
// ReadIndex round is in flight wait for the next round and share it, so one
// heartbeat round with the followers confirms every read queued meanwhile,
// however many there are. Invariant: at most one round is in flight; its
// context (a counter, 8 bytes big-endian) tells its ReadState from stale
// ones. etcd's linearizable read loop batches the same way.
// The leader keys pending ReadIndex requests by context alone, from every
// member, and drops a request whose context is already pending; a member
// restarted under the same id must not reuse one either, or it could take
// an answer meant for its earlier self. So the counter starts at a random
// value: contexts are unique across members and restarts, in practice.
//
// AppliedReadQueue (apply thread only): rounds whose read index is known
// wait here until the store has applied up to that index, then run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "server/interfaces.h"

namespace etcdpp::raft {
struct ReadState;
}

namespace etcdpp::server {

// Reads that may run once the store has applied `index`.
struct ConfirmedReads {
  uint64_t index = 0;
  std::vector<ReadCallback> callbacks;
};

class ReadIndexBatcher {
 public:
  ReadIndexBatcher();
  void Add(ReadCallback read) { next_batch_.push_back(std::move(read)); }
  // A round could start now (none in flight, reads waiting).
  bool CanStart() const { return !in_flight_ && !next_batch_.empty(); }
  // Starts a round for the waiting reads if possible; returns the context
  // to hand RawNode::ReadIndex.
  std::optional<std::string> MaybeStart(Clock::TimePoint now, Clock::TimePoint::duration timeout);
  // The round `state` answers, if it is the one in flight.
  std::optional<ConfirmedReads> Confirm(const raft::ReadState& state);
  // On each tick: an overdue round fails with kTimeout; otherwise the
  // context of the round in flight is returned to be asked again (Raft
  // drops a ReadIndex while it has no leader).
  std::optional<std::string> OnTick(Clock::TimePoint now);
  void FailAll(const Status& status);

 private:
  struct Batch {
    uint64_t ctx;
    std::vector<ReadCallback> callbacks;
    Clock::TimePoint deadline;
  };
  uint64_t last_ctx_ = 0;
  std::optional<Batch> in_flight_;
  std::vector<ReadCallback> next_batch_;
};

class AppliedReadQueue {
 public:
  void Add(ConfirmedReads reads) { waiting_.push_back(std::move(reads)); }
  bool empty() const { return waiting_.empty(); }
  // Runs every read whose index is at or below `applied`.
  void RunUpTo(uint64_t applied);
  void FailAll(const Status& status);

 private:
  std::vector<ConfirmedReads> waiting_;
};

}  // namespace etcdpp::server
