#include "cmd/bench/h2_load_driver.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "cmd/bench/stream_channel.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMessagePrefixBytes = 5;  // gRPC's: compressed flag, big-endian length
constexpr int32_t kStreamWindowBytes = 1 << 20;
constexpr int32_t kConnectionWindowBytes = 1 << 24;
// How often a loop looks for calls past their deadline.
constexpr auto kDeadlineScan = std::chrono::milliseconds(50);

// A connected, non-blocking TCP socket to "host:port", or -1 with `error`.
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

struct SharedState {
  std::atomic<int64_t> next_seq{0};
  int64_t total = 0;
  std::chrono::milliseconds request_timeout{0};
};

struct LoopResult {
  std::vector<double> latencies_s;
  std::map<std::string, int64_t> errors;
  Clock::time_point last_completion{};
};

class Connection;

// One client: its Call and the HTTP/2 stream of its current request.
struct Client {
  std::unique_ptr<Call> call;
  Connection* connection = nullptr;
  std::string request;  // the framed request of the current call
  size_t request_sent = 0;
  std::string reply;  // DATA bytes of its reply
  std::string grpc_status;
  std::string grpc_message;
  int32_t stream_id = -1;
  Clock::time_point started;
  bool in_flight = false;
  bool past_deadline = false;
};

class Loop;

// One HTTP/2 connection of a loop (nghttp2 client session).
class Connection {
 public:
  Connection(Loop* loop, int fd, std::string authority, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends `client`'s request as a new stream; false if the session refused.
  bool Submit(Client& client);
  // Resets the stream of a call past its deadline.
  void Cancel(const Client& client);
  // Hands nghttp2's output to the socket; false if the connection failed.
  bool Flush();
  // Takes what the socket has; false if the connection failed or ended.
  bool OnReadable();
  bool wants_write() const { return !out_.empty(); }
  int fd() const { return fd_; }
  bool alive() const { return alive_; }
  void set_dead() { alive_ = false; }

 private:
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* self);
  static int OnData(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                    size_t len, void*);
  static int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* self);
  static ssize_t ReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                             uint32_t* flags, nghttp2_data_source* source, void*);

  Loop* const loop_;
  const int fd_;
  const std::string authority_;
  const std::string timeout_;  // grpc-timeout's value: the request timeout
  nghttp2_session* session_ = nullptr;
  std::string out_;  // framed bytes the socket has not taken yet
  bool alive_ = true;
};

// One thread: its connections and their clients.
class Loop {
 public:
  Loop(SharedState* shared, LoopResult* result) : shared_(shared), result_(result) {}

  void Add(std::unique_ptr<Connection> connection) {
    connections_.push_back(std::move(connection));
  }
  void AddClient(Client* client) { clients_.push_back(client); }
  void Run();

  // From a connection's callbacks: the call on `client` ended; its next one
  // starts once the connection's input has been taken.
  void Completed(Client& client, uint32_t error_code);

 private:
  // Claims the next request number and submits it; false when the load is done.
  bool StartNext(Client& client);
  void Fail(const std::string& error) { ++result_->errors[error]; }
  void MarkDead(Connection& conn) {
    conn.set_dead();
    lost_connection_ = true;
  }
  void ScanDeadlines(Clock::time_point now);

  SharedState* const shared_;
  LoopResult* const result_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Client*> clients_;
  std::vector<Client*> done_;  // completed during the last input, to restart
  int64_t in_flight_ = 0;
  bool lost_connection_ = false;  // the calls of dead connections are yet to be failed
};

Connection::Connection(Loop* loop, int fd, std::string authority, std::chrono::milliseconds timeout)
    : loop_(loop),
      fd_(fd),
      authority_(std::move(authority)),
      // gRPC allows at most 8 digits per unit.
      timeout_(timeout.count() < 100000000 ? fmt::format("{}m", timeout.count())
                                           : fmt::format("{}S", timeout.count() / 1000)) {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnData);
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

Connection::~Connection() {
  nghttp2_session_del(session_);
  ::close(fd_);
}

bool Connection::Submit(Client& client) {
  const std::string_view path = client.call->path();
  auto nv = [](std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  };
  // The headers gRPC clients send with a unary call, its deadline as
  // grpc-timeout (the server arms it as for any client's; the call is also
  // reset here once it passes).
  const nghttp2_nv headers[] = {nv(":method", "POST"),
                                nv(":scheme", "http"),
                                nv(":path", path),
                                nv(":authority", authority_),
                                nv("content-type", "application/grpc"),
                                nv("te", "trailers"),
                                nv("grpc-timeout", timeout_),
                                nv("user-agent", "etcdpp-bench")};
  nghttp2_data_provider body;
  body.source.ptr = &client;
  body.read_callback = ReadRequest;
  client.stream_id =
      nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &body, &client);
  return client.stream_id > 0;
}

