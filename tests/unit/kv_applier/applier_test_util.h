// A store in a temp dir plus one-line helpers that run KvApplier requests,
// each write in its own committed WriteTxn.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mvcc/kv_store.h"
#include "server/kv_applier.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::server {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;

// Records attach/detach calls; leases 1..99 exist.
class FakeLeaseIndex : public LeaseIndex {
 public:
  bool Exists(int64_t id) const override { return id > 0 && id < 100; }
  Status Attach(mvcc::WriteTxn&, int64_t id, std::string_view key) override {
    keys[id].insert(std::string(key));
    return Status::OK();
  }
  Status Detach(mvcc::WriteTxn&, int64_t id, std::string_view key) override {
    keys[id].erase(std::string(key));
    return Status::OK();
  }
  std::map<int64_t, std::set<std::string>> keys;
};

class ApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = mvcc::KvStore::Open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  template <typename Req, typename Resp, typename Fn>
  Status WriteOp(Fn fn, const Req& req, Resp* resp) {
    auto w = store_->Write();
    EXPECT_TRUE(w.ok());
    Status s = ((applier_).*fn)(**w, req, resp);
    if (s.ok()) {
      EXPECT_TRUE((*w)->Commit().ok());
    }
    return s;
  }

  Status Put(const std::string& key, const std::string& value, int64_t lease = 0,
             etcdserverpb::PutResponse* resp = nullptr) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    req.set_lease(lease);
    etcdserverpb::PutResponse local;
    return WriteOp(&KvApplier::Put, req, resp ? resp : &local);
  }
  Status Put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp) {
    return WriteOp(&KvApplier::Put, req, resp);
  }
  Status Delete(const etcdserverpb::DeleteRangeRequest& req,
                etcdserverpb::DeleteRangeResponse* resp) {
    return WriteOp(&KvApplier::DeleteRange, req, resp);
  }
  Status Txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp) {
    return WriteOp(&KvApplier::Txn, req, resp);
  }
  Status Compact(int64_t rev) {
    etcdserverpb::CompactionRequest req;
    req.set_revision(rev);
    etcdserverpb::CompactionResponse resp;
    return WriteOp(&KvApplier::Compact, req, &resp);
  }

  Status Range(const RangeRequest& req, etcdserverpb::RangeResponse* resp) {
    auto r = store_->Read();
    EXPECT_TRUE(r.ok());
    return KvApplier::Range(**r, req, resp);
  }
  // Keys of a successful Range, in response order.
  std::vector<std::string> Keys(const RangeRequest& req) {
    etcdserverpb::RangeResponse resp;
    Status s = Range(req, &resp);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<std::string> out;
    for (const auto& kv : resp.kvs()) out.push_back(kv.key());
    return out;
  }
  // The value of key now, or "<none>".
  std::string Get(const std::string& key) {
    RangeRequest req;
    req.set_key(key);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(Range(req, &resp).ok());
    return resp.kvs_size() == 0 ? "<none>" : resp.kvs(0).value();
  }

  testing::TempDir dir_;
  std::unique_ptr<mvcc::KvStore> store_;
  FakeLeaseIndex leases_;
  KvApplier applier_{&leases_};
};

inline RangeRequest MakeRange(const std::string& key, const std::string& end = "") {
  RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  return r;
}

inline const std::string kFromKey = std::string("\0", 1);

}  // namespace etcdpp::server
