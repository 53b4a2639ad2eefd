#include "server/raft_node.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/env.h"
#include "lease/lessor.h"
#include "metrics/etcd_metrics.h"
#include "metrics/member_stats.h"
#include "raft/raw_node.h"
#include "raft/read_only.h"
#include "raft/storage.h"
#include "server/fatal.h"
#include "server/membership.h"
#include "server/reconfiguration.h"
#include "server/snapshot_sender.h"
#include "server/waiters.h"
#include "snap/snapshotter.h"
#include "transport/peer_network.h"
#include "wal/wal.h"

namespace etcdpp::server {
namespace {

// Snapshot files kept on disk; older ones are purged (etcd keeps five too).
constexpr size_t kSnapshotsToKeep = 5;

// A proposal Raft dropped for want of a leader may still succeed once one
// is elected.
bool WaitsForLeader(const Status& st) {
  return st.code() == Code::kNoLeader || st.code() == Code::kLeaderChanged;
}

}  // namespace

RaftNode::RaftNode(RaftNodeContext context, BootstrappedMember& member)
    : ctx_(std::move(context)),
      clock_(ctx_.options->clock),
      self_id_(member.member_id),
      raft_storage_(std::move(member.raft_storage)),
      node_(std::move(member.node)),
      wal_(std::move(member.wal)),
      snapshotter_(std::move(member.snapshotter)),
      transfers_(member.member_id) {
  if (member.snapshot.index() > 0) {
    conf_history_.emplace_back(member.snapshot.index(), member.snapshot.conf_state());
  }
  // Request ids must be unique across members and restarts: 16 bits of the
  // member id, 40 bits of wall-clock milliseconds, then a counter (the same
  // layout etcd's id generator uses).
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_->WallNow().time_since_epoch())
          .count());
  next_request_id_ = ((self_id_ & 0xffff) << 48) | ((now_ms & ((1ull << 40) - 1)) << 8);
  snapshot_sender_ = std::make_unique<SnapshotSender>(
      ctx_.options->env, ctx_.layout.snap_dir, ctx_.store, ctx_.transport,
      ctx_.options->snapshot_send_threads,
      [this](uint64_t to, bool failed) { ReportSnapshot(to, failed); });
}

RaftNode::~RaftNode() { Stop(); }

Status RaftNode::Listen() {
  std::vector<std::string> urls = ctx_.options->listen_peer_urls;
  if (urls.empty()) urls = ctx_.options->initial_advertise_peer_urls;
  Status st = ctx_.transport->Start(urls);
  if (st.ok()) listening_ = true;
  return st;
}

void RaftNode::EnsureListening() {
  if (listening_) return;
  Status st = Listen();
  // Marked listening either way: retrying on every conf change would only
  // repeat the error.
  listening_ = true;
  if (!st.ok()) spdlog::error("listening for peers failed: {}", st.ToString());
}

void RaftNode::Start() {
  // Taken here, not on the loop thread, so the first tick is due one
  // heartbeat after Start returns whenever the thread gets going.
  first_tick_ = clock_->Now() + ctx_.options->heartbeat_interval;
  thread_ = std::thread([this] {
    // Named so per-thread profiles (perf, top -H) tell the loops apart.
    pthread_setname_np(pthread_self(), "raft-loop");
    Run();
  });
}

void RaftNode::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
    // A client thread proposing inline finishes first (none starts now).
    work_cv_.wait(lock, [&] { return !proposing_inline_; });
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (snapshot_sender_) snapshot_sender_->Stop();
}

// Propose and Read wake the loop after releasing mu_: a loop woken while
// the caller still holds it would block on the mutex at once and need a
// second wake-up (two futex calls more per request, measured in
// docs/performance.md).
void RaftNode::Propose(PendingProposal proposal) {
  // A conf change is left to the loop thread, which waits for its apply.
  const bool defer = InlineProposals::AllowedOnThisThread() && !proposal.conf_change;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      proposals_.push_back(std::move(proposal));
      queued = true;
    }
  }
  if (!queued) return proposal.done(Status(Code::kStopped));
  if (defer) return InlineProposals::Defer(this);
  work_cv_.notify_one();
}

