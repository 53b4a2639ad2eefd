#include "lease/lessor.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "mvcc/kv_store.h"
#include "server/kv_applier.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::lease {
namespace {

using namespace std::chrono_literals;

// The expiry loop's revokes, for tests that wait on them (with a generous
// bound in real time) instead of sleeping.
class RevokeLog {
 public:
  void Add(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[id];
    cv_.notify_all();
  }
  // False if `id` was not handed out `times` times within ten seconds.
  bool WaitFor(int64_t id, int times = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return counts_[id] >= times; });
  }
  int Count(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, int> counts_;  // guarded by mu_
};

class LessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = mvcc::KvStore::Open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    OpenLessor();
  }

  void OpenLessor() {
    kv_.reset();
    lessor_.reset();
    LessorOptions options;
    options.min_ttl_seconds = 2;
    options.promote_extension = 1s;
    options.revoke_retry = 3s;
    // The loop looks often in real time; what expired is the fake clock's call.
    options.check_interval = 2ms;
    options.clock = &clock_;
    mvcc::KvStore* store = store_.get();
    auto l = Lessor::Open(
        [store] { return std::shared_ptr<mvcc::KvStore>(std::shared_ptr<void>(), store); },
        options);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lessor_ = std::move(*l);
    kv_ = std::make_unique<server::KvApplier>(lessor_.get());
  }

  // Makes the lessor primary for `term` (leader elected, its empty entry applied).
  void BecomePrimary(uint64_t term) {
    lessor_->SetLeader(true, term);
    lessor_->Promote(term);
    ASSERT_TRUE(lessor_->IsPrimary());
  }

  template <typename Fn>
  Status InTxn(Fn fn) {
    auto w = store_->Write();
    EXPECT_TRUE(w.ok());
    Status s = fn(**w);
    if (s.ok()) {
      EXPECT_TRUE((*w)->Commit().ok());
    }
    return s;
  }

  Status Grant(int64_t id, int64_t ttl, etcdserverpb::LeaseGrantResponse* resp = nullptr) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_id(id);
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse local;
    return InTxn([&](mvcc::WriteTxn& t) { return lessor_->Grant(t, req, resp ? resp : &local); });
  }
  Status Revoke(int64_t id, etcdserverpb::LeaseRevokeResponse* resp = nullptr) {
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    etcdserverpb::LeaseRevokeResponse local;
    return InTxn([&](mvcc::WriteTxn& t) { return lessor_->Revoke(t, req, resp ? resp : &local); });
  }
  Status Put(const std::string& key, int64_t lease, bool ignore_lease = false) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value("v");
    req.set_lease(lease);
    req.set_ignore_lease(ignore_lease);
    etcdserverpb::PutResponse resp;
    return InTxn([&](mvcc::WriteTxn& t) { return kv_->Put(t, req, &resp); });
  }
  Status Delete(const std::string& key) {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(key);
    etcdserverpb::DeleteRangeResponse resp;
    return InTxn([&](mvcc::WriteTxn& t) { return kv_->DeleteRange(t, req, &resp); });
  }
  // The key's lease, or nullopt if the key is absent.
  std::optional<int64_t> KeyLease(const std::string& key) {
    auto r = store_->Read();
    EXPECT_TRUE(r.ok());
    auto got = (*r)->Range(key, {}, {});
    EXPECT_TRUE(got.ok());
    if (got->kvs.empty()) return std::nullopt;
    return got->kvs[0].lease();
  }
  etcdserverpb::LeaseTimeToLiveResponse Ttl(int64_t id, Status* st = nullptr) {
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(true);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    Status s = lessor_->TimeToLive(req, &resp);
    if (st) {
      *st = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return resp;
  }
  // Renew's outcome if it finished synchronously.
  std::optional<Result<int64_t>> RenewNow(int64_t id) {
    std::optional<Result<int64_t>> out;
    lessor_->Renew(id, [&](Result<int64_t> r) { out.emplace(std::move(r)); });
    return out;
  }

  FakeClock clock_;    // the lessor's; outlives it
  RevokeLog revokes_;  // fed by the expiry loop; outlives the lessor
  testing::TempDir dir_;
  std::unique_ptr<mvcc::KvStore> store_;
  std::unique_ptr<Lessor> lessor_;
  std::unique_ptr<server::KvApplier> kv_;
};

