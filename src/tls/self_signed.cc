#include "tls/self_signed.h"

#include <arpa/inet.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>

namespace etcdpp::tls {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

Status WritePem(const std::string& path, mode_t mode, const std::function<int(FILE*)>& write) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Status::IOError("cannot create " + path);
  ::chmod(path.c_str(), mode);
  const bool ok = write(f) == 1;
  if (std::fclose(f) != 0 || !ok) return Status::IOError("cannot write " + path);
  return Status::OK();
}

}  // namespace

Result<CertificateFiles> SelfSignedCertificate(const std::string& dir,
                                               const std::vector<std::string>& hosts) {
  CertificateFiles files{dir + "/cert.pem", dir + "/key.pem"};
  std::error_code ec;
  if (std::filesystem::exists(files.cert_file, ec) && std::filesystem::exists(files.key_file, ec)) {
    return files;
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());

  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  if (key == nullptr || cert == nullptr) return Status::Internal("cannot generate a key pair");
  X509_set_version(cert.get(), 2);
  // A random 128-bit serial, positive.
  unsigned char serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7f;
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("etcdpp"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());

  std::string san;
  for (const std::string& host : hosts) {
    if (!san.empty()) san += ",";
    san += (IsIpAddress(host) ? "IP:" : "DNS:") + host;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_basic_constraints, "critical,CA:FALSE"}};
  if (!san.empty()) extensions.emplace_back(NID_subject_alt_name, san);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (ext == nullptr) return Status::InvalidArgument("bad certificate host list: " + san);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return Status::Internal("cannot sign the self-signed certificate");
  }
  Status st = WritePem(files.key_file, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  if (!st.ok()) return st;
  st = WritePem(files.cert_file, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
  if (!st.ok()) return st;
  return files;
}

}  // namespace etcdpp::tls
