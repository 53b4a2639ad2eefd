// Lessor: etcd's leases (LeaseGrant, LeaseRevoke, keep-alive, TimeToLive,
// LeaseLeases) on top of the MVCC store. Design notes: docs/lease.md.
//
// State and where it lives:
//  - Replicated state (which leases exist, their granted TTL, which keys are
//    attached) changes only by applying Raft entries, and is persisted in two
//    LMDB tables written in the apply transaction, so the store's consistent
//    index covers it exactly like the key space (format below). A restart or
//    a snapshot install rebuilds the in-memory table from them (Recover).
//  - Deadlines are not replicated (as in etcd 3.4): only the leader, once
//    "primary", tracks them, in a LeaseExpiryQueue. Followers keep every lease
//    forever. When a member becomes leader and has applied every entry of
//    earlier terms (the empty entry of its term), Promote gives every lease its
//    full TTL plus an extension (the election timeout): a leader change never
//    cuts a lease short. Losing leadership (SetLeader(false)) drops all
//    deadlines again.
//  - Expiry is decided by the primary only: the expiry loop takes expired
//    leases from the top of the queue (never a scan) and hands them to a
//    callback that proposes LeaseRevoke through Raft; the revoke deletes the
//    keys when applied on every member. A revoke that is lost is proposed
//    again after revoke_retry.
//
// On-disk format (tables of the store's LMDB environment):
//   table `lease`:      BE64(id)        -> BE64(granted ttl in seconds)
//   table `lease_keys`: BE64(id) || key -> "" (one record per attached key)
// Invariant (after each applied entry): a live key with lease L has exactly
// one record L||key in `lease_keys`, and L has a record in `lease`.
//
// Threads: Grant, Revoke, Attach, Detach, Exists and Promote run on the apply
// thread inside the apply WriteTxn; SetLeader on the raft loop thread; Renew,
// TimeToLive, Leases, ServePeerCall on any thread. All in-memory state is
// guarded by mu_. Callbacks (RenewCallback, PeerCallDone, the revoke callback)
// are always called without mu_ held.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/expiry_queue.h"
#include "lease/interfaces.h"
#include "mvcc/kv_store.h"

namespace etcdpp::lease {

// etcd's MaxLeaseTTL: larger grants fail with kLeaseTTLTooLarge.
inline constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;

// etcd's minimum lease TTL: 1.5 election timeouts (in whole ticks), rounded
// up to whole seconds. Shorter grants are raised to it, so a lease outlives
// one leader election.
int64_t MinLeaseTtlSeconds(std::chrono::milliseconds heartbeat,
                           std::chrono::milliseconds election_timeout);

struct LessorOptions {
  int64_t min_ttl_seconds = 1;
  // Added to every TTL when the member becomes primary (etcd: the election
  // timeout).
  std::chrono::milliseconds promote_extension{1000};
  // How often (in real time) the expiry loop looks at the top of the expiry
  // queue (etcd: 500 ms). Whether a lease has expired is decided by `clock`,
  // so a test that moves a fake clock sees the revoke within one interval.
  std::chrono::milliseconds check_interval{500};
  // An expired lease whose revoke was proposed but that still exists is
  // proposed again after this long (etcd: 3 s).
  std::chrono::milliseconds revoke_retry{3000};
  // At most this many revokes are proposed per second (etcd's
  // leaseRevokeRate), so a mass expiry cannot flood the Raft log.
  size_t max_revokes_per_second = 1000;
  // Every deadline (expiry, TTL left, revoke retry) is measured on it. Null
  // means Clock::Real(). Not owned; must outlive the lessor.
  Clock* clock = nullptr;
};

// Methods of the peer calls a follower sends the leader (EtcdServer routes
// them to ServePeerCall). Bodies are the etcdserverpb request / response.
inline constexpr char kPeerRenewMethod[] = "lease/renew";     // LeaseKeepAlive{Request,Response}
inline constexpr char kPeerTimeToLiveMethod[] = "lease/ttl";  // LeaseTimeToLive{Request,Response}

// Picks the IDs of LeaseGrant requests with ID 0 on the member that
// proposes them: positive, and never the same as another member's (etcd's
// idutil: 16 bits of member ID, then a millisecond timestamp and a counter).
// Thread-safe.
class LeaseIdGenerator {
 public:
  explicit LeaseIdGenerator(uint64_t member_id);
  int64_t Next();

 private:
  const uint64_t prefix_;
  std::atomic<uint64_t> suffix_;
};

class Lessor final : public LeaseIndex, public ClientLeases {
 public:
  using TimePoint = Clock::TimePoint;
  // The TTL in seconds after a successful renewal, or the error.
  using PeerCallDone = std::function<void(Result<std::string>)>;

  // The store the lessor reads (TimeToLive's keys, Recover); called for each
  // use, so a replaced store is picked up.
  using StoreProvider = std::function<std::shared_ptr<mvcc::KvStore>()>;

  // Loads the leases persisted in the store.
  static Result<std::unique_ptr<Lessor>> Open(StoreProvider store, LessorOptions options);
  ~Lessor() override;
  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;

  // Rebuilds the in-memory table from the store (after the store was
  // replaced by a snapshot install). Drops all deadlines (not primary) and
  // fails waiting renewals with kNotLeader (their callers retry on the leader).
  Status Recover();

