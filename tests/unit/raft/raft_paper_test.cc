// Tests citing the Raft paper ("In Search of an Understandable Consensus
// Algorithm", extended version), sections 5.1-5.4, in the style of etcd
// raft's raft_paper_test.go: one Raft state machine driven by hand, checking
// the messages it emits.
#include <gtest/gtest.h>

#include <set>

#include "network.h"
#include "raft/raft.h"
#include "raft_test_util.h"

namespace etcdpp::raft {
namespace {

using raftpb::Message;
using testing::Ent;
using testing::EntsWithTerms;
using testing::Msg;
using testing::NewTestRaft;
using testing::OfType;
using testing::PersistAll;
using testing::PropMsg;

void ElectLeader(Raft& r) {
  r.BecomeCandidate();
  r.BecomeLeader();
}

// 5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to
// follower state."
TEST(RaftPaper51, EveryRoleUpdatesTermFromAHigherTermMessage) {
  for (StateType st : {StateType::kFollower, StateType::kCandidate, StateType::kLeader}) {
    MemoryStorage ms;
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    if (st == StateType::kFollower) r->BecomeFollower(1, 2);
    if (st == StateType::kCandidate) r->BecomeCandidate();
    if (st == StateType::kLeader) ElectLeader(*r);
    ASSERT_TRUE(r->Step(Msg(2, 1, raftpb::MSG_APP, 2)).ok());
    EXPECT_EQ(r->term(), 2u) << StateTypeName(st);
    EXPECT_EQ(r->state(), StateType::kFollower) << StateTypeName(st);
    EXPECT_EQ(r->lead(), 2u) << StateTypeName(st);
  }
}

// 5.1: "If a server receives a request with a stale term number, it rejects
// the request." (Without CheckQuorum/PreVote it ignores it entirely.)
TEST(RaftPaper51, StaleTermMessagesAreIgnored) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  r->BecomeFollower(2, kNone);
  Message m = Msg(3, 1, raftpb::MSG_APP, 1);
  m.add_entries()->CopyFrom(Ent(1, 1));
  ASSERT_TRUE(r->Step(m).ok());
  EXPECT_EQ(r->raft_log().LastIndex(), 0u);
  EXPECT_TRUE(r->messages().empty());
  EXPECT_EQ(r->term(), 2u);
}

// 5.2: "When servers start up, they begin as followers."
TEST(RaftPaper52, ServersStartAsFollowers) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  EXPECT_EQ(r->state(), StateType::kFollower);
  EXPECT_EQ(r->term(), 0u);
}

