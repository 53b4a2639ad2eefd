// ServerOptions: how one member is configured. Plain data, copied into the
// server at Start; the Env and Clock it points at must outlive the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace etcdpp {
class Env;
class Clock;
}  // namespace etcdpp
namespace etcdpp::auth {
class JwtTokens;
}
namespace etcdpp::watch {
class RoundScheduler;
}

namespace etcdpp::server {

// --auto-compaction-mode and --auto-compaction-retention
// (server/auto_compactor.h).
struct AutoCompactionOptions {
  enum class Mode { kPeriodic, kRevision };
  Mode mode = Mode::kPeriodic;
  // Periodic: how much history to keep; zero turns auto-compaction off.
  std::chrono::milliseconds period{0};
  // Revision: how many revisions to keep; zero turns auto-compaction off.
  int64_t revisions = 0;

  bool enabled() const { return mode == Mode::kPeriodic ? period.count() > 0 : revisions > 0; }
};

struct ServerOptions {
  std::string name = "default";
  std::string data_dir = "default.etcd";
  std::vector<std::string> client_urls;  // advertised
  std::vector<std::string> initial_advertise_peer_urls;
  // Peers' Raft traffic arrives here. A cluster of one starts listening only
  // when a second member is added.
  std::vector<std::string> listen_peer_urls;
  std::string initial_cluster;                // name=url,...
  std::string initial_cluster_state = "new";  // new | existing
  std::string initial_cluster_token = "etcd-cluster";
  uint64_t snapshot_count = 100000;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t max_txn_ops = 128;
  // --quota-backend-bytes: past it, writes are refused and NOSPACE raised.
  uint64_t quota_backend_bytes = 2ull << 30;
  // No flag: the store's map size, if not 0, instead of one derived from
  // the quota (mvcc::Options::map_bytes), for tests that fill the map.
  uint64_t backend_map_bytes = 0;
  AutoCompactionOptions auto_compaction;
  // --experimental-initial-corrupt-check: the member's hash is compared with
  // its peers' before it serves clients (EtcdServer::CheckDataAgainstPeers).
  bool initial_corrupt_check = false;
  // --experimental-corrupt-check-time: how often the leader compares every
  // member's hash with its own; zero turns the check off.
  std::chrono::milliseconds corrupt_check_interval{0};
  std::chrono::milliseconds heartbeat_interval{100};
  std::chrono::milliseconds election_timeout{1000};
  // How far behind a snapshot the in-memory Raft log reaches, so a follower
  // that lags by less than this catches up from the log (etcd's flag of the
  // same meaning is SnapshotCatchUpEntries).
  uint64_t snapshot_catchup_entries = 5000;
  // Byte bounds on the in-memory Raft log, which holds every entry since
  // the last snapshot plus the catch-up entries behind it: a snapshot is
  // also due once this much entry data has been applied since the last
  // one, and the catch-up entries kept are also at most this many bytes.
  // etcd bounds the log by counts only, so large entries (txns of many
  // puts) can hold gigabytes; a snapshot costs etcdpp a store sync and a
  // small file, the store being its data. A follower further behind than
  // the catch-up entries gets the store instead (docs/architecture.md).
  // Under a write load the entries since the last snapshot are most of the
  // member's heap, so that bound is the smaller.
  uint64_t snapshot_bytes = uint64_t{16} << 20;
  uint64_t snapshot_catchup_bytes = uint64_t{64} << 20;
  // --experimental-watch-progress-notify-interval.
  std::chrono::milliseconds watch_progress_notify_interval{std::chrono::minutes(10)};
  // Tests only: steers the watch hub's rounds (watch::RoundScheduler). Not
  // owned; must outlive the server.
  watch::RoundScheduler* watch_round_scheduler = nullptr;
  // Runs once, on the raft loop or a transport thread, when this member
  // learns it is no longer in the cluster (it applied its own removal, or a
  // peer rejected it as removed). Must return quickly; the owner is expected
  // to call Stop() from a thread of its own.
  std::function<void()> on_removed;
  // --strict-reconfig-check (default on): a membership change is refused when
  // it would leave the cluster without enough started or connected voters.
  bool strict_reconfig_check = true;
  // --experimental-answer-before-commit (default on; false restores the
  // answer after the commit, docs/performance.md): answer proposers before
  // the backend commit that shows their writes to readers, so a put waits
  // for the WAL's flush only (docs/durability.md, "Answering before the
  // backend commit"). Whatever reads the store on a client's behalf waits
  // for that commit first (ReadBarrier::WaitAnsweredWrites) or names
  // ClusterView::revision() in its header.
  bool answer_before_commit = true;
  // --backend-batch-interval (etcd's name; --experimental-backend-commit-delay
  // is the same option). With answer_before_commit, a batch may stay in the
  // open LMDB write transaction for up to this long, so later batches share
  // its commit; it is committed at once when anyone needs to see it (a read,
  // a new watcher, a conf change, a snapshot, a stop; live watchers get a
  // copy of its events instead). 0 commits every batch.
  // docs/performance.md, "The backend batch interval on by default".
  std::chrono::milliseconds backend_commit_delay{100};
  // A DeleteRange request that deletes more keys than this commits its
  // tombstones in parts of about this many keys, so LMDB never holds copies
  // of all the pages a huge delete dirties at once (mvcc::DeleteParts;
  // docs/mvcc.md, "A delete in parts"). Readers see the delete whole or not
  // at all. 0: every delete in one commit.
  size_t delete_keys_per_part = 8192;
  // --backend-batch-limit: at most this many entries wait in the open
  // transaction (etcd's default, 10000), and at most backend_batch_bytes of
  // their data, which bounds the dirty pages LMDB keeps in memory for it.
  size_t backend_batch_limit = 10000;
  size_t backend_batch_bytes = 64 << 20;
  // The strict check counts a peer as connected once its stream has stayed
  // up this long (etcd uses five seconds).
  std::chrono::milliseconds peer_health_interval{std::chrono::seconds(5)};
  // Threads that copy the store for followers that need a snapshot. A
  // snapshot send waits in a queue when all of them are busy.
  int snapshot_send_threads = 2;
  // --auth-token simple: a token dies after this long without use
  // (--auth-token-ttl, seconds).
  std::chrono::seconds auth_token_ttl{300};
  // --auth-token jwt,...: the keys JWTs are signed and verified with; null
  // for simple tokens.
  std::shared_ptr<const auth::JwtTokens> jwt_tokens;
  // --bcrypt-cost: work factor of stored password hashes.
  int bcrypt_cost = 10;
  // Peer TLS (--peer-cert-file and the rest): the peer server and every
  // channel to a peer.
  transport::PeerTlsOptions peer_tls;
  // Between plaintext peers, Raft messages on the batch stream
  // (--experimental-peer-batch-stream; docs/transport.md); false: gRPC's
  // stream only.
  bool peer_batch_stream = true;
  // How this member reaches its peers: null means the Transport with
  // peer_tls and peer_batch_stream (transport::GrpcPeerNetworkFactory).
  // Tests put every member of a cluster on one in-process network instead
  // (tests/integration/mem_network.h).
  std::shared_ptr<transport::PeerNetworkFactory> peer_network;

  // Every file operation of the server (not LMDB's own) goes through `env`,
  // every deadline and tick through `clock`. Null means Env::Default() and
  // Clock::Real(). Not owned.
  Env* env = nullptr;
  Clock* clock = nullptr;
};

// How long a request may wait for Raft before it fails with kTimeout: five
// seconds plus two election timeouts, the budget etcd gives its requests.
inline std::chrono::milliseconds RequestTimeout(const ServerOptions& options) {
  return std::chrono::milliseconds(5000) + 2 * options.election_timeout;
}

}  // namespace etcdpp::server
