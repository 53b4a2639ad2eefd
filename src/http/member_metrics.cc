#include "http/member_metrics.h"

#include <cstdio>

#include "mvcc/kv_store.h"
#include "server/etcd_server.h"

namespace etcdpp::http {

void RegisterMemberMetrics(metrics::Registry& registry, server::EtcdServer* server,
                           const std::string& server_version, const std::string& cluster_version) {
  registry.AddGaugeFunc("etcd_server_has_leader", "1 if this member knows a leader, else 0.",
                        [server] { return server->leader_id() != 0 ? 1.0 : 0.0; });
  registry.AddGaugeFunc(
      "etcd_server_is_leader", "1 if this member is the leader, else 0.",
      [server] { return server->leader_id() == server->member_id() ? 1.0 : 0.0; });
  registry.AddGaugeFunc("etcd_server_is_learner", "1 if this member is a learner, else 0.",
                        [server] { return server->is_learner() ? 1.0 : 0.0; });
  // Info gauges: the value is always 1, the label carries the fact.
  char id[17];
  std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(server->member_id()));
  registry
      .AddGaugeFamily("etcd_server_id", "This member's ID (hex) in the server_id label.",
                      {"server_id"})
      .WithLabels({id})
      .Set(1);
  registry
      .AddGaugeFamily("etcd_server_version",
                      "The etcd version this member reports, in the server_version label.",
                      {"server_version"})
      .WithLabels({server_version})
      .Set(1);
  const std::string major_minor = cluster_version.substr(0, cluster_version.rfind('.'));
  registry
      .AddGaugeFamily("etcd_cluster_version",
                      "The cluster's version (major.minor), in the cluster_version label.",
                      {"cluster_version"})
      .WithLabels({major_minor})
      .Set(1);
  // etcd exports these two indexes as gauges under counter-like names.
  registry.AddGaugeFunc("etcd_server_proposals_committed_total",
                        "The highest Raft index this member knows committed.",
                        [server] { return static_cast<double>(server->commit_index()); });
  registry.AddGaugeFunc("etcd_server_proposals_applied_total",
                        "The highest Raft index this member has applied.",
                        [server] { return static_cast<double>(server->applied_index()); });
  registry.AddGaugeFunc("etcd_mvcc_db_total_size_in_bytes",
                        "Bytes the backend database file takes, free pages included.", [server] {
                          auto store = server->store();
                          return store ? static_cast<double>(store->DbSizeBytes()) : 0.0;
                        });
  registry.AddGaugeFunc("etcd_mvcc_db_total_size_in_use_in_bytes",
                        "Bytes of the backend database in use (its size minus free pages).",
                        [server] {
                          auto store = server->store();
                          return store ? static_cast<double>(store->DbSizeInUseBytes()) : 0.0;
                        });
  registry.AddGaugeFunc("etcd_server_quota_backend_bytes",
                        "The backend size at which the member raises the NOSPACE alarm.", [server] {
                          return static_cast<double>(server->options().quota_backend_bytes);
                        });
}

}  // namespace etcdpp::http
