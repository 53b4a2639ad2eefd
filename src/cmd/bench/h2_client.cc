#include "cmd/bench/h2_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace etcdpp::bench {
namespace {

constexpr int32_t kStreamWindowBytes = 1 << 20;
constexpr int32_t kConnectionWindowBytes = 1 << 24;
constexpr size_t kMessagePrefixBytes = 5;  // gRPC's: compressed flag, big-endian length

}  // namespace

int ConnectTcp(const std::string& target, std::chrono::milliseconds timeout, std::string* error) {
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) {
    *error = fmt::format("endpoint {} has no port", target);
    return -1;
  }
  std::string host = target.substr(0, colon);
  const std::string port = target.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *error = fmt::format("cannot resolve {}: {}", target, ::gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int so_error = 0;
      socklen_t len = sizeof so_error;
      rc = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
                   ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 && so_error == 0
               ? 0
               : -1;
    }
    if (rc != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    *error = fmt::format("cannot connect to {}", target);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string GrpcTimeoutHeader(std::chrono::milliseconds timeout) {
  return timeout.count() < 100000000 ? fmt::format("{}m", timeout.count())
                                     : fmt::format("{}S", timeout.count() / 1000);
}

bool CutMessage(std::string_view in, std::string_view* message, size_t* consumed, bool* bad) {
  *bad = false;
  if (in.size() < kMessagePrefixBytes) return false;
  if (in[0] != 0) {
    *bad = true;
    return false;
  }
  size_t length = 0;
  for (size_t i = 1; i < kMessagePrefixBytes; ++i) {
    length = (length << 8) | static_cast<uint8_t>(in[i]);
  }
  if (in.size() - kMessagePrefixBytes < length) return false;
  *message = in.substr(kMessagePrefixBytes, length);
  *consumed = kMessagePrefixBytes + length;
  return true;
}

H2Connection::H2Connection(int fd, std::string authority, std::string grpc_timeout,
                           H2CallObserver* observer)
    : fd_(fd),
      authority_(std::move(authority)),
      grpc_timeout_(std::move(grpc_timeout)),
      observer_(observer) {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  // Closed streams need not be kept for the priority tree.
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindowBytes)}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindowBytes);
}

H2Connection::~H2Connection() {
  nghttp2_session_del(session_);
  ::close(fd_);
}

bool H2Connection::Submit(std::string_view path, H2Call& call) {
  auto nv = [](std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  };
  // The headers a gRPC client sends, its deadline as grpc-timeout (the
  // server arms it as for any client's).
  nghttp2_nv headers[8] = {nv(":method", "POST"),
                           nv(":scheme", "http"),
                           nv(":path", path),
                           nv(":authority", authority_),
                           nv("content-type", "application/grpc"),
                           nv("te", "trailers"),
                           nv("user-agent", "etcdpp-bench"),
                           nv("grpc-timeout", grpc_timeout_)};
  const size_t count = grpc_timeout_.empty() ? 7 : 8;
  call.in.clear();
  call.grpc_status.clear();
  call.grpc_message.clear();
  call.waiting_for_out = false;
  nghttp2_data_provider body;
  body.source.ptr = &call;
  body.read_callback = ReadOut;
  call.stream_id = nghttp2_submit_request(session_, nullptr, headers, count, &body, &call);
  return call.stream_id > 0;
}

void H2Connection::Resume(H2Call& call) {
  if (!call.waiting_for_out) return;
  call.waiting_for_out = false;
  nghttp2_session_resume_data(session_, call.stream_id);
}

void H2Connection::Cancel(const H2Call& call) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, call.stream_id, NGHTTP2_CANCEL);
}

ssize_t H2Connection::ReadOut(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                              uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* call = static_cast<H2Call*>(source->ptr);
  const size_t n = std::min(length, call->out.size() - call->sent);
  std::memcpy(buf, call->out.data() + call->sent, n);
  call->sent += n;
  if (call->sent == call->out.size()) {
    if (call->end_after_out) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else {
      // All sent: the buffer starts over for what comes next.
      call->out.clear();
      call->sent = 0;
      if (n == 0) {
        call->waiting_for_out = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
  }
  return static_cast<ssize_t>(n);
}

int H2Connection::OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                           const uint8_t* name, size_t namelen, const uint8_t* value,
                           size_t valuelen, uint8_t, void*) {
  auto* call =
      static_cast<H2Call*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (call == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  // In the trailers, or in the headers of a trailers-only reply.
  if (n == "grpc-status") call->grpc_status = v;
  if (n == "grpc-message") call->grpc_message = v;
  return 0;
}

int H2Connection::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                              const uint8_t* data, size_t len, void* self) {
  auto* call = static_cast<H2Call*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (call == nullptr) return 0;
  call->in.append(reinterpret_cast<const char*>(data), len);
  static_cast<H2Connection*>(self)->observer_->OnData(*call);
  return 0;
}

int H2Connection::OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                void* self) {
  auto* call = static_cast<H2Call*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (call != nullptr) static_cast<H2Connection*>(self)->observer_->OnClose(*call, error_code);
  return 0;
}

bool H2Connection::Flush() {
  for (;;) {
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n == 0) break;
      pending_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (pending_.size() >= (256 << 10)) break;  // send before framing more
    }
    if (pending_.empty()) return true;
    size_t sent = 0;
    while (sent < pending_.size()) {
      const ssize_t n = ::send(fd_, pending_.data() + sent, pending_.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    pending_.erase(0, sent);
    if (!pending_.empty()) return true;  // the socket is full: EPOLLOUT resumes
  }
}

bool H2Connection::OnReadable() {
  uint8_t buf[64 << 10];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n)) < 0) return false;
    if (static_cast<size_t>(n) < sizeof buf) return true;
  }
}

H2Poller::H2Poller() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {}

H2Poller::~H2Poller() { ::close(epoll_fd_); }

void H2Poller::Add(H2Connection* connection) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = connections_.size();
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection->fd(), &ev);
  connections_.push_back(connection);
  watching_out_.push_back(false);
}

bool H2Poller::FlushAll() {
  bool failed = false;
  for (size_t i = 0; i < connections_.size(); ++i) {
    H2Connection& conn = *connections_[i];
    if (!conn.alive()) continue;
    if (!conn.Flush()) {
      conn.set_dead();
      failed = true;
    }
    const bool want = conn.alive() && conn.wants_write();
    if (want == watching_out_[i]) continue;
    epoll_event ev{};
    ev.events = want ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd(), &ev);
    watching_out_[i] = want;
  }
  return failed;
}

bool H2Poller::Poll(int timeout_ms) {
  epoll_event events[64];
  const int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
  bool failed = false;
  for (int e = 0; e < n; ++e) {
    H2Connection& conn = *connections_[events[e].data.u64];
    // Output waits for the next FlushAll.
    if (conn.alive() && (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
        !conn.OnReadable()) {
      conn.set_dead();
      failed = true;
    }
  }
  return failed;
}

}  // namespace etcdpp::bench
