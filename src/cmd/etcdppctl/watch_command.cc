// watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <vector>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/kv_ops.h"

extern char** environ;

namespace etcdpp::ctl {
namespace {

// Runs `argv` with the event in ETCD_WATCH_* variables, stdout and stderr
// inherited, as etcdctl's exec-command does. Returns an error text on failure.
std::optional<std::string> RunExec(const std::vector<std::string>& argv, int64_t revision,
                                   const mvccpb::Event& event) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back("ETCD_WATCH_REVISION=" + std::to_string(revision));
  env.push_back("ETCD_WATCH_EVENT_TYPE=" +
                GoQuote(event.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT"));
  env.push_back("ETCD_WATCH_KEY=" + GoQuote(event.kv().key()));
  env.push_back("ETCD_WATCH_VALUE=" + GoQuote(event.kv().value()));
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  std::cout.flush();
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), cenv.data());
  if (rc != 0) return "exec: " + GoQuote(argv[0]) + ": executable file not found in $PATH";
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::nullopt;
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  return "signal: " + std::to_string(WTERMSIG(status));
}

class WatchCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("interactive", 'i', &interactive_, false);
    f->AddBool("prefix", 0, &prefix_, false);
    f->AddInt64("rev", 0, &rev_, 0);
    f->AddBool("prev-kv", 0, &prev_kv_, false);
  }

  int Run(Invocation& inv) override {
    const auto& env = inv.io().environ;
    auto getenv = [&](const std::string& name) -> std::string {
      for (const auto& e : env) {
        if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
      }
      return "";
    };
    std::string env_key = getenv("ETCDCTL_WATCH_KEY");
    std::string env_range = getenv("ETCDCTL_WATCH_RANGE_END");
    if (env_key.empty() && !env_range.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs,
                                      "ETCDCTL_WATCH_KEY is empty but got "
                                      "ETCDCTL_WATCH_RANGE_END=" +
                                          GoQuote(env_range)));
    }
    if (interactive_) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadFeature, "interactive watch is not supported by etcdppctl"));
    }
    const auto& all = inv.args();
    size_t split = std::min(inv.flags().positionals_before_dash(), all.size());
    std::vector<std::string> watch_args(all.begin(), all.begin() + static_cast<long>(split));
    std::vector<std::string> exec_args(all.begin() + static_cast<long>(split), all.end());
    if (watch_args.empty() && !env_key.empty()) {
      watch_args.push_back(env_key);
      if (!env_range.empty()) watch_args.push_back(env_range);
    }
    if (watch_args.empty()) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "bad number of arguments"));
    }
    if (watch_args.size() == 2 && prefix_) {
      return inv.Fail(
          CtlStatus::Fail(kExitBadArgs, "`range_end` and `--prefix` are mutually exclusive"));
    }
    if (auto rc = inv.PrepareClient()) return *rc;

    etcdserverpb::WatchCreateRequest create;
    create.set_key(watch_args[0]);
    // Like etcdctl, a third word drops the range end instead of failing.
    // Like etcdctl, a third word drops the range end instead of failing.
    if (watch_args.size() == 2) create.set_range_end(watch_args[1]);
    if (prefix_) {
      create.set_range_end(watch_args[0].empty() ? std::string(1, '\0')
                                                 : PrefixRangeEnd(watch_args[0]));
      if (watch_args[0].empty()) create.set_key(std::string(1, '\0'));
    }
    create.set_start_revision(rev_);
    create.set_prev_kv(prev_kv_);

    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    std::optional<std::string> exec_error;
    grpc::Status st = inv.client().Watch(create, [&](const etcdserverpb::WatchResponse& resp) {
      if (resp.canceled()) {
        std::string why = resp.compact_revision() != 0
                              ? "etcdserver: mvcc: required revision has been compacted"
                              : resp.cancel_reason();
        inv.io().err << "watch was canceled (" << why << ")\n";
      }
      printer->Watch(resp);
      inv.io().out.flush();
      for (const auto& event : resp.events()) {
        if (exec_args.empty()) break;
        exec_error = RunExec(exec_args, resp.header().revision(), event);
        if (exec_error) return false;  // etcdctl exits at the first failure.
      }
      return true;
    });
    if (exec_error) {
      std::string quoted = "[";
      for (size_t i = 0; i < exec_args.size(); ++i) {
        quoted += (i ? " " : "") + GoQuote(exec_args[i]);
      }
      inv.io().err << "command " << quoted << "] error (" << *exec_error << ")\n";
      return kExitError;
    }
    if (!st.ok()) return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(st)));
    return inv.Fail(CtlStatus::Fail(kExitInterrupted, "watch is canceled by the server"));
  }

 private:
  bool interactive_ = false;
  bool prefix_ = false;
  int64_t rev_ = 0;
  bool prev_kv_ = false;
};

}  // namespace

std::unique_ptr<Command> NewWatchCommand(const std::string& path) {
  if (path == "watch") return std::make_unique<WatchCommand>();
  return nullptr;
}

}  // namespace etcdpp::ctl
