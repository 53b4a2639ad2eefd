// RawNode: the public API of the Raft core (modelled on etcd's raft.RawNode).
//
// A RawNode is a deterministic state machine. It does no I/O, owns no thread
// and reads no clock: the server drives it from ONE thread (or under one
// mutex) with
//   Tick()                       every tick interval (e.g. 100ms),
//   Step(msg)                    for every message received from a peer,
//   Propose / ProposeConfChange / ReadIndex / TransferLeader / Campaign
//                                for local requests,
// and after any of those calls drains its output:
//
//   while (node.HasReady()) {
//     Ready rd = node.GetReady();
//     // 1. Persist, durably and in this order of importance:
//     //    rd.snapshot (if rd.snapshot.metadata().index() != 0),
//     //    rd.entries (appended; they may overwrite a conflicting suffix of
//     //    entries persisted earlier), rd.hard_state (if set).
//     //    fsync if rd.must_sync. Then mirror them into the Storage given in
//     //    Config (MemoryStorage: ApplySnapshot, Append, SetHardState).
//     // 2. Send rd.messages to their peers (only now: a vote or an append
//     //    acknowledgement must never go out before what it vouches for is
//     //    durable). A MsgSnap message carries the snapshot to send; report
//     //    the outcome with ReportSnapshot. Report failed sends with
//     //    ReportUnreachable.
//     // 3. Apply rd.snapshot (if any) and then rd.committed_entries, in
//     //    order, to the state machine. For ENTRY_CONF_CHANGE entries, parse
//     //    the raftpb::ConfChange and call ApplyConfChange (a conf change
//     //    entry with empty data was dropped by Raft: apply nothing).
//     //    rd.read_states answer ReadIndex requests: serve the read once the
//     //    applied index reaches read_state.index.
//     // 4. node.Advance(rd).
//   }
//
// committed_entries may include entries that are in rd.entries of the same
// Ready (a single-voter leader commits its entries as soon as they are in
// its log): that is why step 1 must precede step 3. This is what makes a
// one-member cluster cost exactly one fsync per Ready.
//
// GetReady must be followed by Advance before the next GetReady.
//
// Restart: Create() restores term, vote and commit from
// Storage::InitialState(), and the membership from its conf_state, which is
// the membership of the latest snapshot only. Like etcd's server, restart
// with Config::applied = the snapshot index: every committed entry after the
// snapshot is handed out again, and the server re-applies it (skipping
// normal entries its state machine already has, e.g. by consistent index,
// but calling ApplyConfChange for every conf-change entry, which rebuilds the
// membership).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "raft/config.h"
#include "raft/raft.h"
#include "raft/storage.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

// Everything the server must persist, send and apply. See the loop above.
struct Ready {
  // Set when leader or role changed since the previous Ready.
  std::optional<SoftState> soft_state;
  // Set when term, vote or commit changed since the previous Ready.
  std::optional<raftpb::HardState> hard_state;
  // ReadIndex answers (ReadIndex(ctx) -> ReadState{index, ctx}).
  std::vector<ReadState> read_states;
  // Log entries to persist before sending messages.
  std::vector<raftpb::Entry> entries;
  // The index and term of the last of `entries` (0 if none), which Advance
  // marks stable: kept apart so that the server may move `entries` into
  // its Storage before calling Advance.
  uint64_t last_entry_index = 0;
  uint64_t last_entry_term = 0;
  // A snapshot received from the leader, to persist and apply;
  // metadata().index() == 0 if none.
  raftpb::Snapshot snapshot;
  // Committed entries to apply, in order, after persisting.
  std::vector<raftpb::Entry> committed_entries;
  // Messages to send after persisting.
  std::vector<raftpb::Message> messages;
  // Whether the persisted state must be fsynced (the hard state's term or
  // vote changed, or there are entries). A commit-index-only change need
  // not be synced: it can be recovered from the leader.
  bool must_sync = false;
};

// A member given to Bootstrap. context is opaque (the server's member info)
// and becomes the ConfChange's context.
struct Peer {
  uint64_t id = 0;
  std::string context;
};

struct ProgressStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool is_learner = false;
};

