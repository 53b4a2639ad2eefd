// Applier: the apply thread. It owns the store's write side: committed
// entries become one LMDB write transaction per batch, after which their
// proposals complete, the reads waiting for that index run and the
// observers hear of the new revision.
//
// Pipeline: the raft loop hands over batches (Enqueue) and goes on to
// persist the next Ready while this thread commits the previous one; when
// this thread falls behind, every queued batch goes into one transaction.
//
// Invariants:
//  - a proposal completes only after its entry is durable in the WAL (a
//    leader hands entries over once written, and the flush overlaps their
//    apply: durable_index.h) and applied; the store commits no entry
//    before its flush, and watchers see none before it either. With
//    ServerOptions::answer_before_commit (the default) the answer goes out
//    before the transaction's commit, whose flush then overlaps the
//    client's next request (without it, after the commit): an
//    answered write survives kill -9 and power loss through WAL replay, and
//    reads that must see it wait for the commit, linearizable ones through
//    applied_index(), serializable ones through WaitAnsweredWrites
//    (docs/durability.md, "Answering before the backend commit");
//  - applied_index() only grows (a snapshot install moves it forward) and is
//    published after the commit, so a read that waited for index i sees
//    every write acknowledged before its ReadIndex round;
//  - entries at or below the store's consistent index are already in the
//    store (a restart replays them): their membership changes are applied
//    to the in-memory membership again, nothing is written twice.
//
// Membership changes: the apply thread validates each conf change entry and
// applies it to the membership; the raft loop waits for that verdict
// (WaitConfChanges) before telling Raft, so every member refuses the same
// changes. etcd's raft loop waits on its applier at the same point.
//
// Snapshot install (follower): after every earlier entry is applied, the
// received LMDB file becomes the store, the observers switch to it, and the
// old store is closed once its last reader is gone (StoreSlot).
#pragma once

#include <algorithm>
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
#include <utility>
#include <vector>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "raftpb/raft.pb.h"
#include "server/bootstrap.h"
#include "server/durable_index.h"
#include "server/read_index.h"

