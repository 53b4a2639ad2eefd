// Raft thesis extensions: PreVote (9.6), CheckQuorum and the leader lease
// (6.2, 4.2.3), ReadIndex (6.4), leadership transfer (3.10), flow control,
// and proposal handling.
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
using testing::OfType;
using testing::PropMsg;

NetworkOptions WithPreVote(bool pre_vote, bool check_quorum) {
  NetworkOptions o;
  o.pre_vote = pre_vote;
  o.check_quorum = check_quorum;
  return o;
}

// ---------------------------------------------------------------------------
// Elections over the network.

TEST(ElectionTest, LeaderIsElectedByMajorityAndNotWithoutOne) {
  {
    Network net({1, 2, 3});
    net.Campaign(1);
    EXPECT_EQ(net.node(1).state(), StateType::kLeader);
    EXPECT_EQ(net.node(2).lead(), 1u);
    EXPECT_EQ(net.node(3).lead(), 1u);
  }
  {
    Network net({1, 2, 3, 4, 5});
    net.Crash(3);
    net.Crash(4);
    net.Crash(5);
    net.Campaign(1);
    EXPECT_EQ(net.node(1).state(), StateType::kCandidate);
  }
}

TEST(ElectionTest, TicksAloneElectExactlyOneLeader) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    NetworkOptions o;
    o.seed = seed;
    Network net({1, 2, 3, 4, 5}, o);
    const uint64_t leader = net.WaitForStableLeader();
    ASSERT_NE(leader, 0u) << "seed " << seed;
    int leaders = 0;
    for (uint64_t id : net.ids()) leaders += net.node(id).state() == StateType::kLeader;
    EXPECT_EQ(leaders, 1) << "seed " << seed;
  }
}

TEST(ElectionTest, NewLeaderAfterLeaderFails) {
  Network net({1, 2, 3});
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.DeliverAll();
  net.Crash(1);
  const uint64_t leader = net.WaitForStableLeader();
  ASSERT_TRUE(leader == 2 || leader == 3);
  EXPECT_GT(net.node(leader).term(), 1u);
  ASSERT_TRUE(net.Propose(leader, "b").ok());
  net.DeliverAll();
  EXPECT_EQ(net.sim(2).state, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(net.sim(3).state, (std::vector<std::string>{"a", "b"}));
}

// A campaign is blocked while a committed conf change is not yet applied: it
// may change who is allowed to be elected.
TEST(ElectionTest, NoCampaignWithCommittedButUnappliedConfChange) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  raftpb::Entry e;
  e.set_index(1);
  e.set_term(1);
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  r->raft_log().Append({e});
  r->raft_log().CommitTo(1);
  r->BecomeFollower(1, kNone);
  ASSERT_TRUE(r->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
  EXPECT_EQ(r->state(), StateType::kFollower);
  r->raft_log().AppliedTo(1);
  ASSERT_TRUE(r->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
  EXPECT_EQ(r->state(), StateType::kCandidate);
}

// ---------------------------------------------------------------------------
// PreVote.

// A node partitioned away keeps timing out. With PreVote it never wins a
// pre-election, so its term does not grow, and when it rejoins the leader
// keeps leading (no disruption).
TEST(PreVoteTest, PartitionedNodeRejoiningDoesNotDisrupt) {
  Network net({1, 2, 3}, WithPreVote(true, true));
  net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kLeader);
  const uint64_t term = net.node(1).term();
  net.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
  EXPECT_EQ(net.node(3).term(), term);
  EXPECT_EQ(net.node(3).state(), StateType::kPreCandidate);
  net.Heal();
  for (int i = 0; i < 50; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
  EXPECT_EQ(net.node(1).state(), StateType::kLeader);
  EXPECT_EQ(net.node(1).term(), term);
  EXPECT_EQ(net.node(3).lead(), 1u);
  EXPECT_EQ(net.node(3).state(), StateType::kFollower);
}

// Without PreVote and CheckQuorum the same rejoin forces an election at a
// higher term (the problem PreVote solves).
TEST(PreVoteTest, WithoutPreVoteRejoiningNodeBumpsTheTerm) {
  Network net({1, 2, 3});
  net.Campaign(1);
  const uint64_t term = net.node(1).term();
  net.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
  EXPECT_GT(net.node(3).term(), term + 1);
  net.Heal();
  net.WaitForStableLeader();
  EXPECT_GT(net.node(1).term(), term);
}

// A pre-candidate does not change its term or vote; a granted pre-vote does
// not record a vote on the voter either.
TEST(PreVoteTest, PreElectionLeavesTermsAndVotesUntouched) {
  MemoryStorage s1, s2;
  auto pre_vote = [](Config& c) { c.pre_vote = true; };
  auto r1 = NewTestRaft(1, {1, 2, 3}, 10, 1, &s1, pre_vote);
  auto r2 = NewTestRaft(2, {1, 2, 3}, 10, 1, &s2, pre_vote);
  ASSERT_TRUE(r1->Step(Msg(1, 1, raftpb::MSG_HUP)).ok());
  EXPECT_EQ(r1->state(), StateType::kPreCandidate);
  EXPECT_EQ(r1->term(), 0u);
  EXPECT_EQ(r1->vote(), kNone);
  auto reqs = OfType(r1->TakeMessages(), raftpb::MSG_PRE_VOTE);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].term(), 1u);  // the term it would campaign for
  ASSERT_TRUE(r2->Step(reqs[0]).ok());
  EXPECT_EQ(r2->term(), 0u);
  EXPECT_EQ(r2->vote(), kNone);
  auto resp = r2->TakeMessages();
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].type(), raftpb::MSG_PRE_VOTE_RESP);
  EXPECT_FALSE(resp[0].reject());
  // Winning the pre-election starts the real election.
  ASSERT_TRUE(r1->Step(resp[0]).ok());
  EXPECT_EQ(r1->state(), StateType::kCandidate);
  EXPECT_EQ(r1->term(), 1u);
  EXPECT_EQ(OfType(r1->TakeMessages(), raftpb::MSG_VOTE).size(), 2u);
}