// 5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
TEST(RaftPaper52, LeaderBroadcastsHeartbeatsEveryHeartbeatTick) {
  const int hi = 1;
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, hi, &ms);
  ElectLeader(*r);
  r->TakeMessages();
  for (int i = 0; i < hi; ++i) r->Tick();
  auto msgs = r->TakeMessages();
  ASSERT_EQ(msgs.size(), 2u);
  std::set<uint64_t> to;
  for (const auto& m : msgs) {
    EXPECT_EQ(m.type(), raftpb::MSG_HEARTBEAT);
    EXPECT_EQ(m.term(), 1u);
    EXPECT_EQ(m.entries_size(), 0);
    to.insert(m.to());
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// 5.2: "If a follower receives no communication over a period of time called
// the election timeout, then it ... begins an election: it increments its
// current term and transitions to candidate state. It then votes for itself
// and issues RequestVote RPCs in parallel to each of the other servers."
// A candidate whose election times out starts a new one the same way.
TEST(RaftPaper52, NonLeaderStartsElectionAfterTimeout) {
  for (StateType st : {StateType::kFollower, StateType::kCandidate}) {
    const int et = 10;
    MemoryStorage ms;
    auto r = NewTestRaft(1, {1, 2, 3}, et, 1, &ms);
    if (st == StateType::kFollower) r->BecomeFollower(1, 2);
    if (st == StateType::kCandidate) r->BecomeCandidate();
    r->TakeMessages();
    for (int i = 1; i < 2 * et; ++i) r->Tick();
    EXPECT_EQ(r->term(), 2u);
    EXPECT_EQ(r->state(), StateType::kCandidate);
    EXPECT_EQ(r->vote(), 1u);
    auto votes = OfType(r->TakeMessages(), raftpb::MSG_VOTE);
    ASSERT_EQ(votes.size(), 2u);
    for (const auto& m : votes) EXPECT_EQ(m.term(), 2u);
  }
}

// 5.2: "A candidate wins an election if it receives votes from a majority of
// the servers in the full cluster for the same term." Otherwise it either
// stays a candidate (undecided) or, with a majority of rejections, steps
// down.
TEST(RaftPaper52, LeaderElectionInOneRound) {
  struct Case {
    size_t size;
    std::map<uint64_t, bool> votes;
    StateType want;
  };
  const std::vector<Case> cases = {
      {1, {}, StateType::kLeader},
      {3, {{2, true}, {3, true}}, StateType::kLeader},
      {3, {{2, true}}, StateType::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, StateType::kLeader},
      {5, {{2, true}, {3, true}}, StateType::kLeader},
      {3, {{2, false}, {3, false}}, StateType::kFollower},
      {5, {{2, false}, {3, false}, {4, false}, {5, false}}, StateType::kFollower},
      {5, {{2, true}, {3, false}, {4, false}, {5, false}}, StateType::kFollower},
      {3, {}, StateType::kCandidate},
      {5, {{2, true}}, StateType::kCandidate},
      {5, {{2, false}, {3, false}}, StateType::kCandidate},
      {5, {}, StateType::kCandidate},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<uint64_t> peers;
    for (uint64_t id = 1; id <= cases[i].size; ++id) peers.push_back(id);
    MemoryStorage ms;
    auto r = NewTestRaft(1, peers, 10, 1, &ms);
    ASSERT_TRUE(r->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
    for (const auto& [id, granted] : cases[i].votes) {
      Message m = Msg(id, 1, raftpb::MSG_VOTE_RESP, r->term());
      m.set_reject(!granted);
      ASSERT_TRUE(r->Step(m).ok());
    }
    EXPECT_EQ(r->state(), cases[i].want) << "case " << i;
    EXPECT_EQ(r->term(), 1u) << "case " << i;
  }
}

// 5.2: "Each server will vote for at most one candidate in a given term, on
// a first-come-first-served basis."
TEST(RaftPaper52, FollowerVotesAtMostOncePerTerm) {
  struct Case {
    uint64_t vote;
    uint64_t nvote;
    bool reject;
  };
  const std::vector<Case> cases = {
      {kNone, 1, false}, {kNone, 2, false}, {1, 1, false},
      {2, 2, false},     {1, 2, true},      {2, 1, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    MemoryStorage ms;
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    r->BecomeFollower(1, kNone);
    // Vote is restored like from a hard state: set it by granting a vote.
    if (cases[i].vote != kNone) {
      ASSERT_TRUE(r->Step(Msg(cases[i].vote, 1, raftpb::MSG_VOTE, 1)).ok());
      r->TakeMessages();
    }
    ASSERT_TRUE(r->Step(Msg(cases[i].nvote, 1, raftpb::MSG_VOTE, 1)).ok());
    auto msgs = r->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), raftpb::MSG_VOTE_RESP);
    EXPECT_EQ(msgs[0].to(), cases[i].nvote);
    EXPECT_EQ(msgs[0].reject(), cases[i].reject) << "case " << i;
  }
}

// 5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC
// from another server claiming to be leader. If the leader's term is at
// least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
TEST(RaftPaper52, CandidateFallsBackToLegitimateLeader) {
  for (uint64_t term : {1u, 2u}) {
    MemoryStorage ms;
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    ASSERT_TRUE(r->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
    ASSERT_EQ(r->state(), StateType::kCandidate);
    ASSERT_TRUE(r->Step(Msg(2, 1, raftpb::MSG_APP, term)).ok());
    EXPECT_EQ(r->state(), StateType::kFollower);
    EXPECT_EQ(r->term(), term);
    EXPECT_EQ(r->lead(), 2u);
  }
}

// 5.2: "Raft uses randomized election timeouts ... chosen randomly from a
// fixed interval." Ours: [election_tick, 2*election_tick).
TEST(RaftPaper52, ElectionTimeoutIsRandomizedOverTheWholeInterval) {
  const int et = 10;
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, et, 1, &ms);
  std::set<int> timeouts;
  for (int round = 0; round < 50 * et; ++round) {
    r->BecomeFollower(r->term() + 1, kNone);
    int t = 0;
    while (r->state() == StateType::kFollower) {
      r->Tick();
      ++t;
    }
    timeouts.insert(t);
  }
  for (int d = et; d < 2 * et; ++d) EXPECT_EQ(timeouts.count(d), 1u) << d;
  EXPECT_EQ(timeouts.size(), static_cast<size_t>(et));
}

// 5.2: randomization means that "in most cases only a single server will
// time out": conflicts between followers starting elections on the same
// tick are rare.
TEST(RaftPaper52, FollowersRarelyTimeOutTogether) {
  const int et = 10;
  const int size = 5;
  std::vector<MemoryStorage> storages(size);
  std::vector<std::unique_ptr<Raft>> rs;
  for (int i = 0; i < size; ++i) {
    rs.push_back(
        NewTestRaft(i + 1, {1, 2, 3, 4, 5}, et, 1, &storages[i], [](Config& c) { c.seed = 7; }));
  }
  int conflicts = 0;
  const int rounds = 1000;
  for (int round = 0; round < rounds; ++round) {
    for (auto& r : rs) r->BecomeFollower(r->term() + 1, kNone);
    int timed_out = 0;
    while (timed_out == 0) {
      for (auto& r : rs) {
        r->Tick();
        if (!r->messages().empty()) {
          ++timed_out;
          r->TakeMessages();
        }
      }
    }
    if (timed_out > 1) ++conflicts;
  }
  EXPECT_LT(static_cast<double>(conflicts) / rounds, 0.3);
}

// 5.3: "Once a leader has been elected, it begins servicing client requests.
// ... The leader appends the command to its log as a new entry, then issues
// AppendEntries RPCs in parallel to each of the other servers."
TEST(RaftPaper53, LeaderStartsReplicationOnProposal) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  ElectLeader(*r);
  // Commit the empty entry of the new term first.
  PersistAll(*r, ms);
  for (uint64_t id : {2u, 3u}) {
    Message resp = Msg(id, 1, raftpb::MSG_APP_RESP, 1);
    resp.set_index(1);
    ASSERT_TRUE(r->Step(resp).ok());
  }
  r->TakeMessages();
  const uint64_t li = r->raft_log().LastIndex();
  ASSERT_TRUE(r->Step(PropMsg(1, "some data")).ok());
  EXPECT_EQ(r->raft_log().LastIndex(), li + 1);
  EXPECT_EQ(r->raft_log().committed(), li);
  auto msgs = r->TakeMessages();
  ASSERT_EQ(msgs.size(), 2u);
  for (const auto& m : msgs) {
    EXPECT_EQ(m.type(), raftpb::MSG_APP);
    EXPECT_EQ(m.index(), li);
    EXPECT_EQ(m.log_term(), 1u);
    EXPECT_EQ(m.commit(), li);
    ASSERT_EQ(m.entries_size(), 1);
    EXPECT_EQ(m.entries(0).index(), li + 1);
    EXPECT_EQ(m.entries(0).term(), 1u);
    EXPECT_EQ(m.entries(0).data(), "some data");
  }
  EXPECT_EQ(r->raft_log().UnstableEntries().size(), 1u);
}

