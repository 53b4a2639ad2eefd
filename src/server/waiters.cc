#include "server/waiters.h"

#include "metrics/etcd_metrics.h"

namespace etcdpp::server {

WaiterRegistry::WaiterRegistry()
    : pending_(metrics::ProposalsPending()), failed_(metrics::ProposalsFailedTotal()) {}

void WaiterRegistry::Register(uint64_t id, Waiter waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (waiters_.emplace(id, std::move(waiter)).second) pending_.Add(1);
}

void WaiterRegistry::RegisterAll(std::vector<std::pair<uint64_t, Waiter>>& batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t added = 0;
    for (auto& [id, waiter] : batch) added += waiters_.emplace(id, std::move(waiter)).second;
    pending_.Add(static_cast<double>(added));
  }
  batch.clear();
}

std::vector<std::optional<WaiterRegistry::Waiter>> WaiterRegistry::TakeMany(
    const std::vector<uint64_t>& ids) {
  std::vector<std::optional<Waiter>> taken(ids.size());
  std::lock_guard<std::mutex> lock(mu_);
  size_t found = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = waiters_.find(ids[i]);
    if (it == waiters_.end()) continue;
    taken[i] = std::move(it->second);
    waiters_.erase(it);
    ++found;
  }
  pending_.Add(-static_cast<double>(found));
  return taken;
}

std::optional<WaiterRegistry::Waiter> WaiterRegistry::Take(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return std::nullopt;
  Waiter waiter = std::move(it->second);
  waiters_.erase(it);
  pending_.Add(-1);
  return waiter;
}

std::vector<ProposeCallback> WaiterRegistry::TakeExpired(Clock::TimePoint now) {
  std::vector<ProposeCallback> expired;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second.done));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  pending_.Add(-static_cast<double>(expired.size()));
  failed_.Inc(expired.size());
  return expired;
}

std::vector<WaiterRegistry::Waiter> WaiterRegistry::TakeAll() {
  std::vector<Waiter> all;
  std::lock_guard<std::mutex> lock(mu_);
  all.reserve(waiters_.size());
  for (auto& [id, waiter] : waiters_) all.push_back(std::move(waiter));
  waiters_.clear();
  pending_.Add(-static_cast<double>(all.size()));
  failed_.Inc(all.size());
  return all;
}

}  // namespace etcdpp::server
