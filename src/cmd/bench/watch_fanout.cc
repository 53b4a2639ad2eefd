#include "cmd/bench/watch_fanout.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cmd/bench/h2_client.h"
#include "cmd/bench/stream_channel.h"
#include "cmd/bench/watch_response_scan.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t Nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The put index a value starts with (see kWatchPutIndexBytes), or -1.
int64_t PutIndexOf(std::string_view value) {
  if (value.size() < static_cast<size_t>(kWatchPutIndexBytes)) return -1;
  int64_t index = 0;
  for (int i = 0; i < kWatchPutIndexBytes; ++i) {
    const char c = value[static_cast<size_t>(i)];
    if (c < '0' || c > '9') return -1;
    index = index * 10 + (c - '0');
  }
  return index;
}

// The bytes of a message gRPC read: its one slice when it has one, else a
// copy of its slices into `flat`.
std::string_view Contiguous(const grpc::ByteBuffer& buffer, grpc::Slice& single,
                            std::string& flat) {
  if (buffer.TrySingleSlice(&single).ok()) {
    return {reinterpret_cast<const char*>(single.begin()), single.size()};
  }
  std::vector<grpc::Slice> slices;
  flat.clear();
  if (buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  return flat;
}

// One watch stream driven on the shared completion queue: it writes its
// create requests one after another while reading, counts the created
// responses, then reads events until it has every one it expects. At most
// one read and one write are in flight per stream, so its state is touched
// by one completion at a time. Responses are read as bytes and scanned
// (watch_response_scan.h), not parsed into messages.
struct FanoutStream {
  enum class Op { kStart, kWrite, kRead, kFinish };
  struct Tag {
    FanoutStream* stream;
    Op op;
  };
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::GenericStub> stub;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw;
  grpc::ByteBuffer create;
  grpc::ByteBuffer response;
  grpc::Slice response_slice;
  std::string response_flat;
  WatchResponseScan scan;
  grpc::Status status;
  Tag start_tag{this, Op::kStart}, write_tag{this, Op::kWrite}, read_tag{this, Op::kRead},
      finish_tag{this, Op::kFinish};
  int watchers = 0;
  int written = 0;
  int created = 0;
  uint64_t want = 0;
  uint64_t got = 0;
  uint64_t responses = 0;
  uint64_t response_bytes = 0;
  Clock::time_point last_event;
  std::vector<double> latencies;
};

// Why `o` cannot run, or "".
std::string OptionsError(const WatchFanoutOptions& o) {
  if (o.endpoints.empty() || o.streams <= 0 || o.watchers < o.streams || o.puts <= 0 ||
      o.val_size < kWatchPutIndexBytes || o.put_rate < 0) {
    return fmt::format(
        "need endpoints, streams > 0, watchers >= streams, puts > 0, val-size >= {}, "
        "put-rate >= 0",
        kWatchPutIndexBytes);
  }
  return "";
}

// Counts an events response a stream read at `now` (`scan`, `wire_bytes`
// long): its events, and each one's latency from its put's send time in
// `sent_ns`.
template <typename Stream>
void CountEvents(const WatchResponseScan& scan, size_t wire_bytes, int puts,
                 const std::vector<std::atomic<int64_t>>& sent_ns, Clock::time_point now,
                 Stream& st) {
  st.got += static_cast<uint64_t>(scan.events);
  st.responses++;
  st.response_bytes += wire_bytes;
  const int64_t now_ns = Nanos(now);
  for (std::string_view value : scan.values) {
    const int64_t index = PutIndexOf(value);
    if (index < 0 || index >= puts) continue;
    const int64_t sent = sent_ns[static_cast<size_t>(index)].load(std::memory_order_acquire);
    st.latencies.push_back(static_cast<double>(now_ns - sent) * 1e-9);
  }
  st.last_event = now;
}

// Adds up what each stream read (`Stream`: FanoutStream or H2FanoutStream)
// into the result; delivery is timed from `start`, the first put.
template <typename Stream>
void AddUpStreams(const std::vector<std::unique_ptr<Stream>>& streams, Clock::time_point start,
                  WatchFanoutResult& result) {
  Clock::time_point last = start;
  for (const auto& st : streams) {
    result.events += st->got;
    result.event_responses += st->responses;
    result.event_response_bytes += st->response_bytes;
    result.latencies_s.insert(result.latencies_s.end(), st->latencies.begin(), st->latencies.end());
    if (st->got > 0) last = std::max(last, st->last_event);
  }
  result.delivery_s = Seconds(last - start);
  if (result.delivery_s > 0) {
    result.events_per_s = static_cast<double>(result.events) / result.delivery_s;
  }
}

// The fan-out's writer: `o.puts` sequential puts to the watched key (paced
// with o.put_rate), each value starting with its index; put i's send time
// goes to sent_ns[i] before it leaves. Fills the result's put fields;
// returns the first failure, or "".
std::string RunPuts(const WatchFanoutOptions& o, Clock::time_point start,
                    std::chrono::system_clock::time_point deadline,
                    std::vector<std::atomic<int64_t>>& sent_ns, WatchFanoutResult& result) {
  auto kv = etcdserverpb::KV::NewStub(ConnectOwnChannel(o.endpoints[0], o.credentials));
  etcdserverpb::PutRequest req;
  req.set_key(o.key);
  req.set_value(std::string(static_cast<size_t>(o.val_size), 'v'));
  etcdserverpb::PutResponse resp;
  std::vector<double> put_s;
  put_s.reserve(static_cast<size_t>(o.puts));
  std::string error;
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
    const auto put_start = Clock::now();
    grpc::Status st = kv->Put(&ctx, req, &resp);
    put_s.push_back(Seconds(Clock::now() - put_start));
    if (!st.ok()) {
      error = "put failed: " + st.error_message();
      break;
    }
  }
  result.puts_s = Seconds(Clock::now() - start);
  if (!put_s.empty()) {
    std::sort(put_s.begin(), put_s.end());
    result.put_p50_s = put_s[put_s.size() / 2];
    result.put_max_s = put_s.back();
  }
  return error;
}

