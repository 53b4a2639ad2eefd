// EtcdServer: one etcd member. Owns the Raft node, the WAL, the snapshotter
// and the MVCC store, and runs the Raft loop on its own thread.
//
// Threads (a pipeline: while the applier commits batch N to LMDB, the raft
// loop fsyncs batch N+1 to the WAL):
//  - the raft loop thread owns the RawNode, the WAL and the snapshotter. It
//    turns queued proposals into Raft entries, persists each Ready, and hands
//    committed entries and read states to the apply thread.
//  - the apply thread owns the store's single WriteTxn: it applies committed
//    entries (one LMDB txn per batch) and completes proposals and reads.
//  - any thread (gRPC's) may call Propose and WaitLinearizable: they only
//    enqueue under mu_. Callbacks run on the apply thread (or on the raft
//    loop thread for errors) and must not block.
//
// Invariants:
//  - a proposal's callback runs only after its entry is fsynced in the WAL and
//    applied to the store (LMDB txn committed), so a client never sees an ack
//    for a write a restart could lose (kill -9 of the process).
//  - applied_index_ only grows; it is published after the LMDB commit, so a
//    read that waited for applied >= read index sees every write acked before
//    the read started (linearizability).
//
// Membership (docs/membership.md): the applied Membership lives on the apply
// thread (copied under mu_ for Members()), persisted in the store's meta and
// in every snapshot's data. Conf change entries are validated and applied to
// it by the apply thread; the raft loop waits for that before calling
// RawNode::ApplyConfChange with the outcome (etcd's applyWait), and then adds
// or removes transport peers.
//
// Snapshot install and the store object: a follower that receives a
// snapshot gets the leader's whole LMDB file. The apply thread, after every
// earlier entry is applied, opens it, publishes it as the new store, calls
// OnStoreReplaced() (the one place for modules that cache the store or state
// derived from it to switch over), waits until no reader holds the old store
// and closes it. Readers (any thread) must therefore hold the shared_ptr
// returned by store() for as long as they use the store or anything read
// from it (a ReadTxn must not outlive it), and must not call store() again
// while holding one across a blocking wait.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "raftpb/raft.pb.h"
#include "server/membership.h"
#include "transport/transport.h"

namespace google::protobuf {
class Message;
}

namespace etcdpp::mvcc {
class KvStore;
}
namespace etcdpp::mvcc {
class WriteTxn;
}
namespace etcdpp::raft {
class RawNode;
class MemoryStorage;
struct Config;
struct Ready;
}  // namespace etcdpp::raft
namespace etcdpp::wal {
class Wal;
}
namespace etcdpp::watch {
class RoundScheduler;
class WatchHub;
}  // namespace etcdpp::watch
namespace etcdpp::snap {
class Snapshotter;
}
namespace etcdpp::lease {
class Lessor;
}
namespace etcdpp {
class FileLock;
}

namespace etcdpp::server {

class KvApplier;

struct ServerOptions {
  std::string name = "default";
  std::string data_dir = "default.etcd";
  std::vector<std::string> client_urls;  // advertised
  std::vector<std::string> initial_advertise_peer_urls;
  // Where peers' Raft traffic arrives; only listened on when the cluster has
  // more than one member.
  std::vector<std::string> listen_peer_urls;
  std::string initial_cluster;                // name=url,...
  std::string initial_cluster_state = "new";  // new | existing
  std::string initial_cluster_token = "etcd-cluster";
  uint64_t snapshot_count = 100000;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t max_txn_ops = 128;
  uint64_t quota_backend_bytes = 2ull << 30;
  std::chrono::milliseconds heartbeat_interval{100};
  std::chrono::milliseconds election_timeout{1000};
  // Raft log entries kept in memory behind a snapshot so slow followers can
  // catch up without a snapshot (etcd's SnapshotCatchUpEntries).
  uint64_t snapshot_catchup_entries = 5000;
  // etcd's --experimental-watch-progress-notify-interval.
  std::chrono::milliseconds watch_progress_notify_interval{std::chrono::minutes(10)};
  // Tests only: steers the watch hub's rounds (watch::RoundScheduler). Not
  // owned; must outlive the server.
  watch::RoundScheduler* watch_round_scheduler = nullptr;
  // Called once, on the raft loop or a transport thread, when this member
  // learns it was removed from the cluster (it applied its removal, or a
  // peer refused it as removed); must not block. The owner should then
  // Stop() it from another thread.
  std::function<void()> on_removed;
  // etcd's --strict-reconfig-check (on by default): refuse membership changes
  // that would leave too few started or connected members.
  bool strict_reconfig_check = true;
};

// Completion of one proposal: the status of applying it. The response object
// handed to Propose has been filled when status is OK.
using ProposeCallback = std::function<void(const Status&)>;
using ReadCallback = std::function<void(const Status&)>;

class EtcdServer : private transport::Handler {
 public:
  // Opens (or bootstraps) the member in options.data_dir and starts the raft
  // loop. Replays the WAL past the store's consistent index before returning.
  static Result<std::unique_ptr<EtcdServer>> Start(const ServerOptions& options);
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Stops the raft loop; pending requests complete with kStopped.
  void Stop();

