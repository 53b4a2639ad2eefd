#include "http/gateway.h"

namespace etcdpp::http {

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

Gateway::Gateway(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(channel_) {}

Gateway::~Gateway() { WaitIdle(); }

void Gateway::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return calls_ == 0; });
}

void Gateway::CancelStreams() {
  std::lock_guard<std::mutex> lock(mu_);
  for (GatewayStream* stream : streams_) stream->Abandon();
}

void Gateway::AddStream(GatewayStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.insert(stream);
  ++calls_;
}

void Gateway::ForgetStream(GatewayStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream);
}

void Gateway::CallStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
}

void Gateway::CallEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--calls_ == 0) idle_.notify_all();
}

void Gateway::CallUnary(const Route& route, std::string request, Metadata metadata,
                        std::function<void(grpc::Status, std::string)> done) {
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer reply;
  };
  auto* call = new Call();
  call->request = ToByteBuffer(request);
  for (auto& [key, value] : metadata) call->context.AddMetadata(key, value);
  CallStarted();
  stub_.UnaryCall(&call->context, route.grpc_method, grpc::StubOptions(), &call->request,
                  &call->reply, [this, call, done = std::move(done)](grpc::Status status) mutable {
                    {
                      // Destroyed before CallEnded(): what it holds (an HTTP
                      // session) must be gone before the gateway may be.
                      auto on_done = std::move(done);
                      std::string reply;
                      if (status.ok()) reply = FromByteBuffer(call->reply);
                      delete call;
                      on_done(std::move(status), std::move(reply));
                    }
                    CallEnded();
                  });
}

GatewayStream::GatewayStream(Gateway* gateway, const Route& route,
                             std::vector<std::pair<std::string, std::string>> metadata,
                             std::shared_ptr<StreamSink> sink)
    : gateway_(gateway), sink_(std::move(sink)) {
  for (auto& [key, value] : metadata) context_.AddMetadata(key, value);
  gateway_->AddStream(this);
  gateway_->stub().PrepareBidiStreamingCall(&context_, route.grpc_method, grpc::StubOptions(),
                                            this);
}

GatewayStream::~GatewayStream() = default;

void GatewayStream::Start() {
  // The write hold: writes start from the HTTP side, outside any reaction,
  // so OnDone must wait until the last one is issued (or writing is over).
  AddHold();
  StartRead(&reply_);
  StartCall();
}

void GatewayStream::Send(std::string serialized) {
  std::lock_guard<std::mutex> lock(mu_);
  if (writes_finished_ || close_send_) return;
  outgoing_.push_back(ToByteBuffer(serialized));
  WriteNextLocked();
}

void GatewayStream::CloseSend() {
  std::lock_guard<std::mutex> lock(mu_);
  if (close_send_) return;
  close_send_ = true;
  WriteNextLocked();
}

void GatewayStream::ReleaseWriteHoldLocked() {
  if (!write_hold_) return;
  write_hold_ = false;
  RemoveHold();
}

void GatewayStream::WriteNextLocked() {
  if (writing_ || writes_finished_) return;
  if (!outgoing_.empty()) {
    writing_ = true;
    writing_buffer_ = std::move(outgoing_.front());
    outgoing_.pop_front();
    StartWrite(&writing_buffer_);
    return;
  }
  if (close_send_) {
    writes_finished_ = true;
    StartWritesDone();
    ReleaseWriteHoldLocked();
  }
}

void GatewayStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok || writes_finished_) {
    // The call is over (cancelled or ended by the server): drop the rest.
    writes_finished_ = true;
    outgoing_.clear();
    ReleaseWriteHoldLocked();
    return;
  }
  WriteNextLocked();
}

void GatewayStream::ReadNext() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!read_hold_) return;  // abandoned meanwhile
    read_hold_ = false;
  }
  StartRead(&reply_);
  RemoveHold();  // the read hold taken in OnReadDone
}

void GatewayStream::Abandon() {
  context_.TryCancel();
  std::lock_guard<std::mutex> lock(mu_);
  abandoned_ = true;
  // Nothing more will be sent either.
  writes_finished_ = true;
  outgoing_.clear();
  if (!writing_) ReleaseWriteHoldLocked();
  if (read_hold_) {
    read_hold_ = false;
    RemoveHold();
  }
}

void GatewayStream::OnReadDone(bool ok) {
  if (!ok) {
    // The call has ended: nothing more will be written.
    std::lock_guard<std::mutex> lock(mu_);
    writes_finished_ = true;
    outgoing_.clear();
    if (!writing_) ReleaseWriteHoldLocked();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abandoned_) return;  // no more reads: the call ends
    // The read hold: the sink owes a ReadNext(), and OnDone must not come first.
    read_hold_ = true;
    AddHold();
  }
  sink_->OnReply(FromByteBuffer(reply_));
}

void GatewayStream::OnDone(const grpc::Status& status) {
  gateway_->ForgetStream(this);
  std::shared_ptr<StreamSink> sink = std::move(sink_);
  Gateway* gateway = gateway_;
  // Nothing of this object is touched after OnEnd: the sink may drop its
  // last reference to it from another thread.
  sink->OnEnd(status);
  sink.reset();  // before CallEnded(): the gateway may be destroyed right after
  gateway->CallEnded();
}

}  // namespace etcdpp::http
