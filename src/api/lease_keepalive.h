// One lease keep-alive, whatever carries it: the gRPC Lease service's
// LeaseKeepAlive stream (lease_service.cc) and the HTTP/2 front's native
// one (h2front/lease_keepalive_stream.h) both answer through this, so the
// two cannot drift apart in header, forwarding or error mapping.
#pragma once

#include <functional>

#include "api/lease_service.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::api {

// cluster_id, member_id, raft_term and this member's current revision: the
// header of lease responses answered by this member.
void FillLeaseHeader(const LeaseServiceDeps* member, etcdserverpb::ResponseHeader* header);

// kNotLeader from the leader means it stopped being primary meanwhile: the
// client should retry, so it becomes kLeaderChanged (UNAVAILABLE).
Status RetryableLeaderError(const Status& st);

// Renews `id` on the primary lessor: this member's, or the leader's over
// the peer transport when this one is not primary. `done` runs once, on
// whatever thread answered (possibly before this returns).
void RenewAnywhere(const LeaseServiceDeps* member, int64_t id,
                   std::function<void(Result<int64_t>)> done);

// One keep-alive request: fills `response` (ID and the header, taken before
// the renewal so it never names a revision later than the renewal), renews,
// sets the TTL, and calls `done` once with OK (write `response`) or the
// error that ends the stream. A lease that does not exist answers TTL 0,
// not an error. `response` must live until `done` runs.
void KeepAliveOnce(const LeaseServiceDeps* member, int64_t id,
                   etcdserverpb::LeaseKeepAliveResponse* response,
                   std::function<void(const Status&)> done);

}  // namespace etcdpp::api