bool RaftNode::HasWorkLocked() const {
  return !proposals_.empty() || !reads_.empty() || !incoming_.empty() ||
         reads_batcher_.CanStart() || snapshot_request_ != 0 || !incoming_snapshots_.empty() ||
         !snapshot_reports_.empty() || !transfer_requests_.empty();
}

bool RaftNode::RunDeferred() {
  std::unique_lock<std::mutex> lock(mu_);
  if (proposals_.empty()) return false;  // the loop thread took them
  if (loop_busy_ || stopping_ || leader_id() != self_id_ ||
      !InlineProposals::AllowedOnThisThread()) {
    lock.unlock();
    work_cv_.notify_one();
    return false;
  }
  loop_busy_ = true;
  proposing_inline_ = true;
  // Only with nothing in flight: under load the loop thread batches the
  // proposals of every client while the WAL flushes, and a client thread
  // that flushed instead would stop reading its connections meanwhile.
  const bool inline_proposal = stalled_.empty() && node_->state() == raft::StateType::kLeader &&
                               ctx_.applier->applied_entry_index() >= wal_->last_index();
  std::deque<PendingProposal> proposals;
  if (inline_proposal) proposals.swap(proposals_);
  lock.unlock();
  if (inline_proposal) {
    metrics::ProposalsInlineTotal().Inc(proposals.size());
    ProposeAll(proposals);
    DrainReady();
  }
  lock.lock();
  loop_busy_ = false;
  proposing_inline_ = false;
  const bool wake = loop_wanted_ || stopping_ || HasWorkLocked();
  lock.unlock();
  if (wake) work_cv_.notify_all();
  return inline_proposal;
}

void RaftNode::Read(ReadCallback done) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      reads_.push_back(std::move(done));
      queued = true;
    }
  }
  if (!queued) return done(Status(Code::kStopped));
  work_cv_.notify_one();
}

void RaftNode::Step(raftpb::Message message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    incoming_.push_back(std::move(message));
  }
  work_cv_.notify_one();
}

void RaftNode::StepSnapshot(IncomingSnapshot snapshot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_snapshots_.push_back(std::move(snapshot));
      work_cv_.notify_one();
      return;
    }
  }
  (void)ctx_.options->env->RemoveFile(snapshot.path);
}

void RaftNode::ReportSnapshot(uint64_t to, bool failed) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_reports_.emplace_back(to, failed);
  }
  work_cv_.notify_one();
}

void RaftNode::TransferLeadership(TransferRequest request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      transfer_requests_.push_back(std::move(request));
      work_cv_.notify_one();
      return;
    }
  }
  request.done(Status(Code::kStopped));
}

void RaftNode::RequestSnapshot(uint64_t index, std::string membership) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_request_ = index;
    snapshot_membership_ = std::move(membership);
  }
  work_cv_.notify_one();
}

