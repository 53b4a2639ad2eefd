#include "server/bootstrap.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <utility>

#include "base/clock.h"
#include "base/coding.h"
#include "base/env.h"
#include "metrics/etcd_metrics.h"
#include "mvcc/kv_store.h"
#include "raft/raw_node.h"
#include "raft/storage.h"
#include "snap/snapshotter.h"
#include "transport/transport.h"
#include "wal/wal.h"

namespace etcdpp::server {
namespace {

// The member's WAL reports each fsync's duration to /metrics.
wal::Options WalOptions() {
  wal::Options options;
  metrics::Histogram& fsync = metrics::WalFsyncDurationSeconds();
  options.on_sync = [&fsync](std::chrono::nanoseconds took) {
    fsync.Observe(std::chrono::duration<double>(took).count());
  };
  return options;
}

// The WAL's metadata record names the member and cluster it belongs to, so
// a data dir copied to another member's flags is refused instead of merged.
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

std::vector<std::string> SortedUrls(std::vector<std::string> urls) {
  std::sort(urls.begin(), urls.end());
  return urls;
}

raft::Config MakeRaftConfig(const ServerOptions& options, uint64_t id,
                            raft::MemoryStorage* storage) {
  raft::Config config;
  config.id = id;
  // One tick per heartbeat interval: heartbeats go out every tick.
  config.heartbeat_tick = 1;
  config.election_tick =
      std::max<int>(2, static_cast<int>(options.election_timeout / options.heartbeat_interval));
  config.storage = storage;
  config.max_size_per_msg = 1024 * 1024;
  config.max_inflight_msgs = 512;
  config.max_uncommitted_entries_size = 1ull << 30;
  config.check_quorum = true;
  config.pre_vote = true;
  // Members must not time out in lockstep: the seed differs per member and
  // per start.
  config.seed = id ^ static_cast<uint64_t>(options.clock->WallNow().time_since_epoch().count());
  return config;
}

class Bootstrapper {
 public:
  Bootstrapper(const ServerOptions& options, BootstrappedMember* out)
      : options_(options), env_(options.env), layout_(options.data_dir), out_(*out) {}

  Status Run() {
    ETCDPP_RETURN_IF_ERROR(OpenDataDir());
    auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
    if (!members.ok()) return members.status();
    if (!wal::Wal::Exists(env_, layout_.wal_dir)) {
      if (options_.initial_cluster_state == "existing") return JoinExisting(*members);
      if (options_.initial_cluster_state != "new") {
        return Status::InvalidArgument("--initial-cluster-state must be new or existing");
      }
      return Found(*members);
    }
    return Restart();
  }

 private:
  Status OpenDataDir() {
    const bool fresh = !env_->FileExists(layout_.member_dir);
    ETCDPP_RETURN_IF_ERROR(env_->CreateDir(layout_.snap_dir));
    if (fresh) {
      // The new directories must survive a crash as well as the files in them.
      ETCDPP_RETURN_IF_ERROR(env_->SyncDir(layout_.member_dir));
      ETCDPP_RETURN_IF_ERROR(env_->SyncDir(options_.data_dir));
      ETCDPP_RETURN_IF_ERROR(env_->SyncDir(DirName(options_.data_dir)));
    }
    // A second process on the same data dir fails at once rather than wait.
    auto lock = env_->LockFile(layout_.member_dir + "/lock");
    if (!lock.ok()) {
      return Status(lock.status().code(),
                    "data dir " + options_.data_dir +
                        " is in use by another process: " + lock.status().message());
    }
    out_.data_dir_lock = std::move(lock.value());
    // Left over by an install that crashed half way; the live store is
    // always the one at store_dir.
    ETCDPP_RETURN_IF_ERROR(env_->RemoveTree(layout_.incoming_store_dir));
    mvcc::Options store_options;
    SetStoreOptions(options_, &store_options);
    auto store = mvcc::KvStore::Open(layout_.store_dir, store_options);
    if (!store.ok()) return store.status();
    out_.store = std::move(store.value());
    out_.snapshotter = std::make_unique<snap::Snapshotter>(env_, layout_.snap_dir);
    out_.raft_storage = std::make_unique<raft::MemoryStorage>();
    return Status::OK();
  }

  Status CreateWal() {
    auto wal = wal::Wal::Create(env_, layout_.wal_dir,
                                EncodeWalMetadata(out_.member_id, out_.cluster_id), WalOptions());
    if (!wal.ok()) return wal.status();
    out_.wal = std::move(wal.value());
    return Status::OK();
  }

  Status CreateNode(uint64_t applied) {
    raft::Config config = MakeRaftConfig(options_, out_.member_id, out_.raft_storage.get());
    config.applied = applied;
    auto node = raft::RawNode::Create(config);
    if (!node.ok()) return node.status();
    out_.node = std::move(node.value());
    return Status::OK();
  }

