#include <algorithm>

#include "cmd/etcdppctl/commands.h"

namespace etcdpp::ctl {

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> kAll = [] {
    std::vector<CommandSpec> all;
    for (auto part : {KvCommandSpecs, ClusterCommandSpecs, LeaseCommandSpecs, WatchCommandSpecs,
                      MaintenanceCommandSpecs, ConcurrencyCommandSpecs, AuthCommandSpecs,
                      MirrorCommandSpecs, CheckCommandSpecs}) {
      std::vector<CommandSpec> specs = part();
      all.insert(all.end(), specs.begin(), specs.end());
    }
    std::sort(all.begin(), all.end(),
              [](const CommandSpec& a, const CommandSpec& b) { return a.path < b.path; });
    return all;
  }();
  return kAll;
}

const std::vector<GroupSpec>& AllGroups() {
  static const std::vector<GroupSpec> kGroups = {
      {"alarm", "list or clear the cluster's alarms (e.g. NOSPACE)"},
      {"auth", "turn authentication on or off"},
      {"check", "measure the cluster's write latency or memory use under a test load"},
      {"endpoint", "ask each endpoint (or, with --cluster, each member) about itself"},
      {"lease", "grant, renew, inspect and revoke leases"},
      {"member", "list the cluster's members and change the membership"},
      {"role", "manage roles and the keys they may read or write"},
      {"snapshot", "save a backup of a member's database"},
      {"user", "manage users, their passwords and roles"},
  };
  return kGroups;
}

const CommandSpec* FindCommand(std::string_view path) {
  for (const CommandSpec& spec : AllCommands()) {
    if (spec.path == path) return &spec;
  }
  return nullptr;
}

const GroupSpec* FindGroup(std::string_view name) {
  for (const GroupSpec& group : AllGroups()) {
    if (group.name == name) return &group;
  }
  return nullptr;
}

}  // namespace etcdpp::ctl