  // Proposes a client request through Raft. `response` must be the response
  // type of `request`'s operation and stay alive until `done` runs; `done`
  // must not block.
  void Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response,
               ProposeCallback done);

  // Calls `done` once every write committed before this call is applied
  // (Raft ReadIndex). Reads issued after `done` runs are linearizable.
  void WaitLinearizable(ReadCallback done);

  // Fills cluster_id, member_id, raft_term (revision is the caller's).
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

  // Membership changes (Cluster service). Each is one Raft conf change
  // (at most one in flight in the cluster); `done` runs once it is applied
  // on this member, with etcd's errors (kMemberExist, kPeerURLExist,
  // kMemberNotFound, kMemberNotLearner, kLearnerNotReady, kTooManyLearners,
  // kMemberNotEnoughStarted, kUnhealthy, kTimeout, kStopped).
  // AddMember fills member->id (etcd's scheme: peer URLs and the time).
  void AddMember(Member* member, ProposeCallback done);
  void RemoveMember(uint64_t id, ProposeCallback done);
  void UpdateMember(uint64_t id, std::vector<std::string> peer_urls, ProposeCallback done);
  // The learner must have caught up with the leader; a follower forwards
  // the call to the leader (peer call "membership/promote").
  void PromoteMember(uint64_t id, ProposeCallback done);

