#include "server/read_index.h"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

#include "base/coding.h"
#include "raft/raw_node.h"

namespace etcdpp::server {
namespace {

std::string EncodeContext(uint64_t ctx) {
  std::string out(8, '\0');
  PutBE64(out.data(), ctx);
  return out;
}

// Contexts are never 0, so 0 stands for "not one of ours".
uint64_t DecodeContext(const std::string& in) { return in.size() == 8 ? GetBE64(in.data()) : 0; }

}  // namespace

ReadIndexBatcher::ReadIndexBatcher() {
  std::random_device seed;
  last_ctx_ = (uint64_t{seed()} << 32) | seed();
}

std::optional<std::string> ReadIndexBatcher::MaybeStart(Clock::TimePoint now,
                                                        Clock::TimePoint::duration timeout) {
  if (!CanStart()) return std::nullopt;
  if (++last_ctx_ == 0) ++last_ctx_;  // 0 means "not one of ours"
  in_flight_ = Batch{last_ctx_, std::move(next_batch_), now + timeout};
  next_batch_.clear();
  return EncodeContext(in_flight_->ctx);
}

std::optional<ConfirmedReads> ReadIndexBatcher::Confirm(const raft::ReadState& state) {
  // A state for an older context belongs to a round that was asked twice or
  // has expired already.
  if (!in_flight_ || DecodeContext(state.request_ctx) != in_flight_->ctx) return std::nullopt;
  ConfirmedReads confirmed{state.index, std::move(in_flight_->callbacks)};
  in_flight_.reset();
  return confirmed;
}

std::optional<std::string> ReadIndexBatcher::OnTick(Clock::TimePoint now) {
  if (!in_flight_) return std::nullopt;
  if (in_flight_->deadline <= now) {
    std::vector<ReadCallback> expired = std::move(in_flight_->callbacks);
    in_flight_.reset();
    for (ReadCallback& cb : expired) cb(Status(Code::kTimeout));
    return std::nullopt;
  }
  return EncodeContext(in_flight_->ctx);
}

void ReadIndexBatcher::FailAll(const Status& status) {
  if (in_flight_) {
    for (ReadCallback& cb : in_flight_->callbacks) cb(status);
    in_flight_.reset();
  }
  for (ReadCallback& cb : next_batch_) cb(status);
  next_batch_.clear();
}

void AppliedReadQueue::RunUpTo(uint64_t applied) {
  if (waiting_.empty()) return;
  auto ready = std::partition(waiting_.begin(), waiting_.end(),
                              [applied](const ConfirmedReads& r) { return r.index > applied; });
  std::vector<ReadCallback> runnable;
  for (auto it = ready; it != waiting_.end(); ++it) {
    spdlog::debug("{} reads confirmed at index {} run at applied index {}", it->callbacks.size(),
                  it->index, applied);
    for (ReadCallback& cb : it->callbacks) runnable.push_back(std::move(cb));
  }
  waiting_.erase(ready, waiting_.end());
  for (ReadCallback& cb : runnable) cb(Status::OK());
}

void AppliedReadQueue::FailAll(const Status& status) {
  for (ConfirmedReads& reads : waiting_) {
    for (ReadCallback& cb : reads.callbacks) cb(status);
  }
  waiting_.clear();
}

}  // namespace etcdpp::server