void RaftNode::Run() {
  // Hand over what bootstrap or replay left committed; a sole voter need
  // not wait out an election timeout to lead. What the WAL held at start
  // counts as durable: it outlived the process that wrote it.
  ctx_.applier->MarkSynced(wal_->last_index());
  DrainReady();
  CampaignIfSoleVoter();
  const auto heartbeat = ctx_.options->heartbeat_interval;
  Clock::TimePoint next_tick = first_tick_;
  std::deque<PendingProposal> proposals;
  std::vector<ReadCallback> reads;
  std::vector<raftpb::Message> incoming;
  std::vector<IncomingSnapshot> snapshots;
  std::vector<std::pair<uint64_t, bool>> reports;
  std::vector<TransferRequest> transfers;
  std::string snapshot_membership;
  for (;;) {
    uint64_t snapshot_at = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      loop_busy_ = false;
      // The wait is in real time and at most one heartbeat long, so a fake
      // clock that tests move forward is noticed within a heartbeat.
      const auto wait = std::min<Clock::TimePoint::duration>(
          std::max<Clock::TimePoint::duration>(next_tick - clock_->Now(), {}), heartbeat);
      // HasWorkLocked reads the loop's own state, so only while nobody
      // else runs it.
      work_cv_.wait_for(lock, wait, [&] { return stopping_ || (!loop_busy_ && HasWorkLocked()); });
      if (loop_busy_ && !stopping_) {
        // A client thread proposes inline; it wakes this thread when done.
        loop_wanted_ = true;
        work_cv_.wait(lock, [&] { return stopping_ || !loop_busy_; });
        loop_wanted_ = false;
      }
      if (stopping_) break;
      loop_busy_ = true;
      proposals.swap(proposals_);
      reads.swap(reads_);
      incoming.swap(incoming_);
      std::swap(snapshot_at, snapshot_request_);
      snapshot_membership.swap(snapshot_membership_);
      snapshots.swap(incoming_snapshots_);
      reports.swap(snapshot_reports_);
      transfers.swap(transfer_requests_);
    }
    for (const auto& [to, failed] : reports) node_->ReportSnapshot(to, failed);
    reports.clear();
    for (IncomingSnapshot& in : snapshots) InstallSnapshot(std::move(in));
    snapshots.clear();
    for (raftpb::Message& m : incoming) {
      const uint64_t from = m.from();
      Status st = node_->Step(std::move(m));
      if (!st.ok() && st.code() != Code::kNotFound) {
        spdlog::debug("message from {:x} not stepped: {}", from, st.ToString());
      }
    }
    incoming.clear();
    for (TransferRequest& t : transfers) transfers_.Add(std::move(t));
    transfers.clear();
    const Clock::TimePoint now = clock_->Now();
    if (now >= next_tick) {
      Tick(now);
      next_tick = now + heartbeat;
    }
    // Stalled proposals go first, oldest first; they keep waiting for a
    // leader until their deadline (etcd times them out rather than failing
    // them at once).
    if (!stalled_.empty()) {
      proposals.insert(proposals.begin(), std::make_move_iterator(stalled_.begin()),
                       std::make_move_iterator(stalled_.end()));
      stalled_.clear();
    }
    ProposeAll(proposals);
    proposals.clear();
    for (ReadCallback& r : reads) reads_batcher_.Add(std::move(r));
    reads.clear();
    if (auto ctx = reads_batcher_.MaybeStart(now, RequestTimeout(*ctx_.options))) {
      spdlog::debug("read round {:x} starts (term {}, leader {:x}, committed {})",
                    raft::ContextTag(*ctx), node_->term(), node_->lead(), node_->committed());
      node_->ReadIndex(*ctx);
    }
    transfers_.Progress(*node_, now);
    DrainReady();
    MaybePublish();
    if (snapshot_at != 0) TakeSnapshot(snapshot_at, snapshot_membership);
  }
}

void RaftNode::Tick(Clock::TimePoint now) {
  node_->Tick();
  for (uint64_t id : ctx_.transport->TakeUnreachable()) node_->ReportUnreachable(id);
  for (ProposeCallback& done : ctx_.waiters->TakeExpired(now)) done(Status(Code::kTimeout));
  for (auto it = stalled_.begin(); it != stalled_.end();) {
    if (it->deadline <= now) {
      metrics::ProposalsFailedTotal().Inc();
      it->done(Status(Code::kTimeout));
      it = stalled_.erase(it);
    } else {
      ++it;
    }
  }
  if (auto ctx = reads_batcher_.OnTick(now)) node_->ReadIndex(*ctx);
}

