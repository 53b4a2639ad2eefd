// Stores whose commits are flushed after they return (LmdbOptions::
// deferred_flush): what an open finds after a stop with and without Sync,
// and which records it trusts (mvcc/flushed_commit.h).
#include <fcntl.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "mvcc/flushed_commit.h"
#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::mvcc {
namespace {

class DeferredFlushTest : public ::testing::Test {
 protected:
  std::string db() const { return dir_.path() + "/db"; }
  std::string record_path() const { return db() + "/" + kFlushedCommitFile; }

  std::unique_ptr<KvStore> Open(const std::string& dir) {
    Options options;
    options.write_map = false;  // as the member opens its stores
    auto s = KvStore::Open(dir, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static void Put(KvStore& store, const std::string& key, const std::string& value,
                  uint64_t index) {
    auto w = store.Write();
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    (*w)->BeginRevision();
    ASSERT_TRUE((*w)->Put(key, value, 0).ok());
    (*w)->EndRevision();
    ASSERT_TRUE((*w)->SetConsistentIndex(index).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }

  static std::string Get(KvStore& store, const std::string& key) {
    auto r = store.Read();
    EXPECT_TRUE(r.ok());
    auto got = (*r)->Range(key, "", RangeOptions{});
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || got->kvs.empty()) return "<absent>";
    return got->kvs[0].value();
  }

  // Runs `work` on the store in a child process that then ends without
  // closing it, as a crash or kill -9 would: the page cache keeps whatever
  // the child wrote, and the record only what the child's open and Syncs
  // recorded. `work` returns false on a failed step.
  void RunAndCrash(const std::function<bool(KvStore&)>& work) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      Options options;
      options.write_map = false;
      auto s = KvStore::Open(db(), options);
      const bool ok = s.ok() && work(**s);
      std::_Exit(ok ? 0 : 1);  // no destructor runs
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's work failed";
  }

  // Put for a child: no gtest assertions there.
  static bool PutIn(KvStore& store, const std::string& key, const std::string& value,
                    uint64_t index) {
    auto w = store.Write();
    if (!w.ok()) return false;
    (*w)->BeginRevision();
    if (!(*w)->Put(key, value, 0).ok()) return false;
    (*w)->EndRevision();
    return (*w)->SetConsistentIndex(index).ok() && (*w)->Commit().ok();
  }

  std::string ReadRecord() const {
    std::ifstream in(record_path(), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  testing::TempDir dir_;
};

TEST_F(DeferredFlushTest, OpenRecordsTheStoreAsFlushed) {
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ReadRecord().size(), 28u);
}

TEST_F(DeferredFlushTest, ClosedStoreKeepsEveryCommit) {
  {
    auto store = Open(db());
    ASSERT_NE(store, nullptr);
    Put(*store, "a", "1", 10);
    Put(*store, "a", "2", 11);
  }
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "a"), "2");
  EXPECT_EQ(store->ConsistentIndex(), 11u);
}

TEST_F(DeferredFlushTest, CrashAfterSyncKeepsEveryCommit) {
  RunAndCrash([](KvStore& store) {
    return PutIn(store, "a", "1", 10) && PutIn(store, "a", "2", 11) && store.Sync().ok();
  });
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "a"), "2");
  EXPECT_EQ(store->ConsistentIndex(), 11u);
}

// After a crash the newest commit may not be on disk, so the open goes
// back to the one before it, and the caller's WAL applies the rest from
// that commit's consistent index.
TEST_F(DeferredFlushTest, CrashDropsTheNewestCommitNotRecordedAsFlushed) {
  RunAndCrash([](KvStore& store) {
    return PutIn(store, "a", "1", 10) && store.Sync().ok() && PutIn(store, "a", "2", 11) &&
           PutIn(store, "b", "3", 12);
  });
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "a"), "2");
  EXPECT_EQ(Get(*store, "b"), "<absent>");
  EXPECT_EQ(store->ConsistentIndex(), 11u);
  // The store goes on from there: the replayed entry commits again.
  Put(*store, "b", "3", 12);
  store.reset();
  store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "b"), "3");
  EXPECT_EQ(store->ConsistentIndex(), 12u);
}