// ---------------------------------------------------------------------------
// CheckQuorum.

TEST(CheckQuorumTest, LeaderStepsDownWithoutQuorumActivity) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms, [](Config& c) { c.check_quorum = true; });
  r->BecomeCandidate();
  r->BecomeLeader();
  // One follower answers within the round: with the leader that is a quorum
  // of 3, so it stays leader.
  ASSERT_TRUE(r->Step(Msg(2, 1, raftpb::MSG_HEARTBEAT_RESP, r->term())).ok());
  for (int i = 0; i < r->election_timeout(); ++i) r->Tick();
  EXPECT_EQ(r->state(), StateType::kLeader);
  // Nobody answers in the next round: it steps down.
  for (int i = 0; i < r->election_timeout(); ++i) r->Tick();
  EXPECT_EQ(r->state(), StateType::kFollower);
  EXPECT_EQ(r->lead(), kNone);
}

TEST(CheckQuorumTest, IsolatedLeaderStepsDownAndMajorityElectsNewLeader) {
  Network net({1, 2, 3}, WithPreVote(false, true));
  net.Campaign(1);
  net.Isolate(1);
  for (int i = 0; i < 40; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
  EXPECT_NE(net.node(1).state(), StateType::kLeader);
  const uint64_t leader = net.Leader();
  EXPECT_TRUE(leader == 2 || leader == 3);
}

// Leader lease: a follower that heard from its leader within the election
// timeout ignores a vote request, even of a higher term.
TEST(CheckQuorumTest, FollowerWithLiveLeaderIgnoresVoteRequests) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms, [](Config& c) {
    c.check_quorum = true;
    // The longest allowed timeout, so that after election_tick ticks the
    // lease has run out but the follower has not campaigned itself.
    c.pick_election_timeout = [](int election_tick) { return 2 * election_tick - 1; };
  });
  r->BecomeFollower(1, 2);
  Message vote = Msg(3, 1, raftpb::MSG_VOTE, 2);
  ASSERT_TRUE(r->Step(vote).ok());
  EXPECT_EQ(r->term(), 1u);
  EXPECT_TRUE(r->messages().empty());
  // After an election timeout without hearing from the leader, the vote is
  // granted.
  ASSERT_GT(r->randomized_election_timeout(), r->election_timeout());
  for (int i = 0; i < r->election_timeout(); ++i) r->Tick();
  ASSERT_TRUE(r->Step(vote).ok());
  EXPECT_EQ(r->term(), 2u);
  auto msgs = r->TakeMessages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_VOTE_RESP);
  EXPECT_FALSE(msgs[0].reject());
}

