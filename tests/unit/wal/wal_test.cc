#include "wal/wal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>

#include "base/fault_env.h"

namespace etcdpp::wal {
namespace {

raftpb::Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data.empty() ? "entry-" + std::to_string(index) : std::move(data));
  return e;
}

std::vector<raftpb::Entry> MakeEntries(uint64_t first, uint64_t last, uint64_t term,
                                       size_t data_size = 0) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = first; i <= last; ++i) {
    out.push_back(MakeEntry(i, term, data_size ? std::string(data_size, 'a' + i % 26) : ""));
  }
  return out;
}

raftpb::HardState MakeHardState(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

// Indexes and terms, for readable comparisons.
std::vector<std::pair<uint64_t, uint64_t>> IndexTerms(const std::vector<raftpb::Entry>& es) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& e : es) out.emplace_back(e.index(), e.term());
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> Range(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t i = first; i <= last; ++i) out.emplace_back(i, term);
  return out;
}

// Offsets of the frames in a segment's contents, up to the first zero header.
std::vector<uint64_t> FrameOffsets(const std::string& data) {
  std::vector<uint64_t> offsets;
  for (uint64_t pos = 0; pos < data.size();) {
    auto r = DecodeRecord(std::string_view(data).substr(pos));
    if (!r.ok()) break;
    offsets.push_back(pos);
    pos += r->frame_size;
  }
  return offsets;
}

class WalTest : public ::testing::Test {
 protected:
  static constexpr char kDir[] = "/data/member/wal";
  static constexpr char kFirstSegment[] = "/data/member/wal/0000000000000000-0000000000000000.wal";

  WalTest() { options_.segment_size = 64 * 1024; }

  std::unique_ptr<Wal> CreateWal(FaultEnv* env = nullptr) {
    auto wal = Wal::Create(env ? env : &env_, kDir, "node-1/cluster-7", options_);
    EXPECT_TRUE(wal.ok()) << wal.status().ToString();
    return wal.ok() ? std::move(wal).value() : nullptr;
  }

  // Opens at `start` and reads; leaves the WAL in wal_ for further writes.
  Result<ReadResult> Reopen(SnapshotMarker start = {}, FaultEnv* env = nullptr) {
    wal_.reset();
    auto wal = Wal::Open(env ? env : &env_, kDir, start, options_);
    if (!wal.ok()) return wal.status();
    wal_ = std::move(wal).value();
    return wal_->ReadAll();
  }

  // Zeroes `path` from `offset` to its end, keeping its size.
  void ZeroFrom(FaultEnv* env, const std::string& path, uint64_t offset) {
    std::string data = *env->ReadFile(path);
    for (uint64_t i = offset; i < data.size(); ++i) {
      if (data[i] != 0) {
        ASSERT_TRUE(env->CorruptByte(path, i, static_cast<uint8_t>(data[i])).ok());
      }
    }
  }

  FaultEnv env_;
  Options options_;
  std::unique_ptr<Wal> wal_;
};

TEST_F(WalTest, NewWalReadsBackMetadataAndNothingElse) {
  CreateWal();
  EXPECT_TRUE(Wal::Exists(&env_, kDir));
  EXPECT_FALSE(Wal::Exists(&env_, "/elsewhere"));
  auto r = Reopen();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metadata, "node-1/cluster-7");
  EXPECT_TRUE(r->entries.empty());
  EXPECT_EQ(r->hard_state.term(), 0u);
}

TEST_F(WalTest, CreateRefusesAnExistingWal) {
  CreateWal();
  EXPECT_EQ(Wal::Create(&env_, kDir, "x", options_).status().code(), Code::kFailedPrecondition);
}

TEST_F(WalTest, CreatedWalSurvivesACrashRightAfterCreate) {
  CreateWal();
  env_.DropUnsyncedData();
  EXPECT_TRUE(Wal::Exists(&env_, kDir));
  EXPECT_TRUE(Reopen().ok());
}

TEST_F(WalTest, RoundTripsEntriesAndHardState) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 0), MakeEntries(1, 3, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeHardState(2, 2, 3), MakeEntries(4, 5, 2)).ok());
  wal.reset();
  auto r = Reopen();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto expected = Range(1, 3, 1);
  for (auto p : Range(4, 5, 2)) expected.push_back(p);
  EXPECT_EQ(IndexTerms(r->entries), expected);
  EXPECT_EQ(r->entries[3].data(), "entry-4");
  EXPECT_EQ(r->hard_state.term(), 2u);
  EXPECT_EQ(r->hard_state.vote(), 2u);
  EXPECT_EQ(r->hard_state.commit(), 3u);
  EXPECT_EQ(wal_->last_index(), 5u);
}

