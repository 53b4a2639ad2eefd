// TLS settings shared by the client port and the peer port: etcd's flags
// (--cert-file, --trusted-ca-file, --client-cert-auth, --cipher-suites,
// --tls-min-version ...) turned into OpenSSL server contexts.
//
// Certificates are re-read when their files change: ServerContextSource
// checks the files' modification times at every handshake (three stat calls)
// and builds a new SSL_CTX only when one changed, so a rotated certificate
// takes effect on the next connection without a restart, as in etcd. A
// rebuilt context that fails (a half-written file) keeps the previous one
// serving and is retried at the next handshake.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace etcdpp::tls {

enum class MinVersion { kTls12, kTls13 };

struct TlsOptions {
  std::string cert_file;        // PEM chain, leaf first
  std::string key_file;         // PEM private key of the leaf
  std::string trusted_ca_file;  // PEM bundle that signs accepted client certificates
  // A client must present a certificate signed by trusted_ca_file; without
  // it the handshake fails.
  bool client_cert_auth = false;
  // etcd's (Go's, IANA) names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
  // Empty: a modern default (ECDHE with AES-GCM or ChaCha20-Poly1305). They
  // restrict TLS 1.2 only; TLS 1.3's suites are all AEAD and not configurable
  // (as in Go).
  std::vector<std::string> cipher_suites;
  MinVersion min_version = MinVersion::kTls12;
  // Answer ALPN with ChooseClientPortAlpn (the client port's h2 / http/1.1).
  bool alpn_for_client_port = false;

  bool enabled() const { return !cert_file.empty(); }
};

// etcd's --tls-min-version values: "TLS1.2" or "TLS1.3".
Result<MinVersion> ParseMinVersion(std::string_view text);

// etcd's comma-separated --cipher-suites, each checked against what this
// OpenSSL offers. Returns the OpenSSL cipher list string ("A:B:C").
Result<std::string> CipherSuitesToOpenSsl(const std::vector<std::string>& etcd_names);

// The protocol the client port selects from a client's ALPN offer (the wire
// format: length-prefixed names). gRPC clients offer h2 (and grpc-exp) only;
// curl and browsers offer http/1.1 as well, and get it, because the HTTP
// side of the port speaks HTTP/1.1 only. Empty: nothing acceptable, the
// connection goes on without ALPN and is told apart by its first bytes.
std::string_view ChooseClientPortAlpn(std::string_view offered);

// The subject common name of the certificate the peer presented on `ssl`
// and that verification accepted; nullopt when it presented none.
std::optional<std::string> VerifiedPeerCommonName(SSL* ssl);

// Builds server SSL contexts from files and rebuilds them when the files
// change. Thread-safe: Current() may be called from any thread.
class ServerContextSource {
 public:
  // Fails if the files cannot be loaded now (a start-up error).
  static Result<std::unique_ptr<ServerContextSource>> Create(TlsOptions options);
  ~ServerContextSource();

  // The context for a new handshake, rebuilt first if a file changed. Each
  // connection holds the reference it got (an Asio context owning one SSL_CTX), so a reload never
  // changes a connection mid-handshake.
  std::shared_ptr<boost::asio::ssl::context> Current();

  const TlsOptions& options() const { return options_; }

 private:
  explicit ServerContextSource(TlsOptions options);
  // The files' modification times, in nanoseconds; a missing file is -1.
  std::vector<int64_t> FileTimes() const;
  Result<std::shared_ptr<boost::asio::ssl::context>> Build() const;

  const TlsOptions options_;
  std::string cipher_list_;
  std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // guarded by mu_
  std::vector<int64_t> loaded_times_;                   // guarded by mu_
};

// Reads a whole file (certificates for gRPC's credentials).
Result<std::string> ReadPemFile(const std::string& path);

}  // namespace etcdpp::tls
