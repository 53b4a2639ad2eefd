#include "api/watch_service.h"

#include <memory>
#include <utility>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/slice.h>

#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/watch_stream.h"
#include "api/watch_write_pump.h"
#include "base/tsan_handoff.h"

namespace etcdpp::api {
namespace {

using grpc::ByteBuffer;

// The gRPC side of a WatchStream: reads one request at a time and writes
// the stream's messages, one write in flight (gRPC's callback rule).
class GrpcWatchStream final : public grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>,
                              public WatchStream::Writer {
 public:
  GrpcWatchStream(const WatchStreamDeps& deps, LeaderMonitor* monitor, CallCredentials credentials)
      : stream_(deps, monitor, std::move(credentials), this) {
    stream_.Start();
    tsan::HandingOff(this);
    tsan::HandingOff(&request_bytes_);
    StartRead(&request_bytes_);
  }

  // ---- gRPC reactions ----

  void OnReadDone(bool ok) override {
    tsan::Reaction reaction(&request_bytes_, this);
    if (!ok) return;  // Half-closed: keep sending until the client cancels (as etcd).
    etcdserverpb::WatchRequest request;
    grpc::Status parsed = grpc::SerializationTraits<etcdserverpb::WatchRequest>::Deserialize(
        &request_bytes_, &request);
    if (!parsed.ok()) {
      stream_.End(grpc::Status(grpc::StatusCode::INTERNAL, "grpc: error unmarshalling request"));
      return;
    }
    stream_.Handle(request);
    request_bytes_.Clear();
    tsan::HandingOff(&request_bytes_);
    StartRead(&request_bytes_);
  }

  void OnWriteDone(bool ok) override {
    tsan::Reaction reaction(&current_, this);
    stream_.WriteDone(ok);
  }

  void OnCancel() override {
    tsan::Reaction reaction(this, this);  // After the constructor, at least.
    stream_.End(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
  }

  void OnDone() override {
    tsan::TookBack(this);
    stream_.Detach();
    delete this;
  }

  // ---- WatchStream::Writer ----

  // Under the stream's lock, with no write in flight: current_ and staged_
  // belong to the writer until the write completes.
  char* Stage(size_t size) override {
    staged_ = grpc::Slice(size);
    return reinterpret_cast<char*>(const_cast<uint8_t*>(staged_.begin()));
  }

  // While more responses wait behind it, the write carries gRPC's buffer
  // hint: it completes once buffered, and the transport sends the buffered
  // responses together with the next write that has no hint.
  void Write(bool more) override {
    grpc::WriteOptions options;
    if (more) options.set_buffer_hint();
    ByteBuffer bytes(&staged_, 1);
    current_.Swap(&bytes);
    staged_ = grpc::Slice();
    tsan::HandingOff(&current_);
    StartWrite(&current_, options);
  }

  void EndCall(const grpc::Status& status) override {
    tsan::HandingOff(this);
    Finish(status);
  }

 private:
  ByteBuffer request_bytes_;  // Reading side only (one read at a time).
  grpc::Slice staged_;        // The next write, between Stage and Write.
  ByteBuffer current_;        // The write in flight.
  // Last: constructed once the buffers it writes into exist, and gone
  // before them.
  WatchStream stream_;
};

}  // namespace

WatchService::WatchService(const server::ClusterView* cluster, watch::WatchHub* hub,
                           LeaderMonitor* monitor, const auth::AuthStore* auth,
                           server::ReadBarrier* barrier)
    : cluster_(cluster), monitor_(monitor), pump_(std::make_unique<WritePump>()) {
  deps_.cluster = cluster;
  deps_.hub = hub;
  deps_.auth = auth;
  deps_.barrier = barrier;
  deps_.pump = pump_.get();
}

WatchService::~WatchService() = default;

grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>* WatchService::Watch(
    grpc::CallbackServerContext* context) {
  Status st = CheckCall(*cluster_, *context, LearnerServes::kNo);
  if (!st.ok()) return new RefusedStream<ByteBuffer, ByteBuffer>(st);
  return new GrpcWatchStream(deps_, RequiresLeader(*context) ? monitor_ : nullptr,
                             CredentialsOf(*context));
}

}  // namespace etcdpp::api
