#include "server/etcd_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>

#include "auth/auth_store.h"
#include "base/clock.h"
#include "base/coding.h"
#include "base/env.h"
#include "lease/lessor.h"
#include "metrics/etcd_metrics.h"
#include "metrics/member_stats.h"
#include "mvcc/kv_store.h"
#include "server/alarms.h"
#include "server/apply_loop.h"
#include "server/auto_compactor.h"
#include "server/bootstrap.h"
#include "server/corruption_check.h"
#include "server/kv_applier.h"
#include "server/raft_node.h"
#include "server/store_slot.h"
#include "server/v2_expiry.h"
#include "server/waiters.h"
#include "transport/transport.h"
#include "v2store/persistence.h"
#include "v2store/store.h"
#include "watch/watch_hub.h"

namespace etcdpp::server {

// Keeps the watch hub in step with the store: the apply thread's only
// watch-specific code goes through here.
class WatchHubObserver final : public ApplyObserver {
 public:
  explicit WatchHubObserver(watch::WatchHub* hub) : hub_(hub) {}
  void OnCommitted(int64_t revision) override { hub_->Notify(revision); }
  bool WantsSnapshotBeforeCompaction(int64_t revision) override {
    return hub_->NeedsSnapshotBeforeCompaction(revision);
  }
  void KeepSnapshot(std::unique_ptr<mvcc::ReadTxn> snapshot) override {
    hub_->KeepSnapshot(std::move(snapshot));
  }
  void OnStoreReplaced(mvcc::KvStore* store) override { hub_->OnStoreReplaced(store); }
  void OnStoreRewritten(mvcc::KvStore* store) override { hub_->OnStoreRewritten(store); }
  bool WantsHeld() override { return hub_->TakesHeld(); }
  void OnHeld(const mvcc::ReadView& txn, int64_t from_rev) override {
    hub_->OfferHeld(txn, from_rev);
  }

