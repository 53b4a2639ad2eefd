// RaftNode: the raft loop thread. It owns the RawNode, the WAL, the
// snapshotter and Raft's in-memory log, and is the only thread that touches
// them. Each iteration it takes everything queued since the last one
// (client proposals, reads, peer messages, received snapshots, transfer
// requests), ticks on the heartbeat interval, and drains Raft's Ready:
// persist first, then send, then hand committed entries to the Applier.
//
// Group commit: every proposal queued while the previous Ready was being
// fsynced goes into the next one, so one fsync covers many writes.
//
// Any thread may call the intake methods (Propose, Read, Step, ...): they
// only queue under mu_ and wake the loop. Callbacks run on this thread for
// errors found here (kRequestTooLarge, kNotLeader, ...), otherwise on the
// apply thread.
//
// Proposing inline: a client thread (server/interfaces.h, InlineProposals)
// queues its proposals without the wake-up, and in RunDeferred, when the
// loop thread sleeps, this member leads and every entry in the WAL is
// applied, runs the loop's work for them itself: propose, write, flush,
// hand over. The loop's state belongs to whoever holds loop_busy_, so
// "raft loop thread only" below means "the holder of loop_busy_"; the
// callbacks the loop would run then run on that client thread.
//
// Invariants:
//  - nothing leaves this member, and nothing is applied, before the Ready
//    that produced it is in the WAL (a vote or an acknowledged append must
//    survive a crash);
//  - a proposal's waiter is registered before Raft sees the proposal, so
//    the apply thread always finds it;
//  - Raft learns of a membership change only after the apply thread has
//    validated it (Applier::WaitConfChanges), so all members agree on it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "etcdpppb/internal.pb.h"
#include "raftpb/raft.pb.h"
#include "server/apply_loop.h"
#include "server/bootstrap.h"
#include "server/interfaces.h"
#include "server/leader_transfer.h"
#include "server/read_index.h"

namespace etcdpp::lease {
class Lessor;
}
namespace etcdpp::raft {
struct Ready;
}
namespace etcdpp::transport {
class PeerNetwork;
}

namespace etcdpp::server {

class SharedMembership;
class SnapshotSender;
class StoreSlot;
class WaiterRegistry;

struct PendingProposal {
  internalpb::InternalRaftRequest request;
  google::protobuf::Message* response = nullptr;
  ProposeCallback done;
  Clock::TimePoint deadline;
  // A membership change goes to Raft as this ConfChange instead of `request`.
  std::optional<raftpb::ConfChange> conf_change;
  // A promotion: the leader checks first that the learner has caught up.
  bool check_learner_ready = false;
};

struct RaftNodeContext {
  const ServerOptions* options;
  DataDirLayout layout;
  Applier* applier;
  WaiterRegistry* waiters;
  SharedMembership* membership;
  StoreSlot* store;
  lease::Lessor* lessor;
  transport::PeerNetwork* transport;
  // This member applied its own removal.
  std::function<void()> on_removed;
  std::function<bool()> removed;
};

class RaftNode final : private InlineProposals::Runner {
 public:
  // Takes the WAL, Raft's log and node and the snapshotter from `member`.
  RaftNode(RaftNodeContext context, BootstrappedMember& member);
  ~RaftNode();
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Before Start: listen for peers now (the cluster has other members).
  Status Listen();
  void Start();
  // Stops the loop and the snapshot sends; queued requests stay queued for
  // FailAll.
  void Stop();
  // Once stopped: fails everything still queued or waiting here.
  void FailAll(const Status& status);

  // Intake, any thread.
  void Propose(PendingProposal proposal);
  void Read(ReadCallback done);
  void Step(raftpb::Message message);
  void StepSnapshot(IncomingSnapshot snapshot);
  void ReportSnapshot(uint64_t to, bool failed);
  void TransferLeadership(TransferRequest request);
  // From the apply thread: take a snapshot at `index` (see Applier).
  void RequestSnapshot(uint64_t index, std::string membership);

  uint64_t leader_id() const { return leader_id_.load(std::memory_order_acquire); }
  uint64_t term() const { return term_.load(std::memory_order_acquire); }
  uint64_t commit_index() const { return commit_index_.load(std::memory_order_acquire); }

