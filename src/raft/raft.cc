#include "raft/raft.h"

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace etcdpp::raft {

using raftpb::Entry;
using raftpb::Message;
using raftpb::MessageType;

namespace {

// MsgVote context marking a vote requested by a leadership transfer: it
// bypasses the leader lease of CheckQuorum.
constexpr std::string_view kCampaignTransfer = "CampaignTransfer";

[[noreturn]] void Fatal(const std::string& what) {
  spdlog::critical("raft: {}", what);
  std::abort();
}

uint64_t PayloadSize(const std::vector<Entry>& ents) {
  uint64_t s = 0;
  for (const auto& e : ents) s += e.data().size();
  return s;
}

}  // namespace

std::string_view StateTypeName(StateType s) {
  switch (s) {
    case StateType::kFollower:
      return "StateFollower";
    case StateType::kCandidate:
      return "StateCandidate";
    case StateType::kLeader:
      return "StateLeader";
    case StateType::kPreCandidate:
      return "StatePreCandidate";
  }
  return "StateUnknown";
}

Status ErrProposalDropped(Code code) { return Status(code); }

bool IsLocalMsg(MessageType t) {
  return t == raftpb::MSG_HUP || t == raftpb::MSG_BEAT || t == raftpb::MSG_UNREACHABLE ||
         t == raftpb::MSG_SNAP_STATUS || t == raftpb::MSG_CHECK_QUORUM;
}

bool IsResponseMsg(MessageType t) {
  return t == raftpb::MSG_APP_RESP || t == raftpb::MSG_VOTE_RESP ||
         t == raftpb::MSG_HEARTBEAT_RESP || t == raftpb::MSG_UNREACHABLE ||
         t == raftpb::MSG_PRE_VOTE_RESP;
}

MessageType VoteRespMsgType(MessageType t) {
  switch (t) {
    case raftpb::MSG_VOTE:
      return raftpb::MSG_VOTE_RESP;
    case raftpb::MSG_PRE_VOTE:
      return raftpb::MSG_PRE_VOTE_RESP;
    default:
      Fatal("not a vote message: " + raftpb::MessageType_Name(t));
  }
}

Status Config::Validate() const {
  if (id == kNone) return Status::InvalidArgument("raft: cannot use none as id");
  if (heartbeat_tick <= 0) return Status::InvalidArgument("raft: heartbeat tick must be > 0");
  if (election_tick <= heartbeat_tick) {
    return Status::InvalidArgument("raft: election tick must be greater than heartbeat tick");
  }
  if (storage == nullptr) return Status::InvalidArgument("raft: storage cannot be nil");
  if (max_inflight_msgs <= 0) {
    return Status::InvalidArgument("raft: max inflight messages must be > 0");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::InvalidArgument(
        "raft: check_quorum must be enabled when read_only_option is kLeaseBased");
  }
  return Status::OK();
}

Raft::Raft(const Config& c)
    : id_(c.id),
      log_(c.storage, c.max_committed_size_per_ready == 0 ? c.max_size_per_msg
                                                          : c.max_committed_size_per_ready),
      max_msg_size_(c.max_size_per_msg),
      max_uncommitted_size_(c.max_uncommitted_entries_size == 0 ? kNoLimit
                                                                : c.max_uncommitted_entries_size),
      prs_(static_cast<size_t>(c.max_inflight_msgs)),
      read_only_(c.read_only_option),
      check_quorum_(c.check_quorum),
      pre_vote_(c.pre_vote),
      heartbeat_timeout_(c.heartbeat_tick),
      election_timeout_(c.election_tick),
      disable_proposal_forwarding_(c.disable_proposal_forwarding),
      rng_(c.seed * 0x9E3779B97F4A7C15ULL + c.id) {}

Result<std::unique_ptr<Raft>> Raft::Create(const Config& c) {
  ETCDPP_RETURN_IF_ERROR(c.Validate());
  auto init = c.storage->InitialState();
  if (!init.ok()) return init.status();
  std::unique_ptr<Raft> r(new Raft(c));
  const auto& cs = init->conf_state;
  const uint64_t next = r->log_.LastIndex() + 1;
  for (uint64_t v : cs.voters()) r->prs_.Set(v, 0, next, false);
  for (uint64_t l : cs.learners()) {
    r->prs_.Set(l, 0, next, true);
    if (l == r->id_) r->is_learner_ = true;
  }
  const auto& hs = init->hard_state;
  if (hs.term() != 0 || hs.vote() != 0 || hs.commit() != 0) {
    if (hs.commit() > r->log_.LastIndex()) {
      return Status::Corruption("raft: hard state commit " + std::to_string(hs.commit()) +
                                " is beyond the last index " + std::to_string(r->log_.LastIndex()) +
                                ". Was the raft log corrupted, truncated, or lost?");
    }
    // A snapshot only holds committed state, so a commit below the snapshot
    // index (the hard state was not yet persisted along with a newer
    // snapshot when the process stopped) is raised to it.
    r->log_.set_committed(std::max(hs.commit(), r->log_.committed()));
    r->term_ = hs.term();
    r->vote_ = hs.vote();
  }
  if (c.applied > 0) {
    if (c.applied > r->log_.committed()) {
      return Status::InvalidArgument("raft: applied index is beyond the commit index");
    }
    r->log_.AppliedTo(c.applied);
  }
  r->BecomeFollower(r->term_, kNone);
  spdlog::debug("raft: newRaft {:x} term: {}, commit: {}, applied: {}, lastindex: {}, lastterm: {}",
                r->id_, r->term_, r->log_.committed(), r->log_.applied(), r->log_.LastIndex(),
                r->log_.LastTerm());
  return r;
}

raftpb::HardState Raft::GetHardState() const {
  raftpb::HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Raft::Promotable() const {
  const Progress* pr = prs_.Get(id_);
  return pr != nullptr && !pr->is_learner && !log_.HasPendingSnapshot();
}

std::vector<Message> Raft::TakeMessages() {
  std::vector<Message> out;
  out.swap(msgs_);
  return out;
}

// ---------------------------------------------------------------------------
// Sending.

void Raft::Send(Message m) {
  m.set_from(id_);
  const auto t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    // Vote messages carry the term they are about (for PreVote: a future
    // term), set by the caller.
    if (m.term() == 0) Fatal("term should be set when sending " + raftpb::MessageType_Name(t));
  } else {
    if (m.term() != 0) Fatal("term should not be set when sending " + raftpb::MessageType_Name(t));
    // Proposals and read requests forwarded to the leader are treated as
    // local messages there: no term.
    if (t != raftpb::MSG_PROP && t != raftpb::MSG_READ_INDEX) m.set_term(term_);
  }
  msgs_.push_back(std::move(m));
}

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress* pr = prs_.Get(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  Message m;
  m.set_to(to);
  auto term = log_.Term(pr->next - 1);
  auto ents = log_.Entries(pr->next, max_msg_size_);
  if (ents.ok() && ents->empty() && !send_if_empty) return false;

  if (!term.ok() || !ents.ok()) {
    // The entries the follower needs were compacted: send a snapshot.
    if (!pr->recent_active) return false;
    auto snap = log_.Snapshot();
    if (!snap.ok()) {
      if (snap.status().code() == Code::kFailedPrecondition) return false;  // retry later
      Fatal("snapshot: " + snap.status().ToString());
    }
    if (snap->metadata().index() == 0) Fatal("need non-empty snapshot");
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = *snap;
    pr->BecomeSnapshot(snap->metadata().index());
    spdlog::debug("raft: {:x} paused sending replication messages to {:x}, sent snapshot {}", id_,
                  to, snap->metadata().index());
  } else {
    m.set_type(raftpb::MSG_APP);
    m.set_index(pr->next - 1);
    m.set_log_term(*term);
    for (auto& e : *ents) *m.add_entries() = std::move(e);
    m.set_commit(log_.committed());
    if (const int n = m.entries_size(); n != 0) {
      switch (pr->state) {
        case ProgressState::kReplicate: {
          // Optimistically stream in replicate state.
          const uint64_t last = m.entries(n - 1).index();
          pr->OptimisticUpdate(last);
          pr->inflights.Add(last);
          break;
        }
        case ProgressState::kProbe:
          pr->probe_sent = true;
          break;
        case ProgressState::kSnapshot:
          Fatal("sending append in unhandled state StateSnapshot");
      }
    }
  }
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  // Never advance a follower's commit beyond what it is known to have: it
  // might not have the entries yet.
  const Progress* pr = prs_.Get(to);
  const uint64_t commit = std::min(pr->match, log_.committed());
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(commit);
  m.set_context(ctx);
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : prs_.progress()) {
    if (id != id_) SendAppend(id);
  }
}

