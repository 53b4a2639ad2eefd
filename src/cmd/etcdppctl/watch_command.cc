// The watch command: events of a key or range as they happen, printed or
// handed to a program, and `watch -i` reading watches from standard input.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include "cmd/etcdppctl/child_process.h"
#include "cmd/etcdppctl/client.h"
#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/kv_ops.h"

extern char** environ;

namespace etcdpp::ctl {
namespace {

// Runs `argv` with the event in ETCD_WATCH_* variables, as etcdctl's
// exec-command does. Returns an error text on failure.
std::optional<std::string> RunExec(const std::vector<std::string>& argv, int64_t revision,
                                   const mvccpb::Event& event) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back("ETCD_WATCH_REVISION=" + std::to_string(revision));
  env.push_back("ETCD_WATCH_EVENT_TYPE=" +
                GoQuote(event.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT"));
  env.push_back("ETCD_WATCH_KEY=" + GoQuote(event.kv().key()));
  env.push_back("ETCD_WATCH_VALUE=" + GoQuote(event.kv().value()));
  return RunChild(argv, env);
}

// Go's %q of a []string: `["a" "b"]`.
std::string QuotedArgs(const std::vector<std::string>& args) {
  std::string out = "[";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out.append(" ");
    out.append(GoQuote(args[i]));
  }
  out.append("]");
  return out;
}

// etcdctl's argify: words separated by spaces, or Go double-quoted strings
// (unquoted; a quoted word that does not unquote is kept as it is).
std::vector<std::string> Argify(const std::string& line) {
  static const std::regex kWord(R"("(?:[^"\\]|\\.)*"|\S+)");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(line.begin(), line.end(), kWord);
       it != std::sregex_iterator(); ++it) {
    std::string w = it->str();
    if (w.size() >= 2 && w.front() == '"' && w.back() == '"') {
      std::string u;
      bool ok = true;
      for (size_t i = 1; i + 1 < w.size(); ++i) {
        if (w[i] != '\\') {
          u.push_back(w[i]);
          continue;
        }
        if (i + 2 >= w.size()) {
          ok = false;
          break;
        }
        char c = w[++i];
        switch (c) {
          case 'n':
            u.push_back('\n');
            break;
          case 't':
            u.push_back('\t');
            break;
          case '\\':
            u.push_back('\\');
            break;
          case '"':
            u.push_back('"');
            break;
          default:
            ok = false;
        }
        if (!ok) break;
      }
      if (ok) w = u;
    }
    out.push_back(w);
  }
  return out;
}

class WatchCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("interactive", 'i', &interactive_, false,
               "read `watch <key> [range_end] [flags]` lines from standard input, one watch each");
    f->AddBool("prefix", 0, &prefix_, false, "watch every key that starts with <key>");
    f->AddInt64("rev", 0, &rev_, 0, "start from this revision, replaying history (0: from now on)");
    f->AddBool("prev-kv", 0, &prev_kv_, false, "also print each key's value before the event");
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
    if (interactive_) return RunInteractive(inv, env_key, env_range);
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
      inv.io().err << "command " << QuotedArgs(exec_args) << " error (" << *exec_error << ")\n";
      return kExitError;
    }
    if (!st.ok()) return inv.Fail(CtlStatus::Fail(kExitBadConnection, ErrorText(st)));
    return inv.Fail(CtlStatus::Fail(kExitInterrupted, "watch is canceled by the server"));
  }

 private:
  // The create request for key [range_end] with the current flags, or an
  // error text (etcdctl's getWatchChan).
  std::optional<std::string> MakeCreate(const std::vector<std::string>& watch_args,
                                        etcdserverpb::WatchCreateRequest* create) const {
    if (watch_args.size() == 2 && prefix_) {
      return std::string("`range_end` and `--prefix` are mutually exclusive");
    }
    create->set_key(watch_args[0]);
    if (watch_args.size() >= 2) create->set_range_end(watch_args[1]);
    if (prefix_) {
      create->set_range_end(watch_args[0].empty() ? std::string(1, '\0')
                                                  : PrefixRangeEnd(watch_args[0]));
      if (watch_args[0].empty()) create->set_key(std::string(1, '\0'));
    }
    create->set_start_revision(rev_);
    create->set_prev_kv(prev_kv_);
    return std::nullopt;
  }