TEST(MinLeaseTtlTest, IsOneAndAHalfElectionTimeoutsRoundedUp) {
  EXPECT_EQ(MinLeaseTtlSeconds(100ms, 1000ms), 2);  // etcd's defaults: 1.5 s -> 2
  EXPECT_EQ(MinLeaseTtlSeconds(100ms, 500ms), 1);   // 7 ticks (700 ms) -> 1
  EXPECT_EQ(MinLeaseTtlSeconds(50ms, 3000ms), 5);   // 4.5 s -> 5
}

TEST_F(LessorTest, GrantFollowsEtcdRules) {
  etcdserverpb::LeaseGrantResponse resp;
  ASSERT_TRUE(Grant(7, 1, &resp).ok());
  EXPECT_EQ(resp.id(), 7);
  EXPECT_EQ(resp.ttl(), 2);  // raised to the minimum
  EXPECT_EQ(resp.header().revision(), 1);
  EXPECT_EQ(Grant(7, 60).code(), Code::kLeaseExist);
  EXPECT_EQ(Grant(0, 60).code(), Code::kLeaseNotFound);
  EXPECT_EQ(Grant(8, kMaxLeaseTtlSeconds + 1).code(), Code::kLeaseTTLTooLarge);
  EXPECT_TRUE(lessor_->Exists(7));
  EXPECT_FALSE(lessor_->Exists(8));
  EXPECT_EQ(lessor_->Leases(), (std::vector<int64_t>{7}));
}

TEST_F(LessorTest, PutAttachesAndRevokeDeletesKeysInOneRevision) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Grant(2, 60).ok());
  EXPECT_EQ(Put("a", 5).code(), Code::kLeaseNotFound);
  ASSERT_TRUE(Put("a", 1).ok());
  ASSERT_TRUE(Put("b", 1).ok());
  ASSERT_TRUE(Put("c", 2).ok());
  ASSERT_TRUE(Put("plain", 0).ok());
  BecomePrimary(1);
  EXPECT_EQ(Ttl(1).keys_size(), 2);
  const int64_t before = store_->CurrentRevision();
  etcdserverpb::LeaseRevokeResponse resp;
  ASSERT_TRUE(Revoke(1, &resp).ok());
  EXPECT_EQ(store_->CurrentRevision(), before + 1);
  EXPECT_EQ(resp.header().revision(), before + 1);
  EXPECT_EQ(KeyLease("a"), std::nullopt);
  EXPECT_EQ(KeyLease("b"), std::nullopt);
  EXPECT_EQ(KeyLease("c"), 2);
  EXPECT_EQ(KeyLease("plain"), 0);
  EXPECT_FALSE(lessor_->Exists(1));
  EXPECT_EQ(Revoke(1).code(), Code::kLeaseNotFound);
  // A lease without keys is revoked without a revision.
  ASSERT_TRUE(Grant(3, 60).ok());
  const int64_t rev = store_->CurrentRevision();
  ASSERT_TRUE(Revoke(3).ok());
  EXPECT_EQ(store_->CurrentRevision(), rev);
}

