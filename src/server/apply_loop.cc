#include "server/apply_loop.h"

#include <google/protobuf/message.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "auth/auth_store.h"
#include "base/allocator.h"
#include "base/env.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/lessor.h"
#include "metrics/etcd_metrics.h"
#include "mvcc/kv_store.h"
#include "server/alarms.h"
#include "server/fatal.h"
#include "server/kv_applier.h"
#include "server/membership.h"
#include "server/store_slot.h"
#include "server/waiters.h"
#include "v2store/apply.h"
#include "v2store/persistence.h"

namespace etcdpp::server {
namespace {

// How long the apply thread waits, after applying work, before it goes on
// removing compacted history (Applier::Run). A few times a loopback
// client's turnaround; at a million keys an idle share's commit takes ~6 ms.
constexpr std::chrono::milliseconds kQuietBeforeCompactionShare{10};

// Somewhere to write the result of a request nobody waits for (another
// member's proposal, or one replayed from the WAL).
std::unique_ptr<google::protobuf::Message> ScratchResponse(
    const internalpb::InternalRaftRequest& request) {
  using R = internalpb::InternalRaftRequest;
  switch (request.request_case()) {
    case R::kRange:
      return std::make_unique<etcdserverpb::RangeResponse>();
    case R::kPut:
      return std::make_unique<etcdserverpb::PutResponse>();
    case R::kDeleteRange:
      return std::make_unique<etcdserverpb::DeleteRangeResponse>();
    case R::kTxn:
      return std::make_unique<etcdserverpb::TxnResponse>();
    case R::kCompaction:
      return std::make_unique<etcdserverpb::CompactionResponse>();
    case R::kLeaseGrant:
      return std::make_unique<etcdserverpb::LeaseGrantResponse>();
    case R::kLeaseRevoke:
      return std::make_unique<etcdserverpb::LeaseRevokeResponse>();
    case R::kAlarm:
      return std::make_unique<etcdserverpb::AlarmResponse>();
    default:
      return nullptr;
  }
}

// etcd's checkLeasePuts: revoking a lease deletes its keys, and attaching
// a lease to a key lets whoever holds the lease delete the key by revoking
// it, so both need write access to every key already attached.
Status CheckLeaseKeys(const auth::AuthStore& auth, lease::Lessor& lessor, mvcc::WriteTxn& txn,
                      const internalpb::InternalRaftRequest& request) {
  int64_t lease_id = 0;
  if (request.has_lease_revoke()) lease_id = request.lease_revoke().id();
  if (request.has_put()) lease_id = request.put().lease();
  if (lease_id == 0) return Status::OK();
  std::shared_ptr<const auth::AuthState> state = auth.state();
  // An unknown lease is the request's own error (kLeaseNotFound).
  if (!state->enabled || !lessor.Exists(lease_id)) return Status::OK();
  auto keys = lessor.AttachedKeys(txn, lease_id);
  if (!keys.ok()) return keys.status();
  const auth::AuthInfo sender{request.header().username(), request.header().auth_revision()};
  for (const std::string& key : *keys) {
    ETCDPP_RETURN_IF_ERROR(state->CheckKeys(sender, auth::Access::kWrite, key, {}));
  }
  return Status::OK();
}

std::unique_ptr<mvcc::WriteTxn> BeginWrite(mvcc::KvStore& store) {
  auto write = store.Write();
  if (!write.ok()) Fatal("no write transaction on the store", write.status());
  return std::move(write.value());
}

// Stops the member over a failed write to its store. A full map is
// recorded first, so the restart that replays the same entries maps twice
// as much (KvStore::RecordMapFull) instead of stopping again on them.
[[noreturn]] void StopOnStoreFailure(mvcc::KvStore& store, const char* what, const Status& st) {
  if (st.code() == Code::kNoSpace) {
    Status recorded = store.RecordMapFull();
    if (!recorded.ok()) spdlog::error("recording the full map failed: {}", recorded.ToString());
  }
  Fatal(what, st);
}

// The store's commit of entries up to `index` waits for the WAL's flush of
// them: a store ahead of its WAL after a power cut would hold entries the
// restarted log no longer has.
void CommitUpTo(mvcc::KvStore& store, mvcc::WriteTxn& txn, uint64_t index,
                uint64_t consistent_index, DurableIndex& durable) {
  durable.WaitFor(index);
  Status st;
  if (index > consistent_index) st = txn.SetConsistentIndex(index);
  if (st.ok()) {
    const auto start = std::chrono::steady_clock::now();
    st = txn.Commit();
    metrics::BackendCommitDurationSeconds().Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (!st.ok()) StopOnStoreFailure(store, "committing applied entries to the store failed", st);
}

}  // namespace

Applier::Applier(ApplierContext context, uint64_t snapshot_index)
    : ctx_(std::move(context)), snapshot_index_(snapshot_index) {}

Applier::~Applier() { Stop(); }

void Applier::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "apply");
    Run();
  });
}