// 5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers." The leader then applies it
// and tells followers the new commit index.
TEST(RaftPaper53, LeaderCommitsEntryReplicatedOnMajority) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  ElectLeader(*r);
  PersistAll(*r, ms);
  const uint64_t li = r->raft_log().LastIndex();
  ASSERT_TRUE(r->Step(PropMsg(1, "some data")).ok());
  for (const auto& m : r->TakeMessages()) {
    Message resp = Msg(m.to(), 1, raftpb::MSG_APP_RESP, m.term());
    resp.set_index(m.index() + m.entries_size());
    ASSERT_TRUE(r->Step(resp).ok());
  }
  EXPECT_EQ(r->raft_log().committed(), li + 1);
  auto next = r->raft_log().NextEntries();
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[1].data(), "some data");
  auto msgs = OfType(r->TakeMessages(), raftpb::MSG_APP);
  ASSERT_EQ(msgs.size(), 2u);
  for (const auto& m : msgs) EXPECT_EQ(m.commit(), li + 1);
}

// 5.3: the leader commits when a majority acknowledged, counting itself:
// table over which followers answered.
TEST(RaftPaper53, LeaderAcknowledgesCommitWithMajority) {
  struct Case {
    size_t size;
    std::set<uint64_t> acceptors;
    bool committed;
  };
  const std::vector<Case> cases = {
      {1, {}, true},     {3, {}, false},       {3, {2}, true},
      {3, {2, 3}, true}, {5, {}, false},       {5, {2}, false},
      {5, {2, 3}, true}, {5, {2, 3, 4}, true}, {5, {2, 3, 4, 5}, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<uint64_t> peers;
    for (uint64_t id = 1; id <= cases[i].size; ++id) peers.push_back(id);
    MemoryStorage ms;
    auto r = NewTestRaft(1, peers, 10, 1, &ms);
    ElectLeader(*r);
    PersistAll(*r, ms);
    const uint64_t li = r->raft_log().LastIndex();
    ASSERT_TRUE(r->Step(PropMsg(1, "some data")).ok());
    for (const auto& m : r->TakeMessages()) {
      if (cases[i].acceptors.count(m.to()) == 0) continue;
      Message resp = Msg(m.to(), 1, raftpb::MSG_APP_RESP, m.term());
      resp.set_index(m.index() + m.entries_size());
      ASSERT_TRUE(r->Step(resp).ok());
    }
    EXPECT_EQ(r->raft_log().committed() > li, cases[i].committed) << "case " << i;
  }
}

// 5.3: "When the leader commits an entry, it also commits all preceding
// entries in its log, including entries created by previous leaders."
TEST(RaftPaper53, LeaderCommitsPrecedingEntries) {
  for (const auto& prior : std::vector<std::vector<uint64_t>>{{}, {2}, {1, 2}, {1}}) {
    MemoryStorage ms;
    ASSERT_TRUE(ms.Append(EntsWithTerms(prior)).ok());
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    raftpb::HardState hs;
    r->BecomeFollower(2, kNone);
    ElectLeader(*r);  // term 3
    ASSERT_TRUE(r->Step(PropMsg(1, "some data")).ok());
    for (const auto& m : r->TakeMessages()) {
      Message resp = Msg(m.to(), 1, raftpb::MSG_APP_RESP, m.term());
      resp.set_index(m.index() + m.entries_size());
      ASSERT_TRUE(r->Step(resp).ok());
    }
    EXPECT_EQ(r->raft_log().committed(), prior.size() + 2);
    auto next = r->raft_log().NextEntries();
    ASSERT_EQ(next.size(), prior.size() + 2);
    EXPECT_EQ(next.back().data(), "some data");
  }
}

// 5.3: "Once a follower learns that a log entry is committed, it applies the
// entry to its local state machine (in log order)."
TEST(RaftPaper53, FollowerCommitsWhatTheLeaderCommitted) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  r->BecomeFollower(1, 2);
  Message m = Msg(2, 1, raftpb::MSG_APP, 1);
  m.add_entries()->CopyFrom(Ent(1, 1, "some data"));
  m.add_entries()->CopyFrom(Ent(2, 1, "some data2"));
  m.set_commit(1);
  ASSERT_TRUE(r->Step(m).ok());
  EXPECT_EQ(r->raft_log().committed(), 1u);
  auto next = r->raft_log().NextEntries();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].data(), "some data");
}

