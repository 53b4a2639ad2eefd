#include "server/etcd_server.h"

#include <google/protobuf/message.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <type_traits>

#include "base/coding.h"
#include "base/env.h"
#include "lease/lessor.h"
#include "mvcc/kv_store.h"
#include "raft/raw_node.h"
#include "raft/storage.h"
#include "server/kv_applier.h"
#include "snap/snapshotter.h"
#include "wal/wal.h"
#include "watch/watch_hub.h"

namespace etcdpp::server {
namespace {

// WAL metadata record: which member and cluster this WAL belongs to, so a data
// dir cannot be started as another member by mistake.
std::string EncodeWalMetadata(uint64_t member_id, uint64_t cluster_id) {
  std::string out(16, '\0');
  PutBE64(out.data(), member_id);
  PutBE64(out.data() + 8, cluster_id);
  return out;
}

bool DecodeWalMetadata(const std::string& in, uint64_t* member_id, uint64_t* cluster_id) {
  if (in.size() != 16) return false;
  *member_id = GetBE64(in.data());
  *cluster_id = GetBE64(in.data() + 8);
  return true;
}

std::string EncodeReadContext(uint64_t ctx) {
  std::string out(8, '\0');
  PutBE64(out.data(), ctx);
  return out;
}

// 0 (no context of ours) for anything but 8 bytes.
uint64_t DecodeReadContext(const std::string& in) {
  return in.size() == 8 ? GetBE64(in.data()) : 0;
}

// A response object of the right type for requests nobody waits for (WAL
// replay, or another member's proposal): apply needs somewhere to write.
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
    default:
      return nullptr;
  }
}

// Snapshot files kept on disk (etcd keeps 5).
constexpr size_t kSnapshotsToKeep = 5;

}  // namespace

EtcdServer::EtcdServer(const ServerOptions& options) : options_(options) {
  wal_dir_ = options_.data_dir + "/member/wal";
  snap_dir_ = options_.data_dir + "/member/snap";
}

EtcdServer::~EtcdServer() { Stop(); }

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(const ServerOptions& options) {
  std::unique_ptr<EtcdServer> server(new EtcdServer(options));
  Status st = server->Open();
  if (!st.ok()) return st;
  st = server->StartTransport();
  if (!st.ok()) return st;
  server->StartThreads();
  return server;
}

