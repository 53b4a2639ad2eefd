#include "api/maintenance_service.h"

#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "mvcc/kv_store.h"
#include "server/etcd_server.h"

namespace etcdpp::api {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kYes)) return refused;
  server_->FillHeader(response->mutable_header());
  std::shared_ptr<mvcc::KvStore> store = server_->store();
  response->mutable_header()->set_revision(store->CurrentRevision());
  response->set_version(kEtcdApiVersion);
  response->set_dbsize(store->DbSizeBytes());
  response->set_dbsizeinuse(store->DbSizeInUseBytes());
  response->set_leader(server_->leader_id());
  response->set_raftindex(server_->commit_index());
  response->set_raftterm(server_->term());
  response->set_raftappliedindex(server_->applied_index());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The view must not outlive the store it reads.
  std::shared_ptr<mvcc::KvStore> store = server_->store();
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
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(hash->rev);
  response->set_hash(hash->hash);
  response->set_compact_revision(hash->compact_rev);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::AlarmRequest* request,
                                                    etcdserverpb::AlarmResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->action() != etcdserverpb::AlarmRequest::GET) {
    reactor->Finish(ToGrpcStatus(Status::Unimplemented("alarm activation is not supported yet")));
    return reactor;
  }
  // No alarm is ever raised yet (NOSPACE comes with quota enforcement).
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(server_->store()->CurrentRevision());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(
    grpc::CallbackServerContext* context, const etcdserverpb::MoveLeaderRequest* request,
    etcdserverpb::MoveLeaderResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto timeout = std::chrono::milliseconds(5000) + 2 * server_->options().election_timeout;
  const auto client_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  if (client_left > std::chrono::milliseconds(0) && client_left < timeout) timeout = client_left;
  server::EtcdServer* server = server_;
  server_->MoveLeader(
      request->targetid(), timeout, [server, reactor, response](const etcdpp::Status& st) {
        if (st.ok()) {
          server->FillHeader(response->mutable_header());
          response->mutable_header()->set_revision(server->store()->CurrentRevision());
        }
        reactor->Finish(ToGrpcStatus(st));
      });
  return reactor;
}

namespace {

template <typename Response>
void FillMembers(server::EtcdServer* server, Response* response) {
  // etcd 3.4's Cluster responses carry no revision in their header.
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
server::ProposeCallback FinishWithMembers(server::EtcdServer* server,
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
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  FillMembers(server_, response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::MemberAddRequest* request,
                                                    etcdserverpb::MemberAddResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto member = std::make_shared<server::Member>();
  member->peer_urls.assign(request->peerurls().begin(), request->peerurls().end());
  member->is_learner = request->islearner();
  server::EtcdServer* server = server_;
  server_->AddMember(member.get(), [server, reactor, response, member](const etcdpp::Status& st) {
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
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  server_->RemoveMember(request->id(), FinishWithMembers(server_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberUpdateRequest* request,
    etcdserverpb::MemberUpdateResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  server_->UpdateMember(
      request->id(),
      std::vector<std::string>(request->peerurls().begin(), request->peerurls().end()),
      FinishWithMembers(server_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberPromoteRequest* request,
    etcdserverpb::MemberPromoteResponse* response) {
  if (auto* refused = RefuseCall(*server_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  server_->PromoteMember(request->id(), FinishWithMembers(server_, reactor, response));
  return reactor;
}

}  // namespace etcdpp::api