void Raft::BcastHeartbeat() { BcastHeartbeatWithCtx(read_only_.LastPendingRequestCtx()); }

void Raft::BcastHeartbeatWithCtx(const std::string& ctx) {
  for (auto& [id, pr] : prs_.progress()) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  Send(std::move(m));
}

// ---------------------------------------------------------------------------
// State transitions.

bool Raft::MaybeCommit() {
  const uint64_t mci = prs_.Committed();
  return log_.MaybeCommit(mci, term_);
}

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  prs_.ResetVotes();
  const uint64_t last = log_.LastIndex();
  for (auto& [id, pr] : prs_.progress()) {
    const bool learner = pr.is_learner;
    pr = Progress(prs_.max_inflight());
    pr.next = last + 1;
    pr.is_learner = learner;
    if (id == id_) pr.match = last;
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  read_only_ = ReadOnly(read_only_.option());
  pending_read_index_messages_.clear();
}

bool Raft::AppendEntry(std::vector<Entry>* es) {
  uint64_t li = log_.LastIndex();
  for (size_t i = 0; i < es->size(); ++i) {
    (*es)[i].set_term(term_);
    (*es)[i].set_index(li + 1 + i);
  }
  if (!IncreaseUncommittedSize(*es)) return false;
  li = log_.Append(*es);
  // The leader's own copy counts towards the quorum as soon as it is in the
  // log: the server persists Ready.entries before applying committed ones.
  if (Progress* self = prs_.Get(id_)) self->MaybeUpdate(li);
  // The caller broadcasts regardless of whether this committed anything.
  MaybeCommit();
  return true;
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
  spdlog::debug("raft: {:x} became follower at term {}", id_, term_);
}