void RaftNode::MaybePublish() {
  if (published_.load() || publish_in_flight_.load() || node_->lead() == 0 || ctx_.removed()) {
    return;
  }
  publish_in_flight_.store(true);
  PendingProposal p;
  internalpb::MemberAttributesRequest* attrs = p.request.mutable_member_attributes();
  attrs->set_member_id(self_id_);
  attrs->set_name(ctx_.options->name);
  for (const std::string& u : ctx_.options->client_urls) attrs->add_client_urls(u);
  p.deadline = clock_->Now() + RequestTimeout(*ctx_.options);
  p.done = [this](const Status& st) {
    if (st.ok()) {
      published_.store(true);
      spdlog::info("member {:x} published its name {} and client URLs", self_id_,
                   ctx_.options->name);
    } else if (st.code() != Code::kStopped) {
      spdlog::warn("publishing this member's attributes failed, will try again: {}", st.ToString());
    }
    publish_in_flight_.store(false);
  };
  ProposeOne(p);
}

void RaftNode::InstallSnapshot(IncomingSnapshot in) {
  const raftpb::SnapshotMetadata& meta = in.message.snapshot().metadata();
  // A snapshot Raft already covers, or one from an old term: Raft answers
  // it and the store (which may be ahead of it) stays.
  if (meta.index() <= node_->committed() || in.message.term() < node_->term()) {
    (void)ctx_.options->env->RemoveFile(in.path);
    Status st = node_->Step(in.message);
    if (!st.ok()) spdlog::debug("stale snapshot from {:x}: {}", in.message.from(), st.ToString());
    return;
  }
  spdlog::info("installing the snapshot at index {} (term {}) from {:x}", meta.index(), meta.term(),
               in.message.from());
  const raftpb::Message message = in.message;
  // The store is replaced on the apply thread, behind every entry before
  // the snapshot (or kept, if the received one is older: after a crash
  // between an install and its save, docs/architecture.md); Raft hears of
  // the snapshot only once that is done.
  ctx_.applier->InstallAndWait(std::move(in));
  // Write (in DrainReady: snapshot file, then WAL marker) comes before
  // Raft's acknowledgement is sent.
  Status st = node_->Step(message);
  if (!st.ok()) spdlog::warn("snapshot from {:x} not accepted: {}", message.from(), st.ToString());
  for (const Member& m : ctx_.membership->List()) {
    if (m.id == self_id_) continue;
    EnsureListening();
    ctx_.transport->AddPeer(m.id, m.peer_urls);
  }
}

void RaftNode::DrainReady() {
  while (node_->HasReady()) {
    raft::Ready ready = node_->GetReady();
    // A leader's committed entries go to the apply thread before the WAL's
    // flush of this Ready, which their apply then overlaps; the apply
    // thread holds back what clients see of them until MarkSynced (the
    // Raft thesis, 10.2.1: a leader may apply what a quorum holds, its own
    // write still in flight). A leader never overwrites its log, so what is
    // written is what becomes durable. A follower's hand-over waits for
    // the flush: an entry it was just sent may be committed already.
    const bool apply_during_sync = node_->state() == raft::StateType::kLeader;
    Write(ready);
    uint64_t last_conf_index = 0;
    for (const raftpb::Entry& e : ready.committed_entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) last_conf_index = e.index();
    }
    // Advance reads the Ready's committed entries, so they move only after.
    node_->Advance(ready);
    if (apply_during_sync) HandOver(ready);
    Sync(ready);
    if (!apply_during_sync) HandOver(ready);
    // The apply thread's verdict needs the conf change's commit, which
    // needs the sync above.
    if (last_conf_index != 0) ApplyConfChanges(last_conf_index);
  }
}

