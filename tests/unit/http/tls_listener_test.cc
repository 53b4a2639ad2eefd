// TLS on the client port in one process: the ALPN choice, etcd's cipher
// suite names, and the listener's relay with a fake KV service — gRPC with
// a client certificate (whose common name reaches the service), HTTP/1.1
// with and without ALPN, refusal of clients without an accepted
// certificate, and certificates re-read when their files change.
// Certificates are made with the openssl command in a temporary directory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "api/client_identity.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "http/listener.h"
#include "metrics/metrics.h"
#include "support/free_port.h"
#include "tls/grpc_credentials.h"
#include "tls/self_signed.h"
#include "tls/tls_config.h"

namespace etcdpp::http {
namespace {

std::string Alpn(std::initializer_list<std::string_view> names) {
  std::string wire;
  for (std::string_view n : names) {
    wire.push_back(static_cast<char>(n.size()));
    wire.append(n);
  }
  return wire;
}

TEST(ClientPortAlpn, GrpcClientsGetH2OthersHttp11) {
  EXPECT_EQ(tls::ChooseClientPortAlpn(Alpn({"h2"})), "h2");                    // Go gRPC (etcdctl)
  EXPECT_EQ(tls::ChooseClientPortAlpn(Alpn({"grpc-exp", "h2"})), "h2");        // gRPC C-core
  EXPECT_EQ(tls::ChooseClientPortAlpn(Alpn({"h2", "http/1.1"})), "http/1.1");  // curl
  EXPECT_EQ(tls::ChooseClientPortAlpn(Alpn({"http/1.1"})), "http/1.1");
  EXPECT_EQ(tls::ChooseClientPortAlpn(Alpn({"spdy/3"})), "");
  EXPECT_EQ(tls::ChooseClientPortAlpn(""), "");
  EXPECT_EQ(tls::ChooseClientPortAlpn(std::string("\x05h2", 3)), "");  // length past the end
}

TEST(CipherSuites, EtcdNamesMapToOpenSsl) {
  auto list = tls::CipherSuitesToOpenSsl(
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(*list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  auto unknown = tls::CipherSuitesToOpenSsl({"TLS_NOT_A_SUITE"});
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("TLS_NOT_A_SUITE"), std::string::npos);
  // TLS 1.3 suites are not configurable, as in etcd.
  EXPECT_FALSE(tls::CipherSuitesToOpenSsl({"TLS_AES_128_GCM_SHA256"}).ok());
  EXPECT_TRUE(tls::CipherSuitesToOpenSsl({}).ok());  // the default set
  EXPECT_TRUE(tls::ParseMinVersion("TLS1.3").ok());
  EXPECT_FALSE(tls::ParseMinVersion("TLS1.0").ok());
}

// Range("whoami") answers the verified client certificate's common name.
class WhoAmIKv final : public etcdserverpb::KV::CallbackService {
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest*,
                                  etcdserverpb::RangeResponse* response) override {
    auto* kv = response->add_kvs();
    kv->set_key("whoami");
    kv->set_value(api::VerifiedClientCommonName(*context).value_or("<none>"));
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

using etcdpp::testing::FreePort;

bool RunShell(const std::string& command) {
  return std::system((command + " 2>/dev/null").c_str()) == 0;
}

class TlsListenerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("etcdpp-tls-test-" + std::to_string(getpid())));
    std::filesystem::create_directories(*dir_);
    const std::string d = *dir_;
    auto ca = [&](const std::string& name) {
      return RunShell(
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + d +
          "/" + name + ".key -out " + d + "/" + name + ".crt -days 2 -subj /CN=" + name);
    };
    auto leaf = [&](const std::string& name, const std::string& issuer, const std::string& cn) {
      std::ofstream(d + "/" + name + ".ext")
          << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
      return RunShell("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                      d + "/" + name + ".key -out " + d + "/" + name + ".csr -subj /CN=" + cn) &&
             RunShell("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/" + issuer +
                      ".crt -CAkey " + d + "/" + issuer + ".key -CAcreateserial -days 2 -out " + d +
                      "/" + name + ".crt -extfile " + d + "/" + name + ".ext");
    };
    made_ = ca("ca") && ca("rogue") && leaf("server", "ca", "server") &&
            leaf("server2", "ca", "server-rotated") && leaf("client", "ca", "alice") &&
            leaf("rogue-client", "rogue", "alice");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string File(const std::string& name) { return *dir_ + "/" + name; }

  void SetUp() override {
    ASSERT_TRUE(made_) << "the openssl command failed to make the test certificates";
    // The listener reads copies, so a test can rotate them.
    std::filesystem::copy_file(File("server.crt"), File("live.crt"),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(File("server.key"), File("live.key"),
                               std::filesystem::copy_options::overwrite_existing);
    tls::TlsOptions tls;
    tls.cert_file = File("live.crt");
    tls.key_file = File("live.key");
    tls.trusted_ca_file = File("ca.crt");
    tls.client_cert_auth = true;
    tls.alpn_for_client_port = true;
    auto source = tls::ServerContextSource::Create(tls);
    ASSERT_TRUE(source.ok()) << source.status().ToString();

    grpc::ServerBuilder builder;
    builder.RegisterService(&kv_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    port_ = FreePort();
    ListenerOptions options;
    options.tls_client_addresses = {"127.0.0.1:" + std::to_string(port_)};
    options.tls = std::move(*source);
    options.grpc_server = server_.get();
    options.registry = &registry_;
    auto listener = Listener::Start(options);
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    listener_ = std::move(*listener);
  }

  void TearDown() override {
    if (listener_) listener_->Stop();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    listener_.reset();
  }

  // Range("whoami") over gRPC with the given client certificate files.
  grpc::Status WhoAmI(const std::string& cert, const std::string& key, std::string* name) {
    auto creds = tls::ClientChannelCredentials({File("ca.crt"), cert, key, false});
    EXPECT_TRUE(creds.ok());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args);
    auto stub = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::RangeResponse response;
    grpc::Status st = stub->Range(&context, etcdserverpb::RangeRequest(), &response);
    if (st.ok() && response.kvs_size() == 1) *name = response.kvs(0).value();
    return st;
  }

  struct TlsReply {
    bool handshake_ok = false;
    std::string server_cn;
    std::string bytes;  // everything received until the server closed
  };

  // An HTTP request over TLS with OpenSSL directly: `alpn` offered (empty:
  // no ALPN), the client certificate given.
  TlsReply HttpsExchange(const std::string& request, const std::string& alpn) {
    TlsReply reply;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate_file(ctx, File("client.crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, File("client.key").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx, File("ca.crt").c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned>(alpn.size()));
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SSL* ssl = SSL_new(ctx);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        reply.handshake_ok = true;
        X509* cert = SSL_get0_peer_certificate(ssl);
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        reply.server_cn = cn;
        SSL_write(ssl, request.data(), static_cast<int>(request.size()));
        char buf[4096];
        for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) {
          reply.bytes.append(buf, static_cast<size_t>(n));
        }
      }
    }
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return reply;
  }

  static inline std::string* dir_ = nullptr;
  static inline bool made_ = false;
  WhoAmIKv kv_;
  metrics::Registry registry_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
};

constexpr char kHealthRequest[] =
    "GET /nothing-here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

TEST_F(TlsListenerTest, GrpcCallSeesTheClientCertificateCommonName) {
  std::string name;
  for (int i = 0; i < 3; ++i) {  // one connection per channel: each relayed anew
    const grpc::Status st = WhoAmI(File("client.crt"), File("client.key"), &name);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(name, "alice");
  }
}

TEST_F(TlsListenerTest, ClientsWithoutAnAcceptedCertificateAreRefused) {
  std::string name;
  EXPECT_FALSE(WhoAmI("", "", &name).ok());
  EXPECT_FALSE(WhoAmI(File("rogue-client.crt"), File("rogue-client.key"), &name).ok());
  EXPECT_EQ(name, "");
}

TEST_F(TlsListenerTest, HttpWithAlpnAndWithout) {
  for (const std::string& alpn : {Alpn({"h2", "http/1.1"}), Alpn({"http/1.1"}), std::string()}) {
    const TlsReply reply = HttpsExchange(kHealthRequest, alpn);
    ASSERT_TRUE(reply.handshake_ok);
    EXPECT_EQ(reply.bytes.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << reply.bytes;
    EXPECT_NE(reply.bytes.find("404 page not found"), std::string::npos) << reply.bytes;
  }
}

TEST_F(TlsListenerTest, RotatedCertificateServesTheNextHandshake) {
  EXPECT_EQ(HttpsExchange(kHealthRequest, "").server_cn, "server");
  // Rewrite the files in place (a new mtime), as a certificate rotation does.
  std::filesystem::copy_file(File("server2.crt"), File("live.crt"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(File("server2.key"), File("live.key"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(HttpsExchange(kHealthRequest, "").server_cn, "server-rotated");
  std::string name;
  ASSERT_TRUE(WhoAmI(File("client.crt"), File("client.key"), &name).ok());
  EXPECT_EQ(name, "alice");
}

TEST(SelfSigned, MakesALoadableCertificateAndReusesIt) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("etcdpp-selfsigned-" + std::to_string(getpid()));
  auto files = tls::SelfSignedCertificate(dir, {"127.0.0.1", "localhost"});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  tls::TlsOptions options;
  options.cert_file = files->cert_file;
  options.key_file = files->key_file;
  EXPECT_TRUE(tls::ServerContextSource::Create(options).ok());
  const auto before = std::filesystem::last_write_time(files->cert_file);
  auto again = tls::SelfSignedCertificate(dir, {"127.0.0.1"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::filesystem::last_write_time(again->cert_file), before);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace etcdpp::http
