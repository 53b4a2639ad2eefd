#include "cmd/etcdppctl/child_process.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cctype>
#include <csignal>
#include <cstring>
#include <iostream>

#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {

std::optional<std::string> RunChild(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env) {
  if (argv.empty()) return "exec: no command";
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  // Output written so far must come before the child's.
  std::cout.flush();
  std::cerr.flush();
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], nullptr, &attr, cargv.data(), cenv.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return "exec: " + GoQuote(argv[0]) + ": executable file not found in $PATH";
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::nullopt;
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  // Go names a signal in lower case: "terminated", "killed", "interrupt".
  std::string name = strsignal(WTERMSIG(status));
  if (!name.empty()) name[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[0])));
  return "signal: " + name;
}

}  // namespace etcdpp::ctl
