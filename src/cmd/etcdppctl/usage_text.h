// The help screens etcdctl prints (for --help, and on stdout after a flag
// error), keyed by command path: "" (root), "get", "member list", ... and
// "txn-op put|get|del" for the short cobra usage printed to stderr when a
// request line inside `txn` has a bad flag.
#pragma once

#include <string_view>

namespace etcdpp::ctl {

// Empty when there is no screen for `command`.
std::string_view UsageText(std::string_view command);

}  // namespace etcdpp::ctl
