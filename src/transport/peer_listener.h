// PeerListener: the peer port of a member whose peers talk plaintext.
// Internal to the transport module.
//
// It accepts every connection itself and tells the protocols apart by the
// first bytes, peeked, not read: a batch stream (batch_stream.h) is served
// by `serve` on the connection's own thread; anything else is handed, as its
// socket and before a byte of it was read, to the gRPC server
// (grpc::AddInsecureChannelFromFd), which owns it from then on as if it had
// accepted it: RaftPeer's Snapshot, Members and Call, and the Stream of a
// member that predates the batch stream. The client port does the same
// between gRPC and HTTP (src/http/listener.h).
//
// Threads: one accepts; each connection has one until it is handed over or
// its stream ends. Stop shuts down the sockets still served here and joins
// every thread, so `serve` never runs after Stop returns.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace grpc {
class Server;
}

namespace etcdpp::transport {

class PeerListener {
 public:
  // Serves one batch stream whose first bytes are the magic (not yet read);
  // returns when the stream ends. The listener closes the socket after.
  using Serve = std::function<void(int fd)>;

  // Listens on every "host:port" of `addresses` (port 0: any free one).
  // `grpc_server` must outlive the listener.
  static Result<std::unique_ptr<PeerListener>> Open(const std::vector<std::string>& addresses,
                                                    grpc::Server* grpc_server, Serve serve);
  ~PeerListener();
  PeerListener(const PeerListener&) = delete;
  PeerListener& operator=(const PeerListener&) = delete;

  // The bound port of each address, in order.
  const std::vector<int>& ports() const { return ports_; }

  // Idempotent; bounded time.
  void Stop();

 private:
  struct Connection {
    int fd = -1;            // -1 once handed to gRPC or closed; guarded by mu_
    bool finished = false;  // guarded by mu_
    std::thread thread;
  };

  PeerListener(grpc::Server* grpc_server, Serve serve);
  void Accept();
  void Handle(Connection* conn, int fd);
  // Joins the threads of finished connections. Requires mu_ not held.
  void ReapFinished();
  // Gives up `conn`'s socket: marks it not ours, under mu_.
  void Release(Connection* conn);

  grpc::Server* const grpc_server_;
  const Serve serve_;
  std::vector<int> listen_fds_;
  std::vector<int> ports_;
  int wake_fd_ = -1;  // eventfd: wakes the accepting thread for Stop
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::list<Connection> connections_;  // guarded by mu_
  std::thread accept_thread_;
};

}  // namespace etcdpp::transport
