#include "api/leader_monitor.h"

namespace etcdpp::api {

LeaderMonitor::LeaderMonitor(std::function<uint64_t()> leader_id,
                             std::chrono::milliseconds interval)
    : leader_id_(std::move(leader_id)), interval_(interval), thread_([this] { Run(); }) {}

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
  int checks_without_leader = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    if (leader_id_() != 0) {
      checks_without_leader = 0;
      continue;
    }
    if (++checks_without_leader < kMaxNoLeaderChecks) continue;
    checks_without_leader = 0;
    // Every stream ends, and is forgotten, as in etcd.
    for (auto& [token, on_no_leader] : streams_) on_no_leader();
    streams_.clear();
  }
}

}  // namespace etcdpp::api
