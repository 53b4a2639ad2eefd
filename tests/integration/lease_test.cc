// The Lease service over gRPC: in-process EtcdServers with a ClientServer
// each, driven by the generated client stubs as etcd's clients drive etcd.
// One member for the API, three for the leader-only parts (expiry decided by
// the leader, keep-alive and time-to-live forwarded by followers).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "api/client_server.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "integration/jumping_clock.h"
#include "lease/lessor.h"
#include "server/etcd_server.h"
#include "support/free_port.h"

namespace etcdpp::api {
namespace {

using namespace std::chrono_literals;
using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

using etcdpp::testing::FreePort;

template <typename Cond>
bool Eventually(Cond cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// One member: its EtcdServer, its ClientServer and stubs to it.
struct Member {
  server::ServerOptions options;
  std::string client_address;
  std::unique_ptr<server::EtcdServer> server;
  std::unique_ptr<ClientServer> clients;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;

  void Start() {
    auto s = server::EtcdServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(s.value());
    auto c = ClientServer::Start(server.get(), {client_address});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    clients = std::move(c.value());
    auto channel = grpc::CreateChannel(client_address, grpc::InsecureChannelCredentials());
    kv = etcdserverpb::KV::NewStub(channel);
    lease = etcdserverpb::Lease::NewStub(channel);
  }
  void Stop() {
    // As the etcdpp binary does: the member first, so waiting calls end.
    if (server) server->Stop();
    if (clients) clients->Shutdown(0);
    clients.reset();
    server.reset();
  }
};

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("etcdpp-lease-test-" + std::to_string(rd()) + std::to_string(rd()));
  }
  void TearDown() override {
    for (Member& m : members_) m.Stop();
    std::filesystem::remove_all(dir_);
  }

  // n members; heartbeat 20 ms, election 200 ms: etcd's minimum TTL is 1 s.
  void StartCluster(int n) {
    members_.resize(n);
    std::string initial;
    for (int i = 0; i < n; ++i) {
      server::ServerOptions& o = members_[i].options;
      o.name = "m" + std::to_string(i);
      o.data_dir = (dir_ / o.name).string();
      // Off by default; on here, where TimeToLive lists keys and headers
      // name revisions right after answered writes (docs/durability.md).
      o.answer_before_commit = true;
      const std::string peer = "http://127.0.0.1:" + std::to_string(FreePort());
      o.initial_advertise_peer_urls = {peer};
      o.listen_peer_urls = {peer};
      members_[i].client_address = "127.0.0.1:" + std::to_string(FreePort());
      o.client_urls = {"http://" + members_[i].client_address};
      o.heartbeat_interval = 20ms;
      o.election_timeout = 200ms;
      o.initial_cluster_token = "lease-test";
      o.clock = &clock_;
      initial += (i ? "," : "") + o.name + "=" + peer;
    }
    for (Member& m : members_) m.options.initial_cluster = initial;
    for (Member& m : members_) ASSERT_NO_FATAL_FAILURE(m.Start());
    ASSERT_TRUE(Eventually(
        [&] {
          const uint64_t leader = members_[0].server->leader_id();
          if (leader == 0) return false;
          for (Member& m : members_) {
            if (m.server->leader_id() != leader) return false;
          }
          return Leader().server->lessor()->IsPrimary();
        },
        10s));
  }

  Member& Leader() {
    const uint64_t leader = members_[0].server->leader_id();
    for (Member& m : members_) {
      if (m.server->member_id() == leader) return m;
    }
    return members_[0];
  }
  Member& Follower() {
    for (Member& m : members_) {
      if (m.server->member_id() != m.server->leader_id()) return m;
    }
    return members_[0];
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + 10s);
    return ctx;
  }

