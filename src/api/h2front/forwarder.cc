#include "api/h2front/forwarder.h"

#include "base/tsan_handoff.h"

namespace etcdpp::api::h2front {
namespace {

Metadata CopyMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& from) {
  Metadata out;
  out.reserve(from.size());
  for (const auto& [name, value] : from) {
    out.emplace_back(std::string(name.data(), name.size()),
                     std::string(value.data(), value.size()));
  }
  return out;
}

}  // namespace

Forwarder::Forwarder(std::string method, ForwardSink sink, QueuedBytes* queued)
    : method_(std::move(method)), sink_(std::move(sink)), queued_gauge_(queued) {}

std::shared_ptr<Forwarder> Forwarder::Start(grpc::GenericStub* stub, std::string method,
                                            const Metadata& metadata,
                                            std::optional<std::chrono::nanoseconds> timeout,
                                            ForwardSink sink, QueuedBytes* queued) {
  auto forwarder = std::make_shared<Forwarder>(std::move(method), std::move(sink), queued);
  for (const auto& [name, value] : metadata) forwarder->context_.AddMetadata(name, value);
  if (timeout) {
    forwarder->context_.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(*timeout));
  }
  stub->PrepareBidiStreamingCall(&forwarder->context_, forwarder->method_, grpc::StubOptions(),
                                 forwarder.get());
  forwarder->self_ = forwarder;
  // One hold for the write side (until the client half-closes or the call
  // is over) and one for the read side (until a read fails): both are
  // driven from the loop thread, outside the reactions.
  forwarder->AddMultipleHolds(2);
  forwarder->read_outstanding_ = true;
  forwarder->StartRead(&forwarder->incoming_);
  // StartCall starts the call and the read queued before it: the reactor
  // goes to gRPC's threads (OnReadInitialMetadataDone, OnReadDone, and in
  // the end OnDone).
  tsan::HandingOff(&forwarder->incoming_);
  tsan::HandingOff(&forwarder->context_);
  tsan::HandingOff(forwarder.get());
  forwarder->StartCall();
  return forwarder;
}

// Each gRPC call below may hand the forwarder to a gRPC thread: the write
// to OnWriteDone (which takes back &outbox_, one write in flight at a
// time), the read to OnReadDone (&incoming_), and the end of the writes or
// a hold's removal to OnDone (this).
void Forwarder::Run(const Actions& actions) {
  if (actions.write != nullptr) {
    tsan::HandingOff(&outbox_);
    StartWrite(actions.write);
  }
  if (actions.writes_done) {
    tsan::HandingOff(this);
    StartWritesDone();
  }
  if (actions.start_read) {
    tsan::HandingOff(&incoming_);
    StartRead(&incoming_);
  }
  if (actions.drained) sink_(ForwardEvent{ForwardEvent::Kind::kDrained, {}, {}, {}});
  for (int i = 0; i < actions.remove_holds; ++i) {
    tsan::HandingOff(this);
    RemoveHold();
  }
}

void Forwarder::CountQueued(int64_t delta) {
  queued_bytes_ = static_cast<size_t>(static_cast<int64_t>(queued_bytes_) + delta);
  if (queued_gauge_ != nullptr) queued_gauge_->Add(delta);
}

void Forwarder::DropQueued(size_t keep) {
  size_t dropped = 0;
  while (outbox_.size() > keep) {
    dropped += outbox_.back().Length();
    outbox_.pop_back();
  }
  CountQueued(-static_cast<int64_t>(dropped));
}

void Forwarder::Dequeued(size_t bytes, Actions* actions) {
  CountQueued(-static_cast<int64_t>(bytes));
  if (drain_mark_ && queued_bytes_ <= *drain_mark_) {
    drain_mark_.reset();
    actions->drained = true;
  }
}

void Forwarder::CloseWritesIfIdle(Actions* actions) {
  if (!write_hold_ || writing_ || !(half_closed_ || writes_over_)) return;
  if (half_closed_ && !writes_over_) actions->writes_done = true;
  write_hold_ = false;
  ++actions->remove_holds;
}

size_t Forwarder::Send(std::string message) {
  Actions actions;
  size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writes_over_ || half_closed_ || !write_hold_) return queued_bytes_;
    const size_t size = message.size();
    grpc::Slice slice(message);
    outbox_.emplace_back(&slice, 1);
    CountQueued(static_cast<int64_t>(size));
    queued = queued_bytes_;
    if (!writing_) {
      writing_ = true;
      actions.write = &outbox_.front();
    }
  }
  Run(actions);
  return queued;
}