// Config::pick_election_timeout decides, tick for tick, when a follower that
// hears nothing starts an election.
TEST(ElectionTimeoutTest, InjectedPickerDecidesWhenAFollowerCampaigns) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms, [](Config& c) {
    c.pick_election_timeout = [](int election_tick) { return election_tick + 3; };
  });
  r->BecomeFollower(1, 2);
  EXPECT_EQ(r->randomized_election_timeout(), 13);
  for (int i = 0; i < 12; ++i) r->Tick();
  EXPECT_EQ(r->state(), StateType::kFollower);
  r->Tick();
  EXPECT_EQ(r->state(), StateType::kCandidate);
  EXPECT_EQ(r->term(), 2u);
}

// With CheckQuorum, a stale leader's heartbeat gets an answer at the current
// term so the stale leader steps down.
TEST(CheckQuorumTest, StaleLeaderLearnsNewTermFromFollowers) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms, [](Config& c) { c.check_quorum = true; });
  r->BecomeFollower(5, 2);
  ASSERT_TRUE(r->Step(Msg(3, 1, raftpb::MSG_HEARTBEAT, 3)).ok());
  auto msgs = r->TakeMessages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP_RESP);
  EXPECT_EQ(msgs[0].term(), 5u);
}

// ---------------------------------------------------------------------------
// ReadIndex.

TEST(ReadIndexTest, SafeReadOnLeaderAndFollowerReturnsCommitIndex) {
  Network net({1, 2, 3});
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.DeliverAll();
  const uint64_t commit = net.node(1).committed();
  net.ReadIndex(1, "ctx1");
  EXPECT_TRUE(net.sim(1).read_states.empty());  // waits for the heartbeat round
  net.DeliverAll();
  ASSERT_EQ(net.sim(1).read_states.size(), 1u);
  EXPECT_EQ(net.sim(1).read_states[0].index, commit);
  EXPECT_EQ(net.sim(1).read_states[0].request_ctx, "ctx1");
  // A follower forwards to the leader and gets the answer back.
  net.ReadIndex(2, "ctx2");
  net.DeliverAll();
  ASSERT_EQ(net.sim(2).read_states.size(), 1u);
  EXPECT_EQ(net.sim(2).read_states[0].index, commit);
  EXPECT_EQ(net.sim(2).read_states[0].request_ctx, "ctx2");
}

TEST(ReadIndexTest, LeaderWithoutQuorumCannotAnswer) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(1);
  net.ReadIndex(1, "ctx");
  net.DeliverAll();
  EXPECT_TRUE(net.sim(1).read_states.empty());
}

// A new leader does not know the cluster's commit index until it commits an
// entry of its term: reads wait until then.
TEST(ReadIndexTest, PostponedUntilLeaderCommitsInItsTerm) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2, 3}, 10, 1, &ms);
  r->BecomeCandidate();
  r->BecomeLeader();
  r->TakeMessages();
  Message req = Msg(1, 1, raftpb::MSG_READ_INDEX);
  req.add_entries()->set_data("ctx");
  ASSERT_TRUE(r->Step(req).ok());
  EXPECT_TRUE(OfType(r->TakeMessages(), raftpb::MSG_HEARTBEAT).empty());
  // The empty entry of term 1 commits: the read proceeds with a heartbeat
  // round carrying the key the leader gave it, which only an
  // acknowledgement echoing that key confirms.
  Message resp = Msg(2, 1, raftpb::MSG_APP_RESP, 1);
  resp.set_index(1);
  ASSERT_TRUE(r->Step(resp).ok());
  auto hbs = OfType(r->TakeMessages(), raftpb::MSG_HEARTBEAT);
  ASSERT_EQ(hbs.size(), 2u);
  ASSERT_FALSE(hbs[0].context().empty());
  EXPECT_EQ(hbs[0].context(), hbs[1].context());
  Message ack = Msg(2, 1, raftpb::MSG_HEARTBEAT_RESP, 1);
  ack.set_context(hbs[0].context() == "ctx" ? "other" : "ctx");
  ASSERT_TRUE(r->Step(ack).ok());
  EXPECT_TRUE(r->read_states().empty());
  ack.set_context(hbs[0].context());
  ASSERT_TRUE(r->Step(ack).ok());
  ASSERT_EQ(r->read_states().size(), 1u);
  EXPECT_EQ(r->read_states()[0].index, 1u);
}

