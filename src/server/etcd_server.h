// EtcdServer: one etcd member, wired from the rooms below. It owns them,
// starts and stops their threads in order, and answers the API through the
// narrow interfaces of server/interfaces.h.
//
// The rooms and the thread that owns each (docs/architecture.md draws them):
//   bootstrap.h        caller of Start    data dir, WAL, snapshot, Raft node
//   raft_node.h        raft loop          RawNode, WAL, snapshotter, sends
//   apply_loop.h       apply thread       store writes, conf change verdicts,
//                                         snapshot install
//   waiters.h          (mutex)            request id -> callback, deadlines
//   read_index.h       raft loop / apply  ReadIndex batching, reads by index
//   leader_transfer.h  raft loop          MoveLeader and the stop hand-off
//   reconfiguration.h  (stateless)        strict membership checks
//   snapshot_sender.h  its own pool       store copies sent to followers
//   store_slot.h       (mutex)            the current store, replaceable
//
// A put goes: API thread -> RaftNode::Propose (queue) -> raft loop (WAL,
// replication) -> Applier (LMDB commit) -> the waiter's callback. A
// linearizable read goes: API thread -> RaftNode::Read (queue) -> one
// ReadIndex round per batch -> Applier runs it once applied >= read index.
//
// The peer network's handler calls (OnMessage, OnSnapshot, OnCall) arrive
// on its threads and only queue. Callbacks handed to the server must not
// block: they run on the raft loop or the apply thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "server/interfaces.h"
#include "server/membership.h"
#include "server/reconfiguration.h"
#include "server/server_options.h"
#include "transport/peer_network.h"
#include "transport/rtt_probe.h"

namespace etcdpp {
class FileLock;
}
namespace etcdpp::lease {
class Lessor;
}
namespace etcdpp::auth {
class AuthStore;
}
namespace etcdpp::watch {
class WatchHub;
}
namespace etcdpp::v2store {
class Store;
}

namespace etcdpp::server {

class AlarmSet;
class Applier;
class AutoCompactor;
class CorruptionMonitor;
struct HashSources;
struct KvHash;
class KvApplier;
class RaftNode;
class SharedMembership;
class StoreSlot;
class V2ExpiryTicker;
class WaiterRegistry;
class WatchHubObserver;

class EtcdServer final : public Proposer,
                         public ReadBarrier,
                         public ClusterView,
                         public ClusterAdmin,
                         public BackendAdmin,
                         public LeaderChannel,
                         private transport::Handler {
 public:
  // Opens or bootstraps the member in options.data_dir and starts its
  // threads; the WAL past the store's consistent index is replayed by the
  // time requests are served.
  static Result<std::unique_ptr<EtcdServer>> Start(const ServerOptions& options);
  ~EtcdServer() override;
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Stops every thread; requests still pending complete with kStopped.
  void Stop();

  // Proposer, ReadBarrier. A write that would take the backend past the
  // quota (or any write while NOSPACE is raised) fails with kNoSpace, and
  // the first such write raises NOSPACE through Raft.
  void Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response,
               ProposeCallback done) override;
  void WaitLinearizable(ReadCallback done) override;
  bool AnsweredWritesVisible() const override;
  void WaitAnsweredWrites(ReadCallback done) override;