 private:
  watch::WatchHub* const hub_;
};

namespace {

// A follower forwards MemberPromote to the leader with this peer call; the
// body is the member id, 8 bytes big-endian.
constexpr char kPromoteMemberCall[] = "membership/promote";

ServerOptions WithDefaults(ServerOptions options) {
  if (options.env == nullptr) options.env = Env::Default();
  if (options.clock == nullptr) options.clock = Clock::Real();
  if (options.peer_network == nullptr) {
    options.peer_network = std::make_shared<transport::GrpcPeerNetworkFactory>(
        options.peer_tls, options.peer_batch_stream);
  }
  return options;
}

}  // namespace

EtcdServer::EtcdServer(const ServerOptions& options) : options_(WithDefaults(options)) {}

EtcdServer::~EtcdServer() { Stop(); }

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(const ServerOptions& options) {
  std::unique_ptr<EtcdServer> server(new EtcdServer(options));
  ETCDPP_RETURN_IF_ERROR(server->Open());
  ETCDPP_RETURN_IF_ERROR(server->StartTransport());
  server->StartThreads();
  return server;
}

Status EtcdServer::Open() {
  auto bootstrapped = BootstrapMember(options_);
  if (!bootstrapped.ok()) return bootstrapped.status();
  BootstrappedMember& member = *bootstrapped;
  member_id_ = member.member_id;
  cluster_id_ = member.cluster_id;
  initial_peers_ = member.initial_peers;
  data_dir_lock_ = std::move(member.data_dir_lock);
  store_ = std::make_unique<StoreSlot>(member.store);
  member.store.reset();
  membership_ = std::make_unique<SharedMembership>(member_id_);
  membership_->Replace(std::move(member.membership));
  alarms_ = std::make_unique<AlarmSet>();
  {
    auto view = store_->raw()->Read();
    if (!view.ok()) return view.status();
    ETCDPP_RETURN_IF_ERROR(alarms_->Load(**view));
  }
  waiters_ = std::make_unique<WaiterRegistry>();

  lease::LessorOptions lease_options;
  lease_options.min_ttl_seconds =
      lease::MinLeaseTtlSeconds(options_.heartbeat_interval, options_.election_timeout);
  lease_options.promote_extension = options_.election_timeout;
  Clock* clock = options_.clock;
  lease_options.clock = clock;
  // TimeToLive lists a lease's keys from the store: it must see the keys
  // of every put already answered.
  auto lessor = lease::Lessor::Open([this] { return StoreWithAnsweredWrites(); }, lease_options);
  if (!lessor.ok()) return lessor.status();
  lessor_ = std::move(lessor.value());
  kv_ = std::make_unique<KvApplier>(lessor_.get());
  v2_ = std::make_unique<v2store::Store>([clock] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock->WallNow().time_since_epoch())
        .count();
  });
  ETCDPP_RETURN_IF_ERROR(v2store::LoadStore(*v2_, *store_->raw()));
  auth_ = std::make_unique<auth::AuthStore>(options_.auth_token_ttl, clock, options_.jwt_tokens);
  ETCDPP_RETURN_IF_ERROR(auth_->Load(*store_->raw()));
  watch::WatchHubOptions watch_options;
  watch_options.progress_notify_interval = options_.watch_progress_notify_interval;
  watch_options.scheduler = options_.watch_round_scheduler;
  watch_hub_ = std::make_unique<watch::WatchHub>(store_->raw(), watch_options);
  watch_observer_ = std::make_unique<WatchHubObserver>(watch_hub_.get());

  const DataDirLayout layout(options_.data_dir);
  transport::Handler* handler = this;
  transport_ = options_.peer_network->Create(member_id_, cluster_id_, handler, layout.snap_dir);

  ApplierContext apply_ctx{&options_,
                           options_.env,
                           layout,
                           store_.get(),
                           membership_.get(),
                           waiters_.get(),
                           kv_.get(),
                           lessor_.get(),
                           alarms_.get(),
                           auth_.get(),
                           watch_observer_.get(),
                           [this](uint64_t index, std::string membership) {
                             raft_node_->RequestSnapshot(index, std::move(membership));
                           },
                           v2_.get()};
  applier_ = std::make_unique<Applier>(std::move(apply_ctx), member.snapshot.index());
  RaftNodeContext raft_ctx{&options_,
                           layout,
                           applier_.get(),
                           waiters_.get(),
                           membership_.get(),
                           store_.get(),
                           lessor_.get(),
                           transport_.get(),
                           [this] { MarkRemoved(); },
                           [this] { return removed(); }};
  raft_node_ = std::make_unique<RaftNode>(std::move(raft_ctx), member);
  return Status::OK();
}

Status EtcdServer::StartTransport() {
  // A cluster of one listens for peers only once it gets a second member.
  if (initial_peers_.size() > 1 || options_.initial_cluster_state == "existing") {
    ETCDPP_RETURN_IF_ERROR(raft_node_->Listen());
  }
  for (const Member& m : initial_peers_) {
    if (m.id != member_id_) transport_->AddPeer(m.id, m.peer_urls);
  }
  return Status::OK();
}

