#include "http/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>
#include <deque>
#include <limits>
#include <optional>
#include <set>
#include <thread>

#include "api/client_identity.h"
#include "api/h2front/h2_front.h"
#include "http/gateway.h"
#include "http/gateway_codec.h"
#include "http/health.h"
#include "http/json_stream.h"
#include "http/sniff.h"
#include "http/v2_api.h"
#include "metrics/metrics.h"
#include "tls/tls_config.h"
#include "ui/ui.h"

namespace etcdpp::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

enum class PortKind {
  kClient,   // sniffed; gRPC, gateway, /health, /version, /metrics
  kMetrics,  // HTTP only; /metrics and /health
};

namespace {
class SessionV2Responder;
}  // namespace

// Lets replies from other threads (v2 proposals and watches) reach a
// session only while the io_context runs. A responder holds its session
// (nothing else may while a write is in Raft); Stop closes the gate and
// makes every live responder let go, so no session outlives the io_context.
struct ReplyGate {
  std::mutex mu;
  bool open = true;                    // guarded by mu
  std::set<SessionV2Responder*> live;  // guarded by mu
};

struct Listener::Impl {
  ListenerOptions options;
  std::shared_ptr<ReplyGate> gate = std::make_shared<ReplyGate>();
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<HealthChecker> health;
  // Connections handed to options.h2_front, plaintext and through the TLS
  // relay (etcdpp_h2front_connections_total); null without the front.
  metrics::Counter* front_plaintext = nullptr;
  metrics::Counter* front_tls = nullptr;
  std::atomic<bool> stopping{false};
  // Declared after what the connections use: destroying the io_context
  // destroys the connections still queued in it.
  net::io_context ioc;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // used on ioc's threads only
  std::vector<std::thread> threads;
};

namespace {

constexpr size_t kPeekBytes = kHttp2Preface.size();
// A client that sent part of the preface and stalls: checked again after
// 1, 2, 4 ... 64 ms, then every 64 ms, given up after this long.
constexpr auto kPartialPrefaceTimeout = std::chrono::seconds(10);
// A TLS client must finish its handshake, and say enough for its protocol to
// be known, within this long.
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);
// Relay buffers: one TLS record's plaintext inbound; outbound, enough for
// gRPC's larger writes to become few full records.
constexpr size_t kRelayInboundBytes = 16 * 1024;
constexpr size_t kRelayOutboundBytes = 64 * 1024;
constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kBodyPiece = 16 * 1024;

// The HTTP date of now, as Go's server sends it.
std::string HttpDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

class HttpSession;

// Hands a streaming call's events to its session's strand.
class SessionSink final : public StreamSink {
 public:
  explicit SessionSink(std::shared_ptr<HttpSession> session) : session_(std::move(session)) {}
  void OnReply(std::string serialized) override;
  void OnEnd(grpc::Status status) override;

 private:
  std::shared_ptr<HttpSession> session_;
};

// One HTTP/1.1 connection: requests one after another (keep-alive), each
// answered before the next is read. Every member is used on the
// connection's strand only.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Listener::Impl* impl, tcp::socket socket, PortKind kind)
      : impl_(impl), kind_(kind), stream_(std::move(socket)) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  void OnStreamReply(std::string serialized);
  void OnStreamEnd(grpc::Status status);
  // The v2 API's replies (V2Responder), on the strand.
  void RespondV2(V2HttpResponse response);
  void BeginV2Stream(V2HttpResponse head);
  void V2Chunk(std::string data);
  void EndV2Stream();
  template <typename F>
  void Post(F&& f) {
    net::post(stream_.get_executor(), std::forward<F>(f));
  }

 private:
  // --- requests
  void ReadHeader();
  void OnHeader(beast::error_code ec);
  void Dispatch();
  // Reads the request body in pieces: `on_piece` per piece, then `on_end`.
  void ReadBody(std::function<void(std::string_view)> on_piece, std::function<void()> on_end);
  void ReadBodyPiece();
  // Reads the whole body into body_, then runs `next`.
  void ReadWholeBody(std::function<void()> next);
  void ServeHealth();
  void ServeUi();
  void ServeUnary();
  void ServeV2();
  void StartStream(bool body_is_stream);
  void SendStreamRequest(const std::string& json);
  void RejectStreamRequest(const grpc::Status& why);
  void WatchForClose();
  void ConnectionLost();

  // --- responses
  bhttp::response<bhttp::string_body> NewResponse(bhttp::status status);
  void Respond(bhttp::response<bhttp::string_body> res);
  // http.Error's shape: text/plain, nosniff, the text and a newline.
  void RespondText(bhttp::status status, std::string text);
  void RespondGrpcError(const grpc::Status& status);
  void BeginChunked(bhttp::status status, const char* trailer_name);
  void QueueChunk(std::string data, bool from_stream);
  void QueueLastChunk(std::string trailer);
  void WriteNextChunk();
  void OnResponseWritten();
  void Close();

  void AddCommonHeaders(bhttp::fields& headers) const;

  Listener::Impl* const impl_;
  const PortKind kind_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  char body_piece_[kBodyPiece];

  // The request being served.
  std::string path_;
  bool keep_alive_ = false;
  bool expects_continue_ = false;
  Gateway::Metadata metadata_;
  std::string body_;
  std::function<void(std::string_view)> on_body_piece_;
  std::function<void()> on_body_end_;
  const http::Route* route_ = nullptr;

  // A streaming call and its chunked reply.
  std::shared_ptr<GatewayStream> call_;
  JsonValueSplitter splitter_;
  bool sent_request_ = false;              // a request message went to the call
  std::optional<grpc::Status> bad_first_;  // the first request did not parse
  bool send_closed_ = false;
  bool reply_started_ = false;  // the chunked header is out (or queued)
  bool replied_message_ = false;
  struct Out {
    std::string bytes;
    bool from_stream = false;  // a call's reply: ask for the next one once written
    bool last = false;
  };
  std::deque<Out> out_;
  bool writing_ = false;
  std::optional<bhttp::response<bhttp::empty_body>> chunked_header_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> chunked_serializer_;
  std::shared_ptr<void> response_in_flight_;
  bool closing_ = false;

  // A v2 watch waiting for its event: cancels it when the client goes.
  std::function<void()> v2_cancel_;
  std::vector<std::string> v2_early_chunks_;  // arrived before the head was sent
  bool v2_end_early_ = false;
};

