#include "server/leader_transfer.h"

#include <spdlog/spdlog.h>

#include "raft/raw_node.h"

namespace etcdpp::server {
namespace {

// The voter other than `self` with the highest match index: it needs the
// least catching up before it can take over. 0 when there is none.
uint64_t MostCaughtUpVoter(const raft::NodeStatus& status, uint64_t self) {
  uint64_t best = 0;
  uint64_t best_match = 0;
  for (const auto& [id, progress] : status.progress) {
    if (id == self || progress.is_learner) continue;
    if (best == 0 || progress.match > best_match) {
      best = id;
      best_match = progress.match;
    }
  }
  return best;
}

}  // namespace

void LeaderTransfers::Progress(raft::RawNode& node, Clock::TimePoint now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    TransferRequest& t = it->request;
    if (!it->started) {
      it->started = true;
      if (t.transferee == 0) {
        const uint64_t chosen = MostCaughtUpVoter(node.GetStatus(), self_id_);
        if (chosen == 0 || node.lead() != self_id_) {
          // Not leading, or leading alone: there is nothing to hand over.
          t.done(Status::OK());
          it = pending_.erase(it);
          continue;
        }
        t.transferee = chosen;
        spdlog::info("stopping: handing leadership to {:x} first", chosen);
      }
      node.TransferLeader(t.transferee);
    }
    if (node.lead() == t.transferee) {
      t.done(Status::OK());
      it = pending_.erase(it);
    } else if (now >= t.deadline) {
      t.done(Status(Code::kTimeoutLeaderTransfer));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void LeaderTransfers::FailAll(const Status& status) {
  for (Pending& p : pending_) p.request.done(status);
  pending_.clear();
}

}  // namespace etcdpp::server
