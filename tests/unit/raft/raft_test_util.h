// Helpers for tests that drive the Raft state machine directly and inspect
// the individual messages it emits (etcd raft's newTestRaft style).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "raft/raft.h"
#include "raft/storage.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::raft::testing {

// A Raft node with the given voters (learners optional), on `storage`.
inline std::unique_ptr<Raft> NewTestRaft(uint64_t id, const std::vector<uint64_t>& peers,
                                         int election, int heartbeat, MemoryStorage* storage,
                                         const std::function<void(Config&)>& tweak = {},
                                         const std::vector<uint64_t>& learners = {}) {
  Config c;
  c.id = id;
  c.election_tick = election;
  c.heartbeat_tick = heartbeat;
  c.storage = storage;
  c.max_size_per_msg = kNoLimit;
  c.max_inflight_msgs = 256;
  c.seed = 42;
  if (tweak) tweak(c);
  auto r = Raft::Create(c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::unique_ptr<Raft> raft = std::move(r).value();
  for (uint64_t p : peers) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    cc.set_node_id(p);
    raft->ApplyConfChange(cc);
  }
  for (uint64_t l : learners) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
    cc.set_node_id(l);
    raft->ApplyConfChange(cc);
  }
  return raft;
}

inline raftpb::Message Msg(uint64_t from, uint64_t to, raftpb::MessageType type,
                           uint64_t term = 0) {
  raftpb::Message m;
  m.set_from(from);
  m.set_to(to);
  m.set_type(type);
  m.set_term(term);
  return m;
}

inline raftpb::Entry Ent(uint64_t index, uint64_t term, const std::string& data = "") {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

// Entries with the given terms at indexes 1, 2, ...
inline std::vector<raftpb::Entry> EntsWithTerms(const std::vector<uint64_t>& terms) {
  std::vector<raftpb::Entry> out;
  for (size_t i = 0; i < terms.size(); ++i) out.push_back(Ent(i + 1, terms[i]));
  return out;
}

inline raftpb::Message PropMsg(uint64_t id, const std::string& data) {
  raftpb::Message m = Msg(id, id, raftpb::MSG_PROP);
  m.add_entries()->set_data(data);
  return m;
}

// Messages of one type from an outbox.
inline std::vector<raftpb::Message> OfType(const std::vector<raftpb::Message>& msgs,
                                           raftpb::MessageType t) {
  std::vector<raftpb::Message> out;
  for (const auto& m : msgs) {
    if (m.type() == t) out.push_back(m);
  }
  return out;
}

// Persists the unstable log of r into storage and marks it stable (what a
// server does with Ready.entries).
inline void PersistAll(Raft& r, MemoryStorage& storage) {
  auto ents = r.raft_log().UnstableEntries();
  ASSERT_TRUE(storage.Append(ents).ok());
  if (!ents.empty()) r.raft_log().StableTo(ents.back().index(), ents.back().term());
}

}  // namespace etcdpp::raft::testing