struct NodeStatus {
  uint64_t id = 0;
  raftpb::HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  // Followers' progress; filled only on the leader.
  std::map<uint64_t, ProgressStatus> progress;
  uint64_t lead_transferee = kNone;
};

class RawNode {
 public:
  // Creates a node from config (restoring term/vote/commit and membership
  // from config.storage). For a brand-new member, call Bootstrap next.
  static Result<std::unique_ptr<RawNode>> Create(const Config& config);

  // Founding member of a new cluster, with empty storage (every founding
  // member bootstraps with the same peers): appends one committed
  // ENTRY_CONF_CHANGE (CONF_CHANGE_ADD_NODE, term 1) per peer, which the next
  // Ready returns both in entries (persist) and committed_entries (apply:
  // the server calls ApplyConfChange for each as usual; re-adding a known
  // member is a no-op). kFailedPrecondition if the storage is not empty,
  // kInvalidArgument if peers is empty.
  // A member joining an existing cluster does NOT bootstrap: it starts with
  // empty storage and no membership, and learns the log (or a snapshot,
  // which carries the membership) from the leader once the cluster
  // committed the conf change adding it.
  Status Bootstrap(const std::vector<Peer>& peers);

  // One logical clock tick (election and heartbeat timeouts count ticks).
  void Tick();
  // Starts an election now (pre-election first if pre_vote).
  Status Campaign();
  // Proposes a normal entry. Leader: appended to the log. Follower:
  // forwarded to the leader in a MsgProp (unless
  // disable_proposal_forwarding). An OK status does NOT mean the entry will
  // commit: the server must watch committed entries (and time out). Errors
  // (ErrProposalDropped, see raft.h): kNoLeader, kNotLeader, kLeaderChanged,
  // kTooManyRequests.
  Status Propose(std::string data);
  // Proposes a membership change (single-server change). Only one may be
  // pending: while one is uncommitted or unapplied the leader replaces a
  // second one by an empty normal entry.
  Status ProposeConfChange(const raftpb::ConfChange& cc);
  // Applies a committed conf change to the membership (call while applying
  // its entry). Returns the new membership, to be stored with snapshots.
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& cc);
  // Feeds a message from a peer. Local message types (MsgHup, MsgBeat, ...)
  // are rejected with kInvalidArgument; responses from unknown peers with
  // kNotFound.
  Status Step(raftpb::Message m);

  bool HasReady() const;
  Ready GetReady();
  // The server finished processing rd (persisted, sent, applied).
  void Advance(const Ready& rd);

  // Requests a read index; the answer comes in Ready::read_states with the
  // same ctx (which must be unique among outstanding requests). No answer
  // means the request was dropped (e.g. no leader): retry after a timeout.
  void ReadIndex(std::string ctx);
  // Asks the leader to hand leadership to transferee. Proposals are dropped
  // (kLeaderChanged) while the transfer runs; it is aborted after an
  // election timeout.
  void TransferLeader(uint64_t transferee);
  // A message to id could not be delivered.
  void ReportUnreachable(uint64_t id);
  // A snapshot sent to id was delivered (failed = false) or not.
  void ReportSnapshot(uint64_t id, bool failed);

  NodeStatus GetStatus() const;
  uint64_t id() const { return raft_->id(); }
  uint64_t lead() const { return raft_->lead(); }
  uint64_t term() const { return raft_->term(); }
  StateType state() const { return raft_->state(); }
  uint64_t committed() const { return raft_->raft_log().committed(); }
  uint64_t applied() const { return raft_->raft_log().applied(); }
  bool is_learner() const { return raft_->is_learner(); }
  raftpb::ConfState conf_state() const { return raft_->tracker().ConfState(); }

  // The state machine, for tests and diagnostics.
  Raft& raft() { return *raft_; }
  const Raft& raft() const { return *raft_; }

 private:
  explicit RawNode(std::unique_ptr<Raft> r);

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_state_;
  raftpb::HardState prev_hard_state_;
};

// Whether two hard states are equal.
bool HardStateEqual(const raftpb::HardState& a, const raftpb::HardState& b);

}  // namespace etcdpp::raft
