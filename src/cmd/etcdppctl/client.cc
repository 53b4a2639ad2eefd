#include "cmd/etcdppctl/client.h"

#include "tls/grpc_credentials.h"

#include <fstream>
#include <sstream>
#include <thread>

namespace etcdpp::ctl {
namespace {

using WallClock = std::chrono::system_clock;

// How long to wait before cycling again through endpoints that all refused.
constexpr auto kRetryPause = std::chrono::milliseconds(50);

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Brings the channel to READY, giving up as soon as the connection attempt
// fails (no waiting out gRPC's reconnect backoff) or at `deadline`.
bool Connect(grpc::Channel& channel, WallClock::time_point deadline) {
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (!channel.WaitForStateChange(state, deadline)) return false;
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return true;
}

grpc::Status ContextDeadline() {
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded");
}

}  // namespace

void Canceller::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (in_flight_ != nullptr) in_flight_->TryCancel();
  cv_.notify_all();
}

bool Canceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool Canceller::WaitFor(std::chrono::nanoseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [this] { return cancelled_; });
}

bool Canceller::Attach(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  in_flight_ = ctx;
  return true;
}

void Canceller::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ = nullptr;
}

grpc::Status ContextCanceled() {
  return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled");
}

std::string StripScheme(const std::string& endpoint) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (StartsWith(endpoint, scheme)) return endpoint.substr(scheme.size());
  }
  return endpoint;
}

bool IsConnectionFailure(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         !StartsWith(status.error_message(), "etcdserver: ");
}

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

std::string ErrorText(const grpc::Status& status) {
  const std::string& msg = status.error_message();
  // clientv3 turns every error etcd defines into its bare message.
  if (StartsWith(msg, "etcdserver: ")) return msg;
  if (msg == "context deadline exceeded" || msg == "context canceled") return msg;
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return "context deadline exceeded";
  }
  return std::string("rpc error: code = ") + GrpcCodeName(status.error_code()) + " desc = " + msg;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  connections_.resize(options_.endpoints.size());
  if (!options_.user.empty() && options_.password.empty()) {
    size_t colon = options_.user.find(':');
    if (colon != std::string::npos) {
      options_.password = options_.user.substr(colon + 1);
      options_.user.resize(colon);
    }
  }
}

