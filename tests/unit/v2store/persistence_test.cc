// The v2 tree survives a reopen of the LMDB store it is written to.
#include "v2store/persistence.h"

#include <gtest/gtest.h>

#include "unit/mvcc/temp_dir.h"
#include "v2store/json.h"

namespace etcdpp::v2store {
namespace {

constexpr int64_t kClockNow = int64_t{1800000000} * 1000000000;

TEST(V2PersistenceTest, TreeAndIndexSurviveReopen) {
  testing::TempDir dir;
  auto now = [] { return kClockNow; };
  std::string before;
  {
    auto db = mvcc::KvStore::Open(dir.path());
    ASSERT_TRUE(db.ok());
    Store store(now);
    ASSERT_TRUE(store.Set("/a/b", false, "1", 0, false).ok());
    ASSERT_TRUE(store.Set("/t", false, "t", kClockNow + int64_t{60} * 1000000000, false).ok());
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

// Saves what changed since the last save, in one committed transaction.
void Save(mvcc::KvStore& db, Store& store) {
  auto txn = db.Write();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(SaveChanges(store, **txn).ok());
  ASSERT_TRUE((*txn)->Commit().ok());
}

// The first event at or after `index` for a watcher of `key`, as JSON;
// the error's code as text when the watch fails; "" when it would wait.
std::string HistoryAt(Store& store, const std::string& key, uint64_t index) {
  Store::WatchStart start = store.Watch(key, true, false, index, [](const Event&) {});
  if (start.error) return "error " + std::to_string(static_cast<int>(start.error->code));
  if (start.immediate) return EventJson(*start.immediate);
  store.CancelWatch(start.id);
  return "";
}

// etcd keeps its watcher hub's history in its v2 snapshot: a waitIndex
// older than a restart is still answered from it.
TEST(V2PersistenceTest, EventHistorySurvivesReopen) {
  testing::TempDir dir;
  auto now = [] { return kClockNow; };
  std::string third, refreshed;
  {
    auto db = mvcc::KvStore::Open(dir.path());
    ASSERT_TRUE(db.ok());
    Store store(now);
    ASSERT_TRUE(store.Set("/q/a", false, "1", 0, false).ok());  // 1
    ASSERT_TRUE(store.Set("/q/a", false, "2", 0, false).ok());  // 2
    Save(**db, store);
    ASSERT_TRUE(store.Delete("/q/a", false, false).ok());         // 3
    ASSERT_TRUE(store.Create("/q", false, "job", true, 0).ok());  // 4, in-order key
    ASSERT_TRUE(store.Set("/t", false, "x", kClockNow + 60000000000, false).ok());  // 5
    ASSERT_TRUE(store.Set("/t", false, "", kClockNow + 90000000000, true).ok());    // 6, refresh
    Save(**db, store);
    third = HistoryAt(store, "/q/a", 3);
    refreshed = HistoryAt(store, "/t", 5);
  }
  auto db = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(db.ok());
  Store loaded(now);
  ASSERT_TRUE(LoadStore(loaded, **db).ok());
  EXPECT_EQ(HistoryAt(loaded, "/q/a", 1),
            "{\"action\":\"set\",\"node\":{\"key\":\"/q/a\",\"value\":\"1\","
            "\"modifiedIndex\":1,\"createdIndex\":1}}\n");
  EXPECT_EQ(HistoryAt(loaded, "/q/a", 3), third);
  EXPECT_NE(third.find("\"action\":\"delete\""), std::string::npos);
  EXPECT_NE(HistoryAt(loaded, "/q", 4).find("\"key\":\"/q/00000000000000000004\""),
            std::string::npos);
  // A refresh stays silent after the restart too.
  EXPECT_EQ(HistoryAt(loaded, "/t", 5), refreshed);
  EXPECT_EQ(HistoryAt(loaded, "/t", 6), "");
  // New events continue the restored history.
  ASSERT_TRUE(loaded.Set("/q/b", false, "b", 0, false).ok());  // 7
  EXPECT_NE(HistoryAt(loaded, "/q", 5).find("\"key\":\"/q/b\""), std::string::npos);
}

// Only the last 1000 events are kept, on disk as in memory: older ones are
// deleted as new ones come, and a waitIndex before them is refused (401).
TEST(V2PersistenceTest, PersistedHistoryKeepsTheLastThousandEvents) {
  testing::TempDir dir;
  auto now = [] { return kClockNow; };
  {
    auto db = mvcc::KvStore::Open(dir.path());
    ASSERT_TRUE(db.ok());
    Store store(now);
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 700; ++i) {
        ASSERT_TRUE(store.Set("/k", false, std::to_string(i), 0, false).ok());
      }
      Save(**db, store);
    }
    auto read = (*db)->Read();
    ASSERT_TRUE(read.ok());
    auto table = (*read)->OpenTable(kV2Table);
    ASSERT_TRUE(table.ok());
    size_t events = 0;
    mvcc::Cursor c = table->NewCursor();
    for (bool on = c.Seek("event/"); on && c.key().starts_with("event/"); on = c.Next()) ++events;
    EXPECT_EQ(events, kEventHistoryCapacity);
  }
  auto db = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(db.ok());
  Store loaded(now);
  ASSERT_TRUE(LoadStore(loaded, **db).ok());
  EXPECT_EQ(loaded.index(), 2100u);
  EXPECT_EQ(HistoryAt(loaded, "/k", 1100),
            "error " + std::to_string(static_cast<int>(ErrorCode::kEventIndexCleared)));
  EXPECT_NE(HistoryAt(loaded, "/k", 1101).find("\"modifiedIndex\":1101"), std::string::npos);
}

TEST(V2PersistenceTest, EmptyStoreLoadsEmpty) {
  testing::TempDir dir;
  auto db = mvcc::KvStore::Open(dir.path());
  ASSERT_TRUE(db.ok());
  Store store([] { return kClockNow; });
  ASSERT_TRUE(LoadStore(store, **db).ok());
  EXPECT_EQ(store.index(), 0u);
  EXPECT_EQ(EventJson(store.Get("", false, false).event),
            "{\"action\":\"get\",\"node\":{\"dir\":true}}\n");
}

}  // namespace
}  // namespace etcdpp::v2store
