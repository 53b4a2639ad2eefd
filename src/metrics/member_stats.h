// The counters behind the v2 API's /v2/stats/self and /v2/stats/leader
// (etcd's stats package): the Raft append requests this member sent and
// received, when it started and when the leader it follows was elected,
// and the leader's view of each follower: the round trips measured by the
// transport's probes (transport/rtt_probe.h), as etcd's latency summary in
// milliseconds, and how many probes succeeded and failed.
//
// One per process (a process runs one member), like the metrics registry.
// Threads: the append counters are relaxed atomics (the transport's send
// path and receive threads); everything else is guarded by mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

namespace etcdpp::metrics {

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
  void AppendSent() { append_sent_.fetch_add(1, std::memory_order_relaxed); }
  void AppendReceived() { append_received_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t append_sent() const { return append_sent_.load(std::memory_order_relaxed); }
  uint64_t append_received() const { return append_received_.load(std::memory_order_relaxed); }

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
  mutable std::mutex mu_;
  int64_t start_time_ns_ = 0;                      // guarded by mu_
  int64_t leader_start_ns_ = 0;                    // guarded by mu_
  std::map<uint64_t, FollowerLatency> followers_;  // guarded by mu_
};

MemberStats& DefaultMemberStats();

}  // namespace etcdpp::metrics
