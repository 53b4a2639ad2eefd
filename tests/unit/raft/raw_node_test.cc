// RawNode: the Ready/Advance contract the server relies on, bootstrap,
// restart, and the single-member fast path.
#include "raft/raw_node.h"

#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace etcdpp::raft {
namespace {

Config MakeConfig(uint64_t id, Storage* s) {
  Config c;
  c.id = id;
  c.storage = s;
  c.seed = 1;
  return c;
}

std::unique_ptr<RawNode> NewNode(uint64_t id, MemoryStorage* s) {
  auto r = RawNode::Create(MakeConfig(id, s));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

// The server loop of raw_node.h for a single node; returns applied data.
std::vector<std::string> RunReady(RawNode& n, MemoryStorage& s) {
  std::vector<std::string> applied;
  while (n.HasReady()) {
    Ready rd = n.GetReady();
    if (rd.snapshot.metadata().index() != 0) {
      EXPECT_TRUE(s.ApplySnapshot(rd.snapshot).ok());
    }
    EXPECT_TRUE(s.Append(rd.entries).ok());
    if (rd.hard_state) s.SetHardState(*rd.hard_state);
    for (const auto& e : rd.committed_entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
        raftpb::ConfChange cc;
        EXPECT_TRUE(cc.ParseFromString(e.data()));
        n.ApplyConfChange(cc);
      } else if (!e.data().empty()) {
        applied.push_back(e.data());
      }
    }
    n.Advance(rd);
  }
  return applied;
}

TEST(RawNodeTest, CreateValidatesConfig) {
  MemoryStorage s;
  Config c = MakeConfig(0, &s);
  EXPECT_EQ(RawNode::Create(c).status().code(), Code::kInvalidArgument);
  c = MakeConfig(1, nullptr);
  EXPECT_EQ(RawNode::Create(c).status().code(), Code::kInvalidArgument);
  c = MakeConfig(1, &s);
  c.election_tick = 1;
  EXPECT_EQ(RawNode::Create(c).status().code(), Code::kInvalidArgument);
}

TEST(RawNodeTest, BootstrapEmitsCommittedConfChangesToPersistAndApply) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, "m1"}, Peer{2, "m2"}}).ok());
  ASSERT_TRUE(n->HasReady());
  Ready rd = n->GetReady();
  ASSERT_EQ(rd.entries.size(), 2u);
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.entries[0].term(), 1u);
  EXPECT_EQ(rd.committed_entries[1].type(), raftpb::ENTRY_CONF_CHANGE);
  raftpb::ConfChange cc;
  ASSERT_TRUE(cc.ParseFromString(rd.committed_entries[1].data()));
  EXPECT_EQ(cc.type(), raftpb::CONF_CHANGE_ADD_NODE);
  EXPECT_EQ(cc.node_id(), 2u);
  EXPECT_EQ(cc.context(), "m2");
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_EQ(rd.hard_state->commit(), 2u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(n->conf_state().voters_size(), 2);
  // Bootstrapping twice, or with no peers, is refused.
  EXPECT_EQ(n->Bootstrap({Peer{1, ""}}).code(), Code::kFailedPrecondition);
  MemoryStorage s2;
  EXPECT_EQ(NewNode(1, &s2)->Bootstrap({}).code(), Code::kInvalidArgument);
}

// A single voter commits its own entries right away: the same Ready carries
// an entry in `entries` (persist) and in `committed_entries` (apply).
TEST(RawNodeTest, SingleVoterCommitsInTheSameReady) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
  RunReady(*n, s);
  ASSERT_TRUE(n->Campaign().ok());
  EXPECT_EQ(n->state(), StateType::kLeader);
  RunReady(*n, s);
  ASSERT_TRUE(n->Propose("foo").ok());
  ASSERT_TRUE(n->Propose("bar").ok());
  Ready rd = n->GetReady();
  ASSERT_EQ(rd.entries.size(), 2u);
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.entries[0].data(), "foo");
  EXPECT_EQ(rd.committed_entries[1].data(), "bar");
  EXPECT_TRUE(rd.messages.empty());
  EXPECT_TRUE(rd.must_sync);
  ASSERT_TRUE(s.Append(rd.entries).ok());
  s.SetHardState(*rd.hard_state);
  n->Advance(rd);
  EXPECT_FALSE(n->HasReady());
  EXPECT_EQ(n->applied(), rd.committed_entries.back().index());
}

