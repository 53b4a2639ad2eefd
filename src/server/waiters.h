// WaiterRegistry: the proposals that are in the Raft log but not yet applied,
// by request id. The raft loop registers a proposal just before handing it
// to Raft (on a single member the apply thread may apply it before Propose
// returns) and expires overdue ones on ticks; the apply thread takes a
// waiter when it applies the entry with that id.
//
// Thread-safe: mu_ guards the map. Callbacks are never run under mu_.
// Invariant: a registered callback runs exactly once, by whoever takes it.
// The registry is what etcd calls pending proposals, so it keeps
// etcd_server_proposals_pending equal to its size, and counts the waiters
// that end without being applied (expired, or dropped at shutdown) in
// etcd_server_proposals_failed_total.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "metrics/metrics.h"
#include "server/interfaces.h"

namespace etcdpp::server {

class WaiterRegistry {
 public:
  WaiterRegistry();

  struct Waiter {
    // Where the applier writes the result; null for requests without one
    // (membership changes, published attributes).
    google::protobuf::Message* response = nullptr;
    ProposeCallback done;
    Clock::TimePoint deadline;
  };

  void Register(uint64_t id, Waiter waiter);
  // Registers every (id, waiter) of `batch` under one lock (the raft loop
  // registers a whole batch of proposals at once) and leaves it empty.
  void RegisterAll(std::vector<std::pair<uint64_t, Waiter>>& batch);
  std::optional<Waiter> Take(uint64_t id);
  // Takes the waiter of each id under one lock; the result is parallel to
  // `ids` (nullopt where none is registered).
  std::vector<std::optional<Waiter>> TakeMany(const std::vector<uint64_t>& ids);
  // Removes and returns every waiter whose deadline is not after `now`.
  std::vector<ProposeCallback> TakeExpired(Clock::TimePoint now);
  std::vector<Waiter> TakeAll();

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, Waiter> waiters_;  // guarded by mu_
  metrics::Gauge& pending_;
  metrics::Counter& failed_;
};

}  // namespace etcdpp::server