// 5.3: "If the follower does not find an entry in its log with the same
// index and term, then it refuses the new entries." The rejection hints the
// follower's last index.
TEST(RaftPaper53, FollowerChecksPrecedingEntry) {
  struct Case {
    uint64_t term, index;
    bool reject;
    uint64_t want_index;
    uint64_t want_hint = 0;
    uint64_t want_hint_term = 0;
  };
  // The rejection hints the highest (index, term) that may match: at most
  // the follower's last index, skipping entries with a term above the
  // probe's.
  const std::vector<Case> cases = {
      {0, 0, false, 1},       // match with committed entries
      {1, 1, false, 1},       // match with committed entries
      {2, 2, false, 2},       // match with uncommitted entries
      {1, 2, true, 2, 1, 1},  // unmatch with existing entry
      {3, 3, true, 3, 2, 2},  // unexisting entry
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    MemoryStorage ms;
    ASSERT_TRUE(ms.Append(EntsWithTerms({1, 2})).ok());
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    raftpb::HardState hs;
    r->raft_log().CommitTo(1);
    r->BecomeFollower(2, 2);
    Message m = Msg(2, 1, raftpb::MSG_APP, 2);
    m.set_log_term(cases[i].term);
    m.set_index(cases[i].index);
    m.set_commit(1);
    ASSERT_TRUE(r->Step(m).ok());
    auto msgs = r->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP_RESP);
    EXPECT_EQ(msgs[0].reject(), cases[i].reject) << "case " << i;
    EXPECT_EQ(msgs[0].index(), cases[i].want_index) << "case " << i;
    if (cases[i].reject) {
      EXPECT_EQ(msgs[0].reject_hint(), cases[i].want_hint) << "case " << i;
      EXPECT_EQ(msgs[0].log_term(), cases[i].want_hint_term) << "case " << i;
    }
  }
}