void EtcdServer::StartThreads() {
  // An expired lease is revoked through Raft like a client's LeaseRevoke.
  // Nobody waits for the outcome: a revoke that gets lost is proposed again.
  lessor_->StartExpiryLoop([this](int64_t id) {
    internalpb::InternalRaftRequest request;
    // An expired lease is revoked with the root role (etcd does the same):
    // its keys go whoever may write them. Should auth change before the
    // entry applies, the revoke fails as stale and is retried later.
    request.mutable_header()->set_username(auth::kRootUser);
    request.mutable_header()->set_auth_revision(auth_->state()->revision);
    request.mutable_lease_revoke()->set_id(id);
    auto response = std::make_shared<etcdserverpb::LeaseRevokeResponse>();
    Propose(std::move(request), response.get(), [response](const Status&) {});
  });
  // v2 TTLs expire when the leader's SYNC request is applied.
  v2_expiry_ = std::make_unique<V2ExpiryTicker>(
      [this] { return leader_id() == member_id_ && v2_->HasTtlKeys(); },
      [this] {
        internalpb::InternalRaftRequest request;
        request.mutable_v2()->set_method("SYNC");
        request.mutable_v2()->set_time(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           options_.clock->WallNow().time_since_epoch())
                                           .count());
        auto response = std::make_shared<internalpb::V2Response>();
        Propose(std::move(request), response.get(), [response](const Status&) {});
      });
  applier_->Start();
  raft_node_->Start();
  if (options_.auto_compaction.enabled()) {
    auto_compactor_ = std::make_unique<AutoCompactor>(
        options_.auto_compaction, options_.clock,
        [this] { return store_->Get()->CurrentRevision(); },
        [this] { return leader_id() == member_id_; },
        [this](int64_t revision, std::function<void(const Status&)> done) {
          internalpb::InternalRaftRequest request;
          request.mutable_compaction()->set_revision(revision);
          auto response = std::make_shared<etcdserverpb::CompactionResponse>();
          Propose(std::move(request), response.get(),
                  [response, done = std::move(done)](const Status& st) { done(st); });
        });
    auto_compactor_->Start();
  }
  if (options_.corrupt_check_interval.count() > 0) {
    corruption_monitor_ = std::make_unique<CorruptionMonitor>(
        CorruptionHashSources(), options_.clock, options_.corrupt_check_interval,
        [this] { return leader_id() == member_id_; },
        [this](uint64_t member) { RaiseCorrupt(member); });
    corruption_monitor_->Start();
  }
  v2_expiry_->Start();
  rtt_probe_ = std::make_unique<transport::RttProbe>(
      transport_.get(),
      [this] {
        std::vector<uint64_t> peers;
        for (const Member& m : membership_->List()) {
          if (m.id != member_id_) peers.push_back(m.id);
        }
        return peers;
      },
      [](uint64_t peer, std::optional<double> seconds) {
        if (!seconds) {
          metrics::DefaultMemberStats().FollowerFailed(peer);
          return;
        }
        metrics::PeerRoundTripTimeSeconds(fmt::format("{:x}", peer)).Observe(*seconds);
        metrics::DefaultMemberStats().FollowerSucceeded(peer, *seconds);
      });
  rtt_probe_->Start();
  metrics::DefaultMemberStats().SetStartTime(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 options_.clock->WallNow().time_since_epoch())
                                                 .count());
}

void EtcdServer::Stop() {
  if (v2_expiry_) v2_expiry_->Stop();
  if (auto_compactor_) auto_compactor_->Stop();
  if (corruption_monitor_) corruption_monitor_->Stop();
  if (lessor_) lessor_->Stop();
  // The raft loop first: it stops feeding the applier.
  if (raft_node_) raft_node_->Stop();
  if (rtt_probe_) rtt_probe_->Stop();
  if (transport_) transport_->Stop();
  // What the applier still has is durable in the WAL; it applies it, then
  // stops.
  if (applier_) applier_->Stop();
  // Watch streams end with "server stopped" rather than hold up gRPC's
  // shutdown.
  if (watch_hub_) watch_hub_->Stop();
  const Status stopped(Code::kStopped);
  if (waiters_) {
    for (WaiterRegistry::Waiter& w : waiters_->TakeAll()) w.done(stopped);
  }
  if (raft_node_) raft_node_->FailAll(stopped);
  if (applier_) applier_->FailAll(stopped);
  if (store_) (void)store_->raw()->Sync();
}

void EtcdServer::Propose(internalpb::InternalRaftRequest request,
                         google::protobuf::Message* response, ProposeCallback done) {
  if (RefusedWhileCorrupt(request) && alarms_->Raised(etcdserverpb::CORRUPT)) {
    return done(Status(Code::kCorrupt));
  }
  if (const uint64_t cost = QuotaCost(request); cost > 0) {
    if (alarms_->Raised(etcdserverpb::NOSPACE)) return done(Status(Code::kNoSpace));
    const uint64_t held = applier_ != nullptr ? applier_->held_bytes() : 0;
    if (store_->Get()->DbSizeBytes() + held + cost > options_.quota_backend_bytes) {
      // Raised for the whole cluster before the client hears of it, as etcd
      // does: once the error arrives, `alarm list` shows NOSPACE.
      internalpb::InternalRaftRequest raise;
      etcdserverpb::AlarmRequest* alarm = raise.mutable_alarm();
      alarm->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
      alarm->set_memberid(member_id_);
      alarm->set_alarm(etcdserverpb::NOSPACE);
      auto raised = std::make_shared<etcdserverpb::AlarmResponse>();
      PendingProposal p;
      p.request = std::move(raise);
      p.response = raised.get();
      // The write is refused whatever became of the alarm; a lost alarm is
      // proposed again by the next write refused here.
      p.done = [raised, done = std::move(done)](const Status&) { done(Status(Code::kNoSpace)); };
      p.deadline = options_.clock->Now() + RequestTimeout(options_);
      raft_node_->Propose(std::move(p));
      return;
    }
  }
  PendingProposal p;
  p.request = std::move(request);
  p.response = response;
  p.done = std::move(done);
  p.deadline = options_.clock->Now() + RequestTimeout(options_);
  raft_node_->Propose(std::move(p));
}

