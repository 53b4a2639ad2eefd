#include "cmd/etcdppctl/ctl.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "cmd/etcdppctl/client.h"
#include "cmd/etcdppctl/ctl_status.h"
#include "cmd/etcdppctl/flag_set.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/json_writer.h"
#include "cmd/etcdppctl/kv_ops.h"
#include "cmd/etcdppctl/printer.h"
#include "cmd/etcdppctl/txn_parser.h"
#include "cmd/etcdppctl/usage_text.h"

namespace etcdpp::ctl {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;

// What `etcdctl version` reports; etcdppctl speaks the same API.
constexpr const char* kEtcdctlVersion = "3.4.23";
constexpr const char* kApiVersion = "3.4";
constexpr const char* kEnvPrefix = "ETCDCTL_";

// etcdctl's persistent flags, with its defaults.
struct GlobalFlags {
  std::vector<std::string> endpoints;
  nanoseconds dial_timeout{};
  nanoseconds command_timeout{};
  nanoseconds keepalive_time{};
  nanoseconds keepalive_timeout{};
  std::string write_out;
  bool hex = false;
  bool debug = false;
  bool insecure_transport = true;
  bool insecure_discovery = true;
  bool insecure_skip_tls_verify = false;
  std::string cacert, cert, key, user, password, discovery_srv, discovery_srv_name;
  // `endpoint` commands' persistent --cluster.
  bool cluster = false;

  void Register(FlagSet* f, bool with_cluster) {
    f->AddStringSlice("endpoints", 0, &endpoints, {"127.0.0.1:2379"});
    f->AddDuration("dial-timeout", 0, &dial_timeout, seconds(2));
    f->AddDuration("command-timeout", 0, &command_timeout, seconds(5));
    f->AddDuration("keepalive-time", 0, &keepalive_time, seconds(2));
    f->AddDuration("keepalive-timeout", 0, &keepalive_timeout, seconds(6));
    f->AddString("write-out", 'w', &write_out, "simple");
    f->AddBool("hex", 0, &hex, false);
    f->AddBool("debug", 0, &debug, false);
    f->AddBool("insecure-transport", 0, &insecure_transport, true);
    f->AddBool("insecure-discovery", 0, &insecure_discovery, true);
    f->AddBool("insecure-skip-tls-verify", 0, &insecure_skip_tls_verify, false);
    f->AddString("cacert", 0, &cacert, "");
    f->AddString("cert", 0, &cert, "");
    f->AddString("key", 0, &key, "");
    f->AddString("user", 0, &user, "");
    f->AddString("password", 0, &password, "");
    f->AddString("discovery-srv", 'd', &discovery_srv, "");
    f->AddString("discovery-srv-name", 0, &discovery_srv_name, "");
    if (with_cluster) f->AddBool("cluster", 0, &cluster, false);
  }
};

const std::set<std::string> kGlobalBoolFlags = {"hex", "debug", "insecure-transport",
                                                "insecure-discovery", "insecure-skip-tls-verify"};
const std::set<std::string> kGlobalValueFlags = {"endpoints",
                                                 "dial-timeout",
                                                 "command-timeout",
                                                 "keepalive-time",
                                                 "keepalive-timeout",
                                                 "write-out",
                                                 "cacert",
                                                 "cert",
                                                 "key",
                                                 "user",
                                                 "password",
                                                 "discovery-srv",
                                                 "discovery-srv-name"};

// Leaf commands; "member" and "endpoint" are groups.
const std::set<std::string> kCommands = {"put",
                                         "get",
                                         "del",
                                         "txn",
                                         "compaction",
                                         "member list",
                                         "endpoint health",
                                         "endpoint status",
                                         "version",
                                         "lease grant",
                                         "lease revoke",
                                         "lease timetolive",
                                         "lease list",
                                         "lease keep-alive"};

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

// Everything one command invocation needs.
class Command {
 public:
  Command(std::string path, CtlIo& io) : path_(std::move(path)), io_(io) {
    global_.Register(&flags_, path_.rfind("endpoint", 0) == 0);
    flags_.AddBool("help", 'h', &help_, false);
    if (path_ == "put") put_.Register(&flags_);
    if (path_ == "get") get_.Register(&flags_);
    if (path_ == "del") del_.Register(&flags_);
    if (path_ == "txn") flags_.AddBool("interactive", 'i', &interactive_, false);
    if (path_ == "compaction") flags_.AddBool("physical", 0, &physical_, false);
    if (path_ == "lease timetolive") flags_.AddBool("keys", 0, &lease_keys_, false);
    if (path_ == "lease keep-alive") flags_.AddBool("once", 0, &lease_once_, false);
  }

