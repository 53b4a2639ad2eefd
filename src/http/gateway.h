// The v3 JSON gateway's calls: a gRPC client of this member's own gRPC server
// over its in-process channel (as etcd's grpc-gateway is a client of etcd),
// so it depends on no server internals and every request takes the same path
// as a gRPC client's. Messages travel as serialized bytes (generic stub);
// gateway_codec.h converts them to and from JSON.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/gateway_codec.h"

namespace etcdpp::http {

// The receiver of a stream's replies; called on gRPC's threads, one call at
// a time per stream.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // One reply, serialized. The stream asks for the next one only after
  // GatewayStream::ReadNext(), so a slow HTTP client slows the stream.
  virtual void OnReply(std::string serialized) = 0;
  // The call ended; nothing else follows. Status OK for a normal end.
  virtual void OnEnd(grpc::Status status) = 0;
};

class Gateway;

// One streaming call (watch, lease keep-alive, snapshot, observe). Owned by
// a shared_ptr; the sink is kept alive until OnEnd returns. Thread-safe.
class GatewayStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  GatewayStream(Gateway* gateway, const Route& route,
                std::vector<std::pair<std::string, std::string>> metadata,
                std::shared_ptr<StreamSink> sink);
  ~GatewayStream() override;

  void Start();
  // Queues one request (serialized) for the server.
  void Send(std::string serialized);
  // No more requests (the HTTP body ended): half-closes once the queue is sent.
  void CloseSend();
  // Asks for the reply after the one last handed to OnReply. The sink must
  // call it once for every OnReply, even when it drops the reply (the call
  // cannot end before).
  void ReadNext();
  // Ends the call (the HTTP client went away); OnEnd follows.
  void Cancel() { context_.TryCancel(); }
  // Cancel() for a sink that will never call ReadNext() again (the HTTP
  // side has stopped): releases the reply it was handed, so the call can end.
  void Abandon();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void WriteNextLocked();         // holds mu_
  void ReleaseWriteHoldLocked();  // holds mu_

  Gateway* const gateway_;
  grpc::ClientContext context_;
  grpc::ByteBuffer reply_;  // written by gRPC between StartRead and OnReadDone
  std::mutex mu_;
  std::deque<grpc::ByteBuffer> outgoing_;  // guarded by mu_
  bool writing_ = false;                   // guarded by mu_
  bool close_send_ = false;                // guarded by mu_
  bool writes_finished_ = false;           // guarded by mu_: WritesDone issued or writes broken
  bool write_hold_ = true;                 // guarded by mu_: the hold taken in Start
  bool read_hold_ = false;                 // guarded by mu_: a reply awaits ReadNext()
  bool abandoned_ = false;                 // guarded by mu_
  grpc::ByteBuffer writing_buffer_;        // guarded by mu_ (alive while gRPC writes it)
  std::shared_ptr<StreamSink> sink_;       // reset in OnDone
};

class Gateway {
 public:
  explicit Gateway(std::shared_ptr<grpc::Channel> channel);
  // Waits until every call has ended (callers cancel theirs first).
  ~Gateway();

  using Metadata = std::vector<std::pair<std::string, std::string>>;
  // `done(status, serialized reply)` runs on a gRPC thread.
  void CallUnary(const Route& route, std::string request, Metadata metadata,
                 std::function<void(grpc::Status, std::string)> done);

  grpc::GenericStub& stub() { return stub_; }

  // Abandons every stream in flight (at shutdown, the HTTP side stopped).
  void CancelStreams();
  // Returns once no call is in flight.
  void WaitIdle();

  // Calls in flight (unary and streams): the destructor waits for zero.
  void CallStarted();
  void CallEnded();
  void AddStream(GatewayStream* stream);
  void ForgetStream(GatewayStream* stream);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  std::mutex mu_;
  std::condition_variable idle_;
  int calls_ = 0;                     // guarded by mu_
  std::set<GatewayStream*> streams_;  // guarded by mu_: not yet done
};

// Bytes <-> gRPC's buffers.
grpc::ByteBuffer ToByteBuffer(const std::string& bytes);
std::string FromByteBuffer(const grpc::ByteBuffer& buffer);

}  // namespace etcdpp::http
