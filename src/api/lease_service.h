// The etcdserverpb.Lease gRPC service: LeaseGrant, LeaseRevoke,
// LeaseKeepAlive, LeaseTimeToLive, LeaseLeases (docs/lease.md).
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "lease/interfaces.h"
#include "lease/lessor.h"
#include "server/interfaces.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

class LeaderMonitor;

// The parts of the member the lease service uses. Not owned; they outlive
// the service and every stream it opened.
struct LeaseServiceDeps {
  server::Proposer* proposer;
  const server::ClusterView* cluster;
  server::LeaderChannel* leader;
  lease::ClientLeases* leases;
  // May be null (no auth): revokes are then proposed without a sender.
  const auth::AuthStore* auth;
};

// Grant and revoke are proposed through Raft. Keep-alive and time-to-live
// belong to the leader's lessor: a follower passes them to the leader over
// the peer transport. Any member answers LeaseLeases from its applied
// state. No handler blocks a gRPC thread.
class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  // `monitor` ends keep-alive streams that asked for a leader when there is none.
  LeaseService(LeaseServiceDeps deps, LeaderMonitor* monitor);

  // The parts keep-alives are answered with (also by the HTTP/2 front).
  const LeaseServiceDeps* deps() const { return &deps_; }

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* context,
                                       const etcdserverpb::LeaseGrantRequest* request,
                                       etcdserverpb::LeaseGrantResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseRevokeRequest* request,
                                        etcdserverpb::LeaseRevokeResponse* response) override;
  // One request at a time per stream, as etcd: read, renew, write, read...
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(
      grpc::CallbackServerContext* context, const etcdserverpb::LeaseTimeToLiveRequest* request,
      etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseLeasesRequest* request,
                                        etcdserverpb::LeaseLeasesResponse* response) override;

 private:
  const LeaseServiceDeps deps_;
  LeaderMonitor* const monitor_;
  lease::LeaseIdGenerator ids_;
};

}  // namespace etcdpp::api
