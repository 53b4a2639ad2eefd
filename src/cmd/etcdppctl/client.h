// etcdppctl's connection to an etcd v3 cluster over gRPC.
//
// Mirrors what etcdctl's clientv3 does for one short command: every call has
// the --command-timeout deadline; endpoints are tried in order and a call
// that could not reach one (connection refused, unreachable) moves on to the
// next, cycling until the deadline, after which the call fails like Go's
// context ("context deadline exceeded"). Errors answered by a server are
// returned as they are. Not thread-safe: one command uses it at a time.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace etcdpp::ctl {

// Lets another thread (a signal watcher, a lease keeper) stop a call that
// has no deadline: Cancel() cancels the call in flight, if any, and every
// later one. Thread-safe; mu_ guards all fields.
class Canceller {
 public:
  void Cancel();
  bool cancelled() const;
  // Sleeps for `d` or until Cancel(); true when cancelled.
  bool WaitFor(std::chrono::nanoseconds d);

  // The call that Cancel() must stop. Attach is false (and leaves nothing
  // attached) when Cancel() already happened.
  bool Attach(grpc::ClientContext* ctx);
  void Detach();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  grpc::ClientContext* in_flight_ = nullptr;
};

// The status of a call stopped by a Canceller: Go's context error text, which
// etcdctl prints.
grpc::Status ContextCanceled();

struct ClientOptions {
  // As given on the command line: "host:port", "http://host:port" or "https://host:port".
  std::vector<std::string> endpoints;
  std::chrono::nanoseconds dial_timeout = std::chrono::seconds(2);
  std::chrono::nanoseconds command_timeout = std::chrono::seconds(5);
  // TLS: used when any is set or an endpoint is https://.
  std::string cacert_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_tls_verify = false;
  // --insecure-transport=false: TLS even without files or https:// (etcdctl).
  bool insecure_transport = true;
  // --user "name[:password]" / --password: authenticate and send the token.
  std::string user;
  std::string password;
};

class Client {
 public:
  explicit Client(ClientOptions options);

