// Storage: the Raft core's read-only view of the stable log, and
// MemoryStorage, its in-memory implementation.
//
// The core never writes to Storage. The server persists what a Ready hands it
// (entries, hard state, snapshot) and then mirrors that into its Storage
// (e.g. MemoryStorage::Append / SetHardState / ApplySnapshot) before calling
// RawNode::Advance, so that Storage always covers every entry the core
// considers stable.
//
// Index space: Storage holds a "dummy" entry at FirstIndex()-1 whose term is
// the term of the last compacted (snapshotted) entry, so Term(FirstIndex()-1)
// is always answerable. Ranges are half-open: [lo, hi).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

// "No limit" for max_bytes / max_size_per_msg style arguments.
inline constexpr uint64_t kNoLimit = UINT64_MAX;

struct InitialStateResult {
  raftpb::HardState hard_state;
  raftpb::ConfState conf_state;
};

// Errors returned by Storage (and by RaftLog, which forwards them):
//   Code::kCompacted          index is below FirstIndex() (compacted away).
//   Code::kUnavailable        index is above LastIndex() (not yet available).
//   Code::kFailedPrecondition snapshot temporarily unavailable (being built);
//                             the leader retries later.
Status ErrCompacted();
Status ErrUnavailable();
Status ErrSnapshotTemporarilyUnavailable();
// Returned by MemoryStorage::ApplySnapshot / CreateSnapshot for a snapshot
// older than the one it already holds.
Status ErrSnapOutOfDate();
bool IsCompacted(const Status& s);
bool IsUnavailable(const Status& s);

// Read-only interface the Raft core uses, from the thread that drives the
// RawNode. The server appends to it between Ready rounds.
class Storage {
 public:
  virtual ~Storage() = default;

  // The persisted HardState and the ConfState of the latest snapshot (or the
  // bootstrap configuration).
  virtual Result<InitialStateResult> InitialState() const = 0;
  // The entries with index in [lo, hi). A prefix of them when their encoded
  // sizes add up to more than max_bytes, but never an empty one: an entry
  // larger than max_bytes must still be deliverable.
  virtual Result<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const = 0;
  // Term of entry i, for i in [FirstIndex()-1, LastIndex()].
  virtual Result<uint64_t> Term(uint64_t i) const = 0;
  virtual uint64_t LastIndex() const = 0;
  // Entries below this index were folded into Snapshot() and dropped.
  virtual uint64_t FirstIndex() const = 0;
  // The most recent snapshot. A leader sends it to a follower whose needed
  // entries were compacted.
  virtual Result<raftpb::Snapshot> Snapshot() const = 0;
};

// Thread-safe in-memory Storage. ents_[0] is the dummy entry (index/term of
// the snapshot). Invariant: ents_ is non-empty and contiguous by index.
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  Result<InitialStateResult> InitialState() const override;
  Result<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;
  Result<uint64_t> Term(uint64_t i) const override;
  uint64_t LastIndex() const override;
  uint64_t FirstIndex() const override;
  Result<raftpb::Snapshot> Snapshot() const override;

  void SetHardState(const raftpb::HardState& hs);
  // Makes snap the new starting point: every stored entry is dropped (the
  // follower's log restarts after snap's index).
  Status ApplySnapshot(const raftpb::Snapshot& snap);
  // Records a snapshot of the state at index i (i <= LastIndex()), with the
  // application data `data`. cs, if given, replaces the snapshot ConfState.
  // Does not compact: call Compact to drop the entries.
  Result<raftpb::Snapshot> CreateSnapshot(uint64_t i, const raftpb::ConfState* cs,
                                          std::string data);
  // Drops the entries below compact_index, keeping entry compact_index's
  // index and term as the new dummy entry. The caller compacts only what a
  // saved snapshot covers; compact_index must be <= LastIndex().
  Status Compact(uint64_t compact_index);
  // The lowest compaction index c <= last whose kept entries (c, last]
  // hold at most max_bytes of entry data (their `data` fields). last is
  // clamped to LastIndex(); FirstIndex() - 1 when every entry fits.
  uint64_t CompactIndexKeeping(uint64_t last, uint64_t max_bytes) const;
  // Appends entries, truncating any existing suffix that conflicts with
  // them. Entries must be contiguous; entries already compacted are ignored.
  // Moved in: pass an rvalue to spare the entries' data a copy.
  Status Append(std::vector<raftpb::Entry> entries);

 private:
  uint64_t FirstIndexLocked() const { return ents_.front().index() + 1; }
  uint64_t LastIndexLocked() const { return ents_.front().index() + ents_.size() - 1; }

  mutable std::mutex mu_;
  raftpb::HardState hard_state_;     // guarded by mu_
  raftpb::Snapshot snapshot_;        // guarded by mu_
  std::vector<raftpb::Entry> ents_;  // guarded by mu_
};

// Limits `ents` to a prefix of at most max_bytes total encoded size, always
// keeping at least the first entry.
void LimitSize(std::vector<raftpb::Entry>* ents, uint64_t max_bytes);

}  // namespace etcdpp::raft
