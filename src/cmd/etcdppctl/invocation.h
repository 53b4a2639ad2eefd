// The context one etcdppctl command runs in: its flags (etcdctl's global
// flags plus the command's own), the ETCDCTL_* environment, the client, the
// output printer, and etcdctl's ways of reporting a failure.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cmd/etcdppctl/client.h"
#include "cmd/etcdppctl/ctl.h"
#include "cmd/etcdppctl/ctl_status.h"
#include "cmd/etcdppctl/flag_set.h"
#include "cmd/etcdppctl/printer.h"

namespace etcdpp::ctl {

// etcdctl's persistent (global) flags, with its defaults.
struct GlobalFlags {
  std::vector<std::string> endpoints;
  std::chrono::nanoseconds dial_timeout{};
  std::chrono::nanoseconds command_timeout{};
  std::chrono::nanoseconds keepalive_time{};
  std::chrono::nanoseconds keepalive_timeout{};
  std::string write_out;
  bool hex = false;
  bool debug = false;
  bool insecure_transport = true;
  bool insecure_discovery = true;
  bool insecure_skip_tls_verify = false;
  std::string cacert, cert, key, user, password, discovery_srv, discovery_srv_name;
  // The `endpoint` group's persistent --cluster.
  bool cluster = false;

  void Register(FlagSet* flags, bool with_cluster);
  // The `endpoint` group's --cluster alone.
  void RegisterClusterFlag(FlagSet* flags);
  // True for a global flag that takes no value (cobra's command finding
  // must know which flags consume the next word).
  static bool IsBoolFlag(const std::string& name);
};

// Not thread-safe; lives for one command.
class Invocation {
 public:
  // `path` is the command path, e.g. "get" or "member list".
  Invocation(std::string path, CtlIo& io);

  const std::string& path() const { return path_; }
  CtlIo& io() { return io_; }
  FlagSet& flags() { return flags_; }
  const GlobalFlags& global() const { return global_; }
  bool help() const { return help_; }
  // Positional arguments, once the flags are parsed.
  const std::vector<std::string>& args() const { return args_; }
  void set_args(std::vector<std::string> args) { args_ = std::move(args); }

  // etcdctl's mustClientFromCmd: applies ETCDCTL_* variables, picks the
  // printer, creates the client. Returns the exit code when the command must
  // stop (the reason already printed), nullopt to go on.
  std::optional<int> PrepareClient();
  // Valid after PrepareClient().
  Client& client() { return *client_; }
  PrinterOptions& printer_options() { return printer_options_; }
  std::unique_ptr<Printer> MakePrinter();

  // Prints "Error: <message>" (after any stderr prefix); returns the code.
  int Fail(const CtlStatus& status);
  // A failed RPC: a warning line, then the error, exit 1 (2 when --user
  // could not authenticate).
  int RpcFailure(const grpc::Status& status);
  // The JSON warning line etcdctl's client logs for a failed call to
  // `target` (ours has its own message; scripts skip such lines).
  void LogRpcFailure(const grpc::Status& status, const std::string& target);
  // clientv3's balancer target name for the configured endpoints, or for a
  // client of just `endpoint`.
  std::string ClientTarget() const;
  static std::string ClientTargetFor(const std::string& endpoint);
  // "<format> not supported as output format", exit 4.
  int Unsupported();

 private:
  bool IsInherited(const std::string& name) const;
  std::optional<std::string> Getenv(const std::string& name) const;

  std::string path_;
  CtlIo& io_;
  FlagSet flags_;
  GlobalFlags global_;
  bool help_ = false;
  std::vector<std::string> args_;
  PrinterOptions printer_options_;
  std::unique_ptr<Client> client_;
};

}  // namespace etcdpp::ctl
