// ReadOnly: the leader's queue of pending ReadIndex requests (Raft thesis
// 6.4). In kSafe mode a request at commit index i is answered once a
// majority of voters acknowledged a heartbeat carrying its context (proving
// the leader was still leader when the request arrived); answering one
// request also answers every request queued before it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "raftpb/raft.pb.h"

namespace etcdpp::raft {

enum class ReadOnlyOption {
  // Linearizable: confirm leadership with a heartbeat round per batch.
  kSafe,
  // Trust the leader lease (needs check_quorum; relies on bounded clock
  // drift): answer from the commit index right away.
  kLeaseBased,
};

struct ReadIndexStatus {
  raftpb::Message req;  // the MsgReadIndex; entries(0).data() is the context
  uint64_t index = 0;   // the leader's commit index when the request arrived
  std::map<uint64_t, bool> acks;
};

class ReadOnly {
 public:
  explicit ReadOnly(ReadOnlyOption option) : option_(option) {}

  ReadOnlyOption option() const { return option_; }
  // Queues request m (its context is m.entries(0).data()) at commit index.
  // A duplicate context is ignored.
  void AddRequest(uint64_t index, const raftpb::Message& m);
  // Records that `id` acknowledged the heartbeat with `ctx`; returns the acks
  // so far, or nullptr if ctx is unknown.
  const std::map<uint64_t, bool>* RecvAck(uint64_t id, const std::string& ctx);
  // Confirms the request with context ctx and every request queued before
  // it (a quorum that acknowledged the later heartbeat also vouches for the
  // earlier arrivals); removes and returns them, oldest first. Empty if ctx
  // is not pending.
  std::vector<ReadIndexStatus> Advance(const std::string& ctx);
  // The context that a plain heartbeat should carry: the newest pending
  // request's, so its acknowledgements also serve that request. "" if none.
  std::string LastPendingRequestCtx() const;
  size_t PendingCount() const { return queue_.size(); }

 private:
  ReadOnlyOption option_;
  std::map<std::string, ReadIndexStatus> pending_;
  std::deque<std::string> queue_;
};

}  // namespace etcdpp::raft
