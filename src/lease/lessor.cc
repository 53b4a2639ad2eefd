#include "lease/lessor.h"

#include <algorithm>

#include "base/coding.h"

namespace etcdpp::lease {
namespace {

constexpr char kLeaseTable[] = "lease";
constexpr char kLeaseKeysTable[] = "lease_keys";
// Keys a revoke deletes between two looks at its attachments.
constexpr size_t kRevokeChunkKeys = 1024;

std::string IdKey(int64_t id) {
  std::string out(8, '\0');
  PutBE64(out.data(), static_cast<uint64_t>(id));
  return out;
}

std::string AttachmentKey(int64_t id, std::string_view key) {
  std::string out = IdKey(id);
  out.append(key);
  return out;
}

// Runs finished renewals outside the lock.
void RunAll(std::vector<std::pair<Lessor::RenewCallback, Status>>& failed,
            std::vector<std::pair<Lessor::RenewCallback, int64_t>>& renewed) {
  for (auto& [done, status] : failed) done(status);
  for (auto& [done, ttl] : renewed) done(ttl);
}

}  // namespace

int64_t MinLeaseTtlSeconds(std::chrono::milliseconds heartbeat,
                           std::chrono::milliseconds election_timeout) {
  if (heartbeat.count() <= 0) return 1;
  const int64_t election_ticks = election_timeout.count() / heartbeat.count();
  const int64_t min_ms = (3 * election_ticks) / 2 * heartbeat.count();
  return std::max<int64_t>(1, (min_ms + 999) / 1000);
}

LeaseIdGenerator::LeaseIdGenerator(uint64_t member_id)
    : prefix_((member_id & 0xffff) << 48),
      suffix_((static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()) &
               ((uint64_t{1} << 40) - 1))
              << 8) {}

int64_t LeaseIdGenerator::Next() {
  for (;;) {
    const uint64_t suffix = (suffix_.fetch_add(1) + 1) & ((uint64_t{1} << 48) - 1);
    const uint64_t id = (prefix_ | suffix) & static_cast<uint64_t>(INT64_MAX);
    if (id != 0) return static_cast<int64_t>(id);
  }
}

Lessor::Lessor(StoreProvider store, LessorOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::Real()) {}

Result<std::unique_ptr<Lessor>> Lessor::Open(StoreProvider store, LessorOptions options) {
  std::unique_ptr<Lessor> lessor(new Lessor(std::move(store), std::move(options)));
  ETCDPP_RETURN_IF_ERROR(lessor->Recover());
  return lessor;
}

Lessor::~Lessor() { Stop(); }

Status Lessor::Recover() {
  std::unordered_map<int64_t, Lease> loaded;
  std::shared_ptr<mvcc::KvStore> store = store_();
  auto read = store->Read();
  if (!read.ok()) return read.status();
  auto table = (*read)->OpenTable(kLeaseTable);
  if (table.ok()) {
    mvcc::Cursor c = table->NewCursor();
    for (bool on = c.SeekFirst(); on; on = c.Next()) {
      if (c.key().size() != 8 || c.value().size() != 8) {
        return Status::Corruption("lease: malformed record in table `lease`");
      }
      const auto id = static_cast<int64_t>(GetBE64(c.key().data()));
      loaded[id] = Lease{static_cast<int64_t>(GetBE64(c.value().data())), TimePoint::max()};
    }
    ETCDPP_RETURN_IF_ERROR(c.status());
  } else if (table.status().code() != Code::kNotFound) {
    return table.status();
  }
  Waiters failed;
  std::vector<std::pair<RenewCallback, int64_t>> renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DemoteLocked(&failed);
    leases_ = std::move(loaded);
  }
  RunAll(failed, renewed);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Apply thread

