#include "server/etcd_server.h"

#include <google/protobuf/message.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
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

// The peer call a follower forwards MemberPromote with (body: the member id,
// 8 bytes big-endian).
constexpr char kPromoteMemberCall[] = "membership/promote";

// Where the applied membership lives in the store's meta table.
constexpr char kMembershipMetaKey[] = "membership/state";

// etcd's HealthInterval: a peer counts as connected for reconfiguration
// checks once its stream has been up this long.
constexpr std::chrono::seconds kHealthInterval{5};

// etcd's readyPercent: a learner may be promoted once its log reaches 90% of
// the leader's.
constexpr double kLearnerReadyPercent = 0.9;

std::vector<std::string> SortedUrls(std::vector<std::string> urls) {
  std::sort(urls.begin(), urls.end());
  return urls;
}

// MemberAdd and MemberUpdate refuse an empty or unparsable peer URL list
// before anything is proposed, as etcd does.
Status CheckPeerUrls(const std::vector<std::string>& urls) {
  if (urls.empty()) return Status(Code::kMemberBadURLs);
  for (const std::string& u : urls) {
    if (!HostPort(u).ok()) return Status(Code::kMemberBadURLs);
  }
  return Status::OK();
}

// A conf change for the member ctx names; ctx travels as its context so the
// applier can validate and record the member change.
raftpb::ConfChange MemberConfChange(raftpb::ConfChangeType type,
                                    const internalpb::ConfChangeContext& ctx) {
  raftpb::ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(ctx.member().id());
  cc.set_context(ctx.SerializeAsString());
  return cc;
}

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

  // A snapshot install that crashed before its exchange (or the old store
  // it exchanged out): never the live store, which is always at db/.
  std::error_code ec;
  std::filesystem::remove_all(snap_dir_ + "/db.incoming", ec);
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
  watch_options.scheduler = options_.watch_round_scheduler;
  watch_hub_ = std::make_unique<watch::WatchHub>(store_.get(), watch_options);
  snapshotter_ = std::make_unique<snap::Snapshotter>(Env::Default(), snap_dir_);
  raft_storage_ = std::make_unique<raft::MemoryStorage>();

  auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
  if (!members.ok()) return members.status();

  if (!wal::Wal::Exists(Env::Default(), wal_dir_)) {
    if (options_.initial_cluster_state == "existing") return JoinExisting();
    if (options_.initial_cluster_state != "new") {
      return Status::InvalidArgument("--initial-cluster-state must be new or existing");
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
  // The applied membership starts empty: the bootstrap entries add everyone.
  initial_peers_ = members;

  auto wal = wal::Wal::Create(Env::Default(), wal_dir_, EncodeWalMetadata(member_id_, cluster_id_),
                              wal::Options());
  if (!wal.ok()) return wal.status();
  wal_ = std::move(wal.value());

  raft::Config config = RaftConfig();
  auto node = raft::RawNode::Create(config);
  if (!node.ok()) return node.status();
  node_ = std::move(node.value());
  // Every founding member writes the same entries, so the context holds only
  // what all of them know alike: id and peer URLs (names come by publish).
  std::vector<raft::Peer> peers;
  for (const Member& m : members) {
    internalpb::ConfChangeContext ctx;
    ctx.mutable_member()->set_id(m.id);
    for (const std::string& u : m.peer_urls) ctx.mutable_member()->add_peer_urls(u);
    peers.push_back(raft::Peer{m.id, ctx.SerializeAsString()});
  }
  return node_->Bootstrap(peers);
}

Status EtcdServer::JoinExisting() {
  // Like etcd's getClusterFromRemotePeers: ask the other members listed in
  // --initial-cluster for the cluster; this member must already have been
  // added (member add), which gave it its id.
  auto initial = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
  if (!initial.ok()) return initial.status();
  const std::vector<std::string> own_urls = SortedUrls(options_.initial_advertise_peer_urls);
  std::vector<std::string> remote_urls;
  for (const Member& m : *initial) {
    if (SortedUrls(m.peer_urls) == own_urls) continue;
    remote_urls.insert(remote_urls.end(), m.peer_urls.begin(), m.peer_urls.end());
  }
  if (remote_urls.empty()) {
    return Status::InvalidArgument(
        "--initial-cluster-state=existing: --initial-cluster names no other member to join");
  }
  auto fetched = transport::FetchMembership(remote_urls, RequestTimeout());
  if (!fetched.ok()) {
    return Status::Unavailable("cannot fetch cluster info from peer urls: " +
                               fetched.status().message());
  }
  auto membership = Membership::Decode(fetched->membership);
  if (!membership.ok()) return membership.status();
  for (const Member& m : membership->List()) {
    if (SortedUrls(m.peer_urls) == own_urls) member_id_ = m.id;
  }
  if (member_id_ == 0) {
    return Status::InvalidArgument(
        "this member's peer URLs are not in the cluster's membership; add it with "
        "`member add` before starting it with --initial-cluster-state=existing");
  }
  cluster_id_ = fetched->cluster_id;
  initial_peers_ = membership->List();
  auto wal = wal::Wal::Create(Env::Default(), wal_dir_, EncodeWalMetadata(member_id_, cluster_id_),
                              wal::Options());
  if (!wal.ok()) return wal.status();
  wal_ = std::move(wal.value());
  // No bootstrap: the leader sends the log (or a snapshot) from the start,
  // membership included.
  auto node = raft::RawNode::Create(RaftConfig());
  if (!node.ok()) return node.status();
  node_ = std::move(node.value());
  spdlog::info("joining cluster {:x} as member {:x}", cluster_id_, member_id_);
  return Status::OK();
}

Status EtcdServer::LoadMembership(const raftpb::Snapshot& snapshot) {
  Membership loaded;
  if (snapshot.metadata().index() > 0 && !snapshot.data().empty()) {
    auto decoded = Membership::Decode(snapshot.data());
    if (!decoded.ok()) return decoded.status();
    loaded = std::move(decoded.value());
  } else if (snapshot.metadata().index() > 0) {
    // A snapshot from before membership was recorded in snapshots: the
    // store's copy, else the flags.
    auto view = store_->Read();
    if (!view.ok()) return view.status();
    auto meta = (*view)->GetMeta(kMembershipMetaKey);
    if (!meta.ok()) return meta.status();
    std::string encoded;
    if (meta->has_value()) {
      encoded = **meta;
    } else {
      auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
      if (!members.ok()) return members.status();
      internalpb::MembershipState state;
      for (const Member& m : *members) *state.add_members() = ToProto(m);
      encoded = state.SerializeAsString();
    }
    auto decoded = Membership::Decode(encoded);
    if (!decoded.ok()) return decoded.status();
    loaded = std::move(decoded.value());
  }
  // Otherwise the log from index 1 (bootstrap entries first) rebuilds it.
  initial_peers_ = loaded.List();
  if (initial_peers_.empty()) {
    auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
    if (members.ok()) initial_peers_ = *members;
  }
  std::lock_guard<std::mutex> lock(mu_);
  membership_ = std::move(loaded);
  NoteMembershipLocked();
  return Status::OK();
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
  ETCDPP_RETURN_IF_ERROR(LoadMembership(snapshot));
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
  transport::TransportOptions topts;
  topts.snapshot_dir = snap_dir_;
  transport::Handler* handler = this;
  transport_ = std::make_unique<transport::Transport>(member_id_, cluster_id_, handler, topts);
  // A one-member cluster listens for peers only once it gets a second member.
  if (initial_peers_.size() > 1 || options_.initial_cluster_state == "existing") {
    std::vector<std::string> listen = options_.listen_peer_urls;
    if (listen.empty()) listen = options_.initial_advertise_peer_urls;
    Status st = transport_->Start(listen);
    if (!st.ok()) return st;
    transport_listening_ = true;
  }
  for (const Member& m : initial_peers_) {
    if (m.id != member_id_) transport_->AddPeer(m.id, m.peer_urls);
  }
  return Status::OK();
}

void EtcdServer::EnsureTransportListening() {
  if (transport_listening_) return;
  transport_listening_ = true;
  std::vector<std::string> listen = options_.listen_peer_urls;
  if (listen.empty()) listen = options_.initial_advertise_peer_urls;
  Status st = transport_->Start(listen);
  if (!st.ok()) spdlog::error("cannot listen for peers: {}", st.ToString());
}

void EtcdServer::OnRemovedFromCluster() { MarkRemoved(); }

void EtcdServer::MarkRemoved() {
  if (removed_.exchange(true)) return;
  spdlog::warn("the member has been permanently removed from the cluster");
  if (options_.on_removed) options_.on_removed();
}

std::string EtcdServer::MembershipForPeers() {
  std::lock_guard<std::mutex> lock(mu_);
  return membership_.Encode();
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_snapshots_.push_back(IncomingSnapshot{std::move(m), std::move(data_file_path)});
      work_cv_.notify_one();
      return;
    }
  }
  (void)Env::Default()->RemoveFile(data_file_path);
}

