#include "server/v2_expiry.h"

namespace etcdpp::server {

void V2ExpiryTicker::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, kInterval, [this] { return stopping_; })) {
      lock.unlock();
      if (due_()) propose_();
      lock.lock();
    }
  });
}

void V2ExpiryTicker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace etcdpp::server
