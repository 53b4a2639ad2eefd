// SnapshotSender: one snapshot transfer (RaftPeer.Snapshot) on its own
// thread and connection. Internal to the transport module.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "raftpb/raft.pb.h"
#include "transport/transport.h"

namespace grpc {
class ClientContext;
}

namespace etcdpp::transport {

class SnapshotSender {
 public:
  // Starts the transfer of `msg` and the file to `address` (empty: fail at
  // once). done(ok) runs on the sender's thread, exactly once.
  SnapshotSender(uint64_t self_id, uint64_t cluster_id, std::string address, raftpb::Message msg,
                 std::string data_file_path, const TransportOptions& options,
                 std::function<void(bool ok)> done);
  // Cancels and joins.
  ~SnapshotSender();

  SnapshotSender(const SnapshotSender&) = delete;
  SnapshotSender& operator=(const SnapshotSender&) = delete;

  // Aborts the transfer (done(false)); does not wait.
  void Cancel();
  // True once done has returned; Join is then immediate.
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  void Join();

 private:
  bool Transfer();

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  const std::string address_;
  raftpb::Message msg_;  // Owned by the thread.
  const std::string path_;
  const PeerTlsOptions tls_;
  const size_t chunk_bytes_;
  const std::chrono::milliseconds base_timeout_;
  const uint64_t min_bytes_per_second_;
  const std::function<void(bool)> done_;

  std::mutex mu_;
  bool cancelled_ = false;              // Guarded by mu_.
  grpc::ClientContext* ctx_ = nullptr;  // Guarded by mu_: the call in flight.
  std::atomic<bool> finished_{false};

  std::thread thread_;  // Last member.
};

}  // namespace etcdpp::transport
