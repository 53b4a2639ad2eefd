// gRPC channel credentials from PEM files, for every client of etcdpp's
// ports: etcdppctl, etcdpp-bench and a member's channels to its peers.
#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace etcdpp::tls {

struct ClientTlsFiles {
  std::string ca_file;    // trusted roots; empty: the system's
  std::string cert_file;  // client certificate (optional, with key_file)
  std::string key_file;
  // Accept any server certificate and host name (etcdctl's
  // --insecure-skip-tls-verify): encrypted, not authenticated.
  bool skip_verify = false;
};

// Reads the files now; a missing or unreadable one is an error naming it.
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientChannelCredentials(
    const ClientTlsFiles& files);

// Limits the TLS 1.2 cipher suites of every gRPC TLS connection this process
// makes or accepts (the peer port and channels to peers) to `etcd_names`
// (--cipher-suites, checked as for the client port). gRPC reads the list
// once, when it first sets up TLS, through its GRPC_SSL_CIPHER_SUITES
// setting: call this before any gRPC TLS object exists. Empty: gRPC's own
// modern default. TLS 1.3's suites are not configurable, as in etcd.
Status RestrictGrpcCipherSuites(const std::vector<std::string>& etcd_names);

}  // namespace etcdpp::tls