void Raft::BecomeCandidate() {
  if (state_ == StateType::kLeader) Fatal("invalid transition [leader -> candidate]");
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
  spdlog::debug("raft: {:x} became candidate at term {}", id_, term_);
}

void Raft::BecomePreCandidate() {
  if (state_ == StateType::kLeader) Fatal("invalid transition [leader -> pre-candidate]");
  // A pre-candidate changes neither term nor vote: a failed pre-election
  // leaves no trace on the cluster.
  prs_.ResetVotes();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
  spdlog::debug("raft: {:x} became pre-candidate at term {}", id_, term_);
}

void Raft::BecomeLeader() {
  if (state_ == StateType::kFollower) Fatal("invalid transition [follower -> leader]");
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  // The leader trivially replicates to itself.
  if (Progress* self = prs_.Get(id_)) self->BecomeReplicate();
  // There may or may not be a pending conf change in the uncommitted tail;
  // conservatively wait until all of it is applied before accepting one.
  pending_conf_index_ = log_.LastIndex();
  // Raft paper 5.4.2 / 8: commit an entry of the new term, which also
  // commits everything before it.
  std::vector<Entry> empty(1);
  if (!AppendEntry(&empty)) Fatal("empty entry was dropped");
  // The empty entry does not count against the uncommitted quota.
  ReduceUncommittedSize(empty);
  spdlog::debug("raft: {:x} became leader at term {}", id_, term_);
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ + static_cast<int>(rng_() % static_cast<uint64_t>(election_timeout_));
}

// ---------------------------------------------------------------------------
// Ticks.

