#include "tls/grpc_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cstdlib>

#include "tls/tls_config.h"

namespace etcdpp::tls {

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientChannelCredentials(
    const ClientTlsFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return Status::InvalidArgument("a client certificate needs both its cert and its key file");
  }
  std::string ca;
  std::string cert;
  std::string key;
  for (auto [path, out] : {std::pair{&files.ca_file, &ca}, std::pair{&files.cert_file, &cert},
                           std::pair{&files.key_file, &key}}) {
    if (path->empty()) continue;
    auto pem = ReadPemFile(*path);
    if (!pem.ok()) return pem.status();
    *out = std::move(*pem);
  }
  if (!files.skip_verify) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca;
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    return grpc::SslCredentials(ssl);
  }
  namespace exp = grpc::experimental;
  exp::TlsChannelCredentialsOptions options;
  if (!cert.empty()) {
    options.set_certificate_provider(std::make_shared<exp::StaticDataCertificateProvider>(
        std::vector<exp::IdentityKeyCertPair>{{key, cert}}));
    options.watch_identity_key_cert_pairs();
  }
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(std::make_shared<exp::NoOpCertificateVerifier>());
  return exp::TlsCredentials(options);
}

Status RestrictGrpcCipherSuites(const std::vector<std::string>& etcd_names) {
  if (etcd_names.empty()) return Status::OK();
  auto cipher_list = CipherSuitesToOpenSsl(etcd_names);
  if (!cipher_list.ok()) return cipher_list.status();
  if (setenv("GRPC_SSL_CIPHER_SUITES", cipher_list->c_str(), 1) != 0) {
    return Status::Internal("cannot set GRPC_SSL_CIPHER_SUITES");
  }
  return Status::OK();
}

}  // namespace etcdpp::tls