// Hands the v2 API's replies to the session's strand, while the listener runs.
class SessionV2Responder final : public V2Responder {
 public:
  SessionV2Responder(std::shared_ptr<HttpSession> session, std::shared_ptr<ReplyGate> gate)
      : session_(std::move(session)), gate_(std::move(gate)) {
    std::lock_guard<std::mutex> lock(gate_->mu);
    if (gate_->open) {
      gate_->live.insert(this);
    } else {
      session_.reset();
    }
  }
  ~SessionV2Responder() override {
    std::shared_ptr<HttpSession> last;
    {
      std::lock_guard<std::mutex> lock(gate_->mu);
      gate_->live.erase(this);
      last = std::move(session_);
    }
  }
  // The gate is closing (its mutex held): drop the session.
  std::shared_ptr<HttpSession> Release() { return std::move(session_); }
  void Reply(V2HttpResponse response) override {
    Post([response = std::move(response)](HttpSession& s) mutable {
      s.RespondV2(std::move(response));
    });
  }
  void BeginStream(V2HttpResponse head) override {
    Post([head = std::move(head)](HttpSession& s) mutable { s.BeginV2Stream(std::move(head)); });
  }
  void StreamChunk(std::string data) override {
    Post([data = std::move(data)](HttpSession& s) mutable { s.V2Chunk(std::move(data)); });
  }
  void EndStream() override {
    Post([](HttpSession& s) { s.EndV2Stream(); });
  }

 private:
  template <typename F>
  void Post(F&& f) {
    std::lock_guard<std::mutex> lock(gate_->mu);
    if (!gate_->open || session_ == nullptr) return;
    std::shared_ptr<HttpSession> session = session_;
    session->Post([session, f = std::forward<F>(f)]() mutable { f(*session); });
  }

  std::shared_ptr<HttpSession> session_;  // guarded by gate_->mu
  std::shared_ptr<ReplyGate> gate_;
};

void SessionSink::OnReply(std::string serialized) {
  auto session = session_;
  session->Post([session, serialized = std::move(serialized)]() mutable {
    session->OnStreamReply(std::move(serialized));
  });
}

void SessionSink::OnEnd(grpc::Status status) {
  auto session = std::move(session_);
  session->Post([session, status = std::move(status)] { session->OnStreamEnd(status); });
}

void HttpSession::ReadHeader() {
  if (closing_ || impl_->stopping) return Close();
  path_.clear();
  body_.clear();
  metadata_.clear();
  route_ = nullptr;
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(impl_->options.max_body_bytes);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void HttpSession::OnHeader(beast::error_code ec) {
  if (ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return Close();
    }
    // A malformed request: Go's server answers 400 and closes.
    keep_alive_ = false;
    return RespondText(bhttp::status::bad_request, "Bad Request");
  }
  const auto& req = parser_->get();
  const std::string_view target(req.target().data(), req.target().size());
  path_ = std::string(target.substr(0, target.find('?')));
  keep_alive_ = req.keep_alive();
  const auto expect = req[bhttp::field::expect];
  expects_continue_ = beast::iequals(expect, "100-continue");
  // etcd's gateway passes a client's token on; the server reads it from
  // the "authorization" metadata.
  const auto auth = req[bhttp::field::authorization];
  if (!auth.empty()) metadata_.emplace_back("authorization", std::string(auth));
  Dispatch();
}