Status Lessor::Grant(mvcc::WriteTxn& txn, const etcdserverpb::LeaseGrantRequest& req,
                     etcdserverpb::LeaseGrantResponse* resp) {
  const int64_t id = req.id();
  if (id == 0) return Status(Code::kLeaseNotFound);
  if (req.ttl() > kMaxLeaseTtlSeconds) return Status(Code::kLeaseTTLTooLarge);
  if (Exists(id)) return Status(Code::kLeaseExist);
  const int64_t ttl = std::max(req.ttl(), options_.min_ttl_seconds);
  auto table = txn.OpenTable(kLeaseTable);
  if (!table.ok()) return table.status();
  std::string value(8, '\0');
  PutBE64(value.data(), static_cast<uint64_t>(ttl));
  ETCDPP_RETURN_IF_ERROR(table->Put(IdKey(id), value));
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lease& lease = leases_[id];
    lease.ttl = ttl;
    if (primary_) {
      lease.expiry = Now() + std::chrono::seconds(ttl);
      queue_.Upsert(id, lease.expiry);
    }
  }
  resp->set_id(id);
  resp->set_ttl(ttl);
  resp->mutable_header()->set_revision(txn.Rev());
  return Status::OK();
}

Status Lessor::Revoke(mvcc::WriteTxn& txn, const etcdserverpb::LeaseRevokeRequest& req,
                      etcdserverpb::LeaseRevokeResponse* resp) {
  const int64_t id = req.id();
  if (!Exists(id)) return Status(Code::kLeaseNotFound);
  auto attachments = txn.OpenTable(kLeaseKeysTable);
  if (!attachments.ok()) return attachments.status();
  // One revision for all keys (etcd's revoke is one TxnWrite), in key
  // order, a chunk at a time: a lease may hold very many keys, and a copy
  // of them all, or the store's pages their deletes map, would stay with
  // the member. Keys are collected before they are deleted (LMDB's views
  // do not survive writes); a chunk's attachments go with it, so the next
  // chunk starts at the lease's first remaining one.
  const std::string prefix = IdKey(id);
  std::vector<std::string> keys;
  bool began = false;
  Status st;
  for (bool more = true; more && st.ok();) {
    keys.clear();
    {
      mvcc::Cursor c = attachments->NewCursor();
      for (bool on = c.Seek(prefix); on && c.key().starts_with(prefix); on = c.Next()) {
        keys.emplace_back(c.key().substr(prefix.size()));
        if (keys.size() == kRevokeChunkKeys) break;
      }
      st = c.status();
    }
    if (!st.ok() || keys.empty()) break;
    if (!began) txn.BeginRevision();
    began = true;
    for (const std::string& key : keys) {
      auto n = txn.DeleteRange(key, {});
      if (!n.ok()) {
        st = n.status();
        break;
      }
      st = attachments->Delete(AttachmentKey(id, key));
      if (!st.ok()) break;
    }
    txn.ReleaseWalkedPages();
    more = keys.size() == kRevokeChunkKeys;
  }
  if (began) txn.EndRevision();
  ETCDPP_RETURN_IF_ERROR(st);
  auto table = txn.OpenTable(kLeaseTable);
  if (!table.ok()) return table.status();
  ETCDPP_RETURN_IF_ERROR(table->Delete(prefix));

  std::vector<RenewCallback> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.erase(id);
    queue_.Remove(id);
    auto it = revoke_waiters_.find(id);
    if (it != revoke_waiters_.end()) {
      waiting = std::move(it->second);
      revoke_waiters_.erase(it);
    }
  }
  for (RenewCallback& done : waiting) done(Status(Code::kLeaseNotFound));
  resp->mutable_header()->set_revision(txn.Rev());
  return Status::OK();
}

bool Lessor::Exists(int64_t lease_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.count(lease_id) != 0;
}

Result<std::vector<std::string>> Lessor::AttachedKeys(mvcc::WriteTxn& txn, int64_t lease_id) const {
  auto table = txn.OpenTable(kLeaseKeysTable);
  if (!table.ok()) return table.status();
  const std::string prefix = IdKey(lease_id);
  std::vector<std::string> keys;
  mvcc::Cursor c = table->NewCursor();
  for (bool on = c.Seek(prefix); on && c.key().starts_with(prefix); on = c.Next()) {
    keys.emplace_back(c.key().substr(prefix.size()));
  }
  ETCDPP_RETURN_IF_ERROR(c.status());
  return keys;
}

Status Lessor::Attach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) {
  auto table = txn.OpenTable(kLeaseKeysTable);
  if (!table.ok()) return table.status();
  return table->Put(AttachmentKey(lease_id, key), {});
}

Status Lessor::Detach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) {
  auto table = txn.OpenTable(kLeaseKeysTable);
  if (!table.ok()) return table.status();
  return table->Delete(AttachmentKey(lease_id, key));
}

