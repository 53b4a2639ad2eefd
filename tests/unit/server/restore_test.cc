// Restoring a backup into the store a new cluster starts from.
#include "server/restore.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::server {
namespace {

const std::string kAll("\0", 1);

// A backup taken while a delete committed its parts holds half a delete
// that no log will replay: the restored store holds the state after it.
TEST(RestoreTest, ABackupTakenBetweenADeletesPartsRestoresTheWholeDelete) {
  constexpr int kKeys = 3000;
  testing::TempDir old_dir, new_dir;
  int64_t rev_before = 0;
  {
    auto store = mvcc::KvStore::Open(old_dir.path()).value();
    auto w = store->Write().value();
    for (int i = 0; i < kKeys; ++i) {
      char key[16];
      std::snprintf(key, sizeof(key), "d/%05d", i);
      w->BeginRevision();
      ASSERT_TRUE(w->Put(key, "v", 0).ok());
      w->EndRevision();
    }
    w->BeginRevision();
    ASSERT_TRUE(w->Put("e", "stays", 0).ok());
    w->EndRevision();
    ASSERT_TRUE(w->Commit().ok());
    w.reset();  // one write transaction at a time
    rev_before = store->CurrentRevision();
    mvcc::DeleteParts parts{.keys_per_part = 1024, .before_commit = {}};
    auto d = store->Write().value();
    d->BeginRevision();
    ASSERT_TRUE(d->DeleteRange("d/", "d0", mvcc::PrevValues::kSkip, {}, &parts).ok());
    d->EndRevision();
    d.reset();  // aborted after two parts committed
    // The copy a backup (Maintenance.Snapshot) takes.
    const std::string backup = old_dir.path() + "/backup";
    const int fd = ::open(backup.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(store->CopyToFd(fd).ok());
    ::close(fd);
  }
  std::ifstream in(old_dir.path() + "/backup", std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(data.empty());

  ASSERT_TRUE(WriteRestoredStore(data, new_dir.path() + "/store").ok());
  auto store = mvcc::KvStore::Open(new_dir.path() + "/store").value();
  EXPECT_EQ(store->CurrentRevision(), rev_before + 1);
  auto read = store->Read().value();
  auto all = read->Range("", kAll, mvcc::RangeOptions{.keys_only = true});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 1u);
  EXPECT_EQ(all->kvs[0].key(), "e");
  EXPECT_EQ(all->count, 1);
  read.reset();
  auto w = store->Write().value();
  w->BeginRevision();
  EXPECT_TRUE(w->Put("after", "restore", 0).ok());
  w->EndRevision();
  EXPECT_TRUE(w->Commit().ok());
}

}  // namespace
}  // namespace etcdpp::server