Client::Connection& Client::ConnectionTo(size_t index) {
  if (connections_[index]) return *connections_[index];
  const std::string& endpoint = options_.endpoints[index];
  std::shared_ptr<grpc::ChannelCredentials> creds;
  // As etcdctl: TLS for an https:// endpoint, when any file is given, or
  // when --insecure-transport=false.
  bool tls = StartsWith(endpoint, "https://") || !options_.cacert_file.empty() ||
             !options_.cert_file.empty() || !options_.key_file.empty() ||
             !options_.insecure_transport;
  if (tls) {
    // etcdctl skips verification only with a TLS configuration of its own
    // (a file, or --insecure-transport=false); a bare https:// endpoint
    // is always verified.
    const bool configured = !options_.cacert_file.empty() || !options_.cert_file.empty() ||
                            !options_.key_file.empty() || !options_.insecure_transport;
    auto tls_creds =
        tls::ClientChannelCredentials({options_.cacert_file, options_.cert_file, options_.key_file,
                                       options_.insecure_skip_tls_verify && configured});
    // The files were checked before the client was made (invocation.cc);
    // one that vanished since fails the handshake, like an unreachable endpoint.
    creds = tls_creds.ok() ? *tls_creds : grpc::SslCredentials(grpc::SslCredentialsOptions());
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Let a refused endpoint be retried soon: the command deadline, not gRPC's
  // default 1s..120s backoff, bounds the wait. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS
  // stays at its default on purpose: gRPC also takes it as the time one
  // connection attempt (TCP connect and TLS handshake) may last, and at 100 ms
  // a handshake that first loads the system's root certificates (TLS without
  // --cacert, e.g. --insecure-skip-tls-verify) timed out on a busy machine
  // before sending its first byte, every attempt, until the command failed.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(-1);
  auto conn = std::make_unique<Connection>();
  conn->channel = grpc::CreateCustomChannel(StripScheme(endpoint), creds, args);
  conn->kv = etcdserverpb::KV::NewStub(conn->channel);
  conn->cluster = etcdserverpb::Cluster::NewStub(conn->channel);
  conn->maintenance = etcdserverpb::Maintenance::NewStub(conn->channel);
  conn->auth = etcdserverpb::Auth::NewStub(conn->channel);
  conn->lease = etcdserverpb::Lease::NewStub(conn->channel);
  conn->watch = etcdserverpb::Watch::NewStub(conn->channel);
  conn->lock = v3lockpb::Lock::NewStub(conn->channel);
  conn->election = v3electionpb::Election::NewStub(conn->channel);
  connections_[index] = std::move(conn);
  return *connections_[index];
}

void Client::PrepareContext(grpc::ClientContext* ctx, const Connection& conn,
                            WallClock::time_point deadline) const {
  ctx->set_deadline(deadline);
  if (!conn.token.empty()) ctx->AddMetadata("token", conn.token);
}

grpc::Status Client::Authenticate(Connection& conn, WallClock::time_point deadline) {
  if (options_.user.empty() || conn.authenticated) return grpc::Status::OK;
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  etcdserverpb::AuthenticateRequest req;
  req.set_name(options_.user);
  req.set_password(options_.password);
  etcdserverpb::AuthenticateResponse resp;
  grpc::Status st = conn.auth->Authenticate(&ctx, req, &resp);
  if (st.ok()) {
    conn.token = resp.token();
    conn.authenticated = true;
  } else if (!IsConnectionFailure(st)) {
    auth_failed_ = true;
  }
  return st;
}

template <typename Call>
grpc::Status Client::WithFailover(Call call) {
  const auto deadline = WallClock::now() + options_.command_timeout;
  const size_t n = options_.endpoints.size();
  if (n == 0) return ContextDeadline();
  while (WallClock::now() < deadline) {
    for (size_t k = 0; k < n; ++k) {
      size_t index = (current_ + k) % n;
      Connection& conn = ConnectionTo(index);
      auto dial_deadline = std::min(deadline, WallClock::now() + options_.dial_timeout);
      if (!Connect(*conn.channel, dial_deadline)) continue;
      grpc::Status st = Authenticate(conn, deadline);
      if (st.ok()) {
        grpc::ClientContext ctx;
        PrepareContext(&ctx, conn, deadline);
        st = call(conn, &ctx);
      }
      if (IsConnectionFailure(st)) continue;
      current_ = index;
      return st;
    }
    std::this_thread::sleep_for(kRetryPause);
  }
  return ContextDeadline();
}

template <typename Call>
grpc::Status Client::OnEndpoint(const std::string& endpoint, Call call) {
  const auto deadline = WallClock::now() + options_.command_timeout;
  size_t index = 0;
  while (index < options_.endpoints.size() && options_.endpoints[index] != endpoint) ++index;
  if (index == options_.endpoints.size()) {
    options_.endpoints.push_back(endpoint);
    connections_.emplace_back();
  }
  Connection& conn = ConnectionTo(index);
  while (WallClock::now() < deadline) {
    if (!Connect(*conn.channel, deadline)) {
      std::this_thread::sleep_for(kRetryPause);
      continue;
    }
    grpc::Status st = Authenticate(conn, deadline);
    if (st.ok()) {
      grpc::ClientContext ctx;
      PrepareContext(&ctx, conn, deadline);
      st = call(conn, &ctx);
    }
    if (!IsConnectionFailure(st)) return st;
  }
  return ContextDeadline();
}

template <typename Call>
grpc::Status Client::Unbounded(Canceller* canceller, Call call) {
  const size_t n = options_.endpoints.size();
  if (n == 0) return ContextDeadline();
  while (canceller == nullptr || !canceller->cancelled()) {
    for (size_t k = 0; k < n; ++k) {
      size_t index = (current_ + k) % n;
      Connection& conn = ConnectionTo(index);
      if (!Connect(*conn.channel, WallClock::now() + options_.dial_timeout)) continue;
      grpc::Status st = Authenticate(conn, WallClock::now() + options_.command_timeout);
      if (st.ok()) {
        grpc::ClientContext ctx;
        if (!conn.token.empty()) ctx.AddMetadata("token", conn.token);
        if (canceller != nullptr && !canceller->Attach(&ctx)) return ContextCanceled();
        st = call(conn, &ctx);
        if (canceller != nullptr) {
          canceller->Detach();
          if (canceller->cancelled()) return ContextCanceled();
        }
      }
      if (IsConnectionFailure(st)) continue;
      current_ = index;
      return st;
    }
    if (canceller != nullptr ? canceller->WaitFor(kRetryPause)
                             : (std::this_thread::sleep_for(kRetryPause), false)) {
      break;
    }
  }
  return ContextCanceled();
}

grpc::Status Client::Range(const etcdserverpb::RangeRequest& req,
                           etcdserverpb::RangeResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.kv->Range(ctx, req, resp); });
}

