// The requests etcdpp-bench sends: Put and Range, as etcd's benchmark does.
#ifndef ETCDPP_CMD_BENCH_KV_CALLS_H_
#define ETCDPP_CMD_BENCH_KV_CALLS_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "cmd/bench/load_driver.h"

namespace etcdpp::bench {

struct PutOptions {
  int key_size = 8;
  int val_size = 8;
  int64_t key_space_size = 1;
  bool sequential_keys = false;
};

// Writes key_size bytes into a zero-filled key: the Go varint
// (zigzag) encoding of `index`, as etcd's benchmark builds its keys, so both
// tools write the same key space. Bytes past key_size are dropped.
std::string BenchmarkKey(int64_t index, int key_size);
// The same key written into `key` (resized to key_size), so a request reused
// for every call keeps its buffer instead of allocating a new string.
void WriteBenchmarkKey(int64_t index, int key_size, std::string* key);

// Puts one random value (chosen once, like etcd's tool) under keys picked
// sequentially (request number modulo key space) or uniformly at random.
class PutCall : public Call {
 public:
  PutCall(const PutOptions& options, const std::string& value, uint64_t seed);
  void Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
             grpc::CompletionQueue* queue, void* tag) override;
  const grpc::Status& status() const override { return status_; }
  std::string_view path() const override { return "/etcdserverpb.KV/Put"; }
  const google::protobuf::Message& Prepare(int64_t seq) override;
  google::protobuf::Message& response() override { return response_; }

 private:
  PutOptions options_;
  std::mt19937_64 random_;
  etcdserverpb::PutRequest request_;
  etcdserverpb::PutResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> reader_;
};

// One transaction of `txn_ops` puts per request, keys chosen as PutCall does
// (distinct within a transaction), like etcd's `txn-put`, which has no
// compares. With `guarded`, each put's key also gets a compare on its
// mod_revision that always holds (below 2^62), the shape of a Kubernetes
// update, which makes the server read the key before it writes.
class TxnPutCall : public Call {
 public:
  TxnPutCall(const PutOptions& options, int txn_ops, bool guarded, const std::string& value,
             uint64_t seed);
  void Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
             grpc::CompletionQueue* queue, void* tag) override;
  const grpc::Status& status() const override { return status_; }
  std::string_view path() const override { return "/etcdserverpb.KV/Txn"; }
  const google::protobuf::Message& Prepare(int64_t seq) override;
  google::protobuf::Message& response() override { return response_; }

 private:
  PutOptions options_;
  int txn_ops_;
  std::mt19937_64 random_;
  etcdserverpb::TxnRequest request_;
  etcdserverpb::TxnResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> reader_;
};

// etcd's `txn-mixed`: each request is a transaction of one operation, a
// range of one key (with probability rw_ratio / (1 + rw_ratio)) or a put of
// one key, the key uniform in the key space. Reads are linearizable unless
// `serializable`; a read-only transaction takes the server's read path.
struct TxnMixedOptions {
  PutOptions keys;  // key_size, val_size, key_space_size (sequential_keys unused)
  double rw_ratio = 1;
  bool serializable = false;
};

class TxnMixedCall : public Call {
 public:
  TxnMixedCall(const TxnMixedOptions& options, const std::string& value, uint64_t seed);
  void Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
             grpc::CompletionQueue* queue, void* tag) override;
  const grpc::Status& status() const override { return status_; }
  std::string_view path() const override { return "/etcdserverpb.KV/Txn"; }
  const google::protobuf::Message& Prepare(int64_t seq) override;
  google::protobuf::Message& response() override { return response_; }

 private:
  TxnMixedOptions options_;
  std::mt19937_64 random_;
  std::uniform_real_distribution<double> coin_{0.0, 1.0};
  // Both requests are built once; Start picks one and only rewrites its key.
  etcdserverpb::TxnRequest read_request_;
  etcdserverpb::TxnRequest write_request_;
  etcdserverpb::TxnResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> reader_;
};

// Reads [key, range_end) (just key when range_end is empty); serializable
// reads are served locally, linearizable ones go through a ReadIndex.
class RangeCall : public Call {
 public:
  RangeCall(const std::string& key, const std::string& range_end, bool serializable);
  void Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
             grpc::CompletionQueue* queue, void* tag) override;
  const grpc::Status& status() const override { return status_; }
  std::string_view path() const override { return "/etcdserverpb.KV/Range"; }
  const google::protobuf::Message& Prepare(int64_t seq) override;
  google::protobuf::Message& response() override { return response_; }

 private:
  etcdserverpb::RangeRequest request_;
  etcdserverpb::RangeResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> reader_;
};

}  // namespace etcdpp::bench

#endif  // ETCDPP_CMD_BENCH_KV_CALLS_H_