void Raft::Tick() {
  if (state_ == StateType::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_from(id_);
    m.set_type(raftpb::MSG_HUP);
    (void)Step(std::move(m));
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.set_from(id_);
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      (void)Step(std::move(m));
    }
    // A transfer that did not finish within an election timeout is aborted
    // so the leader accepts proposals again.
    if (state_ == StateType::kLeader && lead_transferee_ != kNone) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_from(id_);
    m.set_type(raftpb::MSG_BEAT);
    (void)Step(std::move(m));
  }
}

// ---------------------------------------------------------------------------
// Elections.

size_t Raft::NumPendingConfChanges() const {
  if (log_.committed() <= log_.applied()) return 0;
  auto ents = log_.Slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
  if (!ents.ok()) Fatal("unexpected error getting unapplied entries: " + ents.status().ToString());
  size_t n = 0;
  for (const auto& e : *ents) n += e.type() == raftpb::ENTRY_CONF_CHANGE ? 1 : 0;
  return n;
}

void Raft::Hup(CampaignType t) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) {
    spdlog::warn("raft: {:x} is unpromotable and can not campaign", id_);
    return;
  }
  // A committed but unapplied conf change may remove us or change the
  // quorum: wait until it is applied.
  if (NumPendingConfChanges() != 0) {
    spdlog::warn("raft: {:x} cannot campaign at term {}: pending configuration changes to apply",
                 id_, term_);
    return;
  }
  Campaign(t);
}

ProgressTracker::Tally Raft::Poll(uint64_t id, bool granted) {
  prs_.RecordVote(id, granted);
  return prs_.TallyVotes();
}