TEST(ReadIndexTest, LeaseBasedAnswersImmediately) {
  NetworkOptions o = WithPreVote(false, true);
  o.tweak = [](Config& c) { c.read_only_option = ReadOnlyOption::kLeaseBased; };
  Network net({1, 2, 3}, o);
  net.Campaign(1);
  net.ReadIndex(1, "ctx");
  ASSERT_EQ(net.sim(1).read_states.size(), 1u);
  EXPECT_EQ(net.sim(1).read_states[0].index, net.node(1).committed());
}

// While node `paused` sleeps (the caller's filter holds its mail), nodes 1
// and 2 go on: they elect a leader if node 3 led, and commit an entry.
// Returns that commit index (0 if no leader emerged).
uint64_t CommitWithout(Network& net, uint64_t paused) {
  uint64_t leader = paused == 3 ? 0 : 3;
  for (int t = 0; t < 500 && leader == 0; ++t) {
    for (uint64_t id : {1, 2}) net.Tick(id);
    net.DeliverAll();
    for (uint64_t id : {1, 2}) {
      if (net.node(id).state() == StateType::kLeader) leader = id;
    }
  }
  if (leader == 0) {
    ADD_FAILURE() << "nodes 1 and 2 elected no leader";
    return 0;
  }
  EXPECT_TRUE(net.Propose(leader, "while paused").ok());
  net.DeliverAll();
  return net.node(leader).committed();
}

// Hands node `id` the mail held back from it, in the order it was sent, as
// a woken member reads its inbox.
void StepHeld(Network& net, uint64_t id, const std::vector<Message>& mail) {
  for (const Message& m : mail) {
    (void)net.node(id).Step(m);
    net.ProcessReady(id);
  }
}

// Asks node `id` for the read `ctx` again on every tick, as the server's
// batcher does until it is answered; every answer must be at `commit` or
// later, and one must come.
void ExpectFreshAnswer(Network& net, uint64_t id, const std::string& ctx, uint64_t commit) {
  for (int t = 0; t < 100; ++t) {
    net.Tick(id);
    net.ReadIndex(id, ctx);
    net.DeliverAll();
  }
  bool answered = false;
  for (const ReadState& rs : net.sim(id).read_states) {
    if (rs.request_ctx != ctx) continue;
    answered = true;
    EXPECT_GE(rs.index, commit) << "node " << id << " answered read " << ctx
                                << " with an index older than a commit made before it";
  }
  EXPECT_TRUE(answered) << "node " << id << " never answered read " << ctx;
}

// A member stopped (SIGSTOP) for longer than an election timeout wakes up
// with everything sent to it meanwhile waiting in its inbox, and a read may
// reach it before that mail does. Whether it led or followed before the
// pause, no read it answers after waking may be older than what the others
// committed while it slept.
void CheckReadAfterPause(uint64_t paused, bool read_before_mail, bool busy) {
  Network net({1, 2, 3}, WithPreVote(true, true));
  net.Campaign(3);
  ASSERT_TRUE(net.Propose(3, "before").ok());
  net.DeliverAll();
  std::vector<Message> inbox;
  net.filter = [&](Message& m) {
    if (m.to() != paused) return true;
    inbox.push_back(m);
    return false;
  };
  if (busy) {
    // Work of the paused member in flight as it stops: a proposal, its own
    // read and a read forwarded by another member. The others' answers wait
    // in its inbox.
    ASSERT_TRUE(net.Propose(3, "in flight").ok());
    net.ReadIndex(paused, "before the pause");
    net.ReadIndex(2, "forwarded before the pause");
    net.DeliverAll();
  }
  const uint64_t commit = CommitWithout(net, paused);
  ASSERT_GT(commit, net.node(paused).committed());

  net.filter = nullptr;
  auto deliver_mail = [&] {
    StepHeld(net, paused, inbox);
    inbox.clear();
    net.DeliverAll();
  };
  if (!read_before_mail) deliver_mail();
  net.ReadIndex(paused, "after the pause");
  net.DeliverAll();
  if (read_before_mail) deliver_mail();
  ExpectFreshAnswer(net, paused, "after the pause", commit);
}