void HttpSession::Dispatch() {
  const bhttp::verb verb = parser_->get().method();
  auto self = shared_from_this();
  if (kind_ == PortKind::kClient && verb == bhttp::verb::options) {
    // The CORS preflight: the allow headers are on every reply anyway.
    return ReadWholeBody([self] { self->Respond(self->NewResponse(bhttp::status::ok)); });
  }
  if (path_ == "/health") {
    if (verb != bhttp::verb::get) {
      return ReadWholeBody([self] {
        auto res = self->NewResponse(bhttp::status::method_not_allowed);
        res.set(bhttp::field::allow, "GET");
        res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        res.set("X-Content-Type-Options", "nosniff");
        res.body() = "Method Not Allowed\n";
        self->Respond(std::move(res));
      });
    }
    return ReadWholeBody([self] { self->ServeHealth(); });
  }
  if (path_ == "/metrics") {
    return ReadWholeBody([self] {
      auto res = self->NewResponse(bhttp::status::ok);
      res.set(bhttp::field::content_type, metrics::kTextContentType);
      res.body() = self->impl_->options.registry->Render();
      self->Respond(std::move(res));
    });
  }
  if (kind_ == PortKind::kClient && path_ == "/version") {
    return ReadWholeBody([self, verb] {
      if (verb != bhttp::verb::get) {
        auto res = self->NewResponse(bhttp::status::method_not_allowed);
        res.set(bhttp::field::allow, "GET");
        res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        res.set("X-Content-Type-Options", "nosniff");
        res.body() = "Method Not Allowed\n";
        return self->Respond(std::move(res));
      }
      auto res = self->NewResponse(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = "{\"etcdserver\":" + JsonQuote(self->impl_->options.server_version) +
                   ",\"etcdcluster\":" + JsonQuote(self->impl_->options.cluster_version) + "}";
      self->Respond(std::move(res));
    });
  }
  if (kind_ == PortKind::kClient && impl_->options.enable_ui && ui::IsUiPath(path_)) {
    return ReadWholeBody([self] { self->ServeUi(); });
  }
  if (kind_ == PortKind::kClient && IsGatewayPath(path_)) {
    route_ = FindRoute(path_);
    if (route_ == nullptr) {
      return ReadWholeBody([self] { self->RespondText(bhttp::status::not_found, "Not Found"); });
    }
    if (verb != bhttp::verb::post) {
      return ReadWholeBody(
          [self] { self->RespondText(bhttp::status::method_not_allowed, "Method Not Allowed"); });
    }
    switch (route_->kind) {
      case CallKind::kUnary:
        return ReadWholeBody([self] { self->ServeUnary(); });
      case CallKind::kServerStream:
        return ReadWholeBody([self] { self->StartStream(false); });
      case CallKind::kBidiStream:
        // A body of requests may go on for as long as the call does.
        parser_->body_limit(std::numeric_limits<uint64_t>::max());
        return StartStream(true);
    }
  }
  if (kind_ == PortKind::kClient && impl_->options.v2 != nullptr && V2Api::Handles(path_)) {
    return ReadWholeBody([self] { self->ServeV2(); });
  }
  ReadWholeBody([self] { self->RespondText(bhttp::status::not_found, "404 page not found"); });
}

void HttpSession::ServeV2() {
  const auto& req = parser_->get();
  V2HttpRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.content_type = std::string(req[bhttp::field::content_type]);
  request.body = std::move(body_);
  v2_early_chunks_.clear();
  v2_end_early_ = false;
  auto responder = std::make_shared<SessionV2Responder>(shared_from_this(), impl_->gate);
  v2_cancel_ = impl_->options.v2->Serve(request, std::move(responder));
  if (v2_cancel_) {
    // A watch: the reply may take forever; notice the client leaving.
    keep_alive_ = false;
    WatchForClose();
  }
}

void HttpSession::RespondV2(V2HttpResponse response) {
  if (closing_) return;
  auto res = NewResponse(static_cast<bhttp::status>(response.status));
  for (auto& [name, value] : response.headers) res.set(name, value);
  res.body() = std::move(response.body);
  Respond(std::move(res));
}

void HttpSession::BeginV2Stream(V2HttpResponse head) {
  if (closing_) return;
  reply_started_ = true;
  chunked_header_.emplace(static_cast<bhttp::status>(head.status), 11);
  AddCommonHeaders(chunked_header_->base());
  for (auto& [name, value] : head.headers) chunked_header_->set(name, value);
  chunked_header_->keep_alive(keep_alive_);
  chunked_header_->chunked(true);
  chunked_serializer_.emplace(*chunked_header_);
  writing_ = true;
  bhttp::async_write_header(stream_, *chunked_serializer_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->writing_ = false;
                              if (ec) self->ConnectionLost();
                              self->WriteNextChunk();
                            });
  for (std::string& chunk : v2_early_chunks_) QueueChunk(std::move(chunk), false);
  v2_early_chunks_.clear();
  if (v2_end_early_) EndV2Stream();
}

void HttpSession::V2Chunk(std::string data) {
  if (closing_) return;
  if (!reply_started_) {
    v2_early_chunks_.push_back(std::move(data));
    return;
  }
  QueueChunk(std::move(data), false);
}