grpc::Status Client::Put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.kv->Put(ctx, req, resp); });
}

grpc::Status Client::DeleteRange(const etcdserverpb::DeleteRangeRequest& req,
                                 etcdserverpb::DeleteRangeResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.kv->DeleteRange(ctx, req, resp); });
}

grpc::Status Client::Txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.kv->Txn(ctx, req, resp); });
}

grpc::Status Client::Compact(const etcdserverpb::CompactionRequest& req,
                             etcdserverpb::CompactionResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.kv->Compact(ctx, req, resp); });
}

grpc::Status Client::MemberList(const etcdserverpb::MemberListRequest& req,
                                etcdserverpb::MemberListResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.cluster->MemberList(ctx, req, resp);
  });
}

grpc::Status Client::MemberAdd(const etcdserverpb::MemberAddRequest& req,
                               etcdserverpb::MemberAddResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.cluster->MemberAdd(ctx, req, resp);
  });
}

grpc::Status Client::MemberRemove(const etcdserverpb::MemberRemoveRequest& req,
                                  etcdserverpb::MemberRemoveResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.cluster->MemberRemove(ctx, req, resp);
  });
}

grpc::Status Client::MemberUpdate(const etcdserverpb::MemberUpdateRequest& req,
                                  etcdserverpb::MemberUpdateResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.cluster->MemberUpdate(ctx, req, resp);
  });
}

grpc::Status Client::MemberPromote(const etcdserverpb::MemberPromoteRequest& req,
                                   etcdserverpb::MemberPromoteResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.cluster->MemberPromote(ctx, req, resp);
  });
}

grpc::Status Client::AuthCall(
    const std::function<grpc::Status(etcdserverpb::Auth::Stub&, grpc::ClientContext*)>& call) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) { return call(*c.auth, ctx); });
}

grpc::Status Client::LeaseGrant(const etcdserverpb::LeaseGrantRequest& req,
                                etcdserverpb::LeaseGrantResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.lease->LeaseGrant(ctx, req, resp); });
}

grpc::Status Client::LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& req,
                                 etcdserverpb::LeaseRevokeResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.lease->LeaseRevoke(ctx, req, resp);
  });
}

grpc::Status Client::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                                     etcdserverpb::LeaseTimeToLiveResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.lease->LeaseTimeToLive(ctx, req, resp);
  });
}

grpc::Status Client::LeaseLeases(etcdserverpb::LeaseLeasesResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.lease->LeaseLeases(ctx, etcdserverpb::LeaseLeasesRequest(), resp);
  });
}

namespace {

// One request/response exchange on a LeaseKeepAlive stream.
grpc::Status KeepAliveExchange(
    grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                             etcdserverpb::LeaseKeepAliveResponse>& stream,
    int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp) {
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(id);
  if (stream.Write(req) && stream.Read(resp)) return grpc::Status::OK;
  stream.WritesDone();
  grpc::Status st = stream.Finish();
  if (st.ok()) st = grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed");
  return st;
}

grpc::Status LeaseNotFound() {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found");
}

}  // namespace

grpc::Status Client::LeaseKeepAliveOnce(int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp) {
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    auto stream = c.lease->LeaseKeepAlive(ctx);
    grpc::Status st = KeepAliveExchange(*stream, id, resp);
    if (!st.ok()) return st;
    stream->WritesDone();
    ctx->TryCancel();
    if (resp->ttl() <= 0) return LeaseNotFound();
    return grpc::Status::OK;
  });
}

