// Physical compaction is spread over transactions (compact_keys_per_txn);
// how far it has got must never be visible: two stores fed the same history,
// one compacting one key per transaction and one all at once, must agree on
// every read, the change log (with prev_kv) and HashKV.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "mvcc/kv_store.h"
#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

std::vector<std::string> Snapshot(KvStore& store) {
  auto read = store.Read().value();
  std::vector<std::string> out;
  const int64_t first = std::max<int64_t>(read->CompactRev(), 1);
  for (int64_t at = first; at <= read->Rev(); ++at) {
    auto r = read->Range(kAll, kAll, RangeOptions{.rev = at});
    EXPECT_TRUE(r.ok());
    for (const auto& kv : r->kvs) out.push_back(fmt::format("@{} {}", at, Describe(kv)));
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

// Puts every key twice into `store`, each put its own revision or, with
// `round_is_one_revision`, each round one revision of all the keys; then
// compacts at the last revision.
void WriteTwiceAndCompact(KvStore* store, const std::vector<std::string>& keys,
                          bool round_is_one_revision) {
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < keys.size();) {
      auto w = store->Write().value();
      w->BeginRevision();
      do {
        ASSERT_TRUE(w->Put(keys[i], keys[i] + std::to_string(round), 0).ok());
        ++i;
      } while (round_is_one_revision && i < keys.size());
      w->EndRevision();
      ASSERT_TRUE(w->Commit().ok());
    }
  }
  auto w = store->Write().value();
  ASSERT_TRUE(w->Compact(store->CurrentRevision()).ok());
  ASSERT_TRUE(w->Commit().ok());
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
    const std::string value = fmt::format("v{}", step);
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
        ASSERT_TRUE(w->Put(key, fmt::format("v{}", round), 0).ok());
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

// Idle shares (KvStore::RemoveCompactedHistory) are of their own size, and
// one that gives way to other work commits nothing: the store is exactly as
// before it, and the next share starts over and finishes the removal.
TEST(LazyCompactionTest, IdleShareThatYieldsLeavesNothingBehind) {
  testing::TempDir dir, eager_dir;
  const Options options{.compact_keys_per_txn = 1, .compact_keys_per_idle_txn = 3};
  auto store = KvStore::Open(dir.path(), options).value();
  auto eager = KvStore::Open(eager_dir.path(), Options{.compact_keys_per_txn = 1000}).value();
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  for (KvStore* s : {store.get(), eager.get()}) {
    ASSERT_NO_FATAL_FAILURE(WriteTwiceAndCompact(s, keys, /*round_is_one_revision=*/false));
  }
  ASSERT_TRUE(store->CompactionPending());
  const std::vector<std::string> before = Snapshot(*store);
  const auto digest_before = store->HashBackend().value();

  int asked = 0;
  auto yielded = store->RemoveCompactedHistory([&] { return ++asked == 2; });
  ASSERT_TRUE(yielded.ok()) << yielded.status().ToString();
  EXPECT_FALSE(*yielded);
  EXPECT_EQ(asked, 2);
  EXPECT_TRUE(store->CompactionPending());
  const auto digest_yielded = store->HashBackend().value();  // not one record removed
  EXPECT_EQ(digest_yielded.hash, digest_before.hash);
  EXPECT_EQ(digest_yielded.records, digest_before.records);
  EXPECT_EQ(Snapshot(*store), before);

  // The writer is free again, and idle shares finish the removal.
  int shares = 0;
  while (store->CompactionPending()) {
    auto done = store->RemoveCompactedHistory([] { return false; });
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_TRUE(*done);
    ASSERT_LT(++shares, 10);
  }
  // After Compact's own share (1 key) 19 revisions of one key each remain:
  // 7 shares of at most 3 keys (at compact_keys_per_txn it would be 19).
  EXPECT_EQ(shares, 7);
  EXPECT_EQ(Snapshot(*store), before);
  EXPECT_EQ(store->Read().value()->HashKV(0)->hash, eager->Read().value()->HashKV(0)->hash);
  EXPECT_EQ(store->HashBackend().value().hash, eager->HashBackend().value().hash);
  EXPECT_EQ(store->HashBackend().value().records, eager->HashBackend().value().records);
  auto nothing = store->RemoveCompactedHistory();
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(*nothing);
}

// A revision that changed many keys (one txn of many puts) is split over
// shares, so a share stays as small as it is told; where it stopped inside
// the revision survives a reopen.
TEST(LazyCompactionTest, AShareEndsInsideARevisionOfManyKeys) {
  testing::TempDir dir, eager_dir;
  const Options options{.compact_keys_per_txn = 1};
  auto store = KvStore::Open(dir.path(), options).value();
  auto eager = KvStore::Open(eager_dir.path(), Options{.compact_keys_per_txn = 1000}).value();
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f"};
  for (KvStore* s : {store.get(), eager.get()}) {
    ASSERT_NO_FATAL_FAILURE(WriteTwiceAndCompact(s, keys, /*round_is_one_revision=*/true));
  }
  ASSERT_FALSE(eager->CompactionPending());
  const std::vector<std::string> expected = Snapshot(*eager);
  // Compact's own share did the first key of the first revision; each
  // commit now does one more of the 11 left.
  int commits = 0;
  while (store->CompactionPending()) {
    ASSERT_TRUE(store->Write().value()->Commit().ok());
    ASSERT_EQ(Snapshot(*store), expected);
    if (++commits == 4) {
      store.reset();
      store = KvStore::Open(dir.path(), options).value();
      ASSERT_TRUE(store->CompactionPending());
    }
    ASSERT_LE(commits, 11);
  }
  EXPECT_EQ(commits, 11);
  EXPECT_EQ(store->HashBackend().value().hash, eager->HashBackend().value().hash);
  EXPECT_EQ(store->HashBackend().value().records, eager->HashBackend().value().records);
}

}  // namespace
}  // namespace etcdpp::mvcc
