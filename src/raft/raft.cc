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

// The message's entries, moved out of it (a protobuf move without arenas is
// a swap): their data is not copied on its way into the log.
std::vector<Entry> TakeEntries(Message& m) {
  std::vector<Entry> ents;
  ents.reserve(static_cast<size_t>(m.entries_size()));
  for (Entry& e : *m.mutable_entries()) ents.push_back(std::move(e));
  m.clear_entries();
  return ents;
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
      Fatal("VoteRespMsgType needs MsgVote or MsgPreVote, got " + raftpb::MessageType_Name(t));
  }
}

Status Config::Validate() const {
  if (id == kNone) {
    return Status::InvalidArgument("raft config: id is 0, which the wire reserves for no node");
  }
  if (heartbeat_tick <= 0)
    return Status::InvalidArgument("raft config: heartbeat_tick is not positive");
  if (election_tick <= heartbeat_tick) {
    return Status::InvalidArgument("raft config: election_tick does not exceed heartbeat_tick");
  }
  if (storage == nullptr) return Status::InvalidArgument("raft config: no storage given");
  if (max_inflight_msgs <= 0) {
    return Status::InvalidArgument("raft config: max_inflight_msgs is not positive");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    // The lease is only sound while a leader that lost its quorum steps down.
    return Status::InvalidArgument("raft config: lease-based reads need check_quorum");
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
      pick_election_timeout_(c.pick_election_timeout),
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
      // The commit index is only persisted after the entries it covers, so
      // storage lost entries that this node had acknowledged.
      return Status::Corruption("raft: persisted commit index " + std::to_string(hs.commit()) +
                                " lies past the last stored entry " +
                                std::to_string(r->log_.LastIndex()));
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
      return Status::InvalidArgument("raft: Config::applied " + std::to_string(c.applied) +
                                     " exceeds the persisted commit index " +
                                     std::to_string(r->log_.committed()));
    }
    r->log_.AppliedTo(c.applied);
  }
  r->BecomeFollower(r->term_, kNone);
  spdlog::debug(
      "raft: node {:x} starts at term {} with log up to {} (term {}), commit {}, applied {}",
      r->id_, r->term_, r->log_.LastIndex(), r->log_.LastTerm(), r->log_.committed(),
      r->log_.applied());
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
    // The caller knows which term an election message speaks for; it is not
    // always ours (a pre-vote names the next term, a grant echoes the
    // candidate's).
    if (m.term() == 0) Fatal(raftpb::MessageType_Name(t) + " built without its election term");
  } else {
    if (m.term() != 0) {
      Fatal(raftpb::MessageType_Name(t) + " built with a term; Send stamps the current one");
    }
    // MsgProp and MsgReadIndex only relay a local request to the leader,
    // which steps them as if they had been made there: they stay termless.
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
    // Our log no longer reaches back to pr->next - 1: only a snapshot can
    // bring this follower up to date. Not to a peer we have not heard from
    // lately: the transfer is expensive and would likely be lost.
    if (!pr->recent_active) return false;
    auto snap = log_.Snapshot();
    if (!snap.ok()) {
      // Still being built: the next heartbeat response triggers a retry.
      if (snap.status().code() == Code::kFailedPrecondition) return false;
      Fatal("cannot read the snapshot a follower needs: " + snap.status().ToString());
    }
    if (snap->metadata().index() == 0) {
      Fatal("the log is compacted but storage offers no snapshot to replace it");
    }
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = *snap;
    pr->BecomeSnapshot(snap->metadata().index());
    spdlog::debug("raft: {:x} sends {:x} the snapshot at index {}; appends wait for its report",
                  id_, to, snap->metadata().index());
  } else {
    m.set_type(raftpb::MSG_APP);
    m.set_index(pr->next - 1);
    m.set_log_term(*term);
    for (auto& e : *ents) *m.add_entries() = std::move(e);
    m.set_commit(log_.committed());
    if (const int n = m.entries_size(); n != 0) {
      switch (pr->state) {
        case ProgressState::kReplicate: {
          // Assume delivery and move next past this batch now, so the next
          // MsgApp can leave before this one is acknowledged; the inflight
          // window bounds how far ahead we get.
          const uint64_t last = m.entries(n - 1).index();
          pr->SentUpTo(last);
          pr->inflights.Add(last);
          break;
        }
        case ProgressState::kProbe:
          pr->probe_sent = true;
          break;
        case ProgressState::kSnapshot:
          // IsPaused() is true in this state, so we returned above.
          Fatal("MsgApp built for a follower that awaits a snapshot");
      }
    }
  }
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  // Only up to match is the follower's log known to equal ours; a commit
  // index past it could make the follower apply entries we never sent it.
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