void Raft::Campaign(CampaignType t) {
  if (!Promotable()) return;
  uint64_t term;
  MessageType vote_msg;
  if (t == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_msg = raftpb::MSG_PRE_VOTE;
    // Pre-votes are requested for the next term without incrementing ours.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_msg = raftpb::MSG_VOTE;
    term = term_;
  }
  if (Poll(id_, true).result == VoteResult::kWon) {
    // We are the only voter.
    if (t == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t id : prs_.VoterIds()) {
    if (id == id_) continue;
    Message m;
    m.set_term(term);
    m.set_to(id);
    m.set_type(vote_msg);
    m.set_index(log_.LastIndex());
    m.set_log_term(log_.LastTerm());
    if (t == CampaignType::kTransfer) m.set_context(std::string(kCampaignTransfer));
    Send(std::move(m));
  }
}

// ---------------------------------------------------------------------------
// Step.

Status Raft::Step(Message m) {
  // Term handling first (Raft paper 5.1): a higher term makes us follow,
  // a lower one is stale.
  if (m.term() == 0) {
    // Local message.
  } else if (m.term() > term_) {
    const bool is_vote = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE;
    if (is_vote) {
      const bool force = m.context() == kCampaignTransfer;
      const bool in_lease =
          check_quorum_ && lead_ != kNone && election_elapsed_ < election_timeout_;
      if (!force && in_lease) {
        // Leader lease (thesis 4.2.3): while we hear from a live leader, a
        // disruptive candidate neither moves our term nor gets our vote.
        return Status::OK();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change our term in response to a pre-vote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // Granted pre-votes carry the future term we asked about; we bump our
      // term when we win the pre-election.
    } else {
      if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
          m.type() == raftpb::MSG_SNAP) {
        BecomeFollower(m.term(), m.from());
      } else {
        BecomeFollower(m.term(), kNone);
      }
    }
  } else if (m.term() < term_) {
    if ((check_quorum_ || pre_vote_) &&
        (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader (e.g. one that was partitioned away and cannot win an
      // election because of the lease/pre-vote) would otherwise never learn
      // the new term. Answer so it steps down.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(raftpb::MSG_APP_RESP);
      Send(std::move(resp));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Reject so a pre-candidate with a lower term does not wait forever.
      Message resp;
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_reject(true);
      Send(std::move(resp));
    }
    return Status::OK();
  }

  switch (m.type()) {
    case raftpb::MSG_HUP:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return Status::OK();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE: {
      // We can vote if this is a repeat of a vote we already cast, or we have
      // not voted and know no leader in this term, or it is a pre-vote for a
      // future term...
      const bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                            (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_);
      // ...and the candidate's log is at least as up to date (paper 5.4.1).
      Message resp;
      resp.set_to(m.from());
      resp.set_type(VoteRespMsgType(m.type()));
      if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
        // The response carries the term of the request (for pre-votes, the
        // future term) so the candidate recognizes it.
        resp.set_term(m.term());
        Send(std::move(resp));
        if (m.type() == raftpb::MSG_VOTE) {
          // Only real votes are recorded.
          election_elapsed_ = 0;
          vote_ = m.from();
        }
      } else {
        resp.set_term(term_);
        resp.set_reject(true);
        Send(std::move(resp));
      }
      return Status::OK();
    }
    default:
      break;
  }
  switch (state_) {
    case StateType::kLeader:
      return StepLeader(m);
    case StateType::kCandidate:
    case StateType::kPreCandidate:
      return StepCandidate(m);
    case StateType::kFollower:
      return StepFollower(m);
  }
  return Status::OK();
}

Status Raft::StepLeader(Message& m) {
  // Messages that need no progress of the sender.
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BcastHeartbeat();
      return Status::OK();
    case raftpb::MSG_CHECK_QUORUM: {
      if (Progress* self = prs_.Get(id_)) self->recent_active = true;
      if (!prs_.QuorumActive()) {
        spdlog::warn("raft: {:x} stepped down to follower since quorum is not active", id_);
        BecomeFollower(term_, kNone);
      }
      // Mark everyone but ourselves inactive for the next round.
      for (auto& [id, pr] : prs_.progress()) {
        if (id != id_) pr.recent_active = false;
      }
      return Status::OK();
    }
    case raftpb::MSG_PROP: {
      if (m.entries_size() == 0) Fatal("stepped empty MsgProp");
      if (prs_.Get(id_) == nullptr) {
        // We were removed from the configuration while leading.
        return ErrProposalDropped(Code::kNotLeader);
      }
      if (lead_transferee_ != kNone) return ErrProposalDropped(Code::kLeaderChanged);
      std::vector<Entry> ents(m.entries().begin(), m.entries().end());
      for (size_t i = 0; i < ents.size(); ++i) {
        if (ents[i].type() != raftpb::ENTRY_CONF_CHANGE) continue;
        if (pending_conf_index_ > log_.applied()) {
          // One conf change at a time: a second one becomes a no-op entry
          // (its proposer sees it applied as an empty entry and retries).
          spdlog::info("raft: {:x} ignoring conf change at index {}: previous change pending", id_,
                       log_.LastIndex() + i + 1);
          ents[i] = Entry();
        } else {
          pending_conf_index_ = log_.LastIndex() + i + 1;
        }
      }
      if (!AppendEntry(&ents)) return ErrProposalDropped(Code::kTooManyRequests);
      BcastAppend();
      return Status::OK();
    }
    case raftpb::MSG_READ_INDEX:
      HandleReadIndexAsLeader(m);
      return Status::OK();
    default:
      break;
  }

  Progress* pr = prs_.Get(m.from());
  if (pr == nullptr) return Status::OK();
  switch (m.type()) {
    case raftpb::MSG_APP_RESP: {
      pr->recent_active = true;
      if (m.reject()) {
        // The follower's (reject_hint, log_term) is its best guess; skip our
        // entries with higher terms too: they cannot match it.
        uint64_t next_probe = m.reject_hint();
        if (m.log_term() > 0) next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term());
        if (pr->MaybeDecrTo(m.index(), next_probe)) {
          if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
          SendAppend(m.from());
        }
        break;
      }
      const bool old_paused = pr->IsPaused();
      if (!pr->MaybeUpdate(m.index())) break;
      switch (pr->state) {
        case ProgressState::kProbe:
          pr->BecomeReplicate();
          break;
        case ProgressState::kSnapshot:
          if (pr->match >= pr->pending_snapshot) {
            pr->BecomeProbe();
            pr->BecomeReplicate();
          }
          break;
        case ProgressState::kReplicate:
          pr->inflights.FreeLE(m.index());
          break;
      }
      if (MaybeCommit()) {
        // The commit index moved in our term: pending reads can proceed.
        ReleasePendingReadIndexMessages();
        BcastAppend();
      } else if (old_paused) {
        // The follower may be missing the latest commit index.
        SendAppend(m.from());
      }
      // Flow control may now allow several messages at once.
      while (MaybeSendAppend(m.from(), false)) {
      }
      if (m.from() == lead_transferee_ && pr->match == log_.LastIndex()) {
        spdlog::info("raft: {:x} sent MsgTimeoutNow to {:x} after its log caught up", id_,
                     m.from());
        SendTimeoutNow(m.from());
      }
      break;
    }
    case raftpb::MSG_HEARTBEAT_RESP: {
      pr->recent_active = true;
      pr->probe_sent = false;
      // Free one slot of a full window so replication makes progress.
      if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) {
        pr->inflights.FreeFirstOne();
      }
      if (pr->match < log_.LastIndex()) SendAppend(m.from());
      if (read_only_.option() != ReadOnlyOption::kSafe || m.context().empty()) break;
      const auto* acks = read_only_.RecvAck(m.from(), m.context());
      if (acks == nullptr || prs_.VoteResultOf(*acks) != VoteResult::kWon) break;
      for (auto& rs : read_only_.Advance(m.context())) RespondToReadIndex(rs.req, rs.index);
      break;
    }
    case raftpb::MSG_SNAP_STATUS: {
      if (pr->state != ProgressState::kSnapshot) break;
      if (m.reject()) pr->pending_snapshot = 0;
      pr->BecomeProbe();
      // Success: wait for the follower's MsgAppResp before sending more.
      // Failure: wait a heartbeat interval before retrying.
      pr->probe_sent = true;
      break;
    }
    case raftpb::MSG_UNREACHABLE:
      // An optimistic MsgApp was probably lost: go back to probing.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    case raftpb::MSG_TRANSFER_LEADER: {
      if (pr->is_learner) {
        spdlog::info("raft: {:x} is learner, ignored transferring leadership", m.from());
        break;
      }
      const uint64_t transferee = m.from();
      if (lead_transferee_ != kNone) {
        if (lead_transferee_ == transferee) break;  // already in progress
        AbortLeaderTransfer();
      }
      if (transferee == id_) break;  // already leader
      // The transfer must finish within an election timeout.
      election_elapsed_ = 0;
      lead_transferee_ = transferee;
      if (pr->match == log_.LastIndex()) {
        SendTimeoutNow(transferee);
      } else {
        SendAppend(transferee);
      }
      break;
    }
    default:
      break;
  }
  return Status::OK();
}