// A revoke works through a lease's keys a chunk (1,024) at a time; what a
// client sees is still one revision holding every key's delete, in key
// order, and nothing of another lease's keys.
TEST_F(LessorTest, RevokeOfManyKeysIsOneRevisionInKeyOrder) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Grant(2, 60).ok());
  constexpr int kKeys = 2'500;  // two full chunks and a part
  std::vector<std::string> doomed;
  ASSERT_TRUE(InTxn([&](mvcc::WriteTxn& t) {
                for (int i = 0; i < kKeys; ++i) {
                  // Lease 2's keys sort among lease 1's.
                  for (int lease : {1, 2}) {
                    etcdserverpb::PutRequest req;
                    req.set_key(fmt::format("k/{:05}/{}", i, lease));
                    req.set_value("v");
                    req.set_lease(lease);
                    etcdserverpb::PutResponse resp;
                    ETCDPP_RETURN_IF_ERROR(kv_->Put(t, req, &resp));
                    if (lease == 1) doomed.push_back(req.key());
                  }
                }
                return Status::OK();
              }).ok());
  BecomePrimary(1);
  const int64_t before = store_->CurrentRevision();
  ASSERT_TRUE(Revoke(1).ok());
  EXPECT_EQ(store_->CurrentRevision(), before + 1);

  auto view = store_->Read();
  ASSERT_TRUE(view.ok());
  auto changes = (*view)->Changes(before + 1, before + 1, false);
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> deleted;
  int64_t next_sub = 0;
  for (; (*changes)->Valid(); (*changes)->Next()) {
    EXPECT_EQ((*changes)->event().type(), mvccpb::Event::DELETE);
    EXPECT_EQ((*changes)->revision().sub, next_sub++);
    deleted.push_back((*changes)->event().kv().key());
  }
  ASSERT_TRUE((*changes)->status().ok());
  EXPECT_EQ(deleted, doomed);

  auto left = (*view)->Range("k/", "k0", mvcc::RangeOptions{.count_only = true});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->count, kKeys);  // lease 2's
  EXPECT_EQ(Ttl(2).keys_size(), kKeys);
  // Nothing of lease 1 is left to find again.
  OpenLessor();
  EXPECT_EQ(lessor_->Leases(), (std::vector<int64_t>{2}));
}

TEST_F(LessorTest, OverwriteDeleteAndIgnoreLeaseMoveAttachments) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Grant(2, 60).ok());
  BecomePrimary(1);
  ASSERT_TRUE(Put("k", 1).ok());
  ASSERT_TRUE(Put("k", 0, /*ignore_lease=*/true).ok());  // keeps lease 1
  EXPECT_EQ(KeyLease("k"), 1);
  ASSERT_TRUE(Put("k", 2).ok());  // moves to lease 2
  EXPECT_EQ(Ttl(1).keys_size(), 0);
  ASSERT_EQ(Ttl(2).keys_size(), 1);
  EXPECT_EQ(Ttl(2).keys(0), "k");
  ASSERT_TRUE(Revoke(1).ok());  // k no longer belongs to lease 1
  EXPECT_EQ(KeyLease("k"), 2);
  ASSERT_TRUE(Put("j", 2).ok());
  ASSERT_TRUE(Delete("k").ok());
  ASSERT_EQ(Ttl(2).keys_size(), 1);
  EXPECT_EQ(Ttl(2).keys(0), "j");
  ASSERT_TRUE(Put("j", 0).ok());  // plain put detaches
  EXPECT_EQ(Ttl(2).keys_size(), 0);
}

TEST_F(LessorTest, FollowersNeverExpire) {
  ASSERT_TRUE(Grant(1, 5).ok());
  clock_.Advance(1h);
  EXPECT_TRUE(lessor_->TakeExpired(100).empty());
  Status st;
  Ttl(1, &st);
  EXPECT_EQ(st.code(), Code::kNotLeader);
  auto r = RenewNow(1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), Code::kNotLeader);
}

