// check perf and check datascale: etcdctl 3.4's load checks, with its
// verdict lines and exit codes, which scripts read.
//
// check perf: for 60 seconds, `clients` connections put 1 KiB values under
// random 256-byte keys below --prefix, all together paced to `rate` puts
// per second. The run passes when the throughput reaches 90% of the rate,
// the slowest put took at most 0.5 s and the latencies' standard deviation
// is at most 0.1 s.
//
// check datascale: puts a fixed number of 512-byte keys with 512-byte values
// as fast as the connections go and prints how much the first endpoint's
// resident memory grew.
//
// Both delete their keys afterwards and refuse a prefix that has keys.
#include <fmt/format.h>

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/kv_ops.h"

namespace etcdpp::ctl {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct PerfLoad {
  int rate;  // puts per second, for all clients together
  int clients;
};

// etcdctl's workload models, by every name it accepts.
const PerfLoad* FindPerfLoad(const std::string& name) {
  static const std::map<std::string, PerfLoad> kLoads = {
      {"s", {150, 50}},   {"small", {150, 50}},   {"m", {1000, 200}},    {"medium", {1000, 200}},
      {"l", {8000, 500}}, {"large", {8000, 500}}, {"xl", {15000, 1000}}, {"xLarge", {15000, 1000}},
  };
  auto it = kLoads.find(name);
  return it == kLoads.end() ? nullptr : &it->second;
}

// Every load runs this long. ETCDPPCTL_CHECK_PERF_SECONDS (whole seconds)
// shortens it for tests.
constexpr int kDefaultSeconds = 60;

// Hands out send times `interval` apart. A caller that comes late sends at
// once, but missed slots are not made up (one token of burst, like Go's
// rate.Limiter with burst 1). Thread-safe; mu_ guards next_.
class Pacer {
 public:
  Pacer(SteadyClock::duration interval, SteadyClock::time_point end)
      : interval_(interval), end_(end) {}
  // Waits for the caller's slot; false once the run's time is over.
  bool Wait() {
    SteadyClock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot = std::max(next_, SteadyClock::now());
      if (slot >= end_) return false;
      next_ = slot + interval_;
    }
    std::this_thread::sleep_until(slot);
    return true;
  }

 private:
  const SteadyClock::duration interval_;
  const SteadyClock::time_point end_;
  std::mutex mu_;
  SteadyClock::time_point next_{};
};

// The outcome of every put. Thread-safe; mu_ guards all fields.
class PerfResults {
 public:
  void Add(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    latencies_.push_back(seconds);
  }
  void AddError(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    ++errors_[text];
    ++error_count_;
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return latencies_.size() + error_count_;
  }
  // Only once every worker has ended.
  const std::vector<double>& latencies() const { return latencies_; }
  const std::map<std::string, int>& errors() const { return errors_; }

 private:
  mutable std::mutex mu_;
  std::vector<double> latencies_;
  size_t error_count_ = 0;
  std::map<std::string, int> errors_;
};

// "00m59s", as etcdctl's progress bar shows the time left.
std::string MinutesSeconds(int64_t seconds) {
  return fmt::format("{:02d}m{:02d}s", seconds / 60, seconds % 60);
}

// Go's time.Duration text for whole seconds: "1m0s", "5s".
std::string GoWholeSeconds(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  return fmt::format("{}m{}s", seconds / 60, seconds % 60);
}

