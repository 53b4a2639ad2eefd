#include "cmd/bench/watch_fanout.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t Nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The put index a value starts with (see kWatchPutIndexBytes), or -1.
int64_t PutIndexOf(const std::string& value) {
  if (value.size() < static_cast<size_t>(kWatchPutIndexBytes)) return -1;
  int64_t index = 0;
  for (int i = 0; i < kWatchPutIndexBytes; ++i) {
    const char c = value[static_cast<size_t>(i)];
    if (c < '0' || c > '9') return -1;
    index = index * 10 + (c - '0');
  }
  return index;
}

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
  if (o.endpoints.empty() || o.streams <= 0 || o.watchers < o.streams || o.puts <= 0 ||
      o.val_size < kWatchPutIndexBytes || o.put_rate < 0) {
    result.error = fmt::format(
        "need endpoints, streams > 0, watchers >= streams, puts > 0, val-size >= {}, "
        "put-rate >= 0",
        kWatchPutIndexBytes);
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
  // Steady-clock nanoseconds at which put i was sent; written by the put
  // loop before the put leaves, read by stream threads once its event is in.
  std::vector<std::atomic<int64_t>> sent_ns(static_cast<size_t>(o.puts));
  std::vector<std::vector<double>> latencies(static_cast<size_t>(o.streams));
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
      std::vector<double>& mine = latencies[static_cast<size_t>(s)];
      mine.reserve(want);
      while (got < want && stream->Read(&resp)) {
        got += static_cast<uint64_t>(resp.events_size());
        const int64_t now_ns = Nanos(Clock::now());
        for (const auto& event : resp.events()) {
          const int64_t index = PutIndexOf(event.kv().value());
          if (index < 0 || index >= o.puts) continue;
          const int64_t sent = sent_ns[static_cast<size_t>(index)].load(std::memory_order_acquire);
          mine.push_back(static_cast<double>(now_ns - sent) * 1e-9);
        }
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
    etcdserverpb::PutRequest req;
    req.set_key(o.key);
    req.set_value(std::string(static_cast<size_t>(o.val_size), 'v'));
    etcdserverpb::PutResponse resp;
    for (int i = 0; i < o.puts; ++i) {
      if (o.put_rate > 0) {
        // Pacing, as etcd's watch-latency does: put i is due i / rate after the first.
        std::this_thread::sleep_until(
            start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / o.put_rate)));
      }
      const std::string index = fmt::format("{:0{}d}", i, kWatchPutIndexBytes);
      req.mutable_value()->replace(0, index.size(), index);
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      sent_ns[static_cast<size_t>(i)].store(Nanos(Clock::now()), std::memory_order_release);
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
  for (auto& mine : latencies) {
    result.latencies_s.insert(result.latencies_s.end(), mine.begin(), mine.end());
  }
  Clock::time_point last = start;
  for (const auto& t : last_event) last = std::max(last, t);
  result.delivery_s = Seconds(last - start);
  if (result.delivery_s > 0) {
    result.events_per_s = static_cast<double>(result.events) / result.delivery_s;
  }
  return result;
}

}  // namespace etcdpp::bench
