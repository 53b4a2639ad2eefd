#include "server/request_validation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "unit/kv_applier/request_ops.h"

namespace etcdpp::server {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

RequestOp TxnOp(std::vector<RequestOp> then_ops, std::vector<RequestOp> else_ops = {}) {
  RequestOp op;
  for (auto& o : then_ops) *op.mutable_request_txn()->add_success() = o;
  for (auto& o : else_ops) *op.mutable_request_txn()->add_failure() = o;
  return op;
}
TxnRequest Txn(std::vector<RequestOp> then_ops, std::vector<RequestOp> else_ops = {}) {
  return TxnOp(std::move(then_ops), std::move(else_ops)).request_txn();
}

TEST(RequestValidationTest, EmptyKeys) {
  EXPECT_EQ(ValidateRange({}).code(), Code::kEmptyKey);
  EXPECT_EQ(ValidatePut({}).code(), Code::kEmptyKey);
  EXPECT_EQ(ValidateDeleteRange({}).code(), Code::kEmptyKey);
  EXPECT_EQ(ValidateTxn(Txn({PutOp("")})).code(), Code::kEmptyKey);
  TxnRequest compare_without_key;
  compare_without_key.add_compare();
  EXPECT_EQ(ValidateTxn(compare_without_key).code(), Code::kEmptyKey);
  EXPECT_TRUE(ValidateTxn(Txn({PutOp("a")})).ok());
}

TEST(RequestValidationTest, PutIgnoreFlags) {
  etcdserverpb::PutRequest r;
  r.set_key("k");
  r.set_ignore_value(true);
  EXPECT_TRUE(ValidatePut(r).ok());
  r.set_value("v");
  EXPECT_EQ(ValidatePut(r).code(), Code::kValueProvided);
  r.Clear();
  r.set_key("k");
  r.set_ignore_lease(true);
  EXPECT_TRUE(ValidatePut(r).ok());
  r.set_lease(5);
  EXPECT_EQ(ValidatePut(r).code(), Code::kLeaseProvided);
}

TEST(RequestValidationTest, KeysOfAnyLengthAndBytesAreValid) {
  // etcd bounds keys only by the request size (checked when proposing).
  etcdserverpb::PutRequest r;
  for (const std::string& key :
       {std::string(493, 'k'), std::string(494, 'k'), std::string(1 << 20, '\0')}) {
    r.set_key(key);
    EXPECT_TRUE(ValidatePut(r).ok()) << key.size();
    TxnRequest txn;
    *txn.add_success()->mutable_request_put() = r;
    EXPECT_TRUE(ValidateTxn(txn).ok()) << key.size();
  }
}

TEST(RequestValidationTest, InvalidSortOption) {
  etcdserverpb::RangeRequest r;
  r.set_key("k");
  r.set_sort_order(static_cast<etcdserverpb::RangeRequest::SortOrder>(9));
  Status s = ValidateRange(r);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "etcdserver: invalid sort option");
}

TEST(RequestValidationTest, TooManyOps) {
  std::vector<RequestOp> ops;
  for (int i = 0; i < 4; ++i) ops.push_back(PutOp(fmt::format("k{}", i)));
  EXPECT_TRUE(ValidateTxn(Txn(ops), 4).ok());
  ops.push_back(PutOp("k9"));
  EXPECT_EQ(ValidateTxn(Txn(ops), 4).code(), Code::kTooManyOps);
  EXPECT_EQ(ValidateTxn(Txn({}, ops), 4).code(), Code::kTooManyOps);
  EXPECT_EQ(ValidateTxn(Txn({TxnOp(ops)}), 4).code(), Code::kTooManyOps);
  TxnRequest compares;
  for (int i = 0; i < 5; ++i) compares.add_compare()->set_key("c");
  EXPECT_EQ(ValidateTxn(compares, 4).code(), Code::kTooManyOps);
}

TEST(RequestValidationTest, EmptyOpIsKeyNotFound) {
  TxnRequest r;
  r.add_success();
  EXPECT_EQ(ValidateTxn(r).code(), Code::kKeyNotFound);
}

TEST(RequestValidationTest, DuplicateKeys) {
  auto dup = [](const TxnRequest& r) { return ValidateTxn(r).code() == Code::kDuplicateKey; };
  EXPECT_TRUE(dup(Txn({PutOp("a"), PutOp("a")})));
  EXPECT_TRUE(dup(Txn({PutOp("b"), DeleteOp("a", "c")})));
  EXPECT_TRUE(dup(Txn({DeleteOp("b"), PutOp("b")})));
  EXPECT_FALSE(dup(Txn({PutOp("c"), DeleteOp("a", "c")})));          // End is exclusive.
  EXPECT_FALSE(dup(Txn({DeleteOp("a", "c"), DeleteOp("b", "d")})));  // Deletes may overlap.
  EXPECT_FALSE(dup(Txn({PutOp("a")}, {PutOp("a")})));                // Branches are separate.
  // Nested txns.
  EXPECT_TRUE(dup(Txn({PutOp("a"), TxnOp({PutOp("a")})})));
  EXPECT_TRUE(dup(Txn({DeleteOp("a", "z"), TxnOp({PutOp("m")})})));
  EXPECT_TRUE(dup(Txn({TxnOp({DeleteOp("m")}), PutOp("m")})));
  EXPECT_TRUE(dup(Txn({TxnOp({PutOp("a")}), TxnOp({PutOp("a")})})));
  EXPECT_FALSE(dup(Txn({TxnOp({PutOp("a")}, {PutOp("a")})})));  // then/else exclusive.
  EXPECT_TRUE(dup(Txn({TxnOp({PutOp("a")}, {PutOp("b")}), TxnOp({}, {PutOp("b")})})));
  EXPECT_FALSE(dup(Txn({PutOp("a"), PutOp("b"), RangeOp("a")})));
  // etcd compares a delete's range_end literally: "\0" covers nothing.
  EXPECT_FALSE(dup(Txn({DeleteOp("a", std::string("\0", 1)), PutOp("b")})));
}

TEST(RequestValidationTest, ReadOnlyTxn) {
  EXPECT_TRUE(IsReadOnlyTxn(Txn({RangeOp("a")}, {RangeOp("b")})));
  EXPECT_TRUE(IsReadOnlyTxn(TxnRequest()));
  EXPECT_TRUE(IsReadOnlyTxn(Txn({TxnOp({RangeOp("a")})})));
  EXPECT_FALSE(IsReadOnlyTxn(Txn({RangeOp("a")}, {PutOp("b")})));
  EXPECT_FALSE(IsReadOnlyTxn(Txn({DeleteOp("a")})));
  EXPECT_FALSE(IsReadOnlyTxn(Txn({TxnOp({}, {PutOp("a")})})));
}

}  // namespace
}  // namespace etcdpp::server