void Lessor::Promote(uint64_t term) {
  std::vector<std::pair<int64_t, RenewCallback>> parked;
  Waiters failed;
  std::vector<std::pair<RenewCallback, int64_t>> renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!is_leader_ || term != leader_term_ || primary_) return;
    primary_ = true;
    const TimePoint base = Now() + options_.promote_extension;
    std::vector<LeaseExpiryQueue::Item> items;
    items.reserve(leases_.size());
    for (auto& [id, lease] : leases_) {
      lease.expiry = base + std::chrono::seconds(lease.ttl);
      items.push_back({lease.expiry, id});
    }
    queue_.Reset(std::move(items));
    parked.swap(promotion_waiters_);
    for (auto& [id, done] : parked) RenewLocked(id, std::move(done), &failed, &renewed);
  }
  RunAll(failed, renewed);
}

// ---------------------------------------------------------------------------
// Raft loop thread

void Lessor::SetLeader(bool is_leader, uint64_t term) {
  Waiters failed;
  std::vector<std::pair<RenewCallback, int64_t>> renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A new term ends whatever the previous one promoted.
    if (!is_leader || term != leader_term_) DemoteLocked(&failed);
    is_leader_ = is_leader;
    if (is_leader) leader_term_ = term;
  }
  RunAll(failed, renewed);
}

void Lessor::DemoteLocked(Waiters* out) {
  if (primary_) {
    primary_ = false;
    for (auto& [id, lease] : leases_) lease.expiry = TimePoint::max();
    queue_.Clear();
  }
  for (auto& [id, waiting] : revoke_waiters_) {
    for (RenewCallback& done : waiting)
      out->emplace_back(std::move(done), Status(Code::kNotLeader));
  }
  revoke_waiters_.clear();
  for (auto& [id, done] : promotion_waiters_) {
    out->emplace_back(std::move(done), Status(Code::kNotLeader));
  }
  promotion_waiters_.clear();
}

// ---------------------------------------------------------------------------
// Any thread

bool Lessor::IsPrimary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return primary_;
}

void Lessor::Renew(int64_t lease_id, RenewCallback done) {
  Waiters failed;
  std::vector<std::pair<RenewCallback, int64_t>> renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RenewLocked(lease_id, std::move(done), &failed, &renewed);
  }
  RunAll(failed, renewed);
}

void Lessor::RenewLocked(int64_t lease_id, RenewCallback done, Waiters* out,
                         std::vector<std::pair<RenewCallback, int64_t>>* renewed) {
  if (stopped_) {
    out->emplace_back(std::move(done), Status(Code::kStopped));
    return;
  }
  if (!primary_) {
    if (is_leader_) {
      promotion_waiters_.emplace_back(lease_id, std::move(done));
    } else {
      out->emplace_back(std::move(done), Status(Code::kNotLeader));
    }
    return;
  }
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    out->emplace_back(std::move(done), Status(Code::kLeaseNotFound));
    return;
  }
  const TimePoint now = Now();
  if (it->second.expiry <= now) {
    // Its revoke is (or is about to be) on its way through Raft: renewing
    // now would hand out a TTL for a lease about to vanish.
    revoke_waiters_[lease_id].push_back(std::move(done));
    return;
  }
  it->second.expiry = now + std::chrono::seconds(it->second.ttl);
  queue_.Upsert(lease_id, it->second.expiry);
  renewed->emplace_back(std::move(done), it->second.ttl);
}

Status Lessor::TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                          etcdserverpb::LeaseTimeToLiveResponse* resp) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!primary_) return Status(Code::kNotLeader);
    auto it = leases_.find(req.id());
    if (it == leases_.end()) return Status(Code::kLeaseNotFound);
    // etcd: int64(Remaining().Seconds()), truncated toward zero.
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(it->second.expiry - Now());
    resp->set_id(req.id());
    resp->set_ttl(left.count());
    resp->set_grantedttl(it->second.ttl);
  }
  if (!req.keys()) return Status::OK();
  std::shared_ptr<mvcc::KvStore> store = store_();
  auto read = store->Read();
  if (!read.ok()) return read.status();
  auto table = (*read)->OpenTable(kLeaseKeysTable);
  if (!table.ok()) {
    return table.status().code() == Code::kNotFound ? Status::OK() : table.status();
  }
  const std::string prefix = IdKey(req.id());
  mvcc::Cursor c = table->NewCursor();
  for (bool on = c.Seek(prefix); on && c.key().starts_with(prefix); on = c.Next()) {
    resp->add_keys(std::string(c.key().substr(prefix.size())));
  }
  return c.status();
}

