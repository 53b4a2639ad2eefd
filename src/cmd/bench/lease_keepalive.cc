#include "cmd/bench/lease_keepalive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string StripScheme(const std::string& endpoint) {
  const size_t p = endpoint.find("://");
  return p == std::string::npos ? endpoint : endpoint.substr(p + 3);
}

std::shared_ptr<grpc::Channel> Connect(const std::string& endpoint,
                                       const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  grpc::ChannelArguments args;
  // One TCP connection per stream, as separate clients would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(
      StripScheme(endpoint), creds != nullptr ? creds : grpc::InsecureChannelCredentials(), args);
}

}  // namespace

LeaseKeepAliveResult RunLeaseKeepAlive(const LeaseKeepAliveOptions& o) {
  LeaseKeepAliveResult result;
  if (o.endpoints.empty() || o.streams <= 0 || o.total <= 0) {
    result.error = "need endpoints, streams > 0, total > 0";
    return result;
  }
  const auto deadline = std::chrono::system_clock::now() + o.timeout;
  std::atomic<int64_t> next{0};  // keep-alives handed out
  std::mutex mu;
  std::vector<double> latencies;  // guarded by mu
  std::string error;              // guarded by mu
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty()) error = why;
  };

  // Each stream: connect, grant its lease, then keep-alives one at a time.
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  for (int s = 0; s < o.streams; ++s) {
    threads.emplace_back([&, s] {
      auto stub =
          etcdserverpb::Lease::NewStub(Connect(o.endpoints[s % o.endpoints.size()], o.credentials));
      etcdserverpb::LeaseGrantRequest grant;
      grant.set_ttl(o.ttl);
      etcdserverpb::LeaseGrantResponse granted;
      grpc::ClientContext grant_ctx;
      grant_ctx.set_deadline(deadline);
      grpc::Status st = stub->LeaseGrant(&grant_ctx, grant, &granted);
      if (!st.ok()) {
        fail("LeaseGrant: " + st.error_message());
        return;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      auto stream = stub->LeaseKeepAlive(&ctx);
      std::vector<double> mine;
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(granted.id());
      etcdserverpb::LeaseKeepAliveResponse resp;
      while (next.fetch_add(1) < o.total) {
        const Clock::time_point t0 = Clock::now();
        if (!stream->Write(req) || !stream->Read(&resp)) {
          fail("LeaseKeepAlive stream ended: " + stream->Finish().error_message());
          break;
        }
        if (resp.ttl() <= 0) {
          fail("lease expired during the benchmark");
          break;
        }
        mine.push_back(Seconds(Clock::now() - t0));
      }
      stream->WritesDone();
      (void)stream->Finish();
      std::lock_guard<std::mutex> lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  result.total_s = Seconds(Clock::now() - start);
  result.error = error;
  result.keepalives = static_cast<int64_t>(latencies.size());
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    double sum = 0;
    for (double l : latencies) sum += l;
    result.avg_latency_s = sum / static_cast<double>(latencies.size());
    result.p99_latency_s = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  if (result.total_s > 0) result.per_s = static_cast<double>(result.keepalives) / result.total_s;
  return result;
}

}  // namespace etcdpp::bench