grpc::Status Client::LeaseKeepAliveLoop(
    int64_t id, const std::function<void(const etcdserverpb::LeaseKeepAliveResponse&)>& on_renewed,
    Canceller* canceller) {
  if (options_.endpoints.empty()) return ContextDeadline();
  while (true) {
    if (canceller != nullptr && canceller->cancelled()) return ContextCanceled();
    Connection& conn = ConnectionTo(current_ % options_.endpoints.size());
    auto now = WallClock::now();
    if (!Connect(*conn.channel, now + options_.dial_timeout)) {
      current_ = (current_ + 1) % options_.endpoints.size();
      if (canceller != nullptr ? canceller->WaitFor(kRetryPause)
                               : (std::this_thread::sleep_for(kRetryPause), false)) {
        return ContextCanceled();
      }
      continue;
    }
    grpc::Status st = Authenticate(conn, now + options_.command_timeout);
    if (!st.ok()) return st;
    grpc::ClientContext ctx;
    if (!conn.token.empty()) ctx.AddMetadata("token", conn.token);
    if (canceller != nullptr && !canceller->Attach(&ctx)) return ContextCanceled();
    auto stream = conn.lease->LeaseKeepAlive(&ctx);
    bool expired = false;
    bool stopped = false;
    while (true) {
      etcdserverpb::LeaseKeepAliveResponse resp;
      st = KeepAliveExchange(*stream, id, &resp);
      if (!st.ok()) break;
      if (resp.ttl() <= 0) {
        expired = true;
        break;
      }
      on_renewed(resp);
      auto pause = std::chrono::seconds(resp.ttl()) / 3;
      if (canceller != nullptr ? canceller->WaitFor(pause)
                               : (std::this_thread::sleep_for(pause), false)) {
        stopped = true;
        break;
      }
    }
    if (canceller != nullptr) canceller->Detach();
    if (expired || stopped) {
      ctx.TryCancel();
      stream->Finish();
      return stopped ? ContextCanceled() : grpc::Status::OK;
    }
    if (canceller != nullptr && canceller->cancelled()) return ContextCanceled();
    if (!IsConnectionFailure(st)) return st;
    current_ = (current_ + 1) % options_.endpoints.size();
  }
}

grpc::Status Client::Watch(
    etcdserverpb::WatchCreateRequest create,
    const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response) {
  if (options_.endpoints.empty()) return ContextDeadline();
  while (true) {
    Connection& conn = ConnectionTo(current_ % options_.endpoints.size());
    auto now = WallClock::now();
    if (!Connect(*conn.channel, now + options_.dial_timeout)) {
      current_ = (current_ + 1) % options_.endpoints.size();
      std::this_thread::sleep_for(kRetryPause);
      continue;
    }
    grpc::Status st = Authenticate(conn, now + options_.command_timeout);
    if (!st.ok()) return st;
    grpc::ClientContext ctx;
    if (!conn.token.empty()) ctx.AddMetadata("token", conn.token);
    ctx.AddMetadata("hasleader", "true");  // clientv3.WithRequireLeader.
    auto stream = conn.watch->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    *req.mutable_create_request() = create;
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.created() && resp.events_size() == 0 && !resp.canceled()) continue;
        if (resp.events_size() > 0) {
          create.set_start_revision(resp.events(resp.events_size() - 1).kv().mod_revision() + 1);
        }
        bool go_on = on_response(resp);
        if (resp.canceled() || !go_on) {
          ctx.TryCancel();
          return grpc::Status::OK;
        }
      }
    }
    stream->WritesDone();
    st = stream->Finish();
    if (!IsConnectionFailure(st)) return st.ok() ? grpc::Status::OK : st;
    current_ = (current_ + 1) % options_.endpoints.size();
  }
}

grpc::Status Client::StatusOf(const std::string& endpoint, etcdserverpb::StatusResponse* resp) {
  return OnEndpoint(endpoint, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.maintenance->Status(ctx, etcdserverpb::StatusRequest(), resp);
  });
}

grpc::Status Client::MoveLeaderOn(const std::string& endpoint, uint64_t target,
                                  etcdserverpb::MoveLeaderResponse* resp) {
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(target);
  return OnEndpoint(endpoint, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.maintenance->MoveLeader(ctx, req, resp);
  });
}

grpc::Status Client::RangeOn(const std::string& endpoint, const etcdserverpb::RangeRequest& req,
                             etcdserverpb::RangeResponse* resp) {
  return OnEndpoint(endpoint, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.kv->Range(ctx, req, resp);
  });
}

