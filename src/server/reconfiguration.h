// The checks a membership change passes before it is proposed, and the
// conf change that carries it. Pure functions of the applied membership, the
// peers' connection ages and the time: callable from any thread, no state.
//
// The strict checks follow etcd 3.4's --strict-reconfig-check rules: adding
// a voter needs every voter connected for a while and a quorum of started
// members; removing a voter must leave a connected quorum.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "raftpb/raft.pb.h"
#include "server/membership.h"

namespace etcdpp::raft {
struct NodeStatus;
}

namespace etcdpp::server {

// A learner may be promoted once its log reaches this share of the leader's.
inline constexpr double kLearnerReadyShare = 0.9;

// What the strict checks need to know about connectivity.
struct PeerHealth {
  uint64_t self_id = 0;
  // Since when the stream to a peer has been up; nullopt when it is down.
  std::function<std::optional<Clock::TimePoint>(uint64_t)> connected_since;
  Clock::TimePoint now;
  // A peer counts as connected once its stream is older than this.
  Clock::TimePoint::duration interval{};
};

// kMemberBadURLs for an empty list or a URL without host and port.
Status CheckPeerUrls(const std::vector<std::string>& urls);

// The conf change for the member `ctx` describes; ctx rides along as the
// change's context so the apply thread can validate and record it.
raftpb::ConfChange MemberConfChange(raftpb::ConfChangeType type,
                                    const internalpb::ConfChangeContext& ctx);

Status MayAddMember(const Membership& membership, const Member& member, const PeerHealth& health);
Status MayRemoveMember(const Membership& membership, uint64_t id, const PeerHealth& health);
// What any member can tell from the membership alone; whether the learner
// has caught up only the leader knows (LearnerCaughtUp).
Status MayPromoteMember(const Membership& membership, uint64_t id, bool strict);

// Leader only: kNotLeader without progress information, kLearnerNotReady
// while the learner's log is short of kLearnerReadyShare of the leader's.
Status LearnerCaughtUp(const raft::NodeStatus& status, uint64_t learner, uint64_t leader);

}  // namespace etcdpp::server
