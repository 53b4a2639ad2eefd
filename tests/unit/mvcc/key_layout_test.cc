// Data dirs written before long keys (key layout 1, no `mvcc/key_layout` in
// meta), before the `live` table (layout 2), before values moved to the
// `rev` table (layout 3) and before zero runs were coded in slots (layout 4)
// open with every key readable and counted, and hash as before; a layout
// this build does not know is refused with an error naming the data file.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "mvcc/escaped_key_codec.h"
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
    EXPECT_EQ(mdb_dbi_open(txn_, "live", 0, &live_), 0);
  }
  ~RawStore() { EXPECT_EQ(mdb_txn_commit(txn_), 0); }

  // A layout 1 put: inline slot whatever the key's length, no key in the record.
  void PutV1(const std::string& key, const std::string& value, Revision rev) {
    std::string tk = escaped::EncodeUserKey(key);
    AppendInvertedRevision(rev, &tk);
    ASSERT_LE(tk.size(), kMaxTableKeyBytes);
    char header[kKeyRecordHeaderBytes];
    EncodeKeyRecordHeader(KeyRecordHeader{0, rev.main, 1, 0}, header);
    ASSERT_TRUE(Table(txn_, key_).Put(tk, std::string(header, kKeyRecordHeaderBytes) + value).ok());
    char rk[kRevisionBytes];
    EncodeRevision(rev, rk);
    ASSERT_TRUE(Table(txn_, rev_).Put(std::string_view(rk, kRevisionBytes), "\0"s + key).ok());
    SetRevision(rev.main);
  }
  // A layout 3 record: the value (after a long key's length and bytes) in
  // `key`, flags || user key in `rev`; `live` as layout 3 kept it.
  void PutV3(const std::string& key, const std::string& value, Revision rev, KeyRecordHeader h,
             bool live) {
    std::string record(kKeyRecordHeaderBytes, '\0');
    EncodeKeyRecordHeader(h, record.data());
    std::string slot;
    escaped::AppendKeySlot(key, &slot);
    if (escaped::IsLongSlot(slot)) {
      char length[kLongKeyLengthBytes];
      PutLongKeyLength(static_cast<uint32_t>(key.size()), length);
      record.append(length, kLongKeyLengthBytes);
      record += key;
    }
    record += value;
    ASSERT_TRUE(Table(txn_, key_).Put(escaped::MakeKeyTableKey(key, rev), record).ok());
    char rk[kRevisionBytes];
    EncodeRevision(rev, rk);
    const std::string rev_record = std::string(1, static_cast<char>(h.flags)) + key;
    ASSERT_TRUE(Table(txn_, rev_).Put(std::string_view(rk, kRevisionBytes), rev_record).ok());
    if (live) {
      ASSERT_TRUE(Table(txn_, live_).Put(slot, "").ok());
    } else {
      ASSERT_TRUE(Table(txn_, live_).Delete(slot).ok());
    }
    SetRevision(rev.main);
  }
  // A layout 4 record: the header in `key` under layout 4's slot, header,
  // key and value in `rev`; `live` as layout 4 kept it.
  void PutV4(const std::string& key, const std::string& value, Revision rev, KeyRecordHeader h,
             bool live) {
    char header[kKeyRecordHeaderBytes];
    EncodeKeyRecordHeader(h, header);
    ASSERT_TRUE(Table(txn_, key_)
                    .Put(escaped::MakeKeyTableKey(key, rev),
                         std::string_view(header, kKeyRecordHeaderBytes))
                    .ok());
    std::string rev_record(RevRecordBytes(key.size(), value.size()), '\0');
    EncodeRevRecord(h, key, value, rev_record.data());
    char rk[kRevisionBytes];
    EncodeRevision(rev, rk);
    ASSERT_TRUE(Table(txn_, rev_).Put(std::string_view(rk, kRevisionBytes), rev_record).ok());
    std::string slot;
    escaped::AppendKeySlot(key, &slot);
    if (live) {
      ASSERT_TRUE(Table(txn_, live_).Put(slot, "").ok());
    } else {
      ASSERT_TRUE(Table(txn_, live_).Delete(slot).ok());
    }
    SetRevision(rev.main);
  }
  // HashKV at `at` of a never compacted layout 4 store, walked in its own
  // table order: each record's table key and header, then for a long slot
  // the key's length and bytes and the value, for an inline one the value
  // unless a tombstone.
  uint32_t HashOfLayoutFourRecords(int64_t at) {
    uint32_t crc = crc32c::Extend(0, "key", 3);
    Cursor c(txn_, key_);
    Cursor revs(txn_, rev_);
    for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
      std::string_view slot;
      Revision rev;
      EXPECT_TRUE(SplitKeyTableKey(c.key(), &slot, &rev));
      if (rev.main > at) continue;
      crc = crc32c::Extend(crc, c.key().data(), c.key().size());
      crc = crc32c::Extend(crc, c.value().data(), c.value().size());
      char rk[kRevisionBytes];
      EncodeRevision(rev, rk);
      EXPECT_TRUE(revs.SeekExact(std::string_view(rk, kRevisionBytes)));
      KeyRecordHeader h;
      std::string_view key, value;
      EXPECT_TRUE(DecodeRevRecord(revs.value(), &h, &key, &value));
      if (escaped::IsLongSlot(slot)) {
        std::string_view length_and_key =
            revs.value().substr(kKeyRecordHeaderBytes, kLongKeyLengthBytes + key.size());
        crc = crc32c::Extend(crc, length_and_key.data(), length_and_key.size());
      } else if (h.tombstone()) {
        continue;
      }
      crc = crc32c::Extend(crc, value.data(), value.size());
    }
    return crc;
  }
  // Whether a table named `name` exists.
  bool HasTable(const char* name) {
    MDB_dbi dbi;
    return mdb_dbi_open(txn_, name, 0, &dbi) == 0;
  }
  // HashKV of every record as layout 3 defined it: CRC-32C of "key", then
  // each `key` table entry's key and value in table order.
  uint32_t HashOfLayoutThreeRecords() {
    uint32_t crc = crc32c::Extend(0, "key", 3);
    Cursor c(txn_, key_);
    for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
      crc = crc32c::Extend(crc, c.key().data(), c.key().size());
      crc = crc32c::Extend(crc, c.value().data(), c.value().size());
    }
    return crc;
  }
  // The store's revision in meta, as every layout kept it.
  void SetRevision(int64_t main) {
    char state[16];
    PutBigEndian64(static_cast<uint64_t>(main), state);
    PutBigEndian64(0, state + 8);
    ASSERT_TRUE(Table(txn_, meta_).Put("mvcc/revision", std::string_view(state, 16)).ok());
  }
  void SetMeta(const std::string& name, const std::string& value) {
    ASSERT_TRUE(Table(txn_, meta_).Put(name, value).ok());
  }
  void DeleteMeta(const std::string& name) { ASSERT_TRUE(Table(txn_, meta_).Delete(name).ok()); }
  // Layouts 1 and 2 had no `live` table.
  void DropLiveTable() {
    MDB_dbi live;
    ASSERT_EQ(mdb_dbi_open(txn_, "live", 0, &live), 0);
    ASSERT_EQ(mdb_drop(txn_, live, 1), 0);
  }

 private:
  std::unique_ptr<LmdbEnv> env_;
  MDB_txn* txn_ = nullptr;
  MDB_dbi key_ = 0, rev_ = 0, meta_ = 0, live_ = 0;
};

