// Fatal: the end of the road for a member whose durable state can no longer
// be trusted (a WAL or store write failed half way). Continuing could
// acknowledge writes that are not on disk, so the process aborts and a
// restart recovers from what is.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "base/status.h"

namespace etcdpp::server {

[[noreturn]] inline void Fatal(const char* what, const Status& status) {
  spdlog::critical("stopping the process: {}: {}", what, status.ToString());
  spdlog::default_logger()->flush();
  std::abort();
}

}  // namespace etcdpp::server