TEST_F(WalTest, SaveOfABatchIsOneWriteAndOneSync) {
  auto wal = CreateWal();
  uint64_t appends = env_.append_count(), syncs = env_.sync_count();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 1), MakeEntries(1, 100, 1)).ok());
  EXPECT_EQ(env_.append_count() - appends, 1u);
  EXPECT_EQ(env_.sync_count() - syncs, 1u);
  // Unsynced saves write but do not sync; an empty save does nothing.
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 2), MakeEntries(101, 110, 1), false).ok());
  ASSERT_TRUE(wal->Save(raftpb::HardState(), {}, true).ok());
  EXPECT_EQ(env_.append_count() - appends, 2u);
  EXPECT_EQ(env_.sync_count() - syncs, 1u);
}

TEST_F(WalTest, EachRecordSyncIsReportedToTheSyncObserver) {
  int reported = 0;
  options_.on_sync = [&reported](std::chrono::nanoseconds took) {
    EXPECT_GE(took.count(), 0);
    ++reported;
  };
  auto wal = CreateWal();
  const int after_create = reported;
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 1), MakeEntries(1, 10, 1)).ok());
  EXPECT_EQ(reported - after_create, 1);
  // Unsynced writes are reported when a later Sync makes them durable, and a
  // Sync with nothing new to flush reports nothing.
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 2), MakeEntries(11, 20, 1), false).ok());
  EXPECT_EQ(reported - after_create, 1);
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(reported - after_create, 2);
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(reported - after_create, 2);
}

TEST_F(WalTest, CutsSegmentsAndReadsAcrossThem) {
  auto wal = CreateWal();
  uint64_t index = 0;
  for (int batch = 0; batch < 100; ++batch) {
    auto entries = MakeEntries(index + 1, index + 10, 1, 200);
    index += 10;
    ASSERT_TRUE(wal->Save(MakeHardState(1, 1, index), entries).ok());
  }
  auto names = wal->SegmentNames();
  ASSERT_GE(names.size(), 3u);  // ~230 KiB in 64 KiB segments.
  wal.reset();
  for (size_t i = 0; i < names.size(); ++i) {
    auto id = ParseSegmentName(names[i]);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->seq, i);
    if (i + 1 < names.size()) {
      // Finished segments end exactly at their last record: no preallocated tail.
      std::string data = *env_.ReadFile(std::string(kDir) + "/" + names[i]);
      auto offsets = FrameOffsets(data);
      auto last = DecodeRecord(std::string_view(data).substr(offsets.back()));
      EXPECT_EQ(offsets.back() + last->frame_size, data.size());
    }
  }
  auto r = Reopen();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(1, 1000, 1));
  EXPECT_EQ(r->hard_state.commit(), 1000u);
}

TEST_F(WalTest, ReopenAndContinueAppending) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 0, 0), MakeEntries(1, 5, 1)).ok());
  wal.reset();
  ASSERT_TRUE(Reopen().ok());
  ASSERT_TRUE(wal_->Save(MakeHardState(1, 0, 5), MakeEntries(6, 9, 1)).ok());
  auto r = Reopen();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(IndexTerms(r->entries), Range(1, 9, 1));
  EXPECT_EQ(r->hard_state.commit(), 5u);
}

TEST_F(WalTest, WritesNeedReadAllFirst) {
  CreateWal();
  auto wal = Wal::Open(&env_, kDir, {}, options_);
  ASSERT_TRUE(wal.ok());
  EXPECT_EQ((*wal)->Save(MakeHardState(1, 0, 0), MakeEntries(1, 1, 1)).code(),
            Code::kFailedPrecondition);
}

TEST_F(WalTest, LaterEntryOverwritesTheSuffix) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 3), MakeEntries(1, 10, 1)).ok());
  // A new leader at term 2 overwrites from index 6: 7..10 of term 1 are gone.
  ASSERT_TRUE(wal->Save(MakeHardState(2, 2, 3), MakeEntries(6, 7, 2)).ok());
  wal.reset();
  auto r = Reopen();
  ASSERT_TRUE(r.ok());
  auto expected = Range(1, 5, 1);
  for (auto p : Range(6, 7, 2)) expected.push_back(p);
  EXPECT_EQ(IndexTerms(r->entries), expected);
  EXPECT_EQ(wal_->last_index(), 7u);
}

