// Raft paper section 6 (cluster membership changes, done one server at a
// time as in the Raft thesis 4.1), learners, and section 7 (log compaction:
// snapshots sent to followers that fell behind).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "network.h"
#include "raft/raft.h"
#include "raft_test_util.h"

namespace etcdpp::raft {
namespace {

using raftpb::Message;
using testing::Msg;
using testing::Network;
using testing::NetworkOptions;
using testing::NewTestRaft;
using testing::PropMsg;

std::vector<uint64_t> Voters(const raftpb::ConfState& cs) {
  return {cs.voters().begin(), cs.voters().end()};
}
std::vector<uint64_t> Learners(const raftpb::ConfState& cs) {
  return {cs.learners().begin(), cs.learners().end()};
}

NetworkOptions BootstrapOptions() {
  NetworkOptions o;
  o.bootstrap = true;
  return o;
}

// Ticks and delivers for a while (lets heartbeats and probes run).
void Settle(Network& net, int rounds = 20) {
  for (int i = 0; i < rounds; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
}

// ---------------------------------------------------------------------------
// Section 6: single-server membership changes.

TEST(Membership6, AddVoterCatchesUpAndCountsInQuorum) {
  Network net({1, 2, 3}, BootstrapOptions());
  const uint64_t leader = net.WaitForStableLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(net.Propose(leader, "a").ok());
  net.DeliverAll();
  net.AddEmptyNode(4);
  ASSERT_TRUE(net.ProposeConfChange(leader, raftpb::CONF_CHANGE_ADD_NODE, 4).ok());
  Settle(net);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(Voters(net.sim(id).conf_state), (std::vector<uint64_t>{1, 2, 3, 4})) << id;
  }
  EXPECT_EQ(net.sim(4).state, std::vector<std::string>{"a"});
  // Quorum is now 3 of 4: with two voters down nothing commits.
  std::vector<uint64_t> others;
  for (uint64_t id : {1, 2, 3, 4}) {
    if (id != leader) others.push_back(id);
  }
  net.Crash(others[0]);
  net.Crash(others[1]);
  const uint64_t commit = net.node(leader).committed();
  ASSERT_TRUE(net.Propose(leader, "b").ok());
  net.DeliverAll();
  EXPECT_EQ(net.node(leader).committed(), commit);
  net.Recover(others[0]);
  Settle(net, 5);
  EXPECT_GT(net.node(leader).committed(), commit);
}

TEST(Membership6, RemoveVoterShrinksQuorum) {
  Network net({1, 2, 3, 4});
  net.Campaign(1);
  ASSERT_TRUE(net.ProposeConfChange(1, raftpb::CONF_CHANGE_REMOVE_NODE, 4).ok());
  net.DeliverAll();
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(Voters(net.sim(id).conf_state), (std::vector<uint64_t>{1, 2, 3})) << id;
  }
  // 2 of the remaining 3 voters are a quorum (2 of the old 4 were not).
  net.Crash(3);
  net.Crash(4);
  ASSERT_TRUE(net.Propose(1, "b").ok());
  net.DeliverAll();
  EXPECT_EQ(net.sim(2).state, std::vector<std::string>{"b"});
}

TEST(Membership6, RemovingTheLastLaggardCommitsWhatTheRestHave) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  r->BecomeCandidate();
  r->BecomeLeader();
  ASSERT_TRUE(r->Step(PropMsg(1, "a")).ok());
  EXPECT_EQ(r->raft_log().committed(), 0u);  // 2 never answered
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  cc.set_node_id(2);
  r->ApplyConfChange(cc);
  EXPECT_EQ(r->raft_log().committed(), 2u);
}