  static int64_t Grant(Member& m, int64_t ttl, int64_t id = 0) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    req.set_id(id);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status st = m.lease->LeaseGrant(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.id();
  }
  static grpc::Status Put(Member& m, const std::string& key, int64_t lease,
                          etcdserverpb::PutResponse* resp = nullptr) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value("v");
    req.set_lease(lease);
    etcdserverpb::PutResponse local;
    return m.kv->Put(Ctx().get(), req, resp ? resp : &local);
  }
  // The key's lease, or -1 if absent (linearizable read).
  static int64_t KeyLease(Member& m, const std::string& key) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    etcdserverpb::RangeResponse resp;
    grpc::Status st = m.kv->Range(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.kvs_size() == 0 ? -1 : resp.kvs(0).lease();
  }
  static etcdserverpb::LeaseTimeToLiveResponse TimeToLive(Member& m, int64_t id) {
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(true);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    grpc::Status st = m.lease->LeaseTimeToLive(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::filesystem::path dir_;
  etcdpp::testing::JumpingClock clock_;  // every member's; outlives them
  std::vector<Member> members_;
};

TEST_F(LeaseTest, GrantAttachTimeToLiveAndRevokeInOneRevision) {
  StartCluster(1);
  Member& m = members_[0];
  const int64_t id = Grant(m, 60);
  EXPECT_GT(id, 0);
  ASSERT_TRUE(Put(m, "a", id).ok());
  ASSERT_TRUE(Put(m, "b", id).ok());
  etcdserverpb::PutResponse plain;
  ASSERT_TRUE(Put(m, "c", 0, &plain).ok());

  auto ttl = TimeToLive(m, id);
  EXPECT_EQ(ttl.id(), id);
  EXPECT_EQ(ttl.grantedttl(), 60);
  EXPECT_GT(ttl.ttl(), 55);
  EXPECT_LE(ttl.ttl(), 60);
  ASSERT_EQ(ttl.keys_size(), 2);
  EXPECT_EQ(ttl.keys(0), "a");
  EXPECT_EQ(ttl.keys(1), "b");
  EXPECT_EQ(ttl.header().revision(), plain.header().revision());

  etcdserverpb::LeaseLeasesResponse leases;
  ASSERT_TRUE(m.lease->LeaseLeases(Ctx().get(), {}, &leases).ok());
  ASSERT_EQ(leases.leases_size(), 1);
  EXPECT_EQ(leases.leases(0).id(), id);

  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(id);
  etcdserverpb::LeaseRevokeResponse revoked;
  ASSERT_TRUE(m.lease->LeaseRevoke(Ctx().get(), revoke, &revoked).ok());
  // Both keys went in one revision.
  EXPECT_EQ(revoked.header().revision(), plain.header().revision() + 1);
  EXPECT_EQ(KeyLease(m, "a"), -1);
  EXPECT_EQ(KeyLease(m, "b"), -1);
  EXPECT_EQ(KeyLease(m, "c"), 0);
  // etcd answers an unknown lease's time-to-live with TTL -1, not an error.
  EXPECT_EQ(TimeToLive(m, id).ttl(), -1);
  ASSERT_TRUE(m.lease->LeaseLeases(Ctx().get(), {}, &leases).ok());
  EXPECT_EQ(leases.leases_size(), 0);
}

TEST_F(LeaseTest, ErrorsMatchEtcd) {
  StartCluster(1);
  Member& m = members_[0];
  const int64_t id = Grant(m, 60, 0x1234);
  EXPECT_EQ(id, 0x1234);

  etcdserverpb::LeaseGrantRequest dup;
  dup.set_id(0x1234);
  dup.set_ttl(60);
  etcdserverpb::LeaseGrantResponse granted;
  grpc::Status st = m.lease->LeaseGrant(Ctx().get(), dup, &granted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "etcdserver: lease already exists");

  etcdserverpb::LeaseGrantRequest huge;
  huge.set_ttl(9'000'000'001);
  st = m.lease->LeaseGrant(Ctx().get(), huge, &granted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(st.error_message(), "etcdserver: too large lease TTL");

  // A short TTL is raised to the minimum (1.5 election timeouts, in seconds).
  etcdserverpb::LeaseGrantRequest tiny;
  tiny.set_ttl(0);
  ASSERT_TRUE(m.lease->LeaseGrant(Ctx().get(), tiny, &granted).ok());
  EXPECT_EQ(granted.ttl(), 1);

  st = Put(m, "k", 0x999);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "etcdserver: requested lease not found");

  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(0x999);
  etcdserverpb::LeaseRevokeResponse revoked;
  st = m.lease->LeaseRevoke(Ctx().get(), revoke, &revoked);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "etcdserver: requested lease not found");
}

TEST_F(LeaseTest, KeysDisappearAfterTheTtlUnlessKeptAlive) {
  StartCluster(1);
  Member& m = members_[0];
  const int64_t kept = Grant(m, 1);
  const int64_t dropped = Grant(m, 1);
  ASSERT_TRUE(Put(m, "kept", kept).ok());
  ASSERT_TRUE(Put(m, "dropped", dropped).ok());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto stream = m.lease->LeaseKeepAlive(&ctx);
  // Keep `kept` alive for 3 TTLs of the member's clock, one request at a
  // time, moving the clock a quarter TTL between requests instead of
  // sleeping (a member of one cannot lose its leadership to a jump). Then
  // keep it alive until the expiry loop (one pass per check interval of
  // real time) has revoked `dropped`.
  const auto until = clock_.Now() + 3s;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  bool dropped_gone = false;
  while (!dropped_gone && std::chrono::steady_clock::now() < give_up) {
    LeaseKeepAliveRequest req;
    req.set_id(kept);
    ASSERT_TRUE(stream->Write(req));
    LeaseKeepAliveResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.id(), kept);
    EXPECT_EQ(resp.ttl(), 1);
    EXPECT_GT(resp.header().revision(), 0);
    if (clock_.Now() < until) {
      clock_.Jump(250ms);
    } else {
      dropped_gone = KeyLease(m, "dropped") == -1;
    }
  }
  EXPECT_TRUE(dropped_gone);
  EXPECT_EQ(KeyLease(m, "kept"), kept);
  EXPECT_EQ(TimeToLive(m, dropped).ttl(), -1);

  // Keep-alive of a lease that is gone answers TTL 0.
  LeaseKeepAliveRequest gone;
  gone.set_id(dropped);
  ASSERT_TRUE(stream->Write(gone));
  LeaseKeepAliveResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.id(), dropped);
  EXPECT_EQ(resp.ttl(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Without keep-alives `kept` expires too, once its TTL has passed.
  clock_.Jump(1s);
  EXPECT_TRUE(Eventually([&] { return KeyLease(m, "kept") == -1; }, 5s));
}

TEST_F(LeaseTest, LeasesSurviveARestart) {
  StartCluster(1);
  const int64_t id = Grant(members_[0], 30);
  ASSERT_TRUE(Put(members_[0], "k", id).ok());
  members_[0].Stop();
  ASSERT_NO_FATAL_FAILURE(members_[0].Start());
  ASSERT_TRUE(Eventually([&] { return members_[0].server->lessor()->IsPrimary(); }, 10s));
  auto ttl = TimeToLive(members_[0], id);
  EXPECT_EQ(ttl.grantedttl(), 30);
  ASSERT_EQ(ttl.keys_size(), 1);
  EXPECT_EQ(ttl.keys(0), "k");
  EXPECT_EQ(KeyLease(members_[0], "k"), id);
}

TEST_F(LeaseTest, FollowersForwardKeepAliveAndTimeToLiveAndNeverExpire) {
  StartCluster(3);
  Member& follower = Follower();
  EXPECT_FALSE(follower.server->lessor()->IsPrimary());
  const int64_t kept = Grant(follower, 1);
  const int64_t dropped = Grant(follower, 1);
  ASSERT_TRUE(Put(follower, "kept", kept).ok());
  ASSERT_TRUE(Put(follower, "dropped", dropped).ok());

  auto ttl = TimeToLive(follower, kept);
  EXPECT_EQ(ttl.grantedttl(), 1);
  ASSERT_EQ(ttl.keys_size(), 1);

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto stream = follower.lease->LeaseKeepAlive(&ctx);
  // Keep `kept` alive for 3 TTLs of the members' clock, jumping it a tenth
  // of the TTL after each renewal instead of sleeping: Raft ticks on real
  // time (one tick per wake-up however far the clock jumped), so a jump
  // moves lease deadlines and never starts an election. A renewal's round
  // trip (follower, leader and back) may take most of the TTL that is left
  // on a loaded machine. Then keep it alive until the leader's expiry loop
  // (one pass per check interval of real time) has revoked `dropped`.
  const auto until = clock_.Now() + 3s;
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  bool dropped_gone = false;
  while (!dropped_gone && std::chrono::steady_clock::now() < give_up) {
    LeaseKeepAliveRequest req;
    req.set_id(kept);
    ASSERT_TRUE(stream->Write(req));
    LeaseKeepAliveResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.ttl(), 1);
    if (clock_.Now() < until) {
      clock_.Jump(100ms);
    } else {
      dropped_gone = KeyLease(follower, "dropped") == -1;
    }
  }
  EXPECT_TRUE(dropped_gone);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // The leader revoked `dropped` through Raft: gone on every member.
  for (Member& m : members_) {
    EXPECT_EQ(KeyLease(m, "kept"), kept);
    EXPECT_EQ(KeyLease(m, "dropped"), -1);
    EXPECT_FALSE(m.server->lessor()->Exists(dropped));
  }
  EXPECT_EQ(TimeToLive(follower, dropped).ttl(), -1);
}

