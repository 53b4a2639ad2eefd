#include "snap/snapshotter.h"

#include <gtest/gtest.h>

#include "base/fault_env.h"
#include "wal/wal.h"

namespace etcdpp::snap {
namespace {

raftpb::Snapshot MakeSnapshot(uint64_t index, uint64_t term, std::string data = "state") {
  raftpb::Snapshot s;
  s.set_data(std::move(data));
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  s.mutable_metadata()->mutable_conf_state()->add_voters(1);
  s.mutable_metadata()->mutable_conf_state()->add_voters(2);
  s.mutable_metadata()->mutable_conf_state()->add_learners(3);
  return s;
}

class SnapshotterTest : public ::testing::Test {
 protected:
  static constexpr char kDir[] = "/data/member/snap";
  void SetUp() override { ASSERT_TRUE(env_.CreateDir("/data").ok()); }

  std::string PathOf(uint64_t term, uint64_t index) {
    return std::string(kDir) + "/" + SnapName(term, index);
  }

  FaultEnv env_;
  Snapshotter snapshotter_{&env_, kDir};
};

TEST_F(SnapshotterTest, SaveThenLoadRoundTrips) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(10, 2, "kv-state")).ok());
  auto loaded = snapshotter_.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data(), "kv-state");
  EXPECT_EQ(loaded->metadata().index(), 10u);
  EXPECT_EQ(loaded->metadata().term(), 2u);
  EXPECT_EQ(loaded->metadata().conf_state().voters_size(), 2);
  EXPECT_EQ(loaded->metadata().conf_state().learners(0), 3u);
  EXPECT_TRUE(env_.FileExists(PathOf(2, 10)));
}

TEST_F(SnapshotterTest, NoSnapshotIsNotFound) {
  auto loaded = snapshotter_.Load();  // Directory does not even exist.
  EXPECT_EQ(loaded.status().code(), Code::kNotFound);
  EXPECT_EQ(loaded.status().message(), "snap: no intact snapshot file to load");
  ASSERT_TRUE(snapshotter_.SaveSnap(raftpb::Snapshot()).ok());  // Empty: not saved.
  EXPECT_EQ(snapshotter_.Load().status(), NoSnapshot());
}

TEST_F(SnapshotterTest, LoadReturnsTheNewest) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(5, 1)).ok());
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(20, 3)).ok());
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(12, 2)).ok());
  auto loaded = snapshotter_.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->metadata().index(), 20u);
}

TEST_F(SnapshotterTest, SavedSnapshotSurvivesACrash) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(7, 1)).ok());
  env_.DropUnsyncedData();
  auto loaded = snapshotter_.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->metadata().index(), 7u);
}

TEST_F(SnapshotterTest, CorruptNewestIsSetAsideAndAnOlderOneLoaded) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(5, 1)).ok());
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(9, 1)).ok());
  ASSERT_TRUE(env_.CorruptByte(PathOf(1, 9), 30).ok());
  auto loaded = snapshotter_.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->metadata().index(), 5u);
  EXPECT_FALSE(env_.FileExists(PathOf(1, 9)));
  EXPECT_TRUE(env_.FileExists(PathOf(1, 9) + ".broken"));
  // Truncated files are rejected too; with no intact file left: no snapshot.
  ASSERT_TRUE(env_.Truncate(PathOf(1, 5), 40).ok());
  EXPECT_EQ(snapshotter_.Load().status(), NoSnapshot());
}

TEST_F(SnapshotterTest, FileWithMismatchedNameIsRejected) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(5, 1)).ok());
  ASSERT_TRUE(env_.RenameFile(PathOf(1, 5), PathOf(1, 6)).ok());
  EXPECT_EQ(snapshotter_.Load().status(), NoSnapshot());
}

TEST_F(SnapshotterTest, LoadNewestAvailableNeedsAWalMarker) {
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(5, 1)).ok());
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(9, 1)).ok());
  // The WAL never recorded snapshot 9 (crash between saving it and the marker).
  auto loaded = snapshotter_.LoadNewestAvailable({{0, 0}, {5, 1}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->metadata().index(), 5u);
  EXPECT_EQ(snapshotter_.LoadNewestAvailable({{9, 2}}).status(), NoSnapshot());  // Term differs.
}

TEST_F(SnapshotterTest, WorksWithTheWalMarkers) {
  auto wal = std::move(wal::Wal::Create(&env_, "/data/member/wal", "meta")).value();
  std::vector<raftpb::Entry> entries(10);
  for (uint64_t i = 0; i < 10; ++i) {
    entries[i].set_index(i + 1);
    entries[i].set_term(1);
  }
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(10);
  ASSERT_TRUE(wal->Save(hs, entries).ok());
  // The server's order: snapshot file first, then the WAL marker.
  ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(8, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot({8, 1}).ok());
  wal.reset();
  auto markers = wal::Wal::ValidSnapshotMarkers(&env_, "/data/member/wal");
  ASSERT_TRUE(markers.ok());
  auto loaded = snapshotter_.LoadNewestAvailable(*markers);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->metadata().index(), 8u);
}

TEST_F(SnapshotterTest, PurgeKeepsTheNewest) {
  for (uint64_t i = 1; i <= 6; ++i)
    ASSERT_TRUE(snapshotter_.SaveSnap(MakeSnapshot(i * 10, 1)).ok());
  ASSERT_TRUE(WriteFileAtomically(&env_, PathOf(1, 99) + ".tmp", "leftover").ok());
  ASSERT_TRUE(snapshotter_.Purge(2).ok());
  auto names = snapshotter_.SnapNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{SnapName(1, 60), SnapName(1, 50)}));
  EXPECT_FALSE(env_.FileExists(PathOf(1, 99) + ".tmp"));
}

TEST(SnapFileTest, EveryTruncationAndFlipIsRejected) {
  std::string file = EncodeSnapshotFile(MakeSnapshot(3, 1, "abc"));
  ASSERT_TRUE(DecodeSnapshotFile(file).ok());
  for (size_t n = 0; n < file.size(); ++n) {
    EXPECT_EQ(DecodeSnapshotFile(std::string_view(file).substr(0, n)).status().code(),
              Code::kCorruption);
  }
  for (size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(DecodeSnapshotFile(bad).ok()) << i;
  }
}

TEST(SnapNameTest, FormatsAndParses) {
  EXPECT_EQ(SnapName(2, 0x10), "0000000000000002-0000000000000010.snap");
  auto m = ParseSnapName("0000000000000002-0000000000000010.snap");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, (wal::SnapshotMarker{0x10, 2}));
  EXPECT_FALSE(ParseSnapName("0000000000000002-0000000000000010.snap.broken"));
  EXPECT_FALSE(ParseSnapName("db"));
}

}  // namespace
}  // namespace etcdpp::snap