void EtcdServer::Defragment(ProposeCallback done) { applier_->Defragment(std::move(done)); }

std::vector<etcdserverpb::AlarmMember> EtcdServer::Alarms() const { return alarms_->List(); }

void EtcdServer::ChangeAlarm(const etcdserverpb::AlarmRequest& request,
                             etcdserverpb::AlarmResponse* response, ProposeCallback done) {
  internalpb::InternalRaftRequest raft_request;
  *raft_request.mutable_alarm() = request;
  PendingProposal p;
  p.request = std::move(raft_request);
  p.response = response;
  p.done = std::move(done);
  p.deadline = options_.clock->Now() + RequestTimeout(options_);
  raft_node_->Propose(std::move(p));
}

void EtcdServer::WaitLinearizable(ReadCallback done) { raft_node_->Read(std::move(done)); }

Result<KvHash> EtcdServer::LocalHash(int64_t revision) const {
  // A peer asks for the hash at the leader's revision, which this member
  // may hold answered but uncommitted (--backend-batch-interval).
  std::shared_ptr<mvcc::KvStore> store = StoreWithAnsweredWrites();
  auto view = store->Read();
  if (!view.ok()) return view.status();
  auto hashed = (*view)->HashKV(revision);
  if (!hashed.ok()) return hashed.status();
  // HashKV reports the view's revision; a peer compares the one hashed.
  return KvHash{member_id_, revision > 0 ? revision : hashed->rev, hashed->compact_rev,
                hashed->hash};
}

HashSources EtcdServer::CorruptionHashSources() {
  HashSources sources;
  sources.local = [this](int64_t revision) { return LocalHash(revision); };
  sources.peers = [this] {
    // Right after a restart the applied membership may still be empty (the
    // log rebuilds it); the members known at start stand in meanwhile.
    std::set<uint64_t> peers;
    for (const Member& m : membership_->List()) peers.insert(m.id);
    if (peers.empty()) {
      for (const Member& m : initial_peers_) peers.insert(m.id);
    }
    peers.erase(member_id_);
    return std::vector<uint64_t>(peers.begin(), peers.end());
  };
  sources.ask_peer = [this](uint64_t peer, int64_t revision,
                            std::function<void(Result<KvHash>)> done) {
    transport_->Call(peer, kHashKvPeerCall, EncodeHashKvCall(revision), RequestTimeout(options_),
                     [done = std::move(done)](Result<std::string> reply) {
                       done(reply.ok() ? DecodeKvHash(*reply) : Result<KvHash>(reply.status()));
                     });
  };
  sources.peer_timeout = RequestTimeout(options_);
  return sources;
}

Status EtcdServer::CheckDataAgainstPeers() {
  return CheckStartupConsistency(member_id_, CorruptionHashSources());
}

void EtcdServer::RaiseCorrupt(uint64_t member) {
  for (const etcdserverpb::AlarmMember& a : alarms_->List(etcdserverpb::CORRUPT)) {
    if (a.memberid() == member) return;
  }
  internalpb::InternalRaftRequest request;
  etcdserverpb::AlarmRequest* alarm = request.mutable_alarm();
  alarm->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm->set_memberid(member);
  alarm->set_alarm(etcdserverpb::CORRUPT);
  auto response = std::make_shared<etcdserverpb::AlarmResponse>();
  PendingProposal p;
  p.request = std::move(request);
  p.response = response.get();
  p.done = [response](const Status&) {};
  p.deadline = options_.clock->Now() + RequestTimeout(options_);
  raft_node_->Propose(std::move(p));
}

