// Compaction keeps, per key, the latest revision <= the compact revision
// unless it is a tombstone, and drops every older revision: checked against
// the raw `key` and `rev` tables.
#include <fmt/format.h>
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
          KeyRecordHeader header;
          std::string_view user_key, value;
          ASSERT_TRUE(DecodeRevRecord(c.value(), &header, &user_key, &value));
          rev_table->push_back(std::to_string(rev.main) + "." + std::to_string(rev.sub) + " " +
                               std::string(user_key) + (header.tombstone() ? " T" : ""));
        }
      }
      mdb_txn_abort(txn);
    }
    Reopen();
  }

  // History used by most tests (the empty store is revision 1, so the first
  // write is revision 2, as in etcd):
  //   a: put@2 put@3 put@4
  //   b: put@5 del@6
  //   c: put@7 del@8 put@9
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
  ASSERT_TRUE(Compact(3).ok());
  Strings keys, revs;
  DumpTables(&keys, &revs);
  EXPECT_EQ(keys, (Strings{"a@4.0", "a@3.0", "b@6.0 T", "b@5.0", "c@9.0", "c@8.0 T", "c@7.0"}));
  EXPECT_EQ(revs, (Strings{"3.0 a", "4.0 a", "5.0 b", "6.0 b T", "7.0 c", "8.0 c T", "9.0 c"}));
}

TEST_F(CompactionTest, DropsTombstoneAtCompactRevisionAndEverythingBelow) {
  WriteHistory();
  ASSERT_TRUE(Compact(8).ok());
  Strings keys, revs;
  DumpTables(&keys, &revs);
  // a keeps its latest (4); b's generation ended at 6 <= 8: gone; c's
  // tombstone at 8 goes with its generation, the new generation stays.
  EXPECT_EQ(keys, (Strings{"a@4.0", "c@9.0"}));
  EXPECT_EQ(revs, (Strings{"4.0 a", "9.0 c"}));
}

TEST_F(CompactionTest, IncrementalCompactionsMatchOneBigCompaction) {
  WriteHistory();
  // Starting at 1, the empty store's revision, which etcd also compacts.
  for (int64_t rev = 1; rev <= 9; ++rev) ASSERT_TRUE(Compact(rev).ok()) << rev;
  Strings keys, revs;
  DumpTables(&keys, &revs);
  EXPECT_EQ(keys, (Strings{"a@4.0", "c@9.0"}));
  EXPECT_EQ(revs, (Strings{"4.0 a", "9.0 c"}));
}

TEST_F(CompactionTest, ReadsBelowCompactRevisionFail) {
  WriteHistory();
  ASSERT_TRUE(Compact(6).ok());
  auto read = Read();
  EXPECT_EQ(read->CompactRev(), 6);
  EXPECT_EQ(read->Range("a", "", RangeOptions{.rev = 5}).status().code(), Code::kCompacted);
  EXPECT_EQ(read->Range("a", "", RangeOptions{.rev = 1}).status().code(), Code::kCompacted);
  // At the compact revision itself reads still work and see the kept state.
  EXPECT_EQ(Dump("a", kAll, 6), (Strings{"a=3@4"}));
  EXPECT_EQ(Dump("a", kAll, 7), (Strings{"a=3@4", "c=1@7"}));
  EXPECT_EQ(Dump("a", kAll, 9), (Strings{"a=3@4", "c=2@9"}));
  EXPECT_EQ(Dump("a", kAll, 0), (Strings{"a=3@4", "c=2@9"}));  // 0: current.
  EXPECT_EQ(read->Changes(5, 0, false).status().code(), Code::kCompacted);
  EXPECT_TRUE(read->Changes(6, 0, false).ok());
}

TEST_F(CompactionTest, RejectsOldAndFutureRevisions) {
  WriteHistory();
  ASSERT_TRUE(Compact(4).ok());
  EXPECT_EQ(Compact(4).code(), Code::kCompacted);
  EXPECT_EQ(Compact(3).code(), Code::kCompacted);
  EXPECT_EQ(Compact(10).code(), Code::kFutureRev);
  EXPECT_TRUE(Compact(9).ok());
}

// etcd's fresh store is at revision 1 and may be compacted there; anything
// later is in the future, and after it revision 1 is the compact revision.
TEST_F(CompactionTest, EmptyStoreCompactsAtRevisionOne) {
  EXPECT_EQ(Compact(2).code(), Code::kFutureRev);
  ASSERT_TRUE(Compact(1).ok());
  EXPECT_EQ(store_->CompactRevision(), 1);
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(Compact(1).code(), Code::kCompacted);
  EXPECT_TRUE(Dump("a", kAll, 1).empty());  // Reading at the compact revision works.
  Reopen();
  EXPECT_EQ(store_->CompactRevision(), 1);
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(Put("a", "1"), 2);
  ASSERT_TRUE(Compact(2).ok());
  EXPECT_EQ(Dump("a", kAll, 2), (Strings{"a=1@2"}));
  EXPECT_EQ(Read()->Range("a", "", RangeOptions{.rev = 1}).status().code(), Code::kCompacted);
}

