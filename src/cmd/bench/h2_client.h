// The load generator's own HTTP/2 client (nghttp2): one connection that
// carries gRPC calls the tool frames itself, unary or streaming. Why it
// exists and what it sends: h2_load_driver.h.
//
// Single-threaded: a connection and its calls belong to the thread that
// drives them (Flush, OnReadable), and the observer is called from there,
// inside OnReadable or Flush.
#ifndef ETCDPP_CMD_BENCH_H2_CLIENT_H_
#define ETCDPP_CMD_BENCH_H2_CLIENT_H_

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace etcdpp::bench {

// A connected, non-blocking TCP socket to "host:port" (TCP_NODELAY), or -1
// with `error` set.
int ConnectTcp(const std::string& target, std::chrono::milliseconds timeout, std::string* error);

// One gRPC call's stream. The caller owns it; it must outlive its stream.
struct H2Call {
  // Request bytes (gRPC-framed messages); `sent` of them have gone out.
  std::string out;
  size_t sent = 0;
  // Unary: the request ends after `out`. Streaming (false): the stream
  // stays open for what is appended later (H2Connection::Resume).
  bool end_after_out = true;
  // The reply: DATA bytes so far, and the status once its trailers came
  // (empty until then).
  std::string in;
  std::string grpc_status;
  std::string grpc_message;
  int32_t stream_id = -1;
  bool waiting_for_out = false;  // the connection's: nothing to send, stream open
};

// Told what happens to the calls of a connection.
class H2CallObserver {
 public:
  virtual ~H2CallObserver() = default;
  // DATA for `call` was appended to call.in.
  virtual void OnData(H2Call& /*call*/) {}
  // The call's stream closed (its status, if any, is in the call);
  // `error_code`: HTTP/2's, NO_ERROR when it ended normally.
  virtual void OnClose(H2Call& call, uint32_t error_code) = 0;
};

class H2Connection {
 public:
  // Takes `fd`. `grpc_timeout`: the grpc-timeout header each call sends
  // (empty: none). `authority`: host:port.
  H2Connection(int fd, std::string authority, std::string grpc_timeout, H2CallObserver* observer);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Opens a stream for `call` on `path` (with the headers a gRPC client
  // sends); false if the session refused.
  bool Submit(std::string_view path, H2Call& call);
  // Bytes were appended to a streaming call's `out`: they go with the next
  // Flush.
  void Resume(H2Call& call);
  // Resets the call's stream (RST_STREAM CANCEL), with the next Flush.
  void Cancel(const H2Call& call);
  // Hands nghttp2's output to the socket; false if the connection failed.
  bool Flush();
  // Takes what the socket has; false if the connection failed or ended.
  bool OnReadable();

  bool wants_write() const { return !pending_.empty(); }
  int fd() const { return fd_; }
  bool alive() const { return alive_; }
  void set_dead() { alive_ = false; }

 private:
  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*);
  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* self);
  static int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* self);
  static ssize_t ReadOut(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                         nghttp2_data_source* source, void*);

  const int fd_;
  const std::string authority_;
  const std::string grpc_timeout_;
  H2CallObserver* const observer_;
  nghttp2_session* session_ = nullptr;
  std::string pending_;  // framed bytes the socket has not taken yet
  bool alive_ = true;
};

// The epoll set of one thread's connections: flushes them, keeps their
// EPOLLOUT interest in step with what the sockets have not taken, and
// hands the readable ones their input. Connections outlive it.
class H2Poller {
 public:
  H2Poller();
  ~H2Poller();
  H2Poller(const H2Poller&) = delete;
  H2Poller& operator=(const H2Poller&) = delete;

  void Add(H2Connection* connection);
  // Flushes every live connection; true if one failed (now marked dead).
  bool FlushAll();
  // Waits up to `timeout_ms` for input and takes it (observers run here);
  // true if a connection failed or ended (now marked dead).
  bool Poll(int timeout_ms);

 private:
  const int epoll_fd_;
  std::vector<H2Connection*> connections_;
  std::vector<bool> watching_out_;  // EPOLLOUT asked, per connection
};

// grpc-timeout's value for `timeout` (at most 8 digits per unit, as gRPC's).
std::string GrpcTimeoutHeader(std::chrono::milliseconds timeout);

// Appends `message` with gRPC's 5-byte prefix (uncompressed) to `out`, the
// message serialized in place.
template <typename Message>
void AppendFramed(const Message& message, std::string* out) {
  const size_t size = message.ByteSizeLong();
  const size_t start = out->size();
  out->resize(start + 5 + size);
  char* p = out->data() + start;
  p[0] = 0;
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<char>((size >> (8 * (3 - i))) & 0xff);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + 5));
}

// Cuts the first gRPC message off `in` (uncompressed only): its bytes, or
// false when it has not fully arrived or is compressed (`*bad` set then).
bool CutMessage(std::string_view in, std::string_view* message, size_t* consumed, bool* bad);

}  // namespace etcdpp::bench

#endif  // ETCDPP_CMD_BENCH_H2_CLIENT_H_