void Applier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Applier::Enqueue(ApplyBatch batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(batch));
  }
  queue_cv_.notify_one();
}

std::vector<std::pair<uint64_t, raftpb::ConfChange>> Applier::WaitConfChanges(uint64_t index) {
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> verdicts;
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return verdict_index_ >= index; });
  verdicts.swap(verdicts_);
  return verdicts;
}

void Applier::InstallAndWait(IncomingSnapshot snapshot) {
  ApplyBatch batch;
  batch.install = std::move(snapshot);
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = ++installs_queued_;
  queue_.push_back(std::move(batch));
  queue_cv_.notify_one();
  done_cv_.wait(lock, [&] { return installs_done_ >= ticket; });
}

void Applier::Defragment(std::function<void(const Status&)> done) {
  ApplyBatch batch;
  batch.defragment_done = std::move(done);
  Enqueue(std::move(batch));
}

void Applier::FailAll(const Status& status) {
  reads_.FailAll(status);
  std::vector<ReadCallback> awaiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = status;
    awaiting.swap(awaiting_commit_);
  }
  for (ReadCallback& done : awaiting) done(status);
}

bool Applier::AnsweredWritesVisible() const {
  return applied_index() >= answered_index_.load(std::memory_order_acquire);
}

void Applier::WaitAnsweredWrites(ReadCallback done) {
  {
    // Checked under mu_: the apply thread publishes applied_index_ before it
    // takes the waiting readers under mu_, so a reader that finds the
    // commit still missing is queued before that commit's readers are taken.
    std::unique_lock<std::mutex> lock(mu_);
    if (failed_) {
      const Status failed = *failed_;
      lock.unlock();
      done(failed);
      return;
    }
    if (!AnsweredWritesVisible()) {
      awaiting_commit_.push_back(std::move(done));
      lock.unlock();
      // A transaction held back (backend_commit_delay) is committed now.
      queue_cv_.notify_one();
      return;
    }
  }
  done(Status::OK());
}

void Applier::Run() {
  std::deque<ApplyBatch> batches;
  std::vector<raftpb::Entry> entries;
  // Work was applied since the last idle share (see below).
  bool applied_since_share = true;
  for (;;) {
    bool commit_held = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // While there is nothing to apply, the removal of compacted history
      // goes on one bounded share per commit, looking for new work between
      // shares, so it neither waits for client writes nor delays them long.
      // After applying work the thread first stays quiet for
      // kQuietBeforeCompactionShare: a client's next request (the read
      // after its write, the next put) mostly comes within it, and would
      // otherwise find a share's commit just begun and wait for all of it.
      // Shares then follow each other without a pause, so history is
      // removed about as fast while nobody writes.
      while (!open_txn_ && queue_.empty() && !stopping_ && ctx_.store->raw()->CompactionPending()) {
        if (applied_since_share) {
          applied_since_share = false;
          if (queue_cv_.wait_for(lock, kQuietBeforeCompactionShare,
                                 [&] { return stopping_ || !queue_.empty(); })) {
            break;
          }
          continue;
        }
        lock.unlock();
        ContinueCompaction();
        lock.lock();
      }
      if (open_txn_) {
        // A held-back transaction: more batches may join it until its
        // deadline; a reader of answered writes or Stop ends the wait.
        queue_cv_.wait_until(lock, open_deadline_, [&] {
          return stopping_ || !queue_.empty() || !awaiting_commit_.empty();
        });
        commit_held = queue_.empty();
      } else {
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, with nothing left to apply
      }
      batches.swap(queue_);
    }
    if (commit_held) {
      CommitOpenTxn();
      reads_.RunUpTo(applied_index());
      RunReadersOfAnsweredWrites();
      MaybeRequestSnapshot();
      continue;
    }
    // All queued batches share one transaction: a thread that fell behind
    // catches up with one commit instead of many.
    for (ApplyBatch& b : batches) {
      if (b.install) {
        ApplyEntries(entries);
        entries.clear();
        CommitOpenTxn();
        Install(*b.install);
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++installs_done_;
        }
        done_cv_.notify_all();
      }
      if (b.defragment_done) {
        ApplyEntries(entries);
        entries.clear();
        CommitOpenTxn();
        b.defragment_done(DefragmentStore());
      }
      for (raftpb::Entry& e : b.entries) entries.push_back(std::move(e));
      for (ConfirmedReads& r : b.reads) reads_.Add(std::move(r));
    }
    batches.clear();
    applied_since_share = true;
    ApplyEntries(entries, MayHoldBack());
    entries.clear();
    // Reads confirmed in a batch without entries wait for the transaction
    // held back earlier: commit it for them now.
    if (open_txn_ && !MayHoldBack()) CommitOpenTxn();
    reads_.RunUpTo(applied_index());
    RunReadersOfAnsweredWrites();
    MaybeRequestSnapshot();
  }
}

