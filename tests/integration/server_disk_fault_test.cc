// A member whose disk fails: the WAL's fsync, a full disk under the WAL,
// a snapshot file that cannot be written or renamed into place. What users
// rely on:
//   - no write is acknowledged that a crash would lose;
//   - the member stops with an error that names the failed step, instead of
//     serving on over a log it cannot trust;
//   - a restart on a healed disk finds every acknowledged write.
//
// The member runs over MemberFaultEnv (member_fault_env.h) in a death-test
// child. When the server gives up (server/fatal.h aborts), the child's
// SIGABRT handler plays the power cut: it drops everything the FaultEnv
// holds unsynced and copies what is left to the real data dir. The parent
// then restarts the member on the real file system and reads back every
// write the child saw acknowledged (listed in a file, one per line, written
// before the next request is sent).
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/mem_network.h"
#include "integration/member_fault_env.h"
#include "integration/member_requests.h"
#include "integration/single_member_fixture.h"
#include "mvcc/kv_store.h"
#include "server/bootstrap.h"
#include "server/etcd_server.h"
#include "server/kv_applier.h"
#include "server/membership.h"

namespace etcdpp::server {
namespace {

using etcdpp::testing::MemberFaultEnv;
using Op = MemberFaultEnv::Op;
using etcdpp::testing::Get;
using etcdpp::testing::Put;

// The child's env and the directories a crash keeps, for the SIGABRT
// handler (a death-test child runs one member, so one of each).
MemberFaultEnv* g_crash_env = nullptr;
std::vector<std::string> g_crash_dirs;
std::atomic<bool> g_crashing{false};

// Runs on the thread that called abort(). The other threads keep running
// meanwhile, so the FaultEnv's mutex is only ever held briefly by them; a
// second abort (another thread giving up too) waits for the first to end
// the process. Returning lets abort() finish the process.
void CrashOnAbort(int) {
  if (g_crashing.exchange(true)) {
    for (;;) ::pause();
  }
  g_crash_env->CrashAndCopyToRealDisk(g_crash_dirs);
}

// In a death-test child: an abort keeps what `env` synced of the member's
// WAL and snapshot files (CrashOnAbort), and the log goes to stderr, which
// the death test reads (spdlog's default is stdout).
void CrashOnAbortWith(MemberFaultEnv* env, const DataDirLayout& layout, const char* logger) {
  g_crash_env = env;
  g_crash_dirs = {layout.wal_dir, layout.snap_dir};
  struct sigaction action {};
  action.sa_handler = CrashOnAbort;
  ::sigaction(SIGABRT, &action, nullptr);
  spdlog::set_default_logger(spdlog::stderr_logger_mt(logger));
}

bool Contains(const std::string& path, std::string_view part) {
  return path.find(part) != std::string::npos;
}
bool IsSnapFile(const std::string& path) {
  return Contains(path, "/member/snap/") && Contains(path, ".snap");
}

class ServerDiskFaultTest : public testing::SingleMemberTest {
 protected:
  ServerDiskFaultTest() : SingleMemberTest("etcdpp-disk-fault-") {}

  void SetUp() override {
    // fork(), not re-exec: the child must use this test's directory.
    GTEST_FLAG_SET(death_test_style, "fast");
    SingleMemberTest::SetUp();
    std::filesystem::create_directories(dir_);
  }

  std::string AckedPath() const { return (dir_ / "acked.txt").string(); }