Status EtcdServer::Open() {
  Env* env = Env::Default();
  const std::string member_dir = options_.data_dir + "/member";
  const bool fresh = !env->FileExists(member_dir);
  ETCDPP_RETURN_IF_ERROR(env->CreateDir(snap_dir_));
  if (fresh) {
    // Make the new directories themselves durable, not only their files.
    ETCDPP_RETURN_IF_ERROR(env->SyncDir(member_dir));
    ETCDPP_RETURN_IF_ERROR(env->SyncDir(options_.data_dir));
    ETCDPP_RETURN_IF_ERROR(env->SyncDir(DirName(options_.data_dir)));
  }
  // Two members sharing one data dir would corrupt it: the second one waits
  // for nothing and fails at once.
  auto lock = env->LockFile(member_dir + "/lock");
  if (!lock.ok()) {
    return Status(lock.status().code(),
                  "data dir " + options_.data_dir +
                      " is in use by another process: " + lock.status().message());
  }
  data_dir_lock_ = std::move(lock.value());

  mvcc::Options store_options;
  store_options.quota_bytes = options_.quota_backend_bytes;
  auto store = mvcc::KvStore::Open(snap_dir_ + "/db", store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(store.value());
  lease::LessorOptions lease_options;
  lease_options.min_ttl_seconds =
      lease::MinLeaseTtlSeconds(options_.heartbeat_interval, options_.election_timeout);
  lease_options.promote_extension = options_.election_timeout;
  auto lessor = lease::Lessor::Open(
      [this]() -> std::shared_ptr<mvcc::KvStore> {
        // Whether store() hands out a raw or a shared pointer.
        auto shared = [](auto s) -> std::shared_ptr<mvcc::KvStore> {
          if constexpr (std::is_pointer_v<decltype(s)>) {
            return std::shared_ptr<mvcc::KvStore>(std::shared_ptr<void>(), s);  // not owning
          } else {
            return s;
          }
        };
        return shared(this->store());
      },
      lease_options);
  if (!lessor.ok()) return lessor.status();
  lessor_ = std::move(lessor.value());
  kv_ = std::make_unique<KvApplier>(lessor_.get());
  watch::WatchHubOptions watch_options;
  watch_options.progress_notify_interval = options_.watch_progress_notify_interval;
  watch_hub_ = std::make_unique<watch::WatchHub>(store_.get(), watch_options);
  snapshotter_ = std::make_unique<snap::Snapshotter>(Env::Default(), snap_dir_);
  raft_storage_ = std::make_unique<raft::MemoryStorage>();

  auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
  if (!members.ok()) return members.status();

  if (!wal::Wal::Exists(Env::Default(), wal_dir_)) {
    if (options_.initial_cluster_state != "new") {
      return Status::Unimplemented("--initial-cluster-state=existing needs multi-member support");
    }
    return Bootstrap(*members);
  }
  return Restart();
}

Status EtcdServer::Bootstrap(const std::vector<Member>& members) {
  const Member* self = nullptr;
  for (const Member& m : members) {
    if (m.name == options_.name) self = &m;
  }
  if (self == nullptr) {
    return Status::InvalidArgument("couldn't find local name \"" + options_.name +
                                   "\" in the initial cluster configuration");
  }
  member_id_ = self->id;
  std::vector<uint64_t> ids;
  for (const Member& m : members) ids.push_back(m.id);
  cluster_id_ = ComputeClusterId(ids);
  {
    std::lock_guard<std::mutex> lock(mu_);
    members_ = members;
    for (Member& m : members_) {
      if (m.id == member_id_) m.client_urls = options_.client_urls;
    }
  }

  auto wal = wal::Wal::Create(Env::Default(), wal_dir_, EncodeWalMetadata(member_id_, cluster_id_),
                              wal::Options());
  if (!wal.ok()) return wal.status();
  wal_ = std::move(wal.value());

  raft::Config config = RaftConfig();
  auto node = raft::RawNode::Create(config);
  if (!node.ok()) return node.status();
  node_ = std::move(node.value());
  std::vector<raft::Peer> peers;
  for (const Member& m : members) peers.push_back(raft::Peer{m.id, m.name});
  return node_->Bootstrap(peers);
}

Status EtcdServer::Restart() {
  // The newest snapshot the WAL also records: replay starts from it.
  auto markers = wal::Wal::ValidSnapshotMarkers(Env::Default(), wal_dir_);
  if (!markers.ok()) return markers.status();
  raftpb::Snapshot snapshot;
  auto loaded = snapshotter_->LoadNewestAvailable(*markers);
  if (loaded.ok()) {
    snapshot = std::move(loaded.value());
  } else if (loaded.status().code() != Code::kNotFound) {
    return loaded.status();
  } else if (markers->size() > 1) {
    // The WAL names snapshots but none is readable: starting from index 0
    // would replay a log whose beginning was purged.
    return Status::Corruption("snap: no usable snapshot in " + snap_dir_ +
                              " for the snapshot markers of the WAL in " + wal_dir_);
  }
  wal::SnapshotMarker marker{snapshot.metadata().index(), snapshot.metadata().term()};
  auto wal = wal::Wal::Open(Env::Default(), wal_dir_, marker, wal::Options());
  if (!wal.ok()) return wal.status();
  wal_ = std::move(wal.value());
  auto contents = wal_->ReadAll();
  if (!contents.ok()) return contents.status();
  if (!DecodeWalMetadata(contents->metadata, &member_id_, &cluster_id_)) {
    return Status::Corruption("wal: metadata record of " + wal_dir_ + " is malformed");
  }
  if (snapshot.metadata().index() > 0) {
    ETCDPP_RETURN_IF_ERROR(raft_storage_->ApplySnapshot(snapshot));
    snapshot_requested_index_ = snapshot.metadata().index();
    conf_history_.emplace_back(snapshot.metadata().index(), snapshot.metadata().conf_state());
  }
  raft_storage_->SetHardState(contents->hard_state);
  ETCDPP_RETURN_IF_ERROR(raft_storage_->Append(contents->entries));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
    if (members.ok()) members_ = *members;
    for (Member& m : members_) {
      if (m.id == member_id_) m.client_urls = options_.client_urls;
    }
  }
  raft::Config config = RaftConfig();
  config.applied = snapshot.metadata().index();
  auto node = raft::RawNode::Create(config);
  if (!node.ok()) return node.status();
  node_ = std::move(node.value());
  spdlog::info("restarted member {:x} in cluster {:x} at commit index {}, applied index {}",
               member_id_, cluster_id_, contents->hard_state.commit(), store_->ConsistentIndex());
  return Status::OK();
}