bool Applier::MayHoldBack() {
  if (ctx_.options->backend_commit_delay.count() <= 0 || !ctx_.options->answer_before_commit) {
    return false;
  }
  if (!reads_.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return !stopping_ && awaiting_commit_.empty();
}

void Applier::CommitOpenTxn() {
  if (!open_txn_) return;
  mvcc::KvStore& store = *ctx_.store->raw();
  CommitUpTo(store, *open_txn_, open_last_index_, store.ConsistentIndex(), durable_);
  open_txn_.reset();
  open_entries_ = 0;
  held_bytes_.store(0, std::memory_order_relaxed);
  applied_index_.store(open_last_index_, std::memory_order_release);
  ctx_.observer->OnCommitted(store.CurrentRevision());
}

void Applier::ContinueCompaction() {
  // Nothing observable changes, so no observer is told. A share gives way
  // to work queued meanwhile before its commit: a commit's flush cannot be
  // cut short, so work arriving then would wait for all of it.
  auto st = ctx_.store->raw()->RemoveCompactedHistory([this] {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_ || !queue_.empty();
  });
  if (!st.ok()) {
    StopOnStoreFailure(*ctx_.store->raw(), "removing compacted history failed", st.status());
  }
}

void Applier::ApplyEntries(std::vector<raftpb::Entry>& entries, bool may_hold) {
  if (entries.empty()) return;
  mvcc::KvStore& store = *ctx_.store->raw();
  // The committed index: a held-back transaction's entries are above it.
  const uint64_t consistent_index = store.ConsistentIndex();
  const bool joins_held = open_txn_ != nullptr;
  std::unique_ptr<mvcc::WriteTxn> txn = joins_held ? std::move(open_txn_) : BeginWrite(store);
  // The batch's writes are the revisions after this one.
  const int64_t rev_before = txn->Rev();
  std::vector<std::pair<WaiterRegistry::Waiter, Status>> completed;
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> verdicts;
  uint64_t last_index = 0;
  bool v2_changed = false;
  // The v2 tree's changes go into the transaction that records their index.
  auto save_v2 = [&] {
    if (!v2_changed) return;
    Status st = v2store::SaveChanges(*ctx_.v2, *txn);
    if (!st.ok()) StopOnStoreFailure(store, "writing the v2 store failed", st);
    v2_changed = false;
  };
  // Requests are decoded up front so the waiters of the whole batch are
  // taken under one registry lock (the raft loop registers under it too).
  constexpr size_t kNoWaiter = ~size_t{0};
  std::vector<internalpb::InternalRaftRequest> requests(entries.size());
  std::vector<size_t> waiter_slot(entries.size(), kNoWaiter);
  std::vector<uint64_t> waiter_ids;
  waiter_ids.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const raftpb::Entry& entry = entries[i];
    if (entry.data().empty() || entry.type() != raftpb::ENTRY_NORMAL) continue;
    if (!requests[i].ParseFromString(entry.data())) {
      Fatal("a committed entry does not decode",
            Status::Corruption("entry " + std::to_string(entry.index())));
    }
    // A replayed entry already in the store has nobody waiting, except a
    // member's attributes, which are applied to the membership again.
    if (entry.index() <= consistent_index && !requests[i].has_member_attributes()) continue;
    waiter_slot[i] = waiter_ids.size();
    waiter_ids.push_back(requests[i].header().id());
  }
  std::vector<std::optional<WaiterRegistry::Waiter>> waiters = ctx_.waiters->TakeMany(waiter_ids);
  completed.reserve(waiter_ids.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const raftpb::Entry& entry = entries[i];
    const uint64_t previous_index = last_index;
    last_index = entry.index();
    // The new leader's empty entry: everything of earlier terms is applied,
    // so the lessor may take over lease deadlines now.
    if (entry.type() == raftpb::ENTRY_NORMAL && entry.data().empty()) {
      ctx_.lessor->Promote(entry.term());
    }
    const bool in_store = entry.index() <= consistent_index;
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange effective;
      Status st = ApplyConfChangeEntry(in_store ? nullptr : txn.get(), entry, &effective);
      verdicts.emplace_back(entry.index(), effective);
      if (auto waiter = ctx_.waiters->Take(effective.id())) {
        completed.emplace_back(std::move(*waiter), std::move(st));
      }
      continue;
    }
    if (entry.data().empty() || entry.type() != raftpb::ENTRY_NORMAL) continue;
    const internalpb::InternalRaftRequest& request = requests[i];
    std::optional<WaiterRegistry::Waiter> waiter;
    if (waiter_slot[i] != kNoWaiter) waiter = std::move(waiters[waiter_slot[i]]);
    if (request.has_member_attributes()) {
      const std::string encoded = ctx_.membership->SetAttributes(request.member_attributes());
      if (!in_store) {
        Status st = txn->PutMeta(kMembershipMetaKey, encoded);
        if (!st.ok()) StopOnStoreFailure(store, "writing the membership to the store failed", st);
      }
      if (waiter) completed.emplace_back(std::move(*waiter), Status::OK());
      continue;
    }
    if (in_store) continue;
    if (request.has_v2()) {
      v2store::ApplyV2Request(
          *ctx_.v2, request.v2(),
          waiter ? static_cast<internalpb::V2Response*>(waiter->response) : nullptr);
      v2_changed = true;
      if (waiter) completed.emplace_back(std::move(*waiter), Status::OK());
      continue;
    }
    if (request.has_compaction() &&
        ctx_.observer->WantsSnapshotBeforeCompaction(request.compaction().revision())) {
      // Commit what precedes the compaction so the observer's view holds it.
      save_v2();
      CommitUpTo(store, *txn, previous_index, consistent_index, durable_);
      txn.reset();
      auto view = store.Read();
      if (view.ok()) {
        ctx_.observer->KeepSnapshot(std::move(view.value()));
      } else {
        // The observer then treats its readers as compacted away.
        spdlog::error("no read view to keep before compaction: {}", view.status().ToString());
      }
      txn = BeginWrite(store);
    }
    std::unique_ptr<google::protobuf::Message> scratch;
    google::protobuf::Message* response = nullptr;
    if (waiter) {
      response = waiter->response;
    } else {
      scratch = ScratchResponse(request);
      response = scratch.get();
    }
    // A part of a delete commits what this transaction holds, so the
    // batch's entries before it must be durable and recorded as applied,
    // and the delete's own entry durable: the replay after a crash between
    // parts applies it again to finish it. (Only for a delete: the hook is
    // an allocation, and every put comes through here.)
    std::optional<mvcc::DeleteParts> delete_parts;
    if (request.has_delete_range() && ctx_.options->delete_keys_per_part > 0) {
      delete_parts.emplace(mvcc::DeleteParts{ctx_.options->delete_keys_per_part,
                                             [&, index = entry.index()]() -> Status {
                                               save_v2();
                                               durable_.WaitFor(index);
                                               return txn->SetConsistentIndex(index - 1);
                                             }});
    }
    Status st = ApplyRequest(*txn, request, response, entry.index(),
                             delete_parts ? &*delete_parts : nullptr);
    // Nothing of this batch is answered yet: a write the store failed must
    // not be answered as the request's error, since the restart replays it.
    if (!st.ok() && txn->Broken()) {
      StopOnStoreFailure(store, "applying a committed entry to the store failed", st);
    }
    if (waiter) completed.emplace_back(std::move(*waiter), std::move(st));
  }
  save_v2();
  // With answer_before_commit, answered before the commit, once the WAL's
  // flush of the batch is done (on a leader it may still be running:
  // durable_index.h): an answered write survives a crash or power loss
  // (replayed from the store's consistent index), and the commit's data
  // flush overlaps the client's next request instead of adding a second
  // fsync to its wait. Readers that must see these writes wait for the
  // commit below.
  const bool answer_first = ctx_.options->answer_before_commit;
  applied_entry_index_.store(std::max(last_index, applied_entry_index_.load()),
                             std::memory_order_release);
  if (answer_first) {
    // Every batch counts, whether its proposers wait here or on another
    // member: a request forwarded here by the member that answered a write
    // (lease TimeToLive with keys, served by the leader) must find it, and
    // with backend_commit_delay this batch may stay uncommitted for a
    // while. Releases run in order, so the two only grow.
    durable_.RunWhenDurable(last_index, [this, last_index, revision = txn->Rev(),
                                         completed = std::move(completed)]() mutable {
      answered_index_.store(std::max(last_index, answered_index_.load()),
                            std::memory_order_release);
      answered_revision_.store(std::max(revision, answered_revision_.load()),
                               std::memory_order_release);
      for (auto& [waiter, status] : completed) waiter.done(status);
    });
  }
  // Held back for later batches to share its commit; a conf change's
  // verdict waits for its commit, so its batch is committed now. A batch
  // sets no verdict otherwise, and raft waits only for verdicts.
  // A held transaction whose deadline passed while this batch was on its
  // way is committed now, right after the answers: the apply thread is
  // then idle for at least the client's turnaround and the next WAL fsync,
  // which the commit's flush overlaps. Left to the timed wait in Run, the
  // commit could start just before the next batch and hold up its answers.
  size_t batch_bytes = 0;
  for (const raftpb::Entry& e : entries) batch_bytes += e.data().size();
  bytes_since_snapshot_ += batch_bytes;
  const auto now = std::chrono::steady_clock::now();
  const bool deadline_passed = joins_held && now >= open_deadline_;
  if (answer_first && may_hold && verdicts.empty() && !deadline_passed &&
      open_entries_ + entries.size() < ctx_.options->backend_batch_limit &&
      held_bytes() + batch_bytes < ctx_.options->backend_batch_bytes) {
    if (!joins_held) open_deadline_ = now + ctx_.options->backend_commit_delay;
    open_txn_ = std::move(txn);
    open_last_index_ = last_index;
    open_entries_ += entries.size();
    held_bytes_.store(held_bytes() + batch_bytes, std::memory_order_relaxed);
    if (open_txn_->Rev() > rev_before && ctx_.observer->WantsHeld()) {
      // Watchers hear of a write no sooner than its proposer could.
      durable_.WaitFor(last_index);
      ctx_.observer->OnHeld(*open_txn_, rev_before + 1);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      verdict_index_ = last_index;
    }
    done_cv_.notify_all();
    return;
  }
  open_entries_ = 0;
  CommitUpTo(store, *txn, last_index, consistent_index, durable_);
  held_bytes_.store(0, std::memory_order_relaxed);
  txn.reset();
  applied_index_.store(last_index, std::memory_order_release);
  ctx_.observer->OnCommitted(store.CurrentRevision());
  if (!answer_first) {
    for (auto& [waiter, status] : completed) waiter.done(status);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& v : verdicts) verdicts_.push_back(std::move(v));
    verdict_index_ = last_index;
  }
  done_cv_.notify_all();
}

