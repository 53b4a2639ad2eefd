// The standard process_* metrics every Prometheus client exports (CPU time,
// memory, file descriptors, start time), read from /proc at scrape time.
#pragma once

#include "metrics/metrics.h"

namespace etcdpp::metrics {

void RegisterProcessMetrics(Registry& registry);

}  // namespace etcdpp::metrics