// 5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it;
// append any new entries not already in the log."
TEST(RaftPaper53, FollowerAppendsAndTruncatesConflicts) {
  struct Case {
    uint64_t index, term;
    std::vector<raftpb::Entry> ents;
    std::vector<uint64_t> want_terms;
    std::vector<uint64_t> want_unstable_terms;
  };
  const std::vector<Case> cases = {
      {2, 2, {Ent(3, 3)}, {1, 2, 3}, {3}},
      {1, 1, {Ent(2, 3), Ent(3, 4)}, {1, 3, 4}, {3, 4}},
      {0, 0, {Ent(1, 1)}, {1, 2}, {}},
      {0, 0, {Ent(1, 3)}, {3}, {3}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    MemoryStorage ms;
    ASSERT_TRUE(ms.Append(EntsWithTerms({1, 2})).ok());
    auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
    r->BecomeFollower(2, 2);
    Message m = Msg(2, 1, raftpb::MSG_APP, 2);
    m.set_log_term(cases[i].term);
    m.set_index(cases[i].index);
    for (const auto& e : cases[i].ents) *m.add_entries() = e;
    ASSERT_TRUE(r->Step(m).ok());
    std::vector<uint64_t> terms, unstable;
    for (const auto& e : r->raft_log().AllEntries()) terms.push_back(e.term());
    for (const auto& e : r->raft_log().UnstableEntries()) unstable.push_back(e.term());
    EXPECT_EQ(terms, cases[i].want_terms) << "case " << i;
    EXPECT_EQ(unstable, cases[i].want_unstable_terms) << "case " << i;
  }
}

// 5.3, Figure 7: whatever the follower's log looks like (missing entries,
// extra uncommitted entries, or both), the leader brings it in line with its
// own log.
TEST(RaftPaper53, LeaderSyncsFollowerLogFigure7) {
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a)
      {1, 1, 1, 4},                          // (b)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d)
      {1, 1, 1, 4, 4, 4, 4},                 // (e)
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f)
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    testing::NetworkOptions opts;
    opts.init_storage = [&](uint64_t id, MemoryStorage& ms) {
      const auto& terms = id == 2 ? followers[i] : leader;
      ASSERT_TRUE(ms.Append(EntsWithTerms(terms)).ok());
      raftpb::HardState hs;
      hs.set_term(id == 2 ? terms.back() : 7);
      hs.set_commit(id == 2 ? 3 : 7);  // index 3 is committed everywhere
      ms.SetHardState(hs);
    };
    testing::Network net({1, 2, 3}, opts);
    // Node 3 votes for node 1 (up to date); node 2 may not.
    net.Campaign(1);
    ASSERT_EQ(net.node(1).state(), StateType::kLeader) << "case " << i;
    ASSERT_TRUE(net.Propose(1, "x").ok());
    net.DeliverAll();
    const auto want = net.raft(1).raft_log().AllEntries();
    const auto got = net.raft(2).raft_log().AllEntries();
    ASSERT_EQ(got.size(), want.size()) << "case " << i;
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].term(), want[k].term()) << "case " << i << " index " << k + 1;
    }
    EXPECT_EQ(net.node(2).committed(), net.node(1).committed());
  }
}