 private:
  void Run();
  // Proposing inline (server/interfaces.h): a client thread that queued
  // proposals runs them here when the loop sleeps with nothing in flight.
  bool RunDeferred() override;
  // Anything queued for the loop thread; mu_ held, loop_busy_ clear.
  bool HasWorkLocked() const;
  void DrainReady();
  // Writes one Ready to the WAL and Raft's log (a leader sends its appends
  // first); Sync then makes it durable and sends the rest of its messages.
  void Write(raft::Ready& ready);
  void Sync(raft::Ready& ready);
  // Sends, and takes out of `messages`, what a leader may send before the
  // Ready is persisted.
  void SendBeforePersisting(std::vector<raftpb::Message>& messages);
  void Send(std::vector<raftpb::Message>& messages);
  // Hands the Ready's committed entries and confirmed reads to the Applier.
  void HandOver(raft::Ready& ready);
  // Tells Raft (and the transport) the verdicts on conf changes up to `index`.
  void ApplyConfChanges(uint64_t index);
  // Proposes `proposals` in order; the waiters of consecutive ordinary
  // proposals are registered under one registry lock.
  void ProposeAll(std::deque<PendingProposal>& proposals);
  void ProposeOne(PendingProposal& p);
  // After Raft saw `p` (registered under `id`): on refusal, takes the
  // callback back and stalls `p` until a leader exists, or fails it.
  void OnProposed(PendingProposal& p, uint64_t id, const Status& st);
  void Tick(Clock::TimePoint now);
  void CampaignIfSoleVoter();
  void MaybePublish();
  void InstallSnapshot(IncomingSnapshot in);
  void TakeSnapshot(uint64_t index, const std::string& membership);
  void EnsureListening();

  const RaftNodeContext ctx_;
  Clock* const clock_;
  const uint64_t self_id_;

  // Set by Start before the loop thread exists.
  Clock::TimePoint first_tick_;

  // Raft loop thread only (the holder of loop_busy_), below.
  std::unique_ptr<raft::MemoryStorage> raft_storage_;
  std::unique_ptr<raft::RawNode> node_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<snap::Snapshotter> snapshotter_;
  // (index, the ConfState after the conf change at that index), oldest
  // first, so a snapshot at i records the voters as of i.
  std::vector<std::pair<uint64_t, raftpb::ConfState>> conf_history_;
  uint64_t next_request_id_ = 0;
  // Proposals that found no leader; they wait for one until their deadline.
  std::deque<PendingProposal> stalled_;
  ReadIndexBatcher reads_batcher_;
  LeaderTransfers transfers_;
  bool listening_ = false;
  // Publishing this member's name and client URLs: done once per start.
  // Set here, cleared by the publish's callback on the apply thread.
  std::atomic<bool> publish_in_flight_{false};
  std::atomic<bool> published_{false};
  std::unique_ptr<SnapshotSender> snapshot_sender_;

  std::atomic<uint64_t> leader_id_{0};
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> commit_index_{0};

  std::mutex mu_;
  std::condition_variable work_cv_;
  // A thread runs the loop's work: the loop thread (from its start, and
  // between its waits) or a client thread proposing inline. Whoever sets it
  // owns every member marked "raft loop thread only" until it clears it.
  bool loop_busy_ = true;          // guarded by mu_
  bool proposing_inline_ = false;  // guarded by mu_
  // The loop thread waits for a client thread to clear loop_busy_.
  bool loop_wanted_ = false;                                 // guarded by mu_
  std::deque<PendingProposal> proposals_;                    // guarded by mu_
  std::vector<ReadCallback> reads_;                          // guarded by mu_
  std::vector<raftpb::Message> incoming_;                    // guarded by mu_
  std::vector<IncomingSnapshot> incoming_snapshots_;         // guarded by mu_
  std::vector<std::pair<uint64_t, bool>> snapshot_reports_;  // guarded by mu_: (to, failed)
  std::vector<TransferRequest> transfer_requests_;           // guarded by mu_
  uint64_t snapshot_request_ = 0;                            // guarded by mu_
  std::string snapshot_membership_;                          // guarded by mu_
  bool stopping_ = false;                                    // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::server
