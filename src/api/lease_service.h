// The etcdserverpb.Lease gRPC service: LeaseGrant, LeaseRevoke,
// LeaseKeepAlive, LeaseTimeToLive, LeaseLeases (docs/lease.md).
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "lease/lessor.h"

namespace etcdpp::server {
class EtcdServer;
}

namespace etcdpp::api {

class LeaderMonitor;

// Grant and revoke go through Raft (EtcdServer::Propose). Keep-alive and
// time-to-live are the leader's: a follower forwards them to the leader over
// the peer transport (EtcdServer::CallLeader). LeaseLeases is answered by
// any member from its applied state. Handlers never block a gRPC thread.
class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  // `monitor` ends keep-alive streams that asked for a leader when there is none.
  LeaseService(server::EtcdServer* server, LeaderMonitor* monitor);

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
  server::EtcdServer* const server_;
  LeaderMonitor* const monitor_;
  lease::LeaseIdGenerator ids_;
};

}  // namespace etcdpp::api
