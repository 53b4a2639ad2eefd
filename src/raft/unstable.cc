#include "raft/unstable.h"

#include <cstdlib>

#include <spdlog/spdlog.h>

namespace etcdpp::raft {

std::optional<uint64_t> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeTerm(uint64_t i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata().index() == i) return snapshot_->metadata().term();
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  return entries_[i - offset_].term();
}

void Unstable::StableTo(uint64_t i, uint64_t t) {
  auto gt = MaybeTerm(i);
  if (!gt) return;
  // The server persisted the Ready that ended with (i, t). If entry i has
  // another term now, a later append replaced it after that Ready was
  // built: the new entries are not on disk yet, so keep them.
  if (*gt == t && i >= offset_) {
    entries_.erase(entries_.begin(), entries_.begin() + (i + 1 - offset_));
    offset_ = i + 1;
  }
}

void Unstable::StableSnapTo(uint64_t i) {
  if (snapshot_ && snapshot_->metadata().index() == i) snapshot_.reset();
}

void Unstable::Restore(const raftpb::Snapshot& snap) {
  offset_ = snap.metadata().index() + 1;
  entries_.clear();
  snapshot_ = snap;
}

void Unstable::TruncateAndAppend(std::vector<raftpb::Entry> ents) {
  if (ents.empty()) return;
  const uint64_t after = ents.front().index();
  if (after == offset_ + entries_.size()) {
    // ents continue the tail: nothing to drop.
  } else if (after <= offset_) {
    // ents replace the whole tail and possibly stable entries too; the
    // server overwrites those when it persists the next Ready.
    offset_ = after;
    entries_.clear();
  } else {
    // ents replace a suffix of the tail: keep what precedes index `after`.
    CheckWithinTail(offset_, after);
    entries_.resize(after - offset_);
  }
  // Moved: an entry's data is not copied again on its way into the log.
  entries_.insert(entries_.end(), std::make_move_iterator(ents.begin()),
                  std::make_move_iterator(ents.end()));
}

std::vector<raftpb::Entry> Unstable::Slice(uint64_t lo, uint64_t hi) const {
  CheckWithinTail(lo, hi);
  return std::vector<raftpb::Entry>(entries_.begin() + (lo - offset_),
                                    entries_.begin() + (hi - offset_));
}

void Unstable::CheckWithinTail(uint64_t lo, uint64_t hi) const {
  const uint64_t upper = offset_ + entries_.size();
  if (lo > hi || lo < offset_ || hi > upper) {
    spdlog::critical("raft: range [{}, {}) is not inside the unpersisted tail [{}, {})", lo, hi,
                     offset_, upper);
    std::abort();
  }
}

}  // namespace etcdpp::raft
