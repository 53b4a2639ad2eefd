#include "transport/peer_sender.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/coding.h"
#include "transport/batch_stream.h"
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

size_t ApproximateSize(const std::vector<raftpb::Message>& messages) {
  size_t n = 0;
  for (const raftpb::Message& m : messages) n += ApproximateSize(m);
  return n;
}

// A peer that accepts no connection by then is tried again after a backoff.
constexpr auto kConnectTimeout = std::chrono::seconds(5);
// A peer that does not answer a batch stream's hello by then is hung.
constexpr auto kHandshakeTimeout = std::chrono::milliseconds(10'000);

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
      thread_([this] {
        pthread_setname_np(pthread_self(), "peer-sender");
        Run();
      }) {}

PeerSender::~PeerSender() {
  Stop();
  Join();
}

size_t PeerSender::Enqueue(std::vector<raftpb::Message>& messages) {
  size_t dropped = 0;
  int write_to = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // An idle batch stream: the messages go straight from the caller's
    // vector into a frame, without the queue.
    if (inline_writes_ && !writing_ && unsent_.empty() && queue_.empty() && !stopping_ &&
        !messages.empty() && ApproximateSize(messages) <= options_.max_batch_bytes) {
      writing_ = true;
      write_to = fd_;
    } else {
      for (auto& m : messages) {
        if (stopping_ || queue_.size() >= options_.max_queued_messages) {
          ++dropped;
          continue;
        }
        queue_.push_back(std::move(m));
      }
    }
  }
  if (write_to >= 0) WriteInline(write_to, messages);
  // The thread, if it waits: for what the inline write left or failed on,
  // or (no inline write) for the queue. Without waiters this costs no
  // system call.
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
    CancelStreamLocked();
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
    CancelStreamLocked();
  }
  cv_.notify_one();
}

