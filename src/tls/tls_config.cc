#include "tls/tls_config.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace etcdpp::tls {
namespace {

// TLS 1.2 suites when --cipher-suites is not given: forward secrecy and AEAD
// only, the same set Go's crypto/tls prefers.
constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  const std::string_view offered(reinterpret_cast<const char*>(in), inlen);
  const std::string_view chosen = ChooseClientPortAlpn(offered);
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;
  // `chosen` points into `in`, which OpenSSL keeps for the handshake.
  *out = reinterpret_cast<const unsigned char*>(chosen.data());
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Result<MinVersion> ParseMinVersion(std::string_view text) {
  if (text.empty() || text == "TLS1.2") return MinVersion::kTls12;
  if (text == "TLS1.3") return MinVersion::kTls13;
  return Status::InvalidArgument("unexpected TLS version value \"" + std::string(text) +
                                 "\" (want TLS1.2 or TLS1.3)");
}

Result<std::string> CipherSuitesToOpenSsl(const std::vector<std::string>& etcd_names) {
  if (etcd_names.empty()) return std::string(kDefaultTls12Ciphers);
  // Every suite this OpenSSL knows, by its IANA name (which Go and etcd use).
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (ctx == nullptr || SSL_CTX_set_cipher_list(ctx.get(), "ALL") != 1) {
    return Status::Internal("cannot list TLS cipher suites: " + OpenSslErrors());
  }
  STACK_OF(SSL_CIPHER)* known = SSL_CTX_get_ciphers(ctx.get());
  std::string list;
  for (const std::string& name : etcd_names) {
    // Go drops the _SHA256 of the two ChaCha20 suites' IANA names.
    const std::string with_hash = name + "_SHA256";
    const char* found = nullptr;
    for (int i = 0; i < sk_SSL_CIPHER_num(known); ++i) {
      const SSL_CIPHER* c = sk_SSL_CIPHER_value(known, i);
      const char* standard = SSL_CIPHER_standard_name(c);
      // TLS 1.3 suites (TLS_AES_128_GCM_SHA256, ...) name no key exchange
      // and are not configurable.
      if (standard == nullptr || std::string_view(standard).find("_WITH_") == std::string::npos) {
        continue;
      }
      if (name == standard || with_hash == standard) {
        found = SSL_CIPHER_get_name(c);
        break;
      }
    }
    if (found == nullptr) {
      return Status::InvalidArgument("unexpected TLS cipher suite \"" + name + "\"");
    }
    if (!list.empty()) list += ":";
    list += found;
  }
  return list;
}

std::string_view ChooseClientPortAlpn(std::string_view offered) {
  std::string_view h2;
  std::string_view http11;
  while (!offered.empty()) {
    const size_t n = static_cast<unsigned char>(offered[0]);
    if (n == 0 || n + 1 > offered.size()) return {};  // malformed: no ALPN
    const std::string_view name = offered.substr(1, n);
    if (name == "h2") h2 = name;
    if (name == "http/1.1") http11 = name;
    offered.remove_prefix(n + 1);
  }
  // A client that can speak HTTP/1.1 is not a gRPC client.
  if (!http11.empty()) return http11;
  return h2;
}

std::optional<std::string> VerifiedPeerCommonName(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return std::string();
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return std::string();
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return cn;
}

Result<std::string> ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

ServerContextSource::ServerContextSource(TlsOptions options) : options_(std::move(options)) {}
ServerContextSource::~ServerContextSource() = default;

Result<std::unique_ptr<ServerContextSource>> ServerContextSource::Create(TlsOptions options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate file and a key file");
  }
  if (options.client_cert_auth && options.trusted_ca_file.empty()) {
    return Status::InvalidArgument("client certificate authentication needs a trusted CA file");
  }
  std::unique_ptr<ServerContextSource> source(new ServerContextSource(std::move(options)));
  auto ciphers = CipherSuitesToOpenSsl(source->options_.cipher_suites);
  if (!ciphers.ok()) return ciphers.status();
  source->cipher_list_ = *ciphers;
  source->loaded_times_ = source->FileTimes();
  auto ctx = source->Build();
  if (!ctx.ok()) return ctx.status();
  source->current_ = *ctx;
  return source;
}

std::vector<int64_t> ServerContextSource::FileTimes() const {
  std::vector<int64_t> times;
  for (const std::string* path :
       {&options_.cert_file, &options_.key_file, &options_.trusted_ca_file}) {
    struct stat st {};
    if (path->empty() || ::stat(path->c_str(), &st) != 0) {
      times.push_back(-1);
    } else {
      times.push_back(int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
    }
  }
  return times;
}

Result<std::shared_ptr<boost::asio::ssl::context>> ServerContextSource::Build() const {
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(
      c, options_.min_version == MinVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Replies go out as soon as written, in records no larger than needed.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, cipher_list_.c_str()) != 1) {
    return Status::InvalidArgument("bad TLS cipher suites: " + OpenSslErrors());
  }
  if (SSL_CTX_use_certificate_chain_file(c, options_.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("cannot load certificate " + options_.cert_file + ": " +
                                   OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::InvalidArgument("cannot load key " + options_.key_file + ": " + OpenSslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return Status::InvalidArgument("key " + options_.key_file + " does not match certificate " +
                                   options_.cert_file);
  }
  if (!options_.trusted_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, options_.trusted_ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("cannot load trusted CA " + options_.trusted_ca_file + ": " +
                                     OpenSslErrors());
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.trusted_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(c, names);
    }
  }
  // As etcd: a client certificate is asked for only under --client-cert-auth.
  SSL_CTX_set_verify(c,
                     options_.client_cert_auth ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                               : SSL_VERIFY_NONE,
                     nullptr);
  if (options_.alpn_for_client_port) SSL_CTX_set_alpn_select_cb(c, SelectAlpn, nullptr);
  // Sessions are not resumed: every connection is verified in full against
  // the current files.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  return ctx;
}

std::shared_ptr<boost::asio::ssl::context> ServerContextSource::Current() {
  std::vector<int64_t> times = FileTimes();
  std::lock_guard<std::mutex> lock(mu_);
  if (times != loaded_times_) {
    auto rebuilt = Build();
    if (rebuilt.ok()) {
      current_ = *rebuilt;
      loaded_times_ = std::move(times);
    }
    // Otherwise the files are mid-rewrite: keep serving the previous ones.
  }
  return current_;
}

}  // namespace etcdpp::tls