TEST_F(WalTest, EntryGapIsCorruption) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 0), MakeEntries(1, 3, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 0), MakeEntries(5, 5, 1)).ok());
  wal.reset();
  auto r = Reopen();
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("gap"), std::string::npos) << r.status().message();
}

TEST_F(WalTest, ReadAllFromASnapshotMarker) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 10), MakeEntries(1, 10, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot({5, 1}).ok());
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 12), MakeEntries(11, 12, 1)).ok());
  wal.reset();

  auto r = Reopen({5, 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(6, 12, 1));
  EXPECT_EQ(r->hard_state.commit(), 12u);

  EXPECT_EQ(Reopen({5, 2}).status().code(), Code::kCorruption);  // Same index, other term.
  EXPECT_EQ(Reopen({7, 1}).status().code(), Code::kNotFound);    // Never snapshotted.

  auto markers = Wal::ValidSnapshotMarkers(&env_, kDir);
  ASSERT_TRUE(markers.ok());
  EXPECT_EQ(*markers, (std::vector<SnapshotMarker>{{0, 0}, {5, 1}}));
}

TEST_F(WalTest, ValidSnapshotMarkersSkipsUncommittedSnapshots) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 4), MakeEntries(1, 10, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot({3, 1}).ok());
  ASSERT_TRUE(wal->SaveSnapshot({8, 1}).ok());  // Beyond the commit index 4.
  auto markers = Wal::ValidSnapshotMarkers(&env_, kDir);
  ASSERT_TRUE(markers.ok());
  EXPECT_EQ(*markers, (std::vector<SnapshotMarker>{{0, 0}, {3, 1}}));
}

TEST_F(WalTest, ReleaseToDeletesSegmentsCoveredByTheSnapshot) {
  auto wal = CreateWal();
  uint64_t index = 0;
  for (int batch = 0; batch < 60; ++batch) {
    ASSERT_TRUE(
        wal->Save(MakeHardState(1, 1, index + 10), MakeEntries(index + 1, index + 10, 1, 200))
            .ok());
    index += 10;
  }
  ASSERT_GE(wal->SegmentNames().size(), 3u);
  const uint64_t snap = 450;
  ASSERT_TRUE(wal->SaveSnapshot({snap, 1}).ok());
  ASSERT_TRUE(wal->ReleaseTo(snap).ok());
  auto names = wal->SegmentNames();
  // The first kept segment was cut at or before the snapshot; the next one after it.
  EXPECT_LE(ParseSegmentName(names[0])->index, snap);
  if (names.size() > 1) {
    EXPECT_GT(ParseSegmentName(names[1])->index, snap);
  }
  EXPECT_NE(ParseSegmentName(names[0])->seq, 0u);
  auto children = *env_.GetChildren(kDir);
  size_t on_disk = std::count_if(children.begin(), children.end(), [](const std::string& n) {
    return ParseSegmentName(n).has_value();
  });
  EXPECT_EQ(on_disk, names.size());
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 601), MakeEntries(601, 601, 1)).ok());
  wal.reset();

  auto r = Reopen({snap, 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(snap + 1, 601, 1));
  EXPECT_EQ(r->metadata, "node-1/cluster-7");  // Repeated at the start of every segment.
  EXPECT_EQ(Reopen({0, 0}).status().code(), Code::kNotFound);
}