// Only the newest commit is ever dropped: an open records the store as
// flushed, so commits before it stay whatever happens after.
TEST_F(DeferredFlushTest, RepeatedCrashesDropOnlyTheNewestCommitEachTime) {
  RunAndCrash(
      [](KvStore& store) { return PutIn(store, "k", "1", 1) && PutIn(store, "k", "2", 2); });
  RunAndCrash([](KvStore& store) { return Get(store, "k") == "1" && PutIn(store, "k", "3", 2); });
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "k"), "1");
  EXPECT_EQ(store->ConsistentIndex(), 1u);
}

// A data file with no record (written by a build that flushed in every
// commit) or a damaged record is opened as it is.
TEST_F(DeferredFlushTest, MissingOrDamagedRecordRollsNothingBack) {
  RunAndCrash(
      [](KvStore& store) { return PutIn(store, "a", "1", 1) && PutIn(store, "a", "2", 2); });
  std::string record = ReadRecord();
  ASSERT_EQ(record.size(), 28u);
  record[9] ^= 1;  // the crc no longer checks
  {
    std::ofstream out(record_path(), std::ios::binary | std::ios::trunc);
    out << record;
  }
  RunAndCrash([](KvStore& store) { return Get(store, "a") == "2" && PutIn(store, "a", "3", 3); });
  std::filesystem::remove(record_path());
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "a"), "3");
}

// A data file moved in beside another file's record (the record names the
// other file's inode) is opened as it is: what our code moves in (a
// defragmented or received store, a restore) was flushed whole first.
TEST_F(DeferredFlushTest, RecordOfAnotherDataFileRollsNothingBack) {
  const std::string other = dir_.path() + "/other";
  {
    auto store = Open(other);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Sync().ok());
  }
  {
    auto store = Open(db());
    ASSERT_NE(store, nullptr);
    for (int i = 1; i <= 5; ++i) Put(*store, "x", std::to_string(i), i);
    ASSERT_TRUE(store->Sync().ok());
  }
  // The same bytes in a new file, beside a record of fewer transactions:
  // trusted, that record would drop the newest commit.
  std::filesystem::copy_file(db() + "/data.mdb", dir_.path() + "/moved.mdb");
  std::filesystem::rename(dir_.path() + "/moved.mdb", db() + "/data.mdb");
  std::filesystem::copy_file(other + "/" + kFlushedCommitFile, record_path(),
                             std::filesystem::copy_options::overwrite_existing);
  auto store = Open(db());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Get(*store, "x"), "5");
}

// The roll-back writes LMDB's meta page itself; what LMDB then reports is
// the older transaction.
TEST_F(DeferredFlushTest, RollBackLeavesTheOlderTransactionNewest) {
  size_t txnid_before = 0;
  RunAndCrash([](KvStore& store) {
    return PutIn(store, "a", "1", 1) && store.Sync().ok() && PutIn(store, "a", "2", 2);
  });
  {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 64), 0);
    ASSERT_EQ(mdb_env_open(env, db().c_str(), MDB_RDONLY, 0644), 0);
    MDB_envinfo info;
    ASSERT_EQ(mdb_env_info(env, &info), 0);
    txnid_before = info.me_last_txnid;
    mdb_env_close(env);
  }
  uint64_t dropped = 0;
  ASSERT_TRUE(RollBackUnflushedCommit(db(), &dropped).ok());
  EXPECT_EQ(dropped, txnid_before);
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, db().c_str(), MDB_RDONLY, 0644), 0);
  MDB_envinfo info;
  ASSERT_EQ(mdb_env_info(env, &info), 0);
  EXPECT_EQ(info.me_last_txnid, txnid_before - 1);
  mdb_env_close(env);
  // A second call finds nothing newer than the record.
  ASSERT_TRUE(RollBackUnflushedCommit(db(), &dropped).ok());
  EXPECT_EQ(dropped, 0u) << "the record names the transaction now newest";
}

}  // namespace
}  // namespace etcdpp::mvcc