void Applier::RunReadersOfAnsweredWrites() {
  std::vector<ReadCallback> now_visible;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!AnsweredWritesVisible()) return;
    now_visible.swap(awaiting_commit_);
  }
  for (ReadCallback& done : now_visible) done(Status::OK());
}

Status Applier::ApplyRequest(mvcc::WriteTxn& txn, const internalpb::InternalRaftRequest& request,
                             google::protobuf::Message* response, uint64_t index,
                             const mvcc::DeleteParts* delete_parts) {
  using R = internalpb::InternalRaftRequest;
  KvApplier& kv = *ctx_.kv;
  if (auth::AuthStore::IsAuthRequest(request)) {
    return ctx_.auth->Apply(txn, request, response, index);
  }
  // Every member re-checks the sender against the auth state as of this
  // entry, so a write checked before a permission change cannot slip
  // through after it.
  ETCDPP_RETURN_IF_ERROR(ctx_.auth->CheckWrite(request));
  ETCDPP_RETURN_IF_ERROR(CheckLeaseKeys(*ctx_.auth, *ctx_.lessor, txn, request));
  // Every member applies the same alarms at the same index, so all of them
  // refuse the same writes while CORRUPT or NOSPACE is raised (CORRUPT
  // first, as etcd checks it).
  if (RefusedWhileCorrupt(request) && ctx_.alarms->Raised(etcdserverpb::CORRUPT)) {
    return Status(Code::kCorrupt);
  }
  if (QuotaCost(request) > 0 && ctx_.alarms->Raised(etcdserverpb::NOSPACE)) {
    return Status(Code::kNoSpace);
  }
  switch (request.request_case()) {
    case R::kPut:
      return kv.Put(txn, request.put(), static_cast<etcdserverpb::PutResponse*>(response));
    case R::kDeleteRange:
      if (delete_parts != nullptr) {
        return kv.DeleteRangeInParts(txn, request.delete_range(),
                                     static_cast<etcdserverpb::DeleteRangeResponse*>(response),
                                     *delete_parts);
      }
      return kv.DeleteRange(txn, request.delete_range(),
                            static_cast<etcdserverpb::DeleteRangeResponse*>(response));
    case R::kTxn:
      return kv.Txn(txn, request.txn(), static_cast<etcdserverpb::TxnResponse*>(response));
    case R::kCompaction:
      return kv.Compact(txn, request.compaction(),
                        static_cast<etcdserverpb::CompactionResponse*>(response));
    case R::kLeaseGrant:
      return ctx_.lessor->Grant(txn, request.lease_grant(),
                                static_cast<etcdserverpb::LeaseGrantResponse*>(response));
    case R::kLeaseRevoke:
      return ctx_.lessor->Revoke(txn, request.lease_revoke(),
                                 static_cast<etcdserverpb::LeaseRevokeResponse*>(response));
    case R::kAlarm:
      return ApplyAlarm(txn, request.alarm(), static_cast<etcdserverpb::AlarmResponse*>(response));
    default:
      return Status::Unimplemented("request type not supported yet");
  }
}

