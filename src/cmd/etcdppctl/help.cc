#include "cmd/etcdppctl/help.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/invocation.h"
#include "cmd/etcdppctl/kv_ops.h"

namespace etcdpp::ctl {
namespace {

constexpr std::string_view kProgram = "etcdppctl";

const char* TypeWord(FlagSet::Type type) {
  switch (type) {
    case FlagSet::Type::kBool:
      return "";
    case FlagSet::Type::kString:
      return "string";
    case FlagSet::Type::kInt64:
      return "int";
    case FlagSet::Type::kDuration:
      return "duration";
    case FlagSet::Type::kStringSlice:
      return "list";
  }
  return "";
}

// Rows of two columns, the second aligned two spaces after the widest first.
std::string Columns(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  std::string out;
  for (const auto& [left, right] : rows) {
    out += "  " + left;
    if (!right.empty()) out += std::string(width - left.size() + 3, ' ') + right;
    out += "\n";
  }
  return out;
}

// Every paragraph line indented by two spaces (blank lines stay blank).
std::string Indent(std::string_view text) {
  std::string out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    out += line.empty() ? "\n" : "  " + line + "\n";
  }
  return out;
}

// The words of `path` after the group, or all of it for a top-level command.
std::string_view Leaf(std::string_view path, std::string_view group) {
  return group.empty() ? path : path.substr(group.size() + 1);
}

std::string GlobalFlagTable() {
  FlagSet flags;
  GlobalFlags global;
  global.Register(&flags, /*with_cluster=*/false);
  return FormatFlags(flags);
}

// The flags a command adds to the global ones, --help included.
std::string CommandFlagTable(const CommandSpec& spec) {
  FlagSet flags;
  bool help = false;
  flags.AddBool("help", 'h', &help, false, "show this help and exit");
  GlobalFlags global;
  if (spec.path.substr(0, spec.path.find(' ')) == "endpoint") global.RegisterClusterFlag(&flags);
  std::unique_ptr<Command> command = spec.make();
  command->AddFlags(&flags);
  return FormatFlags(flags);
}

std::string CommandList(std::string_view group) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const CommandSpec& spec : AllCommands()) {
    bool in_group =
        group.empty() || (spec.path.size() > group.size() &&
                          spec.path.substr(0, group.size() + 1) == std::string(group) + " ");
    if (in_group) rows.emplace_back(std::string(Leaf(spec.path, group)), std::string(spec.summary));
  }
  return Columns(rows);
}

std::string RootHelp() {
  std::string out;
  out += std::string(kProgram) +
         " - command-line client for etcd v3 API servers (etcdpp, or etcd 3.4)\n\n";
  out += "Usage:\n  " + std::string(kProgram) + " [global flags] <command> [flags] [arguments]\n\n";
  out += Indent(
      "Commands, flags, ETCDCTL_* variables, output and exit codes are those of\n"
      "`ETCDCTL_API=3 etcdctl` 3.4, so scripts written for etcdctl run unchanged.\n"
      "Flags may come before or after the command and its arguments; `--` ends them.");
  out += "\nCommands:\n" + CommandList("");
  out +=
      "\nGlobal flags (any command takes them; each can also be set by the variable\n"
      "ETCDCTL_<NAME>, e.g. ETCDCTL_ENDPOINTS or ETCDCTL_WRITE_OUT):\n" +
      GlobalFlagTable();
  out += "\n`" + std::string(kProgram) + " help <command>` or `" + std::string(kProgram) +
         " <command> --help` shows a command's own flags.\n";
  return out;
}

std::string GroupHelp(const GroupSpec& group) {
  std::string out;
  out += std::string(kProgram) + " " + std::string(group.name) + " - " +
         std::string(group.summary) + "\n\n";
  out += "Usage:\n  " + std::string(kProgram) + " " + std::string(group.name) +
         " <command> [flags] [arguments]\n\n";
  out += "Commands:\n" + CommandList(group.name);
  out += "\n`" + std::string(kProgram) + " help " + std::string(group.name) +
         " <command>` shows a command's flags; `" + std::string(kProgram) +
         " --help` the global ones.\n";
  return out;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string out;
  out += std::string(kProgram) + " " + std::string(spec.path) + " - " + std::string(spec.summary) +
         "\n\n";
  out += "Usage:\n  " + std::string(kProgram) + " " + std::string(spec.path) + " [flags]";
  if (!spec.arguments.empty()) out += " " + std::string(spec.arguments);
  out += "\n";
  if (!spec.details.empty()) out += "\n" + Indent(spec.details);
  out += "\nFlags:\n" + CommandFlagTable(spec);
  out += "\nGlobal flags (--endpoints, --write-out, ...): see `" + std::string(kProgram) +
         " --help`.\n";
  return out;
}

}  // namespace

std::string FormatFlags(const FlagSet& flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagSet::Description& d : flags.Describe()) {
    std::string left = d.shorthand ? std::string("-") + d.shorthand + ", " : "    ";
    left += "--" + d.name;
    if (d.type != FlagSet::Type::kBool) left += std::string(" ") + TypeWord(d.type);
    std::string right = d.help;
    if (!d.default_text.empty()) right += " (default " + d.default_text + ")";
    rows.emplace_back(std::move(left), std::move(right));
  }
  return Columns(rows);
}

bool HasHelp(std::string_view path) {
  return path.empty() || FindCommand(path) != nullptr || FindGroup(path) != nullptr;
}

std::string HelpText(std::string_view path) {
  if (const CommandSpec* spec = FindCommand(path)) return CommandHelp(*spec);
  if (const GroupSpec* group = FindGroup(path)) return GroupHelp(*group);
  return RootHelp();
}

std::string TxnRequestUsage(std::string_view op) {
  FlagSet flags;
  PutFlags put;
  GetFlags get;
  DelFlags del;
  std::string arguments;
  if (op == "put") {
    put.Register(&flags);
    arguments = "<key> <value>";
  } else if (op == "get") {
    get.Register(&flags);
    arguments = "<key> [range_end]";
  } else {
    del.Register(&flags);
    arguments = "<key> [range_end]";
  }
  return "A `" + std::string(op) + "` line inside txn reads: " + std::string(op) + " [flags] " +
         arguments + "\nFlags:\n" + FormatFlags(flags);
}

}  // namespace etcdpp::ctl