void EtcdServer::SendMessages(std::vector<raftpb::Message>& messages) {
  if (messages.empty() || !transport_) return;
  std::vector<raftpb::Message> out;
  out.reserve(messages.size());
  for (raftpb::Message& m : messages) {
    if (m.type() == raftpb::MSG_SNAP) {
      SendSnapshot(std::move(m));
      continue;
    }
    out.push_back(std::move(m));
  }
  transport_->Send(std::move(out));
}

void EtcdServer::SendSnapshot(raftpb::Message m) {
  // The data is the whole store as applied now (at or past the snapshot's
  // index, like etcd's backend snapshot): the receiver skips the entries its
  // store already holds by consistent index. Copied off the raft loop: a
  // large store must not hold up heartbeats.
  const uint64_t to = m.to();
  const std::string path = snap_dir_ + "/" + std::to_string(m.snapshot().metadata().index()) + "-" +
                           std::to_string(to) + ".send.db";
  auto report = [this, to](bool failed) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_reports_.emplace_back(to, failed);
    work_cv_.notify_one();
  };
  spdlog::info("sending snapshot at index {} to member {:x}", m.snapshot().metadata().index(), to);
  snapshot_copiers_.emplace_back([this, m = std::move(m), path, report]() mutable {
    (void)Env::Default()->RemoveFile(path);
    Status st = store()->CopyToFile(path);
    if (!st.ok()) {
      spdlog::warn("cannot copy the store for a snapshot: {}", st.ToString());
      (void)Env::Default()->RemoveFile(path);
      report(true);
      return;
    }
    transport_->SendSnapshot(std::move(m), path, [path, report](bool ok) {
      (void)Env::Default()->RemoveFile(path);
      report(!ok);
    });
  });
}

