// etcdppctl: a command-line client for etcd v3 clusters (etcdpp or etcd)
// with etcdctl 3.4's syntax and output. See ctl.h.
#include <iostream>
#include <string>
#include <vector>

#include "cmd/etcdppctl/ctl.h"

extern char** environ;

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  etcdpp::ctl::CtlIo io{std::cin, std::cout, std::cerr, std::move(env)};
  int rc = etcdpp::ctl::RunCtl(args, io);
  std::cout.flush();
  std::cerr.flush();
  return rc;
}