// One client connection's share of a load: puts `value_size` zero bytes
// under `prefix` plus a random `key_size`-byte name while `next()` grants
// another put. Its own Client, because a Client serves one thread. The
// connection is made (by a cheap read) before `connected` is counted down,
// and the puts wait for `go`, so no put's latency includes a connection
// setup (etcdctl too dials every client before it starts the clock).
void PutWhileGranted(ClientOptions options, uint64_t seed, const std::string& prefix,
                     size_t key_size, size_t value_size, const std::function<bool()>& next,
                     PerfResults& results, std::latch& connected, std::latch& go) {
  Client client(std::move(options));
  etcdserverpb::RangeRequest warm_up;
  warm_up.set_key(prefix);
  warm_up.set_serializable(true);
  warm_up.set_count_only(true);
  etcdserverpb::RangeResponse ignored;
  // A failure here shows again, and is counted, at the first put.
  (void)client.Range(warm_up, &ignored);
  connected.count_down();
  go.wait();
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<int64_t> key_number(0, INT64_MAX - 1);
  etcdserverpb::PutRequest put;
  put.set_value(std::string(value_size, '\0'));
  while (next()) {
    // A random number as a Go varint (zig-zag), zero-padded to key_size.
    std::string key(key_size, '\0');
    uint64_t zigzag = static_cast<uint64_t>(key_number(random)) << 1;
    size_t at = 0;
    while (zigzag >= 0x80) {
      key[at++] = static_cast<char>((zigzag & 0x7f) | 0x80);
      zigzag >>= 7;
    }
    key[at] = static_cast<char>(zigzag);
    put.set_key(prefix + key);
    etcdserverpb::PutResponse resp;
    const SteadyClock::time_point sent = SteadyClock::now();
    grpc::Status st = client.Put(put, &resp);
    if (st.ok()) {
      results.Add(std::chrono::duration<double>(SteadyClock::now() - sent).count());
    } else {
      results.AddError(ErrorText(st));
    }
  }
}

// Runs `clients` PutWhileGranted workers to the end. `on_connected` runs
// once every worker has its connection, just before the first put.
void RunPutWorkers(const ClientOptions& options, int clients, const std::string& prefix,
                   size_t key_size, size_t value_size, const std::function<bool()>& next,
                   PerfResults& results, const std::function<void()>& on_connected) {
  std::random_device seeds;
  std::latch connected(clients);
  std::latch go(1);
  std::vector<std::thread> workers;
  workers.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    workers.emplace_back(PutWhileGranted, options, (uint64_t{seeds()} << 32) | seeds(),
                         std::cref(prefix), key_size, value_size, std::cref(next),
                         std::ref(results), std::ref(connected), std::ref(go));
  }
  connected.wait();
  on_connected();
  go.count_down();
  for (std::thread& worker : workers) worker.join();
}

// Fails (printing why, as etcdctl does) when `prefix` already has keys.
std::optional<int> RefuseUsedPrefix(Invocation& inv, const std::string& prefix) {
  etcdserverpb::RangeRequest probe;
  probe.set_key(prefix);
  probe.set_range_end(PrefixRangeEnd(prefix));
  probe.set_limit(1);
  etcdserverpb::RangeResponse probed;
  grpc::Status st = inv.client().Range(probe, &probed);
  if (!st.ok()) return inv.RpcFailure(st);
  if (probed.kvs_size() == 0) return std::nullopt;
  return inv.Fail(
      CtlStatus::Fail(kExitInvalidInput,
                      fmt::format("prefix {} has keys. Delete with etcdctl del --prefix {} first",
                                  GoQuote(prefix), prefix)));
}

// Deletes the test keys, then compacts and defragments when asked.
std::optional<int> CleanUp(Invocation& inv, const std::string& prefix, bool auto_compact,
                           bool auto_defrag) {
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(prefix);
  del.set_range_end(PrefixRangeEnd(prefix));
  etcdserverpb::DeleteRangeResponse deleted;
  grpc::Status st = inv.client().DeleteRange(del, &deleted);
  if (!st.ok()) return inv.RpcFailure(st);
  if (auto_compact) {
    const int64_t rev = deleted.header().revision();
    inv.io().out << "Compacting with revision " << rev << "\n";
    etcdserverpb::CompactionRequest compact;
    compact.set_revision(rev);
    compact.set_physical(true);
    etcdserverpb::CompactionResponse compacted;
    st = inv.client().Compact(compact, &compacted);
    if (!st.ok()) return inv.RpcFailure(st);
    inv.io().out << "Compacted with revision " << rev << "\n";
  }
  if (auto_defrag) {
    for (const std::string& ep : inv.client().options().endpoints) {
      inv.io().out << "Defragmenting " << GoQuote(ep) << "\n";
      etcdserverpb::DefragmentResponse defragged;
      st = inv.client().DefragmentOn(ep, &defragged);
      if (!st.ok()) return inv.RpcFailure(st);
      inv.io().out << "Defragmented " << GoQuote(ep) << "\n";
    }
  }
  return std::nullopt;
}