Status Raft::StepCandidate(Message& m) {
  // Only the responses to our own kind of election count.
  const MessageType my_resp =
      state_ == StateType::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return ErrProposalDropped(Code::kNoLeader);
    case raftpb::MSG_APP:
      // A leader exists for this term (m.term() == term_).
      BecomeFollower(m.term(), m.from());
      HandleAppendEntries(m);
      break;
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      break;
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      break;
    default:
      if (m.type() != my_resp) break;
      {
        const auto tally = Poll(m.from(), !m.reject());
        if (tally.result == VoteResult::kWon) {
          if (state_ == StateType::kPreCandidate) {
            Campaign(CampaignType::kElection);
          } else {
            BecomeLeader();
            BcastAppend();
          }
        } else if (tally.result == VoteResult::kLost) {
          // A rejected pre-vote carries a term we may not have seen; keep ours.
          BecomeFollower(term_, kNone);
        }
      }
      break;
  }
  return Status::OK();
}

Status Raft::StepFollower(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP:
      if (lead_ == kNone) return ErrProposalDropped(Code::kNoLeader);
      if (disable_proposal_forwarding_) return ErrProposalDropped(Code::kNotLeader);
      m.set_to(lead_);
      Send(std::move(m));
      break;
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleAppendEntries(m);
      break;
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleHeartbeat(m);
      break;
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleSnapshot(m);
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      if (lead_ == kNone) break;
      m.set_to(lead_);
      Send(std::move(m));
      break;
    case raftpb::MSG_TIMEOUT_NOW:
      // Leadership transfers skip pre-vote: we know the leader is alive and
      // wants us to take over.
      Hup(CampaignType::kTransfer);
      break;
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) break;  // the requester times out and retries
      m.set_to(lead_);
      Send(std::move(m));
      break;
    case raftpb::MSG_READ_INDEX_RESP:
      if (m.entries_size() != 1) break;
      read_states_.push_back(ReadState{m.index(), m.entries(0).data()});
      break;
    default:
      break;
  }
  return Status::OK();
}