bool EtcdServer::AnsweredWritesVisible() const { return applier_->AnsweredWritesVisible(); }

void EtcdServer::WaitAnsweredWrites(ReadCallback done) {
  applier_->WaitAnsweredWrites(std::move(done));
}

PeerHealth EtcdServer::Health() const {
  transport::PeerNetwork* transport = transport_.get();
  return PeerHealth{member_id_, [transport](uint64_t id) { return transport->ActiveSince(id); },
                    options_.clock->Now(), options_.peer_health_interval};
}

void EtcdServer::ProposeConfChange(raftpb::ConfChange cc, ProposeCallback done) {
  PendingProposal p;
  p.done = std::move(done);
  p.conf_change = std::move(cc);
  p.deadline = options_.clock->Now() + RequestTimeout(options_);
  raft_node_->Propose(std::move(p));
}

void EtcdServer::AddMember(Member* member, ProposeCallback done) {
  Status st = CheckPeerUrls(member->peer_urls);
  if (!st.ok()) return done(st);
  // The id of a member added at runtime mixes in the time in seconds, as
  // etcd's does, so re-adding the same URLs yields a new id.
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
      options_.clock->WallNow().time_since_epoch());
  member->id = ComputeMemberId(member->peer_urls, std::to_string(now_s.count()));
  if (options_.strict_reconfig_check) {
    st = MayAddMember(membership_->Copy(), *member, Health());
    if (!st.ok()) return done(st);
  }
  internalpb::ConfChangeContext ctx;
  *ctx.mutable_member() = ToProto(*member);
  ProposeConfChange(MemberConfChange(member->is_learner ? raftpb::CONF_CHANGE_ADD_LEARNER_NODE
                                                        : raftpb::CONF_CHANGE_ADD_NODE,
                                     ctx),
                    std::move(done));
}

void EtcdServer::RemoveMember(uint64_t id, ProposeCallback done) {
  if (options_.strict_reconfig_check) {
    Status st = MayRemoveMember(membership_->Copy(), id, Health());
    if (!st.ok()) return done(st);
  }
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

void EtcdServer::PromoteMember(uint64_t id, ProposeCallback done) {
  // Any member can refuse what the membership alone decides, so followers
  // and the leader give the same answers to those.
  Status refused = MayPromoteMember(membership_->Copy(), id, options_.strict_reconfig_check);
  if (!refused.ok()) return done(refused);
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->set_id(id);
  ctx.set_is_promote(true);
  PendingProposal p;
  // A follower cannot see the learner's progress: it passes the call on.
  p.done = [this, id, done = std::move(done)](const Status& st) {
    if (st.code() != Code::kNotLeader) return done(st);
    std::string body(8, '\0');
    PutBE64(body.data(), id);
    CallLeader(kPromoteMemberCall, std::move(body),
               [done](Result<std::string> r) { done(r.ok() ? Status::OK() : r.status()); });
  };
  p.conf_change = MemberConfChange(raftpb::CONF_CHANGE_ADD_NODE, ctx);
  p.check_learner_ready = true;
  p.deadline = options_.clock->Now() + RequestTimeout(options_);
  raft_node_->Propose(std::move(p));
}

void EtcdServer::MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout,
                            ProposeCallback done) {
  if (leader_id() != member_id_) return done(Status(Code::kNotLeader));
  bool voter = false;
  for (const Member& m : membership_->List()) {
    if (m.id == transferee && !m.is_learner) voter = true;
  }
  if (!voter) return done(Status(Code::kBadLeaderTransferee));
  raft_node_->TransferLeadership(
      TransferRequest{transferee, options_.clock->Now() + timeout, std::move(done)});
}

