// h2floor_server: an experiment, not a product. A bare gRPC-over-HTTP/2
// server on nghttp2 that answers /etcdserverpb.KV/Range with an empty
// RangeResponse, to measure what one unary call costs without gRPC C++'s
// machinery (docs/grpc_floor.md). Every other path gets UNIMPLEMENTED.
//
//   h2floor_server [--port P] [--threads N]
//
// Prints "listening on 127.0.0.1:P" once every thread listens. One event
// loop per thread (epoll, level-triggered), each with its own listening
// socket on the same port (SO_REUSEPORT: the kernel spreads connections);
// a connection lives on one thread for its whole life, so nothing is shared
// between threads and nothing is locked.
//
// gRPC's wire format, as served here: request HEADERS (:path names the
// method), DATA holding length-prefixed messages (1 byte compressed flag,
// 4 bytes big-endian length, the protobuf), END_STREAM. The reply is
// HEADERS (:status 200, content-type application/grpc), DATA with one
// length-prefixed RangeResponse, then trailers (grpc-status 0) with
// END_STREAM. Output is gathered over everything one read() brought in and
// written with one send(), so concurrent streams share syscalls.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "floor_server.h"

namespace {

constexpr std::string_view kRangePath = "/etcdserverpb.KV/Range";
constexpr size_t kGrpcPrefixBytes = 5;
// Requests larger than etcd's default --max-request-bytes plus framing are
// refused rather than buffered without bound.
constexpr size_t kMaxRequestBytes = 1572864 + 1024;

// One HTTP/2 stream: the request's path and body as they arrive, then the
// framed reply being sent. Owned by its Connection.
struct Stream {
  std::string path;
  std::string request;
  std::string reply;  // length-prefixed message, sent as DATA
  size_t reply_sent = 0;
  bool too_large = false;
};

// One client connection and its nghttp2 session. Owned by the thread whose
// epoll loop accepted it; never touched by another thread.
class Connection {
 public:
  explicit Connection(int fd);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  // Reads what the socket has, feeds nghttp2, writes what it produced.
  // False when the connection is finished and must be closed.
  bool OnReadable();
  bool OnWritable() { return Flush(); }
  bool WantsWrite() const { return !pending_out_.empty(); }

 private:
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* self);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* self);
  static ssize_t ReadReply(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* self);

  void Answer(int32_t stream_id, Stream& stream);
  void AnswerStatusOnly(int32_t stream_id, const char* grpc_status, const char* message);
  // Moves nghttp2's output to pending_out_ and writes it; false on a dead socket.
  bool Flush();

  int fd_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::string pending_out_;
  google::protobuf::Arena arena_;
};

Connection::Connection(int fd) : fd_(fd) {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
  nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  // As etcd: no practical limit on concurrent streams per connection.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1u << 30},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 24);
}

Connection::~Connection() {
  nghttp2_session_del(session_);
  close(fd_);
}

int Connection::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    static_cast<Connection*>(self)->streams_[frame->hd.stream_id] = std::make_unique<Stream>();
  }
  return 0;
}

int Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* self) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* conn = static_cast<Connection*>(self);
  auto it = conn->streams_.find(frame->hd.stream_id);
  if (it == conn->streams_.end()) return 0;
  if (std::string_view(reinterpret_cast<const char*>(name), namelen) == ":path") {
    it->second->path.assign(reinterpret_cast<const char*>(value), valuelen);
  }
  return 0;
}

int Connection::OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                            size_t len, void* self) {
  auto* conn = static_cast<Connection*>(self);
  auto it = conn->streams_.find(stream_id);
  if (it == conn->streams_.end()) return 0;
  Stream& stream = *it->second;
  if (stream.request.size() + len > kMaxRequestBytes) {
    stream.too_large = true;
    return 0;
  }
  stream.request.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int Connection::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto* conn = static_cast<Connection*>(self);
  const bool request_frame =
      frame->hd.type == NGHTTP2_DATA ||
      (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST);
  if (!request_frame || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  auto it = conn->streams_.find(frame->hd.stream_id);
  if (it != conn->streams_.end()) conn->Answer(frame->hd.stream_id, *it->second);
  return 0;
}

int Connection::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* self) {
  static_cast<Connection*>(self)->streams_.erase(stream_id);
  return 0;
}

void Connection::AnswerStatusOnly(int32_t stream_id, const char* grpc_status, const char* message) {
  // gRPC's "trailers-only" reply: one HEADERS frame with END_STREAM.
  const nghttp2_nv headers[] = {
      {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"content-type", (uint8_t*)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"grpc-status", (uint8_t*)grpc_status, 11, strlen(grpc_status),
       NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"grpc-message", (uint8_t*)message, 12, strlen(message), NGHTTP2_NV_FLAG_NONE},
  };
  nghttp2_submit_response(session_, stream_id, headers, 4, nullptr);
}