void EtcdServer::Stop() {
  if (lessor_) lessor_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  for (std::thread& t : snapshot_copiers_) t.join();
  snapshot_copiers_.clear();
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
  PendingProposal p;
  p.request = std::move(request);
  p.response = response;
  p.done = std::move(done);
  EnqueueProposal(std::move(p));
}

void EtcdServer::EnqueueProposal(PendingProposal p) {
  p.deadline = Clock::now() + RequestTimeout();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      proposals_.push_back(std::move(p));
      work_cv_.notify_one();
      return;
    }
  }
  p.done(Status(Code::kStopped));
}

std::shared_ptr<mvcc::KvStore> EtcdServer::store() const {
  std::lock_guard<std::mutex> lock(store_mu_);
  return store_;
}

size_t EtcdServer::ConnectedVotersSince(const std::vector<uint64_t>& voters,
                                        Clock::time_point since) const {
  size_t n = 0;
  for (uint64_t id : voters) {
    if (id == member_id_) {
      ++n;
      continue;
    }
    std::optional<Clock::time_point> t = transport_->ActiveSince(id);
    if (t && *t < since) ++n;
  }
  return n;
}

Status EtcdServer::MayAddMember(const Member& member) const {
  if (!options_.strict_reconfig_check) return Status::OK();
  Membership membership;
  {
    std::lock_guard<std::mutex> lock(mu_);
    membership = membership_;
  }
  if (!member.is_learner && !membership.IsReadyToAddVoter()) {
    return Status(Code::kMemberNotEnoughStarted);
  }
  std::vector<uint64_t> voters = membership.VoterIds();
  if (ConnectedVotersSince(voters, Clock::now() - kHealthInterval) != voters.size()) {
    return Status(Code::kUnhealthy);
  }
  return Status::OK();
}

Status EtcdServer::MayRemoveMember(uint64_t id) const {
  if (!options_.strict_reconfig_check) return Status::OK();
  Membership membership;
  {
    std::lock_guard<std::mutex> lock(mu_);
    membership = membership_;
  }
  const Member* m = membership.Find(id);
  if (m != nullptr && m->is_learner) return Status::OK();
  if (!membership.IsReadyToRemoveVoter(id)) return Status(Code::kMemberNotEnoughStarted);
  // A member that is down is not part of the active quorum: safe to remove.
  if (id != member_id_ && !transport_->ActiveSince(id)) return Status::OK();
  std::vector<uint64_t> voters = membership.VoterIds();
  const size_t active = ConnectedVotersSince(voters, Clock::now() - kHealthInterval);
  if (active < 1 + 1 + (voters.size() - 1) / 2) return Status(Code::kUnhealthy);
  return Status::OK();
}

void EtcdServer::AddMember(Member* member, ProposeCallback done) {
  Status st = CheckPeerUrls(member->peer_urls);
  if (!st.ok()) return done(st);
  // etcd's NewMember for MemberAdd: no cluster name, the time in seconds.
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  member->id = ComputeMemberId(member->peer_urls, std::to_string(now_s.count()));
  st = MayAddMember(*member);
  if (!st.ok()) return done(st);
  internalpb::ConfChangeContext ctx;
  *ctx.mutable_member() = ToProto(*member);
  ProposeConfChange(MemberConfChange(member->is_learner ? raftpb::CONF_CHANGE_ADD_LEARNER_NODE
                                                        : raftpb::CONF_CHANGE_ADD_NODE,
                                     ctx),
                    std::move(done));
}

void EtcdServer::RemoveMember(uint64_t id, ProposeCallback done) {
  Status st = MayRemoveMember(id);
  if (!st.ok()) return done(st);
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->set_id(id);
  ProposeConfChange(MemberConfChange(raftpb::CONF_CHANGE_REMOVE_NODE, ctx), std::move(done));
}