TEST(ReadIndexTest, PausedLeaderReadBeforeItsMail) {
  for (bool busy : {false, true}) CheckReadAfterPause(3, true, busy);
}
TEST(ReadIndexTest, PausedLeaderReadAfterItsMail) {
  for (bool busy : {false, true}) CheckReadAfterPause(3, false, busy);
}
TEST(ReadIndexTest, PausedFollowerReadBeforeItsMail) {
  for (bool busy : {false, true}) CheckReadAfterPause(1, true, busy);
}
TEST(ReadIndexTest, PausedFollowerReadAfterItsMail) {
  for (bool busy : {false, true}) CheckReadAfterPause(1, false, busy);
}

// A follower asks again for a read whose answer is still on its way (the
// server's batcher re-asks on every tick), so the leader can queue a context
// a second time after answering it, behind reads that came in meanwhile. A
// late acknowledgement of a heartbeat sent for the first request must not
// confirm the second one, nor anything queued before it: those reads came
// after that heartbeat. Here the leader pauses with such an acknowledgement
// and the re-ask in its inbox, the others elect and commit, and it wakes to
// a read of its own before that mail.
TEST(ReadIndexTest, LateAckForAnsweredContextConfirmsNoLaterRead) {
  Network net({1, 2, 3}, WithPreVote(true, true));
  net.Campaign(3);
  ASSERT_TRUE(net.Propose(3, "before").ok());
  net.DeliverAll();

  // Node 1 reads; node 3 answers it on node 1's acknowledgement, node 2's
  // is held back.
  std::vector<Message> late;
  net.filter = [&](Message& m) {
    if (m.type() != raftpb::MSG_HEARTBEAT_RESP || m.from() != 2 || m.to() != 3) return true;
    late.push_back(m);
    return false;
  };
  net.ReadIndex(1, "z");
  net.DeliverAll();
  ASSERT_EQ(net.sim(1).read_states.size(), 1u);
  ASSERT_FALSE(late.empty());
  // Node 1's second ask for "z", sent before the answer arrived.
  Message reask;
  reask.set_type(raftpb::MSG_READ_INDEX);
  reask.set_from(1);
  reask.set_to(3);
  reask.add_entries()->set_data("z");
  late.insert(late.begin(), reask);

  // Node 3 stops; the others elect a leader and commit without it.
  std::vector<Message> inbox;
  net.filter = [&](Message& m) {
    if (m.to() != 3) return true;
    inbox.push_back(m);
    return false;
  };
  const uint64_t commit = CommitWithout(net, 3);
  ASSERT_GT(commit, net.node(3).committed());

  // Node 3 wakes: its own read first, then the mail from before its stop,
  // then everything else.
  net.filter = nullptr;
  net.ReadIndex(3, "y");
  StepHeld(net, 3, late);
  StepHeld(net, 3, inbox);
  net.DeliverAll();
  ExpectFreshAnswer(net, 3, "y", commit);
}

TEST(ReadIndexTest, SingleVoterAnswersImmediately) {
  Network net({1});
  net.Campaign(1);
  net.ReadIndex(1, "ctx");
  ASSERT_EQ(net.sim(1).read_states.size(), 1u);
  EXPECT_EQ(net.sim(1).read_states[0].index, 1u);
}

TEST(ReadIndexTest, LeaseBasedRequiresCheckQuorum) {
  MemoryStorage ms;
  Config c;
  c.id = 1;
  c.storage = &ms;
  c.read_only_option = ReadOnlyOption::kLeaseBased;
  EXPECT_EQ(Raft::Create(c).status().code(), Code::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Leadership transfer.

TEST(LeaderTransferTest, ToUpToDateFollower) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.TransferLeader(1, 2);
  net.DeliverAll();
  EXPECT_EQ(net.node(2).state(), StateType::kLeader);
  EXPECT_EQ(net.node(1).state(), StateType::kFollower);
  EXPECT_EQ(net.node(1).lead(), 2u);
  EXPECT_EQ(net.raft(1).lead_transferee(), kNone);
}

// The transfer can also be requested on a follower (forwarded).
TEST(LeaderTransferTest, RequestedOnFollower) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.TransferLeader(2, 2);
  net.DeliverAll();
  EXPECT_EQ(net.node(2).state(), StateType::kLeader);
}