// A fan-out stream over the tool's HTTP/2 client: its creates go out at
// once, then it reads created responses and events until it has every one
// it expects, and resets the stream.
struct H2FanoutStream : H2Call {
  H2Connection* connection = nullptr;
  int watchers = 0;
  int created = 0;
  uint64_t want = 0;
  uint64_t got = 0;
  uint64_t responses = 0;
  uint64_t response_bytes = 0;
  bool ended = false;
  Clock::time_point last_event;
  std::vector<double> latencies;
};

class H2FanoutReader final : public H2CallObserver {
 public:
  H2FanoutReader(const WatchFanoutOptions& o, std::vector<std::atomic<int64_t>>& sent_ns)
      : options_(o), sent_ns_(sent_ns) {}

  void OnData(H2Call& call) override {
    auto& st = static_cast<H2FanoutStream&>(call);
    // The responses of one read arrived together: one clock read for all
    // of them (one per response was 7 % of the generator's samples).
    const Clock::time_point now = Clock::now();
    std::string_view message;
    size_t consumed = 0;
    bool bad = false;
    size_t taken = 0;
    while (!st.ended &&
           CutMessage(std::string_view(st.in).substr(taken), &message, &consumed, &bad)) {
      taken += consumed;
      if (!ScanWatchResponse(message, scan_)) {
        // The stream's events can no longer be counted: it ends here.
        Fail("watch response could not be parsed");
        End(st, /*reset=*/true);
        break;
      }
      if (scan_.created) {
        if (++st.created == st.watchers) streams_created_.fetch_add(1);
      } else if (scan_.events > 0) {
        CountEvents(scan_, message.size(), options_.puts, sent_ns_, now, st);
      }
      if (st.created == st.watchers && st.got >= st.want) {
        // Everything came: the stream is reset (as the gRPC reader cancels).
        End(st, /*reset=*/true);
      }
    }
    if (bad) {
      Fail("a compressed watch response");
      End(st, /*reset=*/true);
    }
    st.in.erase(0, taken);
  }

  void OnClose(H2Call& call, uint32_t error_code) override {
    auto& st = static_cast<H2FanoutStream&>(call);
    if (st.ended) return;
    End(st, /*reset=*/false);
    Fail(st.created < st.watchers
             ? "watch stream closed while creating watchers"
             : fmt::format("watch stream ended before every event arrived "
                           "({} {}, HTTP/2 {})",
                           st.grpc_status, st.grpc_message, nghttp2_http2_strerror(error_code)));
  }