void EtcdServer::UpdateMember(uint64_t id, std::vector<std::string> peer_urls,
                              ProposeCallback done) {
  Status st = CheckPeerUrls(peer_urls);
  if (!st.ok()) return done(st);
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->set_id(id);
  for (const std::string& u : peer_urls) ctx.mutable_member()->add_peer_urls(u);
  ProposeConfChange(MemberConfChange(raftpb::CONF_CHANGE_UPDATE_NODE, ctx), std::move(done));
}

void EtcdServer::ProposeConfChange(raftpb::ConfChange cc, ProposeCallback done) {
  PendingProposal p;
  p.done = std::move(done);
  p.conf_change = std::move(cc);
  EnqueueProposal(std::move(p));
}

void EtcdServer::PromoteMember(uint64_t id, ProposeCallback done) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The verdicts the leader would reach from the membership alone, so a
    // follower gives them too (etcd forwards the call to the leader).
    const Member* m = membership_.Find(id);
    if (m == nullptr) {
      refused = Status(Code::kMemberNotFound);
    } else if (!m->is_learner) {
      refused = Status(Code::kMemberNotLearner);
    } else if (options_.strict_reconfig_check && !membership_.IsReadyToPromote(id)) {
      refused = Status(Code::kMemberNotEnoughStarted);
    }
  }
  if (!refused.ok()) return done(refused);
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->set_id(id);
  ctx.set_is_promote(true);
  PendingProposal p;
  // Only the leader knows whether the learner caught up: a follower forwards
  // the call to it, as etcd does.
  p.done = [this, id, done = std::move(done)](const Status& st) {
    if (st.code() != Code::kNotLeader) return done(st);
    std::string body(8, '\0');
    PutBE64(body.data(), id);
    CallLeader(kPromoteMemberCall, std::move(body),
               [done](Result<std::string> r) { done(r.ok() ? Status::OK() : r.status()); });
  };
  p.conf_change = MemberConfChange(raftpb::CONF_CHANGE_ADD_NODE, ctx);
  p.check_learner_ready = true;
  EnqueueProposal(std::move(p));
}

void EtcdServer::MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout,
                            ProposeCallback done) {
  if (leader_id() != member_id_) return done(Status(Code::kNotLeader));
  Status refused(Code::kStopped);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Member* m = membership_.Find(transferee);
    if (m == nullptr || m->is_learner) {
      refused = Status(Code::kBadLeaderTransferee);
    } else if (!stopping_) {
      transfer_requests_.push_back(
          PendingTransfer{transferee, Clock::now() + timeout, std::move(done)});
      work_cv_.notify_one();
      return;
    }
  }
  done(refused);
}

Status EtcdServer::TransferLeadershipForStop(std::chrono::milliseconds timeout) {
  if (leader_id() != member_id_) return Status::OK();
  auto result = std::make_shared<std::promise<Status>>();
  std::future<Status> future = result->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::OK();
    // Transferee 0: the raft loop picks the most up-to-date voter.
    transfer_requests_.push_back(PendingTransfer{
        0, Clock::now() + timeout, [result](const Status& st) { result->set_value(st); }});
    work_cv_.notify_one();
  }
  if (future.wait_for(timeout + std::chrono::seconds(1)) != std::future_status::ready) {
    return Status(Code::kTimeoutLeaderTransfer);
  }
  return future.get();
}

void EtcdServer::ProgressTransfers(Clock::time_point now) {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    PendingTransfer& t = *it;
    if (!t.started) {
      t.started = true;
      if (t.transferee == 0) {
        // The voter with the longest log: it needs no catch-up first.
        raft::NodeStatus status = node_->GetStatus();
        uint64_t best = 0;
        uint64_t best_match = 0;
        for (const auto& [id, pr] : status.progress) {
          if (id == member_id_ || pr.is_learner) continue;
          if (best == 0 || pr.match > best_match) {
            best = id;
            best_match = pr.match;
          }
        }
        if (best == 0 || node_->lead() != member_id_) {
          t.done(Status::OK());
          it = transfers_.erase(it);
          continue;
        }
        t.transferee = best;
        spdlog::info("transferring leadership to {:x} before stopping", best);
      }
      node_->TransferLeader(t.transferee);
    }
    if (node_->lead() == t.transferee) {
      t.done(Status::OK());
      it = transfers_.erase(it);
    } else if (now >= t.deadline) {
      t.done(Status(Code::kTimeoutLeaderTransfer));
      it = transfers_.erase(it);
    } else {
      ++it;
    }
  }
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
  if (method == kPromoteMemberCall && body.size() == 8) {
    PromoteMember(GetBE64(body.data()), [done = std::move(done)](const Status& st) {
      done(st.ok() ? Result<std::string>(std::string()) : Result<std::string>(st));
    });
    return;
  }
  done(Status::Unimplemented("no handler for peer call " + method));
}

