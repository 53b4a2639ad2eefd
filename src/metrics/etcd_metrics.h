// etcd's server metrics, under etcd's names and bucket boundaries, so the
// dashboards and alerts written for etcd work unchanged. Each accessor
// registers its metric in DefaultRegistry() on first call; a metric nobody
// has reached yet is absent from /metrics rather than a misleading zero.
//
// Hooks are one line where the event happens, e.g. in the raft loop:
//   metrics::WalFsyncDurationSeconds().Observe(seconds);
// (keep the reference in a member if the call site is hot; the accessor's
// cost is a function-local static's guard check).
//
// Values that already live in the server (leader, indexes, DB size) are read
// at scrape time instead, through public getters (http/member_metrics.h).
#pragma once

#include "metrics/metrics.h"

namespace etcdpp::metrics {

// 1 ms .. 8.192 s, doubling: etcd's buckets for disk latencies.
std::vector<double> DiskLatencyBuckets();

// The raft loop: one observation per WAL fsync (seconds).
Histogram& WalFsyncDurationSeconds();
// The apply thread: one observation per LMDB write transaction commit (seconds).
Histogram& BackendCommitDurationSeconds();
// The store's flush thread: each flush of a backend commit to disk, which
// runs after the commit (mvcc/deferred_flush.h). etcd's commit metric
// includes its flush; etcdpp's apply thread no longer waits for it.
Histogram& BackendFlushDurationSeconds();
// The raft loop: +1 each time the leader this member knows changes (also
// from none to one).
Counter& LeaderChangesSeenTotal();
// Proposals handed to Raft whose entries have not been applied yet
// (+1 on propose, -1 on apply or failure).
Gauge& ProposalsPending();
// Proposals that failed (timed out, dropped, leader lost).
Counter& ProposalsFailedTotal();
// etcdpp's own, beside etcd's: proposals a client thread put through Raft
// itself while the raft loop slept (server/interfaces.h, InlineProposals).
Counter& ProposalsInlineTotal();
// Transport: round-trip time of a probe to peer `to` (member ID in hex), seconds.
Histogram& PeerRoundTripTimeSeconds(const std::string& to);

}  // namespace etcdpp::metrics
