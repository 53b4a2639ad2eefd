// PeerSender: the outgoing half of the transport for one peer. Internal to
// the transport module; see transport.h for the contract it implements.
//
// Invariants:
//  - One thread (thread_) owns the stream (a batch stream, or gRPC's): it
//    connects, writes and reconnects. Other threads only touch queue_,
//    addresses_ and the flags, under mu_, and may end the current stream
//    through ctx_ or fd_ (under mu_; the thread alone closes fd_).
//  - queue_ never holds more than max_queued_messages messages.
//  - When a stream fails, everything queued at that moment is dropped
//    (counted) and the peer reported unreachable: Raft retransmits, and
//    stale messages delivered late are worthless.
//  - On a batch stream, Enqueue's caller (the Raft loop) writes a frame
//    itself when no thread is writing and nothing is left unsent, without
//    blocking: a frame the socket cannot take whole leaves its tail in
//    unsent_ for the thread, which writes it before anything else. So the
//    common case, an idle stream and a socket with room, costs no wake-up
//    of the thread, and frames stay in queue order: one writer at a time
//    (writing_), and the thread closes fd_ only once writing_ is false.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "raftpb/raft.pb.h"
#include "transport/transport.h"
#include "transportpb/transport.grpc.pb.h"

namespace etcdpp::transport {

class PeerSender {
 public:
  // on_unreachable(peer_id) is called from the sender thread, with no lock
  // of this class held, whenever messages to the peer were lost;
  // on_self_removed() likewise when the peer refuses us as a removed member.
  PeerSender(uint64_t self_id, uint64_t cluster_id, uint64_t peer_id,
             std::vector<std::string> addresses, const TransportOptions& options,
             std::shared_ptr<std::atomic<uint64_t>> dropped,
             std::function<void(uint64_t)> on_unreachable,
             std::function<void()> on_self_removed = {});
  // Stops and joins.
  ~PeerSender();

  PeerSender(const PeerSender&) = delete;
  PeerSender& operator=(const PeerSender&) = delete;

  // Takes every message: written at once on an idle batch stream, else
  // moved into the queue (`messages` is left unspecified). Returns how many
  // were dropped because the queue was full (or the sender is stopping).
  // Never blocks on I/O.
  size_t Enqueue(std::vector<raftpb::Message>& messages);

  // Replaces the addresses and reopens the stream on the first of them.
  void UpdateAddresses(std::vector<std::string> addresses);
  // The address the sender uses (or will try next); empty if none.
  std::string CurrentAddress() const;

  // Asks the thread to exit and cancels the call in flight. Does not wait.
  void Stop();
  // Waits for the thread to exit. Call after Stop.
  void Join();

  std::optional<std::chrono::steady_clock::time_point> ActiveSince() const;

 private:
  // How one stream ended.
  struct StreamEnd {
    bool established = false;  // the peer accepted it
    size_t lost = 0;           // messages lost in a failed write
    // Why the peer refused or ended it, when it said so.
    std::string refusal;
    // The peer answered a batch stream's hello as a member without it does.
    bool peer_lacks_batch_stream = false;
  };

  void Run();
  StreamEnd StreamOverGrpc(const std::string& address);
  StreamEnd StreamOverTcp(const std::string& address);
  // A connected blocking socket to `address`, or -1 (also when a stop or
  // reconnect is requested meanwhile).
  int Connect(const std::string& address);
  void MarkEstablished(const std::string& address, const char* kind);
  // Writes batches until a write fails or a stop/reconnect is requested.
  // Returns the number of messages lost in a failed write.
  size_t StreamBatches(const std::function<bool(const transportpb::MessageBatch&)>& write);
  // StreamBatches for the batch stream on `fd`, sharing the writing with
  // Enqueue's callers. Returns with no write in flight and inline writes
  // off.
  size_t StreamFrames(int fd);
  // Writes `messages` as one frame to `fd` without blocking, on Enqueue's
  // caller's thread; requires writing_ set by the caller, clears it.
  void WriteInline(int fd, const std::vector<raftpb::Message>& messages);
  // Moves up to max_batch_bytes of queue_ (at least one message, if any)
  // into `batch`, replacing what it held. Requires mu_.
  void TakeBatchLocked(std::vector<raftpb::Message>* batch);
  // Ends inline writes and waits for one in flight; returns the messages
  // they lost (a failed write, a tail never finished). Requires mu_.
  size_t EndInlineWritesLocked(std::unique_lock<std::mutex>& lock);
  // Makes the stream in flight, if any, end at once. Requires mu_.
  void CancelStreamLocked();
  void CountDropped(size_t n) { dropped_->fetch_add(n, std::memory_order_relaxed); }

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  const uint64_t peer_id_;
  const TransportOptions options_;
  const std::shared_ptr<std::atomic<uint64_t>> dropped_;
  const std::function<void(uint64_t)> on_unreachable_;
  const std::function<void()> on_self_removed_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raftpb::Message> queue_;   // Guarded by mu_.
  std::vector<std::string> addresses_;  // Guarded by mu_.
  size_t next_address_ = 0;             // Guarded by mu_.
  bool stopping_ = false;               // Guarded by mu_.
  bool reconnect_requested_ = false;    // Guarded by mu_.
  grpc::ClientContext* ctx_ = nullptr;  // Guarded by mu_; the call in flight.
  int fd_ = -1;                         // Guarded by mu_; the batch stream's socket.
  // The batch stream's shared writing, guarded by mu_: whether Enqueue may
  // write to fd_; whether a thread writes to it now; the tail of a frame
  // an inline write left, and how many messages it carries; whether an
  // inline write failed, and the messages it lost.
  bool inline_writes_ = false;
  bool writing_ = false;
  std::string unsent_;
  size_t unsent_messages_ = 0;
  bool inline_failed_ = false;
  size_t inline_lost_ = 0;
  // The inline writer's frame; used by whoever set writing_ from Enqueue.
  std::string inline_frame_;
  std::optional<std::chrono::steady_clock::time_point> active_since_;  // Guarded by mu_.

  std::thread thread_;  // Last member: starts after everything above exists.
};

}  // namespace etcdpp::transport