  int Run(const std::vector<std::string>& args) {
    std::string error;
    std::optional<std::vector<std::string>> positional = flags_.Parse(args, &error);
    if (!positional) {
      io_.out << UsageText(path_);
      io_.err << "Error: " << error << "\n\n";
      return Fail(CtlStatus::Fail(kExitError, error));
    }
    if (help_) {
      io_.out << UsageText(path_);
      return kExitSuccess;
    }
    args_ = std::move(*positional);
    if (path_ == "put") return Put();
    if (path_ == "get") return Get();
    if (path_ == "del") return Del();
    if (path_ == "txn") return Txn();
    if (path_ == "compaction") return Compaction();
    if (path_ == "member list") return MemberList();
    if (path_ == "endpoint health") return EndpointHealth();
    if (path_ == "endpoint status") return EndpointStatus();
    if (path_ == "version") return Version();
    if (path_ == "lease grant") return LeaseGrant();
    if (path_ == "lease revoke") return LeaseRevoke();
    if (path_ == "lease timetolive") return LeaseTimeToLive();
    if (path_ == "lease list") return LeaseList();
    if (path_ == "lease keep-alive") return LeaseKeepAlive();
    return kExitError;
  }

 private:
  int Fail(const CtlStatus& st) {
    io_.err << st.stderr_prefix << "Error: " << st.message << "\n";
    return st.exit_code;
  }

  // clientv3's retry interceptor logs every failed unary call before
  // etcdctl reports it.
  void LogRpcFailure(const grpc::Status& st, const std::string& target) {
    std::string error = std::string("rpc error: code = ") + GrpcCodeName(st.error_code()) +
                        " desc = " + st.error_message();
    if (st.error_message() == "context deadline exceeded") {
      error =
          "rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in "
          "TransientFailure";
    }
    io_.err << "{\"level\":\"warn\",\"ts\":\"" << ZapTime()
            << "\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary "
               "invoker failed\",\"target\":"
            << GoJsonString(target) << ",\"attempt\":0,\"error\":" << GoJsonString(error) << "}\n";
  }

  std::string ClientTarget() const {
    return "endpoint://client-" + RandomUuid() + "/" +
           (global_.endpoints.empty() ? "" : StripScheme(global_.endpoints[0]));
  }