  // The death-test child: a member over MemberFaultEnv takes `before`
  // writes, then `inject` sets the fault and `after` more writes are sent.
  // Each acknowledged write is listed in AckedPath() before the next one is
  // sent. Exits 0 (a failed death test) if the member has not given up
  // within a few seconds of the last write: a snapshot is due only once the
  // writes held by the backend batch interval are committed, so a member
  // may give up after the writes have been answered.
  void RunMemberIntoFault(int before, std::function<void(MemberFaultEnv&)> inject, int after) {
    const DataDirLayout layout(options_.data_dir);
    MemberFaultEnv env(layout.store_dir);
    CrashOnAbortWith(&env, layout, "disk-fault-child");

    ServerOptions options = options_;
    options.env = &env;
    auto started = EtcdServer::Start(options);
    if (!started.ok()) {
      std::fprintf(stderr, "start failed: %s\n", started.status().ToString().c_str());
      std::_Exit(2);
    }
    EtcdServer* server = started->get();
    std::ofstream acked(AckedPath());
    for (int i = 0; i < before + after; ++i) {
      if (i == before) inject(env);
      const std::string key = "key" + std::to_string(i);
      const std::string value = "value" + std::to_string(i);
      Status st = Put(server, key, value);
      if (st.ok()) {
        acked << key << ' ' << value << std::endl;
      } else {
        // Refused, not acknowledged: allowed, but the member must still stop.
        std::fprintf(stderr, "put %s refused: %s\n", key.c_str(), st.ToString().c_str());
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::fprintf(stderr, "the member served on over a failed disk\n");
    std::_Exit(0);
  }

  // Parent, after the child died: the member restarts on the real disk
  // (the healed one) and serves every acknowledged write.
  void ExpectAcknowledgedWritesSurvive(size_t at_least) {
    ServerOptions options = options_;
    options.env = nullptr;
    auto started = EtcdServer::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started.value());

    std::ifstream acked(AckedPath());
    std::string key, value;
    size_t checked = 0;
    while (acked >> key >> value) {
      EXPECT_EQ(Get(key), value) << "acknowledged write of " << key << " lost";
      ++checked;
    }
    EXPECT_GE(checked, at_least);
    // And it takes writes again.
    EXPECT_TRUE(Put(server_.get(), "after-restart", "x").ok());
    EXPECT_EQ(Get("after-restart"), "x");
  }
};

TEST_F(ServerDiskFaultTest, WalFsyncFailureStopsTheMemberAndLosesNoAcknowledgedWrite) {
  auto fail_wal_syncs = [](MemberFaultEnv& env) {
    env.SetFaultRule([](Op op, const std::string& path) {
      if (op == Op::kSync && Contains(path, "/member/wal/")) {
        return Status::IOError("fdatasync " + path + ": Input/output error");
      }
      return Status::OK();
    });
  };
  EXPECT_DEATH(RunMemberIntoFault(10, fail_wal_syncs, 10),
               "stopping the process: writing the WAL failed.*Input/output error");
  ExpectAcknowledgedWritesSurvive(10);
}

TEST_F(ServerDiskFaultTest, FullDiskUnderTheWalStopsTheMemberAndLosesNoAcknowledgedWrite) {
  auto fill_disk = [](MemberFaultEnv& env) {
    env.SetFaultRule([](Op op, const std::string& path) {
      if (op == Op::kAppend && Contains(path, "/member/wal/")) {
        return Status::IOError("write " + path + ": No space left on device");
      }
      return Status::OK();
    });
  };
  EXPECT_DEATH(RunMemberIntoFault(10, fill_disk, 10),
               "stopping the process: writing the WAL failed.*No space left on device");
  ExpectAcknowledgedWritesSurvive(10);
}

TEST_F(ServerDiskFaultTest, SnapshotFileThatCannotBeWrittenStopsTheMember) {
  options_.snapshot_count = 10;
  auto fail_snap_writes = [](MemberFaultEnv& env) {
    env.SetFaultRule([](Op op, const std::string& path) {
      if ((op == Op::kAppend || op == Op::kSync) && IsSnapFile(path)) {
        return Status::IOError("write " + path + ": Input/output error");
      }
      return Status::OK();
    });
  };
  // The first snapshot is due after 10 applied entries: within the 30 writes.
  EXPECT_DEATH(RunMemberIntoFault(3, fail_snap_writes, 30),
               "stopping the process: saving a snapshot failed.*Input/output error");
  ExpectAcknowledgedWritesSurvive(3);
}

TEST_F(ServerDiskFaultTest, SnapshotFileThatCannotBeRenamedStopsTheMember) {
  options_.snapshot_count = 10;
  auto fail_snap_renames = [](MemberFaultEnv& env) {
    env.SetFaultRule([](Op op, const std::string& path) {
      if (op == Op::kRename && IsSnapFile(path)) {
        return Status::IOError("rename to " + path + ": Input/output error");
      }
      return Status::OK();
    });
  };
  EXPECT_DEATH(RunMemberIntoFault(3, fail_snap_renames, 30),
               "stopping the process: saving a snapshot failed.*rename");
  ExpectAcknowledgedWritesSurvive(3);
}

// Writes after a snapshot that did land: the restart starts from the
// snapshot and the WAL after it, and the failing step is the WAL's.
TEST_F(ServerDiskFaultTest, WalFailureAfterASnapshotRecoversFromSnapshotAndWal) {
  options_.snapshot_count = 10;
  // Every batch committed at once, so snapshots fall among the first
  // writes, well before the fault, rather than at the interval's commits.
  options_.backend_commit_delay = std::chrono::milliseconds(0);
  options_.snapshot_catchup_entries = 5;
  auto fail_wal_syncs = [](MemberFaultEnv& env) {
    env.SetFaultRule([](Op op, const std::string& path) {
      if (op == Op::kSync && Contains(path, "/member/wal/")) {
        return Status::IOError("fdatasync " + path + ": Input/output error");
      }
      return Status::OK();
    });
  };
  EXPECT_DEATH(RunMemberIntoFault(35, fail_wal_syncs, 5),
               "stopping the process: writing the WAL failed");
  std::vector<std::string> snaps;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "member" / "snap")) {
    if (entry.path().extension() == ".snap") snaps.push_back(entry.path().filename());
  }
  EXPECT_FALSE(snaps.empty()) << "no snapshot was taken before the fault";
  ExpectAcknowledgedWritesSurvive(35);
}

// The store's map filled by one batch (a delete of every key needs the
// pages of the last commit, their copies and the tombstones at once): the
// member stops before it answers the batch, since a restart applies the
// entry again, and the restart maps twice as much and applies it.
TEST_F(ServerDiskFaultTest, FullStoreMapStopsTheMemberUnansweredAndItsRestartApplies) {
  constexpr uint64_t kMap = 4 << 20;
  options_.backend_map_bytes = kMap;
  auto fill_then_delete_all = [this] {
    spdlog::set_default_logger(spdlog::stderr_logger_mt("map-full-child"));
    auto started = EtcdServer::Start(options_);
    if (!started.ok()) {
      std::fprintf(stderr, "start failed: %s\n", started.status().ToString().c_str());
      std::_Exit(2);
    }
    EtcdServer* server = started->get();
    // Long keys until the store holds three quarters of the map: their
    // tombstones and the copies of the `key` pages they land on need more
    // than the rest.
    // The size counts committed writes only, so each put's commit is
    // forced first (answered puts may wait for --backend-batch-interval).
    auto committed_size = [server] {
      std::promise<Status> committed;
      server->WaitAnsweredWrites([&committed](const Status& st) { committed.set_value(st); });
      committed.get_future().wait();
      return server->store()->DbSizeBytes();
    };
    for (int i = 0; committed_size() < kMap / 4 * 3; ++i) {
      Status st = Put(server, "/perf/" + std::to_string(i) + std::string(600, '\0'), "v");
      if (!st.ok()) {
        std::fprintf(stderr, "put refused: %s\n", st.ToString().c_str());
        std::_Exit(3);
      }
    }
    internalpb::InternalRaftRequest request;
    request.mutable_delete_range()->set_key("/perf/");
    request.mutable_delete_range()->set_range_end("/perf0");
    etcdserverpb::DeleteRangeResponse response;
    Status st = Propose(server, std::move(request), &response);
    std::fprintf(stderr, "the delete was answered: %s\n", st.ToString().c_str());
    std::_Exit(0);
  };
  EXPECT_DEATH(fill_then_delete_all(),
               "stopping the process: .* to the store failed: NoSpace: .*the map is full");
  EXPECT_TRUE(std::filesystem::exists(DataDirLayout(options_.data_dir).store_dir + "/map-size"));

  StartServer();
  EXPECT_EQ(server_->store()->MapBytes(), 2 * kMap);
  ASSERT_TRUE(WaitLinearizable().ok());
  auto view = server_->store()->Read();
  ASSERT_TRUE(view.ok());
  auto now = (*view)->Range("/perf/", "/perf0", mvcc::RangeOptions{.count_only = true});
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(now->count, 0) << "the delete was applied at the restart";
  auto before = (*view)->Range("/perf/", "/perf0",
                               mvcc::RangeOptions{.rev = (*view)->Rev() - 1, .count_only = true});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_GT(before->count, 100) << "the keys were there up to the delete's revision";
  EXPECT_TRUE(Put("after-restart", "x").ok());
  EXPECT_EQ(Get("after-restart"), "x");
}

// A disk that fails while a new member creates its WAL: Start refuses with
// the cause, and a Start on the healed disk bootstraps the member.
TEST_F(ServerDiskFaultTest, FailedRenameWhileCreatingTheWalRefusesToStart) {
  const DataDirLayout layout(options_.data_dir);
  MemberFaultEnv env(layout.store_dir);
  env.SetFaultRule([](Op op, const std::string& path) {
    if (op == Op::kRename && Contains(path, "/member/wal")) {
      return Status::IOError("rename to " + path + ": Input/output error");
    }
    return Status::OK();
  });
  ServerOptions options = options_;
  options.env = &env;
  auto refused = EtcdServer::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("Input/output error"), std::string::npos)
      << refused.status().ToString();