TEST_F(WalTest, TornTailAtEveryByteOfTheLastRecordIsRepaired) {
  // The reference run: find the last record of the segment.
  std::string reference;
  {
    FaultEnv env;
    auto wal = CreateWal(&env);
    ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 3), MakeEntries(1, 3, 1)).ok());
    ASSERT_TRUE(wal->Save(raftpb::HardState(), MakeEntries(4, 4, 1, 700)).ok());
    reference = *env.ReadFile(kFirstSegment);
  }
  auto offsets = FrameOffsets(reference);
  const uint64_t last = offsets.back();
  const uint64_t last_end =
      last + DecodeRecord(std::string_view(reference).substr(last))->frame_size;

  for (bool truncate : {false, true}) {
    for (uint64_t cut = last; cut < last_end; ++cut) {
      SCOPED_TRACE((truncate ? "truncated at " : "zeroed from ") + std::to_string(cut));
      FaultEnv env;
      {
        auto wal = CreateWal(&env);
        ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 3), MakeEntries(1, 3, 1)).ok());
        ASSERT_TRUE(wal->Save(raftpb::HardState(), MakeEntries(4, 4, 1, 700)).ok());
      }
      if (truncate) {
        ASSERT_TRUE(env.Truncate(kFirstSegment, cut).ok());
      } else {
        ZeroFrom(&env, kFirstSegment, cut);
      }
      // Zeroing only the padding leaves the record whole.
      std::string damaged = *env.ReadFile(kFirstSegment);
      const bool intact = DecodeRecord(std::string_view(damaged).substr(last)).ok();
      auto r = Reopen({}, &env);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      // The partial record is dropped, nothing before it.
      EXPECT_EQ(IndexTerms(r->entries), Range(1, intact ? 4 : 3, 1));
      EXPECT_EQ(r->hard_state.commit(), 3u);
      // Appending continues where the valid log ends.
      ASSERT_TRUE(wal_->Save(MakeHardState(1, 1, 4), MakeEntries(4, 5, 1)).ok());
      r = Reopen({}, &env);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(IndexTerms(r->entries), Range(1, 5, 1));
      wal_.reset();
    }
  }
}

TEST_F(WalTest, OnlyUnsyncedDataIsLostInACrash) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 10), MakeEntries(1, 10, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 20), MakeEntries(11, 20, 1), /*sync=*/false).ok());
  env_.DropUnsyncedData();
  wal.reset();
  auto r = Reopen();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(1, 10, 1));
  EXPECT_EQ(r->hard_state.commit(), 10u);
}

// Power loss persists an arbitrary subset of the unsynced sectors, in any
// order. Recovery must neither refuse to open (that is not corruption) nor
// lose a synced entry, and must return a gap-free prefix of what was written.
TEST_F(WalTest, RandomSectorLossNeverLosesSyncedEntries) {
  options_.segment_size = 16 * 1024;  // Crashes also land around segment cuts.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    FaultEnv env;
    auto wal = CreateWal(&env);
    uint64_t index = 0, synced = 0;
    const int batches = 1 + static_cast<int>(rng() % 40);
    for (int b = 0; b < batches; ++b) {
      uint64_t n = 1 + rng() % 8;
      bool sync = rng() % 3 != 0;
      auto entries = MakeEntries(index + 1, index + n, 1, rng() % 300);
      ASSERT_TRUE(wal->Save(MakeHardState(1, 1, index), entries, sync).ok());
      index += n;
      if (sync) synced = index;
    }
    env.DropUnsyncedSectorsRandomly(seed);
    wal.reset();
    auto r = Reopen({}, &env);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_GE(r->entries.size(), synced);
    EXPECT_EQ(IndexTerms(r->entries), Range(1, r->entries.size(), 1));
    // And the repaired WAL takes new writes.
    uint64_t next = r->entries.size() + 1;
    ASSERT_TRUE(wal_->Save(MakeHardState(2, 1, next), MakeEntries(next, next, 2)).ok());
    auto again = Reopen({}, &env);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->entries.size(), next);
    wal_.reset();
  }
}

// Crashes at every sync point of a workload that cuts segments, saves
// snapshot markers and purges: the WAL always opens (from its newest committed
// marker, as the server would) and holds every entry whose Save returned OK.
TEST_F(WalTest, CrashAtEverySyncPointLosesNothingAcknowledged) {
  options_.segment_size = 8 * 1024;
  for (uint64_t crash_at = 0;; ++crash_at) {
    SCOPED_TRACE("crash at sync " + std::to_string(crash_at));
    FaultEnv env;
    env.FailSyncsAfter(crash_at);
    uint64_t acked = 0;
    bool finished = false;
    {
      auto created = Wal::Create(&env, kDir, "meta", options_);
      if (created.ok()) {
        auto wal = std::move(created).value();
        finished = true;
        for (uint64_t batch = 0; batch < 30 && finished; ++batch) {
          const uint64_t first = batch * 5 + 1, last = first + 4;
          if (!wal->Save(MakeHardState(1, 1, last), MakeEntries(first, last, 1, 400)).ok()) {
            finished = false;
            break;
          }
          acked = last;
          if (batch % 7 == 6) {
            finished = wal->SaveSnapshot({last, 1}).ok() && wal->ReleaseTo(last).ok();
          }
        }
      }
    }
    env.SetFailSyncs(false);
    env.DropUnsyncedData();
    if (!Wal::Exists(&env, kDir)) {
      ASSERT_EQ(acked, 0u);  // Create never finished: nothing was acknowledged.
      continue;
    }
    auto markers = Wal::ValidSnapshotMarkers(&env, kDir);
    ASSERT_TRUE(markers.ok()) << markers.status().ToString();
    ASSERT_FALSE(markers->empty());
    const SnapshotMarker start = markers->back();
    auto r = Reopen(start, &env);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_GE(start.index + r->entries.size(), acked);
    EXPECT_EQ(IndexTerms(r->entries), Range(start.index + 1, start.index + r->entries.size(), 1));
    wal_.reset();
    if (finished) break;
  }
}

