// Helpers shared by the mvcc tests: a store in a temp dir and one-line writes.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mvcc/kv_store.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::mvcc {

// A record as one line, for failure messages: key=value c<create> m<mod> v<version>.
inline std::string Describe(const mvccpb::KeyValue& kv) {
  return kv.key() + "=" + kv.value() + " c" + std::to_string(kv.create_revision()) + " m" +
         std::to_string(kv.mod_revision()) + " v" + std::to_string(kv.version());
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    auto s = KvStore::Open(dir_.path() + "/db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  std::unique_ptr<WriteTxn> Write() {
    auto w = store_->Write();
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return std::move(*w);
  }
  std::unique_ptr<ReadTxn> Read() {
    auto r = store_->Read();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(*r);
  }

  // One committed revision putting key=value; returns the revision.
  int64_t Put(const std::string& key, const std::string& value, int64_t lease = 0) {
    auto w = Write();
    w->BeginRevision();
    auto r = w->Put(key, value, lease);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    w->EndRevision();
    EXPECT_TRUE(w->Commit().ok());
    return r->revision;
  }
  // One committed DeleteRange; returns the number of keys deleted.
  int64_t Delete(const std::string& key, const std::string& end = "") {
    auto w = Write();
    w->BeginRevision();
    auto n = w->DeleteRange(key, end);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    w->EndRevision();
    EXPECT_TRUE(w->Commit().ok());
    return *n;
  }
  Status Compact(int64_t rev) {
    auto w = Write();
    Status s = w->Compact(rev);
    if (!s.ok()) return s;
    return w->Commit();
  }

  // "key=value@mod" for each key of the range at rev, for compact assertions.
  std::vector<std::string> Dump(const std::string& key, const std::string& end, int64_t rev = 0) {
    auto r = Read()->Range(key, end, RangeOptions{.rev = rev});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    if (!r.ok()) return out;
    for (const auto& kv : r->kvs) {
      out.push_back(kv.key() + "=" + kv.value() + "@" + std::to_string(kv.mod_revision()));
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<KvStore> store_;
};

inline const std::string kAll = std::string("\0", 1);

}  // namespace etcdpp::mvcc
