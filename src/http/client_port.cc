#include "http/client_port.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "api/client_server.h"
#include "api/h2front/h2_front.h"
#include "api/maintenance_service.h"
#include "http/listener.h"
#include "http/member_metrics.h"
#include "http/v2_api.h"
#include "metrics/grpc_metrics.h"
#include "metrics/metrics.h"
#include "metrics/process_metrics.h"
#include "server/etcd_server.h"

namespace etcdpp::http {
namespace {

// The services ClientServer registers, counted by grpc_server_* metrics.
const std::vector<std::string> kServices = {
    "etcdserverpb.KV",      "etcdserverpb.Watch",       "etcdserverpb.Lease",
    "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "etcdserverpb.Auth",
    "v3lockpb.Lock",        "v3electionpb.Election"};

// gRPC framing above the largest request, as ClientServer allows it; JSON
// inflates bytes by a third (base64), so the HTTP body may be twice as big.
constexpr uint64_t kBodyOverheadBytes = 1 << 20;

}  // namespace

Result<std::unique_ptr<ClientPort>> ClientPort::Start(server::EtcdServer* server,
                                                      const ClientPortOptions& options) {
  metrics::Registry& registry =
      options.registry != nullptr ? *options.registry : metrics::DefaultRegistry();
  std::unique_ptr<ClientPort> port(new ClientPort());
  api::ClientServer::Interceptors interceptors;
  metrics::GrpcServerMetrics grpc_metrics = metrics::MakeGrpcServerMetricsWithRecorder(
      registry, kServices, options.grpc_handling_seconds);
  interceptors.push_back(std::move(grpc_metrics.interceptors));
  auto grpc = api::ClientServer::Start(server, {}, std::move(interceptors));
  if (!grpc.ok()) return grpc.status();
  port->grpc_ = std::move(*grpc);

  metrics::RegisterProcessMetrics(registry);
  RegisterMemberMetrics(registry, server, api::kEtcdApiVersion, api::kEtcdApiVersion);

  ListenerOptions listen;
  listen.client_addresses = options.client_addresses;
  listen.metrics_addresses = options.metrics_addresses;
  listen.enable_ui = options.enable_ui;
  listen.tls_client_addresses = options.tls_client_addresses;
  listen.tls = options.tls;
  listen.grpc_server = port->grpc_->grpc_server();
  listen.registry = &registry;
  listen.server_version = api::kEtcdApiVersion;
  listen.cluster_version = api::kEtcdApiVersion;
  listen.max_body_bytes = 2 * server->options().max_request_bytes + kBodyOverheadBytes;
  if (options.enable_v2) {
    port->v2_ = std::make_unique<V2Api>(
        V2ApiContext{server, server, server, server, server->v2_store(), server->options().name,
                     [server](uint64_t id) { return server->WasRemovedMember(id); }});
    listen.v2 = port->v2_.get();
  }
  if (options.h2_front) {
    api::H2FrontOptions front;
    front.kv = &port->grpc_->kv_handler();
    front.lease = port->grpc_->lease_deps();
    front.watch = port->grpc_->watch_deps();
    front.leader_monitor = port->grpc_->leader_monitor();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    front.channel = port->grpc_->grpc_server()->InProcessChannel(args);
    front.max_receive_message_bytes = port->grpc_->max_receive_message_bytes();
    front.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // KV calls the front answers count in the same grpc_server_* series.
    front.record_native_start = [recorder = grpc_metrics.recorder](std::string_view path) {
      recorder->Started(path);
    };
    front.record_native_call = [recorder = grpc_metrics.recorder](
                                   std::string_view path, grpc::StatusCode code,
                                   std::chrono::steady_clock::duration elapsed) {
      recorder->Record(path, code, elapsed);
    };
    auto started = api::H2Front::Start(front);
    if (!started.ok()) {
      port->grpc_->Shutdown(0);
      return started.status();
    }
    port->front_ = std::move(*started);
    listen.h2_front = port->front_.get();
  }
  auto listener = Listener::Start(listen);
  if (!listener.ok()) {
    if (port->front_ != nullptr) port->front_->Stop(std::chrono::milliseconds(0));
    port->grpc_->Shutdown(0);
    return listener.status();
  }
  port->listener_ = std::move(*listener);
  return port;
}

ClientPort::~ClientPort() { Shutdown(0); }

void ClientPort::Shutdown(int grace_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  if (listener_ != nullptr) listener_->Stop();
  // The front's calls in flight end (answered, or relayed ones cancelled at
  // the deadline) before the gRPC server, their channel, goes; both share
  // the one grace period.
  if (front_ != nullptr) front_->Stop(std::chrono::milliseconds(grace_ms));
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (grpc_ != nullptr) grpc_->Shutdown(static_cast<int>(std::max<int64_t>(0, left.count())));
  // Every gateway call has ended with the gRPC server.
  listener_.reset();
}

}  // namespace etcdpp::http
