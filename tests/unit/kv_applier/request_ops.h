// One-line builders of the operations a Txn carries.
#pragma once

#include <string>

#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::server {

inline etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  return op;
}

inline etcdserverpb::RequestOp RangeOp(const std::string& key, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_range()->set_key(key);
  op.mutable_request_range()->set_range_end(end);
  return op;
}

inline etcdserverpb::RequestOp DeleteOp(const std::string& key, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}

}  // namespace etcdpp::server
