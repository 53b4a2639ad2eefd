// ReadOnly: the leader's queue of pending ReadIndex requests (Raft thesis
// 6.4). In kSafe mode a request at commit index i is answered once a
// majority of voters acknowledged a heartbeat sent after it was queued
// (proving the leader was still leader when the request arrived); answering
// one request also answers every request queued before it.
//
// Heartbeats carry a key the leader gives each queued request, not the
// request's own context: a follower asks again for a read whose answer is
// still on its way, so the same context can be queued a second time after
// it was answered, and an acknowledgement of a heartbeat sent for the first
// request, arriving late (a member paused, a slow link), would then
// confirm the second one and every read queued before it, though all of
// them came after that heartbeat. Keys are never reused by one ReadOnly,
// across Clear() too.
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

// A read's context as a number, for logs: its first eight bytes, big-endian
// (the server's contexts are exactly eight, a counter).
uint64_t ContextTag(const std::string& ctx);

struct ReadIndexStatus {
  raftpb::Message req;  // the MsgReadIndex; entries(0).data() is the context
  uint64_t index = 0;   // the leader's commit index when the request arrived
  std::map<uint64_t, bool> acks;
};

class ReadOnly {
 public:
  explicit ReadOnly(ReadOnlyOption option) : option_(option) {}

  ReadOnlyOption option() const { return option_; }
  // Queues request m (its context is m.entries(0).data()) at commit index
  // and returns the key its heartbeats carry. A context already pending is
  // not queued again; its key is returned.
  std::string AddRequest(uint64_t index, const raftpb::Message& m);
  // Records that `id` acknowledged the heartbeat with `key`; returns the
  // acks so far, or nullptr if key is not pending.
  const std::map<uint64_t, bool>* RecvAck(uint64_t id, const std::string& key);
  // Confirms the request with `key` and every request queued before it (a
  // quorum that acknowledged the later heartbeat also vouches for the
  // earlier arrivals); removes and returns them, oldest first. Empty if key
  // is not pending.
  std::vector<ReadIndexStatus> Advance(const std::string& key);
  // The key that a plain heartbeat should carry: the newest pending
  // request's, so its acknowledgements also serve that request. "" if none.
  std::string LastPendingKey() const;
  size_t PendingCount() const { return queue_.size(); }
  // Drops every pending request (the leader stepped down); keys go on
  // from where they were.
  void Clear();

 private:
  ReadOnlyOption option_;
  uint64_t last_key_ = 0;
  std::map<std::string, ReadIndexStatus> pending_;  // by key
  std::map<std::string, std::string> key_of_;       // request context -> key, pending only
  std::deque<std::string> queue_;                   // keys, oldest first
};

}  // namespace etcdpp::raft