void HttpSession::EndV2Stream() {
  if (closing_) return;
  if (!reply_started_) {
    v2_end_early_ = true;
    return;
  }
  v2_cancel_ = nullptr;
  QueueLastChunk({});
}

void HttpSession::ReadBody(std::function<void(std::string_view)> on_piece,
                           std::function<void()> on_end) {
  on_body_piece_ = std::move(on_piece);
  on_body_end_ = std::move(on_end);
  if (expects_continue_ && !parser_->is_done()) {
    // The client waits for this before sending the body (curl does for
    // bodies over 1 KiB); Go's server sends it when the handler reads.
    expects_continue_ = false;
    auto line = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    return net::async_write(stream_, net::buffer(*line),
                            [self = shared_from_this(), line](beast::error_code ec, size_t) {
                              if (ec) return self->ConnectionLost();
                              self->ReadBodyPiece();
                            });
  }
  ReadBodyPiece();
}

void HttpSession::ReadBodyPiece() {
  if (closing_) return;
  if (parser_->is_done()) {
    auto on_end = std::move(on_body_end_);
    on_body_piece_ = nullptr;
    return on_end();
  }
  auto& body = parser_->get().body();
  body.data = body_piece_;
  body.size = sizeof body_piece_;
  bhttp::async_read_some(
      stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec == bhttp::error::body_limit) {
          self->keep_alive_ = false;
          if (self->call_ != nullptr) return self->ConnectionLost();
          return self->RespondText(bhttp::status::payload_too_large, "Request Entity Too Large");
        }
        if (ec) return self->ConnectionLost();
        const size_t got = sizeof self->body_piece_ - self->parser_->get().body().size;
        if (got > 0) self->on_body_piece_(std::string_view(self->body_piece_, got));
        self->ReadBodyPiece();
      });
}

void HttpSession::ReadWholeBody(std::function<void()> next) {
  ReadBody([this](std::string_view piece) { body_.append(piece); }, std::move(next));
}

void HttpSession::ServeHealth() {
  impl_->health->Check([self = shared_from_this()](bool healthy) {
    self->Post([self, healthy] {
      if (healthy) {
        auto res = self->NewResponse(bhttp::status::ok);
        res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        res.body() = "{\"health\":\"true\"}";
        return self->Respond(std::move(res));
      }
      self->RespondText(bhttp::status::service_unavailable, "{\"health\":\"false\"}");
    });
  });
}

void HttpSession::ServeUi() {
  const auto& req = parser_->get();
  const ui::Reply reply =
      ui::Serve(std::string_view(req.method_string().data(), req.method_string().size()), path_,
                std::string_view(req[bhttp::field::if_none_match].data(),
                                 req[bhttp::field::if_none_match].size()));
  auto res = NewResponse(static_cast<bhttp::status>(reply.status));
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.body() = std::string(reply.body);
  Respond(std::move(res));
}

void HttpSession::ServeUnary() {
  JsonValueSplitter splitter;
  splitter.Append(body_);
  // grpc-gateway decodes the first JSON value and ignores what follows.
  const std::optional<std::string> first = splitter.TakeRest();
  std::string request;
  const grpc::Status decoded = JsonToRequest(*route_, first.value_or(""), &request);
  if (!decoded.ok()) {
    auto res = NewResponse(bhttp::status::bad_request);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = ErrorJson(decoded);
    return Respond(std::move(res));
  }
  const http::Route* route = route_;
  impl_->gateway->CallUnary(
      *route, std::move(request), metadata_,
      [self = shared_from_this(), route](grpc::Status status, std::string reply) {
        self->Post([self, route, status = std::move(status), reply = std::move(reply)] {
          if (!status.ok()) return self->RespondGrpcError(status);
          std::string json;
          if (!ReplyToJson(*route, reply, &json)) {
            return self->RespondGrpcError(
                grpc::Status(grpc::StatusCode::INTERNAL, "cannot encode the reply as JSON"));
          }
          auto res = self->NewResponse(bhttp::status::ok);
          res.set(bhttp::field::content_type, "application/json");
          res.set("Grpc-Metadata-Content-Type", "application/grpc");
          res.body() = std::move(json);
          self->Respond(std::move(res));
        });
      });
}