// count_only of every key at the current revision (the `live` table's count).
int64_t CountAll(const KvStore& store) {
  auto r = store.Read().value()->Range("\0"s, "\0"s, RangeOptions{.count_only = true});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->count : -1;
}

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
    raw.DropLiveTable();
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
  EXPECT_EQ(CountAll(**store), 4);
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
  EXPECT_EQ(CountAll(**store), 3);
  // Opening again finds the current layout and changes nothing.
  store->reset();
  store = KvStore::Open(db);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Read().value()->Range("\0"s, "\0"s, {})->kvs.size(), 3);
}

TEST(KeyLayoutTest, LayoutTwoDataDirGetsItsLiveKeysCounted) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  const std::string long_a = "/perf/" + std::string(300, '\0') + "a";
  const std::string long_b = "/perf/" + std::string(300, '\0') + "b";
  ASSERT_TRUE(KvStore::Open(db).ok());
  {
    // Layout 2's records are layout 3's (without `live`).
    RawStore raw(db);
    int64_t rev = 2;
    for (const std::string& k : {"a"s, "b"s, "c"s, "d"s, long_a, long_b}) {
      raw.PutV3(k, "v", {rev, 0}, {0, rev, 1, 0}, false);
      ++rev;
    }
    raw.PutV3("b", "again", {rev++, 0}, {0, 3, 2, 0}, false);  // history below the newest record
    // A tombstone is newest.
    raw.PutV3("c", "", {rev, 0}, {kTombstoneFlag, 0, 0, 0}, false);
    raw.PutV3(long_b, "", {rev, 1}, {kTombstoneFlag, 0, 0, 0}, false);
    raw.DropLiveTable();
    raw.SetMeta("mvcc/key_layout", "2");
  }
  auto store = KvStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(CountAll(**store), 4);  // a, b, d, long_a
  auto r = (*store)->Read().value();
  EXPECT_EQ(r->Range("b", "e", RangeOptions{.count_only = true})->count, 2);
  EXPECT_EQ(r->Range("/perf/", "/perf0", RangeOptions{.count_only = true})->count, 1);
  EXPECT_EQ(r->Range(long_b, "\0"s, RangeOptions{.count_only = true})->count, 3);
  auto limited = r->Range("\0"s, "\0"s, RangeOptions{.limit = 1});
  ASSERT_EQ(limited->kvs.size(), 1);
  EXPECT_EQ(limited->kvs[0].key(), long_a);
  EXPECT_EQ(limited->count, 4);
  r.reset();
  // The rebuilt table follows later writes.
  {
    auto w = (*store)->Write().value();
    w->BeginRevision();
    ASSERT_TRUE(w->Put("c", "back", 0).ok());
    ASSERT_EQ(w->DeleteRange("a", "b").value(), 1);
    w->EndRevision();
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ(CountAll(**store), 4);  // b, c, d, long_a
}

