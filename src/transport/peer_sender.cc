#include "transport/peer_sender.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "transport/wire.h"

namespace etcdpp::transport {
namespace {

// What a message adds to a batch, roughly: the payload bytes plus a fixed
// allowance for the header fields. Cheap (no serialization).
size_t ApproximateSize(const raftpb::Message& m) {
  size_t n = 64 + m.context().size() + m.snapshot().data().size();
  for (const auto& e : m.entries()) n += 16 + e.data().size();
  return n;
}

}  // namespace

PeerSender::PeerSender(uint64_t self_id, uint64_t cluster_id, uint64_t peer_id,
                       std::vector<std::string> addresses, const TransportOptions& options,
                       std::shared_ptr<std::atomic<uint64_t>> dropped,
                       std::function<void(uint64_t)> on_unreachable,
                       std::function<void()> on_self_removed)
    : self_id_(self_id),
      cluster_id_(cluster_id),
      peer_id_(peer_id),
      options_(options),
      dropped_(std::move(dropped)),
      on_unreachable_(std::move(on_unreachable)),
      on_self_removed_(std::move(on_self_removed)),
      addresses_(std::move(addresses)),
      thread_([this] { Run(); }) {}

PeerSender::~PeerSender() {
  Stop();
  Join();
}

size_t PeerSender::Enqueue(std::vector<raftpb::Message>& messages) {
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& m : messages) {
      if (stopping_ || queue_.size() >= options_.max_queued_messages) {
        ++dropped;
        continue;
      }
      queue_.push_back(std::move(m));
    }
  }
  cv_.notify_one();
  if (dropped > 0) CountDropped(dropped);
  return dropped;
}

void PeerSender::UpdateAddresses(std::vector<std::string> addresses) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    addresses_ = std::move(addresses);
    next_address_ = 0;
    reconnect_requested_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  cv_.notify_one();
}

std::string PeerSender::CurrentAddress() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (addresses_.empty()) return {};
  return addresses_[next_address_ % addresses_.size()];
}

void PeerSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  cv_.notify_one();
}

void PeerSender::Join() {
  if (thread_.joinable()) thread_.join();
}

std::optional<std::chrono::steady_clock::time_point> PeerSender::ActiveSince() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_since_;
}

void PeerSender::Run() {
  std::chrono::milliseconds backoff = options_.min_backoff;
  bool failure_logged = false;
  for (;;) {
    std::string address;
    // Declared before the writer so it outlives it.
    grpc::ClientContext ctx;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !addresses_.empty(); });
      if (stopping_) return;
      address = addresses_[next_address_ % addresses_.size()];
      reconnect_requested_ = false;
      ctx_ = &ctx;
    }
    AddHandshake(&ctx, Handshake{cluster_id_, self_id_, peer_id_});
    auto stub = transportpb::RaftPeer::NewStub(NewPeerChannel(address, options_.tls));
    transportpb::StreamAck ack;
    auto writer = stub->Stream(&ctx, &ack);
    // Returns when the peer accepts (initial metadata) or the call fails;
    // Stop and UpdateAddresses cancel it.
    writer->WaitForInitialMetadata();
    size_t lost = 0;
    const bool established = WasAccepted(ctx);
    if (established) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_since_ = std::chrono::steady_clock::now();
      }
      spdlog::info("transport: stream to peer {:x} at {} established", peer_id_, address);
      backoff = options_.min_backoff;
      failure_logged = false;
      lost = StreamBatches(writer.get());
    }
    // Ends an established call whatever state it is in; Finish then returns.
    // A call that was never accepted has ended already (the receiver
    // answered with its status, or Stop/UpdateAddresses cancelled it), and
    // cancelling it here would hide the receiver's reason.
    if (established) ctx.TryCancel();
    grpc::Status status = writer->Finish();
    // The peer knows us as removed (see Transport::CheckInbound): we may
    // never learn it from Raft, whose leader no longer sends to us.
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        status.error_message().find(RemovedMemberMessage(self_id_)) != std::string::npos &&
        on_self_removed_) {
      on_self_removed_();
    }

    bool report = lost > 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ctx_ = nullptr;
      active_since_.reset();
      if (stopping_) return;
      const bool requested = reconnect_requested_;
      if (!requested) {
        // A real failure: drop what waits (stale by the time we reconnect)
        // and try the next address after a backoff.
        report = report || !queue_.empty() || !established;
        lost += queue_.size();
        CountDropped(queue_.size());
        queue_.clear();
        ++next_address_;
        if (!failure_logged) {
          if (established) {
            spdlog::warn("transport: stream to peer {:x} at {} broke", peer_id_, address);
          } else {
            spdlog::warn("transport: cannot open stream to peer {:x} at {}: {} (will retry)",
                         peer_id_, address, status.error_message());
          }
          failure_logged = true;
        }
        cv_.wait_for(lock, backoff, [&] { return stopping_ || reconnect_requested_; });
        backoff = std::min(backoff * 2, options_.max_backoff);
        if (stopping_) return;
      }
    }
    if (report) on_unreachable_(peer_id_);
  }
}

size_t PeerSender::StreamBatches(grpc::ClientWriter<transportpb::MessageBatch>* writer) {
  for (;;) {
    transportpb::MessageBatch batch;
    batch.set_from(self_id_);
    batch.set_cluster_id(cluster_id_);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || reconnect_requested_ || !queue_.empty(); });
      if (stopping_ || reconnect_requested_) return 0;
      // Everything queued, up to max_batch_bytes (at least one message).
      size_t bytes = 0;
      while (!queue_.empty() && (batch.messages_size() == 0 || bytes < options_.max_batch_bytes)) {
        bytes += ApproximateSize(queue_.front());
        // Same arena (none): the move is a swap, entries are not copied.
        *batch.add_messages() = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (!writer->Write(batch)) {
      CountDropped(batch.messages_size());
      return batch.messages_size();
    }
  }
}

}  // namespace etcdpp::transport