void Raft::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // Everything up to our commit index matches: tell the leader.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  std::vector<Entry> ents(m.entries().begin(), m.entries().end());
  if (auto last_new = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), ents)) {
    resp.set_index(*last_new);
  } else {
    // Hint the leader at the last index that could match: at most our last
    // index, and skipping our entries with terms above the probe's term
    // (they cannot match). The leader does the same on its side with
    // (reject_hint, log_term), so a divergent term costs one round trip.
    uint64_t hint = std::min(m.index(), log_.LastIndex());
    hint = log_.FindConflictByTerm(hint, m.log_term());
    auto hint_term = log_.Term(hint);
    resp.set_index(m.index());
    resp.set_reject(true);
    resp.set_reject_hint(hint);
    resp.set_log_term(hint_term.ok() ? *hint_term : 0);
  }
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(m.commit());
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (Restore(m.snapshot())) {
    spdlog::info("raft: {:x} restored snapshot [index: {}, term: {}]", id_,
                 m.snapshot().metadata().index(), m.snapshot().metadata().term());
    resp.set_index(log_.LastIndex());
  } else {
    resp.set_index(log_.committed());
  }
  Send(std::move(resp));
}

bool Raft::Restore(const raftpb::Snapshot& s) {
  const auto& md = s.metadata();
  if (md.index() <= log_.committed()) return false;
  if (state_ != StateType::kFollower) {
    // Only followers restore (a leader never receives a snapshot of its term).
    spdlog::warn("raft: {:x} attempted to restore snapshot as non-follower", id_);
    BecomeFollower(term_ + 1, kNone);
    return false;
  }
  // A voter cannot be demoted to learner by a snapshot.
  if (!is_learner_) {
    for (uint64_t l : md.conf_state().learners()) {
      if (l == id_) {
        spdlog::error("raft: {:x} can't become learner when restoring snapshot", id_);
        return false;
      }
    }
  }
  if (log_.MatchTerm(md.index(), md.term())) {
    // We already have the snapshot's entries: just fast-forward the commit.
    log_.CommitTo(md.index());
    return false;
  }
  log_.Restore(s);
  prs_.Clear();
  const uint64_t next = log_.LastIndex() + 1;
  for (uint64_t v : md.conf_state().voters()) {
    prs_.Set(v, v == id_ ? log_.LastIndex() : 0, next, false);
  }
  for (uint64_t l : md.conf_state().learners()) {
    prs_.Set(l, l == id_ ? log_.LastIndex() : 0, next, true);
  }
  is_learner_ = prs_.Get(id_) != nullptr && prs_.Get(id_)->is_learner;
  return true;
}

// ---------------------------------------------------------------------------
// ReadIndex.

bool Raft::CommittedEntryInCurrentTerm() const {
  auto t = log_.Term(log_.committed());
  return t.ok() && *t == term_;
}

void Raft::HandleReadIndexAsLeader(const Message& m) {
  if (m.entries_size() != 1) return;
  if (prs_.IsSingleton()) {
    // The only voter: our commit index is current by definition.
    RespondToReadIndex(m, log_.committed());
    return;
  }
  // Until we commit an entry of our term we do not know the cluster's commit
  // index (thesis 6.4 step 1): postpone.
  if (!CommittedEntryInCurrentTerm()) {
    pending_read_index_messages_.push_back(m);
    return;
  }
  SendReadIndexResponse(m);
}

