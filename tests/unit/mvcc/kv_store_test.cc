#include "mvcc/kv_store.h"
#include "mvcc/key_codec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

using namespace std::string_literals;
using Strings = std::vector<std::string>;

// As in etcd: an empty store is at revision 1 (its first write is revision
// 2) and has compact revision 0.
TEST_F(StoreTest, EmptyStoreStartsAtRevisionOne) {
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 0);
  auto read = Read();
  EXPECT_EQ(read->Rev(), 1);
  EXPECT_EQ(read->CompactRev(), 0);
  auto r = read->Range("a", "", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 0);
  EXPECT_EQ(r->count, 0);
  EXPECT_EQ(r->rev, 1);
  // Revision 1 exists (and is empty); revision 2 is in the future.
  r = read->Range("a", kAll, RangeOptions{.rev = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 0);
  EXPECT_EQ(r->rev, 1);
  EXPECT_EQ(read->Range("a", "", RangeOptions{.rev = 2}).status().code(), Code::kFutureRev);
  auto h = read->HashKV(0);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rev, 1);
  EXPECT_EQ(h->compact_rev, 0);
  EXPECT_EQ(read->HashKV(1)->hash, h->hash);
  EXPECT_EQ(read->HashKV(2).status().code(), Code::kFutureRev);
  auto it = read->Changes(1, 0, false);
  ASSERT_TRUE(it.ok());
  EXPECT_FALSE((*it)->Valid());
}

// A commit without changes (e.g. only the consistent index) must not move
// the empty store off revision 1, before or after a reopen.
TEST_F(StoreTest, EmptyStoreStaysAtRevisionOneAcrossMetaCommitsAndReopen) {
  {
    auto w = Write();
    EXPECT_EQ(w->Rev(), 1);
    ASSERT_TRUE(w->SetConsistentIndex(3).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ(store_->CurrentRevision(), 1);
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 0);
  EXPECT_EQ(store_->ConsistentIndex(), 3u);
  EXPECT_EQ(Read()->Rev(), 1);
  EXPECT_EQ(Put("a", "1"), 2);
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), 2);
  EXPECT_EQ(Put("b", "1"), 3);
}

// Older code recorded revision 0 for a store that committed before its first
// write; such a store must open as the empty store, at revision 1.
TEST_F(StoreTest, StoredRevisionZeroOpensAsEmptyStoreAtRevisionOne) {
  store_.reset();
  {
    auto env = LmdbEnv::Open(dir_.path() + "/db", LmdbOptions{});
    ASSERT_TRUE(env.ok());
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin((*env)->get(), nullptr, 0, &txn), 0);
    MDB_dbi meta;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ASSERT_TRUE(Table(txn, meta).Put("mvcc/revision", std::string(16, '\0')).ok());
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 0);
  EXPECT_EQ(Put("a", "1"), 2);
}