std::vector<int64_t> Lessor::Leases() const {
  std::vector<std::pair<TimePoint, int64_t>> by_expiry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_expiry.reserve(leases_.size());
    for (const auto& [id, lease] : leases_) by_expiry.emplace_back(lease.expiry, id);
  }
  std::sort(by_expiry.begin(), by_expiry.end());
  std::vector<int64_t> ids;
  ids.reserve(by_expiry.size());
  for (const auto& [expiry, id] : by_expiry) ids.push_back(id);
  return ids;
}

size_t Lessor::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.size();
}

void Lessor::ServePeerCall(const std::string& method, const std::string& body, PeerCallDone done) {
  if (method == kPeerRenewMethod) {
    etcdserverpb::LeaseKeepAliveRequest req;
    if (!req.ParseFromString(body)) {
      done(Status::InvalidArgument("lease: malformed forwarded keep-alive"));
      return;
    }
    const int64_t id = req.id();
    Renew(id, [id, done = std::move(done)](Result<int64_t> ttl) {
      if (!ttl.ok()) {
        done(ttl.status());
        return;
      }
      etcdserverpb::LeaseKeepAliveResponse resp;
      resp.set_id(id);
      resp.set_ttl(*ttl);
      done(resp.SerializeAsString());
    });
    return;
  }
  if (method == kPeerTimeToLiveMethod) {
    etcdserverpb::LeaseTimeToLiveRequest req;
    if (!req.ParseFromString(body)) {
      done(Status::InvalidArgument("lease: malformed forwarded time-to-live"));
      return;
    }
    etcdserverpb::LeaseTimeToLiveResponse resp;
    Status st = TimeToLive(req, &resp);
    if (!st.ok()) {
      done(st);
      return;
    }
    done(resp.SerializeAsString());
    return;
  }
  done(Status::Unimplemented("lease: unknown peer call " + method));
}

// ---------------------------------------------------------------------------
// Expiry

std::vector<int64_t> Lessor::TakeExpired(size_t max) {
  std::vector<int64_t> expired;
  std::lock_guard<std::mutex> lock(mu_);
  if (!primary_) return expired;
  const TimePoint now = Now();
  while (!queue_.empty() && expired.size() < max && queue_.Top().at <= now) {
    const int64_t id = queue_.Top().id;
    queue_.Upsert(id, now + options_.revoke_retry);
    expired.push_back(id);
  }
  return expired;
}

void Lessor::StartExpiryLoop(std::function<void(int64_t)> revoke) {
  loop_ = std::thread([this, revoke = std::move(revoke)] { ExpiryLoop(revoke); });
}

void Lessor::ExpiryLoop(std::function<void(int64_t)> revoke) {
  const auto per_pass = static_cast<size_t>(
      std::max<int64_t>(1, static_cast<int64_t>(options_.max_revokes_per_second) *
                               options_.check_interval.count() / 1000));
  std::unique_lock<std::mutex> lock(loop_mu_);
  while (!loop_stop_) {
    loop_cv_.wait_for(lock, options_.check_interval, [this] { return loop_stop_; });
    if (loop_stop_) break;
    lock.unlock();
    for (int64_t id : TakeExpired(per_pass)) revoke(id);
    lock.lock();
  }
}

void Lessor::Stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    loop_stop_ = true;
  }
  loop_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  Waiters failed;
  std::vector<std::pair<RenewCallback, int64_t>> renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    for (auto& [id, waiting] : revoke_waiters_) {
      for (RenewCallback& done : waiting) {
        failed.emplace_back(std::move(done), Status(Code::kStopped));
      }
    }
    revoke_waiters_.clear();
    for (auto& [id, done] : promotion_waiters_) {
      failed.emplace_back(std::move(done), Status(Code::kStopped));
    }
    promotion_waiters_.clear();
  }
  RunAll(failed, renewed);
}

}  // namespace etcdpp::lease
