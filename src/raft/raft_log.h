// RaftLog: the Raft log as the core sees it: the stable prefix in Storage
// followed by the Unstable tail, plus the commit and apply cursors.
//
// Invariants: applied <= committed <= LastIndex();
//             FirstIndex() - 1 <= applied (entries before the first index
//             are covered by a snapshot the state machine already has).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/status.h"
#include "raft/storage.h"
#include "raft/unstable.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

class RaftLog {
 public:
  // max_next_ents_size bounds the committed entries handed out per Ready.
  RaftLog(Storage* storage, uint64_t max_next_ents_size);

  // Appends ents after (index, log_term) if that entry matches our log (the
  // Raft log-matching check), truncating a conflicting suffix, and advances
  // the commit index to min(committed, last new index). Returns the last new
  // index, or nullopt on mismatch.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      std::vector<raftpb::Entry> ents);
  // Appends without checks beyond "never below committed"; returns LastIndex().
  uint64_t Append(std::vector<raftpb::Entry> ents);
  // Where ents first departs from our log: the index of its first entry
  // that we lack or hold with another term; 0 if we hold all of them.
  uint64_t FindConflict(const std::vector<raftpb::Entry>& ents) const;

  // Walks down from `index` past our entries with terms above `term` and
  // returns where it stops (also at a compacted entry, whose term is
  // unknown). No entry above the result can match an entry of term <= term
  // at the same index, so log backtracking can skip them in one round trip.
  uint64_t HighestPossibleMatch(uint64_t index, uint64_t term) const;

  std::vector<raftpb::Entry> UnstableEntries() const { return unstable_.entries(); }
  // Committed entries not yet applied (bounded by max_next_ents_size).
  std::vector<raftpb::Entry> NextEntries() const;
  bool HasNextEntries() const;
  bool HasPendingSnapshot() const { return unstable_.snapshot().has_value(); }
  Result<raftpb::Snapshot> Snapshot() const;

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Term of entry i; 0 (not an error) for i outside [FirstIndex()-1,
  // LastIndex()] unless the storage reports compaction.
  Result<uint64_t> Term(uint64_t i) const;
  // Entries from i to the end, at most max_size bytes (at least one entry).
  Result<std::vector<raftpb::Entry>> Entries(uint64_t i, uint64_t max_size) const;
  // Entries in [lo, hi), at most max_size bytes (at least one entry).
  Result<std::vector<raftpb::Entry>> Slice(uint64_t lo, uint64_t hi, uint64_t max_size) const;
  std::vector<raftpb::Entry> AllEntries() const;

  // Raft paper 5.4.1: is (lasti, term) at least as up to date as our log?
  bool IsUpToDate(uint64_t lasti, uint64_t term) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;
  // Commits max_index if its entry has the given term (a leader only commits
  // entries of its own term by counting replicas: paper 5.4.2).
  bool MaybeCommit(uint64_t max_index, uint64_t term);
  void CommitTo(uint64_t to_commit);
  void AppliedTo(uint64_t i);
  void StableTo(uint64_t i, uint64_t t) { unstable_.StableTo(i, t); }
  void StableSnapTo(uint64_t i) { unstable_.StableSnapTo(i); }
  void Restore(const raftpb::Snapshot& snap);

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  // Used when restoring from persisted state only.
  void set_committed(uint64_t c) { committed_ = c; }
  const Unstable& unstable() const { return unstable_; }
  Storage* storage() const { return storage_; }

 private:
  // Returns kCompacted if lo is compacted; aborts if [lo, hi) is past the end.
  Status CheckOutOfBounds(uint64_t lo, uint64_t hi) const;

  Storage* storage_;
  Unstable unstable_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t max_next_ents_size_;
};

}  // namespace etcdpp::raft