void Connection::Answer(int32_t stream_id, Stream& stream) {
  if (stream.path != kRangePath) {
    AnswerStatusOnly(stream_id, "12", "h2floor_server serves only KV/Range");
    return;
  }
  if (stream.too_large) {
    AnswerStatusOnly(stream_id, "8", "etcdserver: request is too large");
    return;
  }
  // Exactly one uncompressed message, as every unary gRPC client sends.
  const std::string& body = stream.request;
  if (body.size() < kGrpcPrefixBytes || body[0] != 0) {
    AnswerStatusOnly(stream_id, "13", "malformed gRPC message");
    return;
  }
  const uint32_t length = (uint32_t(uint8_t(body[1])) << 24) | (uint32_t(uint8_t(body[2])) << 16) |
                          (uint32_t(uint8_t(body[3])) << 8) | uint32_t(uint8_t(body[4]));
  if (length != body.size() - kGrpcPrefixBytes) {
    AnswerStatusOnly(stream_id, "13", "malformed gRPC message");
    return;
  }
  // Parse and serialize with protobuf as the gRPC C++ twin does, so the
  // comparison differs only in the transport.
  arena_.Reset();
  auto* request = google::protobuf::Arena::CreateMessage<etcdserverpb::RangeRequest>(&arena_);
  if (!request->ParseFromArray(body.data() + kGrpcPrefixBytes, static_cast<int>(length))) {
    AnswerStatusOnly(stream_id, "13", "cannot parse RangeRequest");
    return;
  }
  auto* response = google::protobuf::Arena::CreateMessage<etcdserverpb::RangeResponse>(&arena_);
  auto* header = response->mutable_header();
  h2floor::FillHeader(header);
  const size_t size = response->ByteSizeLong();
  stream.reply.resize(kGrpcPrefixBytes + size);
  stream.reply[0] = 0;
  stream.reply[1] = char(size >> 24);
  stream.reply[2] = char(size >> 16);
  stream.reply[3] = char(size >> 8);
  stream.reply[4] = char(size);
  response->SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(stream.reply.data()) +
                                            kGrpcPrefixBytes);

  const nghttp2_nv headers[] = {
      {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"content-type", (uint8_t*)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
  };
  nghttp2_data_provider provider;
  provider.source.ptr = &stream;
  provider.read_callback = ReadReply;
  nghttp2_submit_response(session_, stream_id, headers, 2, &provider);
}

ssize_t Connection::ReadReply(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                              size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                              void*) {
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, stream->reply.size() - stream->reply_sent);
  memcpy(buf, stream->reply.data() + stream->reply_sent, n);
  stream->reply_sent += n;
  if (stream->reply_sent == stream->reply.size()) {
    // The stream ends with the trailers, not with this DATA frame.
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    static const nghttp2_nv trailers[] = {
        {(uint8_t*)"grpc-status", (uint8_t*)"0", 11, 1, NGHTTP2_NV_FLAG_NONE},
    };
    if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  return static_cast<ssize_t>(n);
}

bool Connection::OnReadable() {
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return false;
    }
    if (nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n)) < 0) return false;
    if (static_cast<size_t>(n) < sizeof buf) break;  // drained; skip the EAGAIN read
  }
  return Flush();
}

bool Connection::Flush() {
  for (;;) {
    const uint8_t* data;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) break;
    pending_out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  while (!pending_out_.empty()) {
    const ssize_t n = send(fd_, pending_out_.data(), pending_out_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return false;
    }
    pending_out_.erase(0, static_cast<size_t>(n));
  }
  return nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_) ||
         !pending_out_.empty();
}

int ListenOn(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1024) != 0) {
    std::fprintf(stderr, "h2floor_server: cannot listen on 127.0.0.1:%d: %s\n", port,
                 strerror(errno));
    std::exit(1);
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// One thread's loop: accepts on its own listening socket and serves the
// connections it accepted. Runs until the process exits.
void ServeLoop(int listen_fd) {
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
  std::unordered_map<int, std::unique_ptr<Connection>> connections;
  epoll_event events[256];
  for (;;) {
    const int ready = epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd) {
        for (;;) {
          const int client = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          const int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto conn = std::make_unique<Connection>(client);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = client;
          epoll_ctl(epfd, EPOLL_CTL_ADD, client, &cev);
          // The server's SETTINGS go out at once.
          if (!conn->OnWritable()) continue;
          connections.emplace(client, std::move(conn));
        }
        continue;
      }
      auto it = connections.find(fd);
      if (it == connections.end()) continue;
      Connection& conn = *it->second;
      const bool had_pending = conn.WantsWrite();
      bool alive = true;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) alive = false;
      if (alive && (events[i].events & EPOLLOUT)) alive = conn.OnWritable();
      if (alive && (events[i].events & EPOLLIN)) alive = conn.OnReadable();
      if (!alive) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
        connections.erase(it);
        continue;
      }
      if (conn.WantsWrite() != had_pending) {
        epoll_event mod{};
        mod.events = conn.WantsWrite() ? uint32_t{EPOLLIN | EPOLLOUT} : uint32_t{EPOLLIN};
        mod.data.fd = fd;
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &mod);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  h2floor::ServerFlags flags;
  if (!h2floor::ParseServerFlags(argc, argv, "h2floor_server", &flags)) return 2;
  int port = flags.port;
  const int threads = flags.threads;
  // With --port 0 the first socket picks the port and the others share it.
  std::vector<int> listeners{ListenOn(port)};
  port = BoundPort(listeners[0]);
  for (int t = 1; t < threads; ++t) listeners.push_back(ListenOn(port));
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::vector<std::thread> loops;
  for (int t = 1; t < threads; ++t) loops.emplace_back(ServeLoop, listeners[t]);
  ServeLoop(listeners[0]);
}
