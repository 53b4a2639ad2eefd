// Range, Put, DeleteRange and Compact semantics of KvApplier, as etcd
// clients observe them.
#include "server/kv_applier.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "unit/kv_applier/applier_test_util.h"

namespace etcdpp::server {
namespace {

using Strings = std::vector<std::string>;

class RangeTest : public ApplierTest {
 protected:
  // The empty store is revision 1 (as in etcd), so the first put is 2.
  // key  value  create mod version
  // a    "3"    2      5   2
  // b    "1"    3      3   1
  // c    "2"    4      4   1
  // a    (rewritten at 5)
  // d    "0"    6      6   1
  void SetUp() override {
    ApplierTest::SetUp();
    ASSERT_TRUE(Put("a", "9").ok());  // 2
    ASSERT_TRUE(Put("b", "1").ok());  // 3
    ASSERT_TRUE(Put("c", "2").ok());  // 4
    ASSERT_TRUE(Put("a", "3").ok());  // 5
    ASSERT_TRUE(Put("d", "0").ok());  // 6
  }
};

TEST_F(RangeTest, KeyAndRangeEndRules) {
  EXPECT_EQ(Keys(MakeRange("b")), (Strings{"b"}));
  EXPECT_EQ(Keys(MakeRange("b", "d")), (Strings{"b", "c"}));
  EXPECT_EQ(Keys(MakeRange("b", kFromKey)), (Strings{"b", "c", "d"}));
  EXPECT_EQ(Keys(MakeRange(kFromKey, kFromKey)), (Strings{"a", "b", "c", "d"}));
  EXPECT_TRUE(Keys(MakeRange("x")).empty());
}

TEST_F(RangeTest, ResponseCarriesRevisionAndCount) {
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(MakeRange("a", "z"), &resp).ok());
  EXPECT_EQ(resp.header().revision(), 6);
  EXPECT_EQ(resp.count(), 4);
  EXPECT_FALSE(resp.more());
  const auto& a = resp.kvs(0);
  EXPECT_EQ(a.key(), "a");
  EXPECT_EQ(a.value(), "3");
  EXPECT_EQ(a.create_revision(), 2);
  EXPECT_EQ(a.mod_revision(), 5);
  EXPECT_EQ(a.version(), 2);
}

TEST_F(RangeTest, LimitSetsMoreAndKeepsTotalCount) {
  auto req = MakeRange("a", "z");
  req.set_limit(2);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  EXPECT_EQ(resp.kvs_size(), 2);
  EXPECT_TRUE(resp.more());
  EXPECT_EQ(resp.count(), 4);
  req.set_limit(4);
  resp.Clear();
  ASSERT_TRUE(Range(req, &resp).ok());
  EXPECT_EQ(resp.kvs_size(), 4);
  EXPECT_FALSE(resp.more());
}

TEST_F(RangeTest, SortOrdersAndTargets) {
  auto sorted = [&](RangeRequest::SortOrder order, RangeRequest::SortTarget target) {
    auto req = MakeRange("a", "z");
    req.set_sort_order(order);
    req.set_sort_target(target);
    return Keys(req);
  };
  EXPECT_EQ(sorted(RangeRequest::NONE, RangeRequest::KEY), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(sorted(RangeRequest::ASCEND, RangeRequest::KEY), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(sorted(RangeRequest::DESCEND, RangeRequest::KEY), (Strings{"d", "c", "b", "a"}));
  EXPECT_EQ(sorted(RangeRequest::ASCEND, RangeRequest::VALUE), (Strings{"d", "b", "c", "a"}));
  EXPECT_EQ(sorted(RangeRequest::DESCEND, RangeRequest::VALUE), (Strings{"a", "c", "b", "d"}));
  EXPECT_EQ(sorted(RangeRequest::ASCEND, RangeRequest::MOD), (Strings{"b", "c", "a", "d"}));
  EXPECT_EQ(sorted(RangeRequest::DESCEND, RangeRequest::MOD), (Strings{"d", "a", "c", "b"}));
  EXPECT_EQ(sorted(RangeRequest::ASCEND, RangeRequest::CREATE), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(sorted(RangeRequest::DESCEND, RangeRequest::CREATE), (Strings{"d", "c", "b", "a"}));
  // Ties keep key order (stable sort).
  EXPECT_EQ(sorted(RangeRequest::ASCEND, RangeRequest::VERSION), (Strings{"b", "c", "d", "a"}));
  EXPECT_EQ(sorted(RangeRequest::DESCEND, RangeRequest::VERSION), (Strings{"a", "b", "c", "d"}));
  // NONE with a non-KEY target means ASCEND.
  EXPECT_EQ(sorted(RangeRequest::NONE, RangeRequest::MOD), (Strings{"b", "c", "a", "d"}));
}

TEST_F(RangeTest, KeysOnlySortedByValue) {
  auto req = MakeRange("a", "z");
  req.set_keys_only(true);
  req.set_sort_order(RangeRequest::ASCEND);
  req.set_sort_target(RangeRequest::VALUE);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  std::vector<std::string> keys;
  for (const auto& kv : resp.kvs()) {
    keys.push_back(kv.key());
    EXPECT_EQ(kv.value(), "");
  }
  EXPECT_EQ(keys, (Strings{"d", "b", "c", "a"}));
}

TEST_F(RangeTest, SortThenLimit) {
  auto req = MakeRange("a", "z");
  req.set_sort_order(RangeRequest::DESCEND);
  req.set_sort_target(RangeRequest::MOD);
  req.set_limit(2);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  ASSERT_EQ(resp.kvs_size(), 2);
  EXPECT_EQ(resp.kvs(0).key(), "d");
  EXPECT_EQ(resp.kvs(1).key(), "a");
  EXPECT_TRUE(resp.more());
  EXPECT_EQ(resp.count(), 4);
}

TEST_F(RangeTest, KeysOnlyAndCountOnly) {
  auto req = MakeRange("a", "z");
  req.set_keys_only(true);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  ASSERT_EQ(resp.kvs_size(), 4);
  EXPECT_EQ(resp.kvs(0).value(), "");
  EXPECT_EQ(resp.kvs(0).mod_revision(), 5);

  req = MakeRange("a", "z");
  req.set_count_only(true);
  resp.Clear();
  ASSERT_TRUE(Range(req, &resp).ok());
  EXPECT_EQ(resp.kvs_size(), 0);
  EXPECT_EQ(resp.count(), 4);
}

TEST_F(RangeTest, RevisionFilters) {
  auto filtered = [&](int64_t min_mod, int64_t max_mod, int64_t min_create, int64_t max_create) {
    auto req = MakeRange("a", "z");
    req.set_min_mod_revision(min_mod);
    req.set_max_mod_revision(max_mod);
    req.set_min_create_revision(min_create);
    req.set_max_create_revision(max_create);
    return Keys(req);
  };
  EXPECT_EQ(filtered(5, 0, 0, 0), (Strings{"a", "d"}));
  EXPECT_EQ(filtered(0, 4, 0, 0), (Strings{"b", "c"}));
  EXPECT_EQ(filtered(0, 0, 4, 0), (Strings{"c", "d"}));
  EXPECT_EQ(filtered(0, 0, 0, 3), (Strings{"a", "b"}));
  EXPECT_EQ(filtered(4, 5, 2, 4), (Strings{"a", "c"}));

  // Count is the range's total, as in etcd; limit applies after filtering.
  auto req = MakeRange("a", "z");
  req.set_min_mod_revision(4);
  req.set_limit(1);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  ASSERT_EQ(resp.kvs_size(), 1);
  EXPECT_EQ(resp.kvs(0).key(), "a");
  EXPECT_TRUE(resp.more());
  EXPECT_EQ(resp.count(), 4);
}

TEST_F(RangeTest, HistoricalRevisionCompactedAndFuture) {
  auto req = MakeRange("a");
  req.set_revision(4);
  etcdserverpb::RangeResponse resp;
  ASSERT_TRUE(Range(req, &resp).ok());
  ASSERT_EQ(resp.kvs_size(), 1);
  EXPECT_EQ(resp.kvs(0).value(), "9");
  EXPECT_EQ(resp.header().revision(), 6);
  // Revision 1, the empty store's, exists and holds nothing.
  req.set_revision(1);
  resp.Clear();
  ASSERT_TRUE(Range(req, &resp).ok());
  EXPECT_EQ(resp.kvs_size(), 0);
  EXPECT_EQ(resp.header().revision(), 6);

  req.set_revision(7);
  EXPECT_EQ(Range(req, &resp).code(), Code::kFutureRev);
  ASSERT_TRUE(Compact(5).ok());
  req.set_revision(4);
  EXPECT_EQ(Range(req, &resp).code(), Code::kCompacted);
  req.set_revision(5);
  EXPECT_TRUE(Range(req, &resp).ok());
}

TEST_F(ApplierTest, PutReturnsRevisionAndPrevKv) {
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(Put("k", "v1", 0, &resp).ok());
  EXPECT_EQ(resp.header().revision(), 2);  // etcd's first write.
  EXPECT_FALSE(resp.has_prev_kv());

  etcdserverpb::PutRequest req;
  req.set_key("k");
  req.set_value("v2");
  req.set_prev_kv(true);
  resp.Clear();
  ASSERT_TRUE(Put(req, &resp).ok());
  EXPECT_EQ(resp.header().revision(), 3);
  ASSERT_TRUE(resp.has_prev_kv());
  EXPECT_EQ(resp.prev_kv().value(), "v1");
  EXPECT_EQ(resp.prev_kv().mod_revision(), 2);
  EXPECT_EQ(Get("k"), "v2");
}

TEST_F(ApplierTest, PutIgnoreValueAndIgnoreLease) {
  ASSERT_TRUE(Put("k", "v1", 7).ok());
  etcdserverpb::PutRequest req;
  req.set_key("k");
  req.set_ignore_value(true);
  req.set_lease(8);
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(Put(req, &resp).ok());
  EXPECT_EQ(Get("k"), "v1");
  EXPECT_EQ(leases_.keys[8], (std::set<std::string>{"k"}));
  EXPECT_TRUE(leases_.keys[7].empty());  // Moved from lease 7 to 8.

  req.Clear();
  req.set_key("k");
  req.set_value("v2");
  req.set_ignore_lease(true);
  ASSERT_TRUE(Put(req, &resp).ok());
  etcdserverpb::RangeResponse rr;
  ASSERT_TRUE(Range(MakeRange("k"), &rr).ok());
  EXPECT_EQ(rr.kvs(0).value(), "v2");
  EXPECT_EQ(rr.kvs(0).lease(), 8);
  EXPECT_EQ(rr.kvs(0).version(), 3);
}

TEST_F(ApplierTest, PutIgnoreOnMissingKeyFailsWithoutWriting) {
  etcdserverpb::PutRequest req;
  req.set_key("missing");
  req.set_ignore_value(true);
  etcdserverpb::PutResponse resp;
  EXPECT_EQ(Put(req, &resp).code(), Code::kKeyNotFound);
  req.set_ignore_value(false);
  req.set_ignore_lease(true);
  EXPECT_EQ(Put(req, &resp).code(), Code::kKeyNotFound);
  EXPECT_EQ(store_->CurrentRevision(), 1);
}

TEST_F(ApplierTest, PutWithUnknownLeaseFails) {
  EXPECT_EQ(Put("k", "v", 500).code(), Code::kLeaseNotFound);
  // Without a lease index every lease is unknown.
  KvApplier no_leases(nullptr);
  auto w = store_->Write();
  etcdserverpb::PutRequest req;
  req.set_key("k");
  req.set_lease(1);
  etcdserverpb::PutResponse resp;
  EXPECT_EQ(no_leases.Put(**w, req, &resp).code(), Code::kLeaseNotFound);
  EXPECT_EQ((*w)->Rev(), 1);
}

TEST_F(ApplierTest, DeleteRangeCountsPrevKvsAndDetachesLeases) {
  ASSERT_TRUE(Put("a", "1", 3).ok());
  ASSERT_TRUE(Put("b", "2").ok());
  ASSERT_TRUE(Put("c", "3").ok());
  etcdserverpb::DeleteRangeRequest req;
  req.set_key("a");
  req.set_range_end("c");
  req.set_prev_kv(true);
  etcdserverpb::DeleteRangeResponse resp;
  ASSERT_TRUE(Delete(req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 2);
  ASSERT_EQ(resp.prev_kvs_size(), 2);
  EXPECT_EQ(resp.prev_kvs(0).key(), "a");
  EXPECT_EQ(resp.prev_kvs(0).value(), "1");
  EXPECT_EQ(resp.prev_kvs(1).key(), "b");
  EXPECT_EQ(resp.header().revision(), 5);
  EXPECT_TRUE(leases_.keys[3].empty());
  EXPECT_EQ(Get("a"), "<none>");
  EXPECT_EQ(Get("c"), "3");

  // Deleting nothing reports 0 and the unchanged revision.
  resp.Clear();
  ASSERT_TRUE(Delete(req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 0);
  EXPECT_EQ(resp.header().revision(), 5);
  EXPECT_EQ(store_->CurrentRevision(), 5);
}

// In parts, each part's keys are detached from their leases before the part
// commits, so a crash between parts leaves no lease naming a deleted key;
// the answer covers every part.
TEST_F(ApplierTest, DeleteRangeInPartsDetachesEachPartsLeasesBeforeItCommits) {
  constexpr int kKeys = 3000;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%04d", i);
    keys.push_back(key);
    ASSERT_TRUE(Put(key, "v", i % 2 ? 5 : 0).ok());
  }
  const int64_t rev_before = store_->CurrentRevision();
  etcdserverpb::DeleteRangeRequest req;
  req.set_key("k");
  req.set_range_end("l");
  req.set_prev_kv(true);
  etcdserverpb::DeleteRangeResponse resp;
  std::vector<size_t> leased_left;  // at each part's commit
  mvcc::DeleteParts parts{.keys_per_part = 1000, .before_commit = [&]() -> Status {
                            leased_left.push_back(leases_.keys[5].size());
                            return Status::OK();
                          }};
  auto w = store_->Write().value();
  ASSERT_TRUE(applier_.DeleteRangeInParts(*w, req, &resp, parts).ok());
  ASSERT_TRUE(w->Commit().ok());
  // Parts commit after 1,024 and 2,048 keys: half of those were leased.
  EXPECT_EQ(leased_left, (std::vector<size_t>{kKeys / 2 - 512, kKeys / 2 - 1024}));
  EXPECT_TRUE(leases_.keys[5].empty());
  EXPECT_EQ(resp.deleted(), kKeys);
  ASSERT_EQ(resp.prev_kvs_size(), kKeys);
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(resp.prev_kvs(i).key(), keys[static_cast<size_t>(i)]);
  EXPECT_EQ(resp.header().revision(), rev_before + 1);
  EXPECT_EQ(store_->CurrentRevision(), rev_before + 1);
  EXPECT_EQ(Get("k0000"), "<none>");
}

TEST_F(ApplierTest, DeleteFromKey) {
  ASSERT_TRUE(Put("a", "1").ok());
  ASSERT_TRUE(Put("b", "2").ok());
  etcdserverpb::DeleteRangeRequest req;
  req.set_key("b");
  req.set_range_end(kFromKey);
  etcdserverpb::DeleteRangeResponse resp;
  ASSERT_TRUE(Delete(req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 1);
  EXPECT_EQ(Get("a"), "1");
}

TEST_F(ApplierTest, CompactRules) {
  ASSERT_TRUE(Put("a", "1").ok());  // 2
  ASSERT_TRUE(Put("a", "2").ok());  // 3
  ASSERT_TRUE(Put("a", "3").ok());  // 4
  EXPECT_EQ(Compact(5).code(), Code::kFutureRev);
  ASSERT_TRUE(Compact(3).ok());
  EXPECT_EQ(Compact(3).code(), Code::kCompacted);
  EXPECT_EQ(Compact(2).code(), Code::kCompacted);
  EXPECT_TRUE(Compact(4).ok());
}

// etcd's fresh store (revision 1) can be compacted at revision 1 and the
// response reports revision 1.
TEST_F(ApplierTest, CompactEmptyStoreAtRevisionOne) {
  etcdserverpb::CompactionRequest req;
  req.set_revision(2);
  etcdserverpb::CompactionResponse resp;
  EXPECT_EQ(WriteOp(&KvApplier::Compact, req, &resp).code(), Code::kFutureRev);
  req.set_revision(1);
  ASSERT_TRUE(WriteOp(&KvApplier::Compact, req, &resp).ok());
  EXPECT_EQ(resp.header().revision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 1);
  EXPECT_EQ(Compact(1).code(), Code::kCompacted);
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put("a", "1", 0, &put).ok());
  EXPECT_EQ(put.header().revision(), 2);
}

}  // namespace
}  // namespace etcdpp::server