TEST_F(WalTest, GapLeftByAnInterruptedPurgeIsHarmless) {
  auto wal = CreateWal();
  uint64_t index = 0;
  while (wal->SegmentNames().size() < 4) {
    ASSERT_TRUE(
        wal->Save(MakeHardState(1, 1, index + 10), MakeEntries(index + 1, index + 10, 1, 500))
            .ok());
    index += 10;
  }
  ASSERT_TRUE(wal->SaveSnapshot({index, 1}).ok());
  auto names = wal->SegmentNames();
  wal.reset();
  // Segment 1 deleted, segment 0 not yet: both lie before the one read from.
  ASSERT_TRUE(env_.RemoveFile(std::string(kDir) + "/" + names[1]).ok());
  auto markers = Wal::ValidSnapshotMarkers(&env_, kDir);
  ASSERT_TRUE(markers.ok()) << markers.status().ToString();
  EXPECT_EQ(markers->back(), (SnapshotMarker{index, 1}));
  auto r = Reopen({index, 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->entries.empty());
  ASSERT_TRUE(wal_->ReleaseTo(index).ok());  // Cleans up the leftover too.
  EXPECT_EQ(wal_->SegmentNames(), (std::vector<std::string>{names[2], names[3]}));
  EXPECT_FALSE(env_.FileExists(std::string(kDir) + "/" + names[0]));
}

TEST_F(WalTest, FlippedByteInSyncedDataIsRefusedWithFileAndOffset) {
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(wal->Save(MakeHardState(1, 1, i), MakeEntries(i, i, 1)).ok());
  }
  wal.reset();
  auto offsets = FrameOffsets(*env_.ReadFile(kFirstSegment));
  const uint64_t victim = offsets[6];  // Header, metadata, marker, then entries 1.. (+hard states).
  ASSERT_TRUE(env_.CorruptByte(kFirstSegment, victim + 20).ok());
  auto r = Reopen();
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_EQ(r.status().message(),
            "wal: corrupt record in 0000000000000000-0000000000000000.wal at offset " +
                std::to_string(victim) + ": crc mismatch");
  // Refusing changed nothing on disk: the data is still there for an operator.
  EXPECT_EQ(FrameOffsets(*env_.ReadFile(kFirstSegment)).size(), 3u + 3u);
}

TEST_F(WalTest, FlippedByteInsideOneSyncedBatchIsRefused) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 10), MakeEntries(1, 10, 1)).ok());
  wal.reset();
  auto offsets = FrameOffsets(*env_.ReadFile(kFirstSegment));
  const uint64_t victim = offsets[5];
  ASSERT_TRUE(env_.CorruptByte(kFirstSegment, victim + 30, 0x10).ok());
  auto r = Reopen();
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("at offset " + std::to_string(victim)), std::string::npos);
}

TEST_F(WalTest, DamagedLengthInTheMiddleIsRefused) {
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(wal->Save(MakeHardState(1, 1, i), MakeEntries(i, i, 1)).ok());
  }
  wal.reset();
  auto offsets = FrameOffsets(*env_.ReadFile(kFirstSegment));
  ASSERT_TRUE(env_.CorruptByte(kFirstSegment, offsets[4] + 4, 0x40).ok());  // Length 2^38+.
  auto r = Reopen();
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("bad length"), std::string::npos) << r.status().message();
}