// 5.3: "the leader can decrement nextIndex to bypass all of the conflicting
// entries in that term; one AppendEntries RPC will be required for each term
// with conflicting entries, rather than one RPC per entry." Figure 7 (f)
// (terms 2 and 3 divergent) needs at most two rejections.
TEST(RaftPaper53, RejectionHintsSkipWholeConflictingTerms) {
  MemoryStorage leader_storage, follower_storage;
  ASSERT_TRUE(leader_storage.Append(EntsWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6})).ok());
  ASSERT_TRUE(follower_storage.Append(EntsWithTerms({1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3})).ok());
  auto leader = NewTestRaft(1, {1, 2}, 10, 1, &leader_storage);
  auto follower = NewTestRaft(2, {1, 2}, 10, 1, &follower_storage);
  leader->BecomeFollower(7, kNone);
  leader->BecomeCandidate();
  leader->BecomeLeader();  // term 8; the follower is probed from index 11
  int rejections = 0;
  ASSERT_TRUE(leader->Step(PropMsg(1, "x")).ok());
  std::vector<Message> msgs = leader->TakeMessages();
  for (int round = 0; round < 100 && !msgs.empty(); ++round) {
    std::vector<Message> next;
    for (const auto& m : msgs) {
      Raft& to = m.to() == 1 ? *leader : *follower;
      if (m.type() == raftpb::MSG_APP_RESP && m.reject()) ++rejections;
      ASSERT_TRUE(to.Step(m).ok());
      for (auto& out : to.TakeMessages()) next.push_back(out);
    }
    msgs = std::move(next);
  }
  EXPECT_LE(rejections, 2);
  const auto want = leader->raft_log().AllEntries();
  const auto got = follower->raft_log().AllEntries();
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k].term(), want[k].term()) << k;
}

