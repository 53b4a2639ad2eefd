// A small pool of threads that run reads released by the Raft loop (after
// ReadIndex), so a large range never stalls the loop that persists writes.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace etcdpp::api {

class ReadExecutor {
 public:
  explicit ReadExecutor(int threads);
  ~ReadExecutor();
  ReadExecutor(const ReadExecutor&) = delete;
  ReadExecutor& operator=(const ReadExecutor&) = delete;

  // Runs `task` on a pool thread. After the destructor starts, tasks still
  // queued are run before it returns; none is dropped.
  void Submit(std::function<void()> task);

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace etcdpp::api
