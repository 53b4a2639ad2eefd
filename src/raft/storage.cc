#include "raft/storage.h"

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace etcdpp::raft {

Status ErrCompacted() {
  return Status(Code::kCompacted, "raft: log index below the first stored entry (compacted)");
}
Status ErrUnavailable() {
  return Status(Code::kUnavailable, "raft: log index past the last stored entry");
}
Status ErrSnapshotTemporarilyUnavailable() {
  return Status(Code::kFailedPrecondition, "raft: snapshot not ready yet");
}
Status ErrSnapOutOfDate() {
  return Status(Code::kFailedPrecondition,
                "raft: storage already holds a snapshot at or past "
                "that index");
}
bool IsCompacted(const Status& s) { return s.code() == Code::kCompacted; }
bool IsUnavailable(const Status& s) { return s.code() == Code::kUnavailable; }

void LimitSize(std::vector<raftpb::Entry>* ents, uint64_t max_bytes) {
  if (ents->empty() || max_bytes == kNoLimit) return;
  uint64_t size = (*ents)[0].ByteSizeLong();
  size_t limit = 1;
  for (; limit < ents->size(); ++limit) {
    size += (*ents)[limit].ByteSizeLong();
    if (size > max_bytes) break;
  }
  ents->resize(limit);
}

MemoryStorage::MemoryStorage() : ents_(1) {}

Result<InitialStateResult> MemoryStorage::InitialState() const {
  std::lock_guard<std::mutex> lock(mu_);
  return InitialStateResult{hard_state_, snapshot_.metadata().conf_state()};
}

Result<std::vector<raftpb::Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t offset = ents_.front().index();
  if (lo <= offset) return ErrCompacted();
  if (hi > LastIndexLocked() + 1) {
    spdlog::critical("raft: MemoryStorage::Entries up to {} (exclusive), but the last index is {}",
                     hi, LastIndexLocked());
    std::abort();
  }
  // Nothing stored beyond the snapshot position.
  if (ents_.size() == 1) return ErrUnavailable();
  // Copies only what the size limit lets through (as LimitSize would keep:
  // the first entry always, then each while the total stays within
  // max_bytes). A restarted member drains its whole unapplied log in
  // bounded slices; copying the rest of the log for every slice made that
  // quadratic (minutes for a WAL of a few hundred MiB).
  std::vector<raftpb::Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = lo - offset; i < hi - offset; ++i) {
    bytes += ents_[i].ByteSizeLong();
    if (!out.empty() && max_bytes != kNoLimit && bytes > max_bytes) break;
    out.push_back(ents_[i]);
  }
  return out;
}

Result<uint64_t> MemoryStorage::Term(uint64_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t offset = ents_.front().index();
  if (i < offset) return ErrCompacted();
  if (i - offset >= ents_.size()) return ErrUnavailable();
  return ents_[i - offset].term();
}

uint64_t MemoryStorage::LastIndex() const {
  std::lock_guard<std::mutex> lock(mu_);
  return LastIndexLocked();
}

uint64_t MemoryStorage::FirstIndex() const {
  std::lock_guard<std::mutex> lock(mu_);
  return FirstIndexLocked();
}

Result<raftpb::Snapshot> MemoryStorage::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void MemoryStorage::SetHardState(const raftpb::HardState& hs) {
  std::lock_guard<std::mutex> lock(mu_);
  hard_state_ = hs;
}

Status MemoryStorage::ApplySnapshot(const raftpb::Snapshot& snap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (snapshot_.metadata().index() >= snap.metadata().index()) return ErrSnapOutOfDate();
  snapshot_ = snap;
  ents_.assign(1, raftpb::Entry());
  ents_[0].set_term(snap.metadata().term());
  ents_[0].set_index(snap.metadata().index());
  return Status::OK();
}

Result<raftpb::Snapshot> MemoryStorage::CreateSnapshot(uint64_t i, const raftpb::ConfState* cs,
                                                       std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (i <= snapshot_.metadata().index()) return ErrSnapOutOfDate();
  const uint64_t offset = ents_.front().index();
  if (i > LastIndexLocked()) {
    spdlog::critical("raft: CreateSnapshot at index {}, past the last index {}", i,
                     LastIndexLocked());
    std::abort();
  }
  auto* md = snapshot_.mutable_metadata();
  md->set_index(i);
  md->set_term(ents_[i - offset].term());
  if (cs != nullptr) *md->mutable_conf_state() = *cs;
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

Status MemoryStorage::Compact(uint64_t compact_index) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t offset = ents_.front().index();
  if (compact_index <= offset) return ErrCompacted();
  if (compact_index > LastIndexLocked()) {
    spdlog::critical("raft: Compact at index {}, past the last index {}", compact_index,
                     LastIndexLocked());
    std::abort();
  }
  const uint64_t i = compact_index - offset;
  std::vector<raftpb::Entry> rest;
  rest.reserve(ents_.size() - i);
  rest.emplace_back();
  rest[0].set_index(ents_[i].index());
  rest[0].set_term(ents_[i].term());
  for (size_t k = i + 1; k < ents_.size(); ++k) rest.push_back(std::move(ents_[k]));
  ents_ = std::move(rest);
  return Status::OK();
}

uint64_t MemoryStorage::CompactIndexKeeping(uint64_t last, uint64_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t offset = ents_.front().index();
  uint64_t index = std::min(last, LastIndexLocked());
  uint64_t kept = 0;
  // ents_[0] is the dummy entry at `offset`: it holds no data.
  while (index > offset) {
    kept += ents_[index - offset].data().size();
    if (kept > max_bytes) break;
    --index;
  }
  return index;
}

Status MemoryStorage::Append(std::vector<raftpb::Entry> entries) {
  if (entries.empty()) return Status::OK();
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t first = FirstIndexLocked();
  const uint64_t last = entries.front().index() + entries.size() - 1;
  // A snapshot already covers all of them.
  if (last < first) return Status::OK();
  // Entries at or below the snapshot position are part of the snapshot.
  size_t skip = first > entries.front().index() ? first - entries.front().index() : 0;
  const uint64_t start_index = entries[skip].index();
  const uint64_t offset = start_index - ents_.front().index();
  if (offset > ents_.size()) {
    spdlog::critical("raft: MemoryStorage::Append at index {} leaves a gap after index {}",
                     start_index, LastIndexLocked());
    std::abort();
  }
  // Truncate the conflicting (or duplicated) suffix, then append.
  ents_.resize(offset);
  ents_.insert(ents_.end(), std::make_move_iterator(entries.begin() + static_cast<ptrdiff_t>(skip)),
               std::make_move_iterator(entries.end()));
  return Status::OK();
}

}  // namespace etcdpp::raft
