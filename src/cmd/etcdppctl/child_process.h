// Running a user's program from a command (`watch -- cmd`, `lock name cmd`).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace etcdpp::ctl {

// Runs `argv` (argv[0] searched in PATH) with `env` ("NAME=value" entries) as
// its whole environment, standard streams inherited and no signal blocked
// (even when the caller blocks some), and waits for it. Returns nullopt when
// it exited with status 0, otherwise the text etcdctl prints for the failure:
// Go's `exit status 3`, `signal: terminated` or
// `exec: "prog": executable file not found in $PATH`.
std::optional<std::string> RunChild(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env);

}  // namespace etcdpp::ctl