// 5.4.1: "The RequestVote RPC ... includes information about the candidate's
// log": its last index and term.
TEST(RaftPaper541, VoteRequestCarriesLastLogIndexAndTerm) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  Message m = Msg(2, 1, raftpb::MSG_APP, 2);
  m.add_entries()->CopyFrom(Ent(1, 1));
  m.add_entries()->CopyFrom(Ent(2, 2));
  ASSERT_TRUE(r->Step(m).ok());
  r->TakeMessages();
  for (int i = 0; i < 2 * r->election_timeout(); ++i) r->Tick();
  auto votes = OfType(r->TakeMessages(), raftpb::MSG_VOTE);
  ASSERT_EQ(votes.size(), 2u);
  for (const auto& v : votes) {
    EXPECT_EQ(v.term(), 3u);
    EXPECT_EQ(v.index(), 2u);
    EXPECT_EQ(v.log_term(), 2u);
  }
}

// 5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate": compare last terms, then lengths.
TEST(RaftPaper541, VoterRejectsCandidateWithStalerLog) {
  struct Case {
    uint64_t log_term, index;
    bool reject;
  };
  // The voter's log: terms [1, 1] (last index 2, last term 1).
  const std::vector<Case> cases = {
      {1, 1, true},  {1, 2, false}, {1, 3, false}, {0, 3, true},
      {2, 1, false}, {2, 2, false}, {2, 3, false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    MemoryStorage ms;
    ASSERT_TRUE(ms.Append(EntsWithTerms({1, 1})).ok());
    auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
    Message m = Msg(2, 1, raftpb::MSG_VOTE, 3);
    m.set_log_term(cases[i].log_term);
    m.set_index(cases[i].index);
    ASSERT_TRUE(r->Step(m).ok());
    auto msgs = r->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].reject(), cases[i].reject) << "case " << i;
  }
}

// 5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed
// by counting replicas."
TEST(RaftPaper542, LeaderOnlyCommitsEntriesOfItsTermByCounting) {
  struct Case {
    uint64_t index;
    uint64_t want_commit;
  };
  // Log [1:t1, 2:t2] from older terms; the leader is elected in term 3 and
  // appends its empty entry at 3.
  for (const Case& c : std::vector<Case>{{1, 0}, {2, 0}, {3, 3}}) {
    MemoryStorage ms;
    ASSERT_TRUE(ms.Append(EntsWithTerms({1, 2})).ok());
    auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
    r->BecomeFollower(2, kNone);
    ElectLeader(*r);
    ASSERT_EQ(r->term(), 3u);
    r->TakeMessages();
    Message resp = Msg(2, 1, raftpb::MSG_APP_RESP, 3);
    resp.set_index(c.index);
    ASSERT_TRUE(r->Step(resp).ok());
    EXPECT_EQ(r->raft_log().committed(), c.want_commit) << "ack " << c.index;
  }
}