  // Opens the streams on their connections; "" or why it could not.
  std::string Open() {
    const std::string timeout =
        GrpcTimeoutHeader(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout));
    etcdserverpb::WatchRequest create;
    create.mutable_create_request()->set_key(options_.key);
    for (int s = 0; s < options_.streams; ++s) {
      std::string error;
      const std::string target = StripScheme(options_.endpoints[s % options_.endpoints.size()]);
      const int fd = ConnectTcp(target, std::chrono::milliseconds(5000), &error);
      if (fd < 0) return error;
      connections_.push_back(std::make_unique<H2Connection>(fd, target, timeout, this));
      auto st = std::make_unique<H2FanoutStream>();
      st->connection = connections_.back().get();
      st->watchers =
          options_.watchers / options_.streams + (s < options_.watchers % options_.streams ? 1 : 0);
      st->want = static_cast<uint64_t>(st->watchers) * static_cast<uint64_t>(options_.puts);
      st->latencies.reserve(st->want);
      st->end_after_out = false;
      for (int w = 0; w < st->watchers; ++w) AppendFramed(create, &st->out);
      if (!st->connection->Submit("/etcdserverpb.Watch/Watch", *st)) {
        return "the connection refused a watch stream";
      }
      ++active_;
      streams_.push_back(std::move(st));
    }
    return "";
  }

  // Drives every stream until each has all its events, or `stop` is set, or
  // `give_up` comes.
  void Run(const std::atomic<bool>& stop, Clock::time_point give_up) {
    H2Poller poller;
    for (auto& conn : connections_) poller.Add(conn.get());
    while (active_ > 0 && !stop.load() && Clock::now() < give_up) {
      poller.FlushAll();
      for (auto& st : streams_) {
        if (!st->ended && !st->connection->alive()) {
          End(*st, /*reset=*/false);
          Fail("watch connection lost");
        }
      }
      poller.Poll(50);
    }
    poller.FlushAll();  // the resets
    if (active_ > 0 && !stop.load()) Fail("watch streams still open at the deadline (timeout?)");
  }

  int streams_created() const { return streams_created_.load(); }
  std::string error() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return error_;
  }
  const std::vector<std::unique_ptr<H2FanoutStream>>& streams() const { return streams_; }

 private:
  void Fail(const std::string& why) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (error_.empty()) error_ = why;
  }
  // The stream counts no more; `reset`: its stream is still open and is
  // reset with the next flush.
  void End(H2FanoutStream& st, bool reset) {
    if (st.ended) return;
    st.ended = true;
    --active_;
    if (reset) st.connection->Cancel(st);
  }

  const WatchFanoutOptions& options_;
  std::vector<std::atomic<int64_t>>& sent_ns_;
  std::vector<std::unique_ptr<H2Connection>> connections_;
  std::vector<std::unique_ptr<H2FanoutStream>> streams_;
  WatchResponseScan scan_;
  std::atomic<int> streams_created_{0};
  int active_ = 0;
  mutable std::mutex error_mu_;
  std::string error_;  // guarded by error_mu_
};

}  // namespace

