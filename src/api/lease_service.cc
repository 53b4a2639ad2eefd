#include "api/lease_service.h"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "api/leader_monitor.h"
#include "api/lease_keepalive.h"
#include "base/tsan_handoff.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

class KeepAliveReactor final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  // With `monitor`, the stream ends with "etcdserver: no leader" when its
  // member loses the leader for long (the client asked for a leader).
  KeepAliveReactor(const LeaseServiceDeps* member, LeaderMonitor* monitor)
      : member_(member), monitor_(monitor) {
    if (monitor_ != nullptr) monitor_token_ = monitor_->Register([this] { OnNoLeader(); });
    tsan::HandingOff(&request_);
    StartRead(&request_);
  }

  // Lifetime: at any moment exactly one of a read, a renewal or a write is
  // outstanding. Finish is called at most once: in a reaction (gRPC calls
  // OnDone only after it returned), by the monitor while only a read is
  // outstanding (gRPC then ends the read, whose reaction waits for mu_), or
  // as the last act of OnRenewed. So the reactor is deleted (OnDone) only
  // after the last callback that uses it.
  void OnReadDone(bool ok) override {
    tsan::Reaction reaction(&request_, this);
    if (!ok) {
      // The client closed its side (or the call ended): etcd returns nil.
      End(grpc::Status::OK);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      reading_ = false;
    }
    // Fills response_ (the header before the renewal) and renews.
    KeepAliveOnce(member_, request_.id(), &response_, [this](const Status& st) { OnRenewed(st); });
  }

  void OnWriteDone(bool ok) override {
    tsan::Reaction reaction(&response_, this);
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "lease keep-alive stream closed"));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (FinishIfNoLeaderLocked()) return;
      reading_ = true;
    }
    tsan::HandingOff(&request_);
    StartRead(&request_);
  }

  void OnDone() override {
    tsan::TookBack(this);
    if (monitor_ != nullptr) monitor_->Unregister(monitor_token_);
    delete this;
  }

 private:
  // On the thread that answered the renewal, not a gRPC reaction: nothing of
  // gRPC's is outstanding now, so once Finish is called gRPC may run OnDone
  // and delete this reactor at once. Finish is therefore the last thing it
  // does, after mu_ is released (ThreadSanitizer found the unlock racing
  // the delete).
  void OnRenewed(const Status& renewed) {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!renewed.ok()) {
        finish = ToGrpcStatus(renewed);
      } else if (no_leader_) {
        finish = ToGrpcStatus(Status(Code::kNoLeader));
      }
      if (finish) {
        if (finished_) return;
        finished_ = true;
      }
    }
    if (finish) {
      tsan::HandingOff(this);
      Finish(*finish);
      return;
    }
    tsan::HandingOff(&response_);
    StartWrite(&response_);
  }

  // From the monitor: finish now if only a read is outstanding, else once the
  // renewal or write in flight is done.
  void OnNoLeader() {
    std::lock_guard<std::mutex> lock(mu_);
    no_leader_ = true;
    if (reading_) FinishIfNoLeaderLocked();
  }

  // True if the monitor asked to end the stream; it is finished then.
  bool FinishIfNoLeaderLocked() {
    if (!no_leader_) return false;
    FinishLocked(ToGrpcStatus(Status(Code::kNoLeader)));
    return true;
  }

  void End(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(status);
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    tsan::HandingOff(this);
    Finish(status);
  }

  const LeaseServiceDeps* const member_;
  LeaderMonitor* const monitor_;
  LeaderMonitor::Token monitor_token_ = 0;
  LeaseKeepAliveRequest request_;
  LeaseKeepAliveResponse response_;
  std::mutex mu_;
  bool reading_ = true;     // guarded by mu_: the outstanding operation is a read
  bool no_leader_ = false;  // guarded by mu_
  bool finished_ = false;   // guarded by mu_
};

}  // namespace

LeaseService::LeaseService(LeaseServiceDeps deps, LeaderMonitor* monitor)
    : deps_(deps), monitor_(monitor), ids_(deps.cluster->member_id()) {}

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  internalpb::InternalRaftRequest proposal;
  *proposal.mutable_lease_grant() = *request;
  // ID 0: this member picks one (etcd's LeaseGrant does so before proposing).
  if (request->id() == 0) proposal.mutable_lease_grant()->set_id(ids_.Next());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const LeaseServiceDeps* server = &deps_;
  deps_.proposer->Propose(std::move(proposal), response,
                          [server, reactor, response](const Status& st) {
                            if (st.ok()) server->cluster->FillHeader(response->mutable_header());
                            reactor->Finish(ToGrpcStatus(st));
                          });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseRevokeRequest* request,
                                                    etcdserverpb::LeaseRevokeResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  // The apply side checks that the sender may write every attached key.
  auto sender = SenderOf(deps_.auth, *context);
  if (!sender.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(sender.status()));
    return reactor;
  }
  internalpb::InternalRaftRequest proposal;
  StampSender(*sender, &proposal);
  *proposal.mutable_lease_revoke() = *request;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const LeaseServiceDeps* server = &deps_;
  deps_.proposer->Propose(std::move(proposal), response,
                          [server, reactor, response](const Status& st) {
                            if (st.ok()) server->cluster->FillHeader(response->mutable_header());
                            reactor->Finish(ToGrpcStatus(st));
                          });
  return reactor;
}

grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* context) {
  Status st = CheckCall(*deps_.cluster, *context, LearnerServes::kNo);
  if (!st.ok()) return new RefusedStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>(st);
  return new KeepAliveReactor(&deps_, RequiresLeader(*context) ? monitor_ : nullptr);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* context, const etcdserverpb::LeaseTimeToLiveRequest* request,
    etcdserverpb::LeaseTimeToLiveResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const LeaseServiceDeps* server = &deps_;
  const int64_t id = request->id();
  // etcd answers a lease that does not exist with TTL -1, not an error.
  auto finish = [server, reactor, response, id](const Status& st) {
    if (st.code() == Code::kLeaseNotFound) {
      response->Clear();
      response->set_id(id);
      response->set_ttl(-1);
    } else if (!st.ok()) {
      reactor->Finish(ToGrpcStatus(RetryableLeaderError(st)));
      return;
    }
    FillLeaseHeader(server, response->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  Status st = deps_.leases->TimeToLive(*request, response);
  if (st.code() != Code::kNotLeader) {
    finish(st);
    return reactor;
  }
  deps_.leader->CallLeader(lease::kPeerTimeToLiveMethod, request->SerializeAsString(),
                           [response, finish](Result<std::string> reply) {
                             if (!reply.ok()) {
                               finish(reply.status());
                               return;
                             }
                             if (!response->ParseFromString(*reply)) {
                               finish(Status::Internal("lease: malformed time-to-live reply"));
                               return;
                             }
                             finish(Status::OK());
                           });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* response) {
  if (auto* refused = RefuseCall(*deps_.cluster, context, LearnerServes::kNo)) return refused;
  for (int64_t id : deps_.leases->Leases()) response->add_leases()->set_id(id);
  FillLeaseHeader(&deps_, response->mutable_header());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace etcdpp::api