void RaftNode::Write(raft::Ready& ready) {
  if (ready.soft_state) {
    const uint64_t previous =
        leader_id_.exchange(ready.soft_state->lead, std::memory_order_acq_rel);
    if (ready.soft_state->lead != 0 && ready.soft_state->lead != previous) {
      metrics::LeaderChangesSeenTotal().Inc();
      metrics::DefaultMemberStats().LeaderChanged(
          ready.soft_state->lead,
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->WallNow().time_since_epoch())
              .count());
    }
  }
  if (ready.hard_state) {
    term_.store(ready.hard_state->term(), std::memory_order_release);
    commit_index_.store(ready.hard_state->commit(), std::memory_order_release);
  }
  // Only a leader keeps lease deadlines (docs/lease.md).
  if (ready.soft_state) ctx_.lessor->SetLeader(ready.soft_state->lead == self_id_, term());
  const raftpb::SnapshotMetadata& snap_meta = ready.snapshot.metadata();
  if (snap_meta.index() > 0) {
    // The store was installed before Raft accepted the snapshot.
    conf_history_.emplace_back(snap_meta.index(), snap_meta.conf_state());
    Status st = snapshotter_->SaveSnap(ready.snapshot);
    if (st.ok()) st = wal_->SaveSnapshot(wal::SnapshotMarker{snap_meta.index(), snap_meta.term()});
    if (!st.ok()) Fatal("persisting a received snapshot failed", st);
    st = raft_storage_->ApplySnapshot(ready.snapshot);
    if (!st.ok()) Fatal("Raft's log refused a received snapshot", st);
  }
  if (node_->state() == raft::StateType::kLeader) SendBeforePersisting(ready.messages);
  if (ready.hard_state || !ready.entries.empty()) {
    const raftpb::HardState hs = ready.hard_state ? *ready.hard_state : raftpb::HardState();
    Status st = wal_->Save(hs, ready.entries, /*sync=*/false);
    if (!st.ok()) Fatal("writing the WAL failed", st);
    if (ready.hard_state) raft_storage_->SetHardState(*ready.hard_state);
    // Moved: nothing reads ready.entries after this (Advance takes the
    // last entry from last_entry_index/term).
    st = raft_storage_->Append(std::move(ready.entries));
    if (!st.ok()) Fatal("appending to Raft's log failed", st);
  }
}

void RaftNode::Sync(raft::Ready& ready) {
  if (ready.must_sync) {
    Status st = wal_->Sync();
    if (!st.ok()) Fatal("writing the WAL failed", st);
  }
  // A received snapshot's marker was synced as it was written.
  if (ready.must_sync || ready.snapshot.metadata().index() > 0) {
    ctx_.applier->MarkSynced(wal_->last_index());
  }
  Send(ready.messages);
}

void RaftNode::SendBeforePersisting(std::vector<raftpb::Message>& messages) {
  // A leader's appends and heartbeats need nothing of this Ready on disk:
  // their term was made durable when this member campaigned, and the
  // entries they carry count toward a commit only through the followers'
  // answers, which this loop steps after this Ready is persisted. So they
  // leave now, and the followers write while the leader does (the Raft
  // thesis, 10.2.1); what else the Ready holds waits for the write.
  const uint64_t term = node_->term();
  std::vector<raftpb::Message> early;
  std::vector<raftpb::Message> late;
  for (raftpb::Message& m : messages) {
    const bool leader_traffic =
        m.term() == term && (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT);
    (leader_traffic ? early : late).push_back(std::move(m));
  }
  messages = std::move(late);
  if (!early.empty()) ctx_.transport->Send(std::move(early));
}

void RaftNode::Send(std::vector<raftpb::Message>& messages) {
  if (messages.empty()) return;
  std::vector<raftpb::Message> out;
  out.reserve(messages.size());
  for (raftpb::Message& m : messages) {
    if (m.type() == raftpb::MSG_SNAP) {
      snapshot_sender_->Send(std::move(m));
    } else {
      out.push_back(std::move(m));
    }
  }
  ctx_.transport->Send(std::move(out));
}