void Connection::Cancel(const Client& client) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, client.stream_id, NGHTTP2_CANCEL);
}

ssize_t Connection::ReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* client = static_cast<Client*>(source->ptr);
  const size_t n = std::min(length, client->request.size() - client->request_sent);
  std::memcpy(buf, client->request.data() + client->request_sent, n);
  client->request_sent += n;
  if (client->request_sent == client->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int Connection::OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
  auto* client =
      static_cast<Client*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (client == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  // In the trailers, or in the headers of a trailers-only reply.
  if (n == "grpc-status") client->grpc_status = v;
  if (n == "grpc-message") client->grpc_message = v;
  return 0;
}

int Connection::OnData(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                       size_t len, void*) {
  auto* client = static_cast<Client*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (client != nullptr) client->reply.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int Connection::OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                              void* self) {
  auto* client = static_cast<Client*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (client != nullptr) static_cast<Connection*>(self)->loop_->Completed(*client, error_code);
  return 0;
}

bool Connection::Flush() {
  for (;;) {
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (out_.size() >= (256 << 10)) break;  // send before framing more
    }
    if (out_.empty()) return true;
    size_t sent = 0;
    while (sent < out_.size()) {
      const ssize_t n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    out_.erase(0, sent);
    if (!out_.empty()) return true;  // the socket is full: EPOLLOUT resumes
  }
}

bool Connection::OnReadable() {
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

bool Loop::StartNext(Client& client) {
  if (!client.connection->alive()) return false;
  const int64_t seq = shared_->next_seq.fetch_add(1, std::memory_order_relaxed);
  if (seq >= shared_->total) return false;
  const google::protobuf::Message& message = client.call->Prepare(seq);
  const size_t size = message.ByteSizeLong();
  client.request.resize(kMessagePrefixBytes + size);
  client.request[0] = 0;
  for (int i = 0; i < 4; ++i) {
    client.request[static_cast<size_t>(1 + i)] = static_cast<char>((size >> (8 * (3 - i))) & 0xff);
  }
  message.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(client.request.data() + kMessagePrefixBytes));
  client.request_sent = 0;
  client.reply.clear();
  client.grpc_status.clear();
  client.grpc_message.clear();
  client.past_deadline = false;
  client.started = Clock::now();
  if (!client.connection->Submit(client)) {
    ++result_->errors["rpc error: code = Unavailable desc = the connection refused a stream"];
    return false;
  }
  client.in_flight = true;
  ++in_flight_;
  return true;
}

void Loop::Completed(Client& client, uint32_t error_code) {
  if (!client.in_flight) return;
  client.in_flight = false;
  --in_flight_;
  const Clock::time_point now = Clock::now();
  result_->last_completion = now;
  done_.push_back(&client);
  if (client.past_deadline) {
    return Fail(ErrorMessage(
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded")));
  }
  if (client.grpc_status.empty()) {
    return Fail(
        ErrorMessage(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  fmt::format("stream ended without a status (HTTP/2 error {})",
                                              nghttp2_http2_strerror(error_code)))));
  }
  if (client.grpc_status != "0") {
    const int code = std::atoi(client.grpc_status.c_str());
    return Fail(
        ErrorMessage(grpc::Status(static_cast<grpc::StatusCode>(code), client.grpc_message)));
  }
  // One uncompressed message whose length its prefix states.
  const std::string& reply = client.reply;
  size_t length = 0;
  if (reply.size() >= kMessagePrefixBytes && reply[0] == 0) {
    for (int i = 1; i <= 4; ++i) length = (length << 8) | static_cast<uint8_t>(reply[i]);
  }
  if (reply.size() < kMessagePrefixBytes || reply[0] != 0 ||
      reply.size() != kMessagePrefixBytes + length ||
      !client.call->response().ParseFromArray(reply.data() + kMessagePrefixBytes,
                                              static_cast<int>(length))) {
    return Fail(ErrorMessage(grpc::Status(grpc::StatusCode::INTERNAL,
                                          "the reply is not one message of the method's "
                                          "response type")));
  }
  result_->latencies_s.push_back(std::chrono::duration<double>(now - client.started).count());
}

void Loop::ScanDeadlines(Clock::time_point now) {
  for (Client* client : clients_) {
    if (!client->in_flight || client->past_deadline) continue;
    if (now - client->started < shared_->request_timeout) continue;
    // Its stream's close (after the reset) counts it as past its deadline.
    client->past_deadline = true;
    client->connection->Cancel(*client);
  }
}

void Loop::Run() {
  result_->latencies_s.reserve(static_cast<size_t>(shared_->total));
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < connections_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connections_[i]->fd(), &ev);
  }
  std::vector<bool> watching_out(connections_.size(), false);
  // Every client starts as if its previous call had just ended.
  done_ = clients_;
  auto next_scan = Clock::now() + kDeadlineScan;
  epoll_event events[64];
  for (;;) {
    // Ended calls make way for their clients' next ones; a flush may end
    // more (a reset going out closes its stream), hence the loop.
    do {
      std::vector<Client*> done;
      done.swap(done_);
      for (Client* client : done) StartNext(*client);
      for (auto& conn : connections_) {
        if (conn->alive() && !conn->Flush()) MarkDead(*conn);
      }
    } while (!done_.empty());
    if (lost_connection_) {
      // A dead connection's calls end here, failed, and are not replaced.
      lost_connection_ = false;
      for (Client* client : clients_) {
        if (client->in_flight && !client->connection->alive()) {
          client->in_flight = false;
          --in_flight_;
          Fail("rpc error: code = Unavailable desc = connection lost");
        }
      }
    }
    if (in_flight_ == 0) break;
    for (size_t i = 0; i < connections_.size(); ++i) {
      const Connection& conn = *connections_[i];
      const bool want = conn.alive() && conn.wants_write();
      if (want == watching_out[i]) continue;
      epoll_event ev{};
      ev.events = want ? EPOLLIN | EPOLLOUT : EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(epoll_fd, EPOLL_CTL_MOD, conn.fd(), &ev);
      watching_out[i] = want;
    }
    const int n = epoll_wait(epoll_fd, events, 64, static_cast<int>(kDeadlineScan.count()));
    for (int e = 0; e < n; ++e) {
      Connection& conn = *connections_[events[e].data.u64];
      if (!conn.alive()) continue;
      // Input (ended calls land in done_); output waits for the flush above.
      if ((events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !conn.OnReadable()) {
        MarkDead(conn);
      }
    }
    const auto now = Clock::now();
    if (now >= next_scan) {
      ScanDeadlines(now);  // the resets go out with the next flush
      next_scan = now + kDeadlineScan;
    }
  }
  ::close(epoll_fd);
}

}  // namespace

