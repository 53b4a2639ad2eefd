// In-process clusters of EtcdServers talking over the real peer transport on
// loopback: replication, leader failure and restart, membership changes while
// writes go on, and a lagging member brought up by a snapshot.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "base/clock.h"
#include "integration/jumping_clock.h"
#include "integration/member_requests.h"
#include "mvcc/kv_store.h"
#include "server/etcd_server.h"
#include "server/kv_applier.h"
#include "support/free_port.h"

namespace etcdpp::server {
namespace {

using namespace std::chrono_literals;
using etcdpp::testing::Get;
using etcdpp::testing::Put;

using etcdpp::testing::FreePort;

// Polls `cond` until it holds or `timeout` passes.
template <typename Cond>
bool Eventually(Cond cond, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

class ClusterTest : public ::testing::Test {
 protected:
  struct Node {
    ServerOptions options;
    std::unique_ptr<EtcdServer> server;
  };

  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("etcdpp-cluster-test-" + std::to_string(rd()) + std::to_string(rd()));
  }
  void TearDown() override {
    for (Node& n : nodes_) n.server.reset();
    std::filesystem::remove_all(dir_);
  }

  ServerOptions MakeOptions(const std::string& name) {
    ServerOptions o;
    o.name = name;
    o.data_dir = (dir_ / name).string();
    const std::string peer = "http://127.0.0.1:" + std::to_string(FreePort());
    o.initial_advertise_peer_urls = {peer};
    o.listen_peer_urls = {peer};
    o.client_urls = {"http://127.0.0.1:" + std::to_string(FreePort())};
    o.heartbeat_interval = 50ms;
    o.election_timeout = 500ms;
    o.initial_cluster_token = "cluster-test";
    o.clock = &clock_;
    return o;
  }

  // Starts `n` founding members.
  // `tune`, if given, changes each member's options before it starts.
  void StartCluster(int n, uint64_t snapshot_count = 100000,
                    const std::function<void(ServerOptions&)>& tune = {}) {
    std::string initial;
    for (int i = 0; i < n; ++i) {
      Node node;
      node.options = MakeOptions("m" + std::to_string(i + 1));
      node.options.snapshot_count = snapshot_count;
      node.options.snapshot_catchup_entries = 5;
      if (tune) tune(node.options);
      if (!initial.empty()) initial += ",";
      initial += node.options.name + "=" + node.options.initial_advertise_peer_urls[0];
      nodes_.push_back(std::move(node));
    }
    for (Node& node : nodes_) {
      node.options.initial_cluster = initial;
      StartNode(node);
    }
  }

  void StartNode(Node& node) {
    auto s = EtcdServer::Start(node.options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    node.server = std::move(s.value());
  }

  // Index into nodes_ of the member every running member agrees leads.
  int WaitLeader() {
    int leader = -1;
    bool agreed = Eventually([&] {
      uint64_t id = 0;
      for (Node& n : nodes_) {
        if (!n.server || n.server->removed()) continue;
        uint64_t l = n.server->leader_id();
        if (l == 0 || (id != 0 && l != id)) return false;
        id = l;
      }
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].server && nodes_[i].server->member_id() == id) leader = static_cast<int>(i);
      }
      return leader >= 0;
    });
    EXPECT_TRUE(agreed) << "no agreed leader";
    return leader;
  }