void EtcdServer::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(member_id_);
  header->set_raft_term(term());
}

void EtcdServer::NoteMembershipLocked() {
  const Member* self = membership_.Find(member_id_);
  is_learner_.store(self != nullptr && self->is_learner, std::memory_order_release);
}

std::vector<Member> EtcdServer::Members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return membership_.List();
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
  std::vector<IncomingSnapshot> snapshots;
  std::vector<std::pair<uint64_t, bool>> snapshot_reports;
  std::string snapshot_membership;
  for (;;) {
    uint64_t snapshot_at = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_until(lock, next_tick, [&] {
        return stopping_ || !proposals_.empty() || !reads_.empty() || !incoming_.empty() ||
               (!read_in_flight_ && !reads_next_batch_.empty()) || snapshot_request_ != 0 ||
               !incoming_snapshots_.empty() || !snapshot_reports_.empty() ||
               !transfer_requests_.empty();
      });
      if (stopping_) break;
      proposals.swap(proposals_);
      reads.swap(reads_);
      incoming.swap(incoming_);
      std::swap(snapshot_at, snapshot_request_);
      snapshot_membership.swap(snapshot_membership_);
      snapshots.swap(incoming_snapshots_);
      snapshot_reports.swap(snapshot_reports_);
      for (PendingTransfer& t : transfer_requests_) transfers_.push_back(std::move(t));
      transfer_requests_.clear();
    }
    for (const auto& [to, failed] : snapshot_reports) node_->ReportSnapshot(to, failed);
    snapshot_reports.clear();
    for (IncomingSnapshot& in : snapshots) StepSnapshot(std::move(in));
    snapshots.clear();
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
    for (ReadCallback& r : reads) reads_next_batch_.push_back(std::move(r));
    reads.clear();
    MaybeStartReadIndex(now);
    ProgressTransfers(now);
    DrainReady();
    MaybePublish();
    if (snapshot_at != 0) Snapshot(snapshot_at, snapshot_membership);
  }
}

void EtcdServer::MaybePublish() {
  if (publish_done_.load() || publish_in_flight_.load() || node_->lead() == 0 || removed()) {
    return;
  }
  publish_in_flight_.store(true);
  PendingProposal p;
  internalpb::MemberAttributesRequest* attrs = p.request.mutable_member_attributes();
  attrs->set_member_id(member_id_);
  attrs->set_name(options_.name);
  for (const std::string& u : options_.client_urls) attrs->add_client_urls(u);
  p.response = nullptr;
  p.deadline = Clock::now() + RequestTimeout();
  p.done = [this](const Status& st) {
    if (st.ok()) {
      publish_done_.store(true);
      spdlog::info("published member {:x} name={} to the cluster", member_id_, options_.name);
    } else if (st.code() != Code::kStopped) {
      spdlog::warn("publishing member attributes failed (will retry): {}", st.ToString());
    }
    publish_in_flight_.store(false);
  };
  ProposeOne(p);
}

void EtcdServer::StepSnapshot(IncomingSnapshot in) {
  const raftpb::SnapshotMetadata& meta = in.message.snapshot().metadata();
  // Raft ignores a snapshot it already covers or from a stale term: keep the
  // store (it may be ahead of it) and let Raft answer.
  if (meta.index() <= node_->committed() || in.message.term() < node_->term()) {
    (void)Env::Default()->RemoveFile(in.path);
    Status st = node_->Step(in.message);
    if (!st.ok()) spdlog::debug("stale snapshot from {:x}: {}", in.message.from(), st.ToString());
    return;
  }
  spdlog::info("installing snapshot at index {} (term {}) from {:x}", meta.index(), meta.term(),
               in.message.from());
  raftpb::Message message = in.message;
  // The store is swapped on the apply thread, after every entry before it.
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    install_done_ = false;
    ApplyBatch batch;
    batch.install = std::move(in);
    apply_queue_.push_back(std::move(batch));
  }
  apply_cv_.notify_one();
  {
    std::unique_lock<std::mutex> lock(apply_mu_);
    conf_cv_.wait(lock, [&] { return install_done_; });
  }
  // Raft persists the snapshot (HandleReady: snapshot file, WAL marker)
  // before its acknowledgement leaves.
  Status st = node_->Step(message);
  if (!st.ok()) spdlog::warn("snapshot from {:x} refused: {}", message.from(), st.ToString());
  std::vector<Member> members = Members();
  for (const Member& m : members) {
    if (m.id == member_id_) continue;
    EnsureTransportListening();
    transport_->AddPeer(m.id, m.peer_urls);
  }
}

