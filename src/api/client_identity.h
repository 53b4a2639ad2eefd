// The verified client certificate behind a gRPC call on the client port.
//
// TLS ends in the client port's listener (http/listener.h), which hands the
// decrypted HTTP/2 stream to gRPC as a file descriptor, so gRPC itself never
// sees the certificate and its AuthContext is empty. The listener records,
// before handing a connection over, the common name of the certificate the
// client presented (and TLS verified) under gRPC's name for that connection,
// "fd:<n>"; a call looks it up by its peer(). With --client-cert-auth this
// name is the etcd user of the call.
//
// Connections of the HTTP/2 front (api/h2front) are not gRPC's: the front
// answers KV, Watch and LeaseKeepAlive itself, with the name it was given
// for the connection, and relays every other call over the in-process
// channel, whose peer names no connection. A relayed call then states the
// name in metadata (kRelayedIdentityKey), sealed with a secret this process
// drew at random when it started: only a value that carries the seal is
// believed, so no client can claim a name by sending the entry itself (the
// front also drops the entry from what clients send).
//
// Thread-safe; one table per process, because descriptor numbers are.
#pragma once

#include <grpcpp/server_context.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace etcdpp::api {

// The common name of the client certificate of the connection `ctx`'s call
// came on; nullopt on a plain connection, a TLS one without a client
// certificate, or an in-process call (the gateway's, or one the front
// relayed from such a connection).
std::optional<std::string> VerifiedClientCommonName(const grpc::ServerContextBase& ctx);

// The front's side: the metadata entry (binary) and its sealed value that
// make a relayed call show `common_name`.
inline constexpr char kRelayedIdentityKey[] = "etcdpp-relayed-cn-bin";
std::string SealedIdentity(std::string_view common_name);

// Listener side. Bind before handing descriptor `fd` to gRPC (it replaces
// whatever an earlier connection with the same number left); returns a
// ticket for Unbind, which removes the entry only if no later Bind of the
// same number replaced it.
uint64_t BindClientIdentity(int fd, std::optional<std::string> common_name);
void UnbindClientIdentity(int fd, uint64_t ticket);

}  // namespace etcdpp::api