// Prints etcdctl's error lines; true when there were errors.
bool ReportErrors(std::ostream& out, const PerfResults& results) {
  if (results.errors().empty()) return false;
  out << "FAIL: too many errors\n";
  for (const auto& [text, count] : results.errors()) {
    out << "FAIL: ERROR(" << text << ") -> " << count << "\n";
  }
  return true;
}

// The flags both check commands take, with their own load names and prefix.
struct CheckFlags {
  void Add(FlagSet* f, const char* load_help, const char* default_prefix) {
    f->AddString("load", 0, &load, "s", load_help);
    f->AddString("prefix", 0, &prefix, default_prefix,
                 "write the test keys under this prefix, which must be empty");
    f->AddBool("auto-compact", 0, &auto_compact, false,
               "afterwards, compact the history up to the last revision");
    f->AddBool("auto-defrag", 0, &auto_defrag, false,
               "afterwards, defragment every endpoint's database");
  }

  std::string load, prefix;
  bool auto_compact = false;
  bool auto_defrag = false;
};

class CheckPerfCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    flags_.Add(f,
               "workload: s (small, 150 puts/s), m (medium, 1000), l (large, 8000) or xl "
               "(xLarge, 15000)",
               "/etcdctl-check-perf/");
  }

  int Run(Invocation& inv) override {
    const PerfLoad* load = FindPerfLoad(flags_.load);
    if (!load)
      return inv.Fail(CtlStatus::Fail(kExitBadFeature, "unknown load option " + flags_.load));
    if (auto rc = inv.PrepareClient()) return *rc;
    const int seconds = RunSeconds(inv);

    if (auto rc = RefuseUsedPrefix(inv, flags_.prefix)) return *rc;

    PerfResults results;
    SteadyClock::time_point start;
    std::optional<Pacer> pacer;
    std::atomic<bool> done{false};
    std::thread progress;
    RunPutWorkers(
        inv.client().options(), load->clients, flags_.prefix, 256, 1024,
        [&pacer] { return pacer->Wait(); }, results,
        [&] {
          start = SteadyClock::now();
          pacer.emplace(std::chrono::nanoseconds(1'000'000'000LL / load->rate),
                        start + std::chrono::seconds(seconds));
          progress = std::thread([&] { ShowProgress(inv, start, seconds, done); });
        });
    const double total_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    done = true;
    progress.join();

    if (auto rc = CleanUp(inv, flags_.prefix, flags_.auto_compact, flags_.auto_defrag)) return *rc;
    return Verdict(inv, *load, results, total_seconds);
  }

 private:
  int RunSeconds(Invocation& inv) const {
    const std::string name = "ETCDPPCTL_CHECK_PERF_SECONDS=";
    for (const std::string& entry : inv.io().environ) {
      if (entry.rfind(name, 0) != 0) continue;
      long value = std::strtol(entry.c_str() + name.size(), nullptr, 10);
      if (value > 0) return static_cast<int>(value);
    }
    return kDefaultSeconds;
  }

  // etcdctl's progress bar without the bar: "\r N / total  P% 00mSSs" once a
  // second, ended by the elapsed time and a newline.
  void ShowProgress(Invocation& inv, SteadyClock::time_point start, int seconds,
                    const std::atomic<bool>& done) const {
    for (int elapsed = 0; elapsed < seconds && !done; ++elapsed) {
      inv.io().out << fmt::format("\r {} / {} {:7.2f}%", elapsed, seconds,
                                  100.0 * elapsed / seconds);
      if (elapsed > 0) inv.io().out << " " << MinutesSeconds(seconds - elapsed);
      inv.io().out.flush();
      std::this_thread::sleep_until(start + std::chrono::seconds(elapsed + 1));
    }
    inv.io().out << fmt::format("\r {} / {} {:7.2f}% {}\n", seconds, seconds, 100.0,
                                GoWholeSeconds(seconds));
  }

  int Verdict(Invocation& inv, const PerfLoad& load, const PerfResults& results,
              double total_seconds) const {
    std::ostream& out = inv.io().out;
    bool ok = !ReportErrors(out, results);
    const std::vector<double>& latencies = results.latencies();
    double slowest = 0, mean = 0, variance = 0;
    for (double l : latencies) {
      slowest = std::max(slowest, l);
      mean += l;
    }
    if (!latencies.empty()) mean /= static_cast<double>(latencies.size());
    for (double l : latencies) variance += (l - mean) * (l - mean);
    if (!latencies.empty()) variance /= static_cast<double>(latencies.size());
    const double stddev = std::sqrt(variance);
    const double rps = static_cast<double>(latencies.size()) / total_seconds;
    // etcdctl rounds the throughput up by adding one to its integer part.
    const int64_t shown_rps = static_cast<int64_t>(rps) + 1;
    if (rps / load.rate <= 0.9) {
      out << "FAIL: Throughput too low: " << shown_rps << " writes/s\n";
      ok = false;
    } else {
      out << "PASS: Throughput is " << shown_rps << " writes/s\n";
    }
    if (slowest > 0.5) {
      out << fmt::format("Slowest request took too long: {:f}s\n", slowest);
      ok = false;
    } else {
      out << fmt::format("PASS: Slowest request took {:f}s\n", slowest);
    }
    if (stddev > 0.1) {
      out << fmt::format("Stddev too high: {:f}s\n", stddev);
      ok = false;
    } else {
      out << fmt::format("PASS: Stddev is {:f}s\n", stddev);
    }
    out << (ok ? "PASS\n" : "FAIL\n");
    return ok ? kExitSuccess : kExitError;
  }

  CheckFlags flags_;
};

