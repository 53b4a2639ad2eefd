#include "raft/progress.h"

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace etcdpp::raft {

std::string_view ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "StateProbe";
    case ProgressState::kReplicate:
      return "StateReplicate";
    case ProgressState::kSnapshot:
      return "StateSnapshot";
  }
  return "StateUnknown";
}

void Inflights::Add(uint64_t inflight) {
  if (Full()) {
    spdlog::critical("raft: all {} inflight slots are taken; callers must check IsPaused() first",
                     size_);
    std::abort();
  }
  size_t next = start_ + count_;
  if (next >= size_) next -= size_;
  if (next >= buffer_.size()) {
    // Most followers keep few messages in flight: allocate on demand,
    // doubling, and never beyond the window.
    buffer_.resize(std::min(size_, std::max<size_t>(buffer_.size() * 2, 1)));
  }
  buffer_[next] = inflight;
  ++count_;
}

void Inflights::FreeUpTo(uint64_t to) {
  if (count_ == 0 || to < buffer_[start_]) return;
  size_t idx = start_;
  size_t i = 0;
  for (; i < count_; ++i) {
    if (to < buffer_[idx]) break;
    if (++idx >= size_) idx -= size_;
  }
  count_ -= i;
  start_ = idx;
  // Empty: restart at slot 0 so the next Adds reuse the slots already
  // allocated instead of walking towards the end and growing the buffer.
  if (count_ == 0) start_ = 0;
}

void Inflights::FreeOldest() {
  if (count_ == 0) return;
  FreeUpTo(buffer_[start_]);
}

void Progress::ResetState(ProgressState s) {
  probe_sent = false;
  pending_snapshot = 0;
  state = s;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  // Leaving kSnapshot means the follower reported the snapshot installed
  // (a failed one was cleared to 0 first): probe right after it.
  if (state == ProgressState::kSnapshot) {
    const uint64_t pending = pending_snapshot;
    ResetState(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::BackOffAfterRejection(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match answers an older MsgApp: ignore it.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // A prober sends one MsgApp at a time, at next-1; any other rejection is
  // a leftover from before.
  if (next - 1 != rejected) return false;
  next = std::max<uint64_t>(std::min(rejected, match_hint + 1), 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

}  // namespace etcdpp::raft