void EtcdServer::DrainReady() {
  while (node_->HasReady()) {
    raft::Ready ready = node_->GetReady();
    HandleReady(ready);
    uint64_t last_conf_index = 0;
    for (const raftpb::Entry& e : ready.committed_entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) last_conf_index = e.index();
    }
    // Advance reads ready.committed_entries: hand them over only afterwards.
    node_->Advance(ready);
    QueueApply(ready);
    if (last_conf_index != 0) ApplyConfChangeResults(last_conf_index);
  }
}

void EtcdServer::ApplyConfChangeResults(uint64_t last_conf_index) {
  // Like etcd's raft loop: wait for the applier to decide on the membership
  // changes before Raft uses them (at most one is pending in the cluster, so
  // this wait is rare and short).
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> results;
  {
    std::unique_lock<std::mutex> lock(apply_mu_);
    conf_cv_.wait(lock, [&] { return conf_applied_index_ >= last_conf_index; });
    results.swap(conf_results_);
  }
  for (const auto& [index, cc] : results) {
    conf_history_.emplace_back(index, node_->ApplyConfChange(cc));
    if (cc.node_id() == 0) continue;
    internalpb::ConfChangeContext ctx;
    (void)ctx.ParseFromString(cc.context());
    std::vector<std::string> urls(ctx.member().peer_urls().begin(), ctx.member().peer_urls().end());
    switch (cc.type()) {
      case raftpb::CONF_CHANGE_ADD_NODE:
      case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
        if (cc.node_id() != member_id_ && !ctx.is_promote()) {
          EnsureTransportListening();
          transport_->AddPeer(cc.node_id(), urls);
        }
        break;
      case raftpb::CONF_CHANGE_REMOVE_NODE:
        if (cc.node_id() == member_id_) {
          MarkRemoved();
        } else {
          transport_->RemovePeer(cc.node_id());
        }
        break;
      case raftpb::CONF_CHANGE_UPDATE_NODE:
        if (cc.node_id() != member_id_) transport_->UpdatePeer(cc.node_id(), urls);
        break;
      default:
        break;
    }
  }
}

