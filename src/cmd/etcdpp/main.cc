// etcdpp: the server. Flags and environment variables are named like etcd's
// (--name / ETCD_NAME, ...) so command lines and unit files that start etcd
// start etcdpp.
#include <absl/synchronization/mutex.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "auth/jwt.h"
#include "http/client_port.h"
#include "server/auto_compactor.h"
#include "server/etcd_server.h"
#include "server/membership.h"
#include "tls/grpc_credentials.h"
#include "tls/self_signed.h"
#include "tls/tls_config.h"

// The program's own pieces: log setup, the listen-port check, --version.
#include "cmd/etcdpp/listen_check.h"
#include "cmd/etcdpp/logging.h"
#include "cmd/version/version.h"

namespace {

using etcdpp::Result;
using etcdpp::Status;

struct Flags {
  std::string name = "default";
  std::string data_dir;
  std::string listen_client_urls = "http://127.0.0.1:2379";
  std::string advertise_client_urls = "http://127.0.0.1:2379";
  std::string listen_metrics_urls;
  bool enable_v2 = false;
  std::string metrics = "basic";
  bool enable_ui = true;
  bool h2_front = true;
  bool peer_batch_stream = true;
  std::string listen_peer_urls = "http://127.0.0.1:2380";
  std::string initial_advertise_peer_urls = "http://127.0.0.1:2380";
  std::string initial_cluster;
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  uint64_t snapshot_count = 100000;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t max_txn_ops = 128;
  int64_t quota_backend_bytes = 0;
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";
  uint64_t heartbeat_interval_ms = 100;
  uint64_t election_timeout_ms = 1000;
  std::string watch_progress_notify_interval = "10m0s";
  bool initial_corrupt_check = false;
  std::string corrupt_check_time = "0s";
  bool answer_before_commit = true;
  std::string backend_batch_interval;
  uint64_t backend_batch_limit = 0;
  uint64_t delete_keys_per_part = etcdpp::server::ServerOptions{}.delete_keys_per_part;
  std::string backend_commit_delay;
  std::string log_level = "info";
  std::string log_format = "json";
  std::string log_outputs = "stderr";
  std::string auth_token = "simple";
  uint64_t auth_token_ttl = 300;
  int bcrypt_cost = 10;
  // Client TLS (https:// client URLs).
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  bool client_cert_auth = false;
  bool auto_tls = false;
  // Peer TLS (https:// peer URLs).
  std::string peer_cert_file;
  std::string peer_key_file;
  std::string peer_trusted_ca_file;
  bool peer_client_cert_auth = false;
  bool peer_auto_tls = false;
  std::string peer_cert_allowed_cn;
  // Both.
  std::string cipher_suites;
  std::string tls_min_version = "TLS1.2";
};

// etcd's option, etcd's environment variable: --foo-bar <-> ETCD_FOO_BAR.
template <typename T>
CLI::Option* AddFlag(CLI::App& app, const std::string& name, T& value, const std::string& help) {
  std::string env = "ETCD_";
  for (char c : name) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return app.add_option("--" + name, value, help)->envname(env)->capture_default_str();
}

// A Go time.Duration string as etcd's flags take it: a sequence of decimal
// numbers with units h, m, s, ms, us (or µs), ns, e.g. "10m0s", "1.5s",
// "500ms"; "0" alone is zero. Rounded down to milliseconds, at least 1 ms.
Result<std::chrono::milliseconds> ParseGoDuration(const std::string& text) {
  auto bad = [&] { return Status::InvalidArgument("invalid duration \"" + text + "\""); };
  if (text == "0") return bad();  // A zero interval would spin.
  static const std::pair<const char*, double> kUnits[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\u00b5s", 1e-3}, {"ms", 1.0},
      {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6}};
  double total_ms = 0;
  size_t i = 0;
  if (text.empty()) return bad();
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.'))
      ++j;
    if (j == i) return bad();
    const double value = std::stod(text.substr(i, j - i));
    size_t k = j;
    while (k < text.size() && !std::isdigit(static_cast<unsigned char>(text[k])) && text[k] != '.')
      ++k;
    const std::string unit = text.substr(j, k - j);
    bool known = false;
    for (const auto& [name, ms] : kUnits) {
      if (unit == name) {
        total_ms += value * ms;
        known = true;
      }
    }
    if (!known) return bad();
    i = k;
  }
  if (total_ms < 1) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

// A boolean switch as Go's flag package takes it: --name, --name=true, --name=false.
CLI::Option* AddSwitch(CLI::App& app, const std::string& name, bool& value,
                       const std::string& help) {
  std::string env = "ETCD_";
  for (char c : name) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return app.add_flag("--" + name, value, help)->envname(env);
}

// The hosts of URLs, for a self-signed certificate's names.
std::vector<std::string> UrlHosts(const std::vector<std::string>& urls) {
  std::vector<std::string> hosts;
  for (const std::string& u : urls) {
    auto hp = etcdpp::server::HostPort(u);
    if (!hp.ok()) continue;
    std::string host = hp->substr(0, hp->rfind(':'));
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (!host.empty()) hosts.push_back(host);
  }
  return hosts;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.find(',', begin), text.size());
    if (end > begin) parts.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

bool IsHttps(const std::string& url) { return url.rfind("https://", 0) == 0; }

// The client port's certificates: the given files, or with --auto-tls a
// self-signed pair under <data-dir>/fixtures/client (as etcd). Null when no
// client URL is https.
Result<std::shared_ptr<etcdpp::tls::ServerContextSource>> ClientTls(
    const Flags& flags, const std::string& data_dir, const std::vector<std::string>& listen_urls) {
  bool any_https = false;
  for (const std::string& u : listen_urls) any_https |= IsHttps(u);
  if (!any_https) return std::shared_ptr<etcdpp::tls::ServerContextSource>();
  etcdpp::tls::TlsOptions tls;
  tls.cert_file = flags.cert_file;
  tls.key_file = flags.key_file;
  tls.trusted_ca_file = flags.trusted_ca_file;
  tls.client_cert_auth = flags.client_cert_auth;
  tls.cipher_suites = SplitCommas(flags.cipher_suites);
  tls.alpn_for_client_port = true;
  auto min_version = etcdpp::tls::ParseMinVersion(flags.tls_min_version);
  if (!min_version.ok()) return min_version.status();
  tls.min_version = *min_version;
  if (tls.cert_file.empty() && flags.auto_tls) {
    auto files =
        etcdpp::tls::SelfSignedCertificate(data_dir + "/fixtures/client", UrlHosts(listen_urls));
    if (!files.ok()) return files.status();
    tls.cert_file = files->cert_file;
    tls.key_file = files->key_file;
  }
  if (tls.cert_file.empty()) {
    return Status::InvalidArgument(
        "https client URLs need --cert-file and --key-file (or --auto-tls)");
  }
  auto source = etcdpp::tls::ServerContextSource::Create(std::move(tls));
  if (!source.ok()) return source.status();
  return std::shared_ptr<etcdpp::tls::ServerContextSource>(std::move(*source));
}

// The peer port's TLS: the given files, or with --peer-auto-tls a
// self-signed pair under <data-dir>/fixtures/peer whose peers are not
// verified (as etcd). Disabled when no peer URL is https.
Result<etcdpp::transport::PeerTlsOptions> PeerTls(const Flags& flags, const std::string& data_dir,
                                                  const std::vector<std::string>& peer_urls) {
  etcdpp::transport::PeerTlsOptions tls;
  bool any_https = false;
  for (const std::string& u : peer_urls) any_https |= IsHttps(u);
  if (!any_https) return tls;
  // The peer port and the channels to peers are gRPC's TLS.
  ETCDPP_RETURN_IF_ERROR(etcdpp::tls::RestrictGrpcCipherSuites(SplitCommas(flags.cipher_suites)));
  tls.cert_file = flags.peer_cert_file;
  tls.key_file = flags.peer_key_file;
  tls.trusted_ca_file = flags.peer_trusted_ca_file;
  tls.client_cert_auth = flags.peer_client_cert_auth;
  tls.allowed_common_name = flags.peer_cert_allowed_cn;
  if (tls.cert_file.empty() && flags.peer_auto_tls) {
    auto files =
        etcdpp::tls::SelfSignedCertificate(data_dir + "/fixtures/peer", UrlHosts(peer_urls));
    if (!files.ok()) return files.status();
    tls.cert_file = files->cert_file;
    tls.key_file = files->key_file;
    tls.skip_server_verify = true;
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return Status::InvalidArgument(
        "https peer URLs need --peer-cert-file and --peer-key-file (or --peer-auto-tls)");
  }
  if (tls.client_cert_auth && tls.trusted_ca_file.empty()) {
    return Status::InvalidArgument("--peer-client-cert-auth needs --peer-trusted-ca-file");
  }
  auto min_version = etcdpp::tls::ParseMinVersion(flags.tls_min_version);
  if (!min_version.ok()) return min_version.status();
  tls.require_tls13 = *min_version == etcdpp::tls::MinVersion::kTls13;
  ETCDPP_RETURN_IF_ERROR(etcdpp::transport::ValidatePeerTls(tls));
  return tls;
}

int Fail(const Status& st) {
  const std::string text = st.message().empty() ? st.ToString() : st.message();
  spdlog::critical("{}", text);
  std::fprintf(stderr, "etcdpp: %s\n", text.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"etcdpp: a distributed, reliable key-value store speaking etcd's v3 API"};
  app.set_version_flag("--version", etcdpp::version::ServerVersionText());
  AddFlag(app, "name", flags.name, "Human-readable name for this member.");
  AddFlag(app, "data-dir", flags.data_dir, "Path to the data directory (default: ${name}.etcdpp).");
  AddFlag(app, "listen-client-urls", flags.listen_client_urls,
          "List of URLs to listen on for client traffic.");
  AddFlag(app, "advertise-client-urls", flags.advertise_client_urls,
          "List of this member's client URLs to advertise to the rest of the cluster.");
  AddFlag(app, "listen-metrics-urls", flags.listen_metrics_urls,
          "List of URLs to also serve /metrics and /health on (HTTP only).");
  AddFlag(app, "metrics", flags.metrics,
          "'basic', or 'extensive' to also time every gRPC call (per-method latency histograms).")
      ->check(CLI::IsMember({"basic", "extensive"}));
  // A flag, so both "--enable-ui" and "--enable-ui=false" parse.
  app.add_flag("--enable-ui", flags.enable_ui,
               "Serve the web console at /ui on the client URLs (--enable-ui=false turns it off).")
      ->envname("ETCD_ENABLE_UI")
      ->capture_default_str();
  // A Go bool flag: --enable-v2, --enable-v2=true|false, ETCD_ENABLE_V2.
  app.add_flag("--enable-v2", flags.enable_v2,
               "Accept etcd V2 client requests (the /v2/keys API); off by default as in etcd 3.4.")
      ->envname("ETCD_ENABLE_V2")
      ->capture_default_str();
  // etcdpp only (docs/grpc_floor.md): no etcd flag to mirror. The name it
  // had while it was off by default still works.
  app.add_flag("--h2-front,--experimental-h2-front", flags.h2_front,
               "Serve gRPC client connections with etcdpp's own HTTP/2 server (KV, "
               "LeaseKeepAlive and Watch natively, other methods relayed to gRPC; TLS connections "
               "with a client certificate stay on gRPC). --h2-front=false serves every "
               "connection with gRPC C++.")
      ->envname("ETCD_H2_FRONT")
      ->capture_default_str();
  // etcdpp only (docs/transport.md, "The batch stream").
  app.add_flag("--experimental-peer-batch-stream", flags.peer_batch_stream,
               "Between plaintext peers, send Raft messages over etcdpp's batch stream on the "
               "peer port (gRPC's stream stays for TLS peers and for members without it). "
               "=false: gRPC's stream only.")
      ->envname("ETCD_EXPERIMENTAL_PEER_BATCH_STREAM")
      ->capture_default_str();
  AddFlag(app, "listen-peer-urls", flags.listen_peer_urls,
          "List of URLs to listen on for peer traffic.");
  AddFlag(app, "initial-advertise-peer-urls", flags.initial_advertise_peer_urls,
          "List of this member's peer URLs to advertise to the rest of the cluster.");
  AddFlag(app, "initial-cluster", flags.initial_cluster,
          "Initial cluster configuration for bootstrapping (name=peer-url,...).");
  AddFlag(app, "initial-cluster-state", flags.initial_cluster_state,
          "Initial cluster state ('new' or 'existing').")
      ->check(CLI::IsMember({"new", "existing"}));
  AddFlag(app, "initial-cluster-token", flags.initial_cluster_token,
          "Initial cluster token for the etcd cluster during bootstrap.");
  AddFlag(app, "snapshot-count", flags.snapshot_count,
          "Number of committed transactions to trigger a snapshot to disk.");
  AddFlag(app, "max-request-bytes", flags.max_request_bytes,
          "Maximum client request size in bytes the server will accept.");
  AddFlag(app, "max-txn-ops", flags.max_txn_ops,
          "Maximum number of operations permitted in a transaction.");
  AddFlag(app, "quota-backend-bytes", flags.quota_backend_bytes,
          "Backend size in bytes past which writes are refused and the NOSPACE alarm is "
          "raised; 0 means 2 GiB, the largest is 8 GiB.");
  AddFlag(app, "auto-compaction-mode", flags.auto_compaction_mode,
          "How the retention is counted: 'periodic' (a time span) or 'revision' (a number of "
          "revisions).");
  AddFlag(app, "auto-compaction-retention", flags.auto_compaction_retention,
          "History the leader keeps when it compacts by itself: hours or a duration such as "
          "'30m' in periodic mode, revisions in revision mode; 0 turns it off.");
  AddFlag(app, "heartbeat-interval", flags.heartbeat_interval_ms,
          "Time (in milliseconds) of a heartbeat interval.");
  AddFlag(app, "election-timeout", flags.election_timeout_ms,
          "Time (in milliseconds) for an election to timeout.");
  AddFlag(app, "experimental-watch-progress-notify-interval", flags.watch_progress_notify_interval,
          "Duration of periodic watch progress notifications (Go syntax: 10m0s, 500ms).");
  AddSwitch(app, "experimental-initial-corrupt-check", flags.initial_corrupt_check,
            "Before serving clients, compare this member's key space hash with its peers' "
            "and refuse to start if one differs.");
  AddFlag(app, "experimental-corrupt-check-time", flags.corrupt_check_time,
          "How often the leader compares every member's key space hash with its own and "
          "raises CORRUPT for a member that differs (Go syntax: 5m0s); 0s turns it off.");
  AddFlag(app, "experimental-answer-before-commit", flags.answer_before_commit,
          "Answer a write once its entry is flushed to the WAL and applied, before the "
          "backend commit's own flush (true), or after that commit (false: one more flush per "
          "write).");
  AddFlag(app, "backend-batch-interval", flags.backend_batch_interval,
          "Longest time answered writes wait in the open backend transaction for later "
          "ones to share its commit (Go syntax; empty or 0: 100ms). Whatever needs to see "
          "them (a read, a watcher, a snapshot) commits it at once.");
  AddFlag(app, "backend-batch-limit", flags.backend_batch_limit,
          "Most entries that wait in the open backend transaction (0: 10000).");
  AddFlag(app, "experimental-delete-keys-per-part", flags.delete_keys_per_part,
          "A delete of more keys commits its tombstones in parts of about this many, which "
          "readers never see apart (0: in one commit).");
  AddFlag(app, "experimental-backend-commit-delay", flags.backend_commit_delay,
          "The --backend-batch-interval of earlier etcdpp versions, where 0s commits every "
          "batch.");
  AddFlag(app, "log-level", flags.log_level, "Log level: debug, info, warn, error.")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  AddFlag(app, "log-format", flags.log_format, "Log format: json (like etcd's zap) or text.")
      ->check(CLI::IsMember({"json", "text"}));
  AddFlag(app, "log-outputs", flags.log_outputs,
          "Where logs go, comma-separated: stderr, stdout or a file path (appended to).");
  AddFlag(app, "auth-token", flags.auth_token,
          "Kind of token Authenticate hands out: 'simple' (random, kept in memory) or "
          "'jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|ES256|PS256|HS256|...>,ttl=5m' "
          "(signed, verified by any member holding the key).");
  AddFlag(app, "auth-token-ttl", flags.auth_token_ttl,
          "Seconds a simple token stays valid after its last use.");
  AddFlag(app, "bcrypt-cost", flags.bcrypt_cost, "Work factor of stored password hashes (4..31).")
      ->check(CLI::Range(4, 31));
  AddFlag(app, "cert-file", flags.cert_file, "Path to the client server TLS cert file.");
  AddFlag(app, "key-file", flags.key_file, "Path to the client server TLS key file.");
  AddFlag(app, "trusted-ca-file", flags.trusted_ca_file,
          "Path to the CA bundle that signs accepted client certificates.");
  AddSwitch(app, "client-cert-auth", flags.client_cert_auth,
            "Refuse clients without a certificate signed by --trusted-ca-file.");
  AddSwitch(app, "auto-tls", flags.auto_tls,
            "Serve https client URLs with a generated self-signed certificate.");
  AddFlag(app, "peer-cert-file", flags.peer_cert_file, "Path to the peer TLS cert file.");
  AddFlag(app, "peer-key-file", flags.peer_key_file, "Path to the peer TLS key file.");
  AddFlag(app, "peer-trusted-ca-file", flags.peer_trusted_ca_file,
          "Path to the CA bundle that signs accepted peer certificates.");
  AddSwitch(app, "peer-client-cert-auth", flags.peer_client_cert_auth,
            "Refuse peers without a certificate signed by --peer-trusted-ca-file.");
  AddSwitch(app, "peer-auto-tls", flags.peer_auto_tls,
            "Serve https peer URLs with a generated self-signed certificate.");
  AddFlag(app, "peer-cert-allowed-cn", flags.peer_cert_allowed_cn,
          "Accept only peer certificates with this common name.");
  AddFlag(app, "cipher-suites", flags.cipher_suites,
          "Comma-separated TLS 1.2 cipher suites (IANA names, as etcd); empty: a modern set.");
  AddFlag(app, "tls-min-version", flags.tls_min_version, "Lowest TLS version: TLS1.2 or TLS1.3.")
      ->check(CLI::IsMember({"TLS1.2", "TLS1.3"}));
  CLI11_PARSE(app, argc, argv);
  auto auth_token = etcdpp::auth::ParseAuthTokenFlag(flags.auth_token);
  if (!auth_token.ok()) {
    std::fprintf(stderr, "etcdpp: --auth-token: %s\n", auth_token.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<const etcdpp::auth::JwtTokens> jwt_tokens;
  if (auth_token->kind == etcdpp::auth::AuthTokenConfig::Kind::kJwt) {
    auto created = etcdpp::auth::JwtTokens::Create(auth_token->jwt);
    if (!created.ok()) {
      std::fprintf(stderr, "etcdpp: --auth-token: %s\n", created.status().ToString().c_str());
      return 1;
    }
    jwt_tokens = std::move(created.value());
  }

  if (Status logging =
          etcdpp::cmd::SetUpLogging({flags.log_outputs, flags.log_format, flags.log_level});
      !logging.ok()) {
    std::fprintf(stderr, "etcdpp: %s\n", logging.message().c_str());
    return 1;
  }
  // Before the data dir is touched: a taken port ends the start in one line.
  if (Status listenable = etcdpp::cmd::CheckListenUrls(
          flags.listen_client_urls, flags.listen_peer_urls, flags.initial_cluster);
      !listenable.ok()) {
    return Fail(listenable);
  }
  // Debian builds abseil with deadlock detection on, so every absl::Mutex
  // gRPC takes walks a lock graph (measured: ~4% of the server's CPU under a
  // put load). It finds bugs in gRPC, not in etcdpp: turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Signals are taken synchronously by sigwait below; block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  etcdpp::server::ServerOptions options;
  options.name = flags.name;
  options.data_dir = flags.data_dir.empty() ? flags.name + ".etcdpp" : flags.data_dir;
  auto client_urls = etcdpp::server::ParseUrls(flags.advertise_client_urls);
  if (!client_urls.ok()) return Fail(client_urls.status());
  options.client_urls = *client_urls;
  auto peer_urls = etcdpp::server::ParseUrls(flags.initial_advertise_peer_urls);
  if (!peer_urls.ok()) return Fail(peer_urls.status());
  options.initial_advertise_peer_urls = *peer_urls;
  auto listen_peer = etcdpp::server::ParseUrls(flags.listen_peer_urls);
  if (!listen_peer.ok()) return Fail(listen_peer.status());
  options.listen_peer_urls = *listen_peer;
  options.initial_cluster = flags.initial_cluster;
  if (options.initial_cluster.empty()) {
    for (const std::string& u : *peer_urls) {
      if (!options.initial_cluster.empty()) options.initial_cluster += ",";
      options.initial_cluster += flags.name + "=" + u;
    }
  }
  std::vector<std::string> all_peer_urls = *listen_peer;
  all_peer_urls.insert(all_peer_urls.end(), peer_urls->begin(), peer_urls->end());
  auto peer_tls = PeerTls(flags, options.data_dir, all_peer_urls);
  if (!peer_tls.ok()) return Fail(peer_tls.status());
  options.peer_tls = *peer_tls;
  options.peer_batch_stream = flags.peer_batch_stream;
  options.initial_cluster_state = flags.initial_cluster_state;
  options.initial_cluster_token = flags.initial_cluster_token;
  options.snapshot_count = flags.snapshot_count;
  options.auth_token_ttl = std::chrono::seconds(flags.auth_token_ttl);
  options.jwt_tokens = jwt_tokens;
  options.bcrypt_cost = flags.bcrypt_cost;
  options.max_request_bytes = flags.max_request_bytes;
  options.max_txn_ops = flags.max_txn_ops;
  // The LMDB map is sized from the quota, so a quota cannot be turned off
  // (etcd's negative value); it is capped where etcd stops recommending it.
  constexpr int64_t kMaxQuotaBytes = int64_t{8} << 30;
  if (flags.quota_backend_bytes < 0 || flags.quota_backend_bytes > kMaxQuotaBytes) {
    return Fail(Status::InvalidArgument("--quota-backend-bytes must be between 0 and " +
                                        std::to_string(kMaxQuotaBytes)));
  }
  if (flags.quota_backend_bytes > 0) {
    options.quota_backend_bytes = static_cast<uint64_t>(flags.quota_backend_bytes);
  }
  auto auto_compaction = etcdpp::server::ParseAutoCompaction(flags.auto_compaction_mode,
                                                             flags.auto_compaction_retention);
  if (!auto_compaction.ok()) return Fail(auto_compaction.status());
  options.auto_compaction = *auto_compaction;
  options.heartbeat_interval = std::chrono::milliseconds(flags.heartbeat_interval_ms);
  options.election_timeout = std::chrono::milliseconds(flags.election_timeout_ms);
  auto progress_interval = ParseGoDuration(flags.watch_progress_notify_interval);
  if (!progress_interval.ok()) return Fail(progress_interval.status());
  options.watch_progress_notify_interval = *progress_interval;
  options.initial_corrupt_check = flags.initial_corrupt_check;
  options.answer_before_commit = flags.answer_before_commit;
  if (!flags.backend_batch_interval.empty() && !flags.backend_commit_delay.empty()) {
    return Fail(Status::InvalidArgument(
        "--backend-batch-interval and --experimental-backend-commit-delay set the same "
        "interval: give one of them"));
  }
  // etcd's flag: zero in any spelling means the default. The experimental
  // one: zero commits every batch.
  if (flags.backend_batch_interval.find_first_of("123456789") != std::string::npos) {
    auto interval = ParseGoDuration(flags.backend_batch_interval);
    if (!interval.ok()) return Fail(interval.status());
    options.backend_commit_delay = *interval;
  } else if (!flags.backend_commit_delay.empty()) {
    options.backend_commit_delay = std::chrono::milliseconds(0);
    if (flags.backend_commit_delay.find_first_of("123456789") != std::string::npos) {
      auto delay = ParseGoDuration(flags.backend_commit_delay);
      if (!delay.ok()) return Fail(delay.status());
      options.backend_commit_delay = *delay;
    }
  }
  if (flags.backend_batch_limit != 0) options.backend_batch_limit = flags.backend_batch_limit;
  options.delete_keys_per_part = flags.delete_keys_per_part;
  // Zero in any spelling ("0s", "0m0s") turns the periodic check off.
  if (flags.corrupt_check_time.find_first_of("123456789") != std::string::npos) {
    auto corrupt_check = ParseGoDuration(flags.corrupt_check_time);
    if (!corrupt_check.ok()) return Fail(corrupt_check.status());
    options.corrupt_check_interval = *corrupt_check;
  }
  if (flags.election_timeout_ms < 5 * flags.heartbeat_interval_ms) {
    return Fail(Status::InvalidArgument(
        "--election-timeout should be at least 5 times --heartbeat-interval"));
  }

  auto listen = etcdpp::server::ParseUrls(flags.listen_client_urls);
  if (!listen.ok()) return Fail(listen.status());
  etcdpp::http::ClientPortOptions port_options;
  port_options.grpc_handling_seconds = flags.metrics == "extensive";
  port_options.enable_ui = flags.enable_ui;
  port_options.enable_v2 = flags.enable_v2;
  port_options.h2_front = flags.h2_front;
  for (const std::string& u : *listen) {
    (IsHttps(u) ? port_options.tls_client_addresses : port_options.client_addresses)
        .push_back(*etcdpp::server::HostPort(u));
  }
  auto client_tls = ClientTls(flags, options.data_dir, *listen);
  if (!client_tls.ok()) return Fail(client_tls.status());
  port_options.tls = *client_tls;
  if (!flags.listen_metrics_urls.empty()) {
    auto metrics_urls = etcdpp::server::ParseUrls(flags.listen_metrics_urls);
    if (!metrics_urls.ok()) return Fail(metrics_urls.status());
    for (const std::string& u : *metrics_urls) {
      port_options.metrics_addresses.push_back(*etcdpp::server::HostPort(u));
    }
  }

  // A member removed from the cluster stops itself, as if told to.
  options.on_removed = [] { kill(getpid(), SIGTERM); };

  spdlog::info("starting etcdpp member {} with data dir {}", options.name, options.data_dir);
  auto server = etcdpp::server::EtcdServer::Start(options);
  if (!server.ok()) return Fail(server.status());
  if (options.initial_corrupt_check) {
    etcdpp::Status consistent = (*server)->CheckDataAgainstPeers();
    if (!consistent.ok()) {
      (*server)->Stop();
      return Fail(consistent);
    }
  }
  auto clients = etcdpp::http::ClientPort::Start(server->get(), port_options);
  if (!clients.ok()) return Fail(clients.status());
  spdlog::info("serving clients (gRPC and HTTP) on {}", flags.listen_client_urls);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // A leader hands over first, so the cluster does not wait out an election
  // timeout (etcd does the same; bounded).
  if (!(*server)->removed()) {
    etcdpp::Status transferred = (*server)->TransferLeadershipForStop(options.election_timeout * 3);
    if (!transferred.ok()) spdlog::warn("leadership transfer: {}", transferred.ToString());
  }
  // Stop the member first: requests still waiting on Raft complete with
  // "etcdserver: server stopped" at once, so gRPC's shutdown, which waits for
  // every call in flight, does not wait for their timeouts.
  (*server)->Stop();
  (*clients)->Shutdown(2000);
  spdlog::info("stopped");
  return 0;
}