void PeerSender::CancelStreamLocked() {
  if (ctx_ != nullptr) ctx_->TryCancel();
  // The sender thread closes it; a blocked write or read fails at once.
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
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
  // Set when the peer answered a batch stream's hello as a member without
  // one does: the next stream to it goes over gRPC (and the one after that
  // tries the batch stream again, so an upgraded peer gets it back).
  bool next_over_grpc = false;
  for (;;) {
    std::string address;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !addresses_.empty(); });
      if (stopping_) return;
      address = addresses_[next_address_ % addresses_.size()];
      reconnect_requested_ = false;
    }
    const bool over_grpc = !options_.batch_stream || options_.tls.enabled() || next_over_grpc;
    next_over_grpc = false;
    const StreamEnd end = over_grpc ? StreamOverGrpc(address) : StreamOverTcp(address);
    if (end.peer_lacks_batch_stream) {
      spdlog::info("transport: peer {:x} at {} does not serve the batch stream; using gRPC",
                   peer_id_, address);
      next_over_grpc = true;
      continue;  // nothing was sent: no loss, no backoff
    }
    if (end.established) {
      backoff = options_.min_backoff;
      failure_logged = false;
    }
    // The peer knows us as removed (see Transport::CheckInbound): we may
    // never learn it from Raft, whose leader no longer sends to us.
    if (end.refusal.find(RemovedMemberMessage(self_id_)) != std::string::npos && on_self_removed_) {
      on_self_removed_();
    }

    size_t lost = end.lost;
    bool report = lost > 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      active_since_.reset();
      if (stopping_) return;
      const bool requested = reconnect_requested_;
      if (!requested) {
        // A real failure: drop what waits (stale by the time we reconnect)
        // and try the next address after a backoff.
        report = report || !queue_.empty() || !end.established;
        lost += queue_.size();
        CountDropped(queue_.size());
        queue_.clear();
        ++next_address_;
        if (!failure_logged) {
          if (end.established) {
            spdlog::warn("transport: stream to peer {:x} at {} broke", peer_id_, address);
          } else {
            spdlog::warn("transport: cannot open stream to peer {:x} at {}: {} (will retry)",
                         peer_id_, address, end.refusal.empty() ? "unreachable" : end.refusal);
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

PeerSender::StreamEnd PeerSender::StreamOverGrpc(const std::string& address) {
  StreamEnd end;
  // Declared before the writer so it outlives it.
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || reconnect_requested_) return end;
    ctx_ = &ctx;
  }
  AddHandshake(&ctx, Handshake{cluster_id_, self_id_, peer_id_});
  auto stub = transportpb::RaftPeer::NewStub(NewPeerChannel(address, options_.tls));
  transportpb::StreamAck ack;
  auto writer = stub->Stream(&ctx, &ack);
  // Returns when the peer accepts (initial metadata) or the call fails;
  // Stop and UpdateAddresses cancel it.
  writer->WaitForInitialMetadata();
  end.established = WasAccepted(ctx);
  if (end.established) {
    MarkEstablished(address, "gRPC stream");
    end.lost =
        StreamBatches([&](const transportpb::MessageBatch& batch) { return writer->Write(batch); });
  }
  // Ends an established call whatever state it is in; Finish then returns.
  // A call that was never accepted has ended already (the receiver
  // answered with its status, or Stop/UpdateAddresses cancelled it), and
  // cancelling it here would hide the receiver's reason.
  if (end.established) ctx.TryCancel();
  grpc::Status status = writer->Finish();
  // Why it never opened, or why the peer ended it (a removal, say).
  if (!end.established || status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    end.refusal = status.error_message();
  }
  std::lock_guard<std::mutex> lock(mu_);
  ctx_ = nullptr;
  return end;
}

int PeerSender::Connect(const std::string& address) {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) return -1;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &results) != 0) return -1;
  int connected = -1;
  for (addrinfo* ai = results; ai != nullptr && connected < 0; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    bool ok = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
      // Waits in slices, so Stop and UpdateAddresses need not interrupt it.
      const auto deadline = std::chrono::steady_clock::now() + kConnectTimeout;
      while (!ok && std::chrono::steady_clock::now() < deadline) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_ || reconnect_requested_) break;
        }
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int error = 0;
        socklen_t len = sizeof error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error != 0) break;
        ok = true;
      }
    }
    if (!ok) {
      ::close(fd);
      continue;
    }
    // Blocking from here: the sender thread writes, Stop shuts the socket down.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    EnableKeepalive(fd);
    connected = fd;
  }
  ::freeaddrinfo(results);
  return connected;
}

PeerSender::StreamEnd PeerSender::StreamOverTcp(const std::string& address) {
  StreamEnd end;
  const int fd = Connect(address);
  if (fd < 0) return end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || reconnect_requested_) {
      ::close(fd);
      return end;
    }
    fd_ = fd;
  }
  const std::string hello = EncodeHello(Handshake{cluster_id_, self_id_, peer_id_});
  char reply = 0;
  ssize_t got = -1;
  if (WriteAll(fd, hello.data(), hello.size()).ok()) {
    SetReceiveTimeout(fd, kHandshakeTimeout);
    do {
      got = ::recv(fd, &reply, 1, 0);
    } while (got < 0 && errno == EINTR);
    // A member without the batch stream is gRPC's server alone, which
    // speaks first: its HTTP/2 SETTINGS frame, whose first byte is 0. An
    // end of stream or a reset is a member going away, not an answer.
    end.peer_lacks_batch_stream = got == 1 && reply != kAccepted && reply != kRefused;
  }
  if (got == 1 && reply == kRefused) {
    char length[4];
    if (ReadFull(fd, length, sizeof length).ok()) {
      std::string reason(std::min(GetBE32(length), kMaxReasonBytes), '\0');
      if (ReadFull(fd, reason.data(), reason.size()).ok()) end.refusal = std::move(reason);
    }
    if (end.refusal.empty()) end.refusal = "refused";
  }
  if (got == 1 && reply == kAccepted) {
    end.established = true;
    MarkEstablished(address, "batch stream");
    end.lost = StreamFrames(fd);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd_ = -1;
  }
  ::close(fd);
  return end;
}