TEST_F(StoreTest, PutThenGetReturnsAllFields) {
  EXPECT_EQ(Put("foo", "bar", 7), 2);
  auto r = Read()->Range("foo", "", {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  const auto& kv = r->kvs[0];
  EXPECT_EQ(kv.key(), "foo");
  EXPECT_EQ(kv.value(), "bar");
  EXPECT_EQ(kv.create_revision(), 2);
  EXPECT_EQ(kv.mod_revision(), 2);
  EXPECT_EQ(kv.version(), 1);
  EXPECT_EQ(kv.lease(), 7);
  EXPECT_EQ(r->rev, 2);
  EXPECT_EQ(store_->CurrentRevision(), 2);
}

TEST_F(StoreTest, OverwriteBumpsVersionKeepsCreateRevision) {
  Put("foo", "v1");
  Put("other", "x");
  Put("foo", "v2");
  auto r = Read()->Range("foo", "", {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].value(), "v2");
  EXPECT_EQ(r->kvs[0].create_revision(), 2);
  EXPECT_EQ(r->kvs[0].mod_revision(), 4);
  EXPECT_EQ(r->kvs[0].version(), 2);
}

TEST_F(StoreTest, RecreateAfterDeleteStartsNewGeneration) {
  Put("foo", "v1");             // 2
  Put("foo", "v2");             // 3
  EXPECT_EQ(Delete("foo"), 1);  // 4
  EXPECT_TRUE(Dump("foo", "").empty());
  Put("foo", "v3");  // 5
  auto r = Read()->Range("foo", "", {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].create_revision(), 5);
  EXPECT_EQ(r->kvs[0].version(), 1);
}

TEST_F(StoreTest, DeleteOfNothingConsumesNoRevision) {
  Put("a", "1");
  EXPECT_EQ(Delete("zzz"), 0);
  EXPECT_EQ(store_->CurrentRevision(), 2);
  EXPECT_EQ(Put("b", "2"), 3);
}

TEST_F(StoreTest, EmptyRevisionScopeConsumesNoRevision) {
  Put("a", "1");
  auto w = Write();
  w->BeginRevision();
  auto r = w->Range("a", "", {});
  ASSERT_TRUE(r.ok());
  w->EndRevision();
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(store_->CurrentRevision(), 2);
}

TEST_F(StoreTest, RangeSemanticsSingleKeyHalfOpenAndFromKey) {
  for (auto k : {"a", "b", "c", "d"}) Put(k, k);
  EXPECT_EQ(Dump("b", ""), (Strings{"b=b@3"}));
  EXPECT_EQ(Dump("b", "d"), (Strings{"b=b@3", "c=c@4"}));
  EXPECT_EQ(Dump("b", kAll), (Strings{"b=b@3", "c=c@4", "d=d@5"}));
  EXPECT_EQ(Dump(kAll, kAll).size(), 4u);
  EXPECT_TRUE(Dump("d", "b").empty());  // end <= key: nothing.
  EXPECT_TRUE(Dump("bb", "").empty());
}

TEST_F(StoreTest, KeysWithZeroAndFFBytesAndPrefixes) {
  Strings keys = {"a", "a\0"s, "a\0\0"s, "a\xff"s, "ab", "\xff"s, "\0"s};
  for (const auto& k : keys) Put(k, "v");
  auto r = Read()->Range(""s + "\0"s, kAll, {});
  ASSERT_TRUE(r.ok());
  Strings got;
  for (const auto& kv : r->kvs) got.push_back(kv.key());
  Strings want = keys;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  // [a\0, a\xff) holds a\0, a\0\0 and ab ('b' < 0xff).
  EXPECT_EQ(Dump("a\0"s, "a\xff"s).size(), 3u);
  EXPECT_EQ(Dump("a\0"s, "a\x01"s).size(), 2u);
}

TEST_F(StoreTest, LimitCountKeysOnlyCountOnly) {
  for (auto k : {"a", "b", "c", "d"}) Put(k, "value");
  auto read = Read();
  auto r = read->Range("a", kAll, RangeOptions{.limit = 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 2);
  EXPECT_EQ(r->count, 4);
  r = read->Range("a", kAll, RangeOptions{.keys_only = true});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 4);
  EXPECT_EQ(r->kvs[0].value(), "");
  EXPECT_EQ(r->kvs[0].version(), 1);
  r = read->Range("a", kAll, RangeOptions{.count_only = true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 0);
  EXPECT_EQ(r->count, 4);
}

// RangeResponse.count is the number of keys in the whole range whatever the
// limit (clients page with it). Past the limit the store only counts, so
// check that counting agrees with a full read for every limit, at every
// revision of a history with overwrites, deletes, recreations and keys with
// 0x00 bytes (escaped in the table), and with count_only.
TEST_F(StoreTest, CountPastLimitEqualsFullRangeCount) {
  const Strings keys = {"a", "a\0"s, "a\0\0"s, "ab", "b", "b/1", "b/2", "c"};
  for (const auto& k : keys) Put(k, "v1");
  Put("b/1", "v2");
  Delete("a\0"s);
  Put("d", "v1");
  Delete("b", "b0");  // b, b/1, b/2
  Put("b/2", "v3");
  Put("a\0"s, "again");
  const int64_t last = store_->CurrentRevision();
  auto read = Read();
  const std::vector<std::pair<std::string, std::string>> ranges = {
      {""s + "\0"s, kAll}, {"a", "b"}, {"a\0"s, "a\0\x01"s}, {"b", "c"}, {"ab", kAll}};
  for (int64_t rev = 1; rev <= last; ++rev) {
    for (const auto& [key, end] : ranges) {
      const std::string what = "range [" + key + ", " + end + ") at " + std::to_string(rev);
      auto full = read->Range(key, end, RangeOptions{.rev = rev});
      ASSERT_TRUE(full.ok()) << what;
      ASSERT_EQ(full->count, full->kvs.size()) << what;
      auto counted = read->Range(key, end, RangeOptions{.rev = rev, .count_only = true});
      ASSERT_TRUE(counted.ok()) << what;
      EXPECT_EQ(counted->count, full->count) << what;
      EXPECT_EQ(counted->kvs.size(), 0) << what;
      for (int64_t limit = 1; limit <= full->count + 1; ++limit) {
        auto limited =
            read->Range(key, end, RangeOptions{.rev = rev, .limit = limit, .keys_only = true});
        ASSERT_TRUE(limited.ok()) << what;
        EXPECT_EQ(limited->count, full->count) << what << " limit " << limit;
        ASSERT_EQ(limited->kvs.size(), std::min(limit, full->count)) << what << " limit " << limit;
        for (int i = 0; i < limited->kvs.size(); ++i) {
          EXPECT_EQ(limited->kvs[i].key(), full->kvs[i].key()) << what << " limit " << limit;
        }
      }
    }
  }
}

TEST_F(StoreTest, HistoricalReadsAtEveryRevision) {
  // Scripted history; want[rev] is the full key space after that revision
  // (revision 1 is the empty store's).
  Put("a", "1");     // 2
  Put("b", "1");     // 3
  Put("a", "2");     // 4
  Delete("b");       // 5
  Put("c", "1");     // 6
  Delete("a", "z");  // 7 (a and c)
  Put("a", "3");     // 8
  std::vector<Strings> want = {
      {},
      {},
      {"a=1@2"},
      {"a=1@2", "b=1@3"},
      {"a=2@4", "b=1@3"},
      {"a=2@4"},
      {"a=2@4", "c=1@6"},
      {},
      {"a=3@8"},
  };
  for (int64_t rev = 1; rev <= 8; ++rev) EXPECT_EQ(Dump("a", kAll, rev), want[rev]) << rev;
  EXPECT_EQ(Dump("a", kAll, 0), want[8]);
  // Versions and create revisions at a historical revision.
  auto r = Read()->Range("a", "", RangeOptions{.rev = 4});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].version(), 2);
  EXPECT_EQ(r->kvs[0].create_revision(), 2);
  EXPECT_EQ(r->rev, 8);  // Reported revision is the current one, as in etcd.
}

TEST_F(StoreTest, FutureRevisionFails) {
  Put("a", "1");  // 2
  auto r = Read()->Range("a", "", RangeOptions{.rev = 3});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFutureRev);
}