namespace etcdpp {
class Env;
}
namespace etcdpp::mvcc {
class KvStore;
class ReadView;
class ReadTxn;
class WriteTxn;
struct DeleteParts;
}  // namespace etcdpp::mvcc
namespace etcdpp::lease {
class Lessor;
}
namespace etcdpp::v2store {
class Store;
}

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::server {

class AlarmSet;
class KvApplier;
class SharedMembership;
class StoreSlot;
class WaiterRegistry;

// A snapshot received from the leader: Raft's message and the store file
// that came with it.
struct IncomingSnapshot {
  raftpb::Message message;
  std::string path;
};

// What one Raft Ready hands the apply thread.
struct ApplyBatch {
  std::vector<raftpb::Entry> entries;
  std::vector<ConfirmedReads> reads;
  // A snapshot to install before anything else in the batch (which then
  // holds nothing else).
  std::optional<IncomingSnapshot> install;
  // Set only in a batch of its own: defragment the store once every earlier
  // batch is applied, then call this with the outcome.
  std::function<void(const Status&)> defragment_done;
};

// Whoever derives state from the store and must follow its changes (the
// watch hub). Called on the apply thread; must not block on it.
class ApplyObserver {
 public:
  virtual ~ApplyObserver() = default;
  // A batch was committed; `revision` is the store's revision after it.
  virtual void OnCommitted(int64_t revision) = 0;
  // A compaction to `revision` is next. True asks for a read view of the
  // store as committed before it, through KeepSnapshot, so the observer can
  // still read the history the compaction removes.
  virtual bool WantsSnapshotBeforeCompaction(int64_t revision) = 0;
  virtual void KeepSnapshot(std::unique_ptr<mvcc::ReadTxn> snapshot) = 0;
  // A snapshot install replaced the store: switch to `store` and stop using
  // the old one before returning.
  virtual void OnStoreReplaced(mvcc::KvStore* store) = 0;
  // A defragmentation replaced the store with a copy of itself (the same
  // revisions and history): switch to `store` likewise.
  virtual void OnStoreRewritten(mvcc::KvStore* store) = 0;
  // A batch was applied into a transaction held back from commit
  // (ServerOptions::backend_commit_delay): `txn` is that transaction and
  // `from_rev` the first revision the batch added. The observer may read
  // those changes now, and only now (the transaction goes on changing),
  // rather than wait for the commit.
  virtual void OnHeld(const mvcc::ReadView& txn, int64_t from_rev) = 0;
  // False when OnHeld would take nothing now (nobody watches): the apply
  // thread then need not wait for the batch's WAL flush to offer it.
  virtual bool WantsHeld() = 0;
};

struct ApplierContext {
  const ServerOptions* options;
  Env* env;
  DataDirLayout layout;
  StoreSlot* store;
  SharedMembership* membership;
  WaiterRegistry* waiters;
  KvApplier* kv;
  lease::Lessor* lessor;
  AlarmSet* alarms;
  // Auth requests are applied here; KV writes are re-checked against it.
  auth::AuthStore* auth;
  ApplyObserver* observer;
  // Asks the raft loop for a snapshot at `index`; `membership` is the
  // encoded membership as of that index. The store is synced to it.
  std::function<void(uint64_t index, std::string membership)> request_snapshot;
  // The v2 key space (docs/v2.md): V2Requests apply to it, and its changed
  // nodes are written in the same transaction.
  v2store::Store* v2 = nullptr;
};

class Applier {
 public:
  // `snapshot_index`: the snapshot the member started from.
  Applier(ApplierContext context, uint64_t snapshot_index);
  ~Applier();
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  void Start();
  // Applies what is queued (it is durable in the WAL), then stops the thread.
  void Stop();

  // Raft loop thread. A leader's batch may come before the WAL's flush of
  // its entries: what clients see of them waits for MarkSynced to reach
  // them (durable_index.h).
  void Enqueue(ApplyBatch batch);
  // Raft loop thread, after every WAL sync and before the first Enqueue:
  // the WAL's entries up to `wal_last_index` are durable.
  void MarkSynced(uint64_t wal_last_index) { durable_.Set(wal_last_index); }
  // Waits until the entries up to `index` are applied; returns the verdict
  // on every conf change since the last call: (index, the change to give
  // Raft, node_id 0 when it was refused).
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> WaitConfChanges(uint64_t index);
  // Queues the install behind every earlier batch and waits until it is done.
  void InstallAndWait(IncomingSnapshot snapshot);
  // Any thread: queues a defragmentation behind every batch queued so far;
  // `done` runs on the apply thread. Entries queued meanwhile wait for it.
  void Defragment(std::function<void(const Status&)> done);

  uint64_t applied_index() const { return applied_index_.load(std::memory_order_acquire); }
  // Any thread. The last entry applied to the state machine, whose backend
  // commit may still be pending (answer_before_commit, backend_commit_delay):
  // what etcd reports as applied. Never behind applied_index() once a batch
  // was applied after a snapshot install; only grows.
  uint64_t applied_entry_index() const {
    return std::max(applied_entry_index_.load(std::memory_order_acquire), applied_index());
  }

  // Any thread. True when every answered write is committed to the store.
  bool AnsweredWritesVisible() const;
  // Any thread: `done` runs once every write answered before the call is
  // committed: at once when it is, otherwise on the apply thread right
  // after that commit (so `done` must not block).
  void WaitAnsweredWrites(ReadCallback done);
  // Any thread. The store's revision after the last batch applied ahead
  // of its commit (0 until one is); only grows. It is ahead of the store's
  // committed revision by the batches applied since the last commit: one,
  // or those held back by backend_commit_delay.
  int64_t answered_revision() const { return answered_revision_.load(std::memory_order_acquire); }
  // The entry data of the batches held back by backend_commit_delay: the
  // store's size does not count them until their commit, so the quota
  // check adds them. Any thread.
  uint64_t held_bytes() const { return held_bytes_.load(std::memory_order_relaxed); }
  // True on the apply thread, which must never wait for its own commit.
  bool OnApplyThread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Once the thread has stopped: fails the reads still waiting.
  void FailAll(const Status& status);

 private:
  void Run();
  // Applies `entries` (into the open transaction when one is held back),
  // answers their proposers and commits, unless `may_hold` and the batch
  // holds no conf change: then the transaction stays open (open_txn_).
  void ApplyEntries(std::vector<raftpb::Entry>& entries, bool may_hold = false);
  // Commits the held-back transaction, if any, and publishes it.
  void CommitOpenTxn();
  // Whether the batch about to be applied may be held back: the option is
  // on, and nobody waits to see it.
  bool MayHoldBack();
  // `delete_parts`: how a DeleteRange request may commit in parts.
  Status ApplyRequest(mvcc::WriteTxn& txn, const internalpb::InternalRaftRequest& request,
                      google::protobuf::Message* response, uint64_t index,
                      const mvcc::DeleteParts* delete_parts);
  // Validates a conf change entry and applies it to the membership (and to
  // the store's meta through `txn` unless null). *effective is what Raft
  // gets: node_id 0 when refused. Returns the client's answer.
  Status ApplyConfChangeEntry(mvcc::WriteTxn* txn, const raftpb::Entry& entry,
                              raftpb::ConfChange* effective);
  void Install(IncomingSnapshot& in);
  // Copies the store without free pages and swaps the copy in (as Install
  // does with a received one). A failed copy leaves the old store serving.
  Status DefragmentStore();
  // ACTIVATE or DEACTIVATE, written to the store's meta in `txn`; the
  // response lists the alarm when the set changed (as etcd's does).
  Status ApplyAlarm(mvcc::WriteTxn& txn, const etcdserverpb::AlarmRequest& request,
                    etcdserverpb::AlarmResponse* response);
  void MaybeRequestSnapshot();
  // One share of an unfinished physical compaction, when idle.
  void ContinueCompaction();
  // Runs the WaitAnsweredWrites callbacks once their writes are committed.
  void RunReadersOfAnsweredWrites();

  const ApplierContext ctx_;
  DurableIndex durable_;
  std::atomic<uint64_t> applied_index_{0};
  // The last entry applied ahead of its commit (answer_before_commit), its
  // proposer answered here or on another member; only grows. Every
  // answered write is visible once applied_index_ reaches it.
  std::atomic<uint64_t> answered_index_{0};
  std::atomic<int64_t> answered_revision_{0};
  // Written by the apply thread only.
  std::atomic<uint64_t> held_bytes_{0};
  // The last entry applied (to the open transaction or committed); only grows.
  std::atomic<uint64_t> applied_entry_index_{0};

  // Apply thread only.
  uint64_t snapshot_index_;  // of the newest snapshot asked for or installed
  // Entry data applied since then (ServerOptions::snapshot_bytes).
  uint64_t bytes_since_snapshot_ = 0;
  AppliedReadQueue reads_;
  // The write transaction held back by backend_commit_delay: its entries
  // are applied and answered (so answered_index_ is past applied_index_)
  // and it is committed by its deadline, or as soon as a reader, a
  // watcher, a conf change, an install, a defragmentation or Stop needs it.
  std::unique_ptr<mvcc::WriteTxn> open_txn_;
  uint64_t open_last_index_ = 0;
  size_t open_entries_ = 0;
  std::chrono::steady_clock::time_point open_deadline_;

  std::mutex mu_;
  std::condition_variable queue_cv_;
  // Signalled when conf change verdicts or an install are ready.
  std::condition_variable done_cv_;
  std::deque<ApplyBatch> queue_;                                   // guarded by mu_
  bool stopping_ = false;                                          // guarded by mu_
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> verdicts_;  // guarded by mu_
  uint64_t verdict_index_ = 0;                                     // guarded by mu_
  uint64_t installs_queued_ = 0;                                   // guarded by mu_
  uint64_t installs_done_ = 0;                                     // guarded by mu_
  // Readers waiting for the commit of answered writes.
  std::vector<ReadCallback> awaiting_commit_;  // guarded by mu_
  // Set by FailAll: no commit will come, later waiters fail at once.
  std::optional<Status> failed_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::server
