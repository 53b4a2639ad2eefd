// etcdppctl: a command-line client for etcd v3 clusters (etcdpp or etcd)
// with etcdctl 3.4's syntax and output. See ctl.h.
#include <grpc/support/log.h>

#include <iostream>
#include <string>
#include <vector>

#include "cmd/etcdppctl/ctl.h"

extern char** environ;

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  // gRPC's own log lines (e.g. about an unusable endpoint) are not part of
  // etcdctl's output: errors reach the user as "Error: ..." instead.
  gpr_set_log_function([](gpr_log_func_args*) {});
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  etcdpp::ctl::CtlIo io{std::cin, std::cout, std::cerr, std::move(env)};
  int rc = etcdpp::ctl::RunCtl(args, io);
  std::cout.flush();
  std::cerr.flush();
  return rc;
}