LoadResult RunLoadOverH2(const LoadOptions& options, const CallFactory& make_call) {
  LoadResult result;
  if (options.endpoints.empty() || options.conns < 1 || options.clients < 1 ||
      options.threads < 1 || options.total < 1) {
    result.setup_error = "endpoints, conns, clients, threads and total must be positive";
    return result;
  }
  SharedState shared;
  shared.total = options.total;
  shared.request_timeout = options.request_timeout;
  const int threads = std::min({options.threads, options.conns, options.clients});
  std::vector<LoopResult> loop_results(static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < threads; ++t) {
    loops.push_back(std::make_unique<Loop>(&shared, &loop_results[static_cast<size_t>(t)]));
  }
  std::vector<Connection*> connections;
  for (int i = 0; i < options.conns; ++i) {
    const std::string target = StripScheme(options.endpoints[i % options.endpoints.size()]);
    std::string error;
    const int fd = ConnectTcp(target, options.connect_timeout, &error);
    if (fd < 0) {
      result.setup_error = error;
      return result;
    }
    auto conn = std::make_unique<Connection>(loops[static_cast<size_t>(i % threads)].get(), fd,
                                             target, options.request_timeout);
    connections.push_back(conn.get());
    loops[static_cast<size_t>(i % threads)]->Add(std::move(conn));
  }
  std::vector<Client> clients(static_cast<size_t>(options.clients));
  for (int i = 0; i < options.clients; ++i) {
    Client& client = clients[static_cast<size_t>(i)];
    client.call = make_call(i);
    const int c = i % options.conns;
    client.connection = connections[static_cast<size_t>(c)];
    loops[static_cast<size_t>(c % threads)]->AddClient(&client);
  }

  const Clock::time_point start = Clock::now();
  std::vector<std::thread> workers;
  for (auto& loop : loops) workers.emplace_back([&loop] { loop->Run(); });
  for (auto& w : workers) w.join();

  Clock::time_point end = start;
  for (auto& r : loop_results) {
    end = std::max(end, r.last_completion);
    result.latencies_s.insert(result.latencies_s.end(), r.latencies_s.begin(), r.latencies_s.end());
    for (const auto& [message, count] : r.errors) result.errors[message] += count;
  }
  result.total_s = std::chrono::duration<double>(end - start).count();
  return result;
}

}  // namespace etcdpp::bench