// Only one conf change may be pending: a second proposal becomes an empty
// normal entry until the first is applied.
TEST(Membership6, OnlyOnePendingConfChange) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  r->BecomeCandidate();
  r->BecomeLeader();
  // pending_conf_index starts at the leader's last index; apply everything.
  r->raft_log().CommitTo(r->raft_log().LastIndex());
  r->raft_log().AppliedTo(r->raft_log().LastIndex());
  auto conf_prop = [] {
    Message m = Msg(1, 1, raftpb::MSG_PROP);
    auto* e = m.add_entries();
    e->set_type(raftpb::ENTRY_CONF_CHANGE);
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    cc.set_node_id(3);
    e->set_data(cc.SerializeAsString());
    return m;
  };
  ASSERT_TRUE(r->Step(conf_prop()).ok());
  ASSERT_TRUE(r->Step(conf_prop()).ok());
  auto ents = r->raft_log().AllEntries();
  ASSERT_EQ(ents.size(), 3u);
  EXPECT_EQ(ents[1].type(), raftpb::ENTRY_CONF_CHANGE);
  EXPECT_EQ(ents[2].type(), raftpb::ENTRY_NORMAL);
  EXPECT_TRUE(ents[2].data().empty());
  EXPECT_EQ(r->pending_conf_index(), 2u);
  // Once the first is committed and applied, a new one is accepted.
  r->raft_log().CommitTo(3);
  r->raft_log().AppliedTo(3);
  ASSERT_TRUE(r->Step(conf_prop()).ok());
  EXPECT_EQ(r->raft_log().AllEntries().back().type(), raftpb::ENTRY_CONF_CHANGE);
}

// A new leader may have an unapplied conf change in its uncommitted tail: it
// refuses a new one until it applied everything up to its election.
TEST(Membership6, NewLeaderWaitsForItsTailBeforeAcceptingConfChange) {
  MemoryStorage ms;
  ASSERT_TRUE(ms.Append(testing::EntsWithTerms({1, 1})).ok());
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  r->BecomeFollower(1, kNone);
  r->BecomeCandidate();
  r->BecomeLeader();
  EXPECT_EQ(r->pending_conf_index(), 2u);
}