void RaftNode::HandOver(raft::Ready& ready) {
  ApplyBatch batch;
  batch.entries = std::move(ready.committed_entries);
  for (const raft::ReadState& state : ready.read_states) {
    if (auto confirmed = reads_batcher_.Confirm(state)) {
      spdlog::debug("read round {:x}: {} reads wait for index {} (term {}, leader {:x})",
                    raft::ContextTag(state.request_ctx), confirmed->callbacks.size(), state.index,
                    node_->term(), node_->lead());
      batch.reads.push_back(std::move(*confirmed));
    }
  }
  if (batch.entries.empty() && batch.reads.empty()) return;
  ctx_.applier->Enqueue(std::move(batch));
}

void RaftNode::ApplyConfChanges(uint64_t index) {
  // At most one conf change is pending in the cluster, so this wait for the
  // apply thread is rare and short.
  for (const auto& [at, cc] : ctx_.applier->WaitConfChanges(index)) {
    conf_history_.emplace_back(at, node_->ApplyConfChange(cc));
    if (cc.node_id() == 0) continue;  // refused by the apply thread
    internalpb::ConfChangeContext change;
    (void)change.ParseFromString(cc.context());
    const std::vector<std::string> urls(change.member().peer_urls().begin(),
                                        change.member().peer_urls().end());
    switch (cc.type()) {
      case raftpb::CONF_CHANGE_ADD_NODE:
      case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
        if (cc.node_id() != self_id_ && !change.is_promote()) {
          EnsureListening();
          ctx_.transport->AddPeer(cc.node_id(), urls);
        }
        break;
      case raftpb::CONF_CHANGE_REMOVE_NODE:
        if (cc.node_id() == self_id_) {
          ctx_.on_removed();
        } else {
          ctx_.transport->RemovePeer(cc.node_id());
        }
        break;
      case raftpb::CONF_CHANGE_UPDATE_NODE:
        if (cc.node_id() != self_id_) ctx_.transport->UpdatePeer(cc.node_id(), urls);
        break;
      default:
        break;
    }
  }
}

void RaftNode::ProposeAll(std::deque<PendingProposal>& proposals) {
  // Encoded entries waiting for their waiters to be registered, in order.
  std::vector<std::pair<PendingProposal*, std::string>> encoded;
  std::vector<std::pair<uint64_t, WaiterRegistry::Waiter>> waiters;
  // Registers the waiters of `encoded` under one lock, then proposes them.
  auto flush = [&] {
    if (encoded.empty()) return;
    ctx_.waiters->RegisterAll(waiters);
    for (auto& [p, data] : encoded) {
      OnProposed(*p, p->request.header().id(), node_->Propose(std::move(data)));
    }
    encoded.clear();
  };
  for (PendingProposal& p : proposals) {
    if (p.conf_change) {
      flush();  // keeps the order proposals arrived in
      ProposeOne(p);
      continue;
    }
    if (!p.request.header().id()) p.request.mutable_header()->set_id(++next_request_id_);
    std::string data = p.request.SerializeAsString();
    if (data.size() > ctx_.options->max_request_bytes) {
      p.done(Status(Code::kRequestTooLarge));
      continue;
    }
    // Registered before Raft sees the entry: on a single member it can be
    // applied before Propose returns. The callback moves into the registry
    // and comes back from it if Raft refuses the entry.
    waiters.emplace_back(p.request.header().id(),
                         WaiterRegistry::Waiter{p.response, std::move(p.done), p.deadline});
    encoded.emplace_back(&p, std::move(data));
  }
  flush();
}

void RaftNode::ProposeOne(PendingProposal& p) {
  if (!p.conf_change) {
    std::deque<PendingProposal> one;
    one.push_back(std::move(p));
    return ProposeAll(one);
  }
  if (p.check_learner_ready) {
    Status ready = LearnerCaughtUp(node_->GetStatus(), p.conf_change->node_id(), self_id_);
    if (!ready.ok()) return p.done(ready);
  }
  if (!p.conf_change->id()) p.conf_change->set_id(++next_request_id_);
  const uint64_t id = p.conf_change->id();
  ctx_.waiters->Register(id, WaiterRegistry::Waiter{nullptr, std::move(p.done), p.deadline});
  OnProposed(p, id, node_->ProposeConfChange(*p.conf_change));
}

