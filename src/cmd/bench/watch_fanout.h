// Watch fan-out benchmark: N watchers on one key spread over S streams (one
// gRPC connection each), then P sequential puts to that key; measures how
// fast every watcher gets every event (etcd's tools/benchmark "watch-latency"
// idea, reported as events delivered per second). Every event's latency is
// also measured, from just before its put was sent to the moment its watch
// response was read: with `put_rate` set (etcd's watch-latency paces puts
// the same way) that is the put-to-event latency of an unloaded server.
// The streams are read on `readers` completion queues (gRPC's async API),
// one thread each, the streams dealt out among them: one reader by default,
// so that the generator competes with the server for the cores with one
// thread; more when that one thread's cost per event (parsing the responses)
// is what caps the rate. The same code measures etcd and etcdpp.
#pragma once

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace etcdpp::bench {

struct WatchFanoutOptions {
  std::vector<std::string> endpoints;
  // TLS (--cacert, --cert, --key); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  int streams = 10;
  // Completion queues, one reading thread each (at most `streams`).
  int readers = 1;
  int watchers = 1000;  // In all, split evenly over the streams.
  int puts = 1000;
  int val_size = 64;  // At least kWatchPutIndexBytes: the value carries the put's index.
  // Puts are sequential (each waits for the previous acknowledgement);
  // with put_rate > 0 put i also waits for its slot, i / put_rate seconds
  // after the first.
  double put_rate = 0;
  std::string key = "etcdpp-bench-watch";
  std::chrono::seconds timeout{120};
};

struct WatchFanoutResult {
  std::string error;        // Empty on success.
  uint64_t events = 0;      // Delivered (watchers * puts when complete).
  double setup_s = 0;       // Creating every watcher.
  double puts_s = 0;        // First put sent .. last put acknowledged.
  double delivery_s = 0;    // First put sent .. last event received.
  double events_per_s = 0;  // events / delivery_s.
  // Watch responses holding events, and their protobuf bytes (without
  // gRPC's 5-byte message prefix), read during delivery: how the server
  // packs events into messages.
  uint64_t event_responses = 0;
  uint64_t event_response_bytes = 0;
  // How long each put took (sent .. acknowledged): a put slowed by the
  // fan-out of the previous ones shows here.
  double put_p50_s = 0;
  double put_max_s = 0;
  // One per delivered event: put sent .. response holding it read.
  std::vector<double> latencies_s;
};

// A put's value starts with its index in this many decimal digits, so a
// watcher knows which put an event answers.
inline constexpr int kWatchPutIndexBytes = 8;

WatchFanoutResult RunWatchFanout(const WatchFanoutOptions& options);
// The same load read over the tool's own HTTP/2 client (h2_client.h): one
// connection per stream, all read by one thread; the puts still go through
// gRPC C++. Plaintext only (options.credentials must be null); `readers`
// is not used.
WatchFanoutResult RunWatchFanoutOverH2(const WatchFanoutOptions& options);

}  // namespace etcdpp::bench