void Raft::BcastHeartbeat() { BcastHeartbeatWithCtx(read_only_.LastPendingKey()); }

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
  read_only_.Clear();
  pending_read_index_messages_.clear();
}

bool Raft::AppendEntry(std::vector<Entry>* es) {
  uint64_t li = log_.LastIndex();
  for (size_t i = 0; i < es->size(); ++i) {
    (*es)[i].set_term(term_);
    (*es)[i].set_index(li + 1 + i);
  }
  if (!IncreaseUncommittedSize(*es)) return false;
  li = log_.Append(std::move(*es));
  // The leader's own copy counts towards the quorum as soon as it is in the
  // log: the server persists Ready.entries before applying committed ones.
  if (Progress* self = prs_.Get(id_)) self->MaybeUpdate(li);
  // A single voter commits here. Whether anything committed does not change
  // what the caller does next: it sends the new entries to every follower.
  MaybeCommit();
  return true;
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
  spdlog::debug("raft: {:x} follows at term {} (leader {:x})", id_, term_, lead_);
}

void Raft::BecomeCandidate() {
  if (state_ == StateType::kLeader) Fatal("a leader cannot start an election");
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
  spdlog::debug("raft: {:x} campaigns for term {}", id_, term_);
}

void Raft::BecomePreCandidate() {
  if (state_ == StateType::kLeader) Fatal("a leader cannot start a pre-election");
  // Term and vote stay untouched: a pre-election is only a poll, and a node
  // that loses it must be exactly where it was before.
  prs_.ResetVotes();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
  spdlog::debug("raft: {:x} polls for term {} (pre-election)", id_, term_ + 1);
}

void Raft::BecomeLeader() {
  if (state_ == StateType::kFollower) Fatal("a follower cannot lead without winning an election");
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  // Our own log needs no probing: Reset() set match to our last index.
  if (Progress* self = prs_.Get(id_)) self->BecomeReplicate();
  // Entries inherited from earlier terms are uncommitted and unscanned; one
  // of them may be a membership change. Accept a new one only once all of
  // them are applied.
  pending_conf_index_ = log_.LastIndex();
  // Earlier terms' entries can only be committed through one of our own
  // term (paper 5.4.2, Figure 8), so append it now rather than waiting for
  // a client write.
  std::vector<Entry> empty(1);
  if (!AppendEntry(&empty)) Fatal("the uncommitted-size limit refused a new leader's empty entry");
  // It carries no payload, so it must not count against the client quota.
  ReduceUncommittedSize(empty);
  spdlog::debug("raft: {:x} leads term {}", id_, term_);
}

void Raft::ResetRandomizedElectionTimeout() {
  if (!pick_election_timeout_) {
    randomized_election_timeout_ =
        election_timeout_ + static_cast<int>(rng_() % static_cast<uint64_t>(election_timeout_));
    return;
  }
  const int t = pick_election_timeout_(election_timeout_);
  // Below election_tick a follower would campaign while its peers still
  // honour the leader lease and ignore it; the upper bound keeps the
  // failover time within what the configuration promises.
  if (t < election_timeout_ || t >= 2 * election_timeout_) {
    Fatal("pick_election_timeout returned " + std::to_string(t) + " ticks, outside [" +
          std::to_string(election_timeout_) + ", " + std::to_string(2 * election_timeout_) + ")");
  }
  randomized_election_timeout_ = t;
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
    // The transferee had a full election timeout to take over; it did not,
    // so stop refusing proposals and keep leading.
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
  if (!ents.ok()) {
    Fatal("cannot read the committed, unapplied entries: " + ents.status().ToString());
  }
  size_t n = 0;
  for (const auto& e : *ents) n += e.type() == raftpb::ENTRY_CONF_CHANGE ? 1 : 0;
  return n;
}