TEST_F(StoreTest, ManyRevisionsInOneWriteTxnSeeOwnWrites) {
  auto w = Write();
  for (int i = 0; i < 100; ++i) {
    w->BeginRevision();
    ASSERT_TRUE(w->Put("k", std::to_string(i), 0).ok());
    w->EndRevision();
    auto r = w->Range("k", "", {});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->kvs[0].value(), std::to_string(i));
    EXPECT_EQ(r->kvs[0].version(), i + 1);
    EXPECT_EQ(w->Rev(), i + 2);
  }
  // Not visible to readers before commit.
  EXPECT_EQ(Read()->Rev(), 1);
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(store_->CurrentRevision(), 101);
  EXPECT_EQ(Dump("k", "", 51), (Strings{"k=49@51"}));
}

TEST_F(StoreTest, WriteTxnReadsItsInProgressRevisionExplicitly) {
  Put("a", "1");  // 2
  auto w = Write();
  w->BeginRevision();
  EXPECT_EQ(w->Range("a", "", RangeOptions{.rev = 3}).status().code(), Code::kFutureRev);
  ASSERT_TRUE(w->Put("a", "2", 0).ok());
  auto r = w->Range("a", "", RangeOptions{.rev = 3});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].value(), "2");
  EXPECT_EQ(r->rev, 3);
  r = w->Range("a", "", RangeOptions{.rev = 2});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].value(), "1");
  w->EndRevision();
}

