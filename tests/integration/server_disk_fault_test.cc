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

#include "integration/member_fault_env.h"
#include "integration/single_member_fixture.h"
#include "server/bootstrap.h"
#include "server/etcd_server.h"
#include "server/kv_applier.h"

namespace etcdpp::server {
namespace {

using etcdpp::testing::MemberFaultEnv;
using Op = MemberFaultEnv::Op;

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
    g_crash_env = &env;
    g_crash_dirs = {layout.wal_dir, layout.snap_dir};
    struct sigaction action {};
    action.sa_handler = CrashOnAbort;
    ::sigaction(SIGABRT, &action, nullptr);
    // The death test reads the child's stderr; spdlog's default is stdout.
    spdlog::set_default_logger(spdlog::stderr_logger_mt("disk-fault-child"));

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
    // Long keys (their tombstones are as large as their records) until
    // the store holds half the map: deleting them all needs more than it.
    // The size counts committed writes only, so each put's commit is
    // forced first (answered puts may wait for --backend-batch-interval).
    auto committed_size = [server] {
      std::promise<Status> committed;
      server->WaitAnsweredWrites([&committed](const Status& st) { committed.set_value(st); });
      committed.get_future().wait();
      return server->store()->DbSizeBytes();
    };
    for (int i = 0; committed_size() < kMap / 2; ++i) {
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

}  // namespace
}  // namespace etcdpp::server