void RaftNode::OnProposed(PendingProposal& p, uint64_t id, const Status& st) {
  if (st.ok()) return;
  // Raft refused it, so no apply can have taken the waiter: the callback is
  // still there.
  std::optional<WaiterRegistry::Waiter> waiter = ctx_.waiters->Take(id);
  if (!waiter) return;
  p.done = std::move(waiter->done);
  if (WaitsForLeader(st)) {
    stalled_.push_back(std::move(p));
    return;
  }
  metrics::ProposalsFailedTotal().Inc();
  p.done(st);
}

void RaftNode::CampaignIfSoleVoter() {
  const raftpb::ConfState cs = node_->conf_state();
  if (cs.voters_size() == 1 && cs.voters(0) == self_id_ && node_->lead() == 0) {
    (void)node_->Campaign();
  }
}

void RaftNode::TakeSnapshot(uint64_t index, const std::string& membership) {
  raftpb::ConfState conf_state;
  for (const auto& [at, cs] : conf_history_) {
    if (at <= index) conf_state = cs;
  }
  // The snapshot's data is the membership as of `index`; the store itself
  // is already durable up to it. Whoever starts from the snapshot replays
  // the log after `index` on top.
  auto snapshot = raft_storage_->CreateSnapshot(index, &conf_state, membership);
  if (!snapshot.ok()) {
    spdlog::warn("no snapshot at index {}: {}", index, snapshot.status().ToString());
    return;
  }
  const raftpb::SnapshotMetadata& meta = snapshot->metadata();
  Status st = snapshotter_->SaveSnap(*snapshot);
  if (st.ok()) st = wal_->SaveSnapshot(wal::SnapshotMarker{meta.index(), meta.term()});
  if (!st.ok()) Fatal("saving a snapshot failed", st);
  // The snapshot now stands for every ConfState up to `index`.
  std::erase_if(conf_history_, [index](const auto& h) { return h.first < index; });
  conf_history_.insert(conf_history_.begin(), {index, conf_state});
  // The catch-up entries behind the snapshot: at most so many, of at most
  // so many bytes.
  const uint64_t catchup = ctx_.options->snapshot_catchup_entries;
  const uint64_t compact_to =
      std::max(index > catchup ? index - catchup : 0,
               raft_storage_->CompactIndexKeeping(index, ctx_.options->snapshot_catchup_bytes));
  if (compact_to > 0) {
    st = raft_storage_->Compact(compact_to);
    if (!st.ok() && st.code() != Code::kCompacted) {
      spdlog::warn("compacting Raft's in-memory log failed: {}", st.ToString());
    }
  }
  st = wal_->ReleaseTo(index);
  if (!st.ok())
    spdlog::warn("releasing WAL files before index {} failed: {}", index, st.ToString());
  st = snapshotter_->Purge(kSnapshotsToKeep);
  if (!st.ok()) spdlog::warn("purging old snapshot files failed: {}", st.ToString());
  spdlog::info("snapshot saved at index {}", index);
}

void RaftNode::FailAll(const Status& status) {
  metrics::ProposalsFailedTotal().Inc(stalled_.size());
  for (PendingProposal& p : stalled_) p.done(status);
  stalled_.clear();
  transfers_.FailAll(status);
  reads_batcher_.FailAll(status);
  std::deque<PendingProposal> proposals;
  std::vector<ReadCallback> reads;
  std::vector<TransferRequest> transfers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    proposals.swap(proposals_);
    reads.swap(reads_);
    transfers.swap(transfer_requests_);
  }
  for (TransferRequest& t : transfers) t.done(status);
  metrics::ProposalsFailedTotal().Inc(proposals.size());
  for (PendingProposal& p : proposals) p.done(status);
  for (ReadCallback& r : reads) r(status);
}

}  // namespace etcdpp::server