TEST_F(WalTest, DamageInAFinishedSegmentIsRefused) {
  auto wal = CreateWal();
  uint64_t index = 0;
  while (wal->SegmentNames().size() < 2) {
    ASSERT_TRUE(
        wal->Save(MakeHardState(1, 1, index), MakeEntries(index + 1, index + 10, 1, 500)).ok());
    index += 10;
  }
  wal.reset();
  auto offsets = FrameOffsets(*env_.ReadFile(kFirstSegment));
  // The very last record of a finished segment is not a "tail": it was synced at the cut.
  ASSERT_TRUE(env_.CorruptByte(kFirstSegment, offsets.back() + 20).ok());
  auto r = Reopen();
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("0000000000000000-0000000000000000.wal at offset " +
                                      std::to_string(offsets.back())),
            std::string::npos)
      << r.status().message();
}

TEST_F(WalTest, MissingMiddleSegmentIsRefused) {
  auto wal = CreateWal();
  uint64_t index = 0;
  while (wal->SegmentNames().size() < 3) {
    ASSERT_TRUE(
        wal->Save(MakeHardState(1, 1, index), MakeEntries(index + 1, index + 10, 1, 500)).ok());
    index += 10;
  }
  auto names = wal->SegmentNames();
  wal.reset();
  ASSERT_TRUE(env_.RemoveFile(std::string(kDir) + "/" + names[1]).ok());
  auto r = Reopen();
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("missing segment"), std::string::npos);
}

TEST_F(WalTest, LeftoverTmpSegmentFromACrashedCutIsIgnored) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeHardState(1, 1, 2), MakeEntries(1, 2, 1)).ok());
  wal.reset();
  const std::string tmp = std::string(kDir) + "/" + SegmentName(1, 3) + ".tmp";
  ASSERT_TRUE(WriteFileAtomically(&env_, tmp, "half a segment").ok());
  auto r = Reopen();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(1, 2, 1));
  EXPECT_FALSE(env_.FileExists(tmp));
}

TEST_F(WalTest, SecondOpenOfTheSameDirectoryIsLocked) {
  CreateWal();  // Destroyed at once: releases its lock.
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(Wal::Open(&env_, kDir, {}, options_).status().code(), Code::kUnavailable);
}

TEST_F(WalTest, WriteErrorIsSticky) {
  auto wal = CreateWal();
  env_.SetFailSyncs(true);
  EXPECT_EQ(wal->Save(MakeHardState(1, 1, 1), MakeEntries(1, 1, 1)).code(), Code::kIOError);
  env_.SetFailSyncs(false);
  // The tail is in an unknown state: no further write may pretend otherwise.
  EXPECT_EQ(wal->Save(MakeHardState(1, 1, 2), MakeEntries(2, 2, 1)).code(), Code::kIOError);
  EXPECT_EQ(wal->SaveSnapshot({1, 1}).code(), Code::kIOError);
}

// The same paths on the real file system, with real preallocation.
TEST(WalPosixTest, RoundTripCutAndTornTail) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wal_test.XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl + "/member/wal";
  Env* env = Env::Default();
  Options options;
  options.segment_size = 256 * 1024;
  {
    auto wal = Wal::Create(env, dir, "meta", options);
    ASSERT_TRUE(wal.ok()) << wal.status().ToString();
    for (uint64_t i = 0; i < 100; ++i) {
      ASSERT_TRUE(
          (*wal)
              ->Save(MakeHardState(1, 1, i * 10), MakeEntries(i * 10 + 1, i * 10 + 10, 1, 500))
              .ok());
    }
    EXPECT_GE((*wal)->SegmentNames().size(), 2u);
    EXPECT_EQ(*env->GetFileSize(dir + "/" + (*wal)->SegmentNames().back()), options.segment_size);
  }
  {
    auto wal = Wal::Open(env, dir, {}, options);
    ASSERT_TRUE(wal.ok());
    auto r = (*wal)->ReadAll();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(IndexTerms(r->entries), Range(1, 1000, 1));
    auto names = (*wal)->SegmentNames();
    wal->reset();
    // Tear the last entry of the last segment (the final record is a hard state).
    const std::string last = dir + "/" + names.back();
    auto offsets = FrameOffsets(*env->ReadFile(last));
    ASSERT_TRUE(env->Truncate(last, offsets[offsets.size() - 2] + 100).ok());
  }
  auto wal = Wal::Open(env, dir, {}, options);
  ASSERT_TRUE(wal.ok());
  const std::string last_segment = dir + "/" + (*wal)->SegmentNames().back();
  auto r = (*wal)->ReadAll();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IndexTerms(r->entries), Range(1, 999, 1));
  EXPECT_EQ(*env->GetFileSize(last_segment), options.segment_size);  // Preallocated again.
  wal->reset();
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace etcdpp::wal
