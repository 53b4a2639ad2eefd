// Config: the parameters of one Raft node. See raw_node.h for the API that
// consumes it.
#pragma once

#include <cstdint>
#include <functional>

#include "base/status.h"
#include "raft/read_only.h"
#include "raft/storage.h"

namespace etcdpp::raft {

struct Config {
  // This node's id; never 0 (0 means "none" on the wire).
  uint64_t id = 0;
  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_tick, 2*election_tick) ticks starts an election. Must be
  // greater than heartbeat_tick (etcd uses 10x).
  int election_tick = 10;
  // A leader sends heartbeats every heartbeat_tick ticks.
  int heartbeat_tick = 1;
  // The stable log. Not owned; must outlive the node.
  Storage* storage = nullptr;
  // The last index already applied to the state machine (restart only): the
  // node hands out committed entries after it.
  uint64_t applied = 0;
  // Upper bound on the encoded entry bytes in one MsgApp (at least one entry
  // is always sent). 0 means one entry per message.
  uint64_t max_size_per_msg = 1024 * 1024;
  // Upper bound on the committed entry bytes in one Ready (at least one).
  // 0 means "same as max_size_per_msg".
  uint64_t max_committed_size_per_ready = 0;
  // Upper bound on the payload bytes of proposals appended by a leader but
  // not yet committed; proposals beyond it are dropped (kTooManyRequests).
  // 0 means no limit.
  uint64_t max_uncommitted_entries_size = 0;
  // How many MsgApp may be in flight to one follower in replicate state.
  int max_inflight_msgs = 256;
  // A leader steps down when a quorum was not active within an election
  // timeout, and followers with a live leader ignore vote requests (leader
  // lease).
  bool check_quorum = false;
  // Raft thesis 9.6: probe with a pre-election before bumping the term, so a
  // partitioned node rejoining does not disrupt the cluster.
  bool pre_vote = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // Seed of the election-timeout randomization (combined with id, so nodes
  // configured with the same seed still pick different timeouts).
  uint64_t seed = 0;
  // Chooses the election timeout, in ticks, each time it is reset (every
  // change of term or role). Called with election_tick; must return a value
  // in [election_tick, 2*election_tick) (the node aborts otherwise). Empty:
  // uniform over that range from the generator seeded by `seed`. Lets a
  // test fix the timeout instead of searching for a seed that gives it.
  std::function<int(int election_tick)> pick_election_timeout;

  // kInvalidArgument explaining the first invalid field, or OK.
  Status Validate() const;
};

}  // namespace etcdpp::raft
