#include "cmd/etcdppctl/invocation.h"

#include "tls/grpc_credentials.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <random>
#include <set>

#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/json_writer.h"

namespace etcdpp::ctl {
namespace {

using std::chrono::seconds;

constexpr const char* kEnvPrefix = "ETCDCTL_";

// The global flags' names, and which of them take no value.
struct GlobalFlagNames {
  std::set<std::string> all;
  std::set<std::string> bools;
};

const GlobalFlagNames& GlobalNames() {
  static const GlobalFlagNames kNames = [] {
    FlagSet flags;
    GlobalFlags global;
    global.Register(&flags, /*with_cluster=*/false);
    GlobalFlagNames names;
    for (const std::string& name : flags.Names()) {
      names.all.insert(name);
      if (flags.IsBool(name)) names.bools.insert(name);
    }
    return names;
  }();
  return kNames;
}

std::string EnvName(const std::string& flag) {
  std::string name = kEnvPrefix;
  for (char c : flag) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name;
}

// capnslog's "2006-01-02 15:04:05.000000" prefix (local time).
std::string CapnslogTime() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:06d}", buf, micros);
}

// zap's ISO8601 "2006-01-02T15:04:05.000Z0700" (local time).
std::string ZapTime() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  char zone[16];
  std::strftime(zone, sizeof(zone), "%z", &tm);
  std::string tz = std::string(zone) == "+0000" ? "Z" : zone;
  return fmt::format("{}.{:03d}{}", date, millis, tz);
}

std::string RandomUuid() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  uint64_t a = gen(), b = gen();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                     b >> 48, b & 0xffffffffffffull);
}

}  // namespace

void GlobalFlags::Register(FlagSet* f, bool with_cluster) {
  f->AddStringSlice("endpoints", 0, &endpoints, {"127.0.0.1:2379"},
                    "servers to talk to, comma-separated: host:port, http://host:port or "
                    "https://host:port; the first reachable one answers");
  f->AddDuration("dial-timeout", 0, &dial_timeout, seconds(2),
                 "give up on one endpoint's connection after this long and try the next");
  f->AddDuration("command-timeout", 0, &command_timeout, seconds(5),
                 "deadline of one request, failing over between endpoints included");
  f->AddDuration("keepalive-time", 0, &keepalive_time, seconds(2),
                 "accepted for etcdctl compatibility; not used");
  f->AddDuration("keepalive-timeout", 0, &keepalive_timeout, seconds(6),
                 "accepted for etcdctl compatibility; not used");
  f->AddString("write-out", 'w', &write_out, "simple",
               "output format: simple, json, fields, table or protobuf (not every command has "
               "every format)");
  f->AddBool("hex", 0, &hex, false, "write keys and values as \\xNN escapes (simple format)");
  f->AddBool("debug", 0, &debug, false, "accepted for etcdctl compatibility; not used");
  f->AddBool("insecure-transport", 0, &insecure_transport, true,
             "accepted for etcdctl compatibility; TLS is used when an endpoint is https:// "
             "or a certificate flag is given");
  f->AddBool("insecure-discovery", 0, &insecure_discovery, true,
             "accepted for etcdctl compatibility; not used");
  f->AddBool("insecure-skip-tls-verify", 0, &insecure_skip_tls_verify, false,
             "do not check the server's certificate (for tests only)");
  f->AddString("cacert", 0, &cacert, "",
               "PEM file of the CAs the server's certificate must chain to");
  f->AddString("cert", 0, &cert, "", "PEM client certificate to present to the server");
  f->AddString("key", 0, &key, "", "PEM private key of --cert");
  f->AddString("user", 0, &user, "",
               "authenticate as this user; \"name:password\" also gives the password");
  f->AddString("password", 0, &password, "", "password of --user");
  f->AddString("discovery-srv", 'd', &discovery_srv, "",
               "accepted for etcdctl compatibility; DNS discovery is not supported");
  f->AddString("discovery-srv-name", 0, &discovery_srv_name, "",
               "accepted for etcdctl compatibility; DNS discovery is not supported");
  if (with_cluster) RegisterClusterFlag(f);
}

void GlobalFlags::RegisterClusterFlag(FlagSet* f) {
  f->AddBool("cluster", 0, &cluster, false,
             "ask every member (the client URLs of `member list`) instead of --endpoints");
}

bool GlobalFlags::IsBoolFlag(const std::string& name) {
  return GlobalNames().bools.count(name) > 0;
}

Invocation::Invocation(std::string path, CtlIo& io) : path_(std::move(path)), io_(io) {
  global_.Register(&flags_, path_.rfind("endpoint", 0) == 0);
  flags_.AddBool("help", 'h', &help_, false, "show this help and exit");
}

