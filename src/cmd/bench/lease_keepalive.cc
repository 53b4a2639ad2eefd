#include "cmd/bench/lease_keepalive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>

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

}  // namespace

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
  for (int i = 0; i < o.streams; ++i) {
    auto s = std::make_unique<KeepAliveStream>();
    s->stub = etcdserverpb::Lease::NewStub(
        ConnectOwnChannel(o.endpoints[i % o.endpoints.size()], o.credentials));
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
