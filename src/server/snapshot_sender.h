// SnapshotSender: sends the store to followers that fell too far behind for
// the log. A fixed pool of threads copies the store to a file and hands it
// to the transport, which streams it; the raft loop only queues the
// MsgSnap, so a large store never holds up heartbeats.
//
// The data sent is the store as applied when the copy is made, which is at
// or past the snapshot's index: the receiver skips the entries its store
// already holds by their consistent index (etcd sends its backend the same
// way).
//
// Threads: Send from the raft loop; the pool's own threads do the work. mu_
// guards the queue. Stop joins every thread; jobs still queued then are
// reported failed. Raft sends at most one snapshot per follower at a time,
// so the queue is bounded by the number of peers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "raftpb/raft.pb.h"

namespace etcdpp {
class Env;
}
namespace etcdpp::transport {
class PeerNetwork;
}

namespace etcdpp::server {

class StoreSlot;

class SnapshotSender {
 public:
  // `report(to, failed)` tells the raft loop how a send ended; called on a
  // pool or transport thread.
  SnapshotSender(Env* env, std::string dir, StoreSlot* store, transport::PeerNetwork* transport,
                 int threads, std::function<void(uint64_t to, bool failed)> report);
  ~SnapshotSender();
  SnapshotSender(const SnapshotSender&) = delete;
  SnapshotSender& operator=(const SnapshotSender&) = delete;

  void Send(raftpb::Message message);
  void Stop();

 private:
  void Work();
  void SendOne(raftpb::Message message);

  Env* const env_;
  const std::string dir_;
  StoreSlot* const store_;
  transport::PeerNetwork* const transport_;
  const std::function<void(uint64_t, bool)> report_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raftpb::Message> queue_;  // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace etcdpp::server
