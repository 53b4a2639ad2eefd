#include "raft/tracker.h"

#include <algorithm>
#include <functional>

namespace etcdpp::raft {

Progress* ProgressTracker::Get(uint64_t id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Get(uint64_t id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void ProgressTracker::Set(uint64_t id, uint64_t match, uint64_t next, bool is_learner) {
  Progress pr(max_inflight_);
  pr.match = match;
  pr.next = next;
  pr.is_learner = is_learner;
  progress_.insert_or_assign(id, std::move(pr));
}

std::vector<uint64_t> ProgressTracker::VoterIds() const {
  std::vector<uint64_t> ids;
  for (const auto& [id, pr] : progress_) {
    if (!pr.is_learner) ids.push_back(id);
  }
  return ids;
}

std::vector<uint64_t> ProgressTracker::LearnerIds() const {
  std::vector<uint64_t> ids;
  for (const auto& [id, pr] : progress_) {
    if (pr.is_learner) ids.push_back(id);
  }
  return ids;
}

size_t ProgressTracker::VoterCount() const {
  size_t n = 0;
  for (const auto& [id, pr] : progress_) n += pr.is_learner ? 0 : 1;
  return n;
}

raftpb::ConfState ProgressTracker::ConfState() const {
  raftpb::ConfState cs;
  for (const auto& [id, pr] : progress_) {
    if (pr.is_learner) {
      cs.add_learners(id);
    } else {
      cs.add_voters(id);
    }
  }
  return cs;
}

uint64_t ProgressTracker::Committed() const {
  std::vector<uint64_t> matched;
  for (const auto& [id, pr] : progress_) {
    if (!pr.is_learner) matched.push_back(pr.match);
  }
  if (matched.empty()) return 0;
  // Sorted descending, the (n/2+1)-th value is held by a majority.
  std::sort(matched.begin(), matched.end(), std::greater<uint64_t>());
  return matched[matched.size() / 2];
}

bool ProgressTracker::QuorumActive() const {
  std::map<uint64_t, bool> active;
  for (const auto& [id, pr] : progress_) {
    if (!pr.is_learner) active[id] = pr.recent_active;
  }
  return VoteResultOf(active) == VoteResult::kWon;
}

VoteResult ProgressTracker::VoteResultOf(const std::map<uint64_t, bool>& votes) const {
  size_t voters = 0, granted = 0, rejected = 0;
  for (const auto& [id, pr] : progress_) {
    if (pr.is_learner) continue;
    ++voters;
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    if (it->second) {
      ++granted;
    } else {
      ++rejected;
    }
  }
  // No voters (e.g. a joining node that has not learned the membership
  // yet): nobody can object. Such a node is not Promotable(), so this
  // never elects anyone.
  if (voters == 0) return VoteResult::kWon;
  const size_t quorum = voters / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (voters - rejected >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

ProgressTracker::Tally ProgressTracker::TallyVotes() const {
  Tally t;
  for (const auto& [id, pr] : progress_) {
    if (pr.is_learner) continue;
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    if (it->second) {
      ++t.granted;
    } else {
      ++t.rejected;
    }
  }
  t.result = VoteResultOf(votes_);
  return t;
}

}  // namespace etcdpp::raft