void Raft::Hup(CampaignType t) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) {
    spdlog::warn("raft: {:x} stays passive: it is not a voter, or awaits a snapshot", id_);
    return;
  }
  // Until the server applies a committed membership change we would count
  // votes against a configuration that is about to change (it may even
  // remove us).
  if (NumPendingConfChanges() != 0) {
    spdlog::warn(
        "raft: {:x} defers its campaign at term {} until committed membership changes "
        "are applied",
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
    // Ask about the term we would campaign for; term_ itself moves only
    // after the poll is won.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_msg = raftpb::MSG_VOTE;
    term = term_;
  }
  if (Poll(id_, true).result == VoteResult::kWon) {
    // Our own vote was a majority: there is no other voter to ask.
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
        // Leader lease (thesis 4.2.3): we heard from a leader within the
        // minimum election timeout, so this candidate cannot be replacing a
        // failed one. Ignoring it keeps, e.g., a rejoining partitioned node
        // from deposing a healthy leader.
        return Status::OK();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // A poll must not move anyone's term: that is its whole point.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A grant echoes the term we polled for, not one anybody holds; our
      // term moves when Campaign(kElection) runs after the poll is won.
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
      // With CheckQuorum or PreVote, a higher term no longer spreads through
      // vote requests alone (they can be ignored or are only polls). So when
      // the sender of this MsgApp/heartbeat leads an older term, e.g. we
      // raised ours while cut off, answer with our term: it steps down, and
      // the cluster converges on one term instead of ignoring us forever.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(raftpb::MSG_APP_RESP);
      Send(std::move(resp));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      // A poll from an older term cannot succeed; say so, with our term,
      // instead of leaving the pre-candidate to time out.
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
      // One vote per term (paper 5.2): grant only a candidate we already
      // voted for (a retransmission), or anyone if we have neither voted nor
      // seen a leader this term. A poll for a later term binds nothing, so
      // it may always be granted.
      const bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                            (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_);
      // In every case the candidate's log must hold all we have (paper 5.4.1).
      Message resp;
      resp.set_to(m.from());
      resp.set_type(VoteRespMsgType(m.type()));
      if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
        // Answer in the term asked about. For a poll our own term may be
        // older, and the pre-candidate drops answers from older terms.
        resp.set_term(m.term());
        Send(std::move(resp));
        if (m.type() == raftpb::MSG_VOTE) {
          // A poll grant promises nothing; a real vote must survive a restart.
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
  // Local messages and client requests: no sender progress involved.
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BcastHeartbeat();
      return Status::OK();
    case raftpb::MSG_CHECK_QUORUM: {
      if (Progress* self = prs_.Get(id_)) self->recent_active = true;
      if (!prs_.QuorumActive()) {
        spdlog::warn(
            "raft: {:x} gives up leading term {}: no quorum of voters was heard from "
            "within the last election timeout",
            id_, term_);
        BecomeFollower(term_, kNone);
      }
      // Each round starts from nothing: a peer must be heard from again.
      for (auto& [id, pr] : prs_.progress()) {
        if (id != id_) pr.recent_active = false;
      }
      return Status::OK();
    }
    case raftpb::MSG_PROP: {
      if (m.entries_size() == 0) Fatal("MsgProp without entries");
      if (prs_.Get(id_) == nullptr) {
        // Our own removal was applied: nothing we append can commit any
        // more, and the client should go to the next leader.
        return ErrProposalDropped(Code::kNotLeader);
      }
      if (lead_transferee_ != kNone) return ErrProposalDropped(Code::kLeaderChanged);
      std::vector<Entry> ents = TakeEntries(m);
      for (size_t i = 0; i < ents.size(); ++i) {
        if (ents[i].type() != raftpb::ENTRY_CONF_CHANGE) continue;
        if (pending_conf_index_ > log_.applied()) {
          // One conf change at a time: a second one becomes a no-op entry
          // (its proposer sees it applied as an empty entry and retries).
          spdlog::info(
              "raft: {:x} turns the membership change at index {} into an empty entry: "
              "the one at index {} is not applied yet",
              id_, log_.LastIndex() + i + 1, pending_conf_index_);
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
        if (m.log_term() > 0) next_probe = log_.HighestPossibleMatch(m.reject_hint(), m.log_term());
        if (pr->BackOffAfterRejection(m.index(), next_probe)) {
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
          pr->inflights.FreeUpTo(m.index());
          break;
      }
      if (MaybeCommit()) {
        // The commit index moved in our term: pending reads can proceed.
        ReleasePendingReadIndexMessages();
        BcastAppend();
      } else if (old_paused) {
        // While paused this follower got nothing, so it may not know our
        // commit index yet; an append (even empty) carries it.
        SendAppend(m.from());
      }
      // The acknowledgement may have opened the window by several slots (or
      // moved a probe into replicate state): fill it, without empty appends.
      while (MaybeSendAppend(m.from(), false)) {
      }
      if (m.from() == lead_transferee_ && pr->match == log_.LastIndex()) {
        spdlog::info("raft: {:x} hands leadership to {:x}, whose log is now complete", id_,
                     m.from());
        SendTimeoutNow(m.from());
      }
      break;
    }
    case raftpb::MSG_HEARTBEAT_RESP: {
      pr->recent_active = true;
      pr->probe_sent = false;
      // The follower is alive, so an acknowledgement was probably lost;
      // without one slot back, a full window would stall it until a timeout.
      if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) {
        pr->inflights.FreeOldest();
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
      // Pause either way. After a delivered snapshot the follower's
      // MsgAppResp tells us where to continue; after a failed one the next
      // heartbeat response unpauses us, which spaces out the retries.
      pr->probe_sent = true;
      break;
    }
    case raftpb::MSG_UNREACHABLE:
      // Something we streamed ahead of acknowledgements did not arrive, so
      // next is likely wrong: find the follower's real position again.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    case raftpb::MSG_TRANSFER_LEADER: {
      if (pr->is_learner) {
        spdlog::info("raft: leadership cannot go to {:x}: it is a learner", m.from());
        break;
      }
      const uint64_t transferee = m.from();
      if (lead_transferee_ != kNone) {
        if (lead_transferee_ == transferee) break;  // a retransmitted request
        AbortLeaderTransfer();
      }
      if (transferee == id_) break;  // nothing to hand over
      // Proposals are refused until the transfer ends, so bound it: the
      // heartbeat tick aborts it one election timeout from now.
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
  // Late answers to an earlier poll or election must not be counted here.
  const MessageType my_resp =
      state_ == StateType::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return ErrProposalDropped(Code::kNoLeader);
    case raftpb::MSG_APP:
      // Someone already won this term (m.term() == term_): follow it.
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
          // Lost. Stay at our own term: m.term() may be the term we polled
          // for, which nobody holds.
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
      // No poll first: the leader itself asked us to take over, so this is
      // not a node returning from a partition.
      Hup(CampaignType::kTransfer);
      break;
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) break;  // dropped; the requester retries after its timeout
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

void Raft::HandleAppendEntries(Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // A duplicate or delayed MsgApp: our committed prefix already matches
    // the leader's, so report it as our match.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  if (auto last_new = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), TakeEntries(m))) {
    resp.set_index(*last_new);
  } else {
    // Point the leader at the highest index that can still match: not past
    // our log's end, and below any of our entries whose term exceeds the
    // probed term (a match needs equal terms, and terms only grow along a
    // log). The leader skips down the same way on its side, so each round
    // trip eliminates a whole term rather than one entry.
    uint64_t hint = std::min(m.index(), log_.LastIndex());
    hint = log_.HighestPossibleMatch(hint, m.log_term());
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
    spdlog::info("raft: {:x} takes the leader's snapshot at index {} (term {}) as its log", id_,
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
    // Through Step() only followers get here (a candidate steps down
    // first). A direct caller asking a leader or candidate to replace its
    // log is refused, and the node moves on to the next term as a follower
    // rather than keep acting on that log.
    spdlog::warn("raft: {:x} refuses a snapshot while not a follower", id_);
    BecomeFollower(term_ + 1, kNone);
    return false;
  }
  // Demotion is not a single-server change we support; a snapshot claiming
  // it must come from a diverged configuration. A node not in its own
  // configuration yet (a member that joined with an empty log) is no voter:
  // a learner added at runtime gets its role from this very snapshot when
  // the leader's log no longer reaches back to the learner's addition.
  if (!is_learner_ && prs_.Get(id_) != nullptr) {
    for (uint64_t l : md.conf_state().learners()) {
      if (l == id_) {
        spdlog::error("raft: {:x} refuses a snapshot that lists this voter as a learner", id_);
        return false;
      }
    }
  }
  if (log_.MatchTerm(md.index(), md.term())) {
    // Our log already holds the snapshot's last entry, so it holds
    // everything before it too (log matching); only the commit index lags.
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
    case ReadOnlyOption::kSafe: {
      const std::string key = read_only_.AddRequest(log_.committed(), m);
      // The leader's own acknowledgement counts toward the quorum.
      read_only_.RecvAck(id_, key);
      BcastHeartbeatWithCtx(key);
      break;
    }
    case ReadOnlyOption::kLeaseBased:
      RespondToReadIndex(m, log_.committed());
      break;
  }
}

void Raft::RespondToReadIndex(const Message& req, uint64_t index) {
  spdlog::debug("raft: {:x} at term {} confirms read {:x} of {:x} at index {}", id_, term_,
                ContextTag(req.entries(0).data()), req.from(), index);
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
      spdlog::info("raft: {:x} keeps {:x} a voter: demotion to learner is not supported", id_, id);
      return;
    }
    // Redundant (e.g. the bootstrap entries are applied a second time).
    if (is_learner == pr->is_learner) return;
    // Promote the learner, keeping its progress.
    pr->is_learner = false;
  }
  if (id == id_) is_learner_ = is_learner;
  // Treat the newcomer as heard from: it has not had a chance to answer
  // yet, and counting it as silent could cost us the CheckQuorum round.
  prs_.Get(id)->recent_active = true;
}

void Raft::RemoveNode(uint64_t id) {
  prs_.Remove(id);
  if (id == id_) is_learner_ = false;
  if (prs_.progress().empty()) return;
  // Fewer voters means a smaller majority, which may already hold entries
  // that the old configuration could not commit.
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
  // The limit applies only while something is outstanding, so a single
  // proposal larger than the limit still goes through on an idle leader.
  // Payload-free entries (the new leader's empty entry) always pass.
  if (uncommitted_size_ > 0 && s > 0 && uncommitted_size_ + s > max_uncommitted_size_) {
    return false;
  }
  uncommitted_size_ += s;
  return true;
}

void Raft::ReduceUncommittedSize(const std::vector<Entry>& ents) {
  if (uncommitted_size_ == 0) return;  // followers do not track it
  const uint64_t s = PayloadSize(ents);
  // Entries appended in an earlier term were never counted (Reset() zeroes
  // the tally), so the subtraction saturates at 0 rather than wrapping.
  uncommitted_size_ = s > uncommitted_size_ ? 0 : uncommitted_size_ - s;
}

}  // namespace etcdpp::raft
