// Physical compaction is spread over transactions (compact_keys_per_txn);
// how far it has got must never be visible: two stores fed the same history,
// one compacting one key per transaction and one all at once, must agree on
// every read, the change log (with prev_kv) and HashKV.
#include <gtest/gtest.h>

#include <random>

#include "mvcc/kv_store.h"
#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

std::string Describe(const mvccpb::KeyValue& kv) {
  return kv.key() + "=" + kv.value() + " c" + std::to_string(kv.create_revision()) + " m" +
         std::to_string(kv.mod_revision()) + " v" + std::to_string(kv.version());
}

std::vector<std::string> Snapshot(KvStore& store) {
  auto read = store.Read().value();
  std::vector<std::string> out;
  const int64_t first = std::max<int64_t>(read->CompactRev(), 1);
  for (int64_t at = first; at <= read->Rev(); ++at) {
    auto r = read->Range(kAll, kAll, RangeOptions{.rev = at});
    EXPECT_TRUE(r.ok());
    for (const auto& kv : r->kvs) out.push_back("@" + std::to_string(at) + " " + Describe(kv));
  }
  auto it = read->Changes(read->CompactRev(), 0, /*with_prev_kv=*/true);
  EXPECT_TRUE(it.ok());
  for (; (*it)->Valid(); (*it)->Next()) {
    const auto& e = (*it)->event();
    out.push_back("event " + std::to_string(e.type()) + " " + Describe(e.kv()) + " prev " +
                  Describe(e.prev_kv()));
  }
  EXPECT_TRUE((*it)->status().ok());
  out.push_back("hash " + std::to_string(read->HashKV(0)->hash));
  return out;
}

TEST(LazyCompactionTest, ProgressIsInvisible) {
  testing::TempDir lazy_dir, eager_dir;
  auto lazy = KvStore::Open(lazy_dir.path(), Options{.compact_keys_per_txn = 1}).value();
  auto eager = KvStore::Open(eager_dir.path()).value();
  std::mt19937 rng(7);
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f"};
  int pending_steps = 0;
  for (int step = 0; step < 120; ++step) {
    const int action = rng() % 8;
    const std::string key = keys[rng() % keys.size()];
    const std::string value = "v" + std::to_string(step);
    const int64_t current = eager->CurrentRevision();
    const int64_t compact = std::max<int64_t>(eager->CompactRevision(), 0);
    const int64_t target = current > compact ? compact + 1 + rng() % (current - compact) : 0;
    for (KvStore* store : {lazy.get(), eager.get()}) {
      auto w = store->Write().value();
      if (action < 5) {
        w->BeginRevision();
        ASSERT_TRUE(w->Put(key, value, 0).ok());
        w->EndRevision();
      } else if (action < 6) {
        w->BeginRevision();
        ASSERT_TRUE(w->DeleteRange(key, "").ok());
        w->EndRevision();
      } else if (target > 0) {
        ASSERT_TRUE(w->Compact(target).ok());
      }
      ASSERT_TRUE(w->Commit().ok());
    }
    ASSERT_FALSE(eager->CompactionPending());
    pending_steps += lazy->CompactionPending();
    ASSERT_EQ(Snapshot(*lazy), Snapshot(*eager)) << "step " << step;
  }
  EXPECT_GT(pending_steps, 10);  // The comparison did see partial compactions.
  // Idle commits finish the lazy compaction.
  while (lazy->CompactionPending()) ASSERT_TRUE(lazy->Write().value()->Commit().ok());
  EXPECT_EQ(Snapshot(*lazy), Snapshot(*eager));
  EXPECT_EQ(lazy->DbSizeInUseBytes() > 0, true);
}

// A restart must not wait for a large compaction to finish: Open() leaves it
// pending, reads are the same as before the restart, and later commits
// finish it.
TEST(LazyCompactionTest, ReopenLeavesItPendingAndInvisible) {
  testing::TempDir dir;
  const Options options{.compact_keys_per_txn = 1};
  std::vector<std::string> before;
  {
    auto store = KvStore::Open(dir.path(), options).value();
    for (int round = 0; round < 3; ++round) {
      for (const char* key : {"a", "b", "c", "d"}) {
        auto w = store->Write().value();
        w->BeginRevision();
        ASSERT_TRUE(w->Put(key, "v" + std::to_string(round), 0).ok());
        w->EndRevision();
        ASSERT_TRUE(w->Commit().ok());
      }
    }
    auto w = store->Write().value();
    ASSERT_TRUE(w->Compact(store->CurrentRevision() - 1).ok());
    ASSERT_TRUE(w->Commit().ok());
    ASSERT_TRUE(store->CompactionPending());
    before = Snapshot(*store);
  }
  auto reopened = KvStore::Open(dir.path(), options).value();
  EXPECT_TRUE(reopened->CompactionPending());
  EXPECT_EQ(Snapshot(*reopened), before);
  int commits = 0;
  while (reopened->CompactionPending()) {
    ASSERT_TRUE(reopened->Write().value()->Commit().ok());
    ASSERT_LT(++commits, 100);
  }
  EXPECT_EQ(Snapshot(*reopened), before);
}

}  // namespace
}  // namespace etcdpp::mvcc
