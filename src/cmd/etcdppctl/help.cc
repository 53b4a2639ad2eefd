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

// Concatenation by appending: `"literal" + std::string` inserts into the
// front of a temporary, which GCC 12 at -O3 misreads as an overlapping copy
// (-Wrestrict).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out.append(part);
  return out;
}

// Rows of two columns, the second aligned three spaces after the widest first.
std::string Columns(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  std::string out;
  for (const auto& [left, right] : rows) {
    out.append("  ").append(left);
    if (!right.empty()) out.append(width - left.size() + 3, ' ').append(right);
    out.append("\n");
  }
  return out;
}

// Every paragraph line indented by two spaces (blank lines stay blank).
std::string Indent(std::string_view text) {
  std::string out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.append("  ").append(line);
    out.append("\n");
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
    bool in_group = group.empty() ||
                    (spec.path.size() > group.size() &&
                     spec.path.substr(0, group.size()) == group && spec.path[group.size()] == ' ');
    if (in_group) rows.emplace_back(std::string(Leaf(spec.path, group)), std::string(spec.summary));
  }
  return Columns(rows);
}

std::string RootHelp() {
  return Cat({kProgram, " - command-line client for etcd v3 API servers (etcdpp, or etcd 3.4)\n\n",
              "Usage:\n  ", kProgram, " [global flags] <command> [flags] [arguments]\n\n",
              Indent("Commands, flags, ETCDCTL_* variables, output and exit codes are those of\n"
                     "`ETCDCTL_API=3 etcdctl` 3.4, so scripts written for etcdctl run unchanged.\n"
                     "Flags may come before or after the command and its arguments; `--` ends "
                     "them."),
              "\nCommands:\n", CommandList(""),
              "\nGlobal flags (any command takes them; each can also be set by the variable\n"
              "ETCDCTL_<NAME>, e.g. ETCDCTL_ENDPOINTS or ETCDCTL_WRITE_OUT):\n",
              GlobalFlagTable(), "\n`", kProgram, " help <command>` or `", kProgram,
              " <command> --help` shows a command's own flags.\n"});
}

std::string GroupHelp(const GroupSpec& group) {
  return Cat({kProgram,
              " ",
              group.name,
              " - ",
              group.summary,
              "\n\n",
              "Usage:\n  ",
              kProgram,
              " ",
              group.name,
              " <command> [flags] [arguments]\n\n",
              "Commands:\n",
              CommandList(group.name),
              "\n`",
              kProgram,
              " help ",
              group.name,
              " <command>` shows a command's flags; `",
              kProgram,
              " --help` the global ones.\n"});
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string out = Cat({kProgram, " ", spec.path, " - ", spec.summary, "\n\n", "Usage:\n  ",
                         kProgram, " ", spec.path, " [flags]"});
  if (!spec.arguments.empty()) out.append(" ").append(spec.arguments);
  out.append("\n");
  if (!spec.details.empty()) out.append("\n").append(Indent(spec.details));
  out.append(
      Cat({"\nFlags:\n", CommandFlagTable(spec),
           "\nGlobal flags (--endpoints, --write-out, ...): see `", kProgram, " --help`.\n"}));
  return out;
}

}  // namespace

std::string FormatFlags(const FlagSet& flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagSet::Description& d : flags.Describe()) {
    std::string left = d.shorthand ? std::string{'-', d.shorthand, ',', ' '} : "    ";
    left.append("--").append(d.name);
    if (d.type != FlagSet::Type::kBool) left.append(" ").append(TypeWord(d.type));
    std::string right = d.help;
    if (!d.default_text.empty()) right.append(" (default ").append(d.default_text).append(")");
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
  std::string_view arguments = "<key> [range_end]";
  if (op == "put") {
    put.Register(&flags);
    arguments = "<key> <value>";
  } else if (op == "get") {
    get.Register(&flags);
  } else {
    del.Register(&flags);
  }
  return Cat({"A `", op, "` line inside txn reads: ", op, " [flags] ", arguments, "\nFlags:\n",
              FormatFlags(flags)});
}

}  // namespace etcdpp::ctl