TEST_F(StoreTest, OneRevisionWithSubRevisions) {
  auto w = Write();
  w->BeginRevision();
  ASSERT_EQ(w->Put("a", "1", 0)->revision, 2);
  ASSERT_EQ(w->Put("b", "1", 0)->revision, 2);
  ASSERT_EQ(*w->DeleteRange("a", ""), 1);
  ASSERT_EQ(w->Put("a", "2", 0)->revision, 2);
  w->EndRevision();
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(store_->CurrentRevision(), 2);
  auto r = Read()->Range("a", "", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs[0].value(), "2");
  EXPECT_EQ(r->kvs[0].version(), 1);  // A new generation after the delete.
  EXPECT_EQ(Dump("a", kAll), (Strings{"a=2@2", "b=1@2"}));
}

TEST_F(StoreTest, DeleteRangeReportsPreviousState) {
  Put("a", "1", 5);
  Put("b", "2");
  std::vector<std::string> seen;
  auto w = Write();
  w->BeginRevision();
  auto n = w->DeleteRange("a", kAll, PrevValues::kRead, [&](const KeyValueView& kv) {
    seen.push_back(std::string(kv.key) + "=" + std::string(kv.value) + "/" +
                   std::to_string(kv.lease) + "@" + std::to_string(kv.mod_revision));
  });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  w->EndRevision();
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(seen, (Strings{"a=1/5@2", "b=2/0@3"}));
}

// A delete of more keys than DeleteRange collects at once (1,024) takes
// each key of the range exactly once, in key order, under one revision:
// around the chunk's end; with a key and its successor (`k` and `k\0`) on
// either side of it; with the range's end just past a chunk's last key;
// to the end of the key space; and through a bucket of long keys that
// share their first 479 encoded bytes, resumed in the middle.
TEST(KvStoreDeleteTest, DeleteRangeOfManyKeysTakesEachOnce) {
  const std::string long_prefix = "l" + std::string(600, 'p');
  struct Case {
    const char* name;
    std::vector<std::string> keys;  // every key put, sorted
    std::string from, end;          // the delete's range
  };
  auto numbered = [](const std::string& prefix, int n, bool successors) {
    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) {
      char digits[16];
      std::snprintf(digits, sizeof(digits), "%05d", i);
      keys.push_back(prefix + digits);
      if (successors) keys.push_back(prefix + digits + std::string("\0", 1));
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  std::vector<Case> cases;
  for (int n : {1023, 1024, 1025, 2048, 2500}) {
    cases.push_back({"numbered", numbered("n/", n, false), "n/", "n0"});
  }
  {
    // With "s/" first, the 1,024th key is one without its successor "k\0",
    // which the next chunk must take.
    auto keys = numbered("s/", 700, true);
    keys.insert(keys.begin(), "s/");
    cases.push_back({"successors", keys, "s/", "s0"});
  }
  {
    auto keys = numbered("e/", 1500, false);
    // Ends just after the 1,024th key: the resume point equals the end.
    cases.push_back({"end after a chunk", keys, "e/", keys[1023] + std::string("\0", 1)});
  }
  cases.push_back({"to the end", numbered("t/", 1100, false), "t/", kAll});
  cases.push_back({"long bucket", numbered(long_prefix, 1300, false), long_prefix, kAll});

  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(c.keys.size()) + " keys");
    testing::TempDir dir;
    auto store = KvStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // Neighbours outside the range stay.
    const std::string before = c.from.substr(0, c.from.size() - 1);
    {
      auto w = (*store)->Write().value();
      for (const std::string& k : c.keys) {
        w->BeginRevision();
        ASSERT_TRUE(w->Put(k, "v", 0).ok());
        w->EndRevision();
      }
      for (const std::string& k : {before, c.end}) {
        if (k == kAll) continue;
        w->BeginRevision();
        ASSERT_TRUE(w->Put(k, "stays", 0).ok());
        w->EndRevision();
      }
      ASSERT_TRUE(w->Commit().ok());
    }
    std::vector<std::string> in_range;
    for (const std::string& k : c.keys) {
      if (k >= c.from && (c.end == kAll || k < c.end)) in_range.push_back(k);
    }

    std::vector<std::string> seen;
    auto w = (*store)->Write().value();
    w->BeginRevision();
    auto n = w->DeleteRange(c.from, c.end, PrevValues::kSkip,
                            [&](const KeyValueView& kv) { seen.emplace_back(kv.key); });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    w->EndRevision();
    const int64_t rev = w->Rev();
    ASSERT_TRUE(w->Commit().ok());
    EXPECT_EQ(*n, static_cast<int64_t>(in_range.size()));
    EXPECT_EQ(seen, in_range);

    auto read = (*store)->Read().value();
    auto left = read->Range("", kAll, RangeOptions{.keys_only = true});
    ASSERT_TRUE(left.ok());
    std::vector<std::string> left_keys;
    for (const auto& kv : left->kvs) left_keys.push_back(kv.key());
    std::vector<std::string> expected = {before};
    for (const std::string& k : c.keys) {
      if (!(k >= c.from && (c.end == kAll || k < c.end))) expected.push_back(k);
    }
    if (c.end != kAll) expected.push_back(c.end);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(left_keys, expected);

    // One DELETE event per key, all at the delete's revision.
    auto changes = read->Changes(rev, rev, false);
    ASSERT_TRUE(changes.ok());
    size_t events = 0;
    for (; (*changes)->Valid(); (*changes)->Next()) {
      EXPECT_EQ((*changes)->event().type(), mvccpb::Event::DELETE);
      ++events;
    }
    EXPECT_TRUE((*changes)->status().ok()) << (*changes)->status().ToString();
    EXPECT_EQ(events, in_range.size());
  }
}