void HttpSession::StartStream(bool body_is_stream) {
  // The connection is closed after a streamed reply: while the call runs a
  // read watches for the client going away, and that read may hold the
  // next request's first bytes.
  keep_alive_ = false;
  sent_request_ = false;
  bad_first_.reset();
  send_closed_ = false;
  reply_started_ = false;
  replied_message_ = false;
  splitter_ = JsonValueSplitter(impl_->options.max_body_bytes);
  call_ = std::make_shared<GatewayStream>(impl_->gateway.get(), *route_, metadata_,
                                          std::make_shared<SessionSink>(shared_from_this()));
  call_->Start();
  auto close_send = [this, body_is_stream] {
    if (auto rest = splitter_.TakeRest()) {
      SendStreamRequest(*rest);
    } else if (!body_is_stream && !send_closed_) {
      SendStreamRequest("");  // a server stream takes one request: an empty body is {}
    }
    send_closed_ = true;
    call_->CloseSend();
    WatchForClose();
  };
  if (!body_is_stream) {
    // A server stream takes exactly one request, read already.
    splitter_.Append(body_);
    return close_send();
  }
  ReadBody(
      [this](std::string_view piece) {
        if (send_closed_) return;
        splitter_.Append(piece);
        while (auto value = splitter_.Next()) SendStreamRequest(*value);
        if (splitter_.TooLarge()) {
          RejectStreamRequest(
              grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request message too large"));
        }
      },
      close_send);
}

void HttpSession::SendStreamRequest(const std::string& json) {
  if (send_closed_ || call_ == nullptr) return;
  std::string request;
  const grpc::Status decoded = JsonToRequest(*route_, json, &request);
  if (!decoded.ok()) return RejectStreamRequest(decoded);
  sent_request_ = true;
  call_->Send(std::move(request));
}

void HttpSession::RejectStreamRequest(const grpc::Status& why) {
  if (send_closed_ || call_ == nullptr) return;
  // As grpc-gateway: a bad first request fails the call (500, code 2);
  // a later one ends the requests and the replies continue.
  if (!sent_request_) {
    bad_first_ = grpc::Status(grpc::StatusCode::UNKNOWN, why.error_message());
    call_->Cancel();
  }
  send_closed_ = true;
  call_->CloseSend();
}

void HttpSession::WatchForClose() {
  if (closing_) return;
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            if (ec) return self->ConnectionLost();
                            // Bytes of a next request: kept, but not served
                            // (the connection closes after this reply).
                            self->buffer_.commit(n);
                          });
}

void HttpSession::ConnectionLost() {
  keep_alive_ = false;
  Close();  // with a call in flight: cancels it, OnStreamEnd closes
}

void HttpSession::OnStreamReply(std::string serialized) {
  if (closing_ || call_ == nullptr) {
    if (call_ != nullptr) call_->ReadNext();
    return;
  }
  std::string json;
  if (!ReplyToJson(*route_, serialized, &json)) json = "{}";
  if (!reply_started_) BeginChunked(bhttp::status::ok, nullptr);
  replied_message_ = true;
  QueueChunk("{\"result\":" + json + "}\n", /*from_stream=*/true);
}

void HttpSession::OnStreamEnd(grpc::Status status) {
  call_.reset();
  if (closing_) return Close();
  if (bad_first_) status = *bad_first_;
  if (!replied_message_ && !status.ok()) {
    if (bad_first_) {
      auto res = NewResponse(bhttp::status::internal_server_error);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = ErrorJson(status);
      return Respond(std::move(res));
    }
    return RespondGrpcError(status);
  }
  if (!reply_started_) BeginChunked(bhttp::status::ok, nullptr);
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    QueueChunk(StreamErrorJson(status) + "\n", false);
  }
  QueueLastChunk({});
}

bhttp::response<bhttp::string_body> HttpSession::NewResponse(bhttp::status status) {
  bhttp::response<bhttp::string_body> res{status, 11};
  AddCommonHeaders(res.base());
  return res;
}

void HttpSession::AddCommonHeaders(bhttp::fields& headers) const {
  if (kind_ == PortKind::kClient) {
    // etcd answers every client-port request with permissive CORS headers.
    headers.set("Access-Control-Allow-Headers", "accept, content-type, authorization");
    headers.set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
    headers.set("Access-Control-Allow-Origin", "*");
  }
  headers.set(bhttp::field::date, HttpDate());
}

void HttpSession::Respond(bhttp::response<bhttp::string_body> res) {
  res.keep_alive(keep_alive_);
  res.prepare_payload();
  auto owned = std::make_shared<bhttp::response<bhttp::string_body>>(std::move(res));
  response_in_flight_ = owned;
  bhttp::async_write(stream_, *owned, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->response_in_flight_.reset();
    if (ec) return self->Close();
    self->OnResponseWritten();
  });
}

void HttpSession::RespondText(bhttp::status status, std::string text) {
  auto res = NewResponse(status);
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::move(text) + "\n";
  Respond(std::move(res));
}

void HttpSession::RespondGrpcError(const grpc::Status& status) {
  // grpc-gateway's error for a failed call: chunked, with the call's
  // trailer passed on.
  BeginChunked(static_cast<bhttp::status>(HttpStatusFromGrpc(status.error_code())),
               "Grpc-Trailer-Content-Type");
  QueueChunk(ErrorJson(status), false);
  QueueLastChunk("Grpc-Trailer-Content-Type: application/grpc\r\n");
}

void HttpSession::BeginChunked(bhttp::status status, const char* trailer_name) {
  reply_started_ = true;
  chunked_header_.emplace(status, 11);
  AddCommonHeaders(chunked_header_->base());
  chunked_header_->set(bhttp::field::content_type, "application/json");
  if (trailer_name != nullptr) {
    chunked_header_->set(bhttp::field::trailer, trailer_name);
  } else {
    chunked_header_->set("Grpc-Metadata-Content-Type", "application/grpc");
  }
  chunked_header_->keep_alive(keep_alive_);
  chunked_header_->chunked(true);
  chunked_serializer_.emplace(*chunked_header_);
  writing_ = true;
  bhttp::async_write_header(stream_, *chunked_serializer_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->writing_ = false;
                              if (ec) self->ConnectionLost();
                              self->WriteNextChunk();
                            });
}

