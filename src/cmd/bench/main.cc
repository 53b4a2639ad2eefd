// etcdpp-bench: a load generator for etcd v3 servers (etcdpp or etcd), with
// the flags and report of etcd's tools/benchmark:
//
//   etcdpp-bench --endpoints 127.0.0.1:2379 --conns 100 --clients 1000
//       --total 100000 put --key-size 8 --val-size 256 --key-space-size 100000
//   etcdpp-bench --conns 10 --clients 100 --total 100000 range foo --consistency s
//   etcdpp-bench --total 10000 txn-put --txn-ops 4 --key-space-size 1000
//   etcdpp-bench --total 10000 txn-mixed --rw-ratio 1 --key-space-size 1000
//   etcdpp-bench --clients 500 --total 100000 put --rate 8000   (paced, as etcd's --rate)
//   etcdpp-bench watch --streams 10 --watchers 10000 --puts 1000   (fan-out)
//   etcdpp-bench watch-latency --streams 10 --watchers-per-stream 10 --put-total 1000
//       --put-rate 100                                              (put-to-event)
//   etcdpp-bench --clients 10 --total 100000 lease-keepalive   (one lease per client)
//
// --json prints a one-line JSON summary on stdout (the report goes to stderr);
// it includes bench_cpu_s, this process's own user+system CPU seconds, so a
// caller can tell the load generator's cost from the server's.
#include <absl/synchronization/mutex.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cmd/bench/h2_load_driver.h"
#include "cmd/bench/kv_calls.h"
#include "cmd/bench/latency_report.h"
#include "cmd/bench/lease_keepalive.h"
#include "cmd/bench/load_driver.h"
#include "cmd/bench/watch_fanout.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "tls/grpc_credentials.h"

namespace etcdpp::bench {
namespace {

// Sends `token` as etcd's clients do (metadata "token") with every call.
class TokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit TokenPlugin(std::string token) : token_(std::move(token)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    metadata->emplace("token", token_);
    return grpc::Status::OK;
  }

 private:
  const std::string token_;
};

// --user name:password: one Authenticate on the first endpoint, then the
// token rides on every call of every channel. gRPC attaches call
// credentials only to TLS channels, hence TLS is required.
Result<std::shared_ptr<grpc::ChannelCredentials>> WithAuthToken(
    const std::string& user, const std::vector<std::string>& endpoints,
    std::shared_ptr<grpc::ChannelCredentials> tls) {
  if (tls == nullptr) return Status::InvalidArgument("--user needs TLS (--cacert or https://)");
  const size_t colon = user.find(':');
  if (colon == std::string::npos) return Status::InvalidArgument("--user wants name:password");
  std::string endpoint = endpoints.at(0);
  if (const size_t scheme = endpoint.find("://"); scheme != std::string::npos) {
    endpoint = endpoint.substr(scheme + 3);
  }
  auto stub = etcdserverpb::Auth::NewStub(grpc::CreateChannel(endpoint, tls));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  etcdserverpb::AuthenticateRequest request;
  request.set_name(user.substr(0, colon));
  request.set_password(user.substr(colon + 1));
  etcdserverpb::AuthenticateResponse response;
  grpc::Status status = stub->Authenticate(&context, request, &response);
  if (!status.ok()) return Status::InvalidArgument("Authenticate: " + status.error_message());
  return grpc::CompositeChannelCredentials(
      tls, grpc::MetadataCredentialsFromPlugin(std::make_unique<TokenPlugin>(response.token())));
}

std::vector<std::string> SplitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string RandomValue(int size) {
  // Printable bytes, like etcd's mustRandBytes feeds a string value.
  std::mt19937_64 random(42);
  std::string value(static_cast<size_t>(size), '\0');
  for (char& c : value) c = static_cast<char>('a' + random() % 26);
  return value;
}

// User plus system CPU seconds this process has used so far.
double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// bench_cpu_s: taken as the load ends, before its latencies are sorted for
// the report (a million samples of the watch load took about a third of the
// process's CPU to sort), so that it is the generator's cost of the load.
std::string CpuField(double cpu_s) { return fmt::format("{:.3f}", cpu_s); }

// One completion-queue thread fewer than the cores (at least one), so the
// load generator leaves a core to the server it measures.
int DefaultThreads() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::clamp(cores - 1, 1u, 4u));
}