TEST_F(LessorTest, ExpiryHeapYieldsLeasesInDeadlineOrder) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 30).ok());
  ASSERT_TRUE(Grant(2, 10).ok());
  ASSERT_TRUE(Grant(3, 20).ok());
  ASSERT_TRUE(Grant(4, 100).ok());
  clock_.Advance(9s);
  EXPECT_TRUE(lessor_->TakeExpired(100).empty());
  clock_.Advance(25s);                                               // 34 s: 2, 3 and 1 are due
  EXPECT_EQ(lessor_->TakeExpired(2), (std::vector<int64_t>{2, 3}));  // rate limit
  EXPECT_EQ(lessor_->TakeExpired(100), (std::vector<int64_t>{1}));
  // Taken leases are not proposed again until the retry interval passed.
  EXPECT_TRUE(lessor_->TakeExpired(100).empty());
  clock_.Advance(3s);
  std::vector<int64_t> again = lessor_->TakeExpired(100);
  std::sort(again.begin(), again.end());  // equal retry deadlines: any order
  EXPECT_EQ(again, (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(LessorTest, RenewPushesDeadlineBack) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  ASSERT_TRUE(Grant(2, 10).ok());
  clock_.Advance(8s);
  auto r = RenewNow(1);
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, 10);
  EXPECT_EQ(Ttl(1).ttl(), 10);
  EXPECT_EQ(Ttl(2).ttl(), 2);
  EXPECT_EQ(Ttl(2).grantedttl(), 10);
  clock_.Advance(3s);
  EXPECT_EQ(lessor_->TakeExpired(100), (std::vector<int64_t>{2}));
  EXPECT_EQ(RenewNow(99)->status().code(), Code::kLeaseNotFound);
}

TEST_F(LessorTest, RenewOfExpiredLeaseWaitsForItsRevoke) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  clock_.Advance(11s);
  EXPECT_EQ(lessor_->TakeExpired(100), (std::vector<int64_t>{1}));
  std::optional<Result<int64_t>> got;
  lessor_->Renew(1, [&](Result<int64_t> r) { got.emplace(std::move(r)); });
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(Revoke(1).ok());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), Code::kLeaseNotFound);
}

TEST_F(LessorTest, LosingLeadershipReleasesWaitersAndStopsExpiry) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  clock_.Advance(11s);
  std::optional<Result<int64_t>> got;
  lessor_->Renew(1, [&](Result<int64_t> r) { got.emplace(std::move(r)); });
  EXPECT_FALSE(got.has_value());
  lessor_->SetLeader(false, 2);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), Code::kNotLeader);
  EXPECT_FALSE(lessor_->IsPrimary());
  EXPECT_TRUE(lessor_->TakeExpired(100).empty());
}

TEST_F(LessorTest, PromotionGivesEveryLeaseItsFullTtlPlusExtension) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  clock_.Advance(9s);  // 1 s left under the old leader
  lessor_->SetLeader(false, 2);
  lessor_->SetLeader(true, 3);
  EXPECT_FALSE(lessor_->IsPrimary());
  // Until its empty entry is applied the new leader parks renewals.
  std::optional<Result<int64_t>> parked;
  lessor_->Renew(1, [&](Result<int64_t> r) { parked.emplace(std::move(r)); });
  EXPECT_FALSE(parked.has_value());
  lessor_->Promote(2);  // an entry of an older term promotes nothing
  EXPECT_FALSE(lessor_->IsPrimary());
  lessor_->Promote(3);
  EXPECT_TRUE(lessor_->IsPrimary());
  ASSERT_TRUE(parked.has_value() && parked->ok());
  clock_.Advance(10s);  // renewed at promotion: 10 s left, now 0
  EXPECT_EQ(lessor_->TakeExpired(100), (std::vector<int64_t>{1}));
}

TEST_F(LessorTest, PromotionExtendsRemainingTtl) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  clock_.Advance(9s);
  lessor_->SetLeader(false, 2);
  lessor_->SetLeader(true, 3);
  lessor_->Promote(3);
  EXPECT_EQ(Ttl(1).ttl(), 11);  // 10 s TTL + 1 s extension, not the 1 s that was left
  clock_.Advance(10s);
  EXPECT_TRUE(lessor_->TakeExpired(100).empty());
  clock_.Advance(1s);
  EXPECT_EQ(lessor_->TakeExpired(100), (std::vector<int64_t>{1}));
}