TEST_F(StoreTest, AbortedWriteLeavesNoTrace) {
  Put("a", "1");
  {
    auto w = Write();
    w->BeginRevision();
    ASSERT_TRUE(w->Put("a", "2", 0).ok());
    w->EndRevision();
  }  // Destroyed without Commit.
  EXPECT_EQ(Dump("a", ""), (Strings{"a=1@2"}));
  EXPECT_EQ(store_->CurrentRevision(), 2);
  EXPECT_EQ(Put("b", "x"), 3);
}

TEST_F(StoreTest, OnlyOneWriteTxnAtATime) {
  auto w = Write();
  auto second = store_->Write();
  EXPECT_FALSE(second.ok());
}

TEST_F(StoreTest, StatePersistsAcrossReopen) {
  Put("a", "1");  // 2
  Put("b", "2");  // 3
  {
    auto w = Write();
    ASSERT_TRUE(w->SetConsistentIndex(42).ok());
    ASSERT_TRUE(w->PutMeta("lease/x", "y").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  ASSERT_TRUE(Compact(2).ok());
  ASSERT_TRUE(store_->Sync().ok());
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), 3);
  EXPECT_EQ(store_->CompactRevision(), 2);
  EXPECT_EQ(store_->ConsistentIndex(), 42u);
  auto read = Read();
  EXPECT_EQ(read->ConsistentIndex(), 42u);
  auto meta = read->GetMeta("lease/x");
  ASSERT_TRUE(meta.ok() && meta->has_value());
  EXPECT_EQ(**meta, "y");
  EXPECT_EQ(Dump("a", kAll), (Strings{"a=1@2", "b=2@3"}));
  EXPECT_EQ(Put("c", "3"), 4);
}

TEST_F(StoreTest, ReservedMetaNamesAreRejected) {
  auto w = Write();
  EXPECT_FALSE(w->PutMeta("mvcc/revision", "x").ok());
}