TEST(KeyLayoutTest, LayoutThreeDataDirKeepsEveryValueHistoryAndHash) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  ASSERT_TRUE(KvStore::Open(db).ok());
  const std::string long_key = "/perf/" + std::string(300, '\0') + "k";
  const std::string with_zero = "a\0z"s;
  uint32_t layout_three_hash = 0;
  {
    RawStore raw(db);
    raw.SetMeta("mvcc/key_layout", "3");
    raw.PutV3("a", "1", {2, 0}, {0, 2, 1, 0}, true);
    raw.PutV3("a", "22", {3, 0}, {0, 2, 2, 7}, true);
    raw.PutV3(long_key, "long", {4, 0}, {0, 4, 1, 0}, true);
    raw.PutV3("b", "x", {5, 0}, {0, 5, 1, 0}, true);
    raw.PutV3("b", "", {6, 0}, {kTombstoneFlag, 0, 0, 0}, false);
    // An empty value: a layout 3 record of the header alone.
    raw.PutV3(with_zero, "", {7, 0}, {0, 7, 1, 0}, true);
    raw.PutV3(long_key, "longer", {7, 1}, {0, 4, 2, 0}, true);
    layout_three_hash = raw.HashOfLayoutThreeRecords();
  }
  auto store = KvStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto r = (*store)->Read().value();
  auto all = r->Range("\0"s, "\0"s, {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->kvs.size(), 3);
  EXPECT_EQ(all->kvs[0].key(), long_key);
  EXPECT_EQ(all->kvs[0].value(), "longer");
  EXPECT_EQ(all->kvs[0].version(), 2);
  EXPECT_EQ(all->kvs[0].create_revision(), 4);
  EXPECT_EQ(all->kvs[1].key(), "a");
  EXPECT_EQ(all->kvs[1].value(), "22");
  EXPECT_EQ(all->kvs[1].lease(), 7);
  EXPECT_EQ(all->kvs[1].mod_revision(), 3);
  EXPECT_EQ(all->kvs[2].key(), with_zero);
  EXPECT_EQ(all->kvs[2].value(), "");
  EXPECT_EQ(CountAll(**store), 3);
  auto old = r->Range("a", "c", RangeOptions{.rev = 5});
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->kvs.size(), 2);
  EXPECT_EQ(old->kvs[0].value(), "22");
  EXPECT_EQ(old->kvs[1].value(), "x");
  // The change log gives each revision's value and the one before it.
  std::vector<std::string> events;
  auto changes = r->Changes(2, 0, /*with_prev_kv=*/true).value();
  for (; changes->Valid(); changes->Next()) {
    const mvccpb::Event& e = changes->event();
    events.push_back(std::to_string(e.kv().mod_revision()) + " " +
                     (e.type() == mvccpb::Event::DELETE ? "del" : e.kv().value()) +
                     " prev=" + e.prev_kv().value());
  }
  ASSERT_TRUE(changes->status().ok()) << changes->status().ToString();
  EXPECT_EQ(events, (std::vector<std::string>{"2 1 prev=", "3 22 prev=1",
                                              "4 long prev=", "5 x prev=", "6 del prev=x",
                                              "7  prev=", "7 longer prev=long"}));
  // Members on layouts 3 and 4 with the same history hash alike.
  auto hash = r->HashKV(0);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->hash, layout_three_hash);
  r.reset();
  // Later writes and compaction work on the moved records.
  {
    auto w = (*store)->Write().value();
    w->BeginRevision();
    auto put = w->Put(long_key, "again", 0);
    ASSERT_TRUE(put.ok());
    EXPECT_TRUE(put->existed);
    w->EndRevision();
    ASSERT_TRUE(w->Compact(7).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  while ((*store)->CompactionPending()) ASSERT_TRUE((*store)->RemoveCompactedHistory().ok());
  store->reset();
  store = KvStore::Open(db);
  ASSERT_TRUE(store.ok());
  auto one = (*store)->Read().value()->Range(long_key, "", {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->kvs.size(), 1);
  EXPECT_EQ(one->kvs[0].value(), "again");
  EXPECT_EQ(one->kvs[0].version(), 3);
  EXPECT_EQ((*store)->Read().value()->Range("a", "", {})->kvs[0].value(), "22");
}

// Keys whose layout 4 slot changes in layout 5 (zero bytes, long slots,
// buckets whose members are inline now or in other buckets), next to keys
// whose slot stays.
std::vector<std::string> LayoutFourKeys(std::mt19937& rng) {
  auto bytes = [&](size_t n) {
    static const char kPick[] = {'\0', '\0', '\0', '\x01', 'a', '\xff'};
    std::string out(n, '\0');
    for (char& c : out) c = kPick[rng() % 6];
    return out;
  };
  std::vector<std::string> keys = {"a", "b", "a\0"s, "a\0\0b"s, "\0"s, "zz"};
  const std::string shared(470, 'm');
  for (int i = 0; i < 40; ++i) keys.push_back(shared + bytes(rng() % 12));
  for (int i = 0; i < 10; ++i) {
    std::string k = "/perf/" + std::string(256, '\0');
    for (size_t b = 0; b < 1 + rng() % 9; ++b) k[6 + b] = static_cast<char>(rng());
    keys.push_back(k);
  }
  for (int i = 0; i < 10; ++i) keys.push_back(std::string(600, 'x') + bytes(rng() % 30));
  for (int i = 0; i < 10; ++i) keys.push_back(std::string(230, '\0') + bytes(rng() % 30));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

TEST(KeyLayoutTest, LayoutFourDataDirIsReKeyedAndHashesAlike) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  ASSERT_TRUE(KvStore::Open(db).ok());
  std::mt19937 rng(11);
  const std::vector<std::string> keys = LayoutFourKeys(rng);
  // Each key: put; every third one put again, every fifth then deleted.
  std::map<std::string, std::pair<std::string, int64_t>> want;  // key -> value, mod rev
  int64_t rev = 1;
  int64_t mid_rev = 0;
  uint32_t hash_mid = 0, hash_now = 0;
  {
    RawStore raw(db);
    raw.SetMeta("mvcc/key_layout", "4");
    for (size_t i = 0; i < keys.size(); ++i) {
      ++rev;
      raw.PutV4(keys[i], fmt::format("v{}", i), {rev, 0}, {0, rev, 1, 0}, true);
      want[keys[i]] = {fmt::format("v{}", i), rev};
    }
    mid_rev = rev;
    for (size_t i = 0; i < keys.size(); ++i) {
      const int64_t created = want[keys[i]].second;
      if (i % 3 == 0) {
        ++rev;
        raw.PutV4(keys[i], "again", {rev, 0}, {0, created, 2, 0}, true);
        want[keys[i]] = {"again", rev};
      }
      if (i % 5 == 0) {
        ++rev;
        raw.PutV4(keys[i], "", {rev, 0}, {kTombstoneFlag, 0, 0, 0}, false);
        want.erase(keys[i]);
      }
    }
    hash_mid = raw.HashOfLayoutFourRecords(mid_rev);
    hash_now = raw.HashOfLayoutFourRecords(rev);
  }
  auto store = KvStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto r = (*store)->Read().value();
  auto all = r->Range("\0"s, "\0"s, {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->kvs.size(), want.size());
  auto it = want.begin();
  for (const auto& kv : all->kvs) {
    EXPECT_EQ(kv.key(), it->first);
    EXPECT_EQ(kv.value(), it->second.first);
    EXPECT_EQ(kv.mod_revision(), it->second.second);
    ++it;
  }
  EXPECT_EQ(CountAll(**store), static_cast<int64_t>(want.size()));
  // One key at a time, and the history below the deletes.
  for (size_t i = 0; i < keys.size(); ++i) {
    auto one = r->Range(keys[i], "", {});
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->kvs.size(), want.count(keys[i]));
    auto old = r->Range(keys[i], "", RangeOptions{.rev = mid_rev});
    ASSERT_TRUE(old.ok());
    ASSERT_EQ(old->kvs.size(), 1u);
    EXPECT_EQ(old->kvs[0].value(), fmt::format("v{}", i));
  }
  // Members on layouts 4 and 5 with the same history hash alike.
  EXPECT_EQ(r->HashKV(0)->hash, hash_now);
  EXPECT_EQ(r->HashKV(mid_rev)->hash, hash_mid);
  r.reset();
  store->reset();
  {
    RawStore raw(db);
    EXPECT_FALSE(raw.HasTable("mvcc/rekey"));
  }
  store = KvStore::Open(db);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Read().value()->HashKV(0)->hash, hash_now);
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
