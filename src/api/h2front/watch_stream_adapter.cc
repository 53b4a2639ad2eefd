#include "api/h2front/watch_stream_adapter.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "api/call_gate.h"
#include "api/h2front/grpc_wire.h"

namespace etcdpp::api::h2front {

Result<std::unique_ptr<WatchStreamAdapter>> WatchStreamAdapter::Open(
    const WatchStreamDeps* member, LeaderMonitor* monitor, bool requires_leader,
    CallCredentials credentials, uint32_t max_receive_message_bytes, Hooks hooks) {
  // As WatchService::Watch: the learner and "hasleader" refusals first.
  Status st = CheckCall(*member->cluster, requires_leader, LearnerServes::kNo);
  if (!st.ok()) return st;
  std::unique_ptr<WatchStreamAdapter> stream(
      new WatchStreamAdapter(member, requires_leader ? monitor : nullptr, std::move(credentials),
                             max_receive_message_bytes, std::move(hooks)));
  stream->stream_.Start();
  return stream;
}

WatchStreamAdapter::WatchStreamAdapter(const WatchStreamDeps* member, LeaderMonitor* monitor,
                                       CallCredentials credentials, uint32_t max_receive,
                                       Hooks hooks)
    : member_(member),
      max_receive_(max_receive),
      hooks_(std::move(hooks)),
      // The loop completes writes as it sends them: no hand-off to the pump,
      // and a write takes what is queued, framed back to back.
      stream_(*member, monitor, std::move(credentials), this, std::numeric_limits<int>::max(),
              kWriteBatchBytes) {}

WatchStreamAdapter::~WatchStreamAdapter() {
  // Once it returns, no other thread calls the Writer methods.
  stream_.Detach();
}

void WatchStreamAdapter::Received(std::string_view data) {
  if (ended_) return;
  inbound_.append(data);
  TakeRequests();
}

void WatchStreamAdapter::TakeRequests() {
  while (!ended_ && !awaiting_writes_) {
    auto cut = CutMessage(inbound_, max_receive_);
    if (cut.result == MessageCut::Result::kIncomplete) return;
    if (auto refusal = RefusalOf(cut, max_receive_)) return Fail(*refusal);
    etcdserverpb::WatchRequest request;
    if (!request.ParseFromArray(cut.payload.data(), static_cast<int>(cut.payload.size()))) {
      // The gRPC reactor's words for a request it cannot parse.
      return Fail(grpc::Status(grpc::StatusCode::INTERNAL, "grpc: error unmarshalling request"));
    }
    if (stream_.WaitsForAnsweredWrites(request)) {
      // The loop must not block for a commit: the request waits here (and
      // every one behind it, so they stay in order) until the writes
      // answered so far are visible, then runs as if it had waited.
      awaiting_writes_ = true;
      member_->barrier->WaitAnsweredWrites([post = hooks_.post](const Status&) {
        post([](WatchStreamAdapter& s) { s.WritesVisible(); });
      });
      return;
    }
    inbound_.erase(0, cut.consumed);
    // Visible when asked just now, after the request arrived.
    stream_.Handle(request, WatchStream::AnsweredWrites::kVisible);
  }
}

void WatchStreamAdapter::Fail(const grpc::Status& status) {
  ended_ = true;
  inbound_.clear();
  hooks_.fail(status);
  // The WatchStream stops taking responses too (its EndCall finds the
  // stream ended and does nothing).
  stream_.End(status);
}

void WatchStreamAdapter::WritesVisible() {
  awaiting_writes_ = false;
  if (ended_) return;
  auto cut = CutMessage(inbound_, max_receive_);
  etcdserverpb::WatchRequest request;
  // The request was cut and parsed before the wait; it still is.
  if (cut.result == MessageCut::Result::kMessage &&
      request.ParseFromArray(cut.payload.data(), static_cast<int>(cut.payload.size()))) {
    inbound_.erase(0, cut.consumed);
    stream_.Handle(request, WatchStream::AnsweredWrites::kVisible);
  }
  TakeRequests();
}

void WatchStreamAdapter::Writable() {
  blocked_ = false;
  {
    // This is the flush: writes made during it need not post another.
    std::lock_guard<std::mutex> lock(out_mu_);
    flush_posted_ = true;
  }
  Flush();
}

char* WatchStreamAdapter::Stage(size_t size) {
  // After the messages staged for the same write, if any (Write empties it).
  const size_t start = staged_.size();
  const size_t end = start + kMessagePrefixBytes + size;
  // A write's batch at once, not grown by doubling through its messages
  // (staged_ comes back empty from each Write).
  if (staged_.capacity() < end) staged_.reserve(std::max(end, 2 * kWriteBatchBytes));
  staged_.resize(end);
  char* prefix = staged_.data() + start;
  WriteMessagePrefix(static_cast<uint32_t>(size), prefix);
  return prefix + kMessagePrefixBytes;
}

void WatchStreamAdapter::Write(bool /*more*/) {
  bool post = false;
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    outbox_.push_back(std::exchange(staged_, std::string()));
    write_pending_ = true;
    post = !flush_posted_;
    flush_posted_ = true;
  }
  // Inside Flush (the owner completing a write) the flush goes on by itself.
  if (post) hooks_.post([](WatchStreamAdapter& s) { s.Flush(); });
}

void WatchStreamAdapter::EndCall(const grpc::Status& status) {
  hooks_.post([status](WatchStreamAdapter& s) {
    if (!s.ended_) {
      s.ended_ = true;
      s.hooks_.finish(status);
    }
  });
}

void WatchStreamAdapter::Flush() {
  for (;;) {
    std::vector<std::string> batches;
    bool pending = false;
    {
      std::lock_guard<std::mutex> lock(out_mu_);
      batches.swap(outbox_);
      pending = write_pending_;
      if (batches.empty() && (!pending || blocked_ || ended_)) {
        // Nothing to do until the next Write (which posts again) or, for a
        // write held back, Writable.
        flush_posted_ = false;
        return;
      }
    }
    if (ended_) continue;  // failed: what the stream still writes is dropped
    for (std::string& batch : batches) {
      if (!hooks_.write(std::move(batch))) blocked_ = true;
    }
    if (pending && !blocked_) {
      {
        std::lock_guard<std::mutex> lock(out_mu_);
        write_pending_ = false;
      }
      // The write's bytes are the HTTP/2 stream's: it is complete. The
      // stream may stage and write its next messages from here; they land
      // in outbox_, and this loop takes them (Write posts nothing while
      // flush_posted_ is set).
      stream_.WriteDone(true);
    }
  }
}

}  // namespace etcdpp::api::h2front
