#include "raft/raw_node.h"

#include <utility>

namespace etcdpp::raft {

bool HardStateEqual(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

namespace {

bool IsEmptyHardState(const raftpb::HardState& hs) {
  return HardStateEqual(hs, raftpb::HardState());
}

// Term or vote changes, or new entries, must be fsynced before messages go
// out (Raft paper Figure 2: persistent state).
bool MustSync(const raftpb::HardState& st, const raftpb::HardState& prev, size_t num_entries) {
  return num_entries != 0 || st.vote() != prev.vote() || st.term() != prev.term();
}

}  // namespace

RawNode::RawNode(std::unique_ptr<Raft> r) : raft_(std::move(r)) {
  prev_soft_state_ = raft_->GetSoftState();
  prev_hard_state_ = raft_->GetHardState();
}

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  auto r = Raft::Create(config);
  if (!r.ok()) return r.status();
  return std::unique_ptr<RawNode>(new RawNode(std::move(r).value()));
}

Status RawNode::Bootstrap(const std::vector<Peer>& peers) {
  if (peers.empty()) {
    return Status::InvalidArgument("raft: Bootstrap called with no peers");
  }
  RaftLog& log = raft_->raft_log();
  if (log.storage()->LastIndex() != 0 || log.LastIndex() != 0) {
    return Status(Code::kFailedPrecondition,
                  "raft: Bootstrap on a log that already has entries; restart it instead");
  }
  // The hard state (term 1, commit) must come out in the next Ready.
  prev_hard_state_ = raftpb::HardState();
  raft_->BecomeFollower(1, kNone);
  std::vector<raftpb::Entry> ents;
  ents.reserve(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    cc.set_node_id(peers[i].id);
    cc.set_context(peers[i].context);
    raftpb::Entry e;
    e.set_type(raftpb::ENTRY_CONF_CHANGE);
    e.set_term(1);
    e.set_index(i + 1);
    e.set_data(cc.SerializeAsString());
    ents.push_back(std::move(e));
  }
  log.Append(ents);
  // Every member bootstraps with the same entries, so they are committed by
  // definition.
  log.set_committed(ents.size());
  // Apply the membership now, so the node knows its peers before the server
  // applies the entries (which then are no-ops).
  for (const auto& p : peers) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    cc.set_node_id(p.id);
    raft_->ApplyConfChange(cc);
  }
  return Status::OK();
}

void RawNode::Tick() { raft_->Tick(); }

Status RawNode::Campaign() {
  raftpb::Message m;
  m.set_type(raftpb::MSG_HUP);
  return raft_->Step(std::move(m));
}

Status RawNode::Propose(std::string data) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.add_entries()->set_data(std::move(data));
  return raft_->Step(std::move(m));
}

Status RawNode::ProposeConfChange(const raftpb::ConfChange& cc) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  auto* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE);
  e->set_data(cc.SerializeAsString());
  return raft_->Step(std::move(m));
}

raftpb::ConfState RawNode::ApplyConfChange(const raftpb::ConfChange& cc) {
  return raft_->ApplyConfChange(cc);
}

Status RawNode::Step(raftpb::Message m) {
  if (IsLocalMsg(m.type())) {
    return Status::InvalidArgument("raft: " + raftpb::MessageType_Name(m.type()) +
                                   " is generated locally and cannot come from a peer");
  }
  if (raft_->tracker().Get(m.from()) != nullptr || !IsResponseMsg(m.type())) {
    return raft_->Step(std::move(m));
  }
  // A response from a removed (or never added) member has no progress to
  // update.
  return Status::NotFound("raft: response from " + std::to_string(m.from()) +
                          ", which is not a member");
}

bool RawNode::HasReady() const {
  const Raft& r = *raft_;
  if (!(r.GetSoftState() == prev_soft_state_)) return true;
  const auto hs = r.GetHardState();
  if (!IsEmptyHardState(hs) && !HardStateEqual(hs, prev_hard_state_)) return true;
  const RaftLog& log = r.raft_log();
  if (log.HasPendingSnapshot()) return true;
  if (!r.messages().empty() || !log.unstable().entries().empty() || log.HasNextEntries()) {
    return true;
  }
  return !r.read_states().empty();
}

Ready RawNode::GetReady() {
  Raft& r = *raft_;
  Ready rd;
  rd.entries = r.raft_log().UnstableEntries();
  if (!rd.entries.empty()) {
    rd.last_entry_index = rd.entries.back().index();
    rd.last_entry_term = rd.entries.back().term();
  }
  rd.committed_entries = r.raft_log().NextEntries();
  rd.messages = r.TakeMessages();
  const SoftState ss = r.GetSoftState();
  if (!(ss == prev_soft_state_)) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  const auto hs = r.GetHardState();
  if (!HardStateEqual(hs, prev_hard_state_)) rd.hard_state = hs;
  if (const auto& snap = r.raft_log().unstable().snapshot()) rd.snapshot = *snap;
  rd.read_states.swap(r.read_states());
  rd.must_sync = MustSync(hs, prev_hard_state_, rd.entries.size());
  return rd;
}

void RawNode::Advance(const Ready& rd) {
  Raft& r = *raft_;
  if (rd.hard_state) prev_hard_state_ = *rd.hard_state;
  r.ReduceUncommittedSize(rd.committed_entries);
  // The applied cursor: the last committed entry handed out, or the
  // snapshot if that is all there was.
  uint64_t applied = 0;
  if (!rd.committed_entries.empty()) {
    applied = rd.committed_entries.back().index();
  } else if (rd.snapshot.metadata().index() != 0) {
    applied = rd.snapshot.metadata().index();
  }
  if (applied > 0) r.raft_log().AppliedTo(applied);
  if (rd.last_entry_index != 0) r.raft_log().StableTo(rd.last_entry_index, rd.last_entry_term);
  if (rd.snapshot.metadata().index() != 0) {
    r.raft_log().StableSnapTo(rd.snapshot.metadata().index());
  }
}

void RawNode::ReadIndex(std::string ctx) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.add_entries()->set_data(std::move(ctx));
  (void)raft_->Step(std::move(m));
}

void RawNode::TransferLeader(uint64_t transferee) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(transferee);
  (void)raft_->Step(std::move(m));
}

void RawNode::ReportUnreachable(uint64_t id) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(id);
  (void)raft_->Step(std::move(m));
}

void RawNode::ReportSnapshot(uint64_t id, bool failed) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(id);
  m.set_reject(failed);
  (void)raft_->Step(std::move(m));
}

NodeStatus RawNode::GetStatus() const {
  const Raft& r = *raft_;
  NodeStatus s;
  s.id = r.id();
  s.hard_state = r.GetHardState();
  s.soft_state = r.GetSoftState();
  s.applied = r.raft_log().applied();
  s.lead_transferee = r.lead_transferee();
  if (r.state() == StateType::kLeader) {
    for (const auto& [id, pr] : r.tracker().progress()) {
      s.progress[id] = ProgressStatus{pr.match, pr.next, pr.state, pr.is_learner};
    }
  }
  return s;
}

}  // namespace etcdpp::raft