  template <typename Fn>
  static Status Call(Fn fn) {
    std::promise<Status> done;
    fn([&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
  }

  // Puts keys w0, w1, ... on the members in turn until stopped; counts acks.
  class Writer {
   public:
    explicit Writer(ClusterTest* t) : t_(t) {
      thread_ = std::thread([this] {
        for (int i = 0; !stop_; ++i) {
          EtcdServer* s = nullptr;
          {
            std::lock_guard<std::mutex> lock(t_->nodes_mu_);
            const int index = static_cast<int>(i % t_->nodes_.size());
            Node& n = t_->nodes_[index];
            if (index == excluded || !n.server || n.server->removed()) continue;
            s = n.server.get();
            if (Put(s, "w" + std::to_string(acked_.load()), "v").ok()) ++acked_;
          }
          std::this_thread::sleep_for(2ms);
        }
      });
    }
    ~Writer() { Stop(); }
    int Stop() {
      stop_ = true;
      if (thread_.joinable()) thread_.join();
      return acked_;
    }

    // A member about to be removed: its proposals would only time out.
    std::atomic<int> excluded{-1};

   private:
    ClusterTest* t_;
    std::atomic<bool> stop_{false};
    std::atomic<int> acked_{0};
    std::thread thread_;
  };

  std::filesystem::path dir_;
  etcdpp::testing::JumpingClock clock_;  // every member's; outlives them
  std::mutex nodes_mu_;                  // the Writer's access to nodes_ vs. stops/restarts
  std::vector<Node> nodes_;
};

TEST_F(ClusterTest, ReplicatesAndSurvivesLeaderRestart) {
  StartCluster(3);
  int leader = WaitLeader();
  int follower = (leader + 1) % 3;
  // A follower's proposal is forwarded to the leader.
  ASSERT_TRUE(Put(nodes_[follower].server.get(), "k1", "v1").ok());
  for (Node& n : nodes_) EXPECT_EQ(Get(n.server.get(), "k1"), "v1");

  // The leader goes down: the others elect a new one and go on.
  {
    std::lock_guard<std::mutex> lock(nodes_mu_);
    nodes_[leader].server.reset();
  }
  int new_leader = WaitLeader();
  ASSERT_NE(new_leader, leader);
  ASSERT_TRUE(Put(nodes_[new_leader].server.get(), "k2", "v2").ok());
  EXPECT_EQ(Get(nodes_[(leader + 1) % 3].server.get(), "k2"), "v2");

  // It comes back and catches up from the new leader's log.
  StartNode(nodes_[leader]);
  EXPECT_EQ(Get(nodes_[leader].server.get(), "k1"), "v1");
  EXPECT_EQ(Get(nodes_[leader].server.get(), "k2"), "v2");
}

TEST_F(ClusterTest, MembersPublishTheirAttributes) {
  StartCluster(3);
  WaitLeader();
  for (Node& n : nodes_) {
    EXPECT_TRUE(Eventually([&] {
      std::vector<Member> members = n.server->Members();
      if (members.size() != 3) return false;
      for (const Member& m : members) {
        if (m.name.empty() || m.client_urls.empty()) return false;
      }
      return true;
    })) << n.options.name;
  }
  std::vector<Member> members = nodes_[0].server->Members();
  for (const Node& n : nodes_) {
    auto it = std::find_if(members.begin(), members.end(),
                           [&](const Member& m) { return m.name == n.options.name; });
    ASSERT_NE(it, members.end());
    EXPECT_EQ(it->client_urls, n.options.client_urls);
    EXPECT_EQ(it->peer_urls, n.options.initial_advertise_peer_urls);
    EXPECT_FALSE(it->is_learner);
  }
}

TEST_F(ClusterTest, AddAndRemoveMembersWhileWriting) {
  StartCluster(3);
  int leader = WaitLeader();
  EtcdServer* s = nodes_[leader].server.get();
  Writer writer(this);

  // etcd refuses changes until every voter has been connected for 5 s (once
  // they have all started, i.e. published their names).
  ASSERT_TRUE(Eventually([&] {
    for (const Member& m : s->Members()) {
      if (m.name.empty()) return false;
    }
    return true;
  }));
  Member early;
  early.peer_urls = {"http://127.0.0.1:" + std::to_string(FreePort())};
  Status st = Call([&](ProposeCallback cb) { s->AddMember(&early, cb); });
  EXPECT_EQ(st.code(), Code::kUnhealthy) << st.ToString();
  // Every voter has been connected for the whole health interval once the
  // clock is past it.
  clock_.Jump(nodes_[leader].options.peer_health_interval + 500ms);

  // Errors of etcd 3.4.
  Member dup;
  dup.peer_urls = nodes_[0].options.initial_advertise_peer_urls;
  EXPECT_EQ(Call([&](ProposeCallback cb) { s->AddMember(&dup, cb); }).code(), Code::kPeerURLExist);
  EXPECT_EQ(Call([&](ProposeCallback cb) { s->RemoveMember(12345, cb); }).code(),
            Code::kMemberNotFound);
  EXPECT_EQ(
      Call([&](ProposeCallback cb) { s->PromoteMember(nodes_[1].server->member_id(), cb); }).code(),
      Code::kMemberNotLearner);

  // A learner joins, catches up and is promoted.
  Node joiner;
  joiner.options = MakeOptions("m4");
  Member added;
  added.peer_urls = joiner.options.initial_advertise_peer_urls;
  added.is_learner = true;
  ASSERT_TRUE(Call([&](ProposeCallback cb) { s->AddMember(&added, cb); }).ok());
  EXPECT_EQ(s->Members().size(), 4u);
  joiner.options.initial_cluster_state = "existing";
  joiner.options.initial_cluster =
      nodes_[0].options.initial_cluster + ",m4=" + joiner.options.initial_advertise_peer_urls[0];
  StartNode(joiner);
  ASSERT_NE(joiner.server, nullptr);
  EXPECT_EQ(joiner.server->member_id(), added.id);
  ASSERT_TRUE(Put(s, "before-promote", "x").ok());
  EXPECT_TRUE(Eventually([&] { return Get(joiner.server.get(), "before-promote") == "x"; }));
  // Asked on a follower: forwarded to the leader, which knows the progress.
  EtcdServer* follower = nodes_[(leader + 1) % 3].server.get();
  EXPECT_TRUE(Eventually([&] {
    return Call([&](ProposeCallback cb) { follower->PromoteMember(added.id, cb); }).ok();
  }));
  {
    std::lock_guard<std::mutex> lock(nodes_mu_);
    nodes_.push_back(std::move(joiner));
  }
  for (const Member& m : s->Members()) EXPECT_FALSE(m.is_learner) << m.name;

  // A follower is removed: it notices and stops taking part.
  leader = WaitLeader();
  s = nodes_[leader].server.get();
  int victim = (leader + 1) % 3;
  const uint64_t victim_id = nodes_[victim].server->member_id();
  writer.excluded = victim;
  ASSERT_TRUE(Call([&](ProposeCallback cb) { s->RemoveMember(victim_id, cb); }).ok());
  EXPECT_TRUE(Eventually([&] { return nodes_[victim].server->removed(); }));
  EXPECT_EQ(s->Members().size(), 3u);
  EXPECT_EQ(Call([&](ProposeCallback cb) { s->RemoveMember(victim_id, cb); }).code(),
            Code::kMemberNotFound);

  int acked = writer.Stop();
  EXPECT_GT(acked, 0);
  ASSERT_TRUE(Put(s, "after", "y").ok());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (static_cast<int>(i) == victim) continue;
    EXPECT_EQ(Get(nodes_[i].server.get(), "w" + std::to_string(acked - 1)), "v")
        << nodes_[i].options.name;
    EXPECT_EQ(Get(nodes_[i].server.get(), "after"), "y") << nodes_[i].options.name;
    EXPECT_EQ(nodes_[i].server->Members().size(), 3u);
  }
}

TEST_F(ClusterTest, LaggingMemberIsCaughtUpBySnapshot) {
  StartCluster(3, /*snapshot_count=*/20);
  int leader = WaitLeader();
  int lagging = (leader + 1) % 3;
  ASSERT_TRUE(Put(nodes_[leader].server.get(), "first", "1").ok());
  EXPECT_EQ(Get(nodes_[lagging].server.get(), "first"), "1");
  nodes_[lagging].server.reset();
  // Far more entries than the leader keeps behind its snapshots.
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(Put(nodes_[leader].server.get(), "k" + std::to_string(i), std::to_string(i)).ok());
  }
  StartNode(nodes_[lagging]);
  EtcdServer* s = nodes_[lagging].server.get();
  EXPECT_TRUE(Eventually([&] { return Get(s, "k149") == "149"; }));
  EXPECT_EQ(Get(s, "first"), "1");
  EXPECT_EQ(Get(s, "k0"), "0");
  // The store was replaced and still serves writes after the install.
  ASSERT_TRUE(Put(s, "after-install", "z").ok());
  EXPECT_EQ(Get(nodes_[leader].server.get(), "after-install"), "z");
  EXPECT_EQ(s->Members().size(), 3u);
  // And it survives a restart from the installed snapshot.
  nodes_[lagging].server.reset();
  StartNode(nodes_[lagging]);
  EXPECT_EQ(Get(nodes_[lagging].server.get(), "k149"), "149");
  EXPECT_EQ(Get(nodes_[lagging].server.get(), "after-install"), "z");
}

