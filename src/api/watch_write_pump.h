// A thread that starts the next write of watch streams whose previous write
// completed with more responses queued (api/watch_stream.h; docs/watch.md,
// "Writes off the completion chain").
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace etcdpp::api {

class WatchStream;

// Started inside the completion's reaction every time, a fan-out's writes
// chain completion to write to completion on gRPC's callback threads, whose
// completion queue then never runs empty; those threads poll the sockets
// only when it does, so every other call of the member (the next put among
// them) waited for the whole fan-out to be written. A completion therefore
// starts only a few writes itself (WatchStream::kGrpcInlineWrites)
// and then hands its stream here: the callback threads return to polling,
// and one wake-up of this thread starts the writes of every stream handed
// over meanwhile. Owned by whoever serves the streams (the WatchService);
// its mutex is taken before a stream's, never after.
class WritePump {
 public:
  WritePump();
  ~WritePump();
  WritePump(const WritePump&) = delete;
  WritePump& operator=(const WritePump&) = delete;

  // The next write of `stream` is due (called by its write completion).
  void Schedule(WatchStream* stream);
  // `stream` is about to be destroyed: after this returns the pump does not
  // touch it.
  void Forget(WatchStream* stream);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchStream*> due_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::api
