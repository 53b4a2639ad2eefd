// Randomized simulation: many seeds, each running a cluster through random
// ticks, message loss, reordering, partitions, crashes, restarts, log
// compaction and proposals. The Network checks the Raft safety invariants
// after every delivered message; at the end the faults stop and the cluster
// must converge (liveness under a healed network).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "network.h"

namespace etcdpp::raft {
namespace {

using testing::Network;
using testing::NetworkOptions;

struct SimParams {
  uint64_t seed;
  size_t nodes;
  bool pre_vote;
  bool check_quorum;
  bool bootstrap;
};

void RunRandomSimulation(const SimParams& p, int steps) {
  NetworkOptions o;
  o.seed = p.seed;
  o.pre_vote = p.pre_vote;
  o.check_quorum = p.check_quorum;
  o.bootstrap = p.bootstrap;
  o.drop_rate = 0.05;
  o.reorder = true;
  if (p.seed % 7 < 3) {
    // Stress flow control: one entry per MsgApp, a tiny inflight window.
    o.tweak = [](Config& c) {
      c.max_size_per_msg = 0;
      c.max_inflight_msgs = 2;
    };
  }
  std::vector<uint64_t> ids;
  for (uint64_t i = 1; i <= p.nodes; ++i) ids.push_back(i);
  Network net(ids, o);
  auto& rng = net.rng();
  auto pick = [&] { return ids[rng() % ids.size()]; };
  int proposals = 0;

  for (int step = 0; step < steps; ++step) {
    const uint64_t r = rng() % 1000;
    if (r < 450) {
      net.DeliverOne();
    } else if (r < 750) {
      net.Tick(pick());
    } else if (r < 850) {
      const uint64_t id = pick();
      if (!net.IsDown(id)) (void)net.Propose(id, fmt::format("p{}", proposals++));
    } else if (r < 870) {
      // New random partition into two groups, or heal.
      if (rng() % 2 == 0) {
        net.Heal();
      } else {
        std::vector<uint64_t> a, b;
        for (uint64_t id : ids) (rng() % 2 ? a : b).push_back(id);
        net.Partition({a, b});
      }
    } else if (r < 880) {
      // Crash or recover one node (at most a minority down).
      const uint64_t id = pick();
      if (net.IsDown(id)) {
        net.Recover(id);
        net.Restart(id);
      } else {
        size_t down = 0;
        for (uint64_t x : ids) down += net.IsDown(x);
        if ((down + 1) * 2 < ids.size()) net.Crash(id);
      }
    } else if (r < 890) {
      const uint64_t id = pick();
      if (!net.IsDown(id) && net.sim(id).applied_index > net.sim(id).storage->FirstIndex()) {
        net.CompactLog(id);
      }
    } else if (r < 895) {
      const uint64_t id = pick();
      if (!net.IsDown(id)) net.ReadIndex(id, fmt::format("r{}", step));
    } else if (r < 897) {
      const uint64_t id = pick();
      if (!net.IsDown(id)) net.TransferLeader(id, pick());
    } else {
      net.DeliverOne();
    }
    net.CheckInvariants();
    if (::testing::Test::HasFatalFailure()) return;
  }

  // Stop the faults: the cluster must elect a leader and converge.
  net.Heal();
  net.set_drop_rate(0);
  for (uint64_t id : ids) {
    if (net.IsDown(id)) {
      net.Recover(id);
      net.Restart(id);
    }
  }
  // A proposal may be dropped (e.g. a leadership transfer is running): like
  // a client, retry after a while.
  bool proposed = false;
  for (int attempt = 0; attempt < 20 && !proposed; ++attempt) {
    const uint64_t leader = net.WaitForStableLeader(2000);
    ASSERT_NE(leader, 0u) << "no leader after healing\n" << net.Dump();
    proposed = net.Propose(leader, "final").ok();
    if (!proposed) {
      for (int i = 0; i < 5; ++i) {
        net.TickAll();
        net.DeliverAll();
      }
    }
  }
  ASSERT_TRUE(proposed) << net.Dump();
  for (int i = 0; i < 50; ++i) {
    net.DeliverAll();
    net.TickAll();
  }
  net.DeliverAll();
  net.CheckInvariants();
  for (uint64_t id : ids) {
    ASSERT_FALSE(net.sim(id).state.empty()) << "node " << id << "\n" << net.Dump();
    EXPECT_EQ(net.sim(id).state.back(), "final") << "node " << id;
  }
  net.ExpectConverged();
  if (getenv("RAFT_SIM_STATS")) {
    fprintf(stderr, "seed %lu: applied %zu of %d proposals, term %lu, first index %lu\n",
            (unsigned long)p.seed, net.sim(ids[0]).state.size(), proposals,
            (unsigned long)net.node(ids[0]).term(),
            (unsigned long)net.sim(ids[0]).storage->FirstIndex());
  }
}

TEST(RandomizedNetworkTest, SafetyAndConvergenceOverManySeeds) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SimParams p{seed, seed % 2 == 0 ? 3u : 5u, seed % 3 == 0, seed % 4 < 2, seed % 5 == 0};
    SCOPED_TRACE("seed " + std::to_string(seed));
    RunRandomSimulation(p, 3000);
    if (HasFatalFailure()) return;
  }
}