// The same with the catch-up entries bounded by bytes instead of count:
// large entries cut the leader's log behind its snapshot, and the lagging
// member gets the store.
TEST_F(ClusterTest, LaggingMemberBehindTheCatchUpBytesIsCaughtUpBySnapshot) {
  StartCluster(3, /*snapshot_count=*/100000, [](ServerOptions& o) {
    o.snapshot_catchup_entries = 100000;
    o.snapshot_bytes = 32 << 10;
    o.snapshot_catchup_bytes = 8 << 10;
  });
  int leader = WaitLeader();
  int lagging = (leader + 1) % 3;
  ASSERT_TRUE(Put(nodes_[leader].server.get(), "first", "1").ok());
  EXPECT_EQ(Get(nodes_[lagging].server.get(), "first"), "1");
  nodes_[lagging].server.reset();
  // The lagging member never snapshots by itself: a snapshot file in its
  // data dir afterwards is the leader's store, installed.
  nodes_[lagging].options.snapshot_bytes = uint64_t{1} << 40;
  const std::filesystem::path snap_dir =
      std::filesystem::path(nodes_[lagging].options.data_dir) / "member" / "snap";
  auto snap_files = [&] {
    int n = 0;
    for (const auto& f : std::filesystem::directory_iterator(snap_dir)) {
      if (f.path().extension() == ".snap") ++n;
    }
    return n;
  };
  ASSERT_EQ(snap_files(), 0);
  const std::string value(2048, 'v');
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(Put(nodes_[leader].server.get(), "k" + std::to_string(i), value).ok());
  }
  StartNode(nodes_[lagging]);
  EtcdServer* s = nodes_[lagging].server.get();
  EXPECT_TRUE(Eventually([&] { return Get(s, "k99") == value; }));
  // The file is saved by the Raft loop, possibly just after the store
  // swapped in has answered.
  EXPECT_TRUE(Eventually([&] { return snap_files() > 0; }))
      << "caught up from the log, not from the leader's store";
  EXPECT_EQ(Get(s, "first"), "1");
  EXPECT_EQ(Get(s, "k0"), value);
  ASSERT_TRUE(Put(s, "after-install", "z").ok());
  EXPECT_EQ(Get(nodes_[leader].server.get(), "after-install"), "z");
}