raft::Config EtcdServer::RaftConfig() const {
  raft::Config config;
  config.id = member_id_;
  config.heartbeat_tick = 1;
  config.election_tick =
      std::max<int>(2, static_cast<int>(options_.election_timeout / options_.heartbeat_interval));
  config.storage = raft_storage_.get();
  config.max_size_per_msg = 1024 * 1024;
  config.max_inflight_msgs = 512;
  config.max_uncommitted_entries_size = 1ull << 30;
  config.check_quorum = true;
  config.pre_vote = true;
  config.seed = member_id_ ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  return config;
}

Status EtcdServer::StartTransport() {
  std::vector<Member> members = Members();
  if (members.size() <= 1) return Status::OK();
  transport::TransportOptions topts;
  topts.snapshot_dir = snap_dir_;
  transport::Handler* handler = this;
  transport_ = std::make_unique<transport::Transport>(member_id_, cluster_id_, handler, topts);
  std::vector<std::string> listen = options_.listen_peer_urls;
  if (listen.empty()) listen = options_.initial_advertise_peer_urls;
  Status st = transport_->Start(listen);
  if (!st.ok()) return st;
  for (const Member& m : members) {
    if (m.id != member_id_) transport_->AddPeer(m.id, m.peer_urls);
  }
  return Status::OK();
}

void EtcdServer::OnMessage(raftpb::Message m) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    incoming_.push_back(std::move(m));
  }
  work_cv_.notify_one();
}

void EtcdServer::OnSnapshot(raftpb::Message m, std::string data_file_path) {
  // Installing a leader's backend is not built yet (a follower that fell
  // behind the leader's retained log cannot catch up): refuse it visibly.
  spdlog::error(
      "received a snapshot at index {} from {:x}; installing snapshots is not supported yet",
      m.snapshot().metadata().index(), m.from());
  (void)Env::Default()->RemoveFile(data_file_path);
}

void EtcdServer::SendMessages(std::vector<raftpb::Message>& messages) {
  if (messages.empty() || !transport_) return;
  std::vector<raftpb::Message> out;
  out.reserve(messages.size());
  for (raftpb::Message& m : messages) {
    if (m.type() == raftpb::MSG_SNAP) {
      spdlog::warn(
          "member {:x} needs a snapshot (index {}); sending snapshots is not supported yet", m.to(),
          m.snapshot().metadata().index());
      node_->ReportSnapshot(m.to(), /*failed=*/true);
      continue;
    }
    out.push_back(std::move(m));
  }
  transport_->Send(std::move(out));
}

