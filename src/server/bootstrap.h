// Bootstrap: turns a data dir and the flags into a member ready to run.
// Runs once, on the thread that calls EtcdServer::Start, before any server
// thread exists; everything it returns is then handed to its owner.
//
// Four cases, decided by what is on disk and --initial-cluster-state:
//   - no WAL, "new":      a founding member; the WAL is created and Raft is
//                          given the founding members as its first entries;
//   - no WAL, "existing": a member added with `member add`; it asks the
//                          members named in --initial-cluster for the cluster
//                          and waits for the leader to send the log;
//   - a WAL:              a restart; the newest snapshot the WAL knows is
//                          loaded and the log after it replayed into Raft.
// The data dir is locked for as long as the returned lock lives.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "raftpb/raft.pb.h"
#include "server/membership.h"
#include "server/server_options.h"

namespace etcdpp {
class Env;
class FileLock;
}  // namespace etcdpp
namespace etcdpp::mvcc {
class KvStore;
struct Options;
}  // namespace etcdpp::mvcc
namespace etcdpp::raft {
class RawNode;
class MemoryStorage;
}  // namespace etcdpp::raft
namespace etcdpp::snap {
class Snapshotter;
}
namespace etcdpp::wal {
class Wal;
}

namespace etcdpp::server {

// Where a member keeps its files under --data-dir.
struct DataDirLayout {
  explicit DataDirLayout(const std::string& data_dir);
  std::string member_dir;  // <data-dir>/member
  std::string wal_dir;     // .../member/wal
  std::string snap_dir;    // .../member/snap: snapshot files and the store
  std::string store_dir;   // .../member/snap/db: the live LMDB store
  // A received store while it is installed; after the exchange, the old
  // store on its way out. Never the live store.
  std::string incoming_store_dir;
};

struct BootstrappedMember {
  BootstrappedMember();
  ~BootstrappedMember();
  BootstrappedMember(BootstrappedMember&&) noexcept;

  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  std::unique_ptr<FileLock> data_dir_lock;
  std::shared_ptr<mvcc::KvStore> store;
  std::unique_ptr<snap::Snapshotter> snapshotter;
  // Raft's log in memory; `node` points at it, so it must outlive the node.
  std::unique_ptr<raft::MemoryStorage> raft_storage;
  std::unique_ptr<wal::Wal> wal;
  std::unique_ptr<raft::RawNode> node;
  // The applied membership to start from: the newest snapshot's (a fresh
  // member starts empty and rebuilds it from the log).
  Membership membership;
  // Members the transport connects to from the start; later ones arrive with
  // conf changes.
  std::vector<Member> initial_peers;
  // The snapshot replay starts from (index 0 when there is none).
  raftpb::SnapshotMetadata snapshot;
};

// `env` and `clock` are the options' (already defaulted).
Result<BootstrappedMember> BootstrapMember(const ServerOptions& options);

// How every store of the member is opened (at start, after a snapshot
// install, after a defragmentation): the quota from the flags, and commits
// that pwrite their pages and fdatasync them rather than msync a shared
// mapping (docs/performance.md: the msync's page walk, the write-protect of
// every flushed page and the fault on it at the next commit cost more CPU
// than the copies). The order LMDB needs, pages durable before the meta
// page that names them, is the same either way (docs/durability.md).
void SetStoreOptions(const ServerOptions& options, mvcc::Options* store_options);

}  // namespace etcdpp::server