  env.SetFaultRule(nullptr);
  auto started = EtcdServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  server_ = std::move(started.value());
  ASSERT_TRUE(Put(server_.get(), "k", "v").ok());
  EXPECT_EQ(Get("k"), "v");
  server_.reset();  // before `env`, which it runs on
}

// A follower that crashes between installing a received store and saving the
// snapshot's file and WAL marker. The store is replaced first (so the member
// acknowledges nothing it could lose), which leaves a restart with a store
// ahead of its own Raft log: a consistent index the WAL has no entries or
// marker for. What users rely on: the member starts, catches up from the
// leader, serves every acknowledged write and takes new ones.
//
// The whole three-member cluster runs in the death-test child on the
// in-memory network; m3's WAL and snapshot files are on a MemberFaultEnv
// whose .snap writes fail once m3 is let back in. The parent restarts all
// three from their data dirs.
class ReceivedSnapshotCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "fast");
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("etcdpp-snapshot-crash-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    std::string initial;
    for (int i = 1; i <= 3; ++i) {
      ServerOptions o;
      o.name = "m" + std::to_string(i);
      o.data_dir = (dir_ / o.name).string();
      o.initial_advertise_peer_urls = {"http://" + o.name + ".memnet:2380"};
      o.listen_peer_urls = o.initial_advertise_peer_urls;
      o.client_urls = {"http://" + o.name + ".memnet:2379"};
      o.heartbeat_interval = std::chrono::milliseconds(50);
      o.election_timeout = std::chrono::milliseconds(500);
      o.initial_cluster_token = "snapshot-crash-test";
      // A snapshot every 10 entries, 5 kept behind it: m3, cut off from the
      // start, can only catch up by a snapshot. Every batch is committed at
      // once, so snapshots follow the writes without waiting for the
      // backend's interval.
      o.snapshot_count = 10;
      o.snapshot_catchup_entries = 5;
      o.backend_commit_delay = std::chrono::milliseconds(0);
      if (!initial.empty()) initial += ",";
      initial += o.name + "=" + o.initial_advertise_peer_urls[0];
      options_.push_back(std::move(o));
    }
    for (ServerOptions& o : options_) o.initial_cluster = initial;
  }
  void TearDown() override {
    servers_.clear();
    std::filesystem::remove_all(dir_);
  }

  std::string AckedPath() const { return (dir_ / "acked.txt").string(); }
  std::string TermPath() const { return (dir_ / "term.txt").string(); }

  // Starts the three members on `net`, m3 on `m3_env` if given.
  void StartAll(const std::shared_ptr<testing::MemNetwork>& net, Env* m3_env) {
    for (size_t i = 0; i < options_.size(); ++i) {
      ServerOptions o = options_[i];
      o.peer_network = net;
      if (i == 2) o.env = m3_env;
      auto started = EtcdServer::Start(o);
      if (!started.ok()) {
        std::fprintf(stderr, "start of %s failed: %s\n", o.name.c_str(),
                     started.status().ToString().c_str());
        std::_Exit(2);
      }
      servers_.push_back(std::move(started.value()));
    }
  }

  // The member among the first two that both agree leads, or null.
  EtcdServer* LeaderOfFirstTwo() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const uint64_t lead = servers_[0]->leader_id();
      if (lead != 0 && lead == servers_[1]->leader_id()) {
        for (int i = 0; i < 2; ++i) {
          if (servers_[i]->member_id() == lead) return servers_[i].get();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return nullptr;
  }

  // The death-test child: m3 is cut off before any election, the leader
  // takes `writes` puts (listed in AckedPath() as they are answered), then
  // m3 comes back with failing .snap writes.
  void RunUntilTheFollowerCrashes(int writes) {
    const DataDirLayout layout(options_[2].data_dir);
    MemberFaultEnv env(layout.store_dir);
    CrashOnAbortWith(&env, layout, "snapshot-crash-child");

    auto net = std::make_shared<testing::MemNetwork>();
    StartAll(net, &env);
    net->Isolate(servers_[2]->member_id());
    EtcdServer* leader = LeaderOfFirstTwo();
    if (leader == nullptr) {
      std::fprintf(stderr, "no leader among m1 and m2\n");
      std::_Exit(3);
    }
    std::ofstream acked(AckedPath());
    for (int i = 0; i < writes; ++i) {
      const std::string key = "key" + std::to_string(i);
      const std::string value = "value" + std::to_string(i);
      Status st = Put(leader, key, value);
      if (!st.ok()) {
        std::fprintf(stderr, "put %s refused: %s\n", key.c_str(), st.ToString().c_str());
        std::_Exit(4);
      }
      acked << key << ' ' << value << std::endl;
    }
    // Every write is an entry of the leader's term.
    std::ofstream(TermPath()) << leader->term() << std::endl;
    env.SetFaultRule([](Op op, const std::string& path) {
      if ((op == Op::kAppend || op == Op::kSync) && IsSnapFile(path)) {
        return Status::IOError("write " + path + ": Input/output error");
      }
      return Status::OK();
    });
    net->HealAll();
    std::this_thread::sleep_for(std::chrono::seconds(20));
    std::fprintf(stderr, "m3 never saved a received snapshot\n");
    std::_Exit(0);
  }

  // m3 restarted alone from the gap gets a snapshot above its Raft log but
  // whose store is older than its own, as from a sender that had applied
  // less than the one before the crash. Played by a stand-in for m1: the
  // older store holds one key and nothing else. m3 must keep its store.
  void ExpectAnOlderStoreIsKeptOut() {
    auto net = std::make_shared<testing::MemNetwork>();
    ServerOptions o = options_[2];
    o.peer_network = net;
    auto started = EtcdServer::Start(o);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    std::unique_ptr<EtcdServer> m3 = std::move(started.value());
    const uint64_t live_index = m3->store()->ConsistentIndex();
    std::string membership;
    {
      std::shared_ptr<mvcc::KvStore> store = m3->store();
      auto view = store->Read();
      ASSERT_TRUE(view.ok());
      auto stored = (*view)->GetMeta(kMembershipMetaKey);
      ASSERT_TRUE(stored.ok() && stored->has_value());
      membership = **stored;
    }
    auto decoded = Membership::Decode(membership);
    ASSERT_TRUE(decoded.ok());
    uint64_t m1_id = 0;
    raftpb::ConfState voters;
    for (const Member& m : decoded->List()) {
      voters.add_voters(m.id);
      if (m.name == "m1") m1_id = m.id;
    }
    ASSERT_NE(m1_id, 0u);

    // The older store: consistent index one below m3's.
    const std::filesystem::path older_dir = dir_ / "older-store";
    const std::string older_file = (dir_ / "older.mdb").string();
    {
      auto older = mvcc::KvStore::Open(older_dir.string());
      ASSERT_TRUE(older.ok()) << older.status().ToString();
      auto txn = (*older)->Write();
      ASSERT_TRUE(txn.ok());
      (*txn)->BeginRevision();
      ASSERT_TRUE((*txn)->Put("only-in-the-older-store", "x", 0).ok());
      (*txn)->EndRevision();
      ASSERT_TRUE((*txn)->SetConsistentIndex(live_index - 1).ok());
      ASSERT_TRUE((*txn)->PutMeta(kMembershipMetaKey, membership).ok());
      ASSERT_TRUE((*txn)->Commit().ok());
      ASSERT_TRUE((*older)->CopyToFile(older_file).ok());
    }

    class Ignore final : public transport::Handler {
      void OnMessage(raftpb::Message) override {}
      void OnSnapshot(raftpb::Message, std::string) override {}
    } ignore;
    const DataDirLayout m1_layout(options_[0].data_dir);
    auto stand_in = net->Create(m1_id, m3->cluster_id(), &ignore, m1_layout.snap_dir);
    ASSERT_TRUE(stand_in->Start(options_[0].initial_advertise_peer_urls).ok());
    stand_in->AddPeer(m3->member_id(), options_[2].initial_advertise_peer_urls);
    raftpb::Message msg;
    msg.set_type(raftpb::MSG_SNAP);
    msg.set_from(m1_id);
    msg.set_to(m3->member_id());
    // Well above m3's term, which its lone campaigns may raise meanwhile
    // (a snapshot from an older term is answered as stale).
    const uint64_t term = m3->term() + 100;
    msg.set_term(term);
    raftpb::SnapshotMetadata* meta = msg.mutable_snapshot()->mutable_metadata();
    meta->set_index(live_index - 2);
    // The snapshot names the entry's real term: the stand-in plays a
    // sender, not a liar.
    uint64_t entry_term = 0;
    std::ifstream(TermPath()) >> entry_term;
    ASSERT_NE(entry_term, 0u);
    meta->set_term(entry_term);
    *meta->mutable_conf_state() = voters;
    msg.mutable_snapshot()->set_data(membership);
    std::promise<bool> sent;
    stand_in->SendSnapshot(msg, older_file, [&sent](bool ok) { sent.set_value(ok); });
    ASSERT_TRUE(sent.get_future().get());

    // Raft took the snapshot (its file is saved) and the store stayed.
    const DataDirLayout m3_layout(options_[2].data_dir);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool saved = false;
    while (!saved && std::chrono::steady_clock::now() < deadline) {
      for (const auto& entry : std::filesystem::directory_iterator(m3_layout.snap_dir)) {
        if (entry.path().extension() == ".snap") saved = true;
      }
      if (!saved) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(saved) << "m3 never took the stand-in's snapshot";
    EXPECT_EQ(m3->store()->ConsistentIndex(), live_index);
    {
      std::shared_ptr<mvcc::KvStore> store = m3->store();
      auto view = store->Read();
      ASSERT_TRUE(view.ok());
      auto older_key = (*view)->Range("only-in-the-older-store", "", mvcc::RangeOptions{});
      ASSERT_TRUE(older_key.ok());
      EXPECT_TRUE(older_key->kvs.empty()) << "m3 swapped in the older store";
      auto kept = (*view)->Range("key0", "", mvcc::RangeOptions{});
      ASSERT_TRUE(kept.ok());
      EXPECT_EQ(kept->kvs.size(), 1u) << "m3 lost its own store";
    }
    stand_in->Stop();
    m3.reset();
  }

  std::filesystem::path dir_;
  std::vector<ServerOptions> options_;
  std::vector<std::unique_ptr<EtcdServer>> servers_;
};

TEST_F(ReceivedSnapshotCrashTest, FollowerCrashedBeforeSavingAnInstalledSnapshotCatchesUp) {
  constexpr int kWrites = 40;
  EXPECT_DEATH(RunUntilTheFollowerCrashes(kWrites),
               "stopping the process: persisting a received snapshot failed.*Input/output error");

  // The crash fell in the gap: m3's store holds the leader's writes, while
  // its snapshot directory has no snapshot file for them.
  const DataDirLayout m3(options_[2].data_dir);
  {
    auto store = mvcc::KvStore::Open(m3.store_dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_GT((*store)->ConsistentIndex(), static_cast<uint64_t>(kWrites));
  }
  for (const auto& entry : std::filesystem::directory_iterator(m3.snap_dir)) {
    EXPECT_NE(entry.path().extension(), ".snap") << entry.path();
  }

  ExpectAnOlderStoreIsKeptOut();

  auto net = std::make_shared<testing::MemNetwork>();
  StartAll(net, nullptr);
  EtcdServer* restarted = servers_[2].get();
  // m3 comes back in the stand-in's term, far above the others': the
  // leader they elect steps down once it hears of it, and a request in
  // that election would fail as any request does in one. Wait it out.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto settled = [this] {
    const uint64_t lead = servers_[0]->leader_id();
    const uint64_t term = servers_[0]->term();
    for (const auto& s : servers_) {
      if (lead == 0 || s->leader_id() != lead || s->term() != term) return false;
    }
    return true;
  };
  while (!settled() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(settled()) << "the three members never agreed on a leader";
  std::ifstream acked(AckedPath());
  std::string key, value;
  int checked = 0;
  while (acked >> key >> value) {
    EXPECT_EQ(Get(restarted, key), value) << "acknowledged write of " << key;
    ++checked;
  }
  EXPECT_EQ(checked, kWrites);
  const Status put = Put(restarted, "after-restart", "x");
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(Get(servers_[0].get(), "after-restart"), "x");
  EXPECT_EQ(Get(servers_[1].get(), "after-restart"), "x");
  EXPECT_EQ(Get(restarted, "after-restart"), "x");
}

}  // namespace
}  // namespace etcdpp::server
