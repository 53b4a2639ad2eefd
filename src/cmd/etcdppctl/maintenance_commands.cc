#include "cmd/etcdppctl/commands.h"

namespace etcdpp::ctl {

std::vector<CommandSpec> MaintenanceCommandSpecs() { return {}; }

}  // namespace etcdpp::ctl