// `request` sent over TLS on the connected `fd`, and everything the server
// answered until it closed; nullopt after printing why not. The server is
// verified as the gRPC connection verifies it: against --cacert (else the
// system's roots) and for `host` (an IP literal against the certificate's
// IP addresses), unless --insecure-skip-tls-verify; --cert and --key are
// presented when given (a member under --client-cert-auth wants them).
std::optional<std::string> ExchangeOverTls(std::ostream& out, int fd, const std::string& host,
                                           const ClientOptions& options,
                                           const std::string& request) {
  auto fail = [&out](const std::string& what) -> std::optional<std::string> {
    const unsigned long code = ERR_get_error();
    char reason[256] = "";
    if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    out << "fetch error: " << what << (code != 0 ? std::string(": ") + reason : "") << "\n";
    return std::nullopt;
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (ctx == nullptr) return fail("TLS setup");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("client certificate " + options.cert_file + " / key " + options.key_file);
    }
  }
  if (options.insecure_skip_tls_verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    const int loaded =
        options.cacert_file.empty()
            ? SSL_CTX_set_default_verify_paths(ctx.get())
            : SSL_CTX_load_verify_locations(ctx.get(), options.cacert_file.c_str(), nullptr);
    if (loaded != 1) return fail("trusted CA " + options.cacert_file);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  // The listener hands an http/1.1 ALPN connection to its HTTP side.
  static const unsigned char kAlpnHttp11[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnHttp11, sizeof(kAlpnHttp11) - 1);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) return fail("TLS setup");
  X509_VERIFY_PARAM* verify = SSL_get0_param(ssl.get());
  const bool ip_literal = X509_VERIFY_PARAM_set1_ip_asc(verify, host.c_str()) == 1;
  if (!ip_literal) {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    if (!options.insecure_skip_tls_verify) SSL_set1_host(ssl.get(), host.c_str());
  }
  if (SSL_connect(ssl.get()) != 1) return fail("TLS handshake with " + host);
  size_t written = 0;
  if (SSL_write_ex(ssl.get(), request.data(), request.size(), &written) != 1 ||
      written != request.size()) {
    return fail("sending the request");
  }
  std::string response;
  char buf[65536];
  size_t n = 0;
  while (SSL_read_ex(ssl.get(), buf, sizeof(buf), &n) == 1) response.append(buf, n);
  ERR_clear_error();  // the server closing the connection ends the reply
  return response;
}