  // A founding member of a new cluster.
  Status Found(const std::vector<Member>& members) {
    auto self = std::find_if(members.begin(), members.end(),
                             [&](const Member& m) { return m.name == options_.name; });
    if (self == members.end()) {
      return Status::InvalidArgument("couldn't find local name \"" + options_.name +
                                     "\" in the initial cluster configuration");
    }
    out_.member_id = self->id;
    std::vector<uint64_t> ids;
    for (const Member& m : members) ids.push_back(m.id);
    out_.cluster_id = ComputeClusterId(ids);
    // The applied membership stays empty: the founding entries add everyone.
    out_.initial_peers = members;
    ETCDPP_RETURN_IF_ERROR(CreateWal());
    ETCDPP_RETURN_IF_ERROR(CreateNode(0));
    // All founders must write identical first entries, so their contexts
    // hold only what every founder knows: ids and peer URLs. Names arrive
    // later, when each member publishes itself.
    std::vector<raft::Peer> peers;
    for (const Member& m : members) {
      internalpb::ConfChangeContext ctx;
      ctx.mutable_member()->set_id(m.id);
      for (const std::string& u : m.peer_urls) ctx.mutable_member()->add_peer_urls(u);
      peers.push_back(raft::Peer{m.id, ctx.SerializeAsString()});
    }
    return out_.node->Bootstrap(peers);
  }

  // A member added to a running cluster: the cluster, not the flags, says
  // who is in it and what this member's id is.
  Status JoinExisting(const std::vector<Member>& flagged) {
    const std::vector<std::string> own_urls = SortedUrls(options_.initial_advertise_peer_urls);
    // Every other member is asked, all at once, and their answers are
    // merged: one that has fallen behind may still list this member's URLs
    // under an id the cluster has since removed (a member removed and added
    // back a moment ago), and a member that starts under a removed id is
    // refused by everyone and stops at once.
    std::vector<std::future<Result<transport::PeerMembership>>> asks;
    for (const Member& m : flagged) {
      if (SortedUrls(m.peer_urls) == own_urls) continue;
      asks.push_back(std::async(std::launch::async, [this, urls = m.peer_urls] {
        return options_.peer_network != nullptr
                   ? options_.peer_network->FetchMembership(urls, RequestTimeout(options_))
                   : transport::FetchMembership(urls, RequestTimeout(options_), options_.peer_tls);
      }));
    }
    if (asks.empty()) {
      return Status::InvalidArgument(
          "--initial-cluster-state=existing needs at least one other member in "
          "--initial-cluster to ask for the cluster");
    }
    std::vector<std::pair<transport::PeerMembership, Membership>> answers;
    std::string errors;
    for (auto& ask : asks) {
      Result<transport::PeerMembership> answer = ask.get();
      if (!answer.ok()) {
        errors += (errors.empty() ? "" : "; ") + answer.status().message();
        continue;
      }
      auto membership = Membership::Decode(answer->membership);
      if (!membership.ok()) return membership.status();
      if (!answers.empty() && answers.front().first.cluster_id != answer->cluster_id) {
        return Status::InvalidArgument(
            "the members in --initial-cluster belong to different clusters");
      }
      answers.emplace_back(std::move(answer.value()), std::move(membership.value()));
    }
    if (answers.empty())
      return Status::Unavailable("cannot fetch cluster info from peer urls: " + errors);
    auto removed_anywhere = [&answers](uint64_t id) {
      return std::any_of(answers.begin(), answers.end(),
                         [id](const auto& a) { return a.second.IsRemoved(id); });
    };
    const std::pair<transport::PeerMembership, Membership>* fetched = nullptr;
    for (const auto& answer : answers) {
      for (const Member& m : answer.second.List()) {
        if (SortedUrls(m.peer_urls) != own_urls || removed_anywhere(m.id)) continue;
        out_.member_id = m.id;
        fetched = &answer;
      }
      if (fetched != nullptr) break;
    }
    if (fetched == nullptr) {
      return Status::InvalidArgument(
          "the cluster has no member with this member's peer URLs; run `member add` for it "
          "before starting it with --initial-cluster-state=existing");
    }
    std::vector<Member> peers;
    for (const Member& m : fetched->second.List()) {
      if (!removed_anywhere(m.id)) peers.push_back(m);
    }
    out_.cluster_id = fetched->first.cluster_id;
    out_.initial_peers = std::move(peers);
    ETCDPP_RETURN_IF_ERROR(CreateWal());
    // Nothing to bootstrap: the leader sends the whole log, or a snapshot,
    // membership entries included.
    ETCDPP_RETURN_IF_ERROR(CreateNode(0));
    spdlog::info("member {:x} joins cluster {:x}", out_.member_id, out_.cluster_id);
    return Status::OK();
  }