TEST_F(StoreTest, ExtraTablesShareTheWriteTxnAndSurviveReopen) {
  {
    auto w = Write();
    auto t = w->OpenTable("lease");
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(t->Put("id1", "ttl").ok());
    w->BeginRevision();
    ASSERT_TRUE(w->Put("k", "v", 0).ok());
    w->EndRevision();
    // Not visible to readers before commit.
    EXPECT_FALSE(Read()->OpenTable("lease").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto check = [&] {
    auto read = Read();
    auto t = read->OpenTable("lease");
    ASSERT_TRUE(t.ok());
    auto v = t->Get("id1");
    ASSERT_TRUE(v.ok() && v->has_value());
    EXPECT_EQ(**v, "ttl");
    EXPECT_EQ(t->Get("nope")->has_value(), false);
  };
  check();
  Reopen();
  check();
  auto w = Write();
  EXPECT_FALSE(w->OpenTable("key").ok());
}

TEST_F(StoreTest, ReaderKeepsItsSnapshotWhileWriterCommits) {
  Put("k", "0");  // 2
  auto snapshot = Read();
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  // The snapshot moves to another thread (MDB_NOTLS) and must keep seeing
  // revision 2 while the writer commits revisions 3..201.
  std::thread reader([&, txn = snapshot.get()] {
    while (!stop.load() || reads.load() == 0) {
      auto r = txn->Range("k", "", {});
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->kvs.size(), 1);
      EXPECT_EQ(r->kvs[0].value(), "0");
      EXPECT_EQ(r->rev, 2);
      ++reads;
    }
  });
  for (int i = 1; i < 200; ++i) Put("k", std::to_string(i));
  stop = true;
  reader.join();
  EXPECT_EQ(snapshot->Rev(), 2);
  EXPECT_EQ(Read()->Rev(), 201);
  EXPECT_EQ(Dump("k", ""), (Strings{"k=199@201"}));
}

TEST_F(StoreTest, ChangesYieldEventsWithPrevKv) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  Delete("a");    // 4
  Put("b", "1");  // 5
  auto read = Read();
  auto it = read->Changes(3, 0, /*with_prev_kv=*/true);
  ASSERT_TRUE(it.ok());
  Strings got;
  for (; (*it)->Valid(); (*it)->Next()) {
    const auto& e = (*it)->event();
    got.push_back(std::string(e.type() == mvccpb::Event::PUT ? "PUT " : "DEL ") + e.kv().key() +
                  "=" + e.kv().value() + "@" + std::to_string(e.kv().mod_revision()) + " prev=" +
                  e.prev_kv().value() + "@" + std::to_string(e.prev_kv().mod_revision()));
  }
  ASSERT_TRUE((*it)->status().ok());
  EXPECT_EQ(got, (Strings{"PUT a=2@3 prev=1@2", "DEL a=@4 prev=2@3", "PUT b=1@5 prev=@0"}));

  auto only_b = read->Changes(1, 0, false, KeyRange{"b", ""});
  ASSERT_TRUE(only_b.ok());
  ASSERT_TRUE((*only_b)->Valid());
  EXPECT_EQ((*only_b)->event().kv().key(), "b");
  EXPECT_EQ((*only_b)->revision(), (Revision{5, 0}));
  (*only_b)->Next();
  EXPECT_FALSE((*only_b)->Valid());
  auto from_a = read->Changes(1, 0, false, KeyRange{"a", kAll});
  ASSERT_TRUE(from_a.ok());
  int events = 0;
  for (; (*from_a)->Valid(); (*from_a)->Next()) ++events;
  EXPECT_EQ(events, 4);
  EXPECT_TRUE((KeyRange{"a", "b"}).Contains("a\xff"));
  EXPECT_FALSE((KeyRange{"a", "b"}).Contains("b"));

  auto bounded = read->Changes(1, 3, false);
  ASSERT_TRUE(bounded.ok());
  int n = 0;
  for (; (*bounded)->Valid(); (*bounded)->Next()) ++n;
  EXPECT_EQ(n, 2);
}