void EtcdServer::Stop() {
  if (lessor_) lessor_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (transport_) transport_->Stop();
  // The raft loop has stopped feeding the applier; let it drain what it has
  // (those entries are durable in the WAL) and stop.
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_stopping_ = true;
  }
  apply_cv_.notify_all();
  if (applier_.joinable()) applier_.join();
  // Watch streams end with "server stopped" instead of holding up gRPC's
  // shutdown.
  if (watch_hub_) watch_hub_->Stop();
  FailAll(Status(Code::kStopped));
  if (store_) (void)store_->Sync();
}

void EtcdServer::Propose(internalpb::InternalRaftRequest request,
                         google::protobuf::Message* response, ProposeCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      proposals_.push_back(PendingProposal{std::move(request), response, std::move(done),
                                           Clock::now() + RequestTimeout()});
      work_cv_.notify_one();
      return;
    }
  }
  done(Status(Code::kStopped));
}

void EtcdServer::WaitLinearizable(ReadCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      reads_.push_back(std::move(done));
      work_cv_.notify_one();
      return;
    }
  }
  done(Status(Code::kStopped));
}

void EtcdServer::CallLeader(const std::string& method, std::string body,
                            std::function<void(Result<std::string>)> done) {
  const uint64_t leader = leader_id();
  if (leader == 0) {
    done(Status(Code::kNoLeader));
    return;
  }
  if (leader == member_id_ || !transport_) {
    done(Status(Code::kLeaderChanged));
    return;
  }
  transport_->Call(leader, method, std::move(body), RequestTimeout(), std::move(done));
}

void EtcdServer::OnCall(uint64_t /*from*/, const std::string& method, const std::string& body,
                        CallDone done) {
  if (method.starts_with("lease/")) {
    lessor_->ServePeerCall(method, body, std::move(done));
    return;
  }
  done(Status::Unimplemented("no handler for peer call " + method));
}

void EtcdServer::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(member_id_);
  header->set_raft_term(term());
}

std::vector<Member> EtcdServer::Members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

std::chrono::milliseconds EtcdServer::RequestTimeout() const {
  // etcd: 5s plus two election timeouts.
  return std::chrono::milliseconds(5000) + 2 * options_.election_timeout;
}

void EtcdServer::StartThreads() {
  // Request IDs are unique across members and restarts, like etcd's idutil:
  // 16 bits of member ID, then a millisecond timestamp, then a counter.
  const uint64_t now_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  next_request_id_ = ((member_id_ & 0xffff) << 48) | ((now_ms & ((1ull << 40) - 1)) << 8);
  // Expired leases are revoked through Raft like a client's LeaseRevoke;
  // nobody waits for the outcome (a revoke that is lost is proposed again).
  lessor_->StartExpiryLoop([this](int64_t id) {
    internalpb::InternalRaftRequest request;
    request.mutable_lease_revoke()->set_id(id);
    auto response = std::make_shared<etcdserverpb::LeaseRevokeResponse>();
    Propose(std::move(request), response.get(), [response](const Status&) {});
  });
  applier_ = std::thread([this] { ApplyLoop(); });
  loop_ = std::thread([this] { RaftLoop(); });
}

