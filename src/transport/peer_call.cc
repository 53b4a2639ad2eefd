#include "transport/peer_call.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <utility>

#include "base/tsan_handoff.h"
#include "transport/transport.h"
#include "transport/wire.h"

namespace etcdpp::transport {

struct PeerCaller::InFlight {
  grpc::ClientContext ctx;
  transportpb::PeerCall request;
  transportpb::PeerCallReply reply;
  Done done;
};

PeerCaller::~PeerCaller() { Stop(); }

void PeerCaller::Call(uint64_t to, const std::string& address, const std::string& method,
                      std::string body, std::chrono::milliseconds timeout, Done done) {
  auto call = std::make_unique<InFlight>();
  call->request.set_method(method);
  call->request.set_body(std::move(body));
  call->done = std::move(done);
  AddHandshake(&call->ctx, Handshake{cluster_id_, self_id_, to});
  call->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  // The channel to a peer is shared by every call (the round-trip probe and
  // the corruption check call while peers are still starting). After a
  // failed connect it backs off, and a fail-fast call in that window would
  // fail at once with the old error; a call waits for the connection
  // instead, bounded by its own deadline.
  call->ctx.set_wait_for_ready(true);
  InFlight* raw = call.get();
  transportpb::RaftPeer::Stub* stub = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      auto& slot = stubs_[address];
      if (!slot) slot = transportpb::RaftPeer::NewStub(NewPeerChannel(address, tls_));
      stub = slot.get();
      calls_.insert(call.release());
    }
  }
  if (stub == nullptr) {
    call->done(Status::Unavailable("etcdpp transport: stopped"));
    return;
  }
  tsan::HandingOff(raw);
  stub->async()->Call(&raw->ctx, &raw->request, &raw->reply, [this, raw, to](grpc::Status st) {
    tsan::TookBack(raw);
    std::unique_ptr<InFlight> owned(raw);
    if (st.ok()) {
      owned->done(DecodeCallReply(owned->reply));
    } else {
      owned->done(
          Status::Unavailable(fmt::format("etcdpp transport: call {} to member {:x}: {}",
                                          owned->request.method(), to, st.error_message())));
    }
    // Freed, context included (it holds the channel), and only then erased:
    // Stop waits for it, so the channel is never released here.
    owned.reset();
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(raw);
    if (calls_.empty()) idle_cv_.notify_all();
  });
}

void PeerCaller::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_ = true;
  for (InFlight* call : calls_) call->ctx.TryCancel();
  idle_cv_.wait(lock, [this] { return calls_.empty(); });
  stubs_.clear();
}

void EncodeCallResult(const Result<std::string>& result, transportpb::PeerCallReply* reply) {
  if (result.ok()) {
    reply->set_body(*result);
    return;
  }
  reply->set_code(std::string(CodeName(result.status().code())));
  reply->set_message(result.status().message());
}

Result<std::string> DecodeCallReply(const transportpb::PeerCallReply& reply) {
  if (reply.code().empty()) return reply.body();
  for (int c = 1; c < static_cast<int>(Code::kCodeCount); ++c) {
    const Code code = static_cast<Code>(c);
    if (CodeName(code) == reply.code()) return Status(code, reply.message());
  }
  return Status::Internal("etcdpp transport: peer answered unknown error " + reply.code() + ": " +
                          reply.message());
}

}  // namespace etcdpp::transport
