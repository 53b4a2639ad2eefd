#include "api/watch_write_pump.h"

#include <algorithm>

#include "api/watch_stream.h"

namespace etcdpp::api {

WritePump::WritePump() : thread_([this] { Run(); }) {}

WritePump::~WritePump() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void WritePump::Schedule(WatchStream* stream) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake = due_.empty();
    due_.push_back(stream);
  }
  if (wake) cv_.notify_one();
}

void WritePump::Forget(WatchStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(due_, stream);
}

void WritePump::Run() {
  std::vector<WatchStream*> due;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !due_.empty(); });
    if (stopping_) return;
    // Under mu_, so that Forget cannot return while a stream is being
    // pumped; a completion that schedules its stream meanwhile waits.
    due.swap(due_);
    for (WatchStream* stream : due) stream->Pump();
    due.clear();
  }
}

}  // namespace etcdpp::api