TEST_F(LeaseTest, NewLeaderExtendsLeasesAndExpiresThoseNotKeptAlive) {
  StartCluster(3);
  Member& old_leader = Leader();
  const int64_t id = Grant(old_leader, 2);
  ASSERT_TRUE(Put(old_leader, "k", id).ok());
  clock_.Jump(1500ms);  // 0.5 s left under the old leader
  old_leader.Stop();
  Member* survivor = nullptr;
  for (Member& m : members_) {
    if (m.server) survivor = &m;
  }
  ASSERT_NE(survivor, nullptr);
  ASSERT_TRUE(Eventually(
      [&] {
        const uint64_t leader = survivor->server->leader_id();
        for (Member& m : members_) {
          if (m.server && m.server->member_id() == leader) return m.server->lessor()->IsPrimary();
        }
        return false;
      },
      10s));
  // The new leader gave the lease its full TTL again (plus an election
  // timeout): it was not cut short by the failover...
  EXPECT_EQ(KeyLease(*survivor, "k"), id);
  EXPECT_GE(TimeToLive(*survivor, id).ttl(), 1);
  // ...and, not kept alive, it still expires once that has passed.
  clock_.Jump(2500ms);
  EXPECT_TRUE(Eventually([&] { return KeyLease(*survivor, "k") == -1; }, 6s));
}