TEST_F(ClusterTest, MoveLeader) {
  StartCluster(3);
  int leader = WaitLeader();
  int target = (leader + 2) % 3;
  int other = (leader + 1) % 3;
  EXPECT_EQ(Call([&](ProposeCallback cb) {
              nodes_[other].server->MoveLeader(nodes_[target].server->member_id(), 2s, cb);
            }).code(),
            Code::kNotLeader);
  EXPECT_EQ(
      Call([&](ProposeCallback cb) { nodes_[leader].server->MoveLeader(777, 2s, cb); }).code(),
      Code::kBadLeaderTransferee);
  Status st = Call([&](ProposeCallback cb) {
    nodes_[leader].server->MoveLeader(nodes_[target].server->member_id(), 5s, cb);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(WaitLeader(), target);
  // A graceful stop of the leader hands leadership over first.
  EXPECT_TRUE(nodes_[target].server->TransferLeadershipForStop(3s).ok());
  EXPECT_NE(nodes_[target].server->leader_id(), nodes_[target].server->member_id());
  ASSERT_TRUE(Put(nodes_[target].server.get(), "k", "v").ok());
}

// Deadlines follow the injected clock, not the wall: with the second member
// of a two-member cluster never started there is no leader, so a write and
// a linearizable read can only time out, and they do the moment the fake
// clock passes the request timeout, without waiting out five real seconds.
TEST(InjectedClockTest, RequestsTimeOutOnTheInjectedClock) {
  std::random_device rd;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("etcdpp-clock-test-" + std::to_string(rd()) + std::to_string(rd()));
  FakeClock clock;  // outlives the server below
  ServerOptions options;
  options.name = "m1";
  options.data_dir = dir.string();
  options.heartbeat_interval = std::chrono::milliseconds(10);
  options.election_timeout = std::chrono::milliseconds(100);
  options.clock = &clock;
  const std::string self = "http://127.0.0.1:" + std::to_string(FreePort());
  const std::string absent = "http://127.0.0.1:" + std::to_string(FreePort());
  options.initial_cluster = "m1=" + self + ",m2=" + absent;
  options.initial_advertise_peer_urls = {self};
  auto started = EtcdServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<EtcdServer> server = std::move(started.value());

  std::promise<Status> write_done;
  etcdserverpb::PutResponse response;
  internalpb::InternalRaftRequest request;
  request.mutable_put()->set_key("k");
  server->Propose(std::move(request), &response,
                  [&](const Status& st) { write_done.set_value(st); });
  std::promise<Status> read_done;
  server->WaitLinearizable([&](const Status& st) { read_done.set_value(st); });
  std::future<Status> write = write_done.get_future();
  std::future<Status> read = read_done.get_future();
  EXPECT_EQ(write.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  // Fake time moves in one-second steps; after each the test waits (on the
  // futures, in real time) for the raft loop to notice. Both requests must
  // fail once fake time has passed their deadline, and not before.
  const Clock::TimePoint fake_start = clock.Now();
  const auto real_start = std::chrono::steady_clock::now();
  const auto timeout = RequestTimeout(options);
  // Fake time at which each request was first seen finished.
  std::optional<Clock::TimePoint::duration> write_seen;
  std::optional<Clock::TimePoint::duration> read_seen;
  for (int step = 0; step < 30 && !(write_seen && read_seen); ++step) {
    if (!write_seen &&
        write.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) {
      write_seen = clock.Now() - fake_start;
    }
    if (!read_seen && read.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) {
      read_seen = clock.Now() - fake_start;
    }
    clock.Advance(std::chrono::seconds(1));
  }
  ASSERT_TRUE(write_seen && read_seen);
  EXPECT_GE(*write_seen, timeout);
  EXPECT_GE(*read_seen, timeout);
  EXPECT_EQ(write.get().code(), Code::kTimeout);
  EXPECT_EQ(read.get().code(), Code::kTimeout);
  // Far less than the five seconds and more a real clock would have taken.
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, timeout);
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace etcdpp::server
