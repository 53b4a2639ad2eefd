#include "transport/wire.h"

#include <charconv>
#include <climits>
#include <string_view>

namespace etcdpp::transport {
namespace {

constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;

std::optional<uint64_t> ParseId(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                                const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return std::nullopt;
  uint64_t v = 0;
  const char* begin = it->second.data();
  const char* end = begin + it->second.size();
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

}  // namespace

void AddHandshake(grpc::ClientContext* ctx, const Handshake& hs) {
  ctx->AddMetadata(kClusterIdKey, std::to_string(hs.cluster_id));
  ctx->AddMetadata(kFromKey, std::to_string(hs.from));
  ctx->AddMetadata(kToKey, std::to_string(hs.to));
}

std::optional<Handshake> ReadHandshake(const grpc::ServerContext& ctx) {
  const auto& md = ctx.client_metadata();
  auto cluster_id = ParseId(md, kClusterIdKey);
  auto from = ParseId(md, kFromKey);
  auto to = ParseId(md, kToKey);
  if (!cluster_id || !from || !to) return std::nullopt;
  return Handshake{*cluster_id, *from, *to};
}

bool WasAccepted(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerInitialMetadata();
  auto it = md.find(kAcceptedKey);
  return it != md.end() && std::string_view(it->second.data(), it->second.size()) == "1";
}

std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Each channel owns its connection, so a reconnect really reconnects and
  // transports in one process (tests) behave like separate processes.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void ConfigurePeerServer(grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(INT_MAX);
  builder->SetMaxSendMessageSize(INT_MAX);
  // Two members must never share a peer port.
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Accept the senders' keepalive pings (default policy would GOAWAY them).
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              kKeepaliveTimeMs / 2);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Detect a dead sender on an idle inbound stream.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
}

}  // namespace etcdpp::transport
