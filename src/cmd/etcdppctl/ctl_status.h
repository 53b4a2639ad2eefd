// How an etcdppctl command ends: etcdctl's exit codes and error text.
#pragma once

#include <string>

namespace etcdpp::ctl {

// etcdctl's exit codes (ctlv3/command/error.go).
enum ExitCode : int {
  kExitSuccess = 0,
  kExitError = 1,
  kExitBadConnection = 2,
  kExitInvalidInput = 3,
  kExitBadFeature = 4,
  kExitInterrupted = 5,
  kExitIO = 6,
  kExitBadArgs = 128,
};

// Success, or the exit code and the message etcdctl prints as "Error: <message>".
struct CtlStatus {
  int exit_code = kExitSuccess;
  std::string message;
  // Printed on stderr before "Error: ...": cobra's usage for a bad flag on a
  // txn request line.
  std::string stderr_prefix;

  static CtlStatus Ok() { return {}; }
  static CtlStatus Fail(int code, std::string msg) { return {code, std::move(msg), {}}; }
  bool ok() const { return exit_code == kExitSuccess; }
};

}  // namespace etcdpp::ctl