void HttpSession::QueueChunk(std::string data, bool from_stream) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out_.push_back(Out{std::string(size) + data + "\r\n", from_stream, false});
  WriteNextChunk();
}

void HttpSession::QueueLastChunk(std::string trailer) {
  out_.push_back(Out{"0\r\n" + trailer + "\r\n", false, true});
  WriteNextChunk();
}

void HttpSession::WriteNextChunk() {
  if (writing_ || out_.empty()) return;
  if (closing_) {
    // Nothing more reaches the client; still let the call move on.
    for (const Out& o : out_) {
      if (o.from_stream && call_ != nullptr) call_->ReadNext();
    }
    const bool last = !out_.empty() && out_.back().last;
    out_.clear();
    if (last) Close();
    return;
  }
  writing_ = true;
  auto bytes = std::make_shared<Out>(std::move(out_.front()));
  out_.pop_front();
  net::async_write(stream_, net::buffer(bytes->bytes),
                   [self = shared_from_this(), bytes](beast::error_code ec, size_t) {
                     self->writing_ = false;
                     if (bytes->from_stream && self->call_ != nullptr) self->call_->ReadNext();
                     if (ec) {
                       self->ConnectionLost();
                     } else if (bytes->last) {
                       self->out_.clear();
                       return self->OnResponseWritten();
                     }
                     self->WriteNextChunk();
                   });
}

void HttpSession::OnResponseWritten() {
  chunked_serializer_.reset();
  chunked_header_.reset();
  reply_started_ = false;
  if (!keep_alive_ || closing_ || impl_->stopping) return Close();
  ReadHeader();
}