int Invocation::Fail(const CtlStatus& st) {
  io_.err << st.stderr_prefix << "Error: " << st.message << "\n";
  return st.exit_code;
}

// A one-line JSON warning before the "Error: ..." line, in the shape of
// etcdctl's client log lines (programs that filter those skip it too).
void Invocation::LogRpcFailure(const grpc::Status& st, const std::string& target) {
  std::string error = std::string("rpc error: code = ") + GrpcCodeName(st.error_code()) +
                      " desc = " + st.error_message();
  io_.err << "{\"level\":\"warn\",\"ts\":\"" << ZapTime()
          << "\",\"msg\":\"etcdppctl: request failed\",\"target\":" << GoJsonString(target)
          << ",\"error\":" << GoJsonString(error) << "}\n";
}

std::string Invocation::ClientTarget() const {
  return ClientTargetFor(global_.endpoints.empty() ? "" : global_.endpoints[0]);
}

std::string Invocation::ClientTargetFor(const std::string& endpoint) {
  return "endpoint://client-" + RandomUuid() + "/" + StripScheme(endpoint);
}

int Invocation::RpcFailure(const grpc::Status& st) {
  LogRpcFailure(st, ClientTarget());
  if (client_->auth_failed()) return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(st)));
  return Fail(CtlStatus::Fail(kExitError, ErrorText(st)));
}

std::optional<int> Invocation::PrepareClient() {
  std::set<std::string> already_set, used;
  for (const std::string& name : flags_.Names()) {
    if (!IsInherited(name)) continue;
    std::string env = EnvName(name);
    if (flags_.Changed(name)) {
      already_set.insert(env);
      continue;
    }
    std::optional<std::string> value = Getenv(env);
    if (!value || value->empty()) continue;
    used.insert(env);
    // etcdctl ignores a value that does not parse: the flag keeps its default.
    std::string ignored;
    (void)flags_.Set(name, *value, &ignored);
  }
  for (const std::string& entry : io_.environ) {
    std::string key = entry.substr(0, entry.find('='));
    if (used.count(key) || key == "ETCDCTL_API") continue;
    if (already_set.count(key)) {
      io_.err << CapnslogTime() << " C | pkg/flags: " << key
              << " is set both in the environment and as a flag; keep only one of them\n";
      return kExitError;  // capnslog's Fatal.
    }
    if (key.rfind(kEnvPrefix, 0) == 0) {
      io_.err << CapnslogTime() << " W | pkg/flags: ignoring " << entry
              << ": no flag of this command reads it\n";
    }
  }
  PrinterOptions popts;
  if (!ParseOutputFormat(global_.write_out, &popts.format)) {
    return Fail(CtlStatus::Fail(kExitBadFeature, "unsupported output format"));
  }
  popts.hex = global_.hex;
  printer_options_ = popts;
  if (global_.endpoints.empty()) {
    return Fail(CtlStatus::Fail(kExitBadConnection, "etcdclient: no available endpoints"));
  }
  ClientOptions copts;
  copts.endpoints = global_.endpoints;
  copts.dial_timeout = global_.dial_timeout;
  copts.command_timeout = global_.command_timeout;
  copts.cacert_file = global_.cacert;
  copts.cert_file = global_.cert;
  copts.key_file = global_.key;
  copts.insecure_skip_tls_verify = global_.insecure_skip_tls_verify;
  copts.insecure_transport = global_.insecure_transport;
  if (!copts.cacert_file.empty() || !copts.cert_file.empty() || !copts.key_file.empty()) {
    // etcdctl refuses unreadable certificate files before dialing.
    auto checked = tls::ClientChannelCredentials(
        {copts.cacert_file, copts.cert_file, copts.key_file, copts.insecure_skip_tls_verify});
    if (!checked.ok()) return Fail(CtlStatus::Fail(kExitBadArgs, checked.status().message()));
  }
  copts.user = global_.user;
  copts.password = global_.password;
  client_ = std::make_unique<Client>(copts);
  return std::nullopt;
}

bool Invocation::IsInherited(const std::string& name) const {
  return GlobalNames().all.count(name) || (name == "cluster" && path_.rfind("endpoint", 0) == 0);
}

std::optional<std::string> Invocation::Getenv(const std::string& name) const {
  for (const std::string& entry : io_.environ) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

std::unique_ptr<Printer> Invocation::MakePrinter() {
  return NewPrinter(printer_options_, io_.out, io_.err);
}

int Invocation::Unsupported() {
  return Fail(CtlStatus::Fail(
      kExitBadFeature,
      std::string(OutputFormatName(printer_options_.format)) + " not supported as output format"));
}

}  // namespace etcdpp::ctl