// A lagging transferee is caught up first, then told to time out.
TEST(LeaderTransferTest, ToLaggingFollowerCatchesItUpFirst) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.DeliverAll();
  net.Heal();
  net.TransferLeader(1, 3);
  net.DeliverAll();
  EXPECT_EQ(net.node(3).state(), StateType::kLeader);
  EXPECT_EQ(net.sim(3).state, std::vector<std::string>{"a"});
}

// Proposals are dropped while the transfer runs; it is aborted after an
// election timeout if the transferee never takes over.
TEST(LeaderTransferTest, DropsProposalsAndAbortsAfterElectionTimeout) {
  Network net({1, 2, 3});
  net.Campaign(1);
  net.Crash(3);
  net.TransferLeader(1, 3);
  EXPECT_EQ(net.raft(1).lead_transferee(), 3u);
  EXPECT_EQ(net.Propose(1, "x").code(), Code::kLeaderChanged);
  for (int i = 0; i < net.raft(1).election_timeout(); ++i) net.Tick(1);
  EXPECT_EQ(net.raft(1).lead_transferee(), kNone);
  EXPECT_EQ(net.node(1).state(), StateType::kLeader);
  EXPECT_TRUE(net.Propose(1, "x").ok());
}

TEST(LeaderTransferTest, ToSelfOrLearnerIsIgnored) {
  Network net({1, 2, 3}, {}, {4});
  net.Campaign(1);
  net.TransferLeader(1, 1);
  EXPECT_EQ(net.raft(1).lead_transferee(), kNone);
  net.TransferLeader(1, 4);
  EXPECT_EQ(net.raft(1).lead_transferee(), kNone);
  net.DeliverAll();
  EXPECT_EQ(net.node(1).state(), StateType::kLeader);
}

// Leadership transfer bypasses the leader lease of CheckQuorum.
TEST(LeaderTransferTest, WorksWithCheckQuorumAndPreVote) {
  Network net({1, 2, 3}, WithPreVote(true, true));
  net.Campaign(1);
  net.TransferLeader(1, 2);
  net.DeliverAll();
  EXPECT_EQ(net.node(2).state(), StateType::kLeader);
}

// ---------------------------------------------------------------------------
// Proposals and flow control.

TEST(ProposalTest, FollowerForwardsToLeaderUnlessDisabled) {
  {
    Network net({1, 2, 3});
    net.Campaign(1);
    ASSERT_TRUE(net.Propose(2, "fwd").ok());
    net.DeliverAll();
    EXPECT_EQ(net.sim(1).state, std::vector<std::string>{"fwd"});
  }
  {
    NetworkOptions o;
    o.tweak = [](Config& c) { c.disable_proposal_forwarding = true; };
    Network net({1, 2, 3}, o);
    net.Campaign(1);
    EXPECT_EQ(net.Propose(2, "fwd").code(), Code::kNotLeader);
  }
}

TEST(ProposalTest, DroppedWithoutLeader) {
  Network net({1, 2, 3});
  EXPECT_EQ(net.Propose(1, "x").code(), Code::kNoLeader);
  net.Crash(2);
  net.Crash(3);
  net.Campaign(1);
  ASSERT_EQ(net.node(1).state(), StateType::kCandidate);
  EXPECT_EQ(net.Propose(1, "x").code(), Code::kNoLeader);
}

TEST(ProposalTest, UncommittedSizeLimitDropsProposals) {
  MemoryStorage ms;
  auto r =
      NewTestRaft(1, {1, 2, 3}, 10, 1, &ms, [](Config& c) { c.max_uncommitted_entries_size = 10; });
  r->BecomeCandidate();
  r->BecomeLeader();
  EXPECT_TRUE(r->Step(PropMsg(1, "12345678")).ok());
  EXPECT_EQ(r->Step(PropMsg(1, "12345678")).code(), Code::kTooManyRequests);
  // Committing (and handing out) entries frees the quota.
  r->ReduceUncommittedSize({testing::Ent(2, 1, "12345678")});
  EXPECT_TRUE(r->Step(PropMsg(1, "12345678")).ok());
}