// A node started after a Campaign-by-ticks: the single voter elects itself
// after an election timeout (the bootstrap conf change must be applied
// first).
TEST(RawNodeTest, SingleVoterElectsItselfByTicks) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
  RunReady(*n, s);
  for (int i = 0; i < 20 && n->state() != StateType::kLeader; ++i) {
    n->Tick();
    RunReady(*n, s);
  }
  EXPECT_EQ(n->state(), StateType::kLeader);
  EXPECT_EQ(n->lead(), 1u);
}

TEST(RawNodeTest, SoftStateAndHardStateAreReportedOnlyWhenChanged) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
  RunReady(*n, s);
  ASSERT_TRUE(n->Campaign().ok());
  Ready rd = n->GetReady();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->state, StateType::kLeader);
  EXPECT_EQ(rd.soft_state->lead, 1u);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 2u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  ASSERT_TRUE(s.Append(rd.entries).ok());
  s.SetHardState(*rd.hard_state);
  n->Advance(rd);
  ASSERT_TRUE(n->Propose("x").ok());
  rd = n->GetReady();
  EXPECT_FALSE(rd.soft_state.has_value());
  ASSERT_TRUE(rd.hard_state.has_value());  // commit moved
  EXPECT_EQ(rd.hard_state->term(), 2u);
  n->Advance(rd);
}

TEST(RawNodeTest, RestartRestoresStateAndDoesNotReapplyEntries) {
  MemoryStorage s;
  {
    auto n = NewNode(1, &s);
    ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
    RunReady(*n, s);
    ASSERT_TRUE(n->Campaign().ok());
    ASSERT_TRUE(n->Propose("a").ok());
    EXPECT_EQ(RunReady(*n, s), std::vector<std::string>{"a"});
  }
  const uint64_t last = s.LastIndex();
  // Restart with applied = last: nothing is handed out again.
  Config c = MakeConfig(1, &s);
  c.applied = last;
  auto r = RawNode::Create(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->term(), 2u);
  EXPECT_EQ(r.value()->committed(), last);
  EXPECT_FALSE(r.value()->HasReady());
  // Restart with applied = the snapshot index (0 here), as servers do: every
  // committed entry after the snapshot comes out again, and re-applying its
  // conf changes rebuilds the membership (the storage only knows the
  // snapshot's ConfState).
  auto r2 = RawNode::Create(MakeConfig(1, &s));
  ASSERT_TRUE(r2.ok());
  auto& n2 = *r2.value();
  EXPECT_EQ(n2.conf_state().voters_size(), 0);
  ASSERT_TRUE(n2.HasReady());
  Ready rd = n2.GetReady();
  EXPECT_EQ(rd.committed_entries.size(), last);
  EXPECT_TRUE(rd.entries.empty());
  EXPECT_FALSE(rd.hard_state.has_value());
  for (const auto& e : rd.committed_entries) {
    if (e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
    raftpb::ConfChange cc;
    ASSERT_TRUE(cc.ParseFromString(e.data()));
    n2.ApplyConfChange(cc);
  }
  n2.Advance(rd);
  EXPECT_EQ(n2.conf_state().voters_size(), 1);
  ASSERT_TRUE(n2.Campaign().ok());
  EXPECT_EQ(n2.state(), StateType::kLeader);
  EXPECT_EQ(n2.term(), 3u);
}

TEST(RawNodeTest, CreateChecksHardStateAgainstTheLog) {
  MemoryStorage s;
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(5);
  snap.mutable_metadata()->set_term(2);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  ASSERT_TRUE(s.Append({testing::Ent(6, 2), testing::Ent(7, 2)}).ok());
  raftpb::HardState hs;
  hs.set_term(2);
  hs.set_commit(3);  // older than the snapshot: the snapshot is committed
  s.SetHardState(hs);
  auto r = RawNode::Create(MakeConfig(1, &s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->committed(), 5u);
  EXPECT_EQ(r.value()->conf_state().voters_size(), 1);
  hs.set_commit(9);  // beyond the log: lost entries
  s.SetHardState(hs);
  EXPECT_EQ(RawNode::Create(MakeConfig(1, &s)).status().code(), Code::kCorruption);
}

TEST(RawNodeTest, StepRejectsLocalMessagesAndResponsesFromStrangers) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}, Peer{2, ""}}).ok());
  raftpb::Message m = testing::Msg(2, 1, raftpb::MSG_HUP);
  EXPECT_EQ(n->Step(m).code(), Code::kInvalidArgument);
  m = testing::Msg(9, 1, raftpb::MSG_APP_RESP, 1);
  EXPECT_EQ(n->Step(m).code(), Code::kNotFound);
  m = testing::Msg(2, 1, raftpb::MSG_APP_RESP, 1);
  EXPECT_TRUE(n->Step(m).ok());
}