Status Applier::ApplyAlarm(mvcc::WriteTxn& txn, const etcdserverpb::AlarmRequest& request,
                           etcdserverpb::AlarmResponse* response) {
  bool changed = false;
  switch (request.action()) {
    case etcdserverpb::AlarmRequest::ACTIVATE:
      if (request.alarm() == etcdserverpb::NONE) return Status::OK();
      changed = ctx_.alarms->Activate(request.memberid(), request.alarm());
      if (changed) {
        spdlog::warn("alarm {} raised for member {:x}",
                     etcdserverpb::AlarmType_Name(request.alarm()), request.memberid());
      }
      break;
    case etcdserverpb::AlarmRequest::DEACTIVATE:
      changed = ctx_.alarms->Deactivate(request.memberid(), request.alarm());
      if (changed) {
        spdlog::info("alarm {} cleared for member {:x}",
                     etcdserverpb::AlarmType_Name(request.alarm()), request.memberid());
      }
      break;
    default:
      // GET is answered from the applied set without Raft.
      for (etcdserverpb::AlarmMember& a : ctx_.alarms->List(request.alarm())) {
        *response->add_alarms() = std::move(a);
      }
      return Status::OK();
  }
  if (!changed) return Status::OK();
  etcdserverpb::AlarmMember* alarm = response->add_alarms();
  alarm->set_memberid(request.memberid());
  alarm->set_alarm(request.alarm());
  Status st = txn.PutMeta(kAlarmsMetaKey, ctx_.alarms->Encode());
  if (!st.ok())
    StopOnStoreFailure(*ctx_.store->raw(), "writing the alarms to the store failed", st);
  return Status::OK();
}

