// Wire details shared by the sending and the receiving side of the peer
// protocol (proto/transportpb/transport.proto): the handshake metadata and
// the gRPC channel settings. Internal to the transport module.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

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
std::shared_ptr<grpc::Channel> NewPeerChannel(const std::string& address);
// Settings of the peer server matching NewPeerChannel.
void ConfigurePeerServer(grpc::ServerBuilder* builder);

}  // namespace etcdpp::transport
