// etcdppctl's entry point: etcdctl 3.4's (ETCDCTL_API=3) command line.
//
// Supported: put, get, del, txn, compaction, member list, endpoint health,
// endpoint status, version; global flags and ETCDCTL_* environment
// variables as etcdctl reads them. Output, error texts and exit codes follow
// etcdctl 3.4.23 byte for byte (see docs/etcdppctl.md for the exceptions).
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace etcdpp::ctl {

struct CtlIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // The process environment as "NAME=value" entries.
  std::vector<std::string> environ;
};

// Runs one command line (without the program name) and returns the exit code.
int RunCtl(const std::vector<std::string>& args, CtlIo& io);

}  // namespace etcdpp::ctl
