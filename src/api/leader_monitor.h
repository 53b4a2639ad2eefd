// Ends the streams that asked for a leader ("hasleader: true") once their
// member has known no leader for kMaxNoLeaderChecks checks in a row, one
// election timeout apart (etcd 3.4's monitorLeader). A client watching
// through a member cut off from the cluster then reconnects elsewhere
// instead of waiting, unaware, for events that cannot come. New calls that
// ask for a leader are refused at once instead (call_gate.h); streams get
// the grace of a few elections because reopening one costs far more.
//
// Time: the monitor looks every `interval` of real time, but how long the
// member has been without a leader is measured on the injected clock, so a
// test with a fake clock decides exactly when the streams end.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "base/clock.h"

namespace etcdpp::api {

class LeaderMonitor {
 public:
  static constexpr int kMaxNoLeaderChecks = 3;

  // Calls `leader_id` (0: no leader known) every `interval` (the election
  // timeout) until destroyed. Streams end at the first check that finds no
  // leader when every check for the last (kMaxNoLeaderChecks - 1) intervals
  // of `clock` found none either. `clock` is not owned; null: the real one.
  LeaderMonitor(std::function<uint64_t()> leader_id, std::chrono::milliseconds interval,
                Clock* clock = nullptr);
  ~LeaderMonitor();
  LeaderMonitor(const LeaderMonitor&) = delete;
  LeaderMonitor& operator=(const LeaderMonitor&) = delete;

  using Token = uint64_t;
  // `on_no_leader` runs at most once, on the monitor's thread with its lock
  // held, unless Unregister(token) returned before; it must not call back
  // into the monitor.
  Token Register(std::function<void()> on_no_leader);
  // After this returns, the token's callback is not running and never will.
  void Unregister(Token token);

 private:
  void Run();

  const std::function<uint64_t()> leader_id_;
  const std::chrono::milliseconds interval_;
  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                           // guarded by mu_
  Token next_token_ = 1;                            // guarded by mu_
  std::map<Token, std::function<void()>> streams_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace etcdpp::api
