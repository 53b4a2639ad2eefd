#include "api/maintenance_service.h"

#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "mvcc/kv_store.h"

namespace etcdpp::api {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kYes)) return refused;
  cluster_->FillHeader(response->mutable_header());
  std::shared_ptr<mvcc::KvStore> store = cluster_->store();
  response->mutable_header()->set_revision(store->CurrentRevision());
  response->set_version(kEtcdApiVersion);
  response->set_dbsize(store->DbSizeBytes());
  response->set_dbsizeinuse(store->DbSizeInUseBytes());
  response->set_leader(cluster_->leader_id());
  response->set_raftindex(cluster_->commit_index());
  response->set_raftterm(cluster_->term());
  response->set_raftappliedindex(cluster_->applied_index());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The view must not outlive the store it reads.
  std::shared_ptr<mvcc::KvStore> store = cluster_->store();
  auto view = store->Read();
  if (!view.ok()) {
    reactor->Finish(ToGrpcStatus(view.status()));
    return reactor;
  }
  auto hash = (*view)->HashKV(request->revision());
  if (!hash.ok()) {
    reactor->Finish(ToGrpcStatus(hash.status()));
    return reactor;
  }
  cluster_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(hash->rev);
  response->set_hash(hash->hash);
  response->set_compact_revision(hash->compact_rev);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::AlarmRequest* request,
                                                    etcdserverpb::AlarmResponse*) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->action() != etcdserverpb::AlarmRequest::GET) {
    reactor->Finish(ToGrpcStatus(Status::Unimplemented("alarm activation is not supported yet")));
    return reactor;
  }
  // No alarm is ever raised yet (NOSPACE comes with quota enforcement).
  // etcd's Alarm reply has no header (it is built by the applier, which
  // leaves it unset): clients see an empty message.
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(
    grpc::CallbackServerContext* context, const etcdserverpb::MoveLeaderRequest* request,
    etcdserverpb::MoveLeaderResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto timeout = cluster_->request_timeout();
  const auto client_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  if (client_left > std::chrono::milliseconds(0) && client_left < timeout) timeout = client_left;
  const server::ClusterView* cluster = cluster_;
  admin_->MoveLeader(
      request->targetid(), timeout, [cluster, reactor, response](const etcdpp::Status& st) {
        if (st.ok()) {
          cluster->FillHeader(response->mutable_header());
          response->mutable_header()->set_revision(cluster->store()->CurrentRevision());
        }
        reactor->Finish(ToGrpcStatus(st));
      });
  return reactor;
}

namespace {

template <typename Response>
void FillMembers(const server::ClusterView* server, Response* response) {
  // etcd's Cluster replies carry no revision (its header has only IDs and term).
  server->FillHeader(response->mutable_header());
  for (const server::Member& m : server->Members()) {
    etcdserverpb::Member* out = response->add_members();
    out->set_id(m.id);
    out->set_name(m.name);
    for (const std::string& u : m.peer_urls) out->add_peerurls(u);
    for (const std::string& u : m.client_urls) out->add_clienturls(u);
    out->set_islearner(m.is_learner);
  }
}

// The callback for a membership change: answers with the members after it.
template <typename Response>
server::ProposeCallback FinishWithMembers(const server::ClusterView* server,
                                          grpc::ServerUnaryReactor* reactor, Response* response) {
  return [server, reactor, response](const etcdpp::Status& st) {
    if (st.ok()) FillMembers(server, response);
    reactor->Finish(ToGrpcStatus(st));
  };
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  FillMembers(cluster_, response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::MemberAddRequest* request,
                                                    etcdserverpb::MemberAddResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto member = std::make_shared<server::Member>();
  member->peer_urls.assign(request->peerurls().begin(), request->peerurls().end());
  member->is_learner = request->islearner();
  const server::ClusterView* server = cluster_;
  admin_->AddMember(member.get(), [server, reactor, response, member](const etcdpp::Status& st) {
    if (st.ok()) {
      FillMembers(server, response);
      etcdserverpb::Member* added = response->mutable_member();
      added->set_id(member->id);
      for (const std::string& u : member->peer_urls) added->add_peerurls(u);
      added->set_islearner(member->is_learner);
    }
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberRemoveRequest* request,
    etcdserverpb::MemberRemoveResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->RemoveMember(request->id(), FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberUpdateRequest* request,
    etcdserverpb::MemberUpdateResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->UpdateMember(
      request->id(),
      std::vector<std::string>(request->peerurls().begin(), request->peerurls().end()),
      FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberPromoteRequest* request,
    etcdserverpb::MemberPromoteResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->PromoteMember(request->id(), FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

}  // namespace etcdpp::api
