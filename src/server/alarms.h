// AlarmSet: the alarms raised in the cluster (etcd's NOSPACE and CORRUPT),
// as this member applied them.
//
// Alarms change only through Raft (an AlarmRequest entry), so every member
// applies the same changes in the same order and holds the same set. The
// apply thread changes the set and writes it to the store's meta in the
// same transaction as the entry (so it survives restart, and a snapshot
// carries it); any thread may read it. mu_ guards the set.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "etcdpppb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::mvcc {
class ReadView;
}

namespace etcdpp::server {

// The store's meta entry holding the encoded set.
inline constexpr char kAlarmsMetaKey[] = "alarm/raised";

class AlarmSet {
 public:
  // Replaces the set with the one stored in `view` (none stored: empty).
  Status Load(const mvcc::ReadView& view);

  // True iff the set changed. Apply thread only.
  bool Activate(uint64_t member_id, etcdserverpb::AlarmType type);
  bool Deactivate(uint64_t member_id, etcdserverpb::AlarmType type);

  // The alarms of `type` (NONE: all), ordered by member, then type.
  std::vector<etcdserverpb::AlarmMember> List(
      etcdserverpb::AlarmType type = etcdserverpb::NONE) const;
  bool Raised(etcdserverpb::AlarmType type) const;
  // The meta value for the current set.
  std::string Encode() const;

 private:
  mutable std::mutex mu_;
  std::set<std::pair<uint64_t, int>> raised_;  // guarded by mu_: (member, AlarmType)
};

// What a write costs against the backend quota, in bytes, as etcd counts it:
// puts cost their key and value plus a fixed overhead, a lease grant a fixed
// overhead, a txn the puts of both its branches; everything else (reads,
// deletes, compaction) costs nothing and so is served above the quota.
uint64_t QuotaCost(const internalpb::InternalRaftRequest& request);

// True for the requests a cluster with CORRUPT raised refuses, as etcd's
// does: every KV and lease change and compaction. Alarm, auth and
// membership requests still go through, so the alarm can be disarmed;
// reads are never proposed, so they are served.
bool RefusedWhileCorrupt(const internalpb::InternalRaftRequest& request);

}  // namespace etcdpp::server