void EtcdServer::RaftLoop() {
  // Hand over what bootstrap or WAL replay left committed, then elect at once
  // if this member is the only voter.
  DrainReady();
  CampaignIfSoleVoter();
  Clock::time_point next_tick = Clock::now() + options_.heartbeat_interval;
  std::deque<PendingProposal> proposals;
  std::vector<ReadCallback> reads;
  std::vector<raftpb::Message> incoming;
  for (;;) {
    uint64_t snapshot_at = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_until(lock, next_tick, [&] {
        return stopping_ || !proposals_.empty() || !reads_.empty() || !incoming_.empty() ||
               snapshot_request_ != 0;
      });
      if (stopping_) break;
      proposals.swap(proposals_);
      reads.swap(reads_);
      incoming.swap(incoming_);
      std::swap(snapshot_at, snapshot_request_);
    }
    for (const raftpb::Message& m : incoming) {
      Status st = node_->Step(m);
      if (!st.ok() && st.code() != Code::kNotFound) {
        spdlog::debug("dropped message from {:x}: {}", m.from(), st.ToString());
      }
    }
    incoming.clear();
    Clock::time_point now = Clock::now();
    if (now >= next_tick) {
      node_->Tick();
      next_tick = now + options_.heartbeat_interval;
      if (transport_) {
        for (uint64_t id : transport_->TakeUnreachable()) node_->ReportUnreachable(id);
      }
      ExpireRequests(now);
    }
    // Proposals that found no leader wait for one, oldest first, until their
    // deadline (etcd lets them time out rather than fail at once).
    if (!stalled_proposals_.empty()) {
      proposals.insert(proposals.begin(), std::make_move_iterator(stalled_proposals_.begin()),
                       std::make_move_iterator(stalled_proposals_.end()));
      stalled_proposals_.clear();
    }
    for (PendingProposal& p : proposals) ProposeOne(p);
    proposals.clear();
    if (!reads.empty()) {
      uint64_t ctx = ++next_read_ctx_;
      reads_in_flight_.emplace(ctx, ReadBatch{std::move(reads), now + RequestTimeout()});
      reads.clear();
      node_->ReadIndex(EncodeReadContext(ctx));
    }
    DrainReady();
    if (snapshot_at != 0) Snapshot(snapshot_at);
  }
}

void EtcdServer::DrainReady() {
  while (node_->HasReady()) {
    raft::Ready ready = node_->GetReady();
    HandleReady(ready);
    // Advance reads ready.committed_entries: hand them over only afterwards.
    node_->Advance(ready);
    QueueApply(ready);
  }
}

void EtcdServer::ProposeOne(PendingProposal& p) {
  if (!p.request.header().id()) p.request.mutable_header()->set_id(++next_request_id_);
  std::string data = p.request.SerializeAsString();
  if (data.size() > options_.max_request_bytes) {
    p.done(Status(Code::kRequestTooLarge));
    return;
  }
  const uint64_t id = p.request.header().id();
  // Registered before proposing: on a single member the entry may be applied
  // by the apply thread before Propose returns here.
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    waiters_.emplace(id, Waiter{p.response, p.done, p.deadline});
  }
  Status st = node_->Propose(std::move(data));
  if (st.ok()) return;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    waiters_.erase(id);
  }
  if (st.code() == Code::kNoLeader || st.code() == Code::kLeaderChanged) {
    stalled_proposals_.push_back(std::move(p));
    return;
  }
  p.done(st);
}

void EtcdServer::CampaignIfSoleVoter() {
  raftpb::ConfState cs = node_->conf_state();
  if (cs.voters_size() == 1 && cs.voters(0) == member_id_ && node_->lead() == 0) {
    // Nobody else can win: skip the election timeout (etcd fast-forwards
    // ticks on start for the same reason).
    (void)node_->Campaign();
  }
}

