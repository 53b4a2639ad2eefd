#include "server/reconfiguration.h"

#include "raft/raw_node.h"

namespace etcdpp::server {
namespace {

// Voters (self included) whose stream has been up for the whole interval.
size_t ConnectedVoters(const std::vector<uint64_t>& voters, const PeerHealth& health) {
  const Clock::TimePoint connected_before = health.now - health.interval;
  size_t n = 0;
  for (uint64_t id : voters) {
    if (id == health.self_id) {
      ++n;
      continue;
    }
    std::optional<Clock::TimePoint> since = health.connected_since(id);
    if (since && *since < connected_before) ++n;
  }
  return n;
}

}  // namespace

Status CheckPeerUrls(const std::vector<std::string>& urls) {
  if (urls.empty()) return Status(Code::kMemberBadURLs);
  for (const std::string& url : urls) {
    if (!HostPort(url).ok()) return Status(Code::kMemberBadURLs);
  }
  return Status::OK();
}

raftpb::ConfChange MemberConfChange(raftpb::ConfChangeType type,
                                    const internalpb::ConfChangeContext& ctx) {
  raftpb::ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(ctx.member().id());
  cc.set_context(ctx.SerializeAsString());
  return cc;
}

Status MayAddMember(const Membership& membership, const Member& member, const PeerHealth& health) {
  if (!member.is_learner && !membership.IsReadyToAddVoter()) {
    return Status(Code::kMemberNotEnoughStarted);
  }
  // A new voter raises the quorum: every current voter must be reachable.
  const std::vector<uint64_t> voters = membership.VoterIds();
  if (ConnectedVoters(voters, health) != voters.size()) return Status(Code::kUnhealthy);
  return Status::OK();
}

Status MayRemoveMember(const Membership& membership, uint64_t id, const PeerHealth& health) {
  const Member* m = membership.Find(id);
  if (m != nullptr && m->is_learner) return Status::OK();
  if (!membership.IsReadyToRemoveVoter(id)) return Status(Code::kMemberNotEnoughStarted);
  // Removing a voter that is down cannot shrink the active quorum.
  if (id != health.self_id && !health.connected_since(id)) return Status::OK();
  const std::vector<uint64_t> voters = membership.VoterIds();
  // After the removal, the connected voters left must still form a quorum
  // of the smaller cluster.
  const size_t connected = ConnectedVoters(voters, health);
  if (connected < 1 + 1 + (voters.size() - 1) / 2) return Status(Code::kUnhealthy);
  return Status::OK();
}

Status MayPromoteMember(const Membership& membership, uint64_t id, bool strict) {
  const Member* m = membership.Find(id);
  if (m == nullptr) return Status(Code::kMemberNotFound);
  if (!m->is_learner) return Status(Code::kMemberNotLearner);
  if (strict && !membership.IsReadyToPromote(id)) return Status(Code::kMemberNotEnoughStarted);
  return Status::OK();
}

Status LearnerCaughtUp(const raft::NodeStatus& status, uint64_t learner, uint64_t leader) {
  if (status.progress.empty()) return Status(Code::kNotLeader);
  auto learner_progress = status.progress.find(learner);
  auto leader_progress = status.progress.find(leader);
  if (learner_progress != status.progress.end() && leader_progress != status.progress.end() &&
      static_cast<double>(learner_progress->second.match) <
          static_cast<double>(leader_progress->second.match) * kLearnerReadyShare) {
    return Status(Code::kLearnerNotReady);
  }
  return Status::OK();
}

}  // namespace etcdpp::server