TEST_F(StoreTest, HashKVIsDeterministicAndRevisionBounded) {
  Put("a", "1");  // 2
  Put("b", "2");  // 3
  auto h1 = Read()->HashKV(2);
  auto h2 = Read()->HashKV(3);
  ASSERT_TRUE(h1.ok() && h2.ok());
  EXPECT_NE(h1->hash, h2->hash);
  EXPECT_NE(Read()->HashKV(1)->hash, h1->hash);  // The empty store's.
  Put("c", "3");
  auto h1again = Read()->HashKV(2);
  ASSERT_TRUE(h1again.ok());
  EXPECT_EQ(h1->hash, h1again->hash);
  EXPECT_EQ(Read()->HashKV(9).status().code(), Code::kFutureRev);

  // A second store with the same history hashes the same.
  testing::TempDir other_dir;
  auto other = KvStore::Open(other_dir.path());
  ASSERT_TRUE(other.ok());
  for (auto [k, v] : {std::pair{"a", "1"}, {"b", "2"}, {"c", "3"}}) {
    auto w = (*other)->Write().value();
    w->BeginRevision();
    ASSERT_TRUE(w->Put(k, v, 0).ok());
    w->EndRevision();
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ((*(*other)->Read())->HashKV(0)->hash, Read()->HashKV(0)->hash);
}

TEST_F(StoreTest, KeysBeyondLmdbKeyLimitAreStoredAndRangeBoundsOfAnyLength) {
  // etcd has no key length limit below the request size; LMDB's 511-byte key
  // limit must not show.
  // A slot holds a key without zero bytes and its 2-byte end.
  const std::string inline_longest(kMaxInlineSlotBytes - 2, 'k');
  ASSERT_TRUE(IsInlineKey(inline_longest));
  ASSERT_FALSE(IsInlineKey(inline_longest + "k"));
  ASSERT_TRUE(IsInlineKey(inline_longest + '\0'));  // a trailing zero run ends the key
  ASSERT_FALSE(IsInlineKey(inline_longest + "k\0"));
  Put(inline_longest, "v");
  const int64_t long_rev = Put(inline_longest + "k", "w");
  Put("short", "v");
  EXPECT_EQ(Dump(inline_longest + "k", ""),
            (Strings{inline_longest + "k=w@" + std::to_string(long_rev)}));
  EXPECT_EQ(Dump(inline_longest, kAll).size(), 3u);
  // Range bounds longer than LMDB's key limit.
  EXPECT_EQ(Dump(inline_longest + std::string(600, 'a'), kAll),
            (Strings{inline_longest + "k=w@3", "short=v@4"}));
  EXPECT_EQ(Dump(std::string(600, 'a'), inline_longest + "z").size(), 2u);
}

TEST_F(StoreTest, CopyOpensAsAStoreWithTheSameState) {
  Put("a", "1");
  Put("b", "2");
  {
    auto w = Write();
    ASSERT_TRUE(w->SetConsistentIndex(9).ok());
    ASSERT_TRUE(w->OpenTable("lease")->Put("x", "y").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  testing::TempDir copy_dir;
  ASSERT_TRUE(store_->CopyToFile(copy_dir.path() + "/data.mdb").ok());
  auto copy = KvStore::Open(copy_dir.path());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ((*copy)->CurrentRevision(), 3);
  EXPECT_EQ((*copy)->ConsistentIndex(), 9u);
  auto read = (*copy)->Read().value();
  auto r = read->Range("a", kAll, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 2);
  EXPECT_EQ(**read->OpenTable("lease")->Get("x"), "y");
  EXPECT_EQ(read->HashKV(0)->hash, Read()->HashKV(0)->hash);
}

TEST_F(StoreTest, DbSizeIsReported) {
  Put("a", std::string(10000, 'x'));
  EXPECT_GT(store_->DbSizeBytes(), 0u);
  EXPECT_GT(store_->DbSizeInUseBytes(), 10000u);
}

TEST(KvStoreQuotaTest, WritesBeyondQuotaFailWithNoSpace) {
  testing::TempDir dir;
  auto store =
      KvStore::Open(dir.path(), Options{.quota_bytes = 1 << 20, .apply_headroom_bytes = 0});
  ASSERT_TRUE(store.ok());
  auto w = (*store)->Write().value();
  w->BeginRevision();
  Status last;
  for (int i = 0; i < 100 && last.ok(); ++i) {
    auto r = w->Put(fmt::format("k{}", i), std::string(100000, 'x'), 0);
    if (!r.ok()) last = r.status();
  }
  EXPECT_EQ(last.code(), Code::kNoSpace);
}

// Puts long keys "/perf/<n><600 zero bytes>" with one-byte values while the
// store is below `bytes`, as the server does below its quota; returns how
// many. Their tombstones carry the whole key and are as large as the
// records they end: the most a delete can add.
int FillWithLongKeys(KvStore& store, uint64_t bytes) {
  int keys = 0;
  while (store.DbSizeBytes() < bytes) {
    auto w = store.Write().value();
    for (int i = 0; i < 16; ++i, ++keys) {
      w->BeginRevision();
      std::string key = "/perf/" + std::to_string(keys) + std::string(600, '\0');
      EXPECT_TRUE(w->Put(key, "v", 0).ok());
      w->EndRevision();
    }
    EXPECT_TRUE(w->Commit().ok());
  }
  return keys;
}

// Deletes every key put by FillWithLongKeys in one transaction.
void ExpectDeleteOfAll(KvStore& store, int keys) {
  auto w = store.Write().value();
  w->BeginRevision();
  auto deleted = w->DeleteRange("/perf/", "/perf0");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, keys);
  w->EndRevision();
  ASSERT_TRUE(w->Commit().ok());
}

// The server accepts deletes at any size (etcd does: they free space) and
// each one writes tombstones. A store filled to its quota must still apply
// a delete of everything in one transaction and stay usable; a failure
// here stops a member at every restart, since the entry is applied again.
TEST(KvStoreQuotaTest, DeleteOfEveryKeyAppliesAtTheQuota) {
  testing::TempDir dir;
  const uint64_t quota = 4 << 20;
  auto store = KvStore::Open(dir.path(), Options{.quota_bytes = quota, .apply_headroom_bytes = 0});
  ASSERT_TRUE(store.ok());
  const int keys = FillWithLongKeys(**store, quota);
  ASSERT_GT(keys, 100);
  ExpectDeleteOfAll(**store, keys);
  auto r = (*store)->Read().value()->Range("/perf/", "/perf0", RangeOptions{.count_only = true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 0);
  // The delete needed more than twice the quota (2.4x when this was
  // written): the map has room for it.
  EXPECT_GT((*store)->DbSizeBytes(), 2 * quota);
}

// The same delete on a store opened with a quota below what it holds (an
// operator lowered --quota-backend-bytes across a restart).
TEST(KvStoreQuotaTest, DeleteOfEveryKeyAppliesAfterTheQuotaWasLowered) {
  testing::TempDir dir;
  int keys = 0;
  {
    auto store = KvStore::Open(dir.path(), Options{.quota_bytes = 64 << 20});
    ASSERT_TRUE(store.ok());
    keys = FillWithLongKeys(**store, 4 << 20);
  }
  auto store =
      KvStore::Open(dir.path(), Options{.quota_bytes = 1 << 20, .apply_headroom_bytes = 0});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ExpectDeleteOfAll(**store, keys);
}

// A write beyond the map breaks its transaction (the caller must not go on
// with it, nor answer its requests); once recorded, the next Open maps
// twice as much and the same write commits there.
TEST(KvStoreQuotaTest, FullMapIsRecordedAndTheNextOpenMapsTwiceAsMuch) {
  testing::TempDir dir;
  const uint64_t map = 4 << 20;
  int keys = 0;
  {
    auto store = KvStore::Open(dir.path(), Options{.map_bytes = map});
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->MapBytes(), map);
    // Filled to three quarters: the tombstones of every key, and the copies
    // of the `key` pages they land on, need more than the rest.
    keys = FillWithLongKeys(**store, map / 4 * 3);
    auto w = (*store)->Write().value();
    EXPECT_FALSE(w->Broken());
    w->BeginRevision();
    auto missing = w->Range("a", "", RangeOptions{.rev = w->Rev() + 5});
    EXPECT_EQ(missing.status().code(), Code::kFutureRev);
    EXPECT_FALSE(w->Broken()) << "a request error leaves the transaction usable";
    auto deleted = w->DeleteRange("/perf/", "/perf0");
    ASSERT_EQ(deleted.status().code(), Code::kNoSpace) << deleted.status().ToString();
    EXPECT_TRUE(w->Broken());
    w.reset();
    ASSERT_TRUE((*store)->RecordMapFull().ok());
    EXPECT_EQ((*store)->MapBytes(), map) << "the map grows at the next Open only";
  }
  auto store = KvStore::Open(dir.path(), Options{.map_bytes = map});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->MapBytes(), 2 * map);
  ExpectDeleteOfAll(**store, keys);
}

// A defragmentation or a snapshot install opens the new store in another
// directory and then swaps the directories: the record of a full map must
// land beside the data file where it is now, or the restart maps too
// little again.
TEST(KvStoreMapFullTest, RecordGoesWhereTheStoreWasMovedTo) {
  testing::TempDir dir;
  const std::string opened_at = dir.path() + "/incoming", moved_to = dir.path() + "/live";
  const uint64_t map = uint64_t{8} << 20;
  {
    auto store = KvStore::Open(opened_at, Options{.map_bytes = map});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::filesystem::rename(opened_at, moved_to);
    ASSERT_TRUE((*store)->RecordMapFull().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(opened_at));
  auto store = KvStore::Open(moved_to, Options{.map_bytes = map});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->MapBytes(), 2 * map);
}

}  // namespace
}  // namespace etcdpp::mvcc
