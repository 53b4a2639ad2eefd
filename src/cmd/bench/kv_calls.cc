#include "cmd/bench/kv_calls.h"

namespace etcdpp::bench {

void WriteBenchmarkKey(int64_t index, int key_size, std::string* key) {
  key->assign(static_cast<size_t>(key_size), '\0');
  // Go's binary.PutVarint: zigzag, then little-endian base-128 groups.
  uint64_t v = (static_cast<uint64_t>(index) << 1) ^ static_cast<uint64_t>(index >> 63);
  for (size_t i = 0; i < key->size(); ++i) {
    if (v < 0x80) {
      (*key)[i] = static_cast<char>(v);
      break;
    }
    (*key)[i] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
}

std::string BenchmarkKey(int64_t index, int key_size) {
  std::string key;
  WriteBenchmarkKey(index, key_size, &key);
  return key;
}

PutCall::PutCall(const PutOptions& options, const std::string& value, uint64_t seed)
    : options_(options), random_(seed) {
  request_.set_value(value);
}

const google::protobuf::Message& PutCall::Prepare(int64_t seq) {
  int64_t index = options_.sequential_keys
                      ? seq % options_.key_space_size
                      : static_cast<int64_t>(random_() % options_.key_space_size);
  WriteBenchmarkKey(index, options_.key_size, request_.mutable_key());
  return request_;
}

void PutCall::Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
                    grpc::CompletionQueue* queue, void* tag) {
  Prepare(seq);
  reader_ = stub->AsyncPut(context, request_, queue);
  reader_->Finish(&response_, &status_, tag);
}

TxnPutCall::TxnPutCall(const PutOptions& options, int txn_ops, bool guarded,
                       const std::string& value, uint64_t seed)
    : options_(options), txn_ops_(txn_ops), random_(seed) {
  for (int i = 0; i < txn_ops_; ++i) {
    request_.add_success()->mutable_request_put()->set_value(value);
    if (!guarded) continue;
    etcdserverpb::Compare* compare = request_.add_compare();
    compare->set_target(etcdserverpb::Compare::MOD);
    compare->set_result(etcdserverpb::Compare::LESS);
    compare->set_mod_revision(int64_t{1} << 62);
  }
}

const google::protobuf::Message& TxnPutCall::Prepare(int64_t seq) {
  // Request seq covers key indexes [seq * txn_ops, (seq + 1) * txn_ops) in
  // sequential mode; a transaction must not put the same key twice, so random
  // mode offsets one random index.
  const int64_t space = options_.key_space_size;
  const int64_t base = options_.sequential_keys
                           ? seq * txn_ops_
                           : static_cast<int64_t>(random_() % static_cast<uint64_t>(space));
  for (int i = 0; i < txn_ops_; ++i) {
    std::string* key = request_.mutable_success(i)->mutable_request_put()->mutable_key();
    WriteBenchmarkKey((base + i) % space, options_.key_size, key);
    if (i < request_.compare_size()) *request_.mutable_compare(i)->mutable_key() = *key;
  }
  return request_;
}

void TxnPutCall::Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
                       grpc::CompletionQueue* queue, void* tag) {
  Prepare(seq);
  reader_ = stub->AsyncTxn(context, request_, queue);
  reader_->Finish(&response_, &status_, tag);
}

TxnMixedCall::TxnMixedCall(const TxnMixedOptions& options, const std::string& value, uint64_t seed)
    : options_(options), random_(seed) {
  read_request_.add_success()->mutable_request_range()->set_serializable(options_.serializable);
  write_request_.add_success()->mutable_request_put()->set_value(value);
}

const google::protobuf::Message& TxnMixedCall::Prepare(int64_t /*seq*/) {
  const int64_t index =
      static_cast<int64_t>(random_() % static_cast<uint64_t>(options_.keys.key_space_size));
  const bool read = coin_(random_) < options_.rw_ratio / (1 + options_.rw_ratio);
  etcdserverpb::TxnRequest& request = read ? read_request_ : write_request_;
  std::string* key = read ? request.mutable_success(0)->mutable_request_range()->mutable_key()
                          : request.mutable_success(0)->mutable_request_put()->mutable_key();
  WriteBenchmarkKey(index, options_.keys.key_size, key);
  return request;
}

void TxnMixedCall::Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t seq,
                         grpc::CompletionQueue* queue, void* tag) {
  const auto& request = static_cast<const etcdserverpb::TxnRequest&>(Prepare(seq));
  reader_ = stub->AsyncTxn(context, request, queue);
  reader_->Finish(&response_, &status_, tag);
}

RangeCall::RangeCall(const std::string& key, const std::string& range_end, bool serializable) {
  request_.set_key(key);
  request_.set_range_end(range_end);
  request_.set_serializable(serializable);
}

const google::protobuf::Message& RangeCall::Prepare(int64_t /*seq*/) { return request_; }

void RangeCall::Start(etcdserverpb::KV::Stub* stub, grpc::ClientContext* context, int64_t /*seq*/,
                      grpc::CompletionQueue* queue, void* tag) {
  reader_ = stub->AsyncRange(context, request_, queue);
  reader_->Finish(&response_, &status_, tag);
}

}  // namespace etcdpp::bench
