// etcd's metrics about the member, read at scrape time through the server's
// public getters (no hook in the server): leader, learner, IDs, versions,
// committed and applied indexes, DB size, quota.
#pragma once

#include <string>

#include "metrics/metrics.h"

namespace etcdpp::server {
class EtcdServer;
}

namespace etcdpp::http {

// `server` must outlive every Render() of `registry` (in the program: the
// listener serving /metrics is stopped before the server is destroyed).
void RegisterMemberMetrics(metrics::Registry& registry, server::EtcdServer* server,
                           const std::string& server_version, const std::string& cluster_version);

}  // namespace etcdpp::http
