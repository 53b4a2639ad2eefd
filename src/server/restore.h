// Backups: what a snapshot file holds (`snapshot status`) and turning one
// into the store a new cluster starts from (`snapshot restore`).
//
// A snapshot file is what Maintenance.Snapshot streams: a compacted copy of
// a member's LMDB data file, then the SHA-256 of that copy (32 bytes).
// etcd's files end the same way, but hold a bbolt database, which etcdpp
// cannot read.
//
// A restored store keeps every key, revision, lease and the compaction
// state, and forgets what belonged to the old cluster: its membership, its
// alarms and the Raft index it had applied (a new cluster's log starts
// again at 1, so the consistent index goes back to 0). The member then
// starts as a founder of a new cluster (no WAL yet), whose founding entries
// write the new membership.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace etcdpp::server {

// Reads a snapshot file into `data`, without its checksum. With a checksum
// (the size is a whole number of 512-byte blocks plus 32) it must match,
// else kCorruption; without one, kInvalidArgument unless skip_hash_check.
Status ReadSnapshotFile(const std::string& path, bool skip_hash_check, std::string* data);

// Writes `data` as the LMDB data file of a store in `store_dir` (created)
// and makes it a store a new cluster can start from (see above).
Status WriteRestoredStore(const std::string& data, const std::string& store_dir);

struct SnapshotSummary {
  uint32_t hash = 0;  // mvcc::KvStore::HashBackend of the copy
  int64_t revision = 0;
  uint64_t total_keys = 0;  // records in every table
  uint64_t total_size = 0;  // bytes of the copy
};

// Opens the copy in a scratch directory under `scratch_dir` (removed after).
Result<SnapshotSummary> SummarizeSnapshot(const std::string& data, const std::string& scratch_dir);

}  // namespace etcdpp::server