void HttpSession::Close() {
  closing_ = true;
  if (v2_cancel_) {
    auto cancel = std::move(v2_cancel_);
    v2_cancel_ = nullptr;
    cancel();
  }
  if (call_ != nullptr) {
    call_->Cancel();  // the session lives on until OnStreamEnd
    return;
  }
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

// Hands a connected descriptor to the gRPC server, which owns it from now
// on. `common_name`: the verified client certificate behind it (TLS relay).
// Returns the identity ticket (api/client_identity.h); 0 if not handed over.
uint64_t GiveToGrpc(Listener::Impl* impl, int fd, std::optional<std::string> common_name) {
  // gRPC expects what its own accept would give it: non-blocking, no Nagle
  // (meaningless, and refused, on the relay's local socket).
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    ::close(fd);
    return 0;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Before gRPC can read a call from it: a number reused from an earlier
  // connection must not carry that connection's identity.
  const uint64_t ticket = api::BindClientIdentity(fd, std::move(common_name));
  grpc::AddInsecureChannelFromFd(impl->options.grpc_server, fd);
  return ticket;
}

// One https:// client connection: the TLS handshake, then a relay of the
// plaintext between the TLS stream and one end of a socketpair whose other
// end is served as a plain connection (gRPC or HTTP/1.1). Used on the
// connection's strand only; lives as long as a handler holds it.
class TlsRelay : public std::enable_shared_from_this<TlsRelay> {
 public:
  TlsRelay(Listener::Impl* impl, tcp::socket socket)
      : impl_(impl),
        context_(impl->options.tls->Current()),
        tls_(std::move(socket), *context_),
        inner_(tls_.get_executor()),
        timer_(tls_.get_executor()) {}

  ~TlsRelay() {
    if (identity_ticket_ != 0) api::UnbindClientIdentity(grpc_fd_, identity_ticket_);
  }

  void Start() {
    timer_.expires_after(kTlsHandshakeTimeout);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Close();
    });
    tls_.async_handshake(
        net::ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

 private:
  void OnHandshake(beast::error_code ec) {
    if (ec || impl_->stopping) return Close();  // refused: bad or missing certificate, ...
    common_name_ = tls::VerifiedPeerCommonName(tls_.native_handle());
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(tls_.native_handle(), &alpn, &alpn_len);
    const std::string_view selected(reinterpret_cast<const char*>(alpn), alpn_len);
    if (selected == "h2") return Connect(Protocol::kHttp2);
    if (selected == "http/1.1") return Connect(Protocol::kHttp1);
    ReadFirstBytes();  // no ALPN: tell the protocols apart as on a plain port
  }

  void ReadFirstBytes() {
    const size_t have = first_bytes_.size();
    first_bytes_.resize(kRelayInboundBytes);
    tls_.async_read_some(net::buffer(first_bytes_.data() + have, first_bytes_.size() - have),
                         [self = shared_from_this(), have](beast::error_code ec, size_t n) {
                           self->first_bytes_.resize(have + n);
                           if (ec) return self->Close();
                           const Protocol protocol = Classify(self->first_bytes_);
                           if (protocol == Protocol::kUndecided) return self->ReadFirstBytes();
                           self->Connect(protocol);
                         });
  }

  void Connect(Protocol protocol) {
    timer_.cancel();
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return Close();
    beast::error_code ec;
    inner_.assign(net::local::stream_protocol(), fds[0], ec);
    if (ec) {
      ::close(fds[0]);
      ::close(fds[1]);
      return Close();
    }
    if (protocol == Protocol::kHttp2 && impl_->options.h2_front != nullptr) {
      // The front serves it as a plaintext connection, under the verified
      // certificate's name if the client showed one.
      impl_->front_tls->Inc();
      impl_->options.h2_front->Adopt(fds[1], common_name_);
    } else if (protocol == Protocol::kHttp2) {
      grpc_fd_ = fds[1];
      identity_ticket_ = GiveToGrpc(impl_, fds[1], common_name_);
    } else {
      // Beast's TCP stream reads and writes a local socket just as well.
      tcp::socket plain(tls_.get_executor());
      plain.assign(tcp::v4(), fds[1], ec);
      if (ec) {
        ::close(fds[1]);
        return Close();
      }
      std::make_shared<HttpSession>(impl_, std::move(plain), PortKind::kClient)->Start();
    }
    inbound_.resize(kRelayInboundBytes);
    outbound_.resize(kRelayOutboundBytes);
    if (first_bytes_.empty()) {
      PumpInbound();
    } else {
      // What the sniff read is the start of the stream.
      net::async_write(inner_, net::buffer(first_bytes_),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->first_bytes_.clear();
                         self->PumpInbound();
                       });
    }
    PumpOutbound();
  }

  // Client to server: decrypt, then write to the local socket.
  void PumpInbound() {
    tls_.async_read_some(net::buffer(inbound_),
                         [self = shared_from_this()](beast::error_code ec, size_t n) {
                           if (ec) {
                             // The client closed (with or without close_notify)
                             // or broke: the server end reads end-of-file and
                             // answers what it still owes.
                             beast::error_code ignored;
                             self->inner_.shutdown(net::socket_base::shutdown_send, ignored);
                             return;
                           }
                           net::async_write(self->inner_, net::buffer(self->inbound_.data(), n),
                                            [self](beast::error_code ec, size_t) {
                                              if (ec) return self->Close();
                                              self->PumpInbound();
                                            });
                         });
  }

  // Server to client: read the local socket, then encrypt. The server end
  // closing ends the connection.
  void PumpOutbound() {
    inner_.async_read_some(net::buffer(outbound_),
                           [self = shared_from_this()](beast::error_code ec, size_t n) {
                             if (ec) return self->Close();
                             net::async_write(self->tls_, net::buffer(self->outbound_.data(), n),
                                              [self](beast::error_code ec, size_t) {
                                                if (ec) return self->Close();
                                                self->PumpOutbound();
                                              });
                           });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ignored;
    tls_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    tls_.next_layer().close(ignored);
    inner_.close(ignored);
  }

  Listener::Impl* const impl_;
  const std::shared_ptr<net::ssl::context> context_;  // outlives tls_
  net::ssl::stream<tcp::socket> tls_;
  net::local::stream_protocol::socket inner_;  // the relay's end of the socketpair
  net::steady_timer timer_;
  std::optional<std::string> common_name_;
  std::string first_bytes_;  // read before the protocol was known (no ALPN)
  std::vector<char> inbound_;
  std::vector<char> outbound_;
  int grpc_fd_ = -1;  // gRPC's end, while identity_ticket_ != 0
  uint64_t identity_ticket_ = 0;
  bool closed_ = false;
};

// A new client-port connection until its first bytes tell its protocol.
class Sniffer : public std::enable_shared_from_this<Sniffer> {
 public:
  Sniffer(Listener::Impl* impl, tcp::socket socket)
      : impl_(impl), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  void Start() {
    started_ = std::chrono::steady_clock::now();
    WaitReadable();
  }

 private:
  void WaitReadable() {
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Peek();
    });
  }

  void Peek() {
    if (impl_->stopping) return;
    char bytes[kPeekBytes];
    // Peeked, not read: gRPC must receive the preface itself.
    const ssize_t n = ::recv(socket_.native_handle(), bytes, sizeof bytes, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return;  // closed before saying anything
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) WaitReadable();
      return;
    }
    switch (Classify(std::string_view(bytes, static_cast<size_t>(n)))) {
      case Protocol::kHttp2:
        return HandToGrpc();
      case Protocol::kHttp1:
        return std::make_shared<HttpSession>(impl_, std::move(socket_), PortKind::kClient)->Start();
      case Protocol::kUndecided:
        // The unread bytes keep the socket readable, so waiting for
        // readability would spin: poll on a timer until the rest arrives.
        if (std::chrono::steady_clock::now() - started_ > kPartialPrefaceTimeout) return;
        timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
        backoff_ms_ = std::min(backoff_ms_ * 2, 64);
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (!ec) self->Peek();
        });
        return;
    }
  }

  void HandToGrpc() {
    beast::error_code ec;
    const int fd = socket_.release(ec);
    if (ec) return;
    if (impl_->options.h2_front != nullptr) {
      impl_->front_plaintext->Inc();
      return impl_->options.h2_front->Adopt(fd);
    }
    GiveToGrpc(impl_, fd, std::nullopt);
  }

  Listener::Impl* const impl_;
  tcp::socket socket_;
  net::steady_timer timer_;
  std::chrono::steady_clock::time_point started_;
  int backoff_ms_ = 1;
};

