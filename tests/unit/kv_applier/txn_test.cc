// Txn semantics: compares of every target and result, branches, nested txns,
// one revision per txn, atomic failure, read-only txns.
#include <gtest/gtest.h>

#include "server/kv_applier.h"
#include "unit/kv_applier/applier_test_util.h"
#include "unit/kv_applier/request_ops.h"

namespace etcdpp::server {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

Compare MakeCompare(const std::string& key, Compare::CompareTarget target,
                    Compare::CompareResult result, int64_t operand, const std::string& value = "") {
  Compare c;
  c.set_key(key);
  c.set_target(target);
  c.set_result(result);
  switch (target) {
    case Compare::VERSION:
      c.set_version(operand);
      break;
    case Compare::CREATE:
      c.set_create_revision(operand);
      break;
    case Compare::MOD:
      c.set_mod_revision(operand);
      break;
    case Compare::LEASE:
      c.set_lease(operand);
      break;
    case Compare::VALUE:
      c.set_value(value);
      break;
    default:
      break;
  }
  return c;
}

class TxnTest : public ApplierTest {
 protected:
  // k: value "m", create 2, mod 3, version 2, lease 5 (the empty store is
  // revision 1, as in etcd).
  void SetUp() override {
    ApplierTest::SetUp();
    ASSERT_TRUE(Put("k", "a", 5).ok());  // 2
    ASSERT_TRUE(Put("k", "m", 5).ok());  // 3
  }
  // Runs a txn with one compare and reports which branch ran.
  bool Holds(const Compare& c) {
    TxnRequest req;
    *req.add_compare() = c;
    TxnResponse resp;
    Status s = Txn(req, &resp);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return resp.succeeded();
  }
};

TEST_F(TxnTest, CompareEveryTargetWithEveryResult) {
  struct Case {
    Compare::CompareTarget target;
    int64_t actual;  // k's value of the target (for VALUE: ignored).
  };
  for (Case c : {Case{Compare::VERSION, 2}, Case{Compare::CREATE, 2}, Case{Compare::MOD, 3},
                 Case{Compare::LEASE, 5}}) {
    SCOPED_TRACE(Compare::CompareTarget_Name(c.target));
    EXPECT_TRUE(Holds(MakeCompare("k", c.target, Compare::EQUAL, c.actual)));
    EXPECT_FALSE(Holds(MakeCompare("k", c.target, Compare::EQUAL, c.actual + 1)));
    EXPECT_TRUE(Holds(MakeCompare("k", c.target, Compare::NOT_EQUAL, c.actual + 1)));
    EXPECT_FALSE(Holds(MakeCompare("k", c.target, Compare::NOT_EQUAL, c.actual)));
    EXPECT_TRUE(Holds(MakeCompare("k", c.target, Compare::GREATER, c.actual - 1)));
    EXPECT_FALSE(Holds(MakeCompare("k", c.target, Compare::GREATER, c.actual)));
    EXPECT_TRUE(Holds(MakeCompare("k", c.target, Compare::LESS, c.actual + 1)));
    EXPECT_FALSE(Holds(MakeCompare("k", c.target, Compare::LESS, c.actual)));
  }
  EXPECT_TRUE(Holds(MakeCompare("k", Compare::VALUE, Compare::EQUAL, 0, "m")));
  EXPECT_FALSE(Holds(MakeCompare("k", Compare::VALUE, Compare::EQUAL, 0, "n")));
  EXPECT_TRUE(Holds(MakeCompare("k", Compare::VALUE, Compare::NOT_EQUAL, 0, "n")));
  EXPECT_TRUE(Holds(MakeCompare("k", Compare::VALUE, Compare::GREATER, 0, "l")));
  EXPECT_FALSE(Holds(MakeCompare("k", Compare::VALUE, Compare::GREATER, 0, "m")));
  EXPECT_TRUE(Holds(MakeCompare("k", Compare::VALUE, Compare::LESS, 0, "mm")));
  EXPECT_FALSE(Holds(MakeCompare("k", Compare::VALUE, Compare::LESS, 0, "m")));
  // Read-only txns change nothing.
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

TEST_F(TxnTest, MissingKeyComparesAsZeroButValueComparesFalse) {
  EXPECT_TRUE(Holds(MakeCompare("nope", Compare::VERSION, Compare::EQUAL, 0)));
  EXPECT_TRUE(Holds(MakeCompare("nope", Compare::CREATE, Compare::EQUAL, 0)));
  EXPECT_TRUE(Holds(MakeCompare("nope", Compare::MOD, Compare::LESS, 1)));
  EXPECT_TRUE(Holds(MakeCompare("nope", Compare::LEASE, Compare::EQUAL, 0)));
  EXPECT_FALSE(Holds(MakeCompare("nope", Compare::VALUE, Compare::EQUAL, 0, "")));
  EXPECT_FALSE(Holds(MakeCompare("nope", Compare::VALUE, Compare::NOT_EQUAL, 0, "x")));
}

TEST_F(TxnTest, OperandOfAnotherTargetCountsAsZero) {
  Compare c = MakeCompare("k", Compare::VERSION, Compare::EQUAL, 0);
  c.set_mod_revision(2);   // Sets the union to mod_revision; target stays VERSION.
  EXPECT_FALSE(Holds(c));  // version 2 != 0
  c.set_result(Compare::GREATER);
  EXPECT_TRUE(Holds(c));
}

TEST_F(TxnTest, RangeCompareRequiresEveryKey) {
  ASSERT_TRUE(Put("k2", "z").ok());  // 4: version 1
  Compare c = MakeCompare("k", Compare::VERSION, Compare::GREATER, 0);
  c.set_range_end("l");
  EXPECT_TRUE(Holds(c));
  c = MakeCompare("k", Compare::VERSION, Compare::EQUAL, 2);
  c.set_range_end("l");
  EXPECT_FALSE(Holds(c));  // k2 has version 1.
  c = MakeCompare("x", Compare::VERSION, Compare::EQUAL, 0);
  c.set_range_end("y");
  EXPECT_TRUE(Holds(c));  // Empty range compares as a missing key.
}

TEST_F(TxnTest, BranchesOpsAndOneRevisionForTheWholeTxn) {
  TxnRequest req;
  *req.add_compare() = MakeCompare("k", Compare::VALUE, Compare::EQUAL, 0, "m");
  *req.add_success() = PutOp("a", "1");
  *req.add_success() = PutOp("b", "2");
  *req.add_success() = RangeOp("a", "c");
  *req.add_success() = DeleteOp("k");
  *req.add_failure() = PutOp("failed", "1");
  TxnResponse resp;
  ASSERT_TRUE(Txn(req, &resp).ok());
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 4);
  ASSERT_EQ(resp.responses_size(), 4);
  EXPECT_EQ(resp.responses(0).response_put().header().revision(), 4);
  EXPECT_EQ(resp.responses(1).response_put().header().revision(), 4);
  // The range sees the txn's own writes.
  const auto& rr = resp.responses(2).response_range();
  ASSERT_EQ(rr.kvs_size(), 2);
  EXPECT_EQ(rr.kvs(1).value(), "2");
  EXPECT_EQ(rr.kvs(1).mod_revision(), 4);
  EXPECT_EQ(rr.header().revision(), 4);
  EXPECT_EQ(resp.responses(3).response_delete_range().deleted(), 1);
  EXPECT_EQ(store_->CurrentRevision(), 4);
  EXPECT_EQ(Get("k"), "<none>");
  EXPECT_EQ(Get("failed"), "<none>");

  // Now the compare fails: the failure branch runs.
  resp.Clear();
  ASSERT_TRUE(Txn(req, &resp).ok());
  EXPECT_FALSE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 5);
  EXPECT_EQ(Get("failed"), "1");
}