void Forwarder::NotifyWhenQueuedAtMost(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_bytes_ > bytes) {
      drain_mark_ = bytes;
      return;
    }
    drain_mark_.reset();
  }
  sink_(ForwardEvent{ForwardEvent::Kind::kDrained, {}, {}, {}});
}

size_t Forwarder::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_bytes_;
}

void Forwarder::HalfClose() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    half_closed_ = true;
    CloseWritesIfIdle(&actions);
  }
  Run(actions);
}

void Forwarder::ReadMore() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!read_hold_ || read_outstanding_ || cancelled_) return;
    read_outstanding_ = true;
    actions.start_read = true;
  }
  Run(actions);
}

void Forwarder::Cancel() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    writes_over_ = true;
    // The write in flight (if any) stays at the front until it completes.
    DropQueued(writing_ ? 1u : 0u);
    if (read_hold_ && !read_outstanding_) {
      read_hold_ = false;
      ++actions.remove_holds;
    }
    CloseWritesIfIdle(&actions);
  }
  // The cancellation ends the call: OnDone may follow on a gRPC thread.
  tsan::HandingOff(this);
  context_.TryCancel();
  Run(actions);
}

void Forwarder::ReportHeaders() {
  if (headers_reported_) return;
  headers_reported_ = true;
  sink_(ForwardEvent{
      ForwardEvent::Kind::kHeaders, CopyMetadata(context_.GetServerInitialMetadata()), {}, {}});
}

void Forwarder::OnReadInitialMetadataDone(bool ok) {
  tsan::Reaction reaction(&context_, this);
  if (!ok) return;
  std::lock_guard<std::mutex> lock(report_mu_);
  ReportHeaders();
}

void Forwarder::OnReadDone(bool ok) {
  tsan::Reaction reaction(&incoming_, this);
  const std::shared_ptr<Forwarder> keep = self_;
  Actions actions;
  bool deliver = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_outstanding_ = false;
    deliver = ok && !cancelled_;
    if (!deliver && read_hold_) {
      read_hold_ = false;
      ++actions.remove_holds;
    }
    if (!ok) {
      // The server has finished: whatever the client still sends is moot.
      writes_over_ = true;
      CloseWritesIfIdle(&actions);
    }
  }
  if (deliver) {
    std::vector<grpc::Slice> slices;
    std::string message;
    if (incoming_.Dump(&slices).ok()) {
      size_t size = 0;
      for (const grpc::Slice& s : slices) size += s.size();
      message.reserve(size);
      for (const grpc::Slice& s : slices) {
        message.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    incoming_.Clear();
    // A message came, so the initial metadata has (gRPC promises it), even
    // if its reaction has not run yet: the headers go first.
    std::lock_guard<std::mutex> lock(report_mu_);
    ReportHeaders();
    sink_(ForwardEvent{ForwardEvent::Kind::kMessage, {}, std::move(message), {}});
  }
  Run(actions);
}

void Forwarder::OnWriteDone(bool ok) {
  tsan::Reaction reaction(&outbox_, this);
  const std::shared_ptr<Forwarder> keep = self_;
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t written = outbox_.front().Length();
    outbox_.pop_front();
    writing_ = false;
    Dequeued(written, &actions);
    if (!ok) writes_over_ = true;
    // Nothing more is written once the write side is over.
    if (writes_over_) DropQueued(0);
    if (!writes_over_ && !outbox_.empty()) {
      writing_ = true;
      actions.write = &outbox_.front();
    } else {
      CloseWritesIfIdle(&actions);
    }
  }
  Run(actions);
}

void Forwarder::OnDone(const grpc::Status& status) {
  tsan::TookBack(this);
  {
    std::lock_guard<std::mutex> lock(mu_);
    DropQueued(0);
  }
  sink_(ForwardEvent{ForwardEvent::Kind::kFinished,
                     CopyMetadata(context_.GetServerTrailingMetadata()),
                     {},
                     status});
  // The last reference may be the loop's; if not, this frees the forwarder.
  std::shared_ptr<Forwarder> last = std::move(self_);
}

}  // namespace etcdpp::api::h2front
