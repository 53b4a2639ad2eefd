// One HTTP/2 stream of the front relayed, message by message, to the
// member's own gRPC server over its in-process channel: every method the
// front does not serve itself (Watch, LeaseKeepAlive, Snapshot, Observe,
// and the unary methods of Lease, Cluster, Maintenance, Auth, Lock and
// Election). The call is a generic bidi stream of raw messages (gRPC's
// GenericStub over ByteBuffer), which carries unary and streaming methods
// alike, so the services, their interceptors (metrics) and their checks
// run exactly as for a call that came to gRPC directly.
//
// Threads: the front's loop thread calls Send, HalfClose, ReadMore and
// Cancel; gRPC's threads run the reactions, which report through `sink`
// (in order: headers, messages, then exactly one kFinished). `mu_` guards
// the flow state. The forwarder keeps itself alive until gRPC's OnDone.
//
// Flow control: one read from gRPC is outstanding at a time, and the next
// is started only when the loop asks (ReadMore), once the client's stream
// has taken the previous message: a slow reader holds the server's
// messages back in gRPC's own flow control instead of in the front.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace etcdpp::api::h2front {

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct ForwardEvent {
  enum class Kind { kHeaders, kMessage, kFinished };
  Kind kind;
  Metadata metadata;    // kHeaders: initial metadata; kFinished: trailing metadata
  std::string message;  // kMessage: the serialized message
  grpc::Status status;  // kFinished
};
using ForwardSink = std::function<void(ForwardEvent)>;

class Forwarder final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts the call of `method` ("/pkg.Service/Method") with the client's
  // `metadata` (names lower-case; "-bin" values already decoded) and
  // `deadline` if it sent one.
  static std::shared_ptr<Forwarder> Start(grpc::GenericStub* stub, std::string method,
                                          const Metadata& metadata,
                                          std::optional<std::chrono::nanoseconds> timeout,
                                          ForwardSink sink);

  // A message from the client; sent after the ones before it.
  void Send(std::string message);
  // The client ended its side (END_STREAM): no Send follows.
  void HalfClose();
  // The client's stream took the last message reported: read the next.
  void ReadMore();
  // The client's stream is gone: cancel the call (idempotent).
  void Cancel();

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  explicit Forwarder(std::string method, ForwardSink sink);

 private:
  // The gRPC operations decided under mu_, started after it is released
  // (a reaction may run inline and take mu_ again).
  struct Actions {
    const grpc::ByteBuffer* write = nullptr;
    bool writes_done = false;
    bool start_read = false;
    int remove_holds = 0;
  };
  void Run(const Actions& actions);
  // Under mu_: once no write is in flight and the write side is over, its hold goes.
  void CloseWritesIfIdle(Actions* actions);

  const std::string method_;  // outlives the call: gRPC keeps a pointer to it
  const ForwardSink sink_;
  grpc::ClientContext context_;
  grpc::ByteBuffer incoming_;        // the read in flight fills it
  std::shared_ptr<Forwarder> self_;  // set by Start, dropped in OnDone

  std::mutex mu_;
  std::deque<grpc::ByteBuffer> outbox_;  // front: the write in flight
  bool writing_ = false;
  bool half_closed_ = false;  // the client sent END_STREAM
  bool writes_over_ = false;  // no more writes: half-closed, cancelled or failed
  bool write_hold_ = true;    // the write side's hold (taken before StartCall)
  bool read_hold_ = true;     // the read side's hold
  bool read_outstanding_ = false;
  bool cancelled_ = false;
};

}  // namespace etcdpp::api::h2front
