// etcdppctl's commands. Each adds its own flags to the invocation's flag set
// and runs with the parsed invocation; the implementations live in
// kv_commands.cc, cluster_commands.cc, lease_commands.cc and
// watch_command.cc.
#pragma once

#include <memory>
#include <string>

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

// Each returns nullptr for a path it does not implement.
std::unique_ptr<Command> NewKvCommand(const std::string& path);       // put get del txn compaction
std::unique_ptr<Command> NewClusterCommand(const std::string& path);  // member, endpoint, version
std::unique_ptr<Command> NewLeaseCommand(const std::string& path);    // lease *
std::unique_ptr<Command> NewWatchCommand(const std::string& path);    // watch

// The first of the above that implements `path`.
std::unique_ptr<Command> NewCommand(const std::string& path);

}  // namespace etcdpp::ctl