  int RpcFailure(const grpc::Status& st) {
    LogRpcFailure(st, ClientTarget());
    if (client_->auth_failed()) return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(st)));
    return Fail(CtlStatus::Fail(kExitError, ErrorText(st)));
  }

  // etcdctl's mustClientFromCmd: ETCDCTL_* variables, then the printer,
  // then the client. Returns a failure status when the command must stop.
  CtlStatus PrepareClient() {
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
        io_.err << CapnslogTime() << " C | pkg/flags: conflicting environment variable "
                << GoQuote(key)
                << " is shadowed by corresponding command-line flag (either unset environment "
                   "variable or disable flag)\n";
        CtlStatus fatal = CtlStatus::Fail(kExitError, "");
        fatal.stderr_prefix = "\x01";  // Marker: already reported.
        return fatal;
      }
      if (key.rfind(kEnvPrefix, 0) == 0) {
        io_.err << CapnslogTime() << " W | pkg/flags: unrecognized environment variable " << entry
                << "\n";
      }
    }
    PrinterOptions popts;
    if (!ParseOutputFormat(global_.write_out, &popts.format)) {
      return CtlStatus::Fail(kExitBadFeature, "unsupported output format");
    }
    popts.hex = global_.hex;
    printer_options_ = popts;
    ClientOptions copts;
    copts.endpoints = global_.endpoints;
    copts.dial_timeout = global_.dial_timeout;
    copts.command_timeout = global_.command_timeout;
    copts.cacert_file = global_.cacert;
    copts.cert_file = global_.cert;
    copts.key_file = global_.key;
    copts.insecure_skip_tls_verify = global_.insecure_skip_tls_verify;
    copts.user = global_.user;
    copts.password = global_.password;
    client_ = std::make_unique<Client>(copts);
    return CtlStatus::Ok();
  }

  // Wraps PrepareClient for commands: returns an exit code or -1 to go on.
  int MustClient() {
    CtlStatus st = PrepareClient();
    if (st.ok()) return -1;
    if (st.stderr_prefix == "\x01") return st.exit_code;
    return Fail(st);
  }

  bool IsInherited(const std::string& name) const {
    return kGlobalBoolFlags.count(name) || kGlobalValueFlags.count(name) ||
           (name == "cluster" && path_.rfind("endpoint", 0) == 0);
  }

  std::optional<std::string> Getenv(const std::string& name) const {
    for (const std::string& entry : io_.environ) {
      if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
          entry[name.size()] == '=') {
        return entry.substr(name.size() + 1);
      }
    }
    return std::nullopt;
  }

  std::unique_ptr<Printer> MakePrinter() { return NewPrinter(printer_options_, io_.out, io_.err); }

  int Unsupported() {
    return Fail(
        CtlStatus::Fail(kExitBadFeature, std::string(OutputFormatName(printer_options_.format)) +
                                             " not supported as output format"));
  }

  int Put() {
    etcdserverpb::PutRequest req;
    auto read_stdin = [this]() -> std::optional<std::string> {
      return std::string(std::istreambuf_iterator<char>(io_.in), {});
    };
    CtlStatus st = BuildPut(args_, put_, read_stdin, &req);
    if (!st.ok()) return Fail(st);
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::PutResponse resp;
    grpc::Status rpc = client_->Put(req, &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    auto printer = MakePrinter();
    if (!printer->SupportsKV()) return Unsupported();
    printer->Put(resp);
    return kExitSuccess;
  }

  int Get() {
    etcdserverpb::RangeRequest req;
    CtlStatus st = BuildGet(args_, get_, &req);
    if (!st.ok()) return Fail(st);
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::RangeResponse resp;
    grpc::Status rpc = client_->Range(req, &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    if (get_.count_only && printer_options_.format != OutputFormat::kFields) {
      return Fail(CtlStatus::Fail(kExitBadArgs, "--count-only is only for `--write-out=fields`"));
    }
    if (get_.print_value_only) {
      if (printer_options_.format != OutputFormat::kSimple) {
        return Fail(
            CtlStatus::Fail(kExitBadArgs, "print-value-only is only for `--write-out=simple`"));
      }
      printer_options_.value_only = true;
    }
    auto printer = MakePrinter();
    if (!printer->SupportsKV()) return Unsupported();
    printer->Get(resp);
    return kExitSuccess;
  }

  int Del() {
    etcdserverpb::DeleteRangeRequest req;
    CtlStatus st = BuildDel(args_, del_, &req);
    if (!st.ok()) return Fail(st);
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::DeleteRangeResponse resp;
    grpc::Status rpc = client_->DeleteRange(req, &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    auto printer = MakePrinter();
    if (!printer->SupportsKV()) return Unsupported();
    printer->Del(resp);
    return kExitSuccess;
  }

  int Txn() {
    if (!args_.empty()) {
      return Fail(CtlStatus::Fail(kExitBadArgs, "txn command does not accept argument"));
    }
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::TxnRequest req;
    CtlStatus st = ReadTxn(io_.in, interactive_, io_.out, &req);
    if (!st.ok()) return Fail(st);
    etcdserverpb::TxnResponse resp;
    grpc::Status rpc = client_->Txn(req, &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    auto printer = MakePrinter();
    if (!printer->SupportsKV()) return Unsupported();
    printer->Txn(resp);
    return kExitSuccess;
  }

  int Compaction() {
    if (args_.size() != 1) {
      return Fail(CtlStatus::Fail(kExitBadArgs, "compaction command needs 1 argument"));
    }
    std::string why;
    std::optional<int64_t> rev = GoParseInt(args_[0], 10, &why);
    if (!rev) return Fail(CtlStatus::Fail(kExitError, why));
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::CompactionRequest req;
    req.set_revision(*rev);
    req.set_physical(physical_);
    etcdserverpb::CompactionResponse resp;
    grpc::Status rpc = client_->Compact(req, &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    io_.out << "compacted revision " << *rev << "\n";
    return kExitSuccess;
  }

  int MemberList() {
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::MemberListResponse resp;
    grpc::Status rpc = client_->MemberList(etcdserverpb::MemberListRequest(), &resp);
    if (!rpc.ok()) return RpcFailure(rpc);
    auto printer = MakePrinter();
    if (!printer->SupportsCluster()) return Unsupported();
    printer->MemberList(resp);
    return kExitSuccess;
  }

  // etcdctl's endpointsFromCluster: --endpoints, or with --cluster every
  // member's client URLs.
  std::optional<std::vector<std::string>> TargetEndpoints(int* rc) {
    if (!global_.cluster) return global_.endpoints;
    etcdserverpb::MemberListResponse resp;
    grpc::Status rpc = client_->MemberList(etcdserverpb::MemberListRequest(), &resp);
    if (!rpc.ok()) {
      *rc = Fail(CtlStatus::Fail(
          kExitError,
          "failed to fetch endpoints from etcd cluster member list: " + ErrorText(rpc)));
      return std::nullopt;
    }
    std::vector<std::string> eps;
    for (const auto& m : resp.members()) {
      for (const auto& url : m.clienturls()) eps.push_back(url);
    }
    return eps;
  }

  // One endpoint's health, as etcdctl 3.4's epHealthCommandFunc probes it: a
  // linearizable Get of "health" succeeds (permission denied counts as
  // healthy). 3.4 does not look at alarms: listing them is a Raft proposal.
  static EndpointHealthRow CheckHealth(Client& client, const std::string& ep,
                                       grpc::Status* get_error) {
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    auto start = std::chrono::steady_clock::now();
    grpc::Status rpc = client.RangeOn(ep, req, &resp);
    EndpointHealthRow row;
    row.endpoint = ep;
    row.took = FormatGoDuration(std::chrono::steady_clock::now() - start);
    if (rpc.ok() || rpc.error_message() == "etcdserver: permission denied") {
      row.healthy = true;
    } else {
      *get_error = rpc;
      row.error = ErrorText(rpc);
    }
    return row;
  }

  int EndpointHealth() {
    if (int rc = MustClient(); rc >= 0) return rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(&rc);
    if (!eps) return rc;
    // Endpoints are probed concurrently, each with its own client, and listed
    // in the order their probes finish, as etcdctl does.
    struct Probe {
      EndpointHealthRow row;
      grpc::Status get_error;
    };
    std::vector<Probe> finished;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (const std::string& ep : *eps) {
      threads.emplace_back([&, ep] {
        ClientOptions opts = client_->options();
        opts.endpoints = {ep};
        Client client(opts);
        Probe probe;
        probe.row = CheckHealth(client, ep, &probe.get_error);
        std::lock_guard<std::mutex> lock(mu);
        finished.push_back(std::move(probe));
      });
    }
    for (auto& t : threads) t.join();
    std::vector<EndpointHealthRow> rows;
    bool unhealthy = false;
    for (auto& probe : finished) {
      if (!probe.get_error.ok()) {
        LogRpcFailure(probe.get_error,
                      "endpoint://client-" + RandomUuid() + "/" + StripScheme(probe.row.endpoint));
      }
      unhealthy = unhealthy || !probe.row.error.empty();
      rows.push_back(std::move(probe.row));
    }
    auto printer = MakePrinter();
    if (!printer->SupportsEndpoints()) return Unsupported();
    printer->EndpointHealth(rows);
    if (unhealthy) return Fail(CtlStatus::Fail(kExitError, "unhealthy cluster"));
    return kExitSuccess;
  }

  int EndpointStatus() {
    if (int rc = MustClient(); rc >= 0) return rc;
    int rc = kExitSuccess;
    std::optional<std::vector<std::string>> eps = TargetEndpoints(&rc);
    if (!eps) return rc;
    std::vector<EndpointStatusRow> rows;
    bool failed = false;
    for (const std::string& ep : *eps) {
      EndpointStatusRow row;
      row.endpoint = ep;
      grpc::Status rpc = client_->StatusOf(ep, &row.status);
      if (!rpc.ok()) {
        LogRpcFailure(rpc, "passthrough:///" + StripScheme(ep));
        io_.err << "Failed to get the status of endpoint " << ep << " (" << ErrorText(rpc) << ")\n";
        failed = true;
        continue;
      }
      rows.push_back(std::move(row));
    }
    auto printer = MakePrinter();
    if (!printer->SupportsEndpoints()) return Unsupported();
    printer->EndpointStatus(rows);
    return failed ? kExitError : kExitSuccess;
  }

  int UnsupportedUnless(bool supported) { return supported ? -1 : Unsupported(); }

  // etcdctl's leaseFromArgs.
  std::optional<int64_t> LeaseFromArg(const std::string& arg, int* rc) {
    std::string why;
    std::optional<int64_t> id = GoParseInt(arg, 16, &why);
    if (!id) {
      *rc = Fail(
          CtlStatus::Fail(kExitBadArgs, "bad lease ID arg (" + why + "), expecting ID in Hex"));
    }
    return id;
  }

  int LeaseGrant() {
    if (args_.size() != 1) {
      return Fail(CtlStatus::Fail(kExitBadArgs, "lease grant command needs TTL argument"));
    }
    std::string why;
    std::optional<int64_t> ttl = GoParseInt(args_[0], 10, &why);
    if (!ttl) return Fail(CtlStatus::Fail(kExitBadArgs, "bad TTL (" + why + ")"));
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(*ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status rpc = client_->LeaseGrant(req, &resp);
    if (!rpc.ok()) {
      LogRpcFailure(rpc, ClientTarget());
      // etcdctl's message ends with its own newline.
      return Fail(CtlStatus::Fail(kExitError, "failed to grant lease (" + ErrorText(rpc) + ")\n"));
    }
    auto printer = MakePrinter();
    if (int rc = UnsupportedUnless(printer->SupportsLease()); rc >= 0) return rc;
    printer->Grant(resp);
    return kExitSuccess;
  }

  int LeaseRevoke() {
    if (args_.size() != 1) {
      return Fail(CtlStatus::Fail(kExitBadArgs, "lease revoke command needs 1 argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(args_[0], &rc);
    if (!id) return rc;
    if (int mrc = MustClient(); mrc >= 0) return mrc;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(*id);
    etcdserverpb::LeaseRevokeResponse resp;
    grpc::Status rpc = client_->LeaseRevoke(req, &resp);
    if (!rpc.ok()) {
      LogRpcFailure(rpc, ClientTarget());
      return Fail(CtlStatus::Fail(kExitError, "failed to revoke lease (" + ErrorText(rpc) + ")"));
    }
    auto printer = MakePrinter();
    if (int urc = UnsupportedUnless(printer->SupportsLease()); urc >= 0) return urc;
    printer->Revoke(*id, resp);
    return kExitSuccess;
  }

  int LeaseTimeToLive() {
    if (args_.size() != 1) {
      return Fail(
          CtlStatus::Fail(kExitBadArgs, "lease timetolive command needs lease ID as argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(args_[0], &rc);
    if (!id) return rc;
    if (int mrc = MustClient(); mrc >= 0) return mrc;
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(*id);
    req.set_keys(lease_keys_);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    grpc::Status rpc = client_->LeaseTimeToLive(req, &resp);
    if (!rpc.ok()) {
      LogRpcFailure(rpc, ClientTarget());
      return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    }
    auto printer = MakePrinter();
    if (int urc = UnsupportedUnless(printer->SupportsLease()); urc >= 0) return urc;
    printer->TimeToLive(resp, lease_keys_);
    return kExitSuccess;
  }

  int LeaseList() {
    if (int rc = MustClient(); rc >= 0) return rc;
    etcdserverpb::LeaseLeasesResponse resp;
    grpc::Status rpc = client_->LeaseLeases(&resp);
    if (!rpc.ok()) {
      LogRpcFailure(rpc, ClientTarget());
      return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    }
    auto printer = MakePrinter();
    if (int urc = UnsupportedUnless(printer->SupportsLease()); urc >= 0) return urc;
    printer->Leases(resp);
    return kExitSuccess;
  }

  int LeaseKeepAlive() {
    if (args_.size() != 1) {
      return Fail(
          CtlStatus::Fail(kExitBadArgs, "lease keep-alive command needs lease ID as argument"));
    }
    int rc = kExitSuccess;
    std::optional<int64_t> id = LeaseFromArg(args_[0], &rc);
    if (!id) return rc;
    if (int mrc = MustClient(); mrc >= 0) return mrc;
    auto printer = MakePrinter();
    if (lease_once_) {
      etcdserverpb::LeaseKeepAliveResponse resp;
      grpc::Status rpc = client_->LeaseKeepAliveOnce(*id, &resp);
      if (!rpc.ok()) return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
      if (int urc = UnsupportedUnless(printer->SupportsLease()); urc >= 0) return urc;
      printer->KeepAlive(resp);
      return kExitSuccess;
    }
    if (int urc = UnsupportedUnless(printer->SupportsLease()); urc >= 0) return urc;
    grpc::Status rpc =
        client_->LeaseKeepAliveLoop(*id, [&](const etcdserverpb::LeaseKeepAliveResponse& resp) {
          printer->KeepAlive(resp);
          io_.out.flush();
        });
    if (!rpc.ok()) return Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(rpc)));
    if (printer_options_.format == OutputFormat::kSimple) {
      io_.out << fmt::format("lease {:016x} expired or revoked.\n", *id);
    }
    return kExitSuccess;
  }

  int Version() {
    io_.out << "etcdctl version: " << kEtcdctlVersion << "\n";
    io_.out << "API version: " << kApiVersion << "\n";
    return kExitSuccess;
  }

  std::string path_;
  CtlIo& io_;
  FlagSet flags_;
  GlobalFlags global_;
  bool help_ = false;
  PutFlags put_;
  GetFlags get_;
  DelFlags del_;
  bool interactive_ = false;
  bool physical_ = false;
  bool lease_keys_ = false;
  bool lease_once_ = false;
  std::vector<std::string> args_;
  PrinterOptions printer_options_;
  std::unique_ptr<Client> client_;
};

// cobra's stripFlags + Find: the command words of the line, skipping flags
// and the values of global flags that take one.
std::vector<size_t> CommandWordPositions(const std::vector<std::string>& args) {
  std::vector<size_t> words;
  for (size_t i = 0; i < args.size() && words.size() < 2; ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      if (name.find('=') == std::string::npos && !kGlobalBoolFlags.count(name) && name != "help") {
        ++i;  // "--flag value"
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      if (a.size() == 2 && a[1] != 'h') ++i;  // "-w json"
      continue;
    }
    words.push_back(i);
    if (words.size() == 1 && a != "member" && a != "endpoint" && a != "lease") break;
  }
  return words;
}

}  // namespace

int RunCtl(const std::vector<std::string>& args, CtlIo& io) {
  std::vector<size_t> positions = CommandWordPositions(args);
  std::string path;
  for (size_t p : positions) path += (path.empty() ? "" : " ") + args[p];
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (std::find(positions.begin(), positions.end(), i) == positions.end()) {
      rest.push_back(args[i]);
    }
  }
  if (path.empty() || path == "member" || path == "endpoint" || path == "lease") {
    io.out << UsageText(path);
    return kExitSuccess;
  }
  if (!kCommands.count(path) && positions.size() > 1) {
    // An unknown sub-command of a group: cobra shows the group's help.
    io.out << UsageText(args[positions[0]]);
    return kExitSuccess;
  }
  if (!kCommands.count(path)) {
    std::string word = args[positions.back()];
    std::string parent = positions.size() > 1 ? "etcdctl " + args[positions[0]] : "etcdctl";
    std::string msg = "unknown command " + GoQuote(word) + " for " + GoQuote(parent);
    io.err << "Error: " << msg << "\nRun '" << parent << " --help' for usage.\n";
    io.err << "Error: " << msg << "\n";
    return kExitError;
  }
  Command command(path, io);
  return command.Run(rest);
}

}  // namespace etcdpp::ctl