void EtcdServer::HandleReady(raft::Ready& ready) {
  if (ready.soft_state) {
    leader_id_.store(ready.soft_state->lead, std::memory_order_release);
  }
  if (ready.hard_state) {
    term_.store(ready.hard_state->term(), std::memory_order_release);
    commit_index_.store(ready.hard_state->commit(), std::memory_order_release);
  }
  // Lease deadlines exist only on the leader (docs/lease.md).
  if (ready.soft_state && lessor_) {
    lessor_->SetLeader(ready.soft_state->lead == member_id_, term());
  }
  // Persist before anything leaves this member or is applied (Raft: a vote or
  // an acked append must survive a crash).
  if (ready.snapshot.metadata().index() > 0) {
    Status st = snapshotter_->SaveSnap(ready.snapshot);
    if (st.ok()) {
      st = wal_->SaveSnapshot(
          wal::SnapshotMarker{ready.snapshot.metadata().index(), ready.snapshot.metadata().term()});
    }
    if (!st.ok()) Fatal("failed to persist snapshot", st);
    st = raft_storage_->ApplySnapshot(ready.snapshot);
    if (!st.ok()) Fatal("failed to apply snapshot to raft storage", st);
  }
  if (ready.hard_state || !ready.entries.empty()) {
    raftpb::HardState hs = ready.hard_state ? *ready.hard_state : raftpb::HardState();
    Status st = wal_->Save(hs, ready.entries, ready.must_sync);
    if (!st.ok()) Fatal("failed to write WAL", st);
    if (ready.hard_state) raft_storage_->SetHardState(*ready.hard_state);
    st = raft_storage_->Append(ready.entries);
    if (!st.ok()) Fatal("failed to append to raft storage", st);
  }
  SendMessages(ready.messages);

  // Membership changes take effect in Raft as they are handed to the applier
  // (the RawNode belongs to this thread); remember the ConfState per index so
  // a snapshot at index i records the membership as of i.
  for (const raftpb::Entry& entry : ready.committed_entries) {
    if (entry.type() != raftpb::ENTRY_CONF_CHANGE) continue;
    raftpb::ConfChange cc;
    if (!cc.ParseFromString(entry.data())) {
      Fatal("undecodable conf change",
            Status::Corruption("index " + std::to_string(entry.index())));
    }
    conf_history_.emplace_back(entry.index(), node_->ApplyConfChange(cc));
  }
}

void EtcdServer::QueueApply(raft::Ready& ready) {
  ApplyBatch batch;
  batch.entries = std::move(ready.committed_entries);
  for (const raft::ReadState& rs : ready.read_states) {
    auto it = reads_in_flight_.find(DecodeReadContext(rs.request_ctx));
    if (it == reads_in_flight_.end()) continue;
    batch.reads.emplace_back(rs.index, std::move(it->second.callbacks));
    reads_in_flight_.erase(it);
  }
  if (batch.entries.empty() && batch.reads.empty()) return;
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_queue_.push_back(std::move(batch));
  }
  apply_cv_.notify_one();
}

void EtcdServer::ApplyLoop() {
  std::deque<ApplyBatch> batches;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(apply_mu_);
      apply_cv_.wait(lock, [&] { return apply_stopping_ || !apply_queue_.empty(); });
      if (apply_queue_.empty()) return;  // Stopping, and everything is applied.
      batches.swap(apply_queue_);
    }
    // Everything queued goes into one LMDB transaction: under load the
    // applier falls behind by a few batches and catches up in one commit.
    std::vector<raftpb::Entry> entries;
    for (ApplyBatch& b : batches) {
      for (raftpb::Entry& e : b.entries) entries.push_back(std::move(e));
      for (auto& r : b.reads) reads_waiting_apply_.push_back(std::move(r));
    }
    batches.clear();
    ApplyEntries(entries);
    CompleteAppliedReads();
    MaybeRequestSnapshot();
  }
}