void Raft::SendReadIndexResponse(const Message& m) {
  switch (read_only_.option()) {
    case ReadOnlyOption::kSafe:
      read_only_.AddRequest(log_.committed(), m);
      // We acknowledge our own request.
      read_only_.RecvAck(id_, m.entries(0).data());
      BcastHeartbeatWithCtx(m.entries(0).data());
      break;
    case ReadOnlyOption::kLeaseBased:
      RespondToReadIndex(m, log_.committed());
      break;
  }
}

void Raft::RespondToReadIndex(const Message& req, uint64_t index) {
  if (req.from() == kNone || req.from() == id_) {
    read_states_.push_back(ReadState{index, req.entries(0).data()});
    return;
  }
  Message resp;
  resp.set_type(raftpb::MSG_READ_INDEX_RESP);
  resp.set_to(req.from());
  resp.set_index(index);
  *resp.mutable_entries() = req.entries();
  Send(std::move(resp));
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> msgs;
  msgs.swap(pending_read_index_messages_);
  for (const auto& m : msgs) SendReadIndexResponse(m);
}

// ---------------------------------------------------------------------------
// Membership.

raftpb::ConfState Raft::ApplyConfChange(const raftpb::ConfChange& cc) {
  if (cc.node_id() != kNone) {
    switch (cc.type()) {
      case raftpb::CONF_CHANGE_ADD_NODE:
        AddNodeOrLearner(cc.node_id(), false);
        break;
      case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
        AddNodeOrLearner(cc.node_id(), true);
        break;
      case raftpb::CONF_CHANGE_REMOVE_NODE:
        RemoveNode(cc.node_id());
        break;
      default:  // CONF_CHANGE_UPDATE_NODE: nothing for Raft.
        break;
    }
  }
  return prs_.ConfState();
}

void Raft::AddNodeOrLearner(uint64_t id, bool is_learner) {
  Progress* pr = prs_.Get(id);
  if (pr == nullptr) {
    prs_.Set(id, 0, log_.LastIndex() + 1, is_learner);
  } else {
    if (is_learner && !pr->is_learner) {
      spdlog::info("raft: {:x} ignored addLearner: cannot demote voter {:x} to learner", id_, id);
      return;
    }
    // Redundant (e.g. the bootstrap entries are applied a second time).
    if (is_learner == pr->is_learner) return;
    // Promote the learner, keeping its progress.
    pr->is_learner = false;
  }
  if (id == id_) is_learner_ = is_learner;
  // A new member counts as active, or CheckQuorum could fire before it had a
  // chance to talk to us.
  prs_.Get(id)->recent_active = true;
}

void Raft::RemoveNode(uint64_t id) {
  prs_.Remove(id);
  if (id == id_) is_learner_ = false;
  if (prs_.progress().empty()) return;
  // The quorum may have shrunk: entries may now be committed.
  if (state_ == StateType::kLeader) {
    if (MaybeCommit()) {
      ReleasePendingReadIndexMessages();
      BcastAppend();
    }
    if (lead_transferee_ == id) AbortLeaderTransfer();
  }
}

bool Raft::IncreaseUncommittedSize(const std::vector<Entry>& ents) {
  const uint64_t s = PayloadSize(ents);
  if (uncommitted_size_ > 0 && s > 0 && uncommitted_size_ + s > max_uncommitted_size_) {
    // Always allow at least one proposal, however large, when nothing is
    // outstanding.
    return false;
  }
  uncommitted_size_ += s;
  return true;
}

void Raft::ReduceUncommittedSize(const std::vector<Entry>& ents) {
  if (uncommitted_size_ == 0) return;  // followers do not track it
  const uint64_t s = PayloadSize(ents);
  uncommitted_size_ = s > uncommitted_size_ ? 0 : uncommitted_size_ - s;
}

}  // namespace etcdpp::raft