TEST_F(LessorTest, RestartRebuildsLeasesAndAttachmentsFromTheStore) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Grant(2, 30).ok());
  ASSERT_TRUE(Put("a", 1).ok());
  ASSERT_TRUE(Put("b", 2).ok());
  ASSERT_TRUE(Revoke(2).ok());
  OpenLessor();
  EXPECT_EQ(lessor_->Leases(), (std::vector<int64_t>{1}));
  EXPECT_FALSE(lessor_->IsPrimary());
  BecomePrimary(1);
  auto ttl = Ttl(1);
  EXPECT_EQ(ttl.grantedttl(), 60);
  ASSERT_EQ(ttl.keys_size(), 1);
  EXPECT_EQ(ttl.keys(0), "a");
  ASSERT_TRUE(Revoke(1).ok());
  EXPECT_EQ(KeyLease("a"), std::nullopt);
}

TEST(LeaseIdGeneratorTest, IdsAreUniquePositiveAndCarryTheMemberId) {
  LeaseIdGenerator gen(0xabcd);
  std::set<int64_t> ids;
  for (int i = 0; i < 1000; ++i) {
    const int64_t id = gen.Next();
    EXPECT_GT(id, 0);
    EXPECT_EQ(static_cast<uint64_t>(id) >> 48, 0xabcdu & 0x7fff);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST_F(LessorTest, PeerCallsServeRenewAndTimeToLive) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(5, 20).ok());
  etcdserverpb::LeaseKeepAliveRequest ka;
  ka.set_id(5);
  std::optional<Result<std::string>> got;
  lessor_->ServePeerCall(kPeerRenewMethod, ka.SerializeAsString(),
                         [&](Result<std::string> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(got.has_value() && got->ok());
  etcdserverpb::LeaseKeepAliveResponse kar;
  ASSERT_TRUE(kar.ParseFromString(**got));
  EXPECT_EQ(kar.id(), 5);
  EXPECT_EQ(kar.ttl(), 20);
  etcdserverpb::LeaseTimeToLiveRequest tr;
  tr.set_id(6);
  got.reset();
  lessor_->ServePeerCall(kPeerTimeToLiveMethod, tr.SerializeAsString(),
                         [&](Result<std::string> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), Code::kLeaseNotFound);
}

// The loop hands out what expired by the injected clock: nothing while the
// fake time stands still, however many passes run, and a lost revoke again
// once revoke_retry of that time has passed.
TEST_F(LessorTest, ExpiryLoopRevokesByTheInjectedClock) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());  // due at 10 s
  ASSERT_TRUE(Grant(2, 60).ok());  // due at 60 s
  lessor_->StartExpiryLoop([this](int64_t id) { revokes_.Add(id); });
  clock_.Advance(12s);
  ASSERT_TRUE(revokes_.WaitFor(1));
  EXPECT_EQ(revokes_.Count(2), 0);
  EXPECT_EQ(revokes_.Count(1), 1);  // not retried before revoke_retry

  // The first revoke never applied: proposed again 3 s (fake) later.
  clock_.Advance(3s);
  ASSERT_TRUE(revokes_.WaitFor(1, 2));
  EXPECT_EQ(revokes_.Count(2), 0);

  ASSERT_TRUE(Revoke(1).ok());  // now it applies: 1 leaves the queue
  clock_.Advance(50s);
  ASSERT_TRUE(revokes_.WaitFor(2));
  lessor_->Stop();
  EXPECT_EQ(revokes_.Count(1), 2);
  EXPECT_EQ(revokes_.Count(2), 1);
}

TEST_F(LessorTest, StopFailsWaitingRenewals) {
  BecomePrimary(1);
  ASSERT_TRUE(Grant(1, 10).ok());
  clock_.Advance(11s);
  std::optional<Result<int64_t>> got;
  lessor_->Renew(1, [&](Result<int64_t> r) { got.emplace(std::move(r)); });
  lessor_->Stop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), Code::kStopped);
}

}  // namespace
}  // namespace etcdpp::lease
