// The etcdserverpb.Maintenance and etcdserverpb.Cluster gRPC services.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"

#include "server/interfaces.h"

namespace etcdpp::auth {
class AuthStore;
}

namespace etcdpp::api {

// The etcd API version etcdpp implements, reported where etcd reports its own
// version (Status.version, /version), since clients gate features on it.
inline constexpr char kEtcdApiVersion[] = "3.4.0";

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  // Not owned; all outlive the service. Without `backend`, Defragment and
  // alarm changes answer UNIMPLEMENTED and no alarm is listed. With `auth`
  // (may be null), HashKV needs the root role, as in etcd 3.4 (MoveLeader
  // does not). With `barrier`, an alarm GET waits for a ReadIndex first, so
  // it sees every alarm raised before it was asked (etcd puts the GET
  // through Raft for the same reason); without, it lists what is applied.
  MaintenanceService(const server::ClusterView* cluster, server::ClusterAdmin* admin,
                     server::BackendAdmin* backend = nullptr, const auth::AuthStore* auth = nullptr,
                     server::ReadBarrier* barrier = nullptr)
      : cluster_(cluster), admin_(admin), backend_(backend), auth_(auth), barrier_(barrier) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* context,
                                   const etcdserverpb::HashKVRequest* request,
                                   etcdserverpb::HashKVResponse* response) override;
  // The hash of the whole backend (etcd's Hash): mvcc::KvStore::HashBackend.
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* context,
                                 const etcdserverpb::HashRequest* request,
                                 etcdserverpb::HashResponse* response) override;
  // GET lists the alarms after a ReadIndex (linearizable); ACTIVATE and
  // DEACTIVATE go through Raft.
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* context,
                                  const etcdserverpb::AlarmRequest* request,
                                  etcdserverpb::AlarmResponse* response) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* context,
                                       const etcdserverpb::DefragmentRequest* request,
                                       etcdserverpb::DefragmentResponse* response) override;
  // A compacted copy of the store as of one read transaction, in chunks of
  // 32 KiB with remaining_bytes counting down, then one last message whose
  // blob is the SHA-256 of everything before it (what etcdctl's snapshot
  // restore checks). The copy goes to an unnamed temporary file next to the
  // store first, so writes are never held up by a slow client.
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* context, const etcdserverpb::SnapshotRequest* request) override;
  // Leader only ("etcdserver: not leader"); waits until the target leads or
  // the client's deadline (at most the server's request timeout) passes.
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MoveLeaderRequest* request,
                                       etcdserverpb::MoveLeaderResponse* response) override;

 private:
  const server::ClusterView* const cluster_;
  server::ClusterAdmin* const admin_;
  server::BackendAdmin* const backend_;
  const auth::AuthStore* const auth_;
  server::ReadBarrier* const barrier_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  // Not owned; all outlive the service. With `auth` (may be null),
  // membership changes need the root role, as in etcd.
  ClusterService(const server::ClusterView* cluster, server::ClusterAdmin* admin,
                 const auth::AuthStore* auth = nullptr)
      : cluster_(cluster), admin_(admin), auth_(auth) {}

  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;
  // Membership changes (docs/membership.md): each answers once the change is
  // applied on this member, with the membership after it.
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* context,
                                      const etcdserverpb::MemberAddRequest* request,
                                      etcdserverpb::MemberAddResponse* response) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* context,
                                         const etcdserverpb::MemberRemoveRequest* request,
                                         etcdserverpb::MemberRemoveResponse* response) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* context,
                                         const etcdserverpb::MemberUpdateRequest* request,
                                         etcdserverpb::MemberUpdateResponse* response) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* context,
                                          const etcdserverpb::MemberPromoteRequest* request,
                                          etcdserverpb::MemberPromoteResponse* response) override;

 private:
  const server::ClusterView* const cluster_;
  server::ClusterAdmin* const admin_;
  const auth::AuthStore* const auth_;
};

}  // namespace etcdpp::api
