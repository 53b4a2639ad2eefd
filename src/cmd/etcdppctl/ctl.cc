#include "cmd/etcdppctl/ctl.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/ctl_status.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/invocation.h"
#include "cmd/etcdppctl/usage_text.h"

namespace etcdpp::ctl {
namespace {

// cobra's stripFlags + Find: the command words of the line, skipping flags
// and the values of global flags that take one.
std::vector<size_t> CommandWordPositions(const std::vector<std::string>& args) {
  std::vector<size_t> words;
  for (size_t i = 0; i < args.size() && words.size() < 2; ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      if (name.find('=') == std::string::npos && !GlobalFlags::IsBoolFlag(name) && name != "help") {
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
  std::unique_ptr<Command> command = NewCommand(path);
  if (!command && positions.size() > 1) {
    // An unknown sub-command of a group: cobra shows the group's help.
    io.out << UsageText(args[positions[0]]);
    return kExitSuccess;
  }
  if (!command) {
    std::string word = args[positions.back()];
    std::string parent = positions.size() > 1 ? "etcdctl " + args[positions[0]] : "etcdctl";
    std::string msg = "unknown command " + GoQuote(word) + " for " + GoQuote(parent);
    io.err << "Error: " << msg << "\nRun '" << parent << " --help' for usage.\n";
    io.err << "Error: " << msg << "\n";
    return kExitError;
  }
  Invocation inv(path, io);
  command->AddFlags(&inv.flags());
  std::string error;
  std::optional<std::vector<std::string>> positional = inv.flags().Parse(rest, &error);
  if (!positional) {
    // cobra: the error, the usage (etcdctl prints it on stdout), then
    // etcdctl's own report of the same error.
    io.out << UsageText(path);
    io.err << "Error: " << error << "\n\n";
    return inv.Fail(CtlStatus::Fail(kExitError, error));
  }
  if (inv.help()) {
    io.out << UsageText(path);
    return kExitSuccess;
  }
  inv.set_args(std::move(*positional));
  return command->Run(inv);
}

}  // namespace etcdpp::ctl
