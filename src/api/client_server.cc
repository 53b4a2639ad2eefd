#include "api/client_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "api/auth_service.h"
#include "api/call_gate.h"
#include "api/concurrency/election_service.h"
#include "api/concurrency/lock_service.h"
#include "api/kv_service.h"
#include "api/leader_monitor.h"
#include "api/lease_service.h"
#include "api/maintenance_service.h"
#include "api/read_executor.h"
#include "api/watch_service.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/etcd_server.h"
#include "server/server_options.h"
#include "transport/callback_threads.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace etcdpp::api {
namespace {

// gRPC framing on top of the largest request etcd accepts (etcd's
// grpcOverheadBytes), so an oversized request reaches our check and gets
// etcd's "request is too large" rather than a transport error.
constexpr int kGrpcOverheadBytes = 512 * 1024;
// Reads after a ReadIndex round run here: one thread per core, as more
// would only take turns on the same cores and add wake-ups.
int ReadThreads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
// bcrypt runs here (Authenticate, UserAdd, UserChangePassword), away from
// the read pool, so a burst of logins never delays reads.
constexpr int kPasswordThreads = 2;

}  // namespace

Result<std::unique_ptr<ClientServer>> ClientServer::Start(server::EtcdServer* server,
                                                          const std::vector<std::string>& addresses,
                                                          Interceptors interceptors) {
  // The callback services, and their in-process clients (Lock, Election,
  // the gateway, the health check), run on gRPC's callback pool.
  transport::KeepGrpcCallbackThreads();
  std::unique_ptr<ClientServer> cs(new ClientServer());
  cs->reads_ = std::make_unique<ReadExecutor>(ReadThreads());
  cs->password_pool_ = std::make_unique<ReadExecutor>(kPasswordThreads);
  auth::AuthStore* auth = server->auth_store();
  cs->leader_monitor_ =
      std::make_unique<LeaderMonitor>([server] { return server->leader_id(); },
                                      server->election_timeout(), server->options().clock);
  // Every service is registered here, and each gets only the views of the
  // member it needs (server/interfaces.h).
  auto kv = std::make_unique<KvService>(server, server, server, cs->reads_.get(), auth);
  cs->kv_ = kv.get();
  cs->services_.push_back(std::move(kv));
  cs->services_.push_back(
      std::make_unique<MaintenanceService>(server, server, server, auth, server));
  cs->services_.push_back(std::make_unique<ClusterService>(server, server, auth));
  auto lease = std::make_unique<LeaseService>(
      LeaseServiceDeps{server, server, server, server->lessor(), auth}, cs->leader_monitor_.get());
  cs->lease_ = lease.get();
  cs->services_.push_back(std::move(lease));
  auto watch = std::make_unique<WatchService>(server, server->watch_hub(),
                                              cs->leader_monitor_.get(), auth, server);
  cs->watch_ = watch.get();
  cs->services_.push_back(std::move(watch));
  cs->services_.push_back(std::make_unique<AuthService>(AuthServiceDeps{
      server, server, server, auth, cs->password_pool_.get(), server->options().bcrypt_cost}));
  // Lock and Election are clients of the services above, over the in-process
  // channel (connected once the server is built); etcd's interceptors' checks
  // (learner, "hasleader") apply to them as to the rest.
  cs->self_client_ = std::make_unique<concurrency::SelfClientSlot>();
  concurrency::CallGate gate = [server](const grpc::CallbackServerContext& context) {
    return ToGrpcStatus(CheckCall(*server, context, LearnerServes::kNo));
  };
  cs->services_.push_back(std::make_unique<concurrency::LockService>(cs->self_client_.get(), gate));
  cs->services_.push_back(
      std::make_unique<concurrency::ElectionService>(cs->self_client_.get(), gate));

  grpc::ServerBuilder builder;
  std::vector<int> ports(addresses.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    builder.AddListeningPort(addresses[i], grpc::InsecureServerCredentials(), &ports[i]);
  }
  const uint64_t max_request = server->max_request_bytes();
  cs->max_receive_message_bytes_ = static_cast<uint32_t>(max_request) + kGrpcOverheadBytes;
  builder.SetMaxReceiveMessageSize(static_cast<int>(cs->max_receive_message_bytes_));
  builder.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  // etcd's server keepalive defaults: clients may ping every 5 s.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, std::numeric_limits<int>::max());
  for (auto& service : cs->services_) builder.RegisterService(service.get());
  if (!interceptors.empty()) builder.experimental().SetInterceptorCreators(std::move(interceptors));
  cs->grpc_server_ = builder.BuildAndStart();
  if (!cs->grpc_server_) {
    return Status::Unavailable("cannot listen on the client URLs (address in use?)");
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (ports[i] == 0) return Status::Unavailable("cannot listen on " + addresses[i]);
  }
  grpc::ChannelArguments self_args;
  self_args.SetMaxReceiveMessageSize(-1);
  cs->self_client_->Connect(cs->grpc_server_->InProcessChannel(self_args));
  return cs;
}

ClientServer::~ClientServer() { Shutdown(0); }

const KvHandler& ClientServer::kv_handler() const { return kv_->handler(); }

const LeaseServiceDeps* ClientServer::lease_deps() const { return lease_->deps(); }

const WatchStreamDeps* ClientServer::watch_deps() const { return watch_->deps(); }

void ClientServer::Shutdown(int grace_ms) {
  if (!grpc_server_) return;
  // Before the server stops: an in-process call created while it shuts down
  // reaches a torn-down transport (gRPC crashes). Lock and Election calls
  // still running then fail with "etcdserver: server stopped".
  if (self_client_) self_client_->Close();
  grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  grpc_server_->Wait();
  grpc_server_.reset();
  reads_.reset();
  password_pool_.reset();
  leader_monitor_.reset();
}

}  // namespace etcdpp::api
