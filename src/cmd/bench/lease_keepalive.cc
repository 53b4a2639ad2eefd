#include "cmd/bench/lease_keepalive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>

#include "cmd/bench/h2_client.h"
#include "cmd/bench/stream_channel.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One keep-alive stream: its lease grant, then write, read, write... with
// one operation outstanding at a time, so the stream itself is the
// completion-queue tag and `step` says which operation completed.
struct KeepAliveStream {
  enum class Step { kGrant, kStart, kWrite, kRead, kWritesDone, kFinish };
  Step step = Step::kGrant;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub;
  grpc::ClientContext grant_context;
  etcdserverpb::LeaseGrantRequest grant;
  etcdserverpb::LeaseGrantResponse granted;
  grpc::Status grant_status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::LeaseGrantResponse>> grant_reader;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                                etcdserverpb::LeaseKeepAliveResponse>>
      stream;
  etcdserverpb::LeaseKeepAliveRequest request;
  etcdserverpb::LeaseKeepAliveResponse response;
  grpc::Status finish_status;
  Clock::time_point sent;
  bool failed = false;  // ended before the load was done
};

// How many connections the streams share: --conns, at least one and at
// most one per stream.
int ConnectionCount(const LeaseKeepAliveOptions& o) {
  return std::clamp(o.conns, 1, std::max(o.streams, 1));
}

// Fills the result's rates from the latencies of the answered keep-alives.
void Summarize(std::vector<double> latencies, LeaseKeepAliveResult* result) {
  result->keepalives = static_cast<int64_t>(latencies.size());
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    double sum = 0;
    for (double l : latencies) sum += l;
    result->avg_latency_s = sum / static_cast<double>(latencies.size());
    result->p99_latency_s = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  if (result->total_s > 0) {
    result->per_s = static_cast<double>(result->keepalives) / result->total_s;
  }
}

// A keep-alive stream over the tool's HTTP/2 client: first its LeaseGrant
// call, then the LeaseKeepAlive stream on the same H2Call, one request in
// flight (a reply sends the next; after the last, the client half-closes).
struct H2KeepAlive : H2Call {
  enum class Phase { kGrant, kStream, kEnded };
  Phase phase = Phase::kGrant;
  H2Connection* connection = nullptr;
  etcdserverpb::LeaseKeepAliveRequest request;
  Clock::time_point sent_at;  // of the keep-alive in flight
  bool closing = false;       // the client half-closed: the end is expected
};

class H2KeepAliveLoad final : public H2CallObserver {
 public:
  explicit H2KeepAliveLoad(const LeaseKeepAliveOptions& o) : options_(o) {
    latencies_.reserve(static_cast<size_t>(o.total));
  }

  void OnData(H2Call& call) override {
    auto& s = static_cast<H2KeepAlive&>(call);
    if (s.phase != H2KeepAlive::Phase::kStream) return;
    std::string_view message;
    size_t consumed = 0;
    bool bad = false;
    size_t taken = 0;
    while (CutMessage(std::string_view(s.in).substr(taken), &message, &consumed, &bad)) {
      taken += consumed;
      if (!response_.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
        Fail("LeaseKeepAlive: a reply that is not a LeaseKeepAliveResponse");
        HalfClose(s);
        continue;
      }
      if (response_.ttl() <= 0) {
        Fail("lease expired during the benchmark");
        HalfClose(s);
        continue;
      }
      latencies_.push_back(Seconds(Clock::now() - s.sent_at));
      SendNext(s);
    }
    if (bad) Fail("LeaseKeepAlive: a compressed reply");
    s.in.erase(0, taken);
  }

