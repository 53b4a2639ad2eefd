#include "cmd/etcdppctl/ctl.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/ctl_status.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/help.h"
#include "cmd/etcdppctl/invocation.h"

namespace etcdpp::ctl {
namespace {

// Positions of the words that name the command: the first word that is not
// a flag or a global flag's value, and a second one when the first is a
// group ("member list") or `help` (which may take "member list" itself).
// Flags may appear before, between and after them.
std::vector<size_t> CommandWordPositions(const std::vector<std::string>& args) {
  std::vector<size_t> words;
  size_t wanted = 1;
  for (size_t i = 0; i < args.size() && words.size() < wanted; ++i) {
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
    if (words.empty() && FindGroup(a) != nullptr) wanted = 2;
    if (words.empty() && a == "help") wanted = 3;
    if (words.size() == 1 && wanted == 3 && FindGroup(a) == nullptr) wanted = 2;
    words.push_back(i);
  }
  return words;
}

// `help [command]`: the screen for the command, or the root screen after a
// note when there is no such command.
int RunHelp(const std::vector<std::string>& words, CtlIo& io) {
  std::string topic;
  for (size_t i = 1; i < words.size(); ++i) topic += (i > 1 ? " " : "") + words[i];
  if (!HasHelp(topic)) {
    io.err << "etcdppctl help: there is no command " << GoQuote(topic)
           << "; the commands are listed below\n";
  }
  io.out << HelpText(topic);
  return kExitSuccess;
}

}  // namespace

int RunCtl(const std::vector<std::string>& args, CtlIo& io) {
  std::vector<size_t> positions = CommandWordPositions(args);
  std::vector<std::string> words;
  for (size_t p : positions) words.push_back(args[p]);
  std::string path;
  for (const std::string& w : words) path += (path.empty() ? "" : " ") + w;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (std::find(positions.begin(), positions.end(), i) == positions.end()) {
      rest.push_back(args[i]);
    }
  }
  if (!words.empty() && words[0] == "help") return RunHelp(words, io);
  if (path.empty() || (words.size() == 1 && FindGroup(path) != nullptr)) {
    // A bare group (or nothing) is a request for its list of commands, as
    // with etcdctl: exit 0.
    io.out << HelpText(path);
    return kExitSuccess;
  }
  const CommandSpec* spec = FindCommand(path);
  if (spec == nullptr && words.size() > 1) {
    // An unknown command inside a group lists the group, as etcdctl does.
    io.out << HelpText(words[0]);
    return kExitSuccess;
  }
  if (spec == nullptr) {
    // etcdctl's (cobra's) error for an unknown command, which it prints twice.
    std::string msg = "unknown command " + GoQuote(words.back()) + " for \"etcdctl\"";
    io.err << "Error: " << msg << "\nRun 'etcdctl --help' for usage.\n";
    io.err << "Error: " << msg << "\n";
    return kExitError;
  }
  std::unique_ptr<Command> command = spec->make();
  Invocation inv(path, io);
  command->AddFlags(&inv.flags());
  std::string error;
  std::optional<std::vector<std::string>> positional = inv.flags().Parse(rest, &error);
  if (!positional) {
    // Like etcdctl: the error, the command's help on stdout, the error again
    // as the command's failure.
    io.out << HelpText(path);
    io.err << "Error: " << error << "\n\n";
    return inv.Fail(CtlStatus::Fail(kExitError, error));
  }
  if (inv.help()) {
    io.out << HelpText(path);
    return kExitSuccess;
  }
  inv.set_args(std::move(*positional));
  return command->Run(inv);
}

}  // namespace etcdpp::ctl