  Status Restart() {
    // Replay starts at the newest snapshot that the WAL also has a marker for.
    auto markers = wal::Wal::ValidSnapshotMarkers(env_, layout_.wal_dir);
    if (!markers.ok()) return markers.status();
    raftpb::Snapshot snapshot;
    auto loaded = out_.snapshotter->LoadNewestAvailable(*markers);
    if (loaded.ok()) {
      snapshot = std::move(loaded.value());
    } else if (loaded.status().code() != Code::kNotFound) {
      return loaded.status();
    } else if (markers->size() > 1) {
      // Without any of the snapshots the WAL names, replay would have to
      // start at index 0 of a log whose head was purged.
      return Status::Corruption("snap: none of the snapshots the WAL in " + layout_.wal_dir +
                                " refers to is readable in " + layout_.snap_dir);
    }
    const raftpb::SnapshotMetadata& meta = snapshot.metadata();
    auto wal = wal::Wal::Open(env_, layout_.wal_dir, wal::SnapshotMarker{meta.index(), meta.term()},
                              WalOptions());
    if (!wal.ok()) return wal.status();
    out_.wal = std::move(wal.value());
    auto contents = out_.wal->ReadAll();
    if (!contents.ok()) return contents.status();
    if (!DecodeWalMetadata(contents->metadata, &out_.member_id, &out_.cluster_id)) {
      return Status::Corruption("wal: the metadata record in " + layout_.wal_dir +
                                " is not 16 bytes");
    }
    if (meta.index() > 0) ETCDPP_RETURN_IF_ERROR(out_.raft_storage->ApplySnapshot(snapshot));
    out_.raft_storage->SetHardState(contents->hard_state);
    ETCDPP_RETURN_IF_ERROR(out_.raft_storage->Append(std::move(contents->entries)));
    ETCDPP_RETURN_IF_ERROR(LoadMembership(snapshot));
    out_.snapshot = meta;
    ETCDPP_RETURN_IF_ERROR(CreateNode(meta.index()));
    spdlog::info("member {:x} of cluster {:x} restarts: commit index {}, store applied to {}",
                 out_.member_id, out_.cluster_id, contents->hard_state.commit(),
                 out_.store->ConsistentIndex());
    return Status::OK();
  }

  // The membership as of the snapshot. Snapshots carry it in their data;
  // older ones did not, and then the store's copy (or, failing that, the
  // flags) stands in. Without a snapshot the log rebuilds it from index 1.
  Status LoadMembership(const raftpb::Snapshot& snapshot) {
    Membership loaded;
    if (snapshot.metadata().index() > 0) {
      std::string encoded = snapshot.data();
      if (encoded.empty()) {
        auto stored = StoredMembership();
        if (!stored.ok()) return stored.status();
        encoded = std::move(stored.value());
      }
      auto decoded = Membership::Decode(encoded);
      if (!decoded.ok()) return decoded.status();
      loaded = std::move(decoded.value());
    }
    out_.initial_peers = loaded.List();
    if (out_.initial_peers.empty()) {
      auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
      if (members.ok()) out_.initial_peers = *members;
    }
    out_.membership = std::move(loaded);
    return Status::OK();
  }

  Result<std::string> StoredMembership() {
    auto view = out_.store->Read();
    if (!view.ok()) return view.status();
    auto meta = (*view)->GetMeta(kMembershipMetaKey);
    if (!meta.ok()) return meta.status();
    if (meta->has_value()) return **meta;
    auto members = InitialMembers(options_.initial_cluster, options_.initial_cluster_token);
    if (!members.ok()) return members.status();
    internalpb::MembershipState state;
    for (const Member& m : *members) *state.add_members() = ToProto(m);
    return state.SerializeAsString();
  }

  const ServerOptions& options_;
  Env* const env_;
  const DataDirLayout layout_;
  BootstrappedMember& out_;
};

}  // namespace

DataDirLayout::DataDirLayout(const std::string& data_dir)
    : member_dir(data_dir + "/member"),
      wal_dir(member_dir + "/wal"),
      snap_dir(member_dir + "/snap"),
      store_dir(snap_dir + "/db"),
      incoming_store_dir(snap_dir + "/db.incoming") {}

BootstrappedMember::BootstrappedMember() = default;
BootstrappedMember::~BootstrappedMember() = default;
BootstrappedMember::BootstrappedMember(BootstrappedMember&&) noexcept = default;

Result<BootstrappedMember> BootstrapMember(const ServerOptions& options) {
  BootstrappedMember member;
  Status st = Bootstrapper(options, &member).Run();
  if (!st.ok()) return st;
  return member;
}

void SetStoreOptions(const ServerOptions& options, mvcc::Options* store_options) {
  store_options->quota_bytes = options.quota_backend_bytes;
  store_options->map_bytes = options.backend_map_bytes;
  store_options->write_map = false;
  // The commit's own duration is etcd's backend commit metric (the apply
  // thread); the flush after it runs on the store's thread.
  metrics::Histogram& flush = metrics::BackendFlushDurationSeconds();
  store_options->on_flush = [&flush](std::chrono::nanoseconds took) {
    flush.Observe(std::chrono::duration<double>(took).count());
  };
}

}  // namespace etcdpp::server