  // ---- Apply thread, inside the apply WriteTxn.
  // etcd's Grant: id 0 is kLeaseNotFound (the proposer picks IDs), a TTL
  // above kMaxLeaseTtlSeconds kLeaseTTLTooLarge, an existing id kLeaseExist;
  // a TTL below the minimum is raised to it. Consumes no revision.
  Status Grant(mvcc::WriteTxn& txn, const etcdserverpb::LeaseGrantRequest& req,
               etcdserverpb::LeaseGrantResponse* resp);
  // Deletes every attached key in ONE revision (none if no key is attached)
  // and forgets the lease. kLeaseNotFound if it does not exist. Renewals
  // waiting for this lease's revoke get kLeaseNotFound.
  Status Revoke(mvcc::WriteTxn& txn, const etcdserverpb::LeaseRevokeRequest& req,
                etcdserverpb::LeaseRevokeResponse* resp);
  // LeaseIndex (KvApplier's puts and deletes).
  bool Exists(int64_t lease_id) const override;
  Status Attach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) override;
  Status Detach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) override;
  // Apply thread: the keys attached to the lease, in key order, as of
  // `txn` (the auth check of a revoke needs them before anything changes).
  Result<std::vector<std::string>> AttachedKeys(mvcc::WriteTxn& txn, int64_t lease_id) const;
  // The empty entry of `term` was applied: if this member is still the leader
  // of that term, it becomes primary (every lease: full TTL + extension).
  void Promote(uint64_t term);

  // ---- Raft loop thread: leadership as Raft reports it.
  void SetLeader(bool is_leader, uint64_t term);

  // ---- Any thread.
  bool IsPrimary() const;
  // etcd's LeaseRenew on the primary: the TTL, kLeaseNotFound, kStopped, or
  // kNotLeader when this member is not primary (the caller forwards to the
  // leader). A renewal of an expired lease waits until its revoke is applied
  // (then kLeaseNotFound) or leadership is lost (kNotLeader). A leader not
  // yet promoted answers once promoted. `done` may run before Renew returns.
  void Renew(int64_t lease_id, RenewCallback done) override;
  // The primary's view: TTL = whole seconds left, granted TTL, and the
  // attached keys if asked. kNotLeader if not primary, kLeaseNotFound.
  Status TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                    etcdserverpb::LeaseTimeToLiveResponse* resp) const override;
  // Every lease ID, soonest expiry first, as etcd 3.4 lists them (LeaseLeases
  // output is compared with etcd's); leases without a deadline here (not
  // primary) come last, by ID. Served by any member.
  std::vector<int64_t> Leases() const override;
  size_t size() const;
  // Serves a follower's forwarded call (kPeer*Method).
  void ServePeerCall(const std::string& method, const std::string& body, PeerCallDone done);

  // ---- Expiry.
  // The primary's expired leases, at most `max`, earliest first; each is
  // rescheduled revoke_retry later in case its revoke is lost.
  std::vector<int64_t> TakeExpired(size_t max);
  // Starts the loop that every check_interval hands expired leases to
  // `revoke` (which proposes LeaseRevoke and must not block).
  void StartExpiryLoop(std::function<void(int64_t lease_id)> revoke);
  // Stops the loop; waiting and later renewals get kStopped. Idempotent.
  void Stop();

 private:
  struct Lease {
    int64_t ttl = 0;  // Granted TTL, seconds.
    // Deadline while primary; TimePoint::max() otherwise.
    TimePoint expiry = TimePoint::max();
  };
  using Waiters = std::vector<std::pair<RenewCallback, Status>>;

  Lessor(StoreProvider store, LessorOptions options);
  TimePoint Now() const { return clock_->Now(); }
  // Requires mu_. Forgets every deadline; moves waiting renewals to `out`
  // with kNotLeader.
  void DemoteLocked(Waiters* out);
  // Requires mu_. Renews or parks the renewal; a finished one goes to `out`.
  void RenewLocked(int64_t lease_id, RenewCallback done, Waiters* out,
                   std::vector<std::pair<RenewCallback, int64_t>>* renewed);
  void ExpiryLoop(std::function<void(int64_t)> revoke);

  const StoreProvider store_;
  const LessorOptions options_;
  Clock* const clock_;  // options_.clock, or the real one

  mutable std::mutex mu_;
  std::unordered_map<int64_t, Lease> leases_;  // guarded by mu_
  LeaseExpiryQueue queue_;                     // guarded by mu_: only while primary_
  bool is_leader_ = false;                     // guarded by mu_
  uint64_t leader_term_ = 0;                   // guarded by mu_
  bool primary_ = false;                       // guarded by mu_
  bool stopped_ = false;                       // guarded by mu_
  // Renewals of expired leases, waiting for the revoke (guarded by mu_).
  std::unordered_map<int64_t, std::vector<RenewCallback>> revoke_waiters_;
  // Renewals that reached the leader before its promotion (guarded by mu_).
  std::vector<std::pair<int64_t, RenewCallback>> promotion_waiters_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool loop_stop_ = false;  // guarded by loop_mu_
  std::thread loop_;
};

}  // namespace etcdpp::lease