int Main(int argc, char** argv) {
  CLI::App app{"etcdpp-bench: benchmark an etcd v3 compatible server"};
  app.require_subcommand(1);
  std::string endpoints = "127.0.0.1:2379";
  LoadOptions load;
  load.threads = 0;
  bool json = false;
  int request_timeout_s = 30;
  app.add_option("--endpoints", endpoints, "comma-separated gRPC endpoints");
  tls::ClientTlsFiles tls_files;
  bool insecure_transport = true;
  app.add_option("--cacert", tls_files.ca_file, "verify the server with this CA bundle (TLS)");
  app.add_option("--cert", tls_files.cert_file, "client certificate (TLS)");
  app.add_option("--key", tls_files.key_file, "client certificate's key (TLS)");
  app.add_flag("--insecure-skip-tls-verify", tls_files.skip_verify,
               "TLS without verifying the server's certificate");
  app.add_flag("--insecure-transport", insecure_transport,
               "plaintext unless a file is given or an endpoint is https:// (default true)");
  std::string user;
  app.add_option("--user", user,
                 "name:password: log in once and send the token with every request (needs TLS)");
  app.add_option("--conns", load.conns, "total number of gRPC connections")
      ->check(CLI::PositiveNumber);
  app.add_option("--clients", load.clients,
                 "total number of concurrent clients (in-flight requests)")
      ->check(CLI::PositiveNumber);
  app.add_option("--total", load.total, "total number of requests")->check(CLI::PositiveNumber);
  app.add_option("--threads", load.threads,
                 "completion-queue threads (default: cores - 1, between 1 and 4; watch "
                 "and watch-latency: 1)");
  app.add_option("--request-timeout", request_timeout_s, "per-request deadline, seconds");
  std::string client_kind = "auto";
  app.add_option("--client", client_kind,
                 "unary loads' client: h2 (the tool's own HTTP/2 client), grpc (gRPC C++), or "
                 "auto: h2 on plaintext connections without --user, else grpc")
      ->check(CLI::IsMember({"auto", "h2", "grpc"}));
  app.add_flag("--json", json, "print a one-line JSON summary on stdout, the report on stderr");

  PutOptions put;
  auto* put_cmd = app.add_subcommand("put", "benchmark put");
  put_cmd->add_option("--key-size", put.key_size, "key size in bytes")->check(CLI::PositiveNumber);
  put_cmd->add_option("--val-size", put.val_size, "value size in bytes")
      ->check(CLI::NonNegativeNumber);
  put_cmd->add_option("--key-space-size", put.key_space_size, "maximum possible keys")
      ->check(CLI::PositiveNumber);
  put_cmd->add_flag("--sequential-keys", put.sequential_keys, "use sequential keys");
  const std::string rate_help =
      "requests per second at most, spread evenly over the load (0: no limit); a "
      "client waits for its next request's turn and its latency counts from the send";
  put_cmd->add_option("--rate", load.rate, rate_help)->check(CLI::NonNegativeNumber);

  int txn_ops = 1;
  PutOptions txn_put;
  auto* txn_put_cmd = app.add_subcommand("txn-put", "benchmark txn with puts only");
  txn_put_cmd->add_option("--key-size", txn_put.key_size, "key size in bytes")
      ->check(CLI::PositiveNumber);
  txn_put_cmd->add_option("--val-size", txn_put.val_size, "value size in bytes")
      ->check(CLI::NonNegativeNumber);
  txn_put_cmd->add_option("--key-space-size", txn_put.key_space_size, "maximum possible keys")
      ->check(CLI::PositiveNumber);
  txn_put_cmd->add_option("--txn-ops", txn_ops, "puts per transaction")->check(CLI::PositiveNumber);
  txn_put_cmd->add_flag("--sequential-keys", txn_put.sequential_keys, "use sequential keys");
  bool txn_guarded = false;
  txn_put_cmd->add_flag("--guard-mod-revision", txn_guarded,
                        "guard each put with a compare on its key's mod_revision that always "
                        "holds (as a Kubernetes update is guarded)");
  txn_put_cmd->add_option("--rate", load.rate, rate_help)->check(CLI::NonNegativeNumber);

  TxnMixedOptions mixed;
  std::string mixed_consistency = "l";
  auto* txn_mixed_cmd = app.add_subcommand(
      "txn-mixed", "benchmark txns of one range or one put, in the ratio --rw-ratio");
  txn_mixed_cmd->add_option("--key-size", mixed.keys.key_size, "key size in bytes")
      ->check(CLI::PositiveNumber);
  txn_mixed_cmd->add_option("--val-size", mixed.keys.val_size, "value size in bytes")
      ->check(CLI::NonNegativeNumber);
  txn_mixed_cmd->add_option("--key-space-size", mixed.keys.key_space_size, "maximum possible keys")
      ->check(CLI::PositiveNumber);
  txn_mixed_cmd->add_option("--rw-ratio", mixed.rw_ratio, "reads per write")
      ->check(CLI::NonNegativeNumber);
  txn_mixed_cmd
      ->add_option("--consistency", mixed_consistency, "linearizable (l) or serializable (s)")
      ->check(CLI::IsMember({"l", "s"}));
  txn_mixed_cmd->add_option("--rate", load.rate, rate_help)->check(CLI::NonNegativeNumber);

  std::string range_key, range_end, consistency = "l";
  auto* range_cmd = app.add_subcommand("range", "benchmark range");
  range_cmd->add_option("key", range_key, "key to read")->required();
  range_cmd->add_option("end", range_end, "range end (exclusive)");
  range_cmd->add_option("--consistency", consistency, "linearizable (l) or serializable (s)")
      ->check(CLI::IsMember({"l", "s"}));
  range_cmd->add_option("--rate", load.rate, rate_help)->check(CLI::NonNegativeNumber);

  WatchFanoutOptions fanout;
  auto* watch_cmd = app.add_subcommand(
      "watch", "watch fan-out: watchers on one key, sequential puts to it, events/s delivered");
  watch_cmd->add_option("--streams", fanout.streams, "watch streams (one connection each)")
      ->check(CLI::PositiveNumber);
  watch_cmd->add_option("--watchers", fanout.watchers, "watchers in all")
      ->check(CLI::PositiveNumber);
  watch_cmd->add_option("--puts", fanout.puts, "puts to the watched key")
      ->check(CLI::PositiveNumber);
  watch_cmd->add_option("--val-size", fanout.val_size, "value size in bytes")
      ->check(CLI::NonNegativeNumber);

  WatchFanoutOptions latency_load;
  latency_load.streams = 10;
  latency_load.puts = 1000;
  latency_load.put_rate = 100;
  latency_load.val_size = 32;
  int watchers_per_stream = 10;
  auto* watch_latency_cmd = app.add_subcommand(
      "watch-latency", "put-to-event latency: paced puts to a key, watchers on it");
  watch_latency_cmd->add_option("--streams", latency_load.streams, "watch streams")
      ->check(CLI::PositiveNumber);
  watch_latency_cmd->add_option("--watchers-per-stream", watchers_per_stream, "watchers each")
      ->check(CLI::PositiveNumber);
  watch_latency_cmd->add_option("--put-total", latency_load.puts, "puts in all")
      ->check(CLI::PositiveNumber);
  watch_latency_cmd->add_option("--put-rate", latency_load.put_rate, "puts per second")
      ->check(CLI::PositiveNumber);
  watch_latency_cmd->add_option("--val-size", latency_load.val_size, "value size in bytes")
      ->check(CLI::PositiveNumber);

  auto* lease_cmd = app.add_subcommand(
      "lease-keepalive",
      "lease keep-alive throughput: --clients streams, one lease and one request in flight each");

  CLI11_PARSE(app, argc, argv);

  // TLS as etcdctl decides it: a file given, an https:// endpoint, or
  // --insecure-transport=false.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!tls_files.ca_file.empty() || !tls_files.cert_file.empty() || tls_files.skip_verify ||
      endpoints.find("https://") != std::string::npos || !insecure_transport) {
    auto made = tls::ClientChannelCredentials(tls_files);
    if (!made.ok()) {
      fmt::print(stderr, "etcdpp-bench: {}\n", made.status().message());
      return 1;
    }
    credentials = *made;
  }
  if (!user.empty()) {
    auto with_token = WithAuthToken(user, SplitEndpoints(endpoints), credentials);
    if (!with_token.ok()) {
      fmt::print(stderr, "etcdpp-bench: {}\n", with_token.status().message());
      return 1;
    }
    credentials = *with_token;
  }

  if (lease_cmd->parsed()) {
    LeaseKeepAliveOptions ka;
    ka.endpoints = SplitEndpoints(endpoints);
    ka.credentials = credentials;
    ka.streams = load.clients;
    ka.conns = load.conns;
    ka.total = load.total;
    ka.timeout = std::chrono::seconds(request_timeout_s * 4);
    if (client_kind == "h2" && credentials != nullptr) {
      fmt::print(stderr, "etcdpp-bench: --client h2 takes neither TLS nor --user\n");
      return 2;
    }
    const bool use_h2 = client_kind == "h2" || (client_kind == "auto" && credentials == nullptr);
    LeaseKeepAliveResult r = use_h2 ? RunLeaseKeepAliveOverH2(ka) : RunLeaseKeepAlive(ka);
    const double load_cpu_s = OwnCpuSeconds();
    std::FILE* out = json ? stderr : stdout;
    fmt::print(out,
               "lease keep-alive: {} streams, {} keep-alives in {:.3f} s (one grant per stream "
               "included)\n  {:.0f} keep-alives/s, latency avg {:.4f} s, p99 {:.4f} s\n",
               ka.streams, r.keepalives, r.total_s, r.per_s, r.avg_latency_s, r.p99_latency_s);
    if (!r.error.empty()) fmt::print(stderr, "etcdpp-bench: {}\n", r.error);
    if (json) {
      fmt::print(
          "{{\"op\":\"lease-keepalive\",\"clients\":{},\"keepalives\":{},\"total_s\":{:.6f},"
          "\"per_s\":{:.1f},\"avg_s\":{:.6f},\"p99_s\":{:.6f},\"client\":\"{}\","
          "\"bench_cpu_s\":{}}}\n",
          ka.streams, r.keepalives, r.total_s, r.per_s, r.avg_latency_s, r.p99_latency_s,
          use_h2 ? "h2" : "grpc", CpuField(load_cpu_s));
    }
    std::fflush(stdout);
    return r.error.empty() ? 0 : 1;
  }

  if (watch_cmd->parsed() || watch_latency_cmd->parsed()) {
    const bool latency = watch_latency_cmd->parsed();
    WatchFanoutOptions& w = latency ? latency_load : fanout;
    if (latency) w.watchers = w.streams * watchers_per_stream;
    w.endpoints = SplitEndpoints(endpoints);
    w.credentials = credentials;
    // One reading thread unless --threads asks for more (watch_fanout.h).
    w.readers = load.threads > 0 ? load.threads : 1;
    w.timeout = std::chrono::seconds(request_timeout_s * 4);
    if (client_kind == "h2" && credentials != nullptr) {
      fmt::print(stderr, "etcdpp-bench: --client h2 takes neither TLS nor --user\n");
      return 2;
    }
    const bool use_h2 = client_kind == "h2" || (client_kind == "auto" && credentials == nullptr);
    WatchFanoutResult r = use_h2 ? RunWatchFanoutOverH2(w) : RunWatchFanout(w);
    const double load_cpu_s = OwnCpuSeconds();
    std::FILE* out = json ? stderr : stdout;
    fmt::print(
        out,
        "{}: {} watchers on {} streams, {} puts of {} bytes{}\n"
        "  setup {:.3f} s, puts {:.3f} s (median {:.2f} ms, max {:.2f} ms), delivery {:.3f} s\n"
        "  {} events delivered, {:.0f} events/s\n"
        "  {} responses with events ({:.2f} events, {:.1f} bytes each)\n",
        latency ? "watch latency" : "watch fan-out", w.watchers, w.streams, w.puts, w.val_size,
        latency ? fmt::format(" at {} puts/s", w.put_rate) : "", r.setup_s, r.puts_s,
        r.put_p50_s * 1e3, r.put_max_s * 1e3, r.delivery_s, r.events, r.events_per_s,
        r.event_responses,
        r.event_responses > 0 ? static_cast<double>(r.events) / r.event_responses : 0.0,
        r.event_responses > 0 ? static_cast<double>(r.event_response_bytes) / r.event_responses
                              : 0.0);
    if (!r.error.empty()) fmt::print(stderr, "etcdpp-bench: {}\n", r.error);
    const uint64_t events = r.events;
    const uint64_t event_responses = r.event_responses;
    const uint64_t event_response_bytes = r.event_response_bytes;
    // Event latencies (put sent .. event read) in etcd's report format.
    LatencyReport report(std::move(r.latencies_s), {}, r.delivery_s);
    fmt::print(out, "{}", report.ToText());
    if (json) {
      fmt::print("{}\n", report.ToJson({
                             {"op", JsonString(latency ? "watch-latency" : "watch")},
                             {"watchers", std::to_string(w.watchers)},
                             {"streams", std::to_string(w.streams)},
                             {"client", JsonString(use_h2 ? "h2" : "grpc")},
                             {"puts", std::to_string(w.puts)},
                             {"put_rate", fmt::format("{}", w.put_rate)},
                             {"val_size", std::to_string(w.val_size)},
                             {"setup_s", fmt::format("{:.6f}", r.setup_s)},
                             {"puts_s", fmt::format("{:.6f}", r.puts_s)},
                             {"put_p50_ms", fmt::format("{:.3f}", r.put_p50_s * 1e3)},
                             {"put_max_ms", fmt::format("{:.3f}", r.put_max_s * 1e3)},
                             {"delivery_s", fmt::format("{:.6f}", r.delivery_s)},
                             {"events", std::to_string(events)},
                             {"events_per_s", fmt::format("{:.1f}", r.events_per_s)},
                             {"event_responses", std::to_string(event_responses)},
                             {"event_response_bytes", std::to_string(event_response_bytes)},
                             {"bench_cpu_s", CpuField(load_cpu_s)},
                         }));
    }
    std::fflush(stdout);
    return r.error.empty() ? 0 : 1;
  }

  // The HTTP/2 client speaks plaintext and sends no token (h2_load_driver.h).
  const bool plain = credentials == nullptr;
  if (client_kind == "h2" && !plain) {
    fmt::print(stderr, "etcdpp-bench: --client h2 takes neither TLS nor --user\n");
    return 2;
  }
  const bool use_h2 = client_kind == "h2" || (client_kind == "auto" && plain);
  load.endpoints = SplitEndpoints(endpoints);
  load.credentials = credentials;
  load.request_timeout = std::chrono::seconds(request_timeout_s);
  if (load.threads <= 0) load.threads = DefaultThreads();

  std::string op;
  CallFactory make_call;
  std::string value;
  if (put_cmd->parsed()) {
    op = "put";
    value = RandomValue(put.val_size);
    make_call = [&](int slot) {
      return std::make_unique<PutCall>(put, value, static_cast<uint64_t>(slot) * 7919 + 1);
    };
  } else if (txn_put_cmd->parsed()) {
    op = "txn-put";
    if (txn_ops > txn_put.key_space_size) {
      fmt::print(stderr, "etcdpp-bench: --txn-ops must not exceed --key-space-size\n");
      return 2;
    }
    value = RandomValue(txn_put.val_size);
    make_call = [&](int slot) {
      return std::make_unique<TxnPutCall>(txn_put, txn_ops, txn_guarded, value,
                                          static_cast<uint64_t>(slot) * 7919 + 1);
    };
  } else if (txn_mixed_cmd->parsed()) {
    op = "txn-mixed";
    mixed.serializable = mixed_consistency == "s";
    value = RandomValue(mixed.keys.val_size);
    make_call = [&](int slot) {
      return std::make_unique<TxnMixedCall>(mixed, value, static_cast<uint64_t>(slot) * 7919 + 1);
    };
  } else {
    op = consistency == "s" ? "range-serializable" : "range-linearizable";
    make_call = [&](int) {
      return std::make_unique<RangeCall>(range_key, range_end, consistency == "s");
    };
  }

  std::FILE* report_out = json ? stderr : stdout;
  fmt::print(
      report_out,
      "{} benchmark: {} requests, {} clients, {} conns, {} threads, {} client, endpoints {}{}\n",
      op, load.total, load.clients, load.conns, load.threads, use_h2 ? "h2" : "grpc", endpoints,
      load.rate > 0 ? fmt::format(", at most {} per second", load.rate) : "");
  LoadResult result = use_h2 ? RunLoadOverH2(load, make_call) : RunLoad(load, make_call);
  const double load_cpu_s = OwnCpuSeconds();
  if (!result.setup_error.empty()) {
    fmt::print(stderr, "etcdpp-bench: {}\n", result.setup_error);
    return 2;
  }
  LatencyReport report(std::move(result.latencies_s), std::move(result.errors), result.total_s);
  fmt::print(report_out, "{}", report.ToText());
  if (json) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"op", JsonString(op)},
        {"total", std::to_string(load.total)},
        {"clients", std::to_string(load.clients)},
        {"conns", std::to_string(load.conns)},
        {"threads", std::to_string(load.threads)},
        {"client", JsonString(use_h2 ? "h2" : "grpc")},
    };
    if (load.rate > 0) fields.emplace_back("rate", fmt::format("{}", load.rate));
    if (op == "put") fields.emplace_back("val_size", std::to_string(put.val_size));
    if (op == "txn-put") {
      fields.emplace_back("val_size", std::to_string(txn_put.val_size));
      fields.emplace_back("txn_ops", std::to_string(txn_ops));
      fields.emplace_back("guarded", txn_guarded ? "true" : "false");
    }
    if (op == "txn-mixed") {
      fields.emplace_back("val_size", std::to_string(mixed.keys.val_size));
      fields.emplace_back("rw_ratio", fmt::format("{}", mixed.rw_ratio));
    }
    fields.emplace_back("bench_cpu_s", CpuField(load_cpu_s));
    fmt::print("{}\n", report.ToJson(fields));
  }
  std::fflush(stdout);
  return report.summary().succeeded > 0 ? 0 : 1;
}

}  // namespace
}  // namespace etcdpp::bench

int main(int argc, char** argv) {
  // Debian's abseil checks every absl::Mutex gRPC takes for lock-order
  // cycles; the load generator must not spend its CPU on that.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return etcdpp::bench::Main(argc, argv);
}
