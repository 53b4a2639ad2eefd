// etcdppctl's commands and the table that names them.
//
// The table is the single source for command finding (ctl.cc) and for every
// help screen (help.cc): a command exists, is listed and is described exactly
// when it has an entry. Each command registers its flags, with their
// descriptions, in AddFlags; help screens list what AddFlags registers, so a
// flag cannot be accepted without being documented.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/etcdppctl/flag_set.h"
#include "cmd/etcdppctl/invocation.h"

namespace etcdpp::ctl {

class Command {
 public:
  virtual ~Command() = default;
  virtual void AddFlags(FlagSet* /*flags*/) {}
  // Returns the process exit code.
  virtual int Run(Invocation& inv) = 0;
};

struct CommandSpec {
  // One word, or a group and a word: "get", "member list".
  std::string_view path;
  // What follows the path and its flags on a command line, for the usage
  // line: "<key> [range_end]". Empty for none.
  std::string_view arguments;
  // One line, lower case, no final period: shown in command lists.
  std::string_view summary;
  // Paragraphs for the command's own help screen; may be empty.
  std::string_view details;
  std::unique_ptr<Command> (*make)();
};

// A word that only groups commands ("member" in "member list").
struct GroupSpec {
  std::string_view name;
  std::string_view summary;
};

// Every command, sorted by path.
const std::vector<CommandSpec>& AllCommands();
const std::vector<GroupSpec>& AllGroups();
// nullptr when there is no such command or group.
const CommandSpec* FindCommand(std::string_view path);
const GroupSpec* FindGroup(std::string_view name);

// Each file's share of the table.
std::vector<CommandSpec> KvCommandSpecs();           // put get del txn compaction
std::vector<CommandSpec> ClusterCommandSpecs();      // member, endpoint, move-leader, version
std::vector<CommandSpec> LeaseCommandSpecs();        // lease *
std::vector<CommandSpec> WatchCommandSpecs();        // watch
std::vector<CommandSpec> MaintenanceCommandSpecs();  // alarm, defrag, snapshot, hashkv
std::vector<CommandSpec> ConcurrencyCommandSpecs();  // lock, elect
std::vector<CommandSpec> AuthCommandSpecs();         // auth, user, role
std::vector<CommandSpec> MirrorCommandSpecs();       // make-mirror
std::vector<CommandSpec> CheckCommandSpecs();        // check perf, check datascale

// The endpoints a command addresses one by one: --endpoints, or with
// `cluster` every member's client URLs (etcdctl's --cluster). On failure
// reports it and sets *rc.
std::optional<std::vector<std::string>> TargetEndpoints(Invocation& inv, bool cluster, int* rc);

// A factory for CommandSpec::make.
template <typename T>
std::unique_ptr<Command> Make() {
  return std::make_unique<T>();
}

}  // namespace etcdpp::ctl
