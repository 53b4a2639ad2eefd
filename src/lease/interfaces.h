// What the lease module offers the layers above it, as interfaces so each
// side can be tested with a fake of the other.
//
// LeaseIndex is what KV writes need (server/kv_applier.h): it lives here,
// with its implementation (Lessor), so the dependency points down from the
// server to the lease module and never back up.
//
// ClientLeases is what the client API needs (api/lease_service.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::mvcc {
class WriteTxn;
}

namespace etcdpp::lease {

// The lease bookkeeping of KV writes. Attach and Detach record a key's
// lease in the same write transaction as the key, and never while a scan of
// that transaction is open (the next write invalidates LMDB cursors). An
// error from them leaves the transaction unusable. Apply thread only.
class LeaseIndex {
 public:
  virtual ~LeaseIndex() = default;
  virtual bool Exists(int64_t lease_id) const = 0;
  virtual Status Attach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) = 0;
  virtual Status Detach(mvcc::WriteTxn& txn, int64_t lease_id, std::string_view key) = 0;
};

// The client-facing lease operations that do not go through Raft.
// Thread-safe.
class ClientLeases {
 public:
  // The TTL in seconds after a renewal, or why there is none.
  using RenewCallback = std::function<void(Result<int64_t>)>;

  virtual ~ClientLeases() = default;
  // On the primary (the leader's lessor): the new TTL, or kLeaseNotFound,
  // kStopped. Elsewhere kNotLeader, and the caller asks the leader. `done`
  // may run before Renew returns.
  virtual void Renew(int64_t lease_id, RenewCallback done) = 0;
  // On the primary: remaining and granted TTL (and keys if asked).
  // kNotLeader elsewhere, kLeaseNotFound.
  virtual Status TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                            etcdserverpb::LeaseTimeToLiveResponse* resp) const = 0;
  // Every lease id, ascending; any member answers.
  virtual std::vector<int64_t> Leases() const = 0;
};

}  // namespace etcdpp::lease