void EtcdServer::ProposeOne(PendingProposal& p) {
  if (p.conf_change) {
    if (p.check_learner_ready) {
      // etcd's isLearnerReady: only the leader knows the learner's progress.
      raft::NodeStatus status = node_->GetStatus();
      if (status.progress.empty()) return p.done(Status(Code::kNotLeader));
      auto learner = status.progress.find(p.conf_change->node_id());
      auto leader = status.progress.find(member_id_);
      if (learner != status.progress.end() && leader != status.progress.end() &&
          static_cast<double>(learner->second.match) <
              static_cast<double>(leader->second.match) * kLearnerReadyPercent) {
        return p.done(Status(Code::kLearnerNotReady));
      }
    }
    if (!p.conf_change->id()) p.conf_change->set_id(++next_request_id_);
    const uint64_t id = p.conf_change->id();
    {
      std::lock_guard<std::mutex> lock(waiters_mu_);
      waiters_.emplace(id, Waiter{nullptr, p.done, p.deadline});
    }
    Status st = node_->ProposeConfChange(*p.conf_change);
    if (st.ok()) return;
    {
      std::lock_guard<std::mutex> lock(waiters_mu_);
      waiters_.erase(id);
    }
    if (st.code() == Code::kNoLeader || st.code() == Code::kLeaderChanged) {
      stalled_proposals_.push_back(std::move(p));
      return;
    }
    return p.done(st);
  }
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
  // an acked append must survive a crash). A snapshot's store was installed
  // by StepSnapshot before Raft saw it.
  if (ready.snapshot.metadata().index() > 0) {
    conf_history_.emplace_back(ready.snapshot.metadata().index(),
                               ready.snapshot.metadata().conf_state());
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
  // Membership changes reach Raft in ApplyConfChangeResults, once the
  // applier has validated them; conf_history_ remembers the ConfState per
  // index so a snapshot at index i records the membership as of i.
}

void EtcdServer::MaybeStartReadIndex(Clock::time_point now) {
  if (read_in_flight_ || reads_next_batch_.empty()) return;
  read_in_flight_ =
      ReadBatch{++next_read_ctx_, std::move(reads_next_batch_), now + RequestTimeout()};
  reads_next_batch_.clear();
  node_->ReadIndex(EncodeReadContext(read_in_flight_->ctx));
}

void EtcdServer::QueueApply(raft::Ready& ready) {
  ApplyBatch batch;
  batch.entries = std::move(ready.committed_entries);
  for (const raft::ReadState& rs : ready.read_states) {
    // A ReadState for an earlier context answers a re-asked or expired batch.
    if (!read_in_flight_ || DecodeReadContext(rs.request_ctx) != read_in_flight_->ctx) continue;
    batch.reads.emplace_back(rs.index, std::move(read_in_flight_->callbacks));
    read_in_flight_.reset();
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
      if (b.install) {
        // Everything before the snapshot is applied first.
        ApplyEntries(entries);
        entries.clear();
        InstallSnapshot(*b.install);
        {
          std::lock_guard<std::mutex> lock(apply_mu_);
          install_done_ = true;
        }
        conf_cv_.notify_all();
      }
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
  std::vector<std::pair<uint64_t, raftpb::ConfChange>> conf_results;
  uint64_t last_index = 0;
  auto take_waiter = [this](uint64_t id) -> std::optional<Waiter> {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return std::nullopt;
    Waiter w = std::move(it->second);
    waiters_.erase(it);
    return w;
  };
  for (const raftpb::Entry& entry : entries) {
    const uint64_t previous_index = last_index;
    last_index = entry.index();
    // A leader's empty entry: every entry of earlier terms is applied, so
    // its lessor takes over the deadlines (etcd's Promote).
    if (entry.type() == raftpb::ENTRY_NORMAL && entry.data().empty()) {
      lessor_->Promote(entry.term());
    }
    // Entries at or below the consistent index are already in the store
    // (replayed from the WAL after a restart): applying twice would bump
    // revisions twice. Membership entries are still applied to the
    // in-memory membership (rebuilt from the snapshot's), not to the store.
    const bool in_store = entry.index() <= consistent_index;
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange effective;
      Status st = ApplyConfChangeEntry(in_store ? nullptr : txn.get(), entry, &effective);
      conf_results.emplace_back(entry.index(), effective);
      if (auto waiter = take_waiter(effective.id())) {
        completed.emplace_back(std::move(*waiter), std::move(st));
      }
      continue;
    }
    if (entry.data().empty() || entry.type() != raftpb::ENTRY_NORMAL) continue;
    internalpb::InternalRaftRequest request;
    if (!request.ParseFromString(entry.data())) {
      Fatal("undecodable raft entry", Status::Corruption("index " + std::to_string(entry.index())));
    }
    if (request.has_member_attributes()) {
      std::string encoded;
      {
        std::lock_guard<std::mutex> lock(mu_);
        membership_.SetAttributes(request.member_attributes());
        encoded = membership_.Encode();
      }
      if (!in_store) {
        Status st = txn->PutMeta(kMembershipMetaKey, encoded);
        if (!st.ok()) Fatal("failed to store the membership", st);
      }
      if (auto waiter = take_waiter(request.header().id())) {
        completed.emplace_back(std::move(*waiter), Status::OK());
      }
      continue;
    }
    if (in_store) continue;
    if (request.has_compaction() &&
        watch_hub_->NeedsSnapshotBeforeCompaction(request.compaction().revision())) {
      // The hub has not yet sent its synced watchers every write the
      // compaction may remove from the change log: commit the writes before
      // it and hand the hub a snapshot of them (docs/watch.md, Compaction).
      Status st;
      if (previous_index > consistent_index) st = txn->SetConsistentIndex(previous_index);
      if (st.ok()) st = txn->Commit();
      if (!st.ok()) Fatal("failed to commit applied entries to the backend", st);
      txn.reset();
      auto snapshot = store_->Read();
      if (snapshot.ok()) {
        watch_hub_->KeepSnapshot(std::move(snapshot.value()));
      } else {
        // Degrades to what etcd does to a watcher behind a compaction.
        spdlog::error("no snapshot for watchers before compaction: {}",
                      snapshot.status().ToString());
      }
      auto next = store_->Write();
      if (!next.ok()) Fatal("cannot open a backend write transaction", next.status());
      txn = std::move(next.value());
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
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    for (auto& r : conf_results) conf_results_.push_back(std::move(r));
    conf_applied_index_ = last_index;
  }
  conf_cv_.notify_all();
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

Status EtcdServer::ApplyConfChangeEntry(mvcc::WriteTxn* txn, const raftpb::Entry& entry,
                                        raftpb::ConfChange* effective) {
  if (!effective->ParseFromString(entry.data())) {
    Fatal("undecodable conf change", Status::Corruption("index " + std::to_string(entry.index())));
  }
  internalpb::ConfChangeContext ctx;
  if (!ctx.ParseFromString(effective->context())) ctx.Clear();
  Status st;
  std::string encoded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st = membership_.Validate(*effective, ctx);
    if (st.ok()) {
      membership_.Apply(*effective, ctx);
      NoteMembershipLocked();
      encoded = membership_.Encode();
    }
  }
  if (!st.ok()) {
    // Refused on every member alike (the membership is the same at this
    // index): Raft applies nothing (etcd sets NodeID to None).
    spdlog::warn("membership change at index {} refused: {}", entry.index(), st.message());
    effective->set_node_id(0);
    return st;
  }
  if (txn != nullptr) {
    Status put = txn->PutMeta(kMembershipMetaKey, encoded);
    if (!put.ok()) Fatal("failed to store the membership", put);
  }
  return Status::OK();
}

void EtcdServer::InstallSnapshot(IncomingSnapshot& in) {
  const std::string db_dir = snap_dir_ + "/db";
  const std::string incoming_dir = snap_dir_ + "/db.incoming";
  std::error_code ec;
  std::filesystem::remove_all(incoming_dir, ec);
  std::filesystem::create_directories(incoming_dir, ec);
  if (ec) Fatal("cannot create the snapshot directory", Status::IOError(ec.message()));
  std::filesystem::rename(in.path, incoming_dir + "/data.mdb", ec);
  if (ec) Fatal("cannot move the received snapshot", Status::IOError(ec.message()));
  Status st = Env::Default()->SyncDir(incoming_dir);
  if (!st.ok()) Fatal("cannot sync the snapshot directory", st);
  mvcc::Options store_options;
  store_options.quota_bytes = options_.quota_backend_bytes;
  auto opened = mvcc::KvStore::Open(incoming_dir, store_options);
  if (!opened.ok()) Fatal("cannot open the received snapshot", opened.status());
  std::shared_ptr<mvcc::KvStore> fresh = std::move(opened.value());
  auto membership = Membership::Decode(in.message.snapshot().data());
  if (!membership.ok()) Fatal("received snapshot carries no valid membership", membership.status());

  std::shared_ptr<mvcc::KvStore> old;
  {
    std::lock_guard<std::mutex> lock(store_mu_);
    old = std::move(store_);
    store_ = fresh;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    membership_ = std::move(membership.value());
    NoteMembershipLocked();
  }
  const uint64_t applied =
      std::max(fresh->ConsistentIndex(), in.message.snapshot().metadata().index());
  applied_index_.store(std::max(applied, applied_index_.load()), std::memory_order_release);
  snapshot_requested_index_ = applied;
  OnStoreReplaced();
  // Readers that copied the old pointer finish with it; nobody takes it anew.
  while (old.use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  old.reset();
  // Atomically make the new store the one at db/ (the open env follows its
  // files, not its path); what ends up in db.incoming/ is the old store.
  if (::renameat2(AT_FDCWD, incoming_dir.c_str(), AT_FDCWD, db_dir.c_str(), RENAME_EXCHANGE) != 0) {
    Fatal("cannot exchange the store directories", Status::IOError(std::strerror(errno)));
  }
  st = Env::Default()->SyncDir(snap_dir_);
  if (!st.ok()) Fatal("cannot sync the snapshot directory", st);
  std::filesystem::remove_all(incoming_dir, ec);
  spdlog::info("installed snapshot at index {}; store at consistent index {}",
               in.message.snapshot().metadata().index(), fresh->ConsistentIndex());
}

void EtcdServer::OnStoreReplaced() {
  // Hooks of modules that cache the store go here (watch hub, lessor).
  Status lease_status = lessor_->Recover();
  if (!lease_status.ok()) Fatal("cannot load the leases of the installed store", lease_status);
  watch_hub_->OnStoreReplaced(store_.get());
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
  if (read_in_flight_ && read_in_flight_->deadline <= now) {
    for (ReadCallback& cb : read_in_flight_->callbacks) cb(Status(Code::kTimeout));
    read_in_flight_.reset();
  } else if (read_in_flight_) {
    // A ReadIndex is dropped by Raft while there is no leader: ask again.
    node_->ReadIndex(EncodeReadContext(read_in_flight_->ctx));
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
    snapshot_membership_ = membership_.Encode();
  }
  work_cv_.notify_one();
}

void EtcdServer::Snapshot(uint64_t index, const std::string& membership) {
  raftpb::ConfState conf_state;
  for (const auto& [at, cs] : conf_history_) {
    if (at <= index) conf_state = cs;
  }
  // The data is the membership as of `index`: a restart (or a follower
  // installing it) replays the log after `index` on top of it.
  auto snapshot = raft_storage_->CreateSnapshot(index, &conf_state, membership);
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
  for (PendingTransfer& t : transfers_) t.done(status);
  transfers_.clear();
  if (read_in_flight_) {
    for (ReadCallback& cb : read_in_flight_->callbacks) cb(status);
    read_in_flight_.reset();
  }
  for (ReadCallback& cb : reads_next_batch_) cb(status);
  reads_next_batch_.clear();
  for (auto& [index, callbacks] : reads_waiting_apply_) {
    for (ReadCallback& cb : callbacks) cb(status);
  }
  reads_waiting_apply_.clear();
  std::deque<PendingProposal> proposals;
  std::vector<ReadCallback> reads;
  std::vector<PendingTransfer> transfers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    proposals.swap(proposals_);
    reads.swap(reads_);
    transfers.swap(transfer_requests_);
  }
  for (PendingTransfer& t : transfers) t.done(status);
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
