// V2ExpiryTicker: the leader's side of v2 TTLs. Every half second, while
// this member leads and the v2 store holds nodes with a TTL, it proposes a
// SYNC request carrying the leader's wall clock; applying it expires the
// nodes that are due, on every member alike (etcd's sync requests).
//
// Threads: one thread of its own, between Start and Stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace etcdpp::server {

class V2ExpiryTicker {
 public:
  static constexpr std::chrono::milliseconds kInterval{500};

  // `due`: whether to sweep now (leader, TTL keys present); `propose`: sends
  // the SYNC request. Both run on the ticker's thread and must not block long.
  V2ExpiryTicker(std::function<bool()> due, std::function<void()> propose)
      : due_(std::move(due)), propose_(std::move(propose)) {}
  ~V2ExpiryTicker() { Stop(); }

  void Start();
  void Stop();

 private:
  const std::function<bool()> due_;
  const std::function<void()> propose_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::server
