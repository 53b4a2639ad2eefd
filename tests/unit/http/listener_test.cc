// The client port end to end in one process, with fake etcd services: the
// sniff hands gRPC connections to the gRPC server, HTTP/1.1 requests reach
// the gateway, /health and /metrics, keep-alive connections stay HTTP, and
// streams flow both ways. Runs under ASan in scripts/test.sh.
#include "http/listener.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <string>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "metrics/metrics.h"
#include "support/free_port.h"

namespace etcdpp::http {
namespace {

class FakeKv final : public etcdserverpb::KV::CallbackService {
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override {
    auto* reactor = context->DefaultReactor();
    if (request->key() == "missing") {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: not here"));
      return reactor;
    }
    response->mutable_header()->set_revision(7);
    auto* kv = response->add_kvs();
    kv->set_key(request->key());
    kv->set_value("value of " + request->key());
    response->set_count(1);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class FakeMaintenance final : public etcdserverpb::Maintenance::CallbackService {
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const etcdserverpb::StatusRequest*,
                                   etcdserverpb::StatusResponse* response) override {
    response->set_leader(1);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* context,
                                  const etcdserverpb::AlarmRequest*,
                                  etcdserverpb::AlarmResponse*) override {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Answers every request with created=true and watch_id = its start_revision.
class FakeWatch final : public etcdserverpb::Watch::CallbackService {
  class Stream final
      : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
   public:
    Stream() { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::OK);  // ends when the client half-closes
      response_.Clear();
      response_.set_created(true);
      response_.set_watch_id(request_.create_request().start_revision());
      StartWrite(&response_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::CANCELLED);
      StartRead(&request_);
    }
    void OnDone() override { delete this; }

   private:
    etcdserverpb::WatchRequest request_;
    etcdserverpb::WatchResponse response_;
  };
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext*) override {
    return new Stream();
  }
};

using etcdpp::testing::FreePort;

// Sends `request` on a new connection and returns everything the server
// sends until it closes the connection (5 s receive timeout).
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "connect failed";
  }
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    reply.append(buf, static_cast<size_t>(n));
  close(fd);
  return reply;
}

std::string Post(const std::string& path, const std::string& body, bool close = true) {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
         (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

class ListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&kv_);
    builder.RegisterService(&maintenance_);
    builder.RegisterService(&watch_);
    server_ = builder.BuildAndStart();  // no listening port: the listener hands it sockets
    ASSERT_NE(server_, nullptr);
    port_ = FreePort();
    metrics_port_ = FreePort();
    ListenerOptions options;
    options.client_addresses = {"127.0.0.1:" + std::to_string(port_)};
    options.metrics_addresses = {"127.0.0.1:" + std::to_string(metrics_port_)};
    options.grpc_server = server_.get();
    options.registry = &registry_;
    auto listener = Listener::Start(options);
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    listener_ = std::move(*listener);
  }

  void TearDown() override {
    if (listener_) listener_->Stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    listener_.reset();
  }

  FakeKv kv_;
  FakeMaintenance maintenance_;
  FakeWatch watch_;
  metrics::Registry registry_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
  int metrics_port_ = 0;
};

TEST_F(ListenerTest, GrpcOnTheClientPort) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  auto stub = etcdserverpb::KV::NewStub(channel);
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::RangeRequest request;
    request.set_key(fmt::format("k{}", i));
    etcdserverpb::RangeResponse response;
    const grpc::Status st = stub->Range(&context, request, &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(response.kvs(0).value(), "value of k" + std::to_string(i));
  }
}

TEST_F(ListenerTest, GatewayUnaryAndError) {
  const std::string ok = Exchange(port_, Post("/v3/kv/range", R"({"key":"Zm9v"})"));
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(
      ok.find(
          R"({"header":{"revision":"7"},"kvs":[{"key":"Zm9v","value":"dmFsdWUgb2YgZm9v"}],"count":"1"})"),
      std::string::npos)
      << ok;
  const std::string missing =
      Exchange(port_, Post("/v3beta/kv/range", R"({"key":"bWlzc2luZw=="})"));
  EXPECT_EQ(missing.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << missing;
  EXPECT_NE(
      missing.find(R"({"error":"etcdserver: not here","message":"etcdserver: not here","code":5})"),
      std::string::npos)
      << missing;
  EXPECT_NE(missing.find("Grpc-Trailer-Content-Type: application/grpc"), std::string::npos);
  const std::string bad = Exchange(port_, Post("/v3/kv/range", "{nope"));
  EXPECT_EQ(bad.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << bad;
  EXPECT_NE(bad.find(R"("code":3})"), std::string::npos) << bad;
}

TEST_F(ListenerTest, KeepAliveConnectionServesManyRequests) {
  std::string requests;
  for (int i = 0; i < 5; ++i) requests += Post("/v3/kv/range", R"({"key":"YQ=="})", false);
  requests += "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  const std::string replies = Exchange(port_, requests);  // pipelined
  size_t count = 0;
  for (size_t at = replies.find("HTTP/1.1 200 OK"); at != std::string::npos;
       at = replies.find("HTTP/1.1 200 OK", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 6u) << replies;
  EXPECT_NE(replies.find(R"({"health":"true"})"), std::string::npos) << replies;
}

TEST_F(ListenerTest, WatchStreamRepliesPerRequest) {
  const std::string body =
      R"({"create_request":{"start_revision":"3"}} {"create_request":{"start_revision":4}})";
  const std::string reply = Exchange(port_, Post("/v3/watch", body));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Transfer-Encoding: chunked"), std::string::npos) << reply;
  EXPECT_NE(reply.find(R"({"result":{"watch_id":"3","created":true}})"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find(R"({"result":{"watch_id":"4","created":true}})"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find("\r\n0\r\n\r\n"), std::string::npos) << reply;  // the stream ended
}

TEST_F(ListenerTest, MetricsPortServesOnlyMetricsAndHealth) {
  registry_.AddCounter("test_hits_total", "Hits.").Inc(3);
  const std::string metrics =
      Exchange(metrics_port_, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_NE(metrics.find("\r\n\r\n# HELP"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("test_hits_total 3\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("Access-Control-Allow-Origin"), std::string::npos);
  const std::string version =
      Exchange(metrics_port_, "GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(version.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << version;
}

}  // namespace
}  // namespace etcdpp::http
