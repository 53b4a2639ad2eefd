// Wire details shared by the sending and the receiving side of the peer
// protocol (proto/transportpb/transport.proto): the handshake metadata and
// the gRPC channel settings. Internal to the transport module.
#pragma once

#include <chrono>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "base/status.h"
#include "transport/transport.h"

namespace etcdpp::transport {

inline constexpr char kClusterIdKey[] = "etcdpp-cluster-id";
inline constexpr char kFromKey[] = "etcdpp-from";
inline constexpr char kToKey[] = "etcdpp-to";
// Initial metadata an accepted Stream call answers with.
inline constexpr char kAcceptedKey[] = "etcdpp-accepted";

struct Handshake {
  uint64_t cluster_id = 0;
  uint64_t from = 0;
  uint64_t to = 0;
};

// Adds the handshake metadata to an outgoing call.
void AddHandshake(grpc::ClientContext* ctx, const Handshake& hs);
// The handshake of an incoming call; nullopt if missing or malformed.
std::optional<Handshake> ReadHandshake(const grpc::ServerContext& ctx);
// Whether the server accepted the call (valid after WaitForInitialMetadata).
bool WasAccepted(const grpc::ClientContext& ctx);

// A new channel (with its own connection: no subchannel sharing) to a peer
// at `address` ("host:port"). Keepalive pings detect a dead peer on an idle
// stream; messages have no size limit (one Raft message may be large).
// With tls.enabled(), over TLS (the files are read now; an unreadable one
// makes a channel whose calls fail, retried at the next connect).
std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address,
                                              const PeerTlsOptions& tls);
// Settings of the peer server matching NewPeerChannel.
void ConfigurePeerServer(grpc::ServerBuilder* builder);
// How often the peer server looks at its certificate, key and CA files; a
// changed file is served from the next handshake after that (a file that
// does not load, such as one half written, leaves the previous one in use).
inline constexpr std::chrono::seconds kPeerCertificateRefresh{1};
// Insecure without tls.enabled(); else TLS, requiring and verifying client
// certificates under tls.client_cert_auth, with the files re-read as they
// change (kPeerCertificateRefresh). Fails if a file cannot be read now.
Result<std::shared_ptr<grpc::ServerCredentials>> PeerServerCredentials(const PeerTlsOptions& tls);
// Whether the verified client certificate of `ctx`'s call may act as a peer
// (tls.allowed_common_name); always true when no name is required.
bool PeerCertificateAllowed(const grpc::ServerContext& ctx, const PeerTlsOptions& tls);

}  // namespace etcdpp::transport