// Random single-server membership changes (add learner, promote, add
// voter, remove voter) on top of the faults above. Removed members are
// ignored by their peers (as etcd's transport does) and never re-added.
void RunMembershipSimulation(uint64_t seed, int steps) {
  NetworkOptions o;
  o.seed = seed;
  o.bootstrap = true;
  o.pre_vote = seed % 2 == 0;
  o.check_quorum = seed % 3 == 0;
  o.drop_rate = 0.02;
  o.reorder = true;
  Network net({1, 2, 3}, o);
  const std::vector<uint64_t> all = {1, 2, 3, 4, 5, 6};
  for (uint64_t id : {4, 5, 6}) net.AddEmptyNode(id);
  auto& rng = net.rng();
  auto pick = [&] { return all[rng() % all.size()]; };
  std::set<uint64_t> ever_removed;
  int proposals = 0, conf_changes = 0;

  for (int step = 0; step < steps; ++step) {
    const uint64_t r = rng() % 1000;
    if (r < 450) {
      net.DeliverOne();
    } else if (r < 750) {
      net.Tick(pick());
    } else if (r < 830) {
      const uint64_t id = pick();
      if (!net.IsDown(id)) (void)net.Propose(id, fmt::format("p{}", proposals++));
    } else if (r < 860) {
      const uint64_t leader = net.Leader();
      if (leader == 0) continue;
      const raftpb::ConfState cs = net.sim(leader).conf_state;
      const uint64_t id = pick();
      if (ever_removed.count(id)) continue;
      auto in = [](const auto& list, uint64_t x) {
        return std::find(list.begin(), list.end(), x) != list.end();
      };
      raftpb::ConfChangeType type;
      if (in(cs.learners(), id)) {
        type = raftpb::CONF_CHANGE_ADD_NODE;  // promote
      } else if (in(cs.voters(), id)) {
        if (cs.voters_size() <= 3) continue;
        type = raftpb::CONF_CHANGE_REMOVE_NODE;
      } else {
        type = rng() % 2 ? raftpb::CONF_CHANGE_ADD_LEARNER_NODE : raftpb::CONF_CHANGE_ADD_NODE;
      }
      if (net.ProposeConfChange(leader, type, id).ok()) {
        ++conf_changes;
        if (type == raftpb::CONF_CHANGE_REMOVE_NODE) ever_removed.insert(id);
      }
    } else if (r < 870) {
      if (rng() % 2 == 0) {
        net.Heal();
      } else {
        std::vector<uint64_t> a, b;
        for (uint64_t id : all) (rng() % 2 ? a : b).push_back(id);
        net.Partition({a, b});
      }
    } else if (r < 880) {
      const uint64_t id = pick();
      if (net.IsDown(id)) {
        net.Recover(id);
        net.Restart(id);
      } else {
        size_t down = 0;
        for (uint64_t x : all) down += net.IsDown(x);
        if (down == 0) net.Crash(id);
      }
    } else if (r < 890) {
      const uint64_t id = pick();
      if (!net.IsDown(id) && net.sim(id).applied_index > net.sim(id).storage->FirstIndex()) {
        net.CompactLog(id);
      }
    } else {
      net.DeliverOne();
    }
    if (::testing::Test::HasFatalFailure()) return;
  }

  net.Heal();
  net.set_drop_rate(0);
  for (uint64_t id : all) {
    if (net.IsDown(id)) {
      net.Recover(id);
      net.Restart(id);
    }
  }
  bool proposed = false;
  uint64_t leader = 0;
  for (int attempt = 0; attempt < 20 && !proposed; ++attempt) {
    leader = net.WaitForStableLeader(2000);
    ASSERT_NE(leader, 0u) << "no leader after healing\n" << net.Dump();
    proposed = net.Propose(leader, "final").ok();
    for (int i = 0; i < 5; ++i) {
      net.TickAll();
      net.DeliverAll();
    }
  }
  ASSERT_TRUE(proposed) << net.Dump();
  for (int i = 0; i < 50; ++i) {
    net.DeliverAll();
    net.TickAll();
  }
  net.DeliverAll();
  net.CheckInvariants();
  // Every member of the final configuration converged.
  const raftpb::ConfState cs = net.raft(leader).tracker().ConfState();
  std::vector<uint64_t> members(cs.voters().begin(), cs.voters().end());
  members.insert(members.end(), cs.learners().begin(), cs.learners().end());
  for (uint64_t id : members) {
    ASSERT_FALSE(net.sim(id).state.empty()) << "node " << id << "\n" << net.Dump();
    EXPECT_EQ(net.sim(id).state.back(), "final") << "node " << id;
    EXPECT_EQ(net.sim(id).state, net.sim(leader).state) << "node " << id;
    const raftpb::ConfState& mine = net.sim(id).conf_state;
    EXPECT_EQ(std::vector<uint64_t>(mine.voters().begin(), mine.voters().end()),
              std::vector<uint64_t>(cs.voters().begin(), cs.voters().end()))
        << "node " << id;
  }
  if (getenv("RAFT_SIM_STATS")) {
    fprintf(stderr,
            "membership seed %lu: %d conf changes, final voters %d learners %d, applied %zu\n",
            (unsigned long)seed, conf_changes, cs.voters_size(), cs.learners_size(),
            net.sim(leader).state.size());
  }
}

TEST(RandomizedNetworkTest, MembershipChangesOverManySeeds) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RunMembershipSimulation(seed, 3000);
    if (HasFatalFailure()) return;
  }
}

// A quiet network with just ticks: exactly one leader emerges and stays.
TEST(RandomizedNetworkTest, StableLeaderWithoutFaults) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    NetworkOptions o;
    o.seed = seed;
    o.pre_vote = true;
    o.check_quorum = true;
    Network net({1, 2, 3}, o);
    const uint64_t leader = net.WaitForStableLeader();
    ASSERT_NE(leader, 0u);
    const uint64_t term = net.node(leader).term();
    for (int i = 0; i < 200; ++i) {
      net.TickAll();
      net.DeliverAll();
    }
    EXPECT_EQ(net.Leader(), leader) << "seed " << seed;
    EXPECT_EQ(net.node(leader).term(), term) << "seed " << seed;
  }
}

}  // namespace
}  // namespace etcdpp::raft
