// Compaction keeps, per key, the latest revision <= the compact revision
// unless it is a tombstone, and drops every older revision: checked against
// the raw `key` and `rev` tables.
#include <gtest/gtest.h>

#include "mvcc/key_codec.h"
#include "mvcc/key_record.h"
#include "mvcc/kv_store.h"
#include "unit/mvcc/store_test_util.h"

namespace etcdpp::mvcc {
namespace {

using Strings = std::vector<std::string>;

class CompactionTest : public StoreTest {
 protected:
  // The raw tables as "key@main.sub[ T]" (key table order) and
  // "main.sub key[ T]" (rev table order). Closes and reopens the store, since
  // one process may open an LMDB environment only once.
  void DumpTables(Strings* key_table, Strings* rev_table) {
    store_.reset();
    {
      auto env = LmdbEnv::Open(dir_.path() + "/db", LmdbOptions{});
      ASSERT_TRUE(env.ok());
      MDB_txn* txn;
      ASSERT_EQ(mdb_txn_begin((*env)->get(), nullptr, MDB_RDONLY, &txn), 0);
      MDB_dbi key_dbi, rev_dbi;
      ASSERT_EQ(mdb_dbi_open(txn, "key", 0, &key_dbi), 0);
      ASSERT_EQ(mdb_dbi_open(txn, "rev", 0, &rev_dbi), 0);
      {
        Cursor c(txn, key_dbi);
        for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
          std::string_view enc;
          Revision rev;
          ASSERT_TRUE(SplitKeyTableKey(c.key(), &enc, &rev));
          std::string user_key;
          ASSERT_TRUE(DecodeUserKey(enc, &user_key));
          bool tomb = (static_cast<uint8_t>(c.value()[0]) & kTombstoneFlag) != 0;
          key_table->push_back(user_key + "@" + std::to_string(rev.main) + "." +
                               std::to_string(rev.sub) + (tomb ? " T" : ""));
        }
      }
      {
        Cursor c(txn, rev_dbi);
        for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
          Revision rev = DecodeRevision(c.key().data());
          bool tomb = (static_cast<uint8_t>(c.value()[0]) & kTombstoneFlag) != 0;
          rev_table->push_back(std::to_string(rev.main) + "." + std::to_string(rev.sub) + " " +
                               std::string(c.value().substr(1)) + (tomb ? " T" : ""));
        }
      }
      mdb_txn_abort(txn);
    }
    Reopen();
  }

  // History used by most tests:
  //   a: put@1 put@2 put@3
  //   b: put@4 del@5
  //   c: put@6 del@7 put@8
  void WriteHistory() {
    Put("a", "1");
    Put("a", "2");
    Put("a", "3");
    Put("b", "1");
    Delete("b");
    Put("c", "1");
    Delete("c");
    Put("c", "2");
  }
};

TEST_F(CompactionTest, KeepsLatestRevisionAtOrBelowCompactRevision) {
  WriteHistory();
  ASSERT_TRUE(Compact(2).ok());
  Strings keys, revs;
  DumpTables(&keys, &revs);
  EXPECT_EQ(keys, (Strings{"a@3.0", "a@2.0", "b@5.0 T", "b@4.0", "c@8.0", "c@7.0 T", "c@6.0"}));
  EXPECT_EQ(revs, (Strings{"2.0 a", "3.0 a", "4.0 b", "5.0 b T", "6.0 c", "7.0 c T", "8.0 c"}));
}

TEST_F(CompactionTest, DropsTombstoneAtCompactRevisionAndEverythingBelow) {
  WriteHistory();
  ASSERT_TRUE(Compact(7).ok());
  Strings keys, revs;
  DumpTables(&keys, &revs);
  // a keeps its latest (3); b's generation ended at 5 <= 7: gone; c's
  // tombstone at 7 goes with its generation, the new generation stays.
  EXPECT_EQ(keys, (Strings{"a@3.0", "c@8.0"}));
  EXPECT_EQ(revs, (Strings{"3.0 a", "8.0 c"}));
}

TEST_F(CompactionTest, IncrementalCompactionsMatchOneBigCompaction) {
  WriteHistory();
  for (int64_t rev = 1; rev <= 8; ++rev) ASSERT_TRUE(Compact(rev).ok()) << rev;
  Strings keys, revs;
  DumpTables(&keys, &revs);
  EXPECT_EQ(keys, (Strings{"a@3.0", "c@8.0"}));
  EXPECT_EQ(revs, (Strings{"3.0 a", "8.0 c"}));
}

TEST_F(CompactionTest, ReadsBelowCompactRevisionFail) {
  WriteHistory();
  ASSERT_TRUE(Compact(5).ok());
  auto read = Read();
  EXPECT_EQ(read->CompactRev(), 5);
  EXPECT_EQ(read->Range("a", "", RangeOptions{.rev = 4}).status().code(), Code::kCompacted);
  // At the compact revision itself reads still work and see the kept state.
  EXPECT_EQ(Dump("a", kAll, 5), (Strings{"a=3@3"}));
  EXPECT_EQ(Dump("a", kAll, 6), (Strings{"a=3@3", "c=1@6"}));
  EXPECT_EQ(Dump("a", kAll, 8), (Strings{"a=3@3", "c=2@8"}));
  EXPECT_EQ(read->Changes(4, 0, false).status().code(), Code::kCompacted);
  EXPECT_TRUE(read->Changes(5, 0, false).ok());
}

