#include "server/durable_index.h"

namespace etcdpp::server {

void DurableIndex::Set(uint64_t index) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    index_ = index;
    RunReachedLocked(lock);
  }
  reached_.notify_all();
}

void DurableIndex::RunWhenDurable(uint64_t index, std::function<void()> release) {
  std::unique_lock<std::mutex> lock(mu_);
  releases_.push_back(Release{index, std::move(release)});
  RunReachedLocked(lock);
}

void DurableIndex::WaitFor(uint64_t index) {
  std::unique_lock<std::mutex> lock(mu_);
  reached_.wait(lock, [&] { return index_ >= index; });
}

uint64_t DurableIndex::index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_;
}

void DurableIndex::RunReachedLocked(std::unique_lock<std::mutex>& lock) {
  if (releasing_) return;
  releasing_ = true;
  while (!releases_.empty() && releases_.front().index <= index_) {
    std::function<void()> run = std::move(releases_.front().run);
    releases_.pop_front();
    lock.unlock();
    run();
    lock.lock();
  }
  releasing_ = false;
}

}  // namespace etcdpp::server