  void OnClose(H2Call& call, uint32_t error_code) override {
    auto& s = static_cast<H2KeepAlive&>(call);
    if (s.phase == H2KeepAlive::Phase::kGrant) {
      std::string_view message;
      size_t consumed = 0;
      bool bad = false;
      etcdserverpb::LeaseGrantResponse granted;
      if (s.grpc_status != "0" || !CutMessage(s.in, &message, &consumed, &bad) ||
          !granted.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
        Fail("LeaseGrant: " + (s.grpc_status.empty() ? std::string("no status")
                                                     : s.grpc_status + " " + s.grpc_message));
        End(s);
        return;
      }
      s.request.set_id(granted.id());
      s.phase = H2KeepAlive::Phase::kStream;
      // Opened once the connection's input has been taken.
      to_open_.push_back(&s);
      return;
    }
    if (!s.closing || s.grpc_status != "0") {
      Fail("LeaseKeepAlive stream ended: " +
           (s.grpc_status.empty()
                ? std::string("HTTP/2 error ") + nghttp2_http2_strerror(error_code)
                : s.grpc_status + " " + s.grpc_message));
    }
    End(s);
  }

  LeaseKeepAliveResult Run() {
    LeaseKeepAliveResult result;
    const std::string timeout =
        GrpcTimeoutHeader(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout));
    H2Poller poller;
    std::vector<std::unique_ptr<H2Connection>> connections;
    std::vector<std::unique_ptr<H2KeepAlive>> streams;
    const Clock::time_point start = Clock::now();
    const int conns = ConnectionCount(options_);
    for (int i = 0; i < conns; ++i) {
      std::string error;
      const std::string target = StripScheme(options_.endpoints[i % options_.endpoints.size()]);
      const int fd = ConnectTcp(target, std::chrono::milliseconds(5000), &error);
      if (fd < 0) {
        result.error = error;
        return result;
      }
      connections.push_back(std::make_unique<H2Connection>(fd, target, timeout, this));
      poller.Add(connections.back().get());
    }
    for (int i = 0; i < options_.streams; ++i) {
      auto s = std::make_unique<H2KeepAlive>();
      s->connection = connections[static_cast<size_t>(i % conns)].get();
      etcdserverpb::LeaseGrantRequest grant;
      grant.set_ttl(options_.ttl);
      AppendFramed(grant, &s->out);
      if (!s->connection->Submit("/etcdserverpb.Lease/LeaseGrant", *s)) {
        Fail("LeaseGrant: the connection refused a stream");
        s->phase = H2KeepAlive::Phase::kEnded;
      } else {
        ++active_;
      }
      streams.push_back(std::move(s));
    }
    const Clock::time_point give_up = start + options_.timeout;
    while (active_ > 0 && Clock::now() < give_up) {
      for (H2KeepAlive* s : to_open_) {
        s->out.clear();
        s->sent = 0;
        s->end_after_out = false;
        if (!s->connection->Submit("/etcdserverpb.Lease/LeaseKeepAlive", *s)) {
          Fail("LeaseKeepAlive: the connection refused a stream");
          End(*s);
          continue;
        }
        SendNext(*s);
      }
      to_open_.clear();
      poller.FlushAll();
      for (auto& s : streams) {
        if (s->phase != H2KeepAlive::Phase::kEnded && !s->connection->alive()) {
          Fail("connection lost");
          End(*s);
        }
      }
      if (active_ == 0) break;
      poller.Poll(100);
    }
    if (active_ > 0) Fail("the load did not end within its time");
    result.total_s = Seconds(Clock::now() - start);
    result.error = error_;
    Summarize(std::move(latencies_), &result);
    return result;
  }

 private:
  void Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
  }
  void End(H2KeepAlive& s) {
    if (s.phase == H2KeepAlive::Phase::kEnded) return;
    s.phase = H2KeepAlive::Phase::kEnded;
    --active_;
  }
  // Writes the next keep-alive, or half-closes once the load is done.
  void SendNext(H2KeepAlive& s) {
    if (handed_out_ >= options_.total || !error_.empty()) return HalfClose(s);
    ++handed_out_;
    AppendFramed(s.request, &s.out);
    s.sent_at = Clock::now();
    s.connection->Resume(s);
  }
  void HalfClose(H2KeepAlive& s) {
    if (s.closing) return;
    s.closing = true;
    s.end_after_out = true;
    s.connection->Resume(s);
  }

  const LeaseKeepAliveOptions& options_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  std::vector<double> latencies_;
  std::vector<H2KeepAlive*> to_open_;
  std::string error_;
  int64_t handed_out_ = 0;
  int active_ = 0;
};

}  // namespace