grpc::Status Client::AlarmList(etcdserverpb::AlarmResponse* resp) {
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  return WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
    return c.maintenance->Alarm(ctx, req, resp);
  });
}

grpc::Status Client::AlarmDisarmAll(const etcdserverpb::AlarmResponse& active,
                                    etcdserverpb::AlarmResponse* resp) {
  // One request per alarm, as etcdctl's client does; the answer lists the
  // alarms each request cleared and has no header.
  for (const etcdserverpb::AlarmMember& alarm : active.alarms()) {
    etcdserverpb::AlarmRequest req;
    req.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    req.set_memberid(alarm.memberid());
    req.set_alarm(alarm.alarm());
    etcdserverpb::AlarmResponse one;
    grpc::Status st = WithFailover([&](Connection& c, grpc::ClientContext* ctx) {
      return c.maintenance->Alarm(ctx, req, &one);
    });
    if (!st.ok()) return st;
    for (const auto& cleared : one.alarms()) *resp->add_alarms() = cleared;
  }
  return grpc::Status::OK;
}

grpc::Status Client::DefragmentOn(const std::string& endpoint,
                                  etcdserverpb::DefragmentResponse* resp) {
  return OnEndpoint(endpoint, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.maintenance->Defragment(ctx, etcdserverpb::DefragmentRequest(), resp);
  });
}

grpc::Status Client::HashKVOn(const std::string& endpoint, int64_t revision,
                              etcdserverpb::HashKVResponse* resp) {
  etcdserverpb::HashKVRequest req;
  req.set_revision(revision);
  return OnEndpoint(endpoint, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.maintenance->HashKV(ctx, req, resp);
  });
}

grpc::Status Client::Snapshot(std::chrono::nanoseconds timeout,
                              const std::function<bool(const std::string& blob)>& on_chunk) {
  // One endpoint, no failover: a stream cut halfway must not be resumed
  // from another member's database.
  if (options_.endpoints.empty()) return ContextDeadline();
  Connection& conn = ConnectionTo(0);
  if (!Connect(*conn.channel, WallClock::now() + options_.dial_timeout)) return ContextDeadline();
  grpc::Status st = Authenticate(conn, WallClock::now() + options_.command_timeout);
  if (!st.ok()) return st;
  grpc::ClientContext ctx;
  if (!conn.token.empty()) ctx.AddMetadata("token", conn.token);
  if (timeout.count() > 0) {
    ctx.set_deadline(WallClock::now() + std::chrono::duration_cast<WallClock::duration>(timeout));
  }
  auto reader = conn.maintenance->Snapshot(&ctx, etcdserverpb::SnapshotRequest());
  etcdserverpb::SnapshotResponse chunk;
  while (reader->Read(&chunk)) {
    if (!on_chunk(chunk.blob())) {
      ctx.TryCancel();
      break;
    }
  }
  return reader->Finish();
}

grpc::Status Client::Lock(const v3lockpb::LockRequest& req, Canceller* canceller,
                          v3lockpb::LockResponse* resp) {
  return Unbounded(canceller, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.lock->Lock(ctx, req, resp);
  });
}

grpc::Status Client::Unlock(const v3lockpb::UnlockRequest& req, v3lockpb::UnlockResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.lock->Unlock(ctx, req, resp); });
}

grpc::Status Client::Campaign(const v3electionpb::CampaignRequest& req, Canceller* canceller,
                              v3electionpb::CampaignResponse* resp) {
  return Unbounded(canceller, [&](Connection& c, grpc::ClientContext* ctx) {
    return c.election->Campaign(ctx, req, resp);
  });
}

grpc::Status Client::Resign(const v3electionpb::ResignRequest& req,
                            v3electionpb::ResignResponse* resp) {
  return WithFailover(
      [&](Connection& c, grpc::ClientContext* ctx) { return c.election->Resign(ctx, req, resp); });
}

grpc::Status Client::Observe(
    const v3electionpb::LeaderRequest& req, Canceller* canceller,
    const std::function<void(const v3electionpb::LeaderResponse&)>& on_leader) {
  return Unbounded(canceller, [&](Connection& c, grpc::ClientContext* ctx) {
    auto reader = c.election->Observe(ctx, req);
    v3electionpb::LeaderResponse leader;
    while (reader->Read(&leader)) on_leader(leader);
    return reader->Finish();
  });
}

}  // namespace etcdpp::ctl
