// A deterministic simulated network of RawNodes for tests.
//
// Every node runs the full server loop of raw_node.h on a MemoryStorage
// (persist Ready.entries/hard_state/snapshot, queue messages, apply
// committed entries including conf changes, Advance). Messages travel
// through one in-flight queue; the test decides when time passes (Tick),
// which message is delivered next (FIFO, or a seeded random pick when
// reordering), which links are cut, and which messages are dropped (seeded).
// Everything runs on one thread from one seed, so every run repeats.
//
// After every step CheckInvariants() verifies the Raft safety properties:
//   - Election Safety: at most one leader per term (over the whole run);
//   - Log Matching: two logs with an entry of the same index and term are
//     identical up to it;
//   - State Machine Safety: a committed index never changes content, and
//     every node applies the same entry at a given index;
//   - a node's term and commit index never decrease.
// A violation is reported as a gtest failure with context.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/raw_node.h"
#include "raft/storage.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft::testing {

// The application state machine: the list of non-empty normal entries
// applied, in order. Its snapshot is that list, length-prefixed.
inline std::string EncodeState(const std::vector<std::string>& state) {
  std::string out;
  for (const auto& s : state) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
  }
  return out;
}

inline std::vector<std::string> DecodeState(const std::string& data) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t colon = data.find(':', pos);
    size_t n = std::stoul(data.substr(pos, colon - pos));
    out.push_back(data.substr(colon + 1, n));
    pos = colon + 1 + n;
  }
  return out;
}

struct SimNode {
  uint64_t id = 0;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  // Application state (see EncodeState) and the index it reflects.
  std::vector<std::string> state;
  uint64_t applied_index = 0;
  raftpb::ConfState conf_state;
  // Every committed entry this node applied, by index (for safety checks).
  std::map<uint64_t, raftpb::Entry> applied_entries;
  std::vector<ReadState> read_states;
  // Last seen term and commit, for monotonicity checks.
  uint64_t last_term = 0;
  uint64_t last_commit = 0;
};

struct NetworkOptions {
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = false;
  bool check_quorum = false;
  uint64_t seed = 1;
  // Probability that a sent message is lost.
  double drop_rate = 0.0;
  // Deliver messages in a random order rather than FIFO.
  bool reorder = false;
  // Start members with Bootstrap() (entries 1..n are the membership) rather
  // than empty logs that know the membership (etcd raft's test style).
  bool bootstrap = false;
  // Last hook to adjust each node's Config.
  std::function<void(Config&)> tweak;
  // Preloads a node's storage before the node is created.
  std::function<void(uint64_t id, MemoryStorage&)> init_storage;
};

class Network {
 public:
  Network(std::vector<uint64_t> voters, NetworkOptions opts = {},
          std::vector<uint64_t> learners = {})
      : opts_(std::move(opts)),
        rng_(opts_.seed),
        initial_voters_(voters),
        initial_learners_(learners) {
    for (uint64_t id : voters) AddMember(id, voters, learners, false);
    for (uint64_t id : learners) AddMember(id, voters, learners, true);
    ProcessReadies();
  }

  // A node that is not (yet) part of any configuration: empty storage, no
  // membership. It learns everything from the leader once added.
  SimNode& AddEmptyNode(uint64_t id) {
    auto& n = NewNode(id);
    return n;
  }

  // Recreates node id from its storage, like a process restart: unstable
  // entries and in-memory state are lost. Like etcd's server, it restarts
  // from the snapshot (Config::applied = snapshot index) and re-applies the
  // committed entries after it, which rebuilds the membership.
  void Restart(uint64_t id) {
    SimNode& n = nodes_.at(id);
    auto snap = n.storage->Snapshot();
    ASSERT_TRUE(snap.ok());
    Config c = MakeConfig(id, n.storage.get());
    c.applied = snap->metadata().index();
    auto r = RawNode::Create(c);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    n.node = std::move(r).value();
    n.state = DecodeState(snap->data());
    n.applied_index = snap->metadata().index();
    n.conf_state = snap->metadata().conf_state();
    if (!opts_.bootstrap && snap->metadata().index() == 0) {
      // The initial membership of etcd-style test clusters is not in the log.
      n.conf_state = ApplyInitialMembership(*n.node);
    }
    ProcessReady(id);
  }