// The server's resident memory in bytes, from the Prometheus text at
// <endpoint>/metrics (etcdctl reads the same gauge), or 0 after printing why
// it could not be read. Over TLS for an https:// endpoint, with the
// command's TLS flags (ExchangeOverTls).
double ResidentMemoryBytes(std::ostream& out, const std::string& endpoint,
                           const ClientOptions& options) {
  const bool https = endpoint.rfind("https://", 0) == 0;
  std::string host_port = StripScheme(endpoint);
  size_t colon = host_port.rfind(':');
  std::string host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  std::string port =
      colon == std::string::npos ? (https ? "443" : "80") : host_port.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    out << "fetch error: " << host_port << ": " << gai_strerror(rc) << "\n";
    return 0;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    out << "fetch error: " << host_port << ": " << std::strerror(errno) << "\n";
    return 0;
  }
  timeval limit{10, 0};  // a server that stops answering must not hang the check
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
  std::string response;
  if (https) {
    std::optional<std::string> reply = ExchangeOverTls(out, fd, host, options, request);
    close(fd);
    if (!reply) return 0;
    response = std::move(*reply);
  } else {
    bool sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size());
    char buf[65536];
    for (ssize_t n; sent && (n = recv(fd, buf, sizeof(buf), 0)) > 0;) response.append(buf, n);
    close(fd);
  }
  const std::string key = "process_resident_memory_bytes";
  size_t body = response.find("\r\n\r\n");
  for (size_t at = body; at != std::string::npos && at < response.size();) {
    size_t line = at + 1;
    size_t end = response.find('\n', line);
    if (response.compare(line, key.size(), key) == 0) {
      std::string value = response.substr(line + key.size(), end - line - key.size());
      char* parsed_end = nullptr;
      double bytes = std::strtod(value.c_str(), &parsed_end);
      if (parsed_end == value.c_str()) {
        out << "parse error: " << GoQuote(value) << "\n";
        return 0;
      }
      return bytes;
    }
    at = end;
  }
  out << "could not find: " << key << "\n";
  return 0;
}

struct DatascaleLoad {
  int puts;
  int clients;
};

const DatascaleLoad* FindDatascaleLoad(const std::string& name) {
  static const std::map<std::string, DatascaleLoad> kLoads = {
      {"s", {10000, 50}},        {"small", {10000, 50}},      {"m", {100000, 200}},
      {"medium", {100000, 200}}, {"l", {1000000, 500}},       {"large", {1000000, 500}},
      {"xl", {3000000, 1000}},   {"xLarge", {3000000, 1000}},
  };
  auto it = kLoads.find(name);
  return it == kLoads.end() ? nullptr : &it->second;
}

