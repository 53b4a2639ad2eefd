#include "cmd/bench/watch_fanout.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::shared_ptr<grpc::Channel> Connect(std::string endpoint,
                                       const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  if (const size_t p = endpoint.find("://"); p != std::string::npos) endpoint.erase(0, p + 3);
  grpc::ChannelArguments args;
  // One TCP connection per stream, as separate clients would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(
      endpoint, creds != nullptr ? creds : grpc::InsecureChannelCredentials(), args);
}

}  // namespace

WatchFanoutResult RunWatchFanout(const WatchFanoutOptions& o) {
  WatchFanoutResult result;
  if (o.endpoints.empty() || o.streams <= 0 || o.watchers < o.streams || o.puts <= 0) {
    result.error = "need endpoints, streams > 0, watchers >= streams, puts > 0";
    return result;
  }
  const auto deadline = std::chrono::system_clock::now() + o.timeout;
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  std::string error;
  std::atomic<uint64_t> delivered{0};
  Clock::time_point start;
  std::vector<Clock::time_point> last_event(static_cast<size_t>(o.streams));
  const auto setup_start = Clock::now();

  std::vector<std::thread> threads;
  for (int s = 0; s < o.streams; ++s) {
    const int count = o.watchers / o.streams + (s < o.watchers % o.streams ? 1 : 0);
    threads.emplace_back([&, s, count] {
      auto stub =
          etcdserverpb::Watch::NewStub(Connect(o.endpoints[s % o.endpoints.size()], o.credentials));
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      auto stream = stub->Watch(&ctx);
      auto fail = [&](const std::string& why) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.empty()) error = why;
        ready++;
        cv.notify_all();
      };
      for (int i = 0; i < count; ++i) {
        etcdserverpb::WatchRequest req;
        req.mutable_create_request()->set_key(o.key);
        if (!stream->Write(req)) return fail("watch stream closed while creating watchers");
      }
      etcdserverpb::WatchResponse resp;
      for (int created = 0; created < count;) {
        if (!stream->Read(&resp)) return fail("watch stream closed while creating watchers");
        if (resp.created()) created++;
      }
      {
        std::unique_lock<std::mutex> lock(mu);
        ready++;
        cv.notify_all();
        cv.wait(lock, [&] { return go; });
      }
      const uint64_t want = static_cast<uint64_t>(count) * static_cast<uint64_t>(o.puts);
      uint64_t got = 0;
      while (got < want && stream->Read(&resp)) {
        got += static_cast<uint64_t>(resp.events_size());
      }
      last_event[static_cast<size_t>(s)] = Clock::now();
      delivered += got;
      ctx.TryCancel();
      stream->Finish();
      if (got < want) fail("watch stream ended before every event arrived (timeout?)");
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready == o.streams; });
    result.setup_s = Seconds(Clock::now() - setup_start);
    start = Clock::now();
    go = true;
    cv.notify_all();
  }
  if (error.empty()) {
    auto kv = etcdserverpb::KV::NewStub(Connect(o.endpoints[0], o.credentials));
    const std::string value(static_cast<size_t>(o.val_size), 'v');
    for (int i = 0; i < o.puts; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      etcdserverpb::PutRequest req;
      req.set_key(o.key);
      req.set_value(value);
      etcdserverpb::PutResponse resp;
      grpc::Status st = kv->Put(&ctx, req, &resp);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.empty()) error = "put failed: " + st.error_message();
        break;
      }
    }
    result.puts_s = Seconds(Clock::now() - start);
  }
  for (std::thread& t : threads) t.join();
  result.error = error;
  result.events = delivered.load();
  Clock::time_point last = start;
  for (const auto& t : last_event) last = std::max(last, t);
  result.delivery_s = Seconds(last - start);
  if (result.delivery_s > 0) {
    result.events_per_s = static_cast<double>(result.events) / result.delivery_s;
  }
  return result;
}

}  // namespace etcdpp::bench
