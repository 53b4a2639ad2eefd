// Data dirs written before long keys (key layout 1, no `mvcc/key_layout` in
// meta) open with every key readable; a layout this build does not know is
// refused with an error naming the data file.
#include <gtest/gtest.h>

#include <string>

#include "mvcc/key_codec.h"
#include "mvcc/key_record.h"
#include "mvcc/kv_store.h"
#include "mvcc/lmdb_env.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::mvcc {
namespace {

using namespace std::string_literals;

// Raw access to a closed store's tables, to write what an older etcdpp wrote.
class RawStore {
 public:
  explicit RawStore(const std::string& dir) {
    env_ = std::move(LmdbEnv::Open(dir, LmdbOptions{.map_size = 64 << 20}).value());
    EXPECT_EQ(mdb_txn_begin(env_->get(), nullptr, 0, &txn_), 0);
    EXPECT_EQ(mdb_dbi_open(txn_, "key", 0, &key_), 0);
    EXPECT_EQ(mdb_dbi_open(txn_, "rev", 0, &rev_), 0);
    EXPECT_EQ(mdb_dbi_open(txn_, "meta", 0, &meta_), 0);
  }
  ~RawStore() { EXPECT_EQ(mdb_txn_commit(txn_), 0); }

  // A layout 1 put: inline slot whatever the key's length, no key in the record.
  void PutV1(const std::string& key, const std::string& value, Revision rev) {
    std::string tk = EncodeUserKey(key);
    char suffix[kRevisionBytes];
    EncodeInvertedRevision(rev, suffix);
    tk.append(suffix, kRevisionBytes);
    ASSERT_LE(tk.size(), kMaxTableKeyBytes);
    char header[kKeyRecordHeaderBytes];
    EncodeKeyRecordHeader(KeyRecordHeader{0, rev.main, 1, 0}, header);
    ASSERT_TRUE(Table(txn_, key_).Put(tk, std::string(header, kKeyRecordHeaderBytes) + value).ok());
    char rk[kRevisionBytes];
    EncodeRevision(rev, rk);
    ASSERT_TRUE(Table(txn_, rev_).Put(std::string_view(rk, kRevisionBytes), "\0"s + key).ok());
    char state[16];
    PutBigEndian64(static_cast<uint64_t>(rev.main), state);
    PutBigEndian64(0, state + 8);
    ASSERT_TRUE(Table(txn_, meta_).Put("mvcc/revision", std::string_view(state, 16)).ok());
  }
  void SetMeta(const std::string& name, const std::string& value) {
    ASSERT_TRUE(Table(txn_, meta_).Put(name, value).ok());
  }
  void DeleteMeta(const std::string& name) { ASSERT_TRUE(Table(txn_, meta_).Delete(name).ok()); }

 private:
  std::unique_ptr<LmdbEnv> env_;
  MDB_txn* txn_ = nullptr;
  MDB_dbi key_ = 0, rev_ = 0, meta_ = 0;
};

TEST(KeyLayoutTest, LayoutOneDataDirOpensWithEveryKeyReadable) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  ASSERT_TRUE(KvStore::Open(db).ok());  // Creates the tables.
  // Keys layout 1 stored inline although today's layout keeps them long
  // (escaped size above kMaxEscapedBodyBytes, at most 493), next to short ones.
  const std::string at_old_limit(493, 'o');
  const std::string with_zero = std::string(480, 'z') + "\0\0"s;
  {
    RawStore raw(db);
    raw.DeleteMeta("mvcc/key_layout");
    raw.PutV1("a", "1", {2, 0});
    raw.PutV1(at_old_limit, "2", {3, 0});
    raw.PutV1(with_zero, "3", {4, 0});
    raw.PutV1("{", "4", {5, 0});
  }
  auto store = KvStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto r = (*store)->Read().value()->Range("\0"s, "\0"s, {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 4);
  EXPECT_EQ(r->kvs[0].key(), "a");
  EXPECT_EQ(r->kvs[1].key(), at_old_limit);
  EXPECT_EQ(r->kvs[1].value(), "2");
  EXPECT_EQ(r->kvs[2].key(), with_zero);
  EXPECT_EQ(r->kvs[2].mod_revision(), 4);
  EXPECT_EQ(r->kvs[3].key(), "{");
  // The moved keys live on: overwritten, deleted, compacted, watched.
  {
    auto w = (*store)->Write().value();
    w->BeginRevision();
    auto put = w->Put(at_old_limit, "again", 0);
    ASSERT_TRUE(put.ok());
    EXPECT_TRUE(put->existed);
    ASSERT_EQ(w->DeleteRange(with_zero, "").value(), 1);
    w->EndRevision();
    ASSERT_TRUE(w->Compact(6).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto one = (*store)->Read().value()->Range(at_old_limit, "", {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->kvs.size(), 1);
  EXPECT_EQ(one->kvs[0].version(), 2);
  EXPECT_EQ(one->kvs[0].create_revision(), 3);
  EXPECT_EQ((*store)->Read().value()->Range(with_zero, "", {})->kvs.size(), 0);
  // Opening again finds the current layout and changes nothing.
  store->reset();
  store = KvStore::Open(db);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Read().value()->Range("\0"s, "\0"s, {})->kvs.size(), 3);
}

TEST(KeyLayoutTest, UnknownLayoutIsRefusedNamingTheFile) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  ASSERT_TRUE(KvStore::Open(db).ok());
  {
    RawStore raw(db);
    raw.SetMeta("mvcc/key_layout", "9");
  }
  auto store = KvStore::Open(db);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(db + "/data.mdb"), std::string::npos)
      << store.status().ToString();
  EXPECT_NE(store.status().message().find("key layout 9"), std::string::npos);
}

}  // namespace
}  // namespace etcdpp::mvcc
