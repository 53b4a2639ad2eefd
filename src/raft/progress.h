// Progress: the leader's view of one follower's log, and Inflights, the
// flow-control window of MsgApp sent to it but not yet acknowledged.
//
// States (the three of etcd's raft library; see docs/raft.md):
//   kProbe:     the leader does not know the follower's last matching index;
//               it sends at most one MsgApp per heartbeat interval and waits
//               for the answer (probe_sent pauses further sends).
//   kReplicate: the follower is in sync; the leader streams entries
//               optimistically (next advances on send), bounded by the
//               inflight window.
//   kSnapshot:  the leader sent a snapshot and sends nothing else until the
//               follower reports it applied (or failed to receive) it.
// Invariant: match < next.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace etcdpp::raft {

enum class ProgressState { kProbe, kReplicate, kSnapshot };
std::string_view ProgressStateName(ProgressState s);

// A bounded FIFO of the last entry index of each in-flight MsgApp.
class Inflights {
 public:
  explicit Inflights(size_t size) : size_(size) {}

  bool Full() const { return count_ == size_; }
  size_t Count() const { return count_; }
  // Records a MsgApp whose last entry is `inflight`; indexes must increase.
  void Add(uint64_t inflight);
  // An acknowledgement up to `to` covers every message whose last entry is
  // at or below it: their slots are freed.
  void FreeUpTo(uint64_t to);
  // Frees the oldest in-flight message (a heartbeat answer proves the
  // follower is alive, so let one more message go).
  void FreeOldest();
  void Reset() {
    count_ = 0;
    start_ = 0;
  }

 private:
  size_t start_ = 0;
  size_t count_ = 0;
  size_t size_;
  std::vector<uint64_t> buffer_;  // grows lazily up to size_
};

struct Progress {
  explicit Progress(size_t max_inflight) : inflights(max_inflight) {}

  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  // Index of the snapshot in flight, in kSnapshot.
  uint64_t pending_snapshot = 0;
  // Heard from this peer since the last CheckQuorum round.
  bool recent_active = false;
  // kProbe only: a probe is in flight, wait before sending another.
  bool probe_sent = false;
  Inflights inflights;
  bool is_learner = false;

  void ResetState(ProgressState s);
  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);
  // The follower acknowledged up to n. Returns whether match advanced.
  bool MaybeUpdate(uint64_t n);
  // Replicate state: entries up to n were sent.
  void SentUpTo(uint64_t n) { next = n + 1; }
  // The follower rejected MsgApp at `rejected`; match_hint is the highest
  // index that may match (the next probe goes after it). Returns false if
  // the rejection is stale.
  bool BackOffAfterRejection(uint64_t rejected, uint64_t match_hint);
  // True while no MsgApp may go to this peer: its probe is unanswered, its
  // window is full, or it is receiving a snapshot.
  bool IsPaused() const;
};

}  // namespace etcdpp::raft