TEST(RawNodeTest, StatusReportsProgressOnLeader) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
  RunReady(*n, s);
  ASSERT_TRUE(n->Campaign().ok());
  RunReady(*n, s);
  NodeStatus st = n->GetStatus();
  EXPECT_EQ(st.id, 1u);
  EXPECT_EQ(st.soft_state.state, StateType::kLeader);
  EXPECT_EQ(st.applied, st.hard_state.commit());
  ASSERT_EQ(st.progress.size(), 1u);
  EXPECT_EQ(st.progress[1].match, s.LastIndex());
}

// max_committed_size_per_ready pages the committed entries across Readies;
// nothing is lost or repeated.
TEST(RawNodeTest, CommittedEntriesArePagedAcrossReadies) {
  MemoryStorage s;
  Config c = MakeConfig(1, &s);
  c.max_committed_size_per_ready = 64;
  auto r = RawNode::Create(c);
  ASSERT_TRUE(r.ok());
  auto& n = *r.value();
  ASSERT_TRUE(n.Bootstrap({Peer{1, ""}}).ok());
  RunReady(n, s);
  ASSERT_TRUE(n.Campaign().ok());
  RunReady(n, s);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(n.Propose(std::string(20, 'a' + i)).ok());
  std::vector<std::string> applied;
  int readies = 0;
  while (n.HasReady()) {
    Ready rd = n.GetReady();
    ++readies;
    ASSERT_TRUE(s.Append(rd.entries).ok());
    if (rd.hard_state) s.SetHardState(*rd.hard_state);
    for (const auto& e : rd.committed_entries) applied.push_back(e.data());
    n.Advance(rd);
  }
  EXPECT_GT(readies, 2);
  ASSERT_EQ(applied.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(applied[i], std::string(20, 'a' + i));
}

TEST(RawNodeTest, ConfChangeProposalAndApplyOnSingleNode) {
  MemoryStorage s;
  auto n = NewNode(1, &s);
  ASSERT_TRUE(n->Bootstrap({Peer{1, ""}}).ok());
  RunReady(*n, s);
  ASSERT_TRUE(n->Campaign().ok());
  RunReady(*n, s);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
  cc.set_node_id(2);
  ASSERT_TRUE(n->ProposeConfChange(cc).ok());
  RunReady(*n, s);
  EXPECT_EQ(n->conf_state().learners_size(), 1);
  EXPECT_EQ(n->conf_state().voters_size(), 1);
}

}  // namespace
}  // namespace etcdpp::raft