TEST_F(CompactionTest, RejectsOldAndFutureRevisions) {
  WriteHistory();
  ASSERT_TRUE(Compact(3).ok());
  EXPECT_EQ(Compact(3).code(), Code::kCompacted);
  EXPECT_EQ(Compact(2).code(), Code::kCompacted);
  EXPECT_EQ(Compact(9).code(), Code::kFutureRev);
  EXPECT_TRUE(Compact(8).ok());
}

TEST_F(CompactionTest, CompactionPersistsAndReadersKeepTheirSnapshot) {
  WriteHistory();
  auto before = Read();
  ASSERT_TRUE(Compact(8).ok());
  // The old snapshot still sees full history.
  auto r = before->Range("a", "", RangeOptions{.rev = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs[0].value(), "1");
  before.reset();
  Reopen();
  EXPECT_EQ(store_->CompactRevision(), 8);
  EXPECT_EQ(Read()->Range("a", "", RangeOptions{.rev = 7}).status().code(), Code::kCompacted);
}

TEST_F(CompactionTest, SplitCompactionAcrossTransactionsAndRestart) {
  for (int i = 0; i < 20; ++i) Put("k" + std::to_string(i % 5), std::to_string(i));
  {
    auto w = Write();
    ASSERT_TRUE(w->ScheduleCompact(15).ok());
    auto done = w->CompactSome(2);
    ASSERT_TRUE(done.ok());
    EXPECT_FALSE(*done);
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ(store_->CompactRevision(), 15);
  Reopen();  // Finishes the scheduled compaction.
  Strings keys, revs;
  DumpTables(&keys, &revs);
  // Each k_j was written at revisions j+1, j+6, j+11, j+16: the latest <= 15
  // (j+11) survives together with j+16.
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_EQ(revs.front(), "11.0 k0");
}

TEST_F(CompactionTest, ChangesAfterCompactionLackCompactedPrevKv) {
  WriteHistory();
  ASSERT_TRUE(Compact(6).ok());
  auto read = Read();
  auto it = read->Changes(6, 0, /*with_prev_kv=*/true);
  ASSERT_TRUE(it.ok());
  Strings got;
  for (; (*it)->Valid(); (*it)->Next()) {
    const auto& e = (*it)->event();
    got.push_back(std::to_string(e.kv().mod_revision()) + " " + e.kv().key() + " prev@" +
                  std::to_string(e.prev_kv().mod_revision()));
  }
  ASSERT_TRUE((*it)->status().ok());
  // c@6 survives (latest <= 6) and is 7's prev; 6's own prev was removed.
  EXPECT_EQ(got, (Strings{"6 c prev@0", "7 c prev@6", "8 c prev@0"}));
}

// The worked example of docs/mvcc.md.
TEST_F(CompactionTest, WorkedExampleFromDocs) {
  Put("x", "1");    // 1
  Put("foo", "a");  // 2
  Put("foo", "b");  // 3
  Put("x", "2");    // 4
  Delete("foo");    // 5
  Put("foo", "c");  // 6
  Put("x", "3");    // 7
  Put("foo", "d");  // 8
  EXPECT_EQ(Dump("foo", "", 4), (Strings{"foo=b@3"}));
  EXPECT_TRUE(Dump("foo", "", 5).empty());
  EXPECT_EQ(Dump("foo", "", 7), (Strings{"foo=c@6"}));
  auto foo_records = [&] {
    Strings keys, revs, out;
    DumpTables(&keys, &revs);
    for (const auto& k : keys) {
      if (k.rfind("foo@", 0) == 0) out.push_back(k);
    }
    return out;
  };
  ASSERT_TRUE(Compact(4).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@8.0", "foo@6.0", "foo@5.0 T", "foo@3.0"}));
  ASSERT_TRUE(Compact(5).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@8.0", "foo@6.0"}));
  ASSERT_TRUE(Compact(7).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@8.0", "foo@6.0"}));
  ASSERT_TRUE(Compact(8).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@8.0"}));
  EXPECT_EQ(Dump("foo", "", 8), (Strings{"foo=d@8"}));
  EXPECT_EQ(Read()->Range("foo", "", RangeOptions{.rev = 7}).status().code(), Code::kCompacted);
}

TEST_F(CompactionTest, HashKVAgreesAfterSameCompaction) {
  WriteHistory();
  ASSERT_TRUE(Compact(4).ok());
  auto h = Read()->HashKV(0);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->compact_rev, 4);
  EXPECT_EQ(Read()->HashKV(3).status().code(), Code::kCompacted);
}

}  // namespace
}  // namespace etcdpp::mvcc
