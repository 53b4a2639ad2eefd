// LoadDriver: keeps `clients` KV requests outstanding over `conns` gRPC
// connections until `total` requests have completed.
//
// Model (same as etcd's benchmark tool): a "client" is one logical caller that
// has exactly one request in flight and sends the next when it completes;
// clients are spread round-robin over the connections. Unlike etcd's tool,
// clients are not threads: each is a slot on a gRPC CompletionQueue, and a few
// threads (one queue each) drive thousands of slots, so the benchmark spends
// little CPU and leaves the cores to the server under test.
//
// Threading: RunLoad owns all threads it starts and joins them before
// returning. A Call object belongs to one slot and is only touched by the
// thread that polls the slot's queue.
#ifndef ETCDPP_CMD_BENCH_LOAD_DRIVER_H_
#define ETCDPP_CMD_BENCH_LOAD_DRIVER_H_

#include <grpcpp/security/credentials.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace etcdpp::bench {

// One reusable in-flight request of a slot.
class Call {
 public:
  virtual ~Call() = default;
  // Starts request number `seq` (0-based, unique across the whole load);
  // `context` is fresh for this request. The queue yields `tag` when done.
  virtual void Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
                     grpc::CompletionQueue* queue, void* tag) = 0;
  // The outcome of the last started request, valid once its tag was yielded.
  virtual const grpc::Status& status() const = 0;

  // For a driver that frames the messages itself (h2_load_driver.h): the
  // method's path, request number `seq` built in place (the message Start
  // would send for it), and the message a reply is parsed into.
  virtual std::string_view path() const = 0;
  virtual const google::protobuf::Message& Prepare(int64_t seq) = 0;
  virtual google::protobuf::Message& response() = 0;
};

// Makes the Call of slot `slot` (called once per slot, before the load starts).
using CallFactory = std::function<std::unique_ptr<Call>(int slot)>;

struct LoadOptions {
  std::vector<std::string> endpoints;  // host:port (an http:// or https:// prefix is ignored)
  // TLS (--cacert, --cert, --key); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  int conns = 1;
  int clients = 1;
  int64_t total = 10000;
  int threads = 1;  // completion-queue threads
  // Requests per second over the whole load (0: as fast as the clients
  // go): request number n is not sent before n / rate seconds after the
  // load began, so a client whose next request is not yet due waits, and
  // its latency counts from the send. At most `clients` are in flight, so
  // a rate the clients cannot keep up with is not reached.
  double rate = 0;
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
};

struct LoadResult {
  std::vector<double> latencies_s;        // one per successful request
  std::map<std::string, int64_t> errors;  // etcd-style message -> count
  double total_s = 0;                     // first request start to last completion
  std::string setup_error;                // non-empty: the load did not run
};

LoadResult RunLoad(const LoadOptions& options, const CallFactory& make_call);
// Why `options` cannot run, or "" (for either driver).
std::string LoadOptionsError(const LoadOptions& options);

// The requests of a load, numbered across a driver's threads.
struct LoadProgress {
  std::atomic<int64_t> next_seq{0};
  int64_t total = 0;
  std::chrono::milliseconds request_timeout{0};
  double rate = 0;  // LoadOptions::rate
  std::chrono::steady_clock::time_point start{};

  // When request `seq` may be sent (LoadOptions::rate); `start` without a rate.
  std::chrono::steady_clock::time_point DueTime(int64_t seq) const {
    if (rate <= 0) return start;
    return start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(seq) / rate));
  }
};

// What one thread of a driver measured.
struct ThreadResult {
  std::vector<double> latencies_s;
  std::map<std::string, int64_t> errors;
  std::chrono::steady_clock::time_point last_completion{};
};
// The load's latencies, errors and duration (from `start` to the last
// completion) from its threads'.
void MergeThreadResults(const std::vector<ThreadResult>& threads,
                        std::chrono::steady_clock::time_point start, LoadResult* result);

// A failed request's status as etcd's Go client prints it (the key of
// LoadResult::errors).
std::string ErrorMessage(const grpc::Status& status);

}  // namespace etcdpp::bench

#endif  // ETCDPP_CMD_BENCH_LOAD_DRIVER_H_
