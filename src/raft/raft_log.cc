#include "raft/raft_log.h"

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace etcdpp::raft {

RaftLog::RaftLog(Storage* storage, uint64_t max_next_ents_size)
    : storage_(storage), max_next_ents_size_(max_next_ents_size) {
  const uint64_t first = storage_->FirstIndex();
  const uint64_t last = storage_->LastIndex();
  unstable_.set_offset(last + 1);
  // Only committed entries are ever compacted, and only after the state
  // machine holds them (in the snapshot), so both cursors start there.
  committed_ = first - 1;
  applied_ = first - 1;
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             std::vector<raftpb::Entry> ents) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + ents.size();
  const uint64_t ci = FindConflict(ents);
  if (ci != 0) {
    if (ci <= committed_) {
      spdlog::critical(
          "raft: the leader's entry {} differs from ours although we committed up to {}; a "
          "committed entry can never change",
          ci, committed_);
      std::abort();
    }
    const uint64_t offset = index + 1;
    ents.erase(ents.begin(), ents.begin() + static_cast<ptrdiff_t>(ci - offset));
    Append(std::move(ents));
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(std::vector<raftpb::Entry> ents) {
  if (ents.empty()) return LastIndex();
  const uint64_t after = ents.front().index() - 1;
  if (after < committed_) {
    spdlog::critical("raft: an append after index {} would replace committed entries (commit {})",
                     after, committed_);
    std::abort();
  }
  unstable_.TruncateAndAppend(std::move(ents));
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<raftpb::Entry>& ents) const {
  for (const auto& e : ents) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

uint64_t RaftLog::HighestPossibleMatch(uint64_t index, uint64_t term) const {
  if (index > LastIndex()) return index;
  while (true) {
    auto t = Term(index);
    if (!t.ok() || *t <= term) break;
    --index;
  }
  return index;
}

std::vector<raftpb::Entry> RaftLog::NextEntries() const {
  const uint64_t off = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 > off) {
    auto ents = Slice(off, committed_ + 1, max_next_ents_size_);
    if (!ents.ok()) {
      spdlog::critical("raft: cannot read the committed entries to apply: {}",
                       ents.status().ToString());
      std::abort();
    }
    return std::move(ents).value();
  }
  return {};
}

bool RaftLog::HasNextEntries() const {
  const uint64_t off = std::max(applied_ + 1, FirstIndex());
  return committed_ + 1 > off;
}

Result<raftpb::Snapshot> RaftLog::Snapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->Snapshot();
}

uint64_t RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

uint64_t RaftLog::LastTerm() const {
  auto t = Term(LastIndex());
  if (!t.ok()) {
    spdlog::critical("raft: the term of the last log entry is unreadable: {}",
                     t.status().ToString());
    std::abort();
  }
  return *t;
}

Result<uint64_t> RaftLog::Term(uint64_t i) const {
  // Terms are known from the snapshot position (FirstIndex() - 1, kept as
  // the storage's dummy entry) to the end of the log; outside that, 0.
  const uint64_t dummy = FirstIndex() - 1;
  if (i < dummy || i > LastIndex()) return uint64_t{0};
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  auto t = storage_->Term(i);
  if (t.ok() || IsCompacted(t.status()) || IsUnavailable(t.status())) return t;
  spdlog::critical("raft: storage cannot give the term of entry {}: {}", i, t.status().ToString());
  std::abort();
}

Result<std::vector<raftpb::Entry>> RaftLog::Entries(uint64_t i, uint64_t max_size) const {
  if (i > LastIndex()) return std::vector<raftpb::Entry>{};
  return Slice(i, LastIndex() + 1, max_size);
}

std::vector<raftpb::Entry> RaftLog::AllEntries() const {
  auto ents = Entries(FirstIndex(), kNoLimit);
  if (ents.ok()) return std::move(ents).value();
  // The server compacted between FirstIndex() and the read: read again
  // from the new first index.
  if (IsCompacted(ents.status())) return AllEntries();
  spdlog::critical("raft: cannot read the whole log: {}", ents.status().ToString());
  std::abort();
}

bool RaftLog::IsUpToDate(uint64_t lasti, uint64_t term) const {
  const uint64_t last_term = LastTerm();
  return term > last_term || (term == last_term && lasti >= LastIndex());
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  auto t = Term(i);
  return t.ok() && *t == term;
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  if (max_index > committed_) {
    auto t = Term(max_index);
    if (t.ok() && *t == term) {
      CommitTo(max_index);
      return true;
    }
  }
  return false;
}

void RaftLog::CommitTo(uint64_t to_commit) {
  // The commit index only grows: a smaller to_commit (from a heartbeat that
  // was delayed, say) is old news, not a rollback.
  if (committed_ < to_commit) {
    if (LastIndex() < to_commit) {
      // The leader only sends a commit index we acknowledged holding, so
      // our storage lost entries it had reported durable.
      spdlog::critical("raft: told to commit up to {} but the log ends at {}", to_commit,
                       LastIndex());
      std::abort();
    }
    committed_ = to_commit;
  }
}

void RaftLog::AppliedTo(uint64_t i) {
  if (i == 0) return;
  if (committed_ < i || i < applied_) {
    spdlog::critical(
        "raft: applied index {} must lie between the previous applied index {} and the commit "
        "index {}",
        i, applied_, committed_);
    std::abort();
  }
  applied_ = i;
}

void RaftLog::Restore(const raftpb::Snapshot& snap) {
  committed_ = snap.metadata().index();
  unstable_.Restore(snap);
}

Result<std::vector<raftpb::Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_size) const {
  ETCDPP_RETURN_IF_ERROR(CheckOutOfBounds(lo, hi));
  std::vector<raftpb::Entry> ents;
  if (lo == hi) return ents;
  const uint64_t uoff = unstable_.offset();
  if (lo < uoff) {
    const uint64_t stable_hi = std::min(hi, uoff);
    auto stored = storage_->Entries(lo, stable_hi, max_size);
    if (!stored.ok()) {
      if (IsCompacted(stored.status())) return stored.status();
      spdlog::critical("raft: storage cannot return entries [{}, {}): {}", lo, stable_hi,
                       stored.status().ToString());
      std::abort();
    }
    ents = std::move(stored).value();
    // Storage stopped early at max_size: the unstable tail would only be
    // cut off again.
    if (ents.size() < stable_hi - lo) return ents;
  }
  if (hi > uoff) {
    auto tail = unstable_.Slice(std::max(lo, uoff), hi);
    ents.insert(ents.end(), std::make_move_iterator(tail.begin()),
                std::make_move_iterator(tail.end()));
  }
  LimitSize(&ents, max_size);
  return ents;
}

Status RaftLog::CheckOutOfBounds(uint64_t lo, uint64_t hi) const {
  if (lo > hi) {
    spdlog::critical("raft: log range with lo {} above hi {}", lo, hi);
    std::abort();
  }
  const uint64_t fi = FirstIndex();
  if (lo < fi) return ErrCompacted();
  const uint64_t length = LastIndex() + 1 - fi;
  if (hi > fi + length) {
    spdlog::critical("raft: log range [{}, {}) reaches past the log, which holds [{}, {}]", lo, hi,
                     fi, LastIndex());
    std::abort();
  }
  return Status::OK();
}

}  // namespace etcdpp::raft
