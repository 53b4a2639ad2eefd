// Snapshotter: Raft snapshot files (metadata plus the small data the server
// puts in them), after etcd's snap package. The applied key-value state lives
// in the backend, not here.
//
// One file per snapshot, "<term:016x>-<index:016x>.snap" in the snapshot
// directory, so names sort oldest to newest. File format (little-endian):
//
//   offset  size  field
//   0       8     magic "etcdppSN"
//   8       4     masked CRC-32C (crc32c::Mask) of bytes [16, 24 + N)
//   12      4     format version, 1
//   16      8     N, the payload length
//   24      N     raftpb::Snapshot, protobuf encoded
//
// A file is written as "<name>.tmp", synced, renamed, and the directory
// synced (WriteFileAtomically): after a crash a snapshot file is complete or
// absent. A file that fails its checks is renamed "<name>.broken" (kept for
// inspection, never loaded again) and loading falls back to an older one.
//
// Thread-compatible: one owner at a time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "raftpb/raft.pb.h"
#include "wal/record.h"

namespace etcdpp::snap {

// Load's answer, kNotFound, when no snapshot file reads back intact: the
// member never saved one, or every file it had was set aside as broken.
Status NoSnapshot();

// "<term:016x>-<index:016x>.snap".
std::string SnapName(uint64_t term, uint64_t index);
// The marker a snapshot file name stands for; nullopt for other names.
std::optional<wal::SnapshotMarker> ParseSnapName(std::string_view name);

// Encodes / decodes the file format above. DecodeSnapshotFile fails with
// kCorruption on any mismatch and never reads outside `contents`.
std::string EncodeSnapshotFile(const raftpb::Snapshot& snapshot);
Result<raftpb::Snapshot> DecodeSnapshotFile(std::string_view contents);

class Snapshotter {
 public:
  Snapshotter(Env* env, std::string dir);

  // Durably writes `snapshot` (creating the directory if needed). An empty
  // snapshot (index 0) is not saved.
  Status SaveSnap(const raftpb::Snapshot& snapshot);

  // The newest snapshot that reads back intact; NoSnapshot() if none.
  Result<raftpb::Snapshot> Load();

  // The newest intact snapshot whose (index, term) is among `wal_markers`
  // (Wal::ValidSnapshotMarkers): a snapshot the WAL can be replayed from.
  Result<raftpb::Snapshot> LoadNewestAvailable(const std::vector<wal::SnapshotMarker>& wal_markers);

  // Deletes all but the newest `keep` snapshot files, and leftover .tmp files.
  Status Purge(size_t keep);

  // The snapshot file names, newest first.
  Result<std::vector<std::string>> SnapNames();

  const std::string& dir() const { return dir_; }

 private:
  // Loads the newest file accepted by `wanted`, renaming corrupt ones.
  template <typename Pred>
  Result<raftpb::Snapshot> LoadNewest(Pred wanted);
  Result<raftpb::Snapshot> Read(const std::string& name);

  Env* const env_;
  const std::string dir_;
};

}  // namespace etcdpp::snap