  grpc::Status Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp);
  grpc::Status Put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp);
  grpc::Status DeleteRange(const etcdserverpb::DeleteRangeRequest& req,
                           etcdserverpb::DeleteRangeResponse* resp);
  grpc::Status Txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp);
  grpc::Status Compact(const etcdserverpb::CompactionRequest& req,
                       etcdserverpb::CompactionResponse* resp);
  grpc::Status MemberList(const etcdserverpb::MemberListRequest& req,
                          etcdserverpb::MemberListResponse* resp);
  grpc::Status MemberAdd(const etcdserverpb::MemberAddRequest& req,
                         etcdserverpb::MemberAddResponse* resp);
  grpc::Status MemberRemove(const etcdserverpb::MemberRemoveRequest& req,
                            etcdserverpb::MemberRemoveResponse* resp);
  grpc::Status MemberUpdate(const etcdserverpb::MemberUpdateRequest& req,
                            etcdserverpb::MemberUpdateResponse* resp);
  grpc::Status MemberPromote(const etcdserverpb::MemberPromoteRequest& req,
                             etcdserverpb::MemberPromoteResponse* resp);

  grpc::Status LeaseGrant(const etcdserverpb::LeaseGrantRequest& req,
                          etcdserverpb::LeaseGrantResponse* resp);
  grpc::Status LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& req,
                           etcdserverpb::LeaseRevokeResponse* resp);
  grpc::Status LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp);
  grpc::Status LeaseLeases(etcdserverpb::LeaseLeasesResponse* resp);
  // One keep-alive round trip. A lease the server no longer has (TTL <= 0)
  // is clientv3's ErrLeaseNotFound.
  grpc::Status LeaseKeepAliveOnce(int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp);
  // Renews the lease every TTL/3 until it is gone, calling `on_renewed` for
  // each renewal; returns when the lease expired or was revoked (OK) or the
  // stream failed. Not bounded by --command-timeout, like etcdctl.
  // With `canceller`, Cancel() ends the loop early (returning ContextCanceled()).
  grpc::Status LeaseKeepAliveLoop(
      int64_t id,
      const std::function<void(const etcdserverpb::LeaseKeepAliveResponse&)>& on_renewed,
      Canceller* canceller = nullptr);

  // One call of the Auth service (auth, user and role commands), with
  // failover like every call above.
  grpc::Status AuthCall(
      const std::function<grpc::Status(etcdserverpb::Auth::Stub&, grpc::ClientContext*)>& call);

  // Maintenance.
  grpc::Status AlarmList(etcdserverpb::AlarmResponse* resp);
  grpc::Status AlarmDisarmAll(const etcdserverpb::AlarmResponse& active,
                              etcdserverpb::AlarmResponse* resp);
  grpc::Status DefragmentOn(const std::string& endpoint, etcdserverpb::DefragmentResponse* resp);
  grpc::Status HashKVOn(const std::string& endpoint, int64_t revision,
                        etcdserverpb::HashKVResponse* resp);
  // Streams the database of the first endpoint's member to `on_chunk`
  // (which returns false to stop). Bounded by --dial-timeout to connect and
  // then by `timeout` when it is not zero.
  grpc::Status Snapshot(std::chrono::nanoseconds timeout,
                        const std::function<bool(const std::string& blob)>& on_chunk);

  // Distributed lock and election services (v3lockpb, v3electionpb). The
  // calls that wait for others (Lock, Campaign, Observe) have no deadline;
  // `canceller` stops them.
  grpc::Status Lock(const v3lockpb::LockRequest& req, Canceller* canceller,
                    v3lockpb::LockResponse* resp);
  grpc::Status Unlock(const v3lockpb::UnlockRequest& req, v3lockpb::UnlockResponse* resp);
  grpc::Status Campaign(const v3electionpb::CampaignRequest& req, Canceller* canceller,
                        v3electionpb::CampaignResponse* resp);
  grpc::Status Resign(const v3electionpb::ResignRequest& req, v3electionpb::ResignResponse* resp);
  // Calls `on_leader` for each leader the election has, in turn, until the
  // stream ends (OK) or fails.
  grpc::Status Observe(const v3electionpb::LeaderRequest& req, Canceller* canceller,
                       const std::function<void(const v3electionpb::LeaderResponse&)>& on_leader);

  // Streams a watch: `on_response` sees every response but the initial
  // "created" one, the server's cancellation included, and returns false to
  // stop watching. Returns OK once the server cancelled the watch or the
  // callback stopped it, an error when the stream failed for good.
  // Reconnects (resuming after the last seen revision) when an endpoint
  // goes away. Not bounded by --command-timeout, like etcdctl.
  grpc::Status Watch(etcdserverpb::WatchCreateRequest create,
                     const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response);

  // Calls addressed to one endpoint, for `endpoint status|health`.
  grpc::Status StatusOf(const std::string& endpoint, etcdserverpb::StatusResponse* resp);
  grpc::Status MoveLeaderOn(const std::string& endpoint, uint64_t target,
                            etcdserverpb::MoveLeaderResponse* resp);
  grpc::Status RangeOn(const std::string& endpoint, const etcdserverpb::RangeRequest& req,
                       etcdserverpb::RangeResponse* resp);

  const ClientOptions& options() const { return options_; }
  // True when the last call failed because --user could not authenticate
  // (etcdctl then exits with its "bad connection" code).
  bool auth_failed() const { return auth_failed_; }

 private:
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<v3lockpb::Lock::Stub> lock;
    std::unique_ptr<v3electionpb::Election::Stub> election;
    // Auth token for this endpoint; empty without --user.
    std::string token;
    bool authenticated = false;
  };

  Connection& ConnectionTo(size_t index);
  // Runs `call` against the endpoints, failing over as described above.
  template <typename Call>
  grpc::Status WithFailover(Call call);
  template <typename Call>
  grpc::Status OnEndpoint(const std::string& endpoint, Call call);
  // Like WithFailover without a deadline: endpoints are tried until one
  // answers or `canceller` (may be null) is cancelled.
  template <typename Call>
  grpc::Status Unbounded(Canceller* canceller, Call call);
  grpc::Status Authenticate(Connection& conn, std::chrono::system_clock::time_point deadline);
  void PrepareContext(grpc::ClientContext* ctx, const Connection& conn,
                      std::chrono::system_clock::time_point deadline) const;

  ClientOptions options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  // Index of the endpoint that answered last; calls start there.
  size_t current_ = 0;
  bool auth_failed_ = false;
};

// True when a status means the server could not be reached at all (the
// request was never delivered), so another endpoint may be tried.
bool IsConnectionFailure(const grpc::Status& status);

// The text etcdctl prints after "Error: " for a failed call: an etcd error's
// own message ("etcdserver: ..."), Go's context errors, or gRPC's
// "rpc error: code = <Code> desc = <message>".
std::string ErrorText(const grpc::Status& status);

// Go's name of a gRPC code: "OutOfRange", "DeadlineExceeded", ...
const char* GrpcCodeName(grpc::StatusCode code);

// "127.0.0.1:2379" for "http://127.0.0.1:2379".
std::string StripScheme(const std::string& endpoint);

}  // namespace etcdpp::ctl
