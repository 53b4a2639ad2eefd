// Unstable: the tail of the Raft log not yet persisted by the server, and an
// incoming snapshot not yet persisted.
//
// Invariants: entries_ holds the consecutive indexes offset_, offset_+1, ...
// (offset_ is where the persisted log would continue, or where an overwrite
// starts). A snapshot, when present, ends right before offset_ and comes
// before every entry in entries_.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

class Unstable {
 public:
  // First index of the log, known only if an unstable snapshot exists.
  std::optional<uint64_t> MaybeFirstIndex() const;
  // Last index, known if there are unstable entries or a snapshot.
  std::optional<uint64_t> MaybeLastIndex() const;
  // Term of entry i if the unstable part knows it.
  std::optional<uint64_t> MaybeTerm(uint64_t i) const;

  // Entries up to (i, t) were persisted: drop them, unless a later append
  // replaced entry i with one of another term.
  void StableTo(uint64_t i, uint64_t t);
  // The snapshot at index i was persisted.
  void StableSnapTo(uint64_t i);
  // Replaces everything with the snapshot.
  void Restore(const raftpb::Snapshot& snap);
  // Appends ents, truncating any conflicting unstable suffix.
  void TruncateAndAppend(std::vector<raftpb::Entry> ents);
  // Entries in [lo, hi); both bounds must lie within the unstable range.
  std::vector<raftpb::Entry> Slice(uint64_t lo, uint64_t hi) const;

  const std::vector<raftpb::Entry>& entries() const { return entries_; }
  const std::optional<raftpb::Snapshot>& snapshot() const { return snapshot_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  // Aborts unless lo <= hi and [lo, hi) lies inside [offset_, offset_ + size).
  void CheckWithinTail(uint64_t lo, uint64_t hi) const;

  std::optional<raftpb::Snapshot> snapshot_;
  std::vector<raftpb::Entry> entries_;
  uint64_t offset_ = 0;
};

}  // namespace etcdpp::raft