Status Applier::ApplyConfChangeEntry(mvcc::WriteTxn* txn, const raftpb::Entry& entry,
                                     raftpb::ConfChange* effective) {
  if (!effective->ParseFromString(entry.data())) {
    Fatal("a committed conf change does not decode",
          Status::Corruption("entry " + std::to_string(entry.index())));
  }
  internalpb::ConfChangeContext change;
  if (!change.ParseFromString(effective->context())) change.Clear();
  std::string encoded;
  Status st = ctx_.membership->ValidateAndApply(*effective, change, &encoded);
  if (!st.ok()) {
    // Every member holds the same membership at this index and refuses the
    // change alike; Raft is then told of no change at all.
    spdlog::warn("conf change in entry {} refused: {}", entry.index(), st.ToString());
    effective->set_node_id(0);
    return st;
  }
  if (txn != nullptr) {
    Status put = txn->PutMeta(kMembershipMetaKey, encoded);
    if (!put.ok()) {
      StopOnStoreFailure(*ctx_.store->raw(), "writing the membership to the store failed", put);
    }
  }
  return Status::OK();
}

void Applier::Install(IncomingSnapshot& in) {
  Env* env = ctx_.env;
  const DataDirLayout& layout = ctx_.layout;
  const std::string& incoming = layout.incoming_store_dir;
  Status st = env->RemoveTree(incoming);
  if (st.ok()) st = env->CreateDir(incoming);
  if (!st.ok()) Fatal("preparing the directory for a received store failed", st);
  st = env->RenameFile(in.path, incoming + "/data.mdb");
  if (st.ok()) st = env->SyncDir(incoming);
  if (!st.ok()) Fatal("moving the received store into place failed", st);
  mvcc::Options store_options;
  SetStoreOptions(*ctx_.options, &store_options);
  auto opened = mvcc::KvStore::Open(incoming, store_options);
  if (!opened.ok()) Fatal("the received store does not open", opened.status());
  std::shared_ptr<mvcc::KvStore> fresh = std::move(opened.value());
  auto membership = Membership::Decode(in.message.snapshot().data());
  if (!membership.ok()) Fatal("the received snapshot has no valid membership", membership.status());

  mvcc::KvStore* fresh_raw = fresh.get();
  const uint64_t snapshot_index = in.message.snapshot().metadata().index();
  const uint64_t live_index = ctx_.store->raw()->ConsistentIndex();
  const uint64_t fresh_index = fresh_raw->ConsistentIndex();
  if (fresh_index < live_index) {
    // Only after a crash between an earlier install and the save of its
    // snapshot: the live store is then ahead of Raft's log, and a sender
    // whose store had applied less may send an older copy. Swapping it in
    // would take back writes this member already served. The live store
    // holds every entry up to its own index, so it stays, and the entries
    // after the snapshot replay onto it (skipped up to its index). The
    // membership is the snapshot's: the replay of those entries brings it
    // to the store's, as at a restart.
    fresh.reset();
    ctx_.membership->Replace(std::move(membership.value()));
    snapshot_index_ = std::max(snapshot_index_, live_index);
    bytes_since_snapshot_ = 0;
    st = env->RemoveTree(incoming);
    if (!st.ok()) spdlog::warn("the received store was not removed: {}", st.ToString());
    spdlog::warn(
        "received snapshot at index {} kept out: its store is at index {}, behind this member's "
        "at {}",
        snapshot_index, fresh_index, live_index);
    return;
  }
  const uint64_t applied = std::max(fresh_index, snapshot_index);
  // New readers get the new store at once; the lessor and the observers
  // switch next, and then the old store waits for its last reader.
  ctx_.store->Publish(std::move(fresh));
  ctx_.membership->Replace(std::move(membership.value()));
  applied_index_.store(std::max(applied, applied_index()), std::memory_order_release);
  snapshot_index_ = applied;
  bytes_since_snapshot_ = 0;
  Status lease_status = ctx_.lessor->Recover();
  if (!lease_status.ok()) Fatal("the leases of the received store do not load", lease_status);
  Status auth_status = ctx_.auth->Load(*fresh_raw);
  if (!auth_status.ok()) Fatal("the auth state of the received store does not load", auth_status);
  Status alarm_status;
  {
    auto fresh_view = fresh_raw->Read();
    alarm_status = fresh_view.ok() ? ctx_.alarms->Load(**fresh_view) : fresh_view.status();
  }
  if (!alarm_status.ok()) Fatal("the alarms of the received store do not load", alarm_status);
  Status v2_status = v2store::LoadStore(*ctx_.v2, *fresh_raw);
  if (!v2_status.ok()) Fatal("the v2 store of the received snapshot does not load", v2_status);
  ctx_.observer->OnStoreReplaced(fresh_raw);
  ctx_.store->Retire().reset();
  // The open environment follows its files, not its path: swapping the two
  // directories makes the new store the one at store_dir in one step, and
  // leaves the old one in incoming_store_dir to be removed.
  st = env->ExchangePaths(incoming, layout.store_dir);
  if (!st.ok()) Fatal("swapping in the received store failed", st);
  st = env->SyncDir(layout.snap_dir);
  if (!st.ok()) Fatal("syncing the snapshot directory failed", st);
  st = env->RemoveTree(incoming);
  if (!st.ok()) spdlog::warn("the replaced store was not removed: {}", st.ToString());
  spdlog::info("received snapshot at index {} installed; the store is at index {}", snapshot_index,
               fresh_raw->ConsistentIndex());
}

