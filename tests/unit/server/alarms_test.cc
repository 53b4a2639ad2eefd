// The alarm set and what a write costs against the quota.
#include "server/alarms.h"

#include <gtest/gtest.h>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::server {
namespace {

TEST(AlarmSetTest, ActivateDeactivateAndListByType) {
  AlarmSet alarms;
  EXPECT_TRUE(alarms.Activate(2, etcdserverpb::NOSPACE));
  EXPECT_FALSE(alarms.Activate(2, etcdserverpb::NOSPACE)) << "already raised";
  EXPECT_TRUE(alarms.Activate(1, etcdserverpb::CORRUPT));
  EXPECT_TRUE(alarms.Raised(etcdserverpb::NOSPACE));
  auto all = alarms.List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].memberid(), 1u);
  EXPECT_EQ(all[0].alarm(), etcdserverpb::CORRUPT);
  EXPECT_EQ(alarms.List(etcdserverpb::NOSPACE).size(), 1u);
  EXPECT_FALSE(alarms.Deactivate(1, etcdserverpb::NOSPACE)) << "not raised for member 1";
  EXPECT_TRUE(alarms.Deactivate(2, etcdserverpb::NOSPACE));
  EXPECT_FALSE(alarms.Raised(etcdserverpb::NOSPACE));
}

TEST(AlarmSetTest, LoadsWhatWasStored) {
  etcdpp::testing::TempDir dir;
  auto store = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  AlarmSet written;
  written.Activate(7, etcdserverpb::NOSPACE);
  {
    auto txn = (*store)->Write();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->PutMeta(kAlarmsMetaKey, written.Encode()).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  AlarmSet loaded;
  auto view = (*store)->Read();
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(loaded.Load(**view).ok());
  ASSERT_EQ(loaded.List().size(), 1u);
  EXPECT_EQ(loaded.List()[0].memberid(), 7u);
}

TEST(QuotaCostTest, OnlyWhatGrowsTheBackendCosts) {
  internalpb::InternalRaftRequest put;
  put.mutable_put()->set_key("key");
  put.mutable_put()->set_value("value");
  EXPECT_EQ(QuotaCost(put), 256u + 8u);
  internalpb::InternalRaftRequest grant;
  grant.mutable_lease_grant()->set_ttl(10);
  EXPECT_GT(QuotaCost(grant), 0u);
  internalpb::InternalRaftRequest del;
  del.mutable_delete_range()->set_key("key");
  EXPECT_EQ(QuotaCost(del), 0u);
  internalpb::InternalRaftRequest compact;
  compact.mutable_compaction()->set_revision(3);
  EXPECT_EQ(QuotaCost(compact), 0u);
  internalpb::InternalRaftRequest txn;
  txn.mutable_txn()->add_success()->mutable_request_delete_range()->set_key("a");
  EXPECT_EQ(QuotaCost(txn), 0u) << "a txn that only deletes is served above the quota";
  auto* nested = txn.mutable_txn()->add_failure()->mutable_request_txn();
  nested->add_success()->mutable_request_put()->set_key("k");
  EXPECT_EQ(QuotaCost(txn), 256u + 1u);
}

}  // namespace
}  // namespace etcdpp::server