// check datascale: how much more memory the first endpoint's server holds
// after a fixed number of 512-byte keys with 512-byte values are put.
class CheckDatascaleCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    flags_.Add(f,
               "workload: s (small, 10000 keys), m (medium, 100000), l (large, 1000000) or xl "
               "(xLarge, 3000000)",
               "/etcdctl-check-datascale/");
  }

  int Run(Invocation& inv) override {
    const DatascaleLoad* load = FindDatascaleLoad(flags_.load);
    if (!load)
      return inv.Fail(CtlStatus::Fail(kExitBadFeature, "unknown load option " + flags_.load));
    if (auto rc = inv.PrepareClient()) return *rc;
    if (auto rc = RefuseUsedPrefix(inv, flags_.prefix)) return *rc;
    std::ostream& out = inv.io().out;
    const std::string& endpoint = inv.client().options().endpoints[0];
    PerfResults results;
    // Measured once the test's connections are up, as etcdctl does, so
    // their cost is not counted as data.
    double before = 0;
    std::atomic<int> granted{0};
    std::atomic<bool> done{false};
    SteadyClock::time_point start;
    std::thread progress;
    RunPutWorkers(
        inv.client().options(), load->clients, flags_.prefix, 512, 512,
        [&] { return before != 0 && granted.fetch_add(1) < load->puts; }, results,
        [&] {
          before = ResidentMemoryBytes(out, endpoint, inv.client().options());
          if (before == 0) return;
          out << "Start data scale check for work load [" << load->puts
              << " key-value pairs, 1024 bytes per key-value, " << load->clients
              << " concurrent clients].\n";
          start = SteadyClock::now();
          progress = std::thread([&] { ShowProgress(out, start, load->puts, results, done); });
        });
    if (before == 0) {
      out << "FAIL: Could not read process_resident_memory_bytes before the put operations.\n";
      return kExitError;
    }
    done = true;
    progress.join();

    const double after = ResidentMemoryBytes(out, endpoint, inv.client().options());
    if (after == 0) {
      out << "FAIL: Could not read process_resident_memory_bytes after the put operations.\n";
      return kExitError;
    }
    if (auto rc = CleanUp(inv, flags_.prefix, flags_.auto_compact, flags_.auto_defrag)) return *rc;
    if (ReportErrors(out, results)) return kExitError;
    out << fmt::format("PASS: Approximate system memory used : {:.2f} MB.\n",
                       (after - before) / (1024 * 1024));
    return kExitSuccess;
  }

 private:
  // etcdctl's progress bar without the bar, counting puts, redrawn every
  // 200 ms: "\r N / total  P% 00mSSs", ended by the elapsed time.
  static void ShowProgress(std::ostream& out, SteadyClock::time_point start, int total,
                           const PerfResults& results, const std::atomic<bool>& done) {
    auto line = [&](size_t current) {
      out << fmt::format("\r {} / {} {:7.2f}%", current, total, 100.0 * current / total);
    };
    while (!done) {
      size_t current = results.count();
      line(current);
      auto elapsed = SteadyClock::now() - start;
      if (current > 0) {
        auto left = std::chrono::duration_cast<std::chrono::seconds>(
            elapsed / current * (total - static_cast<int64_t>(current)));
        if (left.count() > 0) out << " " << MinutesSeconds(left.count());
      }
      out.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    line(total);
    out << " "
        << GoWholeSeconds(
               std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now() - start).count())
        << "\n";
  }

  CheckFlags flags_;
};

}  // namespace

std::vector<CommandSpec> CheckCommandSpecs() {
  return {
      {"check perf", "", "put keys at a fixed rate for a minute and judge the latencies",
       "Puts 1 KiB values under random keys below --prefix for 60 seconds, from\n"
       "many connections at once, at the rate --load names, then deletes them.\n"
       "Passes when at least 90% of that rate was reached, no put took longer\n"
       "than 0.5 s and the latencies' standard deviation stayed within 0.1 s.\n"
       "Prints one PASS or FAIL line per criterion, then the verdict; exits 1 on\n"
       "FAIL. Run it against an idle cluster: the load is real.",
       Make<CheckPerfCommand>},
      {"check datascale", "", "measure the server memory a batch of keys takes",
       "Reads process_resident_memory_bytes from the first endpoint's /metrics,\n"
       "puts as many keys as --load names (512-byte names, 512-byte values) from\n"
       "many connections at once, reads the gauge again and prints the\n"
       "difference in MB. The keys are deleted afterwards. An https:// first\n"
       "endpoint is read over TLS with --cacert, --cert, --key and\n"
       "--insecure-skip-tls-verify.",
       Make<CheckDatascaleCommand>},
  };
}

}  // namespace etcdpp::ctl