TEST_F(TxnTest, TxnWithOnlyReadsKeepsRevision) {
  TxnRequest req;
  *req.add_success() = RangeOp("k");
  TxnResponse resp;
  ASSERT_TRUE(Txn(req, &resp).ok());
  EXPECT_EQ(resp.header().revision(), 3);
  EXPECT_EQ(resp.responses(0).response_range().kvs(0).value(), "m");
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

TEST_F(TxnTest, NestedTxnComparesSeeStateBeforeTheTxn) {
  TxnRequest inner;
  // Evaluated before the outer put of "k": still "m".
  *inner.add_compare() = MakeCompare("k", Compare::VALUE, Compare::EQUAL, 0, "m");
  *inner.add_success() = PutOp("inner", "then");
  *inner.add_failure() = PutOp("inner", "else");
  TxnRequest outer;
  *outer.add_success() = PutOp("k", "changed");
  *outer.add_success()->mutable_request_txn() = inner;
  TxnResponse resp;
  ASSERT_TRUE(Txn(outer, &resp).ok());
  EXPECT_EQ(Get("inner"), "then");
  EXPECT_EQ(Get("k"), "changed");
  ASSERT_EQ(resp.responses_size(), 2);
  const auto& nested = resp.responses(1).response_txn();
  EXPECT_TRUE(nested.succeeded());
  EXPECT_EQ(nested.header().revision(), 4);
  EXPECT_EQ(nested.responses(0).response_put().header().revision(), 4);
  EXPECT_EQ(store_->CurrentRevision(), 4);
}

TEST_F(TxnTest, FailedCheckWritesNothing) {
  TxnRequest req;
  *req.add_success() = PutOp("a", "1");
  RequestOp bad = PutOp("b", "2");
  bad.mutable_request_put()->set_lease(1000);  // Unknown lease.
  *req.add_success() = bad;
  TxnResponse resp;
  EXPECT_EQ(Txn(req, &resp).code(), Code::kLeaseNotFound);
  EXPECT_EQ(Get("a"), "<none>");
  EXPECT_EQ(store_->CurrentRevision(), 3);

  req.Clear();
  *req.add_success() = PutOp("a", "1");
  RequestOp future = RangeOp("k");
  future.mutable_request_range()->set_revision(10);
  *req.add_success() = future;
  EXPECT_EQ(Txn(req, &resp).code(), Code::kFutureRev);
  EXPECT_EQ(Get("a"), "<none>");

  req.Clear();
  RequestOp ignore = PutOp("missing", "");
  ignore.mutable_request_put()->set_ignore_value(true);
  *req.add_success() = ignore;
  EXPECT_EQ(Txn(req, &resp).code(), Code::kKeyNotFound);
}

TEST_F(TxnTest, ReadOnlyTxnOnASnapshot) {
  TxnRequest req;
  *req.add_compare() = MakeCompare("k", Compare::VERSION, Compare::EQUAL, 2);
  *req.add_success() = RangeOp("k");
  *req.add_failure() = RangeOp("other");
  auto read = store_->Read();
  ASSERT_TRUE(read.ok());
  TxnResponse resp;
  ASSERT_TRUE(KvApplier::TxnReadOnly(**read, req, &resp).ok());
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 3);
  EXPECT_EQ(resp.responses(0).response_range().kvs(0).value(), "m");

  TxnRequest writes;
  *writes.add_success() = PutOp("x", "y");
  resp.Clear();
  EXPECT_FALSE(KvApplier::TxnReadOnly(**read, writes, &resp).ok());
}

}  // namespace
}  // namespace etcdpp::server