WatchFanoutResult RunWatchFanoutOverH2(const WatchFanoutOptions& o) {
  WatchFanoutResult result;
  result.error = OptionsError(o);
  if (!result.error.empty()) return result;
  const auto deadline = std::chrono::system_clock::now() + o.timeout;
  const auto give_up = Clock::now() + o.timeout;
  std::vector<std::atomic<int64_t>> sent_ns(static_cast<size_t>(o.puts));
  const auto setup_start = Clock::now();
  H2FanoutReader reader(o, sent_ns);
  if (std::string error = reader.Open(); !error.empty()) {
    result.error = error;
    return result;
  }
  std::atomic<bool> stop{false};
  std::thread reading([&] { reader.Run(stop, give_up); });
  // The puts start once every watcher is created.
  while (reader.streams_created() < o.streams && reader.error().empty() && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  result.setup_s = Seconds(Clock::now() - setup_start);
  const Clock::time_point start = Clock::now();
  std::string put_error;
  if (reader.streams_created() == o.streams && reader.error().empty()) {
    put_error = RunPuts(o, start, deadline, sent_ns, result);
  } else if (reader.error().empty()) {
    put_error = "watchers were not created in time";
  }
  // Events that will never come: the reader stops instead of waiting.
  if (!put_error.empty()) stop.store(true);
  reading.join();
  result.error = !put_error.empty() ? put_error : reader.error();
  AddUpStreams(reader.streams(), start, result);
  return result;
}

WatchFanoutResult RunWatchFanout(const WatchFanoutOptions& o) {
  WatchFanoutResult result;
  result.error = OptionsError(o);
  if (!result.error.empty()) return result;
  const auto deadline = std::chrono::system_clock::now() + o.timeout;
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  std::string error;
  Clock::time_point start;
  // Steady-clock nanoseconds at which put i was sent; written by the put
  // loop before the put leaves, read by the reader once its event is in.
  std::vector<std::atomic<int64_t>> sent_ns(static_cast<size_t>(o.puts));
  const auto setup_start = Clock::now();

  // Streams dealt out over `readers` completion queues, each served by one
  // thread that reads its responses without a thread switch. A stream is
  // touched only by its queue's thread.
  const int readers = std::clamp(o.readers, 1, o.streams);
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs;
  for (int r = 0; r < readers; ++r) cqs.push_back(std::make_unique<grpc::CompletionQueue>());
  std::vector<std::unique_ptr<FanoutStream>> streams;
  for (int s = 0; s < o.streams; ++s) {
    grpc::CompletionQueue& cq = *cqs[static_cast<size_t>(s % readers)];
    auto st = std::make_unique<FanoutStream>();
    st->watchers = o.watchers / o.streams + (s < o.watchers % o.streams ? 1 : 0);
    st->want = static_cast<uint64_t>(st->watchers) * static_cast<uint64_t>(o.puts);
    st->latencies.reserve(st->want);
    etcdserverpb::WatchRequest create;
    create.mutable_create_request()->set_key(o.key);
    grpc::Slice create_bytes(create.SerializeAsString());
    st->create = grpc::ByteBuffer(&create_bytes, 1);
    st->stub = std::make_unique<grpc::GenericStub>(
        ConnectOwnChannel(o.endpoints[s % o.endpoints.size()], o.credentials));
    st->ctx.set_deadline(deadline);
    st->rw = st->stub->PrepareCall(&st->ctx, "/etcdserverpb.Watch/Watch", &cq);
    st->rw->StartCall(&st->start_tag);
    streams.push_back(std::move(st));
  }
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty()) error = why;
  };
  auto mark_ready = [&] {
    std::lock_guard<std::mutex> lock(mu);
    ready++;
    cv.notify_all();
  };
  auto read_queue = [&](int r) {
    grpc::CompletionQueue& cq = *cqs[static_cast<size_t>(r)];
    // Streams r, r + readers, r + 2 * readers...
    const size_t n = static_cast<size_t>(readers);
    const size_t mine = (streams.size() - static_cast<size_t>(r) + n - 1) / n;
    size_t finished = 0;
    void* raw = nullptr;
    bool ok = false;
    while (finished < mine && cq.Next(&raw, &ok)) {
      auto* tag = static_cast<FanoutStream::Tag*>(raw);
      FanoutStream& st = *tag->stream;
      auto end_stream = [&](const std::string& why) {
        if (!why.empty()) fail(why);
        st.ctx.TryCancel();
        st.rw->Finish(&st.status, &st.finish_tag);
      };
      switch (tag->op) {
        case FanoutStream::Op::kStart:
          if (!ok) {
            fail("watch stream could not start");
            mark_ready();
            end_stream("");
            break;
          }
          st.written = 1;
          st.rw->Write(st.create, &st.write_tag);
          st.rw->Read(&st.response, &st.read_tag);
          break;
        case FanoutStream::Op::kWrite:
          if (ok && st.written < st.watchers) {
            st.written++;
            st.rw->Write(st.create, &st.write_tag);
          }
          break;
        case FanoutStream::Op::kRead: {
          if (!ok) {
            if (st.created < st.watchers) mark_ready();
            end_stream(st.created < st.watchers
                           ? "watch stream closed while creating watchers"
                           : "watch stream ended before every event arrived (timeout?)");
            break;
          }
          const std::string_view wire =
              Contiguous(st.response, st.response_slice, st.response_flat);
          if (!ScanWatchResponse(wire, st.scan)) {
            end_stream("watch response could not be parsed");
            break;
          }
          if (st.scan.created) {
            if (++st.created == st.watchers) mark_ready();
          } else if (st.scan.events > 0) {
            CountEvents(st.scan, wire.size(), o.puts, sent_ns, Clock::now(), st);
          }
          if (st.created == st.watchers && st.got >= st.want) {
            end_stream("");
          } else {
            st.rw->Read(&st.response, &st.read_tag);
          }
          break;
        }
        case FanoutStream::Op::kFinish:
          finished++;
          break;
      }
    }
  };
  std::vector<std::thread> reader_threads;
  for (int r = 0; r < readers; ++r) reader_threads.emplace_back(read_queue, r);
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready == o.streams; });
    result.setup_s = Seconds(Clock::now() - setup_start);
    start = Clock::now();
  }
  bool setup_failed = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    setup_failed = !error.empty();
  }
  if (!setup_failed) {
    const std::string put_error = RunPuts(o, start, deadline, sent_ns, result);
    if (!put_error.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      if (error.empty()) error = put_error;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    // Events that will never come: end the streams instead of waiting for
    // their deadline (TryCancel may be called from any thread).
    if (!error.empty()) {
      for (auto& st : streams) st->ctx.TryCancel();
    }
  }
  for (std::thread& t : reader_threads) t.join();
  for (auto& cq : cqs) {
    cq->Shutdown();
    void* ignored = nullptr;
    bool ok = false;
    while (cq->Next(&ignored, &ok)) {
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    result.error = error;
  }
  AddUpStreams(streams, start, result);
  return result;
}

}  // namespace etcdpp::bench