void Accept(Listener::Impl* impl, tcp::acceptor* acceptor, PortKind kind, bool tls) {
  acceptor->async_accept(
      net::make_strand(impl->ioc),
      [impl, acceptor, kind, tls](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || impl->stopping) return;
        if (ec) {
          // Out of descriptors or similar: retry shortly instead of spinning.
          auto timer =
              std::make_shared<net::steady_timer>(impl->ioc, std::chrono::milliseconds(100));
          timer->async_wait([impl, acceptor, kind, tls, timer](beast::error_code) {
            if (!impl->stopping) Accept(impl, acceptor, kind, tls);
          });
          return;
        }
        if (kind == PortKind::kMetrics) {
          std::make_shared<HttpSession>(impl, std::move(socket), kind)->Start();
        } else if (tls) {
          const int one = 1;
          setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          std::make_shared<TlsRelay>(impl, std::move(socket))->Start();
        } else {
          std::make_shared<Sniffer>(impl, std::move(socket))->Start();
        }
        Accept(impl, acceptor, kind, tls);
      });
}

Status Bind(Listener::Impl* impl, const std::string& address, PortKind kind, bool tls) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("bad listen address " + address);
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto endpoints =
      resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return Status::Unavailable("cannot listen on " + address + ": " + ec.message());
  size_t bound = 0;
  std::string last_error;
  for (const auto& entry : endpoints) {
    auto acceptor = std::make_unique<tcp::acceptor>(impl->ioc);
    const tcp::endpoint endpoint = entry.endpoint();
    if (acceptor->open(endpoint.protocol(), ec) ||
        acceptor->set_option(net::socket_base::reuse_address(true), ec) ||
        (endpoint.address().is_v6() && acceptor->set_option(net::ip::v6_only(true), ec)) ||
        acceptor->bind(endpoint, ec) ||
        acceptor->listen(net::socket_base::max_listen_connections, ec)) {
      last_error = ec.message();
      continue;
    }
    Accept(impl, acceptor.get(), kind, tls);
    impl->acceptors.push_back(std::move(acceptor));
    ++bound;
  }
  if (bound == 0) return Status::Unavailable("cannot listen on " + address + ": " + last_error);
  return Status::OK();
}

}  // namespace

Listener::Listener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Listener>> Listener::Start(const ListenerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = options.grpc_server->InProcessChannel(args);
  impl->gateway = std::make_unique<Gateway>(channel);
  impl->health = std::make_unique<HealthChecker>(channel, *options.registry);
  if (options.h2_front != nullptr) {
    auto& front = options.registry->AddCounterFamily(
        "etcdpp_h2front_connections_total",
        "Client connections served by the HTTP/2 front (--h2-front), by transport.", {"transport"});
    impl->front_plaintext = &front.WithLabels({"plaintext"});
    impl->front_tls = &front.WithLabels({"tls"});
  }
  for (const std::string& address : options.client_addresses) {
    Status st = Bind(impl.get(), address, PortKind::kClient, false);
    if (!st.ok()) return st;
  }
  if (!options.tls_client_addresses.empty() && options.tls == nullptr) {
    return Status::InvalidArgument("https client URLs need a certificate (--cert-file)");
  }
  for (const std::string& address : options.tls_client_addresses) {
    Status st = Bind(impl.get(), address, PortKind::kClient, true);
    if (!st.ok()) return st;
  }
  for (const std::string& address : options.metrics_addresses) {
    Status st = Bind(impl.get(), address, PortKind::kMetrics, false);
    if (!st.ok()) return st;
  }
  Impl* raw = impl.get();
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    raw->threads.emplace_back([raw] { raw->ioc.run(); });
  }
  return std::unique_ptr<Listener>(new Listener(std::move(impl)));
}

void Listener::Stop() {
  if (impl_->stopping.exchange(true)) return;
  std::vector<std::shared_ptr<HttpSession>> released;
  {
    std::lock_guard<std::mutex> lock(impl_->gate->mu);
    impl_->gate->open = false;
    for (SessionV2Responder* r : impl_->gate->live) released.push_back(r->Release());
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->gateway->CancelStreams();
}

Listener::~Listener() {
  Stop();
  // Every call's completion posts to the io_context: destroy it only once
  // none is left in flight.
  impl_->gateway->WaitIdle();
  impl_->health.reset();
  impl_->acceptors.clear();
}

}  // namespace etcdpp::http
