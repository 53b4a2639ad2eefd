// --auto-tls and --peer-auto-tls: a self-signed certificate made at start-up,
// as etcd does, for links that want encryption without a PKI. Clients cannot
// verify it against a CA (etcdctl needs --insecure-skip-tls-verify).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace etcdpp::tls {

struct CertificateFiles {
  std::string cert_file;
  std::string key_file;
};

// Writes cert.pem and key.pem (ECDSA P-256, valid for a year, mode 0600 key)
// under `dir`, creating it; reuses them if both already exist. `hosts` are
// the IP addresses or DNS names the certificate is for (its SANs).
Result<CertificateFiles> SelfSignedCertificate(const std::string& dir,
                                               const std::vector<std::string>& hosts);

}  // namespace etcdpp::tls