  RawNode& node(uint64_t id) { return *nodes_.at(id).node; }
  Raft& raft(uint64_t id) { return nodes_.at(id).node->raft(); }
  SimNode& sim(uint64_t id) { return nodes_.at(id); }
  std::vector<uint64_t> ids() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }
  std::mt19937_64& rng() { return rng_; }
  // The leader's view of follower id.
  ProgressState GetProgressState(uint64_t leader, uint64_t id) {
    return raft(leader).tracker().Get(id)->state;
  }

  // --- Faults -------------------------------------------------------------

  // Drops all traffic between a and b (both directions).
  void Cut(uint64_t a, uint64_t b) {
    blocked_.insert({a, b});
    blocked_.insert({b, a});
  }
  void Isolate(uint64_t id) {
    for (const auto& [other, n] : nodes_) {
      if (other != id) Cut(id, other);
    }
  }
  // Splits the nodes into groups that can only talk among themselves.
  void Partition(const std::vector<std::vector<uint64_t>>& groups) {
    Heal();
    for (size_t i = 0; i < groups.size(); ++i) {
      for (size_t j = 0; j < groups.size(); ++j) {
        if (i == j) continue;
        for (uint64_t a : groups[i]) {
          for (uint64_t b : groups[j]) blocked_.insert({a, b});
        }
      }
    }
  }
  void Heal() { blocked_.clear(); }
  // Drops every message of type t (e.g. to stop appends) until allowed.
  void DropType(raftpb::MessageType t) { dropped_types_.insert(t); }
  void AllowType(raftpb::MessageType t) { dropped_types_.erase(t); }
  void set_drop_rate(double r) { opts_.drop_rate = r; }
  void set_reorder(bool r) { opts_.reorder = r; }
  // Crashed nodes neither receive, send nor tick (until Recover).
  void Crash(uint64_t id) { down_.insert(id); }
  void Recover(uint64_t id) { down_.erase(id); }
  bool IsDown(uint64_t id) const { return down_.count(id) != 0; }
  bool IsRemoved(uint64_t id) const { return removed_.count(id) != 0; }

  // --- Driving ------------------------------------------------------------

  void Tick(uint64_t id) {
    if (IsDown(id)) return;
    node(id).Tick();
    ProcessReady(id);
  }
  void TickAll() {
    for (uint64_t id : ids()) Tick(id);
  }
  // Ticks node id until it becomes leader (or max ticks pass), delivering
  // messages after each tick.
  void Campaign(uint64_t id) {
    ASSERT_TRUE(node(id).Campaign().ok());
    ProcessReady(id);
    DeliverAll();
  }
  Status Propose(uint64_t id, const std::string& data) {
    Status s = node(id).Propose(data);
    ProcessReady(id);
    return s;
  }
  Status ProposeConfChange(uint64_t id, raftpb::ConfChangeType type, uint64_t node_id) {
    raftpb::ConfChange cc;
    cc.set_type(type);
    cc.set_node_id(node_id);
    Status s = node(id).ProposeConfChange(cc);
    ProcessReady(id);
    return s;
  }
  void ReadIndex(uint64_t id, const std::string& ctx) {
    node(id).ReadIndex(ctx);
    ProcessReady(id);
  }
  void TransferLeader(uint64_t id, uint64_t transferee) {
    node(id).TransferLeader(transferee);
    ProcessReady(id);
  }

  size_t InFlight() const { return queue_.size(); }
  const std::deque<raftpb::Message>& in_flight() const { return queue_; }

  // Delivers one in-flight message (FIFO or random). False if none.
  bool DeliverOne() {
    if (queue_.empty()) return false;
    size_t i = 0;
    if (opts_.reorder) i = rng_() % queue_.size();
    raftpb::Message m = std::move(queue_[i]);
    queue_.erase(queue_.begin() + static_cast<long>(i));
    Deliver(m);
    return true;
  }
  // Delivers until no message is in flight (bounded).
  void DeliverAll(int max_steps = 100000) {
    for (int i = 0; i < max_steps && DeliverOne(); ++i) {
    }
  }
  // Drops everything in flight.
  void ClearInFlight() { queue_.clear(); }

  // Processes Ready of every node until none has one.
  void ProcessReadies() {
    bool any = true;
    while (any) {
      any = false;
      for (uint64_t id : ids()) {
        if (!IsDown(id) && node(id).HasReady()) {
          ProcessReady(id);
          any = true;
        }
      }
    }
  }

  // Leader of the highest term among live nodes, or 0.
  uint64_t Leader() const {
    uint64_t best = 0, best_term = 0;
    for (const auto& [id, n] : nodes_) {
      if (IsDown(id)) continue;
      if (n.node->state() == StateType::kLeader && n.node->term() >= best_term) {
        best = id;
        best_term = n.node->term();
      }
    }
    return best;
  }

  // Ticks every live node and delivers messages until a leader exists and
  // all live nodes agree on it, or max_ticks pass. Returns the leader or 0.
  uint64_t WaitForStableLeader(int max_ticks = 1000) {
    for (int t = 0; t < max_ticks; ++t) {
      DeliverAll();
      uint64_t l = Leader();
      if (l != 0) {
        bool agreed = true;
        // Every live, reachable member (in the leader's configuration).
        for (const auto& [id, pr] : raft(l).tracker().progress()) {
          if (nodes_.count(id) == 0 || IsDown(id) || !Reachable(l, id)) continue;
          if (node(id).lead() != l) agreed = false;
        }
        if (agreed) return l;
      }
      TickAll();
    }
    return 0;
  }

  // Snapshots node id's state machine at its applied index and compacts its
  // log up to there (as a server does periodically).
  void CompactLog(uint64_t id) {
    SimNode& n = nodes_.at(id);
    auto snap = n.storage->CreateSnapshot(n.applied_index, &n.conf_state, EncodeState(n.state));
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    ASSERT_TRUE(n.storage->Compact(n.applied_index).ok());
  }

  // One line per node, for failure messages.
  std::string Dump() {
    std::string out;
    for (auto& [id, n] : nodes_) {
      const Raft& r = n.node->raft();
      out += "node " + std::to_string(id) + (IsDown(id) ? " (down)" : "") + ": " +
             std::string(StateTypeName(r.state())) + " term " + std::to_string(r.term()) +
             " lead " + std::to_string(r.lead()) + " vote " + std::to_string(r.vote()) +
             " commit " + std::to_string(r.raft_log().committed()) + " applied " +
             std::to_string(n.applied_index) + " first " +
             std::to_string(r.raft_log().FirstIndex()) + " last " +
             std::to_string(r.raft_log().LastIndex()) + " voters " +
             std::to_string(n.conf_state.voters_size()) + " learners " +
             std::to_string(n.conf_state.learners_size()) + " elapsed " +
             std::to_string(r.election_elapsed()) + "\n";
      if (r.state() == StateType::kLeader) {
        for (const auto& [pid, pr] : r.tracker().progress()) {
          out += "    progress " + std::to_string(pid) + ": match " + std::to_string(pr.match) +
                 " next " + std::to_string(pr.next) + " " +
                 std::string(ProgressStateName(pr.state)) + (pr.probe_sent ? " probe_sent" : "") +
                 (pr.recent_active ? " active" : "") + " inflight " +
                 std::to_string(pr.inflights.Count()) + "\n";
        }
      }
    }
    out += "in flight: " + std::to_string(queue_.size()) + "\n";
    return out;
  }

  // --- Invariants -----------------------------------------------------------

  void CheckInvariants() {
    for (auto& [id, n] : nodes_) {
      const Raft& r = n.node->raft();
      // Election Safety.
      if (r.state() == StateType::kLeader) {
        auto [it, inserted] = leaders_.emplace(r.term(), id);
        ASSERT_EQ(it->second, id) << "two leaders in term " << r.term();
      }
      // Monotonic term and commit (restarts restore both from storage).
      ASSERT_GE(r.term(), n.last_term) << "term decreased on " << id;
      ASSERT_GE(r.raft_log().committed(), n.last_commit) << "commit decreased on " << id;
      n.last_term = r.term();
      n.last_commit = r.raft_log().committed();
      // Committed entries never change.
      const RaftLog& log = r.raft_log();
      const uint64_t first = log.FirstIndex();
      for (uint64_t i = first; i <= log.committed(); ++i) {
        auto ents = log.Slice(i, i + 1, kNoLimit);
        if (!ents.ok()) break;  // compacted concurrently
        const raftpb::Entry& e = (*ents)[0];
        auto [it, inserted] = committed_.emplace(i, e);
        ASSERT_TRUE(SameEntry(it->second, e))
            << "committed entry " << i << " differs on node " << id << ": term "
            << it->second.term() << " vs " << e.term();
      }
    }
    // Log Matching: pairwise, from the highest index with equal terms down.
    for (auto a = nodes_.begin(); a != nodes_.end(); ++a) {
      for (auto b = std::next(a); b != nodes_.end(); ++b) {
        CheckLogMatching(a->second, b->second);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }

  // Whether all live nodes applied the same entries up to the same index.
  void ExpectConverged() {
    uint64_t applied = 0;
    const SimNode* ref = nullptr;
    for (const auto& [id, n] : nodes_) {
      if (IsDown(id)) continue;
      if (ref == nullptr) {
        ref = &n;
        applied = n.applied_index;
      }
      EXPECT_EQ(n.applied_index, applied) << "node " << id;
      EXPECT_EQ(n.state, ref->state) << "node " << id << " vs " << ref->id;
    }
  }

  // If set, sees (and may rewrite) every sent message; it is delivered only
  // if filter returns true.
  std::function<bool(raftpb::Message&)> filter;

 private:
  Config MakeConfig(uint64_t id, Storage* storage) {
    Config c;
    c.id = id;
    c.election_tick = opts_.election_tick;
    c.heartbeat_tick = opts_.heartbeat_tick;
    c.storage = storage;
    c.pre_vote = opts_.pre_vote;
    c.check_quorum = opts_.check_quorum;
    c.max_size_per_msg = 4096;
    c.max_inflight_msgs = 16;
    c.seed = opts_.seed;
    if (opts_.tweak) opts_.tweak(c);
    return c;
  }

  SimNode& NewNode(uint64_t id) {
    SimNode n;
    n.id = id;
    n.storage = std::make_unique<MemoryStorage>();
    if (opts_.init_storage) opts_.init_storage(id, *n.storage);
    auto r = RawNode::Create(MakeConfig(id, n.storage.get()));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    n.node = std::move(r).value();
    auto init = n.storage->InitialState();
    n.conf_state = init->conf_state;
    auto [it, inserted] = nodes_.emplace(id, std::move(n));
    return it->second;
  }

  void AddMember(uint64_t id, const std::vector<uint64_t>& voters,
                 const std::vector<uint64_t>& learners, bool is_learner) {
    (void)is_learner;
    SimNode& n = NewNode(id);
    if (opts_.bootstrap) {
      std::vector<Peer> peers;
      for (uint64_t v : voters) peers.push_back(Peer{v, {}});
      ASSERT_TRUE(n.node->Bootstrap(peers).ok());
      for (uint64_t l : learners) {
        raftpb::ConfChange cc;
        cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
        cc.set_node_id(l);
        n.node->ApplyConfChange(cc);
      }
    } else {
      // Like etcd raft's tests: the membership is known up front.
      n.conf_state = ApplyInitialMembership(*n.node);
    }
  }

  raftpb::ConfState ApplyInitialMembership(RawNode& node) {
    raftpb::ConfState cs;
    for (uint64_t v : initial_voters_) {
      raftpb::ConfChange cc;
      cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
      cc.set_node_id(v);
      cs = node.ApplyConfChange(cc);
    }
    for (uint64_t l : initial_learners_) {
      raftpb::ConfChange cc;
      cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
      cc.set_node_id(l);
      cs = node.ApplyConfChange(cc);
    }
    return cs;
  }

  bool Reachable(uint64_t from, uint64_t to) const {
    return !IsDown(from) && !IsDown(to) && blocked_.count({from, to}) == 0;
  }

  static bool SameEntry(const raftpb::Entry& a, const raftpb::Entry& b) {
    return a.term() == b.term() && a.index() == b.index() && a.type() == b.type() &&
           a.data() == b.data();
  }

  void CheckLogMatching(const SimNode& a, const SimNode& b) {
    const RaftLog& la = a.node->raft().raft_log();
    const RaftLog& lb = b.node->raft().raft_log();
    const uint64_t lo = std::max(la.FirstIndex(), lb.FirstIndex());
    const uint64_t hi = std::min(la.LastIndex(), lb.LastIndex());
    if (lo > hi) return;
    auto ea = la.Slice(lo, hi + 1, kNoLimit);
    auto eb = lb.Slice(lo, hi + 1, kNoLimit);
    if (!ea.ok() || !eb.ok()) return;
    // Find the highest index where terms agree; everything below must match.
    for (size_t k = ea->size(); k-- > 0;) {
      if ((*ea)[k].term() != (*eb)[k].term()) continue;
      for (size_t j = 0; j <= k; ++j) {
        ASSERT_TRUE(SameEntry((*ea)[j], (*eb)[j]))
            << "log matching violated between " << a.id << " and " << b.id << " at index "
            << (*ea)[j].index();
      }
      return;
    }
  }

  void Send(uint64_t from, raftpb::Message m) {
    // Like etcd's transport, peers ignore members that were removed.
    const bool lost = !Reachable(from, m.to()) || removed_.count(from) != 0 ||
                      dropped_types_.count(m.type()) != 0 || (filter && !filter(m)) ||
                      (opts_.drop_rate > 0 && Uniform() < opts_.drop_rate);
    if (lost) {
      // The transport notices a failed snapshot and tells Raft, like etcd's.
      if (m.type() == raftpb::MSG_SNAP && !IsDown(from)) {
        node(from).ReportSnapshot(m.to(), true);
      }
      return;
    }
    queue_.push_back(std::move(m));
  }

  void Deliver(const raftpb::Message& m) {
    if (nodes_.count(m.to()) == 0 || !Reachable(m.from(), m.to())) {
      // Lost in flight (receiver down or link cut). The transport notices a
      // failed snapshot stream and tells Raft.
      if (m.type() == raftpb::MSG_SNAP && nodes_.count(m.from()) && !IsDown(m.from())) {
        node(m.from()).ReportSnapshot(m.to(), true);
        ProcessReady(m.from());
      }
      return;
    }
    (void)node(m.to()).Step(m);
    ProcessReady(m.to());
    if (m.type() == raftpb::MSG_SNAP && nodes_.count(m.from()) && !IsDown(m.from())) {
      node(m.from()).ReportSnapshot(m.to(), false);
      ProcessReady(m.from());
    }
    CheckInvariants();
  }

  double Uniform() { return static_cast<double>(rng_() >> 11) / static_cast<double>(1ULL << 53); }

 public:
  // Runs the server loop of raw_node.h once for node id.
  void ProcessReady(uint64_t id) {
    SimNode& n = nodes_.at(id);
    while (n.node->HasReady()) {
      Ready rd = n.node->GetReady();
      // 1. Persist.
      if (rd.snapshot.metadata().index() != 0) {
        ASSERT_TRUE(n.storage->ApplySnapshot(rd.snapshot).ok());
      }
      ASSERT_TRUE(n.storage->Append(rd.entries).ok());
      if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
      // 2. Send.
      for (auto& m : rd.messages) Send(id, std::move(m));
      // 3. Apply.
      if (rd.snapshot.metadata().index() != 0) {
        n.state = DecodeState(rd.snapshot.data());
        n.applied_index = rd.snapshot.metadata().index();
        n.conf_state = rd.snapshot.metadata().conf_state();
      }
      for (const auto& e : rd.committed_entries) {
        ASSERT_EQ(e.index(), n.applied_index + 1) << "node " << id << " applies out of order";
        // State Machine Safety: every node applies the same entry at an index.
        auto [it, inserted] = committed_.emplace(e.index(), e);
        ASSERT_TRUE(SameEntry(it->second, e))
            << "node " << id << " applies a different entry at index " << e.index();
        n.applied_index = e.index();
        n.applied_entries[e.index()] = e;
        if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
          raftpb::ConfChange cc;
          ASSERT_TRUE(cc.ParseFromString(e.data()));
          n.conf_state = n.node->ApplyConfChange(cc);
          if (cc.type() == raftpb::CONF_CHANGE_REMOVE_NODE) removed_.insert(cc.node_id());
        } else if (!e.data().empty()) {
          n.state.push_back(e.data());
        }
      }
      for (auto& rs : rd.read_states) n.read_states.push_back(rs);
      // 4. Advance.
      n.node->Advance(rd);
    }
  }

 private:
  NetworkOptions opts_;
  std::mt19937_64 rng_;
  std::vector<uint64_t> initial_voters_;
  std::vector<uint64_t> initial_learners_;
  std::map<uint64_t, SimNode> nodes_;
  std::deque<raftpb::Message> queue_;
  std::set<std::pair<uint64_t, uint64_t>> blocked_;
  std::set<raftpb::MessageType> dropped_types_;
  std::set<uint64_t> down_;
  // Members whose removal some node applied.
  std::set<uint64_t> removed_;
  // Election Safety record: term -> leader.
  std::map<uint64_t, uint64_t> leaders_;
  // Committed content by index, as first observed.
  std::map<uint64_t, raftpb::Entry> committed_;
};

}  // namespace etcdpp::raft::testing
