#include "api/lease_keepalive.h"

#include <string>
#include <utility>

namespace etcdpp::api {

void FillLeaseHeader(const LeaseServiceDeps* member, etcdserverpb::ResponseHeader* header) {
  member->cluster->FillHeader(header);
  header->set_revision(member->cluster->revision());
}

Status RetryableLeaderError(const Status& st) {
  return st.code() == Code::kNotLeader ? Status(Code::kLeaderChanged) : st;
}

void RenewAnywhere(const LeaseServiceDeps* member, int64_t id,
                   std::function<void(Result<int64_t>)> done) {
  member->leases->Renew(id, [member, id, done = std::move(done)](Result<int64_t> ttl) mutable {
    if (ttl.ok() || ttl.status().code() != Code::kNotLeader) {
      done(std::move(ttl));
      return;
    }
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    member->leader->CallLeader(
        lease::kPeerRenewMethod, req.SerializeAsString(),
        [done = std::move(done)](Result<std::string> reply) {
          if (!reply.ok()) {
            done(RetryableLeaderError(reply.status()));
            return;
          }
          etcdserverpb::LeaseKeepAliveResponse resp;
          if (!resp.ParseFromString(*reply)) {
            done(Status::Internal("lease: malformed keep-alive reply from leader"));
            return;
          }
          done(resp.ttl());
        });
  });
}

void KeepAliveOnce(const LeaseServiceDeps* member, int64_t id,
                   etcdserverpb::LeaseKeepAliveResponse* response,
                   std::function<void(const Status&)> done) {
  response->Clear();
  response->set_id(id);
  FillLeaseHeader(member, response->mutable_header());
  RenewAnywhere(member, id, [response, done = std::move(done)](Result<int64_t> ttl) {
    if (!ttl.ok() && ttl.status().code() != Code::kLeaseNotFound) {
      done(ttl.status());
      return;
    }
    response->set_ttl(ttl.ok() ? *ttl : 0);
    done(Status::OK());
  });
}

}  // namespace etcdpp::api