void EtcdServer::ApplyEntries(std::vector<raftpb::Entry>& entries) {
  if (entries.empty()) return;
  const uint64_t consistent_index = store_->ConsistentIndex();
  auto write = store_->Write();
  if (!write.ok()) Fatal("cannot open a backend write transaction", write.status());
  std::unique_ptr<mvcc::WriteTxn> txn = std::move(write.value());
  std::vector<std::pair<Waiter, Status>> completed;
  uint64_t last_index = 0;
  for (const raftpb::Entry& entry : entries) {
    last_index = entry.index();
    // A leader's empty entry: every entry of earlier terms is applied, so
    // its lessor takes over the deadlines (etcd's Promote).
    if (entry.type() == raftpb::ENTRY_NORMAL && entry.data().empty()) {
      lessor_->Promote(entry.term());
    }
    // Entries at or below the consistent index are already in the store
    // (replayed from the WAL after a restart): applying twice would bump
    // revisions twice. Conf changes were applied by the raft loop.
    if (entry.index() <= consistent_index || entry.data().empty() ||
        entry.type() != raftpb::ENTRY_NORMAL) {
      continue;
    }
    internalpb::InternalRaftRequest request;
    if (!request.ParseFromString(entry.data())) {
      Fatal("undecodable raft entry", Status::Corruption("index " + std::to_string(entry.index())));
    }
    std::optional<Waiter> waiter;
    {
      std::lock_guard<std::mutex> lock(waiters_mu_);
      auto it = waiters_.find(request.header().id());
      if (it != waiters_.end()) {
        waiter = std::move(it->second);
        waiters_.erase(it);
      }
    }
    std::unique_ptr<google::protobuf::Message> scratch;
    google::protobuf::Message* response = nullptr;
    if (waiter) {
      response = waiter->response;
    } else {
      scratch = ScratchResponse(request);
      response = scratch.get();
    }
    Status st = ApplyRequest(*txn, request, response);
    if (waiter) completed.emplace_back(std::move(*waiter), std::move(st));
  }
  Status st;
  if (last_index > consistent_index) st = txn->SetConsistentIndex(last_index);
  if (st.ok()) st = txn->Commit();
  if (!st.ok()) Fatal("failed to commit applied entries to the backend", st);
  applied_index_.store(last_index, std::memory_order_release);
  // Watchers read the new changes on the hub's own thread.
  watch_hub_->Notify(store_->CurrentRevision());
  for (auto& [waiter, status] : completed) waiter.done(status);
}

Status EtcdServer::ApplyRequest(mvcc::WriteTxn& txn, const internalpb::InternalRaftRequest& request,
                                google::protobuf::Message* response) {
  using R = internalpb::InternalRaftRequest;
  switch (request.request_case()) {
    case R::kPut:
      return kv_->Put(txn, request.put(), static_cast<etcdserverpb::PutResponse*>(response));
    case R::kDeleteRange:
      return kv_->DeleteRange(txn, request.delete_range(),
                              static_cast<etcdserverpb::DeleteRangeResponse*>(response));
    case R::kTxn:
      return kv_->Txn(txn, request.txn(), static_cast<etcdserverpb::TxnResponse*>(response));
    case R::kCompaction:
      return kv_->Compact(txn, request.compaction(),
                          static_cast<etcdserverpb::CompactionResponse*>(response));
    case R::kLeaseGrant:
      return lessor_->Grant(txn, request.lease_grant(),
                            static_cast<etcdserverpb::LeaseGrantResponse*>(response));
    case R::kLeaseRevoke:
      return lessor_->Revoke(txn, request.lease_revoke(),
                             static_cast<etcdserverpb::LeaseRevokeResponse*>(response));
    default:
      return Status::Unimplemented("request type not supported yet");
  }
}

void EtcdServer::CompleteAppliedReads() {
  const uint64_t applied = applied_index_.load(std::memory_order_acquire);
  auto ready_end = std::partition(reads_waiting_apply_.begin(), reads_waiting_apply_.end(),
                                  [&](const auto& r) { return r.first > applied; });
  std::vector<ReadCallback> done;
  for (auto it = ready_end; it != reads_waiting_apply_.end(); ++it) {
    for (ReadCallback& cb : it->second) done.push_back(std::move(cb));
  }
  reads_waiting_apply_.erase(ready_end, reads_waiting_apply_.end());
  for (ReadCallback& cb : done) cb(Status::OK());
}