TEST(Membership6, RemovedLeaderDropsProposalsAndOthersElectNewLeader) {
  Network net({1, 2, 3});
  net.Campaign(1);
  ASSERT_TRUE(net.ProposeConfChange(1, raftpb::CONF_CHANGE_REMOVE_NODE, 1).ok());
  net.DeliverAll();
  EXPECT_EQ(Voters(net.sim(1).conf_state), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(net.Propose(1, "x").code(), Code::kNotLeader);
  // The server stops a removed member; the others elect a leader, which
  // commits (and so applies) the removal too.
  net.Crash(1);
  const uint64_t leader = net.WaitForStableLeader();
  ASSERT_TRUE(leader == 2 || leader == 3);
  ASSERT_TRUE(net.Propose(leader, "y").ok());
  net.DeliverAll();
  EXPECT_EQ(Voters(net.sim(2).conf_state), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(Voters(net.sim(3).conf_state), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(net.sim(3).state, std::vector<std::string>{"y"});
}

// ---------------------------------------------------------------------------
// Learners.

TEST(LearnerTest, LearnerReplicatesButNeverVotesOrCountsInQuorum) {
  Network net({1, 2}, {}, {3});
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.DeliverAll();
  EXPECT_EQ(net.sim(3).state, std::vector<std::string>{"a"});
  EXPECT_TRUE(net.node(3).is_learner());
  // The learner never campaigns, even after a long silence.
  net.Crash(1);
  for (int i = 0; i < 100; ++i) net.Tick(3);
  EXPECT_EQ(net.node(3).state(), StateType::kFollower);
  EXPECT_EQ(net.node(3).term(), 1u);
  EXPECT_EQ(net.node(3).Campaign().code(), Code::kOk);
  EXPECT_EQ(net.node(3).state(), StateType::kFollower);
  // It is not counted in the quorum: 1 with only the learner commits nothing.
  net.Recover(1);
  net.Crash(2);
  const uint64_t commit = net.node(1).committed();
  ASSERT_TRUE(net.Propose(1, "b").ok());
  net.DeliverAll();
  EXPECT_EQ(net.node(1).committed(), commit);
}

TEST(LearnerTest, CandidateDoesNotAskLearnersForVotes) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms, {}, {3});
  ASSERT_TRUE(r->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
  for (const auto& m : r->TakeMessages()) EXPECT_NE(m.to(), 3u);
  // A vote from a learner does not count.
  Message v = Msg(3, 1, raftpb::MSG_VOTE_RESP, 1);
  ASSERT_TRUE(r->Step(v).ok());
  EXPECT_EQ(r->state(), StateType::kCandidate);
}

TEST(LearnerTest, AddLearnerThenPromote) {
  Network net({1, 2, 3}, BootstrapOptions());
  net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kLeader);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.AddEmptyNode(4);
  ASSERT_TRUE(net.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4).ok());
  Settle(net);
  EXPECT_EQ(Learners(net.sim(1).conf_state), std::vector<uint64_t>{4});
  EXPECT_TRUE(net.node(4).is_learner());
  EXPECT_EQ(net.sim(4).state, std::vector<std::string>{"a"});
  // A voter cannot be demoted to learner.
  ASSERT_TRUE(net.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 2).ok());
  Settle(net, 3);
  EXPECT_EQ(Voters(net.sim(1).conf_state), (std::vector<uint64_t>{1, 2, 3}));
  // Promote: add-node for the existing learner keeps its progress.
  ASSERT_TRUE(net.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_NODE, 4).ok());
  Settle(net, 3);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(Voters(net.sim(id).conf_state), (std::vector<uint64_t>{1, 2, 3, 4})) << id;
    EXPECT_TRUE(Learners(net.sim(id).conf_state).empty()) << id;
  }
  EXPECT_FALSE(net.node(4).is_learner());
  // The promoted node can now lead.
  net.TransferLeader(1, 4);
  net.DeliverAll();
  EXPECT_EQ(net.node(4).state(), StateType::kLeader);
}

// ---------------------------------------------------------------------------
// Section 7: log compaction and snapshots.

TEST(Snapshot7, FollowerBehindCompactionGetsSnapshotAndCatchesUp) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.Propose(1, fmt::format("v{}", i)).ok());
  net.DeliverAll();
  net.CompactLog(1);
  ASSERT_GT(net.sim(1).storage->FirstIndex(), net.raft(3).raft_log().LastIndex() + 1);
  int snaps = 0;
  net.filter = [&](raftpb::Message& m) {
    snaps += m.type() == raftpb::MSG_SNAP;
    return true;
  };
  net.Heal();
  Settle(net, 5);
  EXPECT_EQ(snaps, 1);
  EXPECT_EQ(net.sim(3).state, net.sim(1).state);
  EXPECT_EQ(net.sim(3).storage->FirstIndex(), net.sim(1).storage->FirstIndex());
  // Replication continues normally after the snapshot.
  ASSERT_TRUE(net.Propose(1, "after").ok());
  net.DeliverAll();
  EXPECT_EQ(net.sim(3).state.back(), "after");
  EXPECT_EQ(net.GetProgressState(1, 3), ProgressState::kReplicate);
}