TEST_F(LeaseTest, LeaseKeptAliveThroughAFailoverDoesNotExpire) {
  StartCluster(3);
  Member* old_leader = &Leader();
  Member* client_member = &Follower();
  const int64_t kept = Grant(*client_member, 1);
  const int64_t dropped = Grant(*client_member, 1);
  ASSERT_TRUE(Put(*client_member, "kept", kept).ok());
  ASSERT_TRUE(Put(*client_member, "dropped", dropped).ok());

  // A client keeping `kept` alive through the follower, reopening its stream
  // after errors as clientv3 does, while the leader is stopped.
  bool stopped_leader = false;
  int renewals_after_failover = 0;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    auto stream = client_member->lease->LeaseKeepAlive(&ctx);
    while (std::chrono::steady_clock::now() < until) {
      LeaseKeepAliveRequest req;
      req.set_id(kept);
      LeaseKeepAliveResponse resp;
      if (!stream->Write(req) || !stream->Read(&resp)) break;
      EXPECT_EQ(resp.ttl(), 1) << "the kept lease expired";
      if (stopped_leader) ++renewals_after_failover;
      if (!stopped_leader && std::chrono::steady_clock::now() + 3500ms > until) {
        old_leader->Stop();
        stopped_leader = true;
      }
      std::this_thread::sleep_for(200ms);
    }
    ctx.TryCancel();
    (void)stream->Finish();
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(stopped_leader);
  EXPECT_GT(renewals_after_failover, 0);
  EXPECT_EQ(KeyLease(*client_member, "kept"), kept);
  // The lease nobody kept alive expired under the new leader.
  EXPECT_TRUE(Eventually([&] { return KeyLease(*client_member, "dropped") == -1; }, 6s));
}

}  // namespace
}  // namespace etcdpp::api