void PeerSender::MarkEstablished(const std::string& address, const char* kind) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_since_ = std::chrono::steady_clock::now();
  }
  spdlog::info("transport: {} to peer {:x} at {} established", kind, peer_id_, address);
}

void PeerSender::TakeBatchLocked(std::vector<raftpb::Message>* batch) {
  batch->clear();
  size_t bytes = 0;
  while (!queue_.empty() && (batch->empty() || bytes < options_.max_batch_bytes)) {
    bytes += ApproximateSize(queue_.front());
    // Same arena (none): the move is a swap, entries are not copied.
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

size_t PeerSender::StreamBatches(
    const std::function<bool(const transportpb::MessageBatch&)>& write) {
  std::vector<raftpb::Message> taken;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || reconnect_requested_ || !queue_.empty(); });
      if (stopping_ || reconnect_requested_) return 0;
      TakeBatchLocked(&taken);
    }
    transportpb::MessageBatch batch;
    batch.set_from(self_id_);
    batch.set_cluster_id(cluster_id_);
    for (raftpb::Message& m : taken) *batch.add_messages() = std::move(m);
    if (!write(batch)) {
      CountDropped(batch.messages_size());
      return batch.messages_size();
    }
  }
}

size_t PeerSender::StreamFrames(int fd) {
  std::unique_lock<std::mutex> lock(mu_);
  inline_writes_ = true;
  std::string frame;
  std::vector<raftpb::Message> batch;
  for (;;) {
    cv_.wait(lock, [&] {
      return stopping_ || reconnect_requested_ || inline_failed_ ||
             (!writing_ && (!unsent_.empty() || !queue_.empty()));
    });
    if (stopping_ || reconnect_requested_ || inline_failed_) return EndInlineWritesLocked(lock);
    writing_ = true;
    std::string tail = std::move(unsent_);
    const size_t tail_messages = unsent_messages_;
    unsent_.clear();
    unsent_messages_ = 0;
    TakeBatchLocked(&batch);
    lock.unlock();
    bool ok = tail.empty() || WriteAll(fd, tail.data(), tail.size()).ok();
    if (ok && !batch.empty()) {
      EncodeFrame(self_id_, cluster_id_, batch, &frame);
      ok = WriteAll(fd, frame.data(), frame.size()).ok();
    }
    lock.lock();
    writing_ = false;
    if (!ok) {
      const size_t lost = tail_messages + batch.size();
      CountDropped(lost);
      return lost + EndInlineWritesLocked(lock);
    }
  }
}

size_t PeerSender::EndInlineWritesLocked(std::unique_lock<std::mutex>& lock) {
  inline_writes_ = false;
  cv_.wait(lock, [&] { return !writing_; });
  // A tail left on a stream that ends is lost with it.
  CountDropped(unsent_messages_);
  const size_t lost = inline_lost_ + unsent_messages_;
  unsent_.clear();
  unsent_messages_ = 0;
  inline_failed_ = false;
  inline_lost_ = 0;
  return lost;
}

void PeerSender::WriteInline(int fd, const std::vector<raftpb::Message>& messages) {
  // Owned by the writer (writing_), kept between writes: a frame's buffer
  // is not allocated, and its pages faulted in, again for each batch.
  std::string& frame = inline_frame_;
  EncodeFrame(self_id_, cluster_id_, messages, &frame);
  size_t sent = 0;
  bool failed = false;
  while (sent < frame.size()) {
    const ssize_t n =
        ::send(fd, frame.data() + sent, frame.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      failed = errno != EAGAIN && errno != EWOULDBLOCK;
      break;
    }
  }
  const size_t count = messages.size();
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (failed) {
    // The thread ends the stream: notified by Enqueue.
    inline_failed_ = true;
    inline_lost_ += count;
    CountDropped(count);
  } else if (sent < frame.size()) {
    unsent_.assign(frame, sent);
    unsent_messages_ = count;
  }
}

}  // namespace etcdpp::transport