Status EtcdServer::TransferLeadershipForStop(std::chrono::milliseconds timeout) {
  if (leader_id() != member_id_) return Status::OK();
  auto result = std::make_shared<std::promise<Status>>();
  std::future<Status> future = result->get_future();
  // Transferee 0: the raft loop picks the most caught-up voter.
  raft_node_->TransferLeadership(
      TransferRequest{0, options_.clock->Now() + timeout, [result](const Status& st) {
                        // kStopped: the server stopped first, and there is nothing left to do.
                        result->set_value(st.code() == Code::kStopped ? Status::OK() : st);
                      }});
  if (future.wait_for(timeout + std::chrono::seconds(1)) != std::future_status::ready) {
    return Status(Code::kTimeoutLeaderTransfer);
  }
  return future.get();
}

void EtcdServer::CallLeader(const std::string& method, std::string body,
                            std::function<void(Result<std::string>)> done) {
  const uint64_t leader = leader_id();
  if (leader == 0) return done(Status(Code::kNoLeader));
  if (leader == member_id_) return done(Status(Code::kLeaderChanged));
  transport_->Call(leader, method, std::move(body), RequestTimeout(options_), std::move(done));
}

uint64_t EtcdServer::leader_id() const { return raft_node_->leader_id(); }
bool EtcdServer::is_learner() const { return membership_->self_is_learner(); }
uint64_t EtcdServer::term() const { return raft_node_->term(); }
uint64_t EtcdServer::applied_index() const { return applier_->applied_entry_index(); }
uint64_t EtcdServer::commit_index() const { return raft_node_->commit_index(); }
std::vector<Member> EtcdServer::Members() const { return membership_->List(); }
bool EtcdServer::WasRemovedMember(uint64_t id) const { return membership_->Copy().IsRemoved(id); }
std::shared_ptr<mvcc::KvStore> EtcdServer::store() const { return store_->Get(); }

std::shared_ptr<mvcc::KvStore> EtcdServer::StoreWithAnsweredWrites() const {
  if (applier_ != nullptr && !applier_->OnApplyThread() && !applier_->AnsweredWritesVisible()) {
    // The apply thread never waits for the caller, so this cannot deadlock.
    std::promise<Status> committed;
    applier_->WaitAnsweredWrites([&committed](const Status& st) { committed.set_value(st); });
    committed.get_future().wait();
  }
  return store_->Get();
}

int64_t EtcdServer::revision() const {
  const int64_t answered = applier_ != nullptr ? applier_->answered_revision() : 0;
  return std::max(store_->Get()->CurrentRevision(), answered);
}

void EtcdServer::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(member_id_);
  header->set_raft_term(term());
}

void EtcdServer::MarkRemoved() {
  if (removed_.exchange(true)) return;
  spdlog::warn("member {:x} is no longer part of the cluster", member_id_);
  if (options_.on_removed) options_.on_removed();
}

void EtcdServer::OnRemovedFromCluster() { MarkRemoved(); }

std::string EtcdServer::MembershipForPeers() { return membership_->Encode(); }

void EtcdServer::OnMessage(raftpb::Message m) { raft_node_->Step(std::move(m)); }

void EtcdServer::OnSnapshot(raftpb::Message m, std::string data_file_path) {
  raft_node_->StepSnapshot(IncomingSnapshot{std::move(m), std::move(data_file_path)});
}

void EtcdServer::OnCall(uint64_t /*from*/, const std::string& method, const std::string& body,
                        CallDone done) {
  if (method.starts_with("lease/")) {
    lessor_->ServePeerCall(method, body, std::move(done));
    return;
  }
  if (method == kHashKvPeerCall) {
    auto revision = DecodeHashKvCall(body);
    if (!revision.ok()) return done(revision.status());
    auto hashed = LocalHash(*revision);
    if (!hashed.ok()) return done(hashed.status());
    return done(EncodeKvHash(*hashed));
  }
  if (method == kPromoteMemberCall && body.size() == 8) {
    PromoteMember(GetBE64(body.data()), [done = std::move(done)](const Status& st) {
      done(st.ok() ? Result<std::string>(std::string()) : Result<std::string>(st));
    });
    return;
  }
  done(Status::Unimplemented("no handler for peer call " + method));
}

}  // namespace etcdpp::server
