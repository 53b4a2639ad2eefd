#include "transport/wire.h"

#include <charconv>
#include <climits>
#include <string_view>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include "tls/grpc_credentials.h"
#include "tls/tls_config.h"

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

namespace {

// What a channel presents and trusts; insecure without a certificate.
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const PeerTlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  auto credentials = tls::ClientChannelCredentials(
      {tls.trusted_ca_file, tls.cert_file, tls.key_file, tls.skip_server_verify});
  if (credentials.ok()) return *credentials;
  // The files are mid-rewrite or gone: this connection fails its handshake
  // (no certificate, nothing trusted) and the sender retries later.
  spdlog::error("transport: {}", credentials.status().message());
  return grpc::SslCredentials(grpc::SslCredentialsOptions());
}

}  // namespace

Status ValidatePeerTls(const PeerTlsOptions& tls) {
  if (tls.enabled() && tls.require_tls13) {
    return Status::InvalidArgument(
        "--tls-min-version=TLS1.3 cannot be enforced on https peer URLs: the peer port's TLS "
        "(gRPC) always accepts TLS 1.2 and 1.3; use --tls-min-version=TLS1.2 or http peer URLs");
  }
  return Status::OK();
}

Result<std::shared_ptr<grpc::ServerCredentials>> PeerServerCredentials(const PeerTlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  ETCDPP_RETURN_IF_ERROR(ValidatePeerTls(tls));
  // Read once here so that a missing or unreadable file is a start-up error;
  // from then on gRPC's file watcher re-reads them (kPeerCertificateRefresh).
  for (const std::string* file : {&tls.cert_file, &tls.key_file, &tls.trusted_ca_file}) {
    if (file->empty()) continue;
    auto pem = tls::ReadPemFile(*file);
    if (!pem.ok()) return pem.status();
  }
  namespace exp = grpc::experimental;
  auto provider = std::make_shared<exp::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.trusted_ca_file,
      static_cast<unsigned>(kPeerCertificateRefresh.count()));
  exp::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.trusted_ca_file.empty()) options.watch_root_certs();
  options.set_cert_request_type(tls.client_cert_auth
                                    ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return exp::TlsServerCredentials(options);
}

bool PeerCertificateAllowed(const grpc::ServerContext& ctx, const PeerTlsOptions& tls) {
  if (tls.allowed_common_name.empty()) return true;
  auto auth = ctx.auth_context();
  if (auth == nullptr) return false;
  for (const grpc::string_ref& cn : auth->FindPropertyValues("x509_common_name")) {
    if (std::string_view(cn.data(), cn.size()) == tls.allowed_common_name) return true;
  }
  return false;
}

std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address,
                                              const PeerTlsOptions& tls) {
  grpc::ChannelArguments args;
  // Each channel owns its connection, so a reconnect really reconnects and
  // transports in one process (tests) behave like separate processes.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, PeerChannelCredentials(tls), args);
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
