// ProgressTracker: the current membership (voters and learners), the
// leader's Progress for each member, and the votes of an election.
//
// Membership changes one server at a time (Raft thesis 4.1), so a
// configuration is a single majority quorum over the voters; learners
// replicate but are never counted.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "raft/progress.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

enum class VoteResult { kPending, kLost, kWon };

class ProgressTracker {
 public:
  explicit ProgressTracker(size_t max_inflight) : max_inflight_(max_inflight) {}

  // Progress of a member, or nullptr if id is not a member.
  Progress* Get(uint64_t id);
  const Progress* Get(uint64_t id) const;
  // Adds (or replaces) member id with a fresh progress.
  void Set(uint64_t id, uint64_t match, uint64_t next, bool is_learner);
  void Remove(uint64_t id) { progress_.erase(id); }
  void Clear() { progress_.clear(); }

  std::map<uint64_t, Progress>& progress() { return progress_; }
  const std::map<uint64_t, Progress>& progress() const { return progress_; }
  std::vector<uint64_t> VoterIds() const;
  std::vector<uint64_t> LearnerIds() const;
  size_t VoterCount() const;
  bool IsSingleton() const { return VoterCount() == 1; }
  // Voters and learners, sorted.
  raftpb::ConfState ConfState() const;

  // The largest index replicated on a majority of voters (0 if there are no
  // voters).
  uint64_t Committed() const;
  // Whether a majority of voters were recently active (CheckQuorum).
  bool QuorumActive() const;
  // Outcome for a set of voters that agreed (e.g. ReadIndex acks).
  VoteResult VoteResultOf(const std::map<uint64_t, bool>& votes) const;

  void ResetVotes() { votes_.clear(); }
  // Records id's vote; only the first vote of an id in an election counts.
  void RecordVote(uint64_t id, bool granted) { votes_.emplace(id, granted); }
  struct Tally {
    int granted = 0;
    int rejected = 0;
    VoteResult result = VoteResult::kPending;
  };
  Tally TallyVotes() const;

  size_t max_inflight() const { return max_inflight_; }

 private:
  size_t max_inflight_;
  std::map<uint64_t, Progress> progress_;  // ordered: iteration is deterministic
  std::map<uint64_t, bool> votes_;
};

}  // namespace etcdpp::raft
