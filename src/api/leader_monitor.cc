#include "api/leader_monitor.h"

namespace etcdpp::api {

LeaderMonitor::LeaderMonitor(std::function<uint64_t()> leader_id,
                             std::chrono::milliseconds interval, Clock* clock)
    : leader_id_(std::move(leader_id)),
      interval_(interval),
      clock_(clock ? clock : Clock::Real()),
      thread_([this] { Run(); }) {}

LeaderMonitor::~LeaderMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

LeaderMonitor::Token LeaderMonitor::Register(std::function<void()> on_no_leader) {
  std::lock_guard<std::mutex> lock(mu_);
  const Token token = next_token_++;
  streams_.emplace(token, std::move(on_no_leader));
  return token;
}

void LeaderMonitor::Unregister(Token token) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(token);
}

void LeaderMonitor::Run() {
  // Whether the last check found no leader, and the first check of that
  // run of leaderless checks.
  bool leaderless = false;
  Clock::TimePoint leaderless_since{};
  const auto grace = (kMaxNoLeaderChecks - 1) * interval_;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    // The time of a check is read before the leader, so whoever saw the
    // check's answer also knows the check's time is behind it.
    const Clock::TimePoint now = clock_->Now();
    if (leader_id_() != 0) {
      leaderless = false;
      continue;
    }
    if (!leaderless) {
      leaderless = true;
      leaderless_since = now;
    }
    if (now - leaderless_since < grace) continue;
    leaderless = false;
    // Every stream ends, and is forgotten, as in etcd.
    for (auto& [token, on_no_leader] : streams_) on_no_leader();
    streams_.clear();
  }
}

}  // namespace etcdpp::api
