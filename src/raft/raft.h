// Raft: the consensus state machine (Raft paper sections 5-7 and the thesis'
// PreVote, CheckQuorum, ReadIndex, leadership transfer and learners).
//
// Internal to src/raft: servers use RawNode (raw_node.h). Tests drive it
// directly to observe individual messages.
//
// Purely deterministic: input is Step(message) and Tick(); output is the
// outbox (TakeMessages), the log (raft_log()) and read_states(). No I/O, no
// threads, no clocks; the election timeout comes from
// Config::pick_election_timeout, or else from a generator seeded by
// Config::seed and the node id.
//
// Thread-compatible: owned by one RawNode, used by the thread driving it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "raft/config.h"
#include "raft/raft_log.h"
#include "raft/read_only.h"
#include "raft/tracker.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

// "No node" on the wire (ids are never 0).
inline constexpr uint64_t kNone = 0;

enum class StateType { kFollower, kCandidate, kLeader, kPreCandidate };
std::string_view StateTypeName(StateType s);

// Volatile state, for logging and the server's leader tracking.
struct SoftState {
  uint64_t lead = kNone;
  StateType state = StateType::kFollower;
  bool operator==(const SoftState&) const = default;
};

// The answer to a ReadIndex request: once the state machine applied `index`,
// a read reflects every write committed before the request (linearizable).
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

// Why a proposal was dropped. The server fails the proposal's waiter with it:
//   kNoLeader        no leader is known (election in progress).
//   kNotLeader       this follower does not forward (disable_proposal_
//                    forwarding), or this leader was removed from the config.
//   kLeaderChanged   a leadership transfer is in progress.
//   kTooManyRequests max_uncommitted_entries_size would be exceeded.
Status ErrProposalDropped(Code code);

bool IsLocalMsg(raftpb::MessageType t);
bool IsResponseMsg(raftpb::MessageType t);
raftpb::MessageType VoteRespMsgType(raftpb::MessageType t);

class Raft {
 public:
  // Restores term, vote, commit and membership from config.storage.
  static Result<std::unique_ptr<Raft>> Create(const Config& config);

  // Feeds a message (from a peer, or a local one such as MsgHup/MsgProp).
  // Returns ErrProposalDropped for a dropped MsgProp; OK otherwise (messages
  // that make no sense in the current state are ignored, as Raft requires).
  Status Step(raftpb::Message m);
  // Advances logical time by one tick.
  void Tick();

  // Membership (single-server changes). Returns the resulting ConfState.
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& cc);
  // Installs snapshot s if it is newer than our log (follower side of
  // MsgSnap). Returns false if it was ignored.
  bool Restore(const raftpb::Snapshot& s);

  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();

  // Drains the outbox.
  std::vector<raftpb::Message> TakeMessages();
  const std::vector<raftpb::Message>& messages() const { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  const std::vector<ReadState>& read_states() const { return read_states_; }

  SoftState GetSoftState() const { return SoftState{lead_, state_}; }
  raftpb::HardState GetHardState() const;
  // Called by RawNode::Advance: committed entries up to applied were handed
  // to the server.
  void ReduceUncommittedSize(const std::vector<raftpb::Entry>& ents);

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  StateType state() const { return state_; }
  bool is_learner() const { return is_learner_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  uint64_t pending_conf_index() const { return pending_conf_index_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  int election_elapsed() const { return election_elapsed_; }
  int election_timeout() const { return election_timeout_; }
  int heartbeat_timeout() const { return heartbeat_timeout_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  RaftLog& raft_log() { return log_; }
  const RaftLog& raft_log() const { return log_; }
  ProgressTracker& tracker() { return prs_; }
  const ProgressTracker& tracker() const { return prs_; }
  bool check_quorum() const { return check_quorum_; }
  bool pre_vote() const { return pre_vote_; }
  // Whether this node may become leader: a voter without a pending snapshot.
  bool Promotable() const;

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  explicit Raft(const Config& c);

  void Send(raftpb::Message m);
  void SendAppend(uint64_t to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  void BcastAppend();
  void BcastHeartbeat();
  void BcastHeartbeatWithCtx(const std::string& ctx);
  void SendTimeoutNow(uint64_t to);

  bool MaybeCommit();
  void Reset(uint64_t term);
  bool AppendEntry(std::vector<raftpb::Entry>* es);
  void TickElection();
  void TickHeartbeat();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  void ResetRandomizedElectionTimeout();
  void Hup(CampaignType t);
  void Campaign(CampaignType t);
  ProgressTracker::Tally Poll(uint64_t id, bool granted);

  Status StepLeader(raftpb::Message& m);
  Status StepCandidate(raftpb::Message& m);
  Status StepFollower(raftpb::Message& m);
  void HandleAppendEntries(raftpb::Message& m);
  void HandleHeartbeat(const raftpb::Message& m);
  void HandleSnapshot(const raftpb::Message& m);

  void HandleReadIndexAsLeader(const raftpb::Message& m);
  void SendReadIndexResponse(const raftpb::Message& m);
  // Answers a ReadIndex request at `index`: locally (read_states_) or by a
  // MsgReadIndexResp to the forwarding follower.
  void RespondToReadIndex(const raftpb::Message& req, uint64_t index);
  void ReleasePendingReadIndexMessages();
  bool CommittedEntryInCurrentTerm() const;

  void AddNodeOrLearner(uint64_t id, bool is_learner);
  void RemoveNode(uint64_t id);
  void AbortLeaderTransfer() { lead_transferee_ = kNone; }
  bool IncreaseUncommittedSize(const std::vector<raftpb::Entry>& ents);
  size_t NumPendingConfChanges() const;

  uint64_t id_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  std::vector<ReadState> read_states_;
  RaftLog log_;
  uint64_t max_msg_size_;
  uint64_t max_uncommitted_size_;
  ProgressTracker prs_;
  StateType state_ = StateType::kFollower;
  bool is_learner_ = false;
  std::vector<raftpb::Message> msgs_;
  uint64_t lead_ = kNone;
  // Target of an ongoing leadership transfer, or kNone.
  uint64_t lead_transferee_ = kNone;
  // Index of the latest conf change proposed by this leader; a new one is
  // only accepted once the applied index passed it.
  uint64_t pending_conf_index_ = 0;
  // Payload bytes of this leader's uncommitted entries.
  uint64_t uncommitted_size_ = 0;
  ReadOnly read_only_;
  // ReadIndex requests received before this leader committed an entry of
  // its term (its commit index is not known to be current until then).
  std::vector<raftpb::Message> pending_read_index_messages_;
  // Leader/candidate/follower: ticks since the last election timeout reset.
  int election_elapsed_ = 0;
  // Leader only: ticks since the last heartbeat.
  int heartbeat_elapsed_ = 0;
  bool check_quorum_;
  bool pre_vote_;
  int heartbeat_timeout_;
  int election_timeout_;
  int randomized_election_timeout_ = 0;
  bool disable_proposal_forwarding_;
  // Config::pick_election_timeout; when empty, rng_ picks.
  std::function<int(int)> pick_election_timeout_;
  std::mt19937_64 rng_;
};

}  // namespace etcdpp::raft