  // etcdctl watch -i: each stdin line "watch [options] key [range_end] [--
  // command...]" starts one more watch, printed as it comes; the flags of a
  // line stay set for the following ones (etcdctl's flags are globals). At
  // the end of input etcdctl exits with an error, watches and all.
  int RunInteractive(Invocation& inv, const std::string& env_key, const std::string& env_range) {
    if (auto rc = inv.PrepareClient()) return *rc;
    auto printer = inv.MakePrinter();
    if (!printer->SupportsLeaseAndWatch()) return inv.Unsupported();
    FlagSet line_flags;
    bool ignored_interactive = false;
    line_flags.AddBool("interactive", 'i', &ignored_interactive, false);
    line_flags.AddBool("prefix", 0, &prefix_, prefix_);
    line_flags.AddInt64("rev", 0, &rev_, rev_);
    line_flags.AddBool("prev-kv", 0, &prev_kv_, prev_kv_);
    auto out_mu = std::make_shared<std::mutex>();
    std::string line;
    bool watching = false;
    while (std::getline(inv.io().in, line)) {
      std::vector<std::string> args = Argify(line);
      if (args.empty()) {
        std::lock_guard<std::mutex> lock(*out_mu);
        inv.io().err << "Invalid command: " << line << " (watch and progress supported)\n";
        continue;
      }
      // etcdctl 3.4.23 also takes "progress" (a ProgressRequest on its
      // watch streams); its answer prints nothing in the simple format, and
      // etcdppctl's watches run on separate streams: accepted, not sent.
      if (args[0] == "progress") continue;
      if (args[0] != "watch") {
        std::lock_guard<std::mutex> lock(*out_mu);
        inv.io().err << "Invalid command " << line << " (only support watch)\n";
        continue;
      }
      if (args.size() < 2 && env_key.empty()) {
        std::lock_guard<std::mutex> lock(*out_mu);
        inv.io().err << "Invalid command " << line << " (command type or key is not provided)\n";
        continue;
      }
      std::string error;
      std::vector<std::string> rest(args.begin() + 1, args.end());
      std::optional<std::vector<std::string>> positional;
      {
        std::lock_guard<std::mutex> lock(
            *out_mu);  // Flags are read by running watches' setup only.
        positional = line_flags.Parse(rest, &error);
      }
      if (!positional) {
        std::lock_guard<std::mutex> lock(*out_mu);
        return inv.Fail(CtlStatus::Fail(kExitBadArgs, error));
      }
      const size_t split = std::min(line_flags.positionals_before_dash(), positional->size());
      std::vector<std::string> watch_args(positional->begin(),
                                          positional->begin() + static_cast<long>(split));
      std::vector<std::string> exec_args(positional->begin() + static_cast<long>(split),
                                         positional->end());
      if (!env_key.empty()) {
        std::vector<std::string> with_env{env_key};
        if (!env_range.empty()) with_env.push_back(env_range);
        with_env.insert(with_env.end(), watch_args.begin(), watch_args.end());
        watch_args = std::move(with_env);
      }
      if (watch_args.empty()) {
        std::lock_guard<std::mutex> lock(*out_mu);
        return inv.Fail(CtlStatus::Fail(kExitBadArgs, "bad number of arguments"));
      }
      etcdserverpb::WatchCreateRequest create;
      if (auto bad = MakeCreate(watch_args, &create)) {
        std::lock_guard<std::mutex> lock(*out_mu);
        inv.io().err << "Invalid command " << line << " (" << *bad << ")\n";
        continue;
      }
      // Each watch has its own connection (Client is single-threaded) and
      // thread; output is serialized so events of two watches never mix.
      auto client = std::make_shared<Client>(inv.client().options());
      Printer* shared_printer = printer.get();
      CtlIo* io = &inv.io();
      std::thread([client, create, exec_args, out_mu, shared_printer, io] {
        client->Watch(create, [&](const etcdserverpb::WatchResponse& resp) {
          std::lock_guard<std::mutex> lock(*out_mu);
          if (resp.canceled()) {
            std::string why = resp.compact_revision() != 0
                                  ? "etcdserver: mvcc: required revision has been compacted"
                                  : resp.cancel_reason();
            io->err << "watch was canceled (" << why << ")\n";
          }
          shared_printer->Watch(resp);
          io->out.flush();
          for (const auto& event : resp.events()) {
            if (exec_args.empty()) break;
            if (auto failed = RunExec(exec_args, resp.header().revision(), event)) {
              io->err << "command " << QuotedArgs(exec_args) << " error (" << *failed << ")\n";
              io->err.flush();
              _exit(kExitError);
            }
          }
          return true;
        });
      }).detach();
      watching = true;
    }
    std::lock_guard<std::mutex> lock(*out_mu);
    int rc = inv.Fail(CtlStatus::Fail(kExitInvalidInput, "Error reading watch request line: EOF"));
    if (watching) {
      // Watch threads are still running on this command's printer: end the
      // process here, as etcdctl's os.Exit does.
      inv.io().out.flush();
      inv.io().err.flush();
      _exit(rc);
    }
    return rc;
  }

  bool interactive_ = false;
  bool prefix_ = false;
  int64_t rev_ = 0;
  bool prev_kv_ = false;
};

}  // namespace

std::vector<CommandSpec> WatchCommandSpecs() {
  return {
      {"watch", "<key> [range_end] [-- <command> [args...]]",
       "print changes to a key or range as they happen",
       "Each event prints as PUT or DELETE, the key, then the value. After `--`,\n"
       "runs <command> for every event instead, with ETCD_WATCH_REVISION,\n"
       "ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and ETCD_WATCH_VALUE in its\n"
       "environment. The key may also come from ETCDCTL_WATCH_KEY (and the range\n"
       "end from ETCDCTL_WATCH_RANGE_END). Runs until interrupted, or until the\n"
       "server cancels the watch (exit 5).",
       Make<WatchCommand>},
  };
}

}  // namespace etcdpp::ctl