// 5.4.3 / Figure 8: an entry of an old term stored on a majority can still
// be overwritten if it was never committed, so it must not be committed by
// counting. Branch (d): S5 overwrites the old entry. The network checks
// after every step that no committed index ever changes content.
TEST(RaftPaper543, Figure8UncommittedOldTermEntryMayBeOverwritten) {
  testing::NetworkOptions opts;
  opts.tweak = [](Config& c) { c.max_size_per_msg = 0; };  // one entry per MsgApp
  testing::Network net({1, 2, 3, 4, 5}, opts);
  net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kLeader);  // term 1, index 1 committed
  // (a) S1 replicates index 2 only to S2.
  net.Partition({{1, 2}, {3, 4, 5}});
  ASSERT_TRUE(net.Propose(1, "x").ok());
  net.DeliverAll();
  ASSERT_EQ(net.raft(2).raft_log().LastIndex(), 2u);
  ASSERT_EQ(net.node(1).committed(), 1u);
  // (b) S1 crashes; S5 wins term 2 with S3, S4 and appends index 2 (term 2)
  // that nobody else receives.
  net.Crash(1);
  net.Heal();
  net.Isolate(2);
  net.DropType(raftpb::MSG_APP);
  net.Campaign(5);
  ASSERT_EQ(net.node(5).state(), StateType::kLeader);
  ASSERT_EQ(net.node(5).term(), 2u);
  ASSERT_TRUE(net.Propose(5, "y").ok());
  net.DeliverAll();
  net.Crash(5);
  // (c) S1 restarts and wins term 3 (its first attempt, term 2, fails: S3
  // and S4 voted for S5). It replicates index 2 (term 1) to S3, so a
  // majority stores it, but not yet its own term-3 entry: index 2 must not
  // count as committed.
  net.Heal();
  net.Recover(1);
  net.Restart(1);
  net.AllowType(raftpb::MSG_APP);
  net.filter = [](raftpb::Message& m) {
    // Strip entries of term 3 from appends.
    while (m.type() == raftpb::MSG_APP && m.entries_size() > 0 &&
           m.entries(m.entries_size() - 1).term() == 3) {
      m.mutable_entries()->RemoveLast();
    }
    return true;
  };
  for (int i = 0; i < 3 && net.node(1).state() != StateType::kLeader; ++i) net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kLeader);
  ASSERT_EQ(net.node(1).term(), 3u);
  net.DeliverAll();
  ASSERT_TRUE(net.raft(3).raft_log().MatchTerm(2, 1));
  EXPECT_EQ(net.node(1).committed(), 1u);
  // (d) S1 crashes again; S5 returns and wins with S2, S3, S4 (its last term
  // 2 beats their last term 1), overwriting index 2 everywhere.
  net.Crash(1);
  net.filter = nullptr;
  net.Recover(5);
  net.Restart(5);
  for (int i = 0; i < 3 && net.node(5).state() != StateType::kLeader; ++i) net.Campaign(5);
  ASSERT_EQ(net.node(5).state(), StateType::kLeader);
  net.DeliverAll();
  auto e2 = net.raft(2).raft_log().Slice(2, 3, kNoLimit);
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ((*e2)[0].term(), 2u);  // "x" (term 1) was never committed, and is gone
  EXPECT_GE(net.node(2).committed(), 3u);
}

// Figure 8 branch (e): once S1 replicates an entry of its own term to a
// majority, that entry and the old one before it are committed, and S5 can
// no longer win an election.
TEST(RaftPaper543, Figure8EntryOfCurrentTermCommitsOldEntries) {
  testing::Network net({1, 2, 3, 4, 5});
  net.Campaign(1);
  net.Partition({{1, 2}, {3, 4, 5}});
  ASSERT_TRUE(net.Propose(1, "x").ok());
  net.DeliverAll();
  net.Crash(1);
  net.Heal();
  net.Isolate(2);
  net.DropType(raftpb::MSG_APP);
  net.Campaign(5);
  ASSERT_EQ(net.node(5).term(), 2u);
  ASSERT_TRUE(net.Propose(5, "y").ok());
  net.Crash(5);
  net.AllowType(raftpb::MSG_APP);
  net.Heal();
  net.Recover(1);
  net.Restart(1);
  // Term 2 fails (S3, S4 voted for S5); term 3 wins and the empty entry of
  // term 3 reaches S2, S3, S4.
  for (int i = 0; i < 3 && net.node(1).state() != StateType::kLeader; ++i) net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kLeader);
  EXPECT_EQ(net.node(1).committed(), 3u);
  ASSERT_EQ(net.sim(1).state, std::vector<std::string>{"x"});
  // S5 comes back with [t1, t2, t2] and cannot win against [t1, t1, t3].
  net.Recover(5);
  net.Restart(5);
  ASSERT_TRUE(net.node(5).Campaign().ok());
  net.ProcessReady(5);
  net.DeliverAll();
  EXPECT_NE(net.node(5).state(), StateType::kLeader);
  const uint64_t leader = net.WaitForStableLeader();
  ASSERT_NE(leader, 5u);
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(net.Propose(leader, "z").ok());
  net.DeliverAll();
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.sim(id).state, (std::vector<std::string>{"x", "z"})) << "node " << id;
  }
}

}  // namespace
}  // namespace etcdpp::raft