  // ClusterAdmin: each change is one Raft conf change and completes once
  // applied here. A follower forwards PromoteMember to the leader, the only
  // member that knows whether the learner caught up.
  void AddMember(Member* member, ProposeCallback done) override;
  void RemoveMember(uint64_t id, ProposeCallback done) override;
  void UpdateMember(uint64_t id, std::vector<std::string> peer_urls, ProposeCallback done) override;
  void PromoteMember(uint64_t id, ProposeCallback done) override;
  void MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout,
                  ProposeCallback done) override;
  // Before a graceful stop: a leader with other voters hands leadership to
  // the most caught-up one and waits up to `timeout` for it. OK when there
  // was nothing to hand over.
  Status TransferLeadershipForStop(std::chrono::milliseconds timeout);
  // --experimental-initial-corrupt-check: compares this member's key space
  // hash with every reachable peer's at its current revision
  // (server/corruption_check.h); kCorruption when one differs. Called after
  // Start and before clients are served; blocks up to the request timeout.
  Status CheckDataAgainstPeers();

  // BackendAdmin.
  void Defragment(ProposeCallback done) override;
  std::vector<etcdserverpb::AlarmMember> Alarms() const override;
  void ChangeAlarm(const etcdserverpb::AlarmRequest& request, etcdserverpb::AlarmResponse* response,
                   ProposeCallback done) override;

  // LeaderChannel.
  void CallLeader(const std::string& method, std::string body,
                  std::function<void(Result<std::string>)> done) override;

  // ClusterView.
  uint64_t member_id() const override { return member_id_; }
  uint64_t cluster_id() const override { return cluster_id_; }
  uint64_t leader_id() const override;
  bool is_learner() const override;
  uint64_t term() const override;
  uint64_t applied_index() const override;
  uint64_t commit_index() const override;
  std::vector<Member> Members() const override;
  void FillHeader(etcdserverpb::ResponseHeader* header) const override;
  std::shared_ptr<mvcc::KvStore> store() const override;
  int64_t revision() const override;
  uint64_t max_request_bytes() const override { return options_.max_request_bytes; }
  uint64_t max_txn_ops() const override { return options_.max_txn_ops; }
  std::chrono::milliseconds request_timeout() const override { return RequestTimeout(options_); }
  std::chrono::milliseconds election_timeout() const override { return options_.election_timeout; }

  // This member has been removed from the cluster (see on_removed).
  bool removed() const { return removed_.load(std::memory_order_acquire); }
  // Member `id` was removed from the cluster, as applied here (an id once
  // removed never returns). Thread-safe.
  bool WasRemovedMember(uint64_t id) const;
  // Leases (docs/lease.md). Thread-safe; never null once Start returned.
  lease::Lessor* lessor() const { return lessor_.get(); }
  // Users, roles and tokens (docs/auth.md). Thread-safe; never null once
  // Start returned.
  auth::AuthStore* auth_store() const { return auth_.get(); }
  // Every watcher of this member; told by the apply thread after each commit.
  watch::WatchHub* watch_hub() const { return watch_hub_.get(); }
  const ServerOptions& options() const { return options_; }
  // The v2 key space (docs/v2.md), applied on every member whether or not
  // it serves the v2 API. Thread-safe; never null once Start returned.
  v2store::Store* v2_store() const { return v2_.get(); }

 private:
  explicit EtcdServer(const ServerOptions& options);
  Status Open();
  Status StartTransport();
  void StartThreads();
  void MarkRemoved();
  void ProposeConfChange(raftpb::ConfChange cc, ProposeCallback done);
  PeerHealth Health() const;
  // The store once every write this member answered is committed to it:
  // blocks the caller for at most the commit in flight (docs/durability.md,
  // "Answering before the backend commit"). On the apply thread, which
  // must not wait for its own commit, and before it exists, returns at once.
  std::shared_ptr<mvcc::KvStore> StoreWithAnsweredWrites() const;
  // This member's HashKV at `revision` (0: the current one). Any thread.
  Result<KvHash> LocalHash(int64_t revision) const;
  // How the corruption checks read this member's hash and ask its peers'.
  HashSources CorruptionHashSources();
  // Raises CORRUPT for `member` through Raft; nobody waits for the outcome
  // (a lost proposal is made again by the next round that finds it).
  void RaiseCorrupt(uint64_t member);

  // transport::Handler: the peer network's threads; they only queue.
  void OnMessage(raftpb::Message m) override;
  void OnSnapshot(raftpb::Message m, std::string data_file_path) override;
  void OnCall(uint64_t from, const std::string& method, const std::string& body,
              CallDone done) override;
  std::string MembershipForPeers() override;
  void OnRemovedFromCluster() override;

  // Options with env and clock filled in.
  const ServerOptions options_;
  uint64_t member_id_ = 0;
  uint64_t cluster_id_ = 0;
  std::vector<Member> initial_peers_;
  std::atomic<bool> removed_{false};

  // Destroyed in reverse order: threads' owners (raft node, applier) go
  // before what they use.
  std::unique_ptr<FileLock> data_dir_lock_;
  std::unique_ptr<StoreSlot> store_;
  std::unique_ptr<SharedMembership> membership_;
  std::unique_ptr<AlarmSet> alarms_;
  std::unique_ptr<WaiterRegistry> waiters_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<auth::AuthStore> auth_;
  std::unique_ptr<KvApplier> kv_;
  std::unique_ptr<v2store::Store> v2_;
  std::unique_ptr<V2ExpiryTicker> v2_expiry_;
  std::unique_ptr<watch::WatchHub> watch_hub_;
  std::unique_ptr<WatchHubObserver> watch_observer_;
  // gRPC unless ServerOptions::peer_network says otherwise.
  std::unique_ptr<transport::PeerNetwork> transport_;
  // etcd_network_peer_round_trip_time_seconds; stopped before the transport.
  std::unique_ptr<transport::RttProbe> rtt_probe_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<RaftNode> raft_node_;
  // Null unless --auto-compaction-retention is set.
  std::unique_ptr<AutoCompactor> auto_compactor_;
  // Null unless --experimental-corrupt-check-time is set.
  std::unique_ptr<CorruptionMonitor> corruption_monitor_;
};

}  // namespace etcdpp::server
