#include "metrics/member_stats.h"

#include <cmath>

namespace etcdpp::metrics {

void AppendRateWindow::Add(TimePoint at, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  newest_ = (newest_ + 1) % kSamples;
  if (count_ == kSamples) {
    bytes_ -= ring_[newest_].bytes;  // the oldest, overwritten
  } else {
    ++count_;
  }
  ring_[newest_] = Sample{at, bytes};
  bytes_ += bytes;
}

AppendRates AppendRateWindow::RatesAt(TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (count_ == 0) return {};
  const TimePoint newest = ring_[newest_].at;
  if (now - newest > kIdle) {
    count_ = 0;
    bytes_ = 0;
    return {};
  }
  const TimePoint oldest = ring_[(newest_ + kSamples + 1 - count_) % kSamples].at;
  const double seconds = std::chrono::duration<double>(newest - oldest).count();
  if (seconds <= 0) return {};
  // etcd counts every message of the window, the oldest included, over the
  // span; the same here, so the two report alike for the same traffic.
  return AppendRates{static_cast<double>(count_) / seconds, static_cast<double>(bytes_) / seconds};
}

void MemberStats::SetStartTime(int64_t unix_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  start_time_ns_ = unix_ns;
}

int64_t MemberStats::start_time() const {
  std::lock_guard<std::mutex> lock(mu_);
  return start_time_ns_;
}

void MemberStats::LeaderChanged(uint64_t /*leader*/, int64_t unix_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  leader_start_ns_ = unix_ns;
}

int64_t MemberStats::leader_start_time() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_start_ns_;
}

void MemberStats::FollowerSucceeded(uint64_t id, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  FollowerLatency& f = followers_[id];
  // Running mean and mean of squares, as etcd keeps them.
  const double total = static_cast<double>(f.success) * f.average;
  const double total_square = static_cast<double>(f.success) * f.average_square;
  ++f.success;
  f.current = seconds * 1000.0;
  if (f.current > f.maximum) f.maximum = f.current;
  if (f.current < f.minimum) f.minimum = f.current;
  f.average = (total + f.current) / static_cast<double>(f.success);
  f.average_square = (total_square + f.current * f.current) / static_cast<double>(f.success);
  f.standard_deviation = std::sqrt(std::max(0.0, f.average_square - f.average * f.average));
}

void MemberStats::FollowerFailed(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  ++followers_[id].fail;
}

std::map<uint64_t, FollowerLatency> MemberStats::Followers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return followers_;
}

MemberStats& DefaultMemberStats() {
  static MemberStats* stats = new MemberStats();  // never destroyed: used until exit
  return *stats;
}

}  // namespace etcdpp::metrics