Status Applier::DefragmentStore() {
  Env* env = ctx_.env;
  const DataDirLayout& layout = ctx_.layout;
  // The apply thread owns incoming_store_dir: an install never runs at the
  // same time.
  const std::string& target = layout.incoming_store_dir;
  mvcc::KvStore& old = *ctx_.store->raw();
  const uint64_t size_before = old.DbSizeBytes();
  const auto started = std::chrono::steady_clock::now();
  // History already compacted but not yet removed would be copied too: a
  // compaction followed by a defragmentation must give its space back.
  while (old.CompactionPending()) {
    auto removed = old.RemoveCompactedHistory();
    if (!removed.ok()) return removed.status();
  }
  Status st = env->RemoveTree(target);
  if (st.ok()) st = env->CreateDir(target);
  // The copy omits free pages and is fsynced; the old store keeps serving
  // until it is complete.
  if (st.ok()) st = old.CopyToFile(target + "/data.mdb");
  if (st.ok()) st = env->SyncDir(target);
  if (!st.ok()) {
    (void)env->RemoveTree(target);
    return st;
  }
  mvcc::Options store_options;
  SetStoreOptions(*ctx_.options, &store_options);
  auto opened = mvcc::KvStore::Open(target, store_options);
  if (!opened.ok()) {
    (void)env->RemoveTree(target);
    return opened.status();
  }
  std::shared_ptr<mvcc::KvStore> fresh = std::move(opened.value());
  mvcc::KvStore* fresh_raw = fresh.get();
  // Same content, same consistent index: the lessor and the alarms read the
  // store afresh each time, so only the readers and observers move.
  ctx_.store->Publish(std::move(fresh));
  ctx_.observer->OnStoreRewritten(fresh_raw);
  ctx_.store->Retire().reset();
  // Retire waited for the old store's last reader, so the reset closed it
  // and freed the copies of dirtied pages LMDB keeps for a store's lifetime
  // (as many as its largest transaction dirtied: docs/mvcc.md, "The
  // copies' memory stays"); hand them back to the system.
  ReturnFreePagesToSystem();
  st = env->ExchangePaths(target, layout.store_dir);
  if (!st.ok()) Fatal("swapping in the defragmented store failed", st);
  st = env->SyncDir(layout.snap_dir);
  if (!st.ok()) Fatal("syncing the snapshot directory failed", st);
  st = env->RemoveTree(target);
  if (!st.ok())
    spdlog::warn("the store replaced by defragmentation was not removed: {}", st.ToString());
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  spdlog::info("defragmented the store from {} to {} bytes in {} ms (writes waited meanwhile)",
               size_before, fresh_raw->DbSizeBytes(), took.count());
  return Status::OK();
}

void Applier::MaybeRequestSnapshot() {
  const uint64_t applied = applied_index();
  if (applied <= snapshot_index_) return;
  if (applied <= snapshot_index_ + ctx_.options->snapshot_count &&
      bytes_since_snapshot_ < ctx_.options->snapshot_bytes) {
    return;
  }
  // The WAL before the snapshot may be purged only once the store holds
  // everything up to it durably.
  Status st = ctx_.store->raw()->Sync();
  if (!st.ok()) Fatal("syncing the store failed", st);
  snapshot_index_ = applied;
  bytes_since_snapshot_ = 0;
  ctx_.request_snapshot(applied, ctx_.membership->Encode());
}

}  // namespace etcdpp::server
