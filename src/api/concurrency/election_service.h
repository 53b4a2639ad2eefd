// The v3electionpb.Election gRPC service (Campaign, Proclaim, Leader,
// Observe, Resign), wire-compatible with etcd 3.4: leader election on etcd's
// recipe (turn_waiter.h), served by every member through its own KV, Lease
// and Watch services (self_client.h).
//
// An election "<name>" is the keys under "<name>/"; each candidate's key is
// "<name>/<lease in hex>" holding its proposed value, and the leader is the
// candidate whose key has the smallest create revision. The LeaderKey a
// winner receives (name, key, create revision, lease) is its proof of
// leadership: Proclaim and Resign act only while that exact key exists, so a
// leader that lost its key (its lease expired) cannot overwrite a successor.
//
// Errors as etcd 3.4 sends them (gRPC code UNKNOWN): "election: not leader",
// "election: no leader", "\"leader\" field must be provided", and the
// KV/lease errors of the steps. Beyond etcd 3.4, as in lock_service.h, a
// candidate that gives up (cancelled, or its answer undeliverable) leaves no
// key behind, and one whose key vanished while it waited is not elected.
#pragma once

#include "api/concurrency/self_client.h"
#include "v3electionpb/v3election.grpc.pb.h"

namespace etcdpp::api::concurrency {

// Thread-safe: each call is its own object (election_service.cc).
class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(const SelfClientSlot* client, CallGate gate);

  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* context,
                                     const v3electionpb::CampaignRequest* request,
                                     v3electionpb::CampaignResponse* response) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* context,
                                     const v3electionpb::ProclaimRequest* request,
                                     v3electionpb::ProclaimResponse* response) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* context,
                                   const v3electionpb::LeaderRequest* request,
                                   v3electionpb::LeaderResponse* response) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* context, const v3electionpb::LeaderRequest* request) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* context,
                                   const v3electionpb::ResignRequest* request,
                                   v3electionpb::ResignResponse* response) override;

 private:
  const SelfClientSlot* const client_;
  const CallGate gate_;
};

}  // namespace etcdpp::api::concurrency
