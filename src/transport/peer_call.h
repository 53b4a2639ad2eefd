// PeerCaller: the client side of RaftPeer.Call, the transport's one unary
// request (a follower forwarding a lease keep-alive to the leader, ...).
// Internal to the transport module; Transport::Call is its contract.
//
// Calls use gRPC's callback API: nothing blocks, and each call's callback
// runs on a gRPC thread. One channel per peer address is kept for reuse.
//
// Threads: Call and Stop from any thread; mu_ guards every field. Stop
// cancels the calls in flight and returns once each callback has returned,
// so no `done` runs after Stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "base/status.h"
#include "transport/transport.h"
#include "transportpb/transport.grpc.pb.h"

namespace etcdpp::transport {

class PeerCaller {
 public:
  using Done = std::function<void(Result<std::string>)>;

  PeerCaller(uint64_t self_id, uint64_t cluster_id, PeerTlsOptions tls)
      : self_id_(self_id), cluster_id_(cluster_id), tls_(std::move(tls)) {}
  // Stops (if not yet stopped).
  ~PeerCaller();

  // Calls `method` on member `to` at `address` ("host:port"); done(reply body)
  // or done(error) exactly once: kUnavailable when the call fails on the
  // wire (or after Stop), else the error the peer's handler answered.
  void Call(uint64_t to, const std::string& address, const std::string& method, std::string body,
            std::chrono::milliseconds timeout, Done done);
  void Stop();

 private:
  struct InFlight;

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  const PeerTlsOptions tls_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  bool stopped_ = false;                                                       // guarded by mu_
  std::set<InFlight*> calls_;                                                  // guarded by mu_
  std::map<std::string, std::unique_ptr<transportpb::RaftPeer::Stub>> stubs_;  // guarded by mu_
};

// The reply of a handler for the wire, and back (etcdpp Code names travel,
// so etcd's errors survive forwarding with their gRPC code and message).
void EncodeCallResult(const Result<std::string>& result, transportpb::PeerCallReply* reply);
Result<std::string> DecodeCallReply(const transportpb::PeerCallReply& reply);

}  // namespace etcdpp::transport