void EtcdServer::ExpireRequests(Clock::time_point now) {
  std::vector<ProposeCallback> expired;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (ProposeCallback& done : expired) done(Status(Code::kTimeout));
  for (auto it = stalled_proposals_.begin(); it != stalled_proposals_.end();) {
    if (it->deadline <= now) {
      it->done(Status(Code::kTimeout));
      it = stalled_proposals_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = reads_in_flight_.begin(); it != reads_in_flight_.end();) {
    if (it->second.deadline <= now) {
      for (ReadCallback& cb : it->second.callbacks) cb(Status(Code::kTimeout));
      it = reads_in_flight_.erase(it);
    } else {
      // A ReadIndex is dropped by Raft while there is no leader: ask again.
      node_->ReadIndex(EncodeReadContext(it->first));
      ++it;
    }
  }
}

void EtcdServer::MaybeRequestSnapshot() {
  const uint64_t applied = applied_index_.load(std::memory_order_acquire);
  if (applied <= snapshot_requested_index_ + options_.snapshot_count) return;
  // The store must be durable up to `applied` before the WAL below it may go.
  Status st = store_->Sync();
  if (!st.ok()) Fatal("failed to sync the backend", st);
  snapshot_requested_index_ = applied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_request_ = applied;
  }
  work_cv_.notify_one();
}

void EtcdServer::Snapshot(uint64_t index) {
  raftpb::ConfState conf_state;
  for (const auto& [at, cs] : conf_history_) {
    if (at <= index) conf_state = cs;
  }
  auto snapshot = raft_storage_->CreateSnapshot(index, &conf_state, std::string());
  if (!snapshot.ok()) {
    spdlog::warn("snapshot at {} skipped: {}", index, snapshot.status().ToString());
    return;
  }
  Status st = snapshotter_->SaveSnap(*snapshot);
  if (st.ok()) {
    st = wal_->SaveSnapshot(
        wal::SnapshotMarker{snapshot->metadata().index(), snapshot->metadata().term()});
  }
  if (!st.ok()) Fatal("failed to save snapshot", st);
  // Keep only the ConfState that the snapshot now stands for, and later ones.
  std::erase_if(conf_history_, [index](const auto& h) { return h.first < index; });
  conf_history_.insert(conf_history_.begin(), {index, conf_state});
  if (index > options_.snapshot_catchup_entries) {
    st = raft_storage_->Compact(index - options_.snapshot_catchup_entries);
    if (!st.ok() && st.code() != Code::kCompacted) {
      spdlog::warn("raft log compaction failed: {}", st.ToString());
    }
  }
  st = wal_->ReleaseTo(index);
  if (!st.ok()) spdlog::warn("WAL purge failed: {}", st.ToString());
  st = snapshotter_->Purge(kSnapshotsToKeep);
  if (!st.ok()) spdlog::warn("snapshot purge failed: {}", st.ToString());
  spdlog::info("saved snapshot at index {}", index);
}

void EtcdServer::FailAll(const Status& status) {
  // Only called once both threads have stopped.
  std::unordered_map<uint64_t, Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    waiters.swap(waiters_);
  }
  for (auto& [id, waiter] : waiters) waiter.done(status);
  for (PendingProposal& p : stalled_proposals_) p.done(status);
  stalled_proposals_.clear();
  for (auto& [ctx, batch] : reads_in_flight_) {
    for (ReadCallback& cb : batch.callbacks) cb(status);
  }
  reads_in_flight_.clear();
  for (auto& [index, callbacks] : reads_waiting_apply_) {
    for (ReadCallback& cb : callbacks) cb(status);
  }
  reads_waiting_apply_.clear();
  std::deque<PendingProposal> proposals;
  std::vector<ReadCallback> reads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    proposals.swap(proposals_);
    reads.swap(reads_);
  }
  for (PendingProposal& p : proposals) p.done(status);
  for (ReadCallback& cb : reads) cb(status);
}

void EtcdServer::Fatal(const char* what, const Status& status) {
  // A storage failure on the write path leaves no safe way forward: stopping
  // is the only way not to acknowledge what is not durable.
  spdlog::critical("{}: {}", what, status.ToString());
  std::abort();
}

}  // namespace etcdpp::server
