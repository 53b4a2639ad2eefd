#include "api/maintenance_service.h"

#include "api/grpc_status.h"
#include "mvcc/kv_store.h"
#include "server/etcd_server.h"

namespace etcdpp::api {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  server_->FillHeader(response->mutable_header());
  mvcc::KvStore* store = server_->store();
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
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto view = server_->store()->Read();
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

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(server_->store()->CurrentRevision());
  for (const server::Member& m : server_->Members()) {
    etcdserverpb::Member* out = response->add_members();
    out->set_id(m.id);
    out->set_name(m.name);
    for (const std::string& u : m.peer_urls) out->add_peerurls(u);
    for (const std::string& u : m.client_urls) out->add_clienturls(u);
    out->set_islearner(m.is_learner);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace etcdpp::api