  // Maintenance.MoveLeader: this member must be the leader (kNotLeader),
  // `transferee` a voter (kBadLeaderTransferee). `done` runs once the
  // transferee leads, or with kTimeoutLeaderTransfer after `timeout`.
  void MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout, ProposeCallback done);
  // Before a graceful stop (SIGTERM): if this member leads a cluster with
  // other voters, hands leadership to the most up-to-date one and waits for
  // it (at most `timeout`). OK when there was nothing to do.
  Status TransferLeadershipForStop(std::chrono::milliseconds timeout);

  // This member has been removed from the cluster (see on_removed).
  bool removed() const { return removed_.load(std::memory_order_acquire); }

  // The current store; hold the pointer while using the store (see the file
  // comment: a snapshot install replaces it).
  std::shared_ptr<mvcc::KvStore> store() const;
  KvApplier* kv() const { return kv_.get(); }
  // Leases (docs/lease.md). Thread-safe; never null once Start returned.
  lease::Lessor* lessor() const { return lessor_.get(); }
  // Sends a request that only the leader serves (lease keep-alive and
  // time-to-live) to the leader over the peer transport; done(reply body)
  // or done(error) exactly once, on another thread: kNoLeader without a
  // leader, kLeaderChanged if this member is the leader (the caller asked
  // because the local lessor was not primary), transport or leader errors.
  void CallLeader(const std::string& method, std::string body,
                  std::function<void(Result<std::string>)> done);
  // Every watcher of this member; told by the apply thread after each commit.
  watch::WatchHub* watch_hub() const { return watch_hub_.get(); }
  const ServerOptions& options() const { return options_; }
  uint64_t member_id() const { return member_id_; }
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t leader_id() const { return leader_id_.load(std::memory_order_acquire); }
  // This member is a learner in the applied membership.
  bool is_learner() const { return is_learner_.load(std::memory_order_acquire); }
  uint64_t term() const { return term_.load(std::memory_order_acquire); }
  uint64_t applied_index() const { return applied_index_.load(std::memory_order_acquire); }
  uint64_t commit_index() const { return commit_index_.load(std::memory_order_acquire); }
  std::vector<Member> Members() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct PendingProposal {
    internalpb::InternalRaftRequest request;
    google::protobuf::Message* response;
    ProposeCallback done;
    Clock::time_point deadline;
    // Set for a membership change: proposed as a ConfChange instead.
    std::optional<raftpb::ConfChange> conf_change;
    // MemberPromote: the raft loop checks the learner caught up first.
    bool check_learner_ready = false;
  };
  // A leader transfer waiting for the transferee to lead.
  struct PendingTransfer {
    uint64_t transferee;
    Clock::time_point deadline;
    ProposeCallback done;
    bool started = false;
  };
  // A snapshot file received from the leader, waiting for the raft loop.
  struct IncomingSnapshot {
    raftpb::Message message;
    std::string path;
  };
  struct Waiter {
    google::protobuf::Message* response;
    ProposeCallback done;
    Clock::time_point deadline;
  };
  struct ReadBatch {
    uint64_t ctx;  // The ReadIndex request context its ReadState carries back.
    std::vector<ReadCallback> callbacks;
    Clock::time_point deadline;
  };

  // What one Raft Ready hands the apply thread.
  struct ApplyBatch {
    std::vector<raftpb::Entry> entries;
    // (read index, reads waiting for it): served once applied >= index.
    std::vector<std::pair<uint64_t, std::vector<ReadCallback>>> reads;
    // A received snapshot to install before `entries` (which are then empty).
    std::optional<IncomingSnapshot> install;
  };

  explicit EtcdServer(const ServerOptions& options);
  // Refreshes what mirrors membership_ outside mu_ (is_learner_); call after
  // every change of membership_, with mu_ held.
  void NoteMembershipLocked();
  // Raft loop: asks Raft for a read index for reads_next_batch_ unless a
  // batch is in flight.
  void MaybeStartReadIndex(Clock::time_point now);
  Status Open();
  // transport::Handler: called on transport threads; only enqueue.
  void OnMessage(raftpb::Message m) override;
  void OnSnapshot(raftpb::Message m, std::string data_file_path) override;
  void OnCall(uint64_t from, const std::string& method, const std::string& body,
              CallDone done) override;
  std::string MembershipForPeers() override;
  void OnRemovedFromCluster() override;
  // Marks this member removed and tells the owner once.
  void MarkRemoved();
  // Membership at start: of the newest snapshot, else empty (the log from
  // index 1 rebuilds it), else (older data dirs) the store's or the flags'.
  Status LoadMembership(const raftpb::Snapshot& snapshot);
  Status JoinExisting();
  void EnqueueProposal(PendingProposal p);
  // Queues a membership change the caller has validated.
  void ProposeConfChange(raftpb::ConfChange cc, ProposeCallback done);
  // Strict reconfiguration checks of etcd 3.4 (mayAddMember, mayRemoveMember).
  Status MayAddMember(const Member& member) const;
  Status MayRemoveMember(uint64_t id) const;
  // Voters other than self whose stream has been up since `since`, plus self.
  size_t ConnectedVotersSince(const std::vector<uint64_t>& voters, Clock::time_point since) const;
  // Raft loop: applies what the apply thread decided for the conf changes
  // in `last` and before; waits for it first.
  void ApplyConfChangeResults(uint64_t last_conf_index);
  void EnsureTransportListening();
  void MaybePublish();
  void StepSnapshot(IncomingSnapshot in);
  void SendSnapshot(raftpb::Message m);
  void ProgressTransfers(Clock::time_point now);
  // Apply thread.
  void InstallSnapshot(IncomingSnapshot& in);
  // Validates and applies one conf change entry to the membership (and to
  // the store's meta through `txn` unless null); *effective is the change
  // for Raft (node_id 0 when refused). Returns the client's outcome.
  Status ApplyConfChangeEntry(mvcc::WriteTxn* txn, const raftpb::Entry& entry,
                              raftpb::ConfChange* effective);
  // The store was replaced by a snapshot install (apply thread, after the
  // new store is published and before the old one is closed). Modules that
  // cache the store or state derived from it (watch hub, lessor) switch to
  // store() here and must stop using the old one before returning.
  void OnStoreReplaced();
  Status StartTransport();
  void SendMessages(std::vector<raftpb::Message>& messages);
  Status Bootstrap(const std::vector<Member>& members);
  Status Restart();
  raft::Config RaftConfig() const;
  std::chrono::milliseconds RequestTimeout() const;
  void StartThreads();

  // Raft loop thread.
  void RaftLoop();
  void DrainReady();
  void ProposeOne(PendingProposal& p);
  void CampaignIfSoleVoter();
  // Persists what one Ready holds, sends its messages, applies its membership
  // changes to Raft.
  void HandleReady(raft::Ready& ready);
  // Moves the Ready's committed entries and read states to the apply thread.
  void QueueApply(raft::Ready& ready);
  void ExpireRequests(Clock::time_point now);
  // `membership`: the encoded membership as of `index`.
  void Snapshot(uint64_t index, const std::string& membership);

  // Apply thread.
  void ApplyLoop();
  void ApplyEntries(std::vector<raftpb::Entry>& entries);
  Status ApplyRequest(mvcc::WriteTxn& txn, const internalpb::InternalRaftRequest& request,
                      google::protobuf::Message* response);
  void CompleteAppliedReads();
  void MaybeRequestSnapshot();

  // Once both threads are stopped.
  void FailAll(const Status& status);
  [[noreturn]] void Fatal(const char* what, const Status& status);

  const ServerOptions options_;
  uint64_t member_id_ = 0;
  uint64_t cluster_id_ = 0;
  std::string wal_dir_;
  std::string snap_dir_;
  // Members the transport sends to from the start (flags, applied state or,
  // when joining, the cluster's answer); later ones come with conf changes.
  std::vector<Member> initial_peers_;

  std::unique_ptr<FileLock> data_dir_lock_;
  std::unique_ptr<raft::MemoryStorage> raft_storage_;  // thread-safe
  std::unique_ptr<raft::RawNode> node_;                // raft loop thread
  std::unique_ptr<wal::Wal> wal_;                      // raft loop thread
  std::unique_ptr<snap::Snapshotter> snapshotter_;     // raft loop thread
  // Replaced only by the apply thread (snapshot install) under store_mu_;
  // readers copy it under store_mu_ (store()).
  mutable std::mutex store_mu_;
  std::shared_ptr<mvcc::KvStore> store_;
  std::unique_ptr<KvApplier> kv_;          // apply thread
  std::unique_ptr<lease::Lessor> lessor_;  // thread-safe
  // Reads the store itself; Notify()d after each commit, switched in
  // OnStoreReplaced(), stopped (sinks told) in Stop().
  std::unique_ptr<watch::WatchHub> watch_hub_;
  // Created by Start; listens once the cluster has (had) other members.
  std::unique_ptr<transport::Transport> transport_;
  bool transport_listening_ = false;  // raft loop thread (and Start)
  std::atomic<bool> removed_{false};

  std::atomic<uint64_t> leader_id_{0};
  std::atomic<bool> is_learner_{false};  // mirrors membership_ (NoteMembershipLocked)
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<uint64_t> commit_index_{0};

  // Raft loop thread only.
  // (index, membership after the conf change at index), oldest first.
  std::vector<std::pair<uint64_t, raftpb::ConfState>> conf_history_;
  uint64_t next_request_id_ = 0;
  uint64_t next_read_ctx_ = 0;
  std::deque<PendingProposal> stalled_proposals_;
  std::vector<PendingTransfer> transfers_;
  bool published_ = false;
  std::atomic<bool> publish_in_flight_{false};
  std::atomic<bool> publish_done_{false};
  // Threads copying the store for a follower's snapshot.
  std::vector<std::thread> snapshot_copiers_;
  // Reads waiting for the ReadState of their context. At most one batch is
  // in flight (etcd's linearizableReadLoop): reads that arrive meanwhile wait
  // in reads_next_batch_ and share the next ReadIndex, so under load one
  // leader heartbeat round confirms thousands of reads instead of one per
  // loop iteration.
  std::optional<ReadBatch> read_in_flight_;
  std::vector<ReadCallback> reads_next_batch_;

  // Apply thread only.
  uint64_t snapshot_requested_index_ = 0;
  std::vector<std::pair<uint64_t, std::vector<ReadCallback>>> reads_waiting_apply_;

  // Proposals between registration (raft loop) and apply (apply thread).
  std::mutex waiters_mu_;
  std::unordered_map<uint64_t, Waiter> waiters_;  // guarded by waiters_mu_

  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  // The apply thread's verdict for each conf change entry (index, the
  // ConfChange to give Raft: node_id 0 when refused), and the membership as
  // of the last installed snapshot; taken by the raft loop.
  std::condition_variable conf_cv_;
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> conf_results_;  // guarded by apply_mu_
  uint64_t conf_applied_index_ = 0;                                    // guarded by apply_mu_
  bool install_done_ = false;                                          // guarded by apply_mu_
  std::deque<ApplyBatch> apply_queue_;                                 // guarded by apply_mu_
  bool apply_stopping_ = false;                                        // guarded by apply_mu_

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<PendingProposal> proposals_;             // guarded by mu_
  std::vector<ReadCallback> reads_;                   // guarded by mu_
  std::vector<raftpb::Message> incoming_;             // guarded by mu_: from peers
  Membership membership_;                             // guarded by mu_; written by the apply thread
  std::vector<IncomingSnapshot> incoming_snapshots_;  // guarded by mu_
  std::vector<std::pair<uint64_t, bool>> snapshot_reports_;  // guarded by mu_: (to, failed)
  std::vector<PendingTransfer> transfer_requests_;           // guarded by mu_
  std::string snapshot_membership_;  // guarded by mu_: membership at snapshot_request_
  uint64_t snapshot_request_ = 0;    // guarded by mu_: index the store is synced to
  bool stopping_ = false;            // guarded by mu_
  std::thread loop_;
  std::thread applier_;
};

}  // namespace etcdpp::server
