#include "cmd/etcdppctl/commands.h"

namespace etcdpp::ctl {

std::vector<CommandSpec> ConcurrencyCommandSpecs() { return {}; }

}  // namespace etcdpp::ctl