// In replicate state the leader streams at most max_inflight_msgs MsgApps
// before hearing back.
TEST(FlowControlTest, InflightWindowBoundsUnacknowledgedAppends) {
  MemoryStorage ms;
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms, [](Config& c) { c.max_inflight_msgs = 3; });
  r->BecomeCandidate();
  r->BecomeLeader();
  r->TakeMessages();
  Message ack = Msg(2, 1, raftpb::MSG_APP_RESP, 1);
  ack.set_index(1);
  ASSERT_TRUE(r->Step(ack).ok());  // probe -> replicate
  r->TakeMessages();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(r->Step(PropMsg(1, "x")).ok());
  EXPECT_EQ(OfType(r->TakeMessages(), raftpb::MSG_APP).size(), 3u);
  EXPECT_TRUE(r->tracker().Get(2)->IsPaused());
  // Acknowledging the first frees one slot.
  ack.set_index(2);
  ASSERT_TRUE(r->Step(ack).ok());
  EXPECT_FALSE(OfType(r->TakeMessages(), raftpb::MSG_APP).empty());
}

// A probe that is rejected moves next back using the follower's hint.
TEST(FlowControlTest, RejectionMovesNextBackToTheHint) {
  MemoryStorage ms;
  ASSERT_TRUE(ms.Append(testing::EntsWithTerms({1, 1, 1, 1, 1})).ok());
  auto r = NewTestRaft(1, {1, 2}, 10, 1, &ms);
  r->BecomeFollower(1, kNone);
  r->BecomeCandidate();
  r->BecomeLeader();
  auto apps = OfType(r->TakeMessages(), raftpb::MSG_APP);
  Progress* pr = r->tracker().Get(2);
  EXPECT_EQ(pr->next, 6u);
  Message rej = Msg(2, 1, raftpb::MSG_APP_RESP, 2);
  rej.set_index(5);
  rej.set_reject(true);
  rej.set_reject_hint(2);
  ASSERT_TRUE(r->Step(rej).ok());
  EXPECT_EQ(pr->next, 3u);
  auto resend = OfType(r->TakeMessages(), raftpb::MSG_APP);
  ASSERT_EQ(resend.size(), 1u);
  EXPECT_EQ(resend[0].index(), 2u);
}

// An unreachable follower in replicate state goes back to probing: an
// optimistic MsgApp was probably lost.
TEST(FlowControlTest, UnreachableFollowerIsProbedAgain) {
  Network net({1, 2, 3});
  net.Campaign(1);
  ASSERT_EQ(net.GetProgressState(1, 2), ProgressState::kReplicate);
  net.node(1).ReportUnreachable(2);
  EXPECT_EQ(net.GetProgressState(1, 2), ProgressState::kProbe);
  // The next heartbeat round brings it back to replicate.
  ASSERT_TRUE(net.Propose(1, "x").ok());
  net.DeliverAll();
  EXPECT_EQ(net.GetProgressState(1, 2), ProgressState::kReplicate);
  EXPECT_EQ(net.sim(2).state, std::vector<std::string>{"x"});
}

TEST(FlowControlTest, MaxSizePerMsgSplitsAppends) {
  NetworkOptions o;
  o.tweak = [](Config& c) { c.max_size_per_msg = 100; };
  Network net({1, 2}, o);
  net.Campaign(1);
  int big_apps = 0;
  net.filter = [&](raftpb::Message& m) {
    if (m.type() == raftpb::MSG_APP) {
      uint64_t size = 0;
      for (const auto& e : m.entries()) size += e.ByteSizeLong();
      if (m.entries_size() > 1 && size > 100) ++big_apps;
    }
    return true;
  };
  net.Isolate(2);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(net.Propose(1, std::string(30, 'a' + i)).ok());
  net.Heal();
  for (int i = 0; i < 5; ++i) {
    net.TickAll();
    net.DeliverAll();
  }
  EXPECT_EQ(big_apps, 0);
  EXPECT_EQ(net.sim(2).state.size(), 20u);
}

}  // namespace
}  // namespace etcdpp::raft
