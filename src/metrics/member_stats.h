// The counters behind the v2 API's /v2/stats/self and /v2/stats/leader
// (etcd's stats package): the Raft append requests this member sent and
// received, when it started and when the leader it follows was elected,
// and the leader's view of each follower: the round trips measured by the
// transport's probes (transport/rtt_probe.h), as etcd's latency summary in
// milliseconds, and how many probes succeeded and failed.
//
// One per process (a process runs one member), like the metrics registry.
// Threads: the append counters are relaxed atomics (the transport's send
// path and receive threads); each rate window has its own mutex, so the
// sending Raft loop never waits for a receiving thread; everything else is
// guarded by mu_.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace etcdpp::metrics {

struct AppendRates {
  double messages_per_second = 0;
  double bytes_per_second = 0;
};

// The rate of Raft append messages one way (sent, or received), as etcd's
// /v2/stats/self reports it: over the last kSamples messages, their count
// and summed size divided by the time from the oldest to the newest. A
// window whose newest message is more than kIdle old is emptied and reads
// as no traffic (0), so a burst long gone does not linger and the next one
// starts a window of its own. Fewer than two messages, or two at the same
// instant, span no time: 0 too.
// Thread-safe (mu_).
class AppendRateWindow {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr size_t kSamples = 200;
  static constexpr std::chrono::seconds kIdle{1};

  void Add(TimePoint at, size_t bytes);
  AppendRates RatesAt(TimePoint now);

 private:
  struct Sample {
    TimePoint at;
    size_t bytes = 0;
  };
  std::mutex mu_;
  std::array<Sample, kSamples> ring_;  // guarded by mu_; the newest at newest_
  size_t newest_ = kSamples - 1;       // guarded by mu_
  size_t count_ = 0;                   // guarded by mu_; samples held, up to kSamples
  uint64_t bytes_ = 0;                 // guarded by mu_; summed over the samples held
};

struct FollowerLatency {
  // Milliseconds, as etcd reports them. `minimum` starts at 2^63 (etcd's
  // initial value, shown as such until the first success).
  double current = 0, average = 0, standard_deviation = 0, minimum = 9223372036854775808.0,
         maximum = 0;
  uint64_t success = 0, fail = 0;
  double average_square = 0;  // for the standard deviation
};

class MemberStats {
 public:
  // A Raft append message of `bytes` (its encoded size) sent to a peer or
  // received from the leader.
  void AppendSent(size_t bytes, AppendRateWindow::TimePoint at = std::chrono::steady_clock::now()) {
    append_sent_.fetch_add(1, std::memory_order_relaxed);
    sent_rate_.Add(at, bytes);
  }
  void AppendReceived(size_t bytes,
                      AppendRateWindow::TimePoint at = std::chrono::steady_clock::now()) {
    append_received_.fetch_add(1, std::memory_order_relaxed);
    received_rate_.Add(at, bytes);
  }
  uint64_t append_sent() const { return append_sent_.load(std::memory_order_relaxed); }
  uint64_t append_received() const { return append_received_.load(std::memory_order_relaxed); }
  AppendRates SendRates(AppendRateWindow::TimePoint now = std::chrono::steady_clock::now()) {
    return sent_rate_.RatesAt(now);
  }
  AppendRates ReceiveRates(AppendRateWindow::TimePoint now = std::chrono::steady_clock::now()) {
    return received_rate_.RatesAt(now);
  }

  // Wall-clock Unix nanoseconds.
  void SetStartTime(int64_t unix_ns);
  int64_t start_time() const;
  // The leader this member knows changed to `leader` (0: none) at `unix_ns`.
  void LeaderChanged(uint64_t leader, int64_t unix_ns);
  int64_t leader_start_time() const;

  void FollowerSucceeded(uint64_t id, double seconds);
  void FollowerFailed(uint64_t id);
  // A copy, by follower id; a follower never probed is absent.
  std::map<uint64_t, FollowerLatency> Followers() const;

 private:
  std::atomic<uint64_t> append_sent_{0};
  std::atomic<uint64_t> append_received_{0};
  AppendRateWindow sent_rate_;
  AppendRateWindow received_rate_;
  mutable std::mutex mu_;
  int64_t start_time_ns_ = 0;                      // guarded by mu_
  int64_t leader_start_ns_ = 0;                    // guarded by mu_
  std::map<uint64_t, FollowerLatency> followers_;  // guarded by mu_
};

MemberStats& DefaultMemberStats();

}  // namespace etcdpp::metrics
