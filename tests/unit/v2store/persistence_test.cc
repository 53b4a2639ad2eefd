// The v2 tree survives a reopen of the LMDB store it is written to.
#include "v2store/persistence.h"

#include <gtest/gtest.h>

#include "unit/mvcc/temp_dir.h"
#include "v2store/json.h"

namespace etcdpp::v2store {
namespace {

constexpr int64_t kNow = int64_t{1800000000} * 1000000000;

TEST(V2PersistenceTest, TreeAndIndexSurviveReopen) {
  testing::TempDir dir;
  auto now = [] { return kNow; };
  std::string before;
  {
    auto db = mvcc::KvStore::Open(dir.path());
    ASSERT_TRUE(db.ok());
    Store store(now);
    ASSERT_TRUE(store.Set("/a/b", false, "1", 0, false).ok());
    ASSERT_TRUE(store.Set("/t", false, "t", kNow + int64_t{60} * 1000000000, false).ok());
    ASSERT_TRUE(store.Set("/" + std::string(600, 'k'), false, "long", 0, false).ok());
    ASSERT_TRUE(store.Set("/gone", false, "x", 0, false).ok());
    ASSERT_TRUE(store.Delete("/gone", false, false).ok());
    auto txn = (*db)->Write();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(SaveChanges(store, **txn).ok());
    ASSERT_TRUE((*txn)->Commit().ok());
    before = EventJson(store.Get("", true, true).event);
  }
  auto db = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(db.ok());
  Store loaded(now);
  ASSERT_TRUE(LoadStore(loaded, **db).ok());
  EXPECT_EQ(loaded.index(), 5u);
  EXPECT_EQ(EventJson(loaded.Get("", true, true).event), before);
  EXPECT_TRUE(loaded.HasTtlKeys());
}

TEST(V2PersistenceTest, EmptyStoreLoadsEmpty) {
  testing::TempDir dir;
  auto db = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(db.ok());
  Store store([] { return kNow; });
  ASSERT_TRUE(LoadStore(store, **db).ok());
  EXPECT_EQ(store.index(), 0u);
  EXPECT_EQ(EventJson(store.Get("", false, false).event),
            "{\"action\":\"get\",\"node\":{\"dir\":true}}\n");
}

}  // namespace
}  // namespace etcdpp::v2store