// A new member joining after compaction starts from the snapshot (which
// also carries the membership).
TEST(Snapshot7, NewMemberJoinsFromSnapshot) {
  Network net({1, 2, 3}, BootstrapOptions());
  const uint64_t leader = net.WaitForStableLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.Propose(leader, fmt::format("v{}", i)).ok());
  net.DeliverAll();
  net.CompactLog(leader);
  net.AddEmptyNode(4);
  ASSERT_TRUE(net.ProposeConfChange(leader, raftpb::CONF_CHANGE_ADD_NODE, 4).ok());
  Settle(net);
  EXPECT_EQ(net.sim(4).state, net.sim(leader).state);
  EXPECT_EQ(Voters(net.sim(4).conf_state), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(Snapshot7, FailedSnapshotIsRetriedAfterProbePause) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.Propose(1, "v").ok());
  net.DeliverAll();
  net.CompactLog(1);
  net.Heal();
  net.DropType(raftpb::MSG_SNAP);  // reported as failed by the network
  Settle(net, 3);
  EXPECT_NE(net.sim(2).state.size(), 3u);
  EXPECT_EQ(net.GetProgressState(1, 2), ProgressState::kProbe);
  net.AllowType(raftpb::MSG_SNAP);
  Settle(net, 5);
  EXPECT_EQ(net.sim(2).state.size(), 3u);
}

TEST(Snapshot7, RestoreIgnoresOldSnapshotsAndInstallsMembership) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  raftpb::Snapshot s;
  s.mutable_metadata()->set_index(11);
  s.mutable_metadata()->set_term(11);
  s.mutable_metadata()->mutable_conf_state()->add_voters(1);
  s.mutable_metadata()->mutable_conf_state()->add_voters(2);
  s.mutable_metadata()->mutable_conf_state()->add_learners(3);
  ASSERT_TRUE(r->Restore(s));
  EXPECT_EQ(r->raft_log().LastIndex(), 11u);
  EXPECT_EQ(*r->raft_log().Term(11), 11u);
  EXPECT_EQ(Voters(r->tracker().ConfState()), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Learners(r->tracker().ConfState()), std::vector<uint64_t>{3});
  // Same or older snapshot: ignored.
  EXPECT_FALSE(r->Restore(s));
  // A voter is never demoted to learner by a snapshot.
  raftpb::Snapshot demote = s;
  demote.mutable_metadata()->set_index(20);
  demote.mutable_metadata()->mutable_conf_state()->clear_voters();
  demote.mutable_metadata()->mutable_conf_state()->add_voters(2);
  demote.mutable_metadata()->mutable_conf_state()->add_learners(1);
  EXPECT_FALSE(r->Restore(demote));
}

// A member added as a learner joins with an empty log and no configuration;
// when the leader has compacted past the learner's addition, the snapshot
// is what makes it a learner, and it must take it.
TEST(Snapshot7, NodeWithoutConfigurationRestoresSnapshotListingItAsLearner) {
  MemoryStorage ms;
  auto r = NewTestRaft(3, {}, 10, 1, &ms);
  raftpb::Snapshot s;
  s.mutable_metadata()->set_index(11);
  s.mutable_metadata()->set_term(2);
  s.mutable_metadata()->mutable_conf_state()->add_voters(1);
  s.mutable_metadata()->mutable_conf_state()->add_voters(2);
  s.mutable_metadata()->mutable_conf_state()->add_learners(3);
  ASSERT_TRUE(r->Restore(s));
  EXPECT_EQ(r->raft_log().LastIndex(), 11u);
  EXPECT_EQ(Learners(r->tracker().ConfState()), std::vector<uint64_t>{3});
  ASSERT_NE(r->tracker().Get(3), nullptr);
  EXPECT_TRUE(r->tracker().Get(3)->is_learner);
}

// A snapshot that the follower's log already covers only moves the commit.
TEST(Snapshot7, SnapshotMatchingLogOnlyFastForwardsCommit) {
  MemoryStorage ms;
  ASSERT_TRUE(ms.Append(testing::EntsWithTerms({1, 1, 2})).ok());
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  raftpb::Snapshot s;
  s.mutable_metadata()->set_index(2);
  s.mutable_metadata()->set_term(1);
  s.mutable_metadata()->mutable_conf_state()->add_voters(1);
  EXPECT_FALSE(r->Restore(s));
  EXPECT_EQ(r->raft_log().committed(), 2u);
  EXPECT_EQ(r->raft_log().LastIndex(), 3u);
}

}  // namespace
}  // namespace etcdpp::raft
