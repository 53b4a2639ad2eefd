#include "base/fault_env.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace etcdpp {
namespace {

class FaultEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.CreateDir("/d").ok()); }

  std::unique_ptr<WritableFile> Create(const std::string& path) {
    auto f = env_.NewWritableFile(path);
    EXPECT_TRUE(f.ok());
    return std::move(f).value();
  }

  FaultEnv env_;
};

TEST_F(FaultEnvTest, OnlySyncedDataSurvivesACrash) {
  auto f = Create("/d/f");
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(f->Append("synced").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("-lost").ok());
  EXPECT_EQ(*env_.ReadFile("/d/f"), "synced-lost");  // Visible before the crash.

  env_.DropUnsyncedData();
  EXPECT_EQ(*env_.ReadFile("/d/f"), "synced");
  // The writer died with the crash.
  EXPECT_EQ(f->Append("x").code(), Code::kIOError);
}

TEST_F(FaultEnvTest, NewNameNeedsSyncDir) {
  auto f = Create("/d/f");
  ASSERT_TRUE(f->Append("data").ok());
  ASSERT_TRUE(f->Sync().ok());
  env_.DropUnsyncedData();
  EXPECT_FALSE(env_.FileExists("/d/f")) << "created but the directory was never synced";
}

TEST_F(FaultEnvTest, RenameIsDurableOnlyAfterSyncDir) {
  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/a", "old").ok());
  auto f = Create("/d/a.tmp");
  ASSERT_TRUE(f->Append("new").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(env_.RenameFile("/d/a.tmp", "/d/a").ok());
  EXPECT_EQ(*env_.ReadFile("/d/a"), "new");
  env_.DropUnsyncedData();
  EXPECT_EQ(*env_.ReadFile("/d/a"), "old");

  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/a", "new").ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(*env_.ReadFile("/d/a"), "new");
  auto children = env_.GetChildren("/d");
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"a"});
}

TEST_F(FaultEnvTest, UnsyncedTruncateAndPreallocateAreUndone) {
  auto f = Create("/d/f");
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(f->Preallocate(16).ok());
  ASSERT_TRUE(f->Append("abcd").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Truncate(2).ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(*env_.ReadFile("/d/f"), std::string("abcd") + std::string(12, '\0'));
}

TEST_F(FaultEnvTest, RandomSectorLossKeepsSyncedPrefix) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    FaultEnv env;
    ASSERT_TRUE(env.CreateDir("/d").ok());
    auto f = std::move(env.NewWritableFile("/d/f")).value();
    ASSERT_TRUE(env.SyncDir("/d").ok());
    std::string synced(1000, 's');
    ASSERT_TRUE(f->Append(synced).ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(f->Append(std::string(3000, 'u')).ok());
    env.DropUnsyncedSectorsRandomly(seed, 512);
    std::string after = *env.ReadFile("/d/f");
    ASSERT_GE(after.size(), synced.size());
    EXPECT_EQ(after.substr(0, synced.size()), synced);
    for (size_t i = synced.size(); i < after.size(); ++i) {
      ASSERT_TRUE(after[i] == 'u' || after[i] == 0) << "byte " << i;
    }
  }
}

TEST_F(FaultEnvTest, InjectedFailuresChangeNothing) {
  auto f = Create("/d/f");
  env_.SetFailWrites(true);
  EXPECT_EQ(f->Append("x").code(), Code::kIOError);
  env_.SetFailWrites(false);
  ASSERT_TRUE(f->Append("y").ok());
  env_.SetFailSyncs(true);
  EXPECT_EQ(f->Sync().code(), Code::kIOError);
  EXPECT_EQ(env_.SyncDir("/d").code(), Code::kIOError);
  env_.SetFailSyncs(false);
  EXPECT_EQ(*env_.ReadFile("/d/f"), "y");
  EXPECT_EQ(env_.append_count(), 1u);
  EXPECT_EQ(env_.sync_count(), 0u);
}

TEST_F(FaultEnvTest, FailSyncsAfterStopsAtTheNthSync) {
  auto f = Create("/d/f");
  env_.FailSyncsAfter(2);
  EXPECT_TRUE(f->Sync().ok());
  EXPECT_TRUE(env_.SyncDir("/d").ok());
  EXPECT_EQ(f->Sync().code(), Code::kIOError);
  EXPECT_EQ(f->Sync().code(), Code::kIOError);
  env_.SetFailSyncs(false);
  EXPECT_TRUE(f->Sync().ok());
}

TEST_F(FaultEnvTest, CorruptByteHitsDurableContentsToo) {
  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/f", "abc").ok());
  ASSERT_TRUE(env_.CorruptByte("/d/f", 1, 0x01).ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(*env_.ReadFile("/d/f"), "acc");
}

TEST_F(FaultEnvTest, LocksAreExclusiveAndReleasedByACrash) {
  auto lock = env_.LockFile("/d/LOCK");
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(env_.LockFile("/d/LOCK").status().code(), Code::kUnavailable);
  env_.DropUnsyncedData();
  auto relock = env_.LockFile("/d/LOCK");
  EXPECT_TRUE(relock.ok());
  lock->reset();  // The dead process's lock must not release the new holder's.
  EXPECT_EQ(env_.LockFile("/d/LOCK").status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace etcdpp
