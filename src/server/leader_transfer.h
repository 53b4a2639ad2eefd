// LeaderTransfers: leadership hand-offs in progress (Maintenance.MoveLeader
// and the hand-off before a graceful stop). Raft loop thread only: requests
// come in through the raft node's intake and are advanced on every loop
// iteration until the transferee leads or the deadline passes.
#pragma once

#include <cstdint>
#include <vector>

#include "base/clock.h"
#include "server/interfaces.h"

namespace etcdpp::raft {
class RawNode;
}

namespace etcdpp::server {

struct TransferRequest {
  // 0: pick the voter with the longest log (the hand-off before a stop).
  uint64_t transferee = 0;
  Clock::TimePoint deadline;
  ProposeCallback done;
};

class LeaderTransfers {
 public:
  explicit LeaderTransfers(uint64_t self_id) : self_id_(self_id) {}

  void Add(TransferRequest request) { pending_.push_back({std::move(request), false}); }
  // Starts new transfers and completes those whose transferee now leads
  // (OK) or whose deadline passed (kTimeoutLeaderTransfer).
  void Progress(raft::RawNode& node, Clock::TimePoint now);
  void FailAll(const Status& status);

 private:
  struct Pending {
    TransferRequest request;
    bool started;
  };
  const uint64_t self_id_;
  std::vector<Pending> pending_;
};

}  // namespace etcdpp::server
