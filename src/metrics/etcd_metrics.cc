#include "metrics/etcd_metrics.h"

namespace etcdpp::metrics {

std::vector<double> DiskLatencyBuckets() { return ExponentialBuckets(0.001, 2, 14); }

Histogram& WalFsyncDurationSeconds() {
  static Histogram& h =
      DefaultRegistry().AddHistogram("etcd_disk_wal_fsync_duration_seconds",
                                     "Time one WAL fsync took, in seconds.", DiskLatencyBuckets());
  return h;
}

Histogram& BackendCommitDurationSeconds() {
  static Histogram& h = DefaultRegistry().AddHistogram(
      "etcd_disk_backend_commit_duration_seconds",
      "Time one backend write transaction took to commit, in seconds.", DiskLatencyBuckets());
  return h;
}

Histogram& BackendFlushDurationSeconds() {
  static Histogram& h = DefaultRegistry().AddHistogram(
      "etcdpp_disk_backend_flush_duration_seconds",
      "Time one flush of committed backend pages to disk took, in seconds.", DiskLatencyBuckets());
  return h;
}

Counter& LeaderChangesSeenTotal() {
  static Counter& c = DefaultRegistry().AddCounter("etcd_server_leader_changes_seen_total",
                                                   "Times this member saw the leader change.");
  return c;
}

Gauge& ProposalsPending() {
  static Gauge& g = DefaultRegistry().AddGauge("etcd_server_proposals_pending",
                                               "Proposals submitted to Raft and not applied yet.");
  return g;
}

Counter& ProposalsFailedTotal() {
  static Counter& c = DefaultRegistry().AddCounter("etcd_server_proposals_failed_total",
                                                   "Proposals that did not get applied.");
  return c;
}

Counter& ProposalsInlineTotal() {
  static Counter& c = DefaultRegistry().AddCounter(
      "etcdpp_server_proposals_inline_total",
      "Proposals a client thread wrote to the WAL itself while the raft loop slept.");
  return c;
}

Histogram& PeerRoundTripTimeSeconds(const std::string& to) {
  static Family<Histogram>& f =
      DefaultRegistry().AddHistogramFamily("etcd_network_peer_round_trip_time_seconds",
                                           "Round-trip time of a probe to a peer, in seconds.",
                                           {"To"}, ExponentialBuckets(0.0001, 2, 14));
  return f.WithLabels({to});
}

}  // namespace etcdpp::metrics