TEST_F(CompactionTest, CompactionPersistsAndReadersKeepTheirSnapshot) {
  WriteHistory();
  auto before = Read();
  ASSERT_TRUE(Compact(9).ok());
  // The old snapshot still sees full history.
  auto r = before->Range("a", "", RangeOptions{.rev = 2});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1);
  EXPECT_EQ(r->kvs[0].value(), "1");
  before.reset();
  Reopen();
  EXPECT_EQ(store_->CompactRevision(), 9);
  EXPECT_EQ(Read()->Range("a", "", RangeOptions{.rev = 8}).status().code(), Code::kCompacted);
}

TEST_F(CompactionTest, SplitCompactionAcrossTransactionsAndRestart) {
  for (int i = 0; i < 20; ++i) Put(fmt::format("k{}", i % 5), std::to_string(i));
  {
    auto w = Write();
    ASSERT_TRUE(w->ScheduleCompact(16).ok());
    auto done = w->CompactSome(2);
    ASSERT_TRUE(done.ok());
    EXPECT_FALSE(*done);
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ(store_->CompactRevision(), 16);
  Reopen();  // Finishes the scheduled compaction.
  Strings keys, revs;
  DumpTables(&keys, &revs);
  // Each k_j was written at revisions j+2, j+7, j+12, j+17: the latest <= 16
  // (j+12) survives together with j+17.
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_EQ(revs.front(), "12.0 k0");
}

TEST_F(CompactionTest, ChangesAfterCompactionLackCompactedPrevKv) {
  WriteHistory();
  ASSERT_TRUE(Compact(7).ok());
  auto read = Read();
  auto it = read->Changes(7, 0, /*with_prev_kv=*/true);
  ASSERT_TRUE(it.ok());
  Strings got;
  for (; (*it)->Valid(); (*it)->Next()) {
    const auto& e = (*it)->event();
    got.push_back(std::to_string(e.kv().mod_revision()) + " " + e.kv().key() + " prev@" +
                  std::to_string(e.prev_kv().mod_revision()));
  }
  ASSERT_TRUE((*it)->status().ok());
  // c@7 survives (latest <= 7) and is 8's prev; at or below the compact
  // revision no event carries a prev_kv.
  EXPECT_EQ(got, (Strings{"7 c prev@0", "8 c prev@7", "9 c prev@0"}));
}

// The worked example of docs/mvcc.md.
TEST_F(CompactionTest, WorkedExampleFromDocs) {
  Put("x", "1");    // 2
  Put("foo", "a");  // 3
  Put("foo", "b");  // 4
  Put("x", "2");    // 5
  Delete("foo");    // 6
  Put("foo", "c");  // 7
  Put("x", "3");    // 8
  Put("foo", "d");  // 9
  EXPECT_TRUE(Dump("foo", "", 1).empty());
  EXPECT_EQ(Dump("foo", "", 5), (Strings{"foo=b@4"}));
  EXPECT_TRUE(Dump("foo", "", 6).empty());
  EXPECT_EQ(Dump("foo", "", 8), (Strings{"foo=c@7"}));
  auto foo_records = [&] {
    Strings keys, revs, out;
    DumpTables(&keys, &revs);
    for (const auto& k : keys) {
      if (k.rfind("foo@", 0) == 0) out.push_back(k);
    }
    return out;
  };
  ASSERT_TRUE(Compact(5).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@9.0", "foo@7.0", "foo@6.0 T", "foo@4.0"}));
  ASSERT_TRUE(Compact(6).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@9.0", "foo@7.0"}));
  ASSERT_TRUE(Compact(8).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@9.0", "foo@7.0"}));
  ASSERT_TRUE(Compact(9).ok());
  EXPECT_EQ(foo_records(), (Strings{"foo@9.0"}));
  EXPECT_EQ(Dump("foo", "", 9), (Strings{"foo=d@9"}));
  EXPECT_EQ(Read()->Range("foo", "", RangeOptions{.rev = 8}).status().code(), Code::kCompacted);
}

TEST_F(CompactionTest, HashKVAgreesAfterSameCompaction) {
  WriteHistory();
  ASSERT_TRUE(Compact(5).ok());
  auto h = Read()->HashKV(0);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->compact_rev, 5);
  EXPECT_EQ(h->rev, 9);
  EXPECT_EQ(Read()->HashKV(4).status().code(), Code::kCompacted);
  // At the compact revision itself etcd 3.4 refuses too.
  EXPECT_EQ(Read()->HashKV(5).status().code(), Code::kCompacted);
  EXPECT_TRUE(Read()->HashKV(6).ok());
}

}  // namespace
}  // namespace etcdpp::mvcc
