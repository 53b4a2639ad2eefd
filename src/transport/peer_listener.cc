#include "transport/peer_listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "transport/batch_stream.h"

namespace etcdpp::transport {
namespace {

using namespace std::chrono_literals;

// A connection that has not said which protocol it speaks by then is closed.
constexpr auto kSniffTimeout = 10s;
// How often a waiting connection thread looks at stopping_.
constexpr int kPollSliceMs = 50;

enum class Protocol { kBatchStream, kOther, kUndecided };

Protocol Classify(std::string_view first) {
  const size_t n = std::min(first.size(), kBatchStreamMagic.size());
  if (first.substr(0, n) != kBatchStreamMagic.substr(0, n)) return Protocol::kOther;
  return n == kBatchStreamMagic.size() ? Protocol::kBatchStream : Protocol::kUndecided;
}

// Binds and listens on every address `host`:`port` resolves to; appends the
// descriptors. Returns the bound port, or -1 with *error set.
int ListenOn(const std::string& address, std::vector<int>* fds, std::string* error) {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) {
    *error = "malformed address " + address;
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* results = nullptr;
  const int rc =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &results);
  if (rc != 0) {
    *error = fmt::format("cannot resolve {}: {}", address, gai_strerror(rc));
    return -1;
  }
  // A v6 wildcard alone takes v4 connections too (dual stack, as gRPC's own
  // listener does); beside a v4 address of the same name it must not.
  bool has_v4 = false;
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) has_v4 |= ai->ai_family == AF_INET;
  int bound_port = -1;
  std::string last_error;
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    // Non-blocking: a connection reset between poll and accept must not
    // leave the accepting thread blocked in accept (and Stop waiting on it).
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
      const int v6_only = has_v4 ? 1 : 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof v6_only);
    }
    // With port 0, every address of the name gets the port the first got.
    if (bound_port > 0) {
      const auto p = htons(static_cast<uint16_t>(bound_port));
      if (ai->ai_family == AF_INET) reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = p;
      if (ai->ai_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_port = p;
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
    bound_port =
        ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    fds->push_back(fd);
  }
  ::freeaddrinfo(results);
  if (bound_port < 0) *error = fmt::format("cannot listen on {}: {}", address, last_error);
  return bound_port;
}

// What gRPC's own accept would have given it: non-blocking, no Nagle.
void GiveToGrpc(grpc::Server* server, int fd) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    ::close(fd);
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  grpc::AddInsecureChannelFromFd(server, fd);
}

}  // namespace

PeerListener::PeerListener(grpc::Server* grpc_server, Serve serve)
    : grpc_server_(grpc_server), serve_(std::move(serve)) {}

Result<std::unique_ptr<PeerListener>> PeerListener::Open(const std::vector<std::string>& addresses,
                                                         grpc::Server* grpc_server, Serve serve) {
  std::unique_ptr<PeerListener> l(new PeerListener(grpc_server, std::move(serve)));
  for (const std::string& address : addresses) {
    std::string error;
    const int port = ListenOn(address, &l->listen_fds_, &error);
    if (port < 0) return Status::Unavailable("transport: " + error);
    l->ports_.push_back(port);
  }
  l->wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (l->wake_fd_ < 0) return Status::Internal("transport: eventfd failed");
  l->accept_thread_ = std::thread([raw = l.get()] {
    // Named, as every thread of the peer transport, for per-thread profiles.
    pthread_setname_np(pthread_self(), "peer-accept");
    raw->Accept();
  });
  return l;
}

PeerListener::~PeerListener() {
  Stop();
  for (int fd : listen_fds_) ::close(fd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void PeerListener::Accept() {
  std::vector<pollfd> polled;
  for (int fd : listen_fds_) polled.push_back({fd, POLLIN, 0});
  polled.push_back({wake_fd_, POLLIN, 0});
  while (!stopping_.load(std::memory_order_acquire)) {
    if (::poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;  // revents were not filled in
      return;
    }
    for (size_t i = 0; i + 1 < polled.size(); ++i) {
      if ((polled[i].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(polled[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ReapFinished();
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_.load(std::memory_order_acquire)) {
        ::close(fd);
        return;
      }
      Connection& conn = connections_.emplace_back();
      conn.fd = fd;
      conn.thread = std::thread([this, c = &conn, fd] {
        pthread_setname_np(pthread_self(), "peer-reader");
        Handle(c, fd);
      });
    }
  }
}

void PeerListener::Release(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  conn->fd = -1;
}

void PeerListener::Handle(Connection* conn, int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kSniffTimeout;
  Protocol protocol = Protocol::kUndecided;
  while (protocol == Protocol::kUndecided && !stopping_.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kPollSliceMs) <= 0) continue;
    char first[kBatchStreamMagic.size()];
    const ssize_t n = ::recv(fd, first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) break;  // closed before saying anything
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    protocol = Classify(std::string_view(first, static_cast<size_t>(n)));
    // Part of the magic: the unread bytes keep the socket readable, so poll
    // would not wait for the rest.
    if (protocol == Protocol::kUndecided) std::this_thread::sleep_for(5ms);
  }
  if (protocol == Protocol::kOther && !stopping_.load(std::memory_order_acquire)) {
    Release(conn);
    GiveToGrpc(grpc_server_, fd);
  } else {
    if (protocol == Protocol::kBatchStream) serve_(fd);
    Release(conn);
    ::close(fd);
  }
  std::lock_guard<std::mutex> lock(mu_);
  conn->finished = true;
}

void PeerListener::ReapFinished() {
  std::list<Connection> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->finished) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (Connection& c : finished) c.thread.join();
}

void PeerListener::Stop() {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Connection> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Streams blocked in a read end at once; the threads close the sockets.
    for (Connection& c : connections_) {
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    }
    all.swap(connections_);
  }
  for (Connection& c : all) c.thread.join();
}

}  // namespace etcdpp::transport
