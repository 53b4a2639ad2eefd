// gRPC channel credentials from PEM files, for every client of etcdpp's
// ports: etcdppctl, etcdpp-bench and a member's channels to its peers.
#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

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

}  // namespace etcdpp::tls