LeaseKeepAliveResult RunLeaseKeepAliveOverH2(const LeaseKeepAliveOptions& options) {
  if (options.endpoints.empty() || options.streams <= 0 || options.total <= 0) {
    LeaseKeepAliveResult result;
    result.error = "need endpoints, streams > 0, total > 0";
    return result;
  }
  return H2KeepAliveLoad(options).Run();
}

LeaseKeepAliveResult RunLeaseKeepAlive(const LeaseKeepAliveOptions& o) {
  LeaseKeepAliveResult result;
  if (o.endpoints.empty() || o.streams <= 0 || o.total <= 0) {
    result.error = "need endpoints, streams > 0, total > 0";
    return result;
  }
  const auto deadline = std::chrono::system_clock::now() + o.timeout;
  // All streams are driven from this thread through one completion queue.
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<KeepAliveStream>> streams;
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(o.total));
  int64_t handed_out = 0;
  auto fail = [&](const std::string& why) {
    if (result.error.empty()) result.error = why;
  };
  // Writes the next keep-alive, or closes the stream when the load is done.
  auto send_next = [&](KeepAliveStream* s) {
    if (handed_out < o.total) {
      ++handed_out;
      s->step = KeepAliveStream::Step::kWrite;
      s->sent = Clock::now();
      s->stream->Write(s->request, s);
    } else {
      s->step = KeepAliveStream::Step::kWritesDone;
      s->stream->WritesDone(s);
    }
  };
  auto finish = [&](KeepAliveStream* s, bool failed) {
    s->failed = s->failed || failed;
    s->step = KeepAliveStream::Step::kFinish;
    s->stream->Finish(&s->finish_status, s);
  };

  const Clock::time_point start = Clock::now();
  const int conns = ConnectionCount(o);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < conns; ++i) {
    channels.push_back(ConnectOwnChannel(o.endpoints[i % o.endpoints.size()], o.credentials));
  }
  for (int i = 0; i < o.streams; ++i) {
    auto s = std::make_unique<KeepAliveStream>();
    s->stub = etcdserverpb::Lease::NewStub(channels[i % conns]);
    s->grant.set_ttl(o.ttl);
    s->grant_context.set_deadline(deadline);
    s->context.set_deadline(deadline);
    s->grant_reader = s->stub->AsyncLeaseGrant(&s->grant_context, s->grant, &queue);
    s->grant_reader->Finish(&s->granted, &s->grant_status, s.get());
    streams.push_back(std::move(s));
  }
  int active = o.streams;
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && queue.Next(&tag, &ok)) {
    auto* s = static_cast<KeepAliveStream*>(tag);
    switch (s->step) {
      case KeepAliveStream::Step::kGrant:
        if (!ok || !s->grant_status.ok()) {
          fail("LeaseGrant: " + s->grant_status.error_message());
          --active;
          break;
        }
        s->request.set_id(s->granted.id());
        s->stream = s->stub->PrepareAsyncLeaseKeepAlive(&s->context, &queue);
        s->step = KeepAliveStream::Step::kStart;
        s->stream->StartCall(s);
        break;
      case KeepAliveStream::Step::kStart:
        if (ok) {
          send_next(s);
        } else {
          finish(s, true);
        }
        break;
      case KeepAliveStream::Step::kWrite:
        if (!ok) {
          finish(s, true);
          break;
        }
        s->step = KeepAliveStream::Step::kRead;
        s->stream->Read(&s->response, s);
        break;
      case KeepAliveStream::Step::kRead:
        if (!ok) {
          finish(s, true);
        } else if (s->response.ttl() <= 0) {
          fail("lease expired during the benchmark");
          finish(s, false);
        } else {
          latencies.push_back(Seconds(Clock::now() - s->sent));
          send_next(s);
        }
        break;
      case KeepAliveStream::Step::kWritesDone:
        finish(s, false);
        break;
      case KeepAliveStream::Step::kFinish:
        if (s->failed) fail("LeaseKeepAlive stream ended: " + s->finish_status.error_message());
        --active;
        break;
    }
  }
  result.total_s = Seconds(Clock::now() - start);
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  Summarize(std::move(latencies), &result);
  return result;
}

}  // namespace etcdpp::bench
