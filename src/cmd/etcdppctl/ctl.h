// etcdppctl's entry point: etcdctl 3.4's (ETCDCTL_API=3) command line.
//
// The commands are those of the table in commands.h; global flags and
// ETCDCTL_* environment variables are read as etcdctl reads them. What
// programs parse (command output in every -w format, error lines, exit
// codes) follows etcdctl 3.4.23 byte for byte; help screens are etcdppctl's
// own (help.h). docs/etcdppctl.md lists the differences.
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
