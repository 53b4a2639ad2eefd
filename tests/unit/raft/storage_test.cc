// MemoryStorage: the dummy entry at the snapshot position, half-open and
// size-limited ranges, overwrites, compaction and snapshots.
#include "raft/storage.h"

#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace etcdpp::raft {
namespace {

using testing::Ent;

// Storage holding the dummy entry at index 3 and entries 4, 5 (terms 3,4,5).
void InitStorage(MemoryStorage& ms) {
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(3);
  snap.mutable_metadata()->set_term(3);
  EXPECT_TRUE(ms.ApplySnapshot(snap).ok());
  EXPECT_TRUE(ms.Append({Ent(4, 4), Ent(5, 5)}).ok());
}

TEST(MemoryStorageTest, TermKnowsTheDummyEntryAndReportsCompaction) {
  MemoryStorage ms;
  InitStorage(ms);
  EXPECT_TRUE(IsCompacted(ms.Term(2).status()));
  EXPECT_EQ(*ms.Term(3), 3u);
  EXPECT_EQ(*ms.Term(5), 5u);
  EXPECT_TRUE(IsUnavailable(ms.Term(6).status()));
  EXPECT_EQ(ms.FirstIndex(), 4u);
  EXPECT_EQ(ms.LastIndex(), 5u);
}

TEST(MemoryStorageTest, EntriesAreHalfOpenAndSizeLimitedButNeverEmpty) {
  MemoryStorage ms;
  InitStorage(ms);
  EXPECT_TRUE(IsCompacted(ms.Entries(3, 5, kNoLimit).status()));
  auto all = ms.Entries(4, 6, kNoLimit);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].index(), 4u);
  // A limit below one entry still returns one entry.
  auto one = ms.Entries(4, 6, 0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  const uint64_t first_size = (*all)[0].ByteSizeLong();
  EXPECT_EQ(ms.Entries(4, 6, first_size + (*all)[1].ByteSizeLong() - 1)->size(), 1u);
  EXPECT_EQ(ms.Entries(4, 6, first_size + (*all)[1].ByteSizeLong())->size(), 2u);
}

TEST(MemoryStorageTest, AppendTruncatesConflictsAndIgnoresCompactedPrefix) {
  MemoryStorage ms;
  InitStorage(ms);
  // Overwrites 5 with a different term and extends.
  ASSERT_TRUE(ms.Append({Ent(5, 6), Ent(6, 6)}).ok());
  EXPECT_EQ(*ms.Term(5), 6u);
  EXPECT_EQ(ms.LastIndex(), 6u);
  // Truncates back to 4.
  ASSERT_TRUE(ms.Append({Ent(4, 7)}).ok());
  EXPECT_EQ(ms.LastIndex(), 4u);
  EXPECT_EQ(*ms.Term(4), 7u);
  // Entries below the first index are skipped.
  ASSERT_TRUE(ms.Append({Ent(3, 3), Ent(4, 7), Ent(5, 7)}).ok());
  EXPECT_EQ(ms.LastIndex(), 5u);
  EXPECT_EQ(*ms.Term(3), 3u);
}

TEST(MemoryStorageTest, CompactKeepsTheTermOfTheCompactedIndex) {
  MemoryStorage ms;
  InitStorage(ms);
  EXPECT_TRUE(IsCompacted(ms.Compact(2)));
  ASSERT_TRUE(ms.Compact(4).ok());
  EXPECT_EQ(ms.FirstIndex(), 5u);
  EXPECT_EQ(*ms.Term(4), 4u);
  EXPECT_TRUE(IsCompacted(ms.Term(3).status()));
}

// The compaction point that keeps a byte budget of entry data behind an
// index: counted from that index down, the entry that would pass the
// budget is the new dummy.
TEST(MemoryStorageTest, CompactIndexKeepingCountsEntryDataBackFromTheIndex) {
  MemoryStorage ms;
  InitStorage(ms);  // dummy 3, entries 4 and 5
  std::vector<raftpb::Entry> more;
  for (uint64_t i = 6; i <= 9; ++i) {
    raftpb::Entry e = Ent(i, 5);
    e.set_data(std::string(10 * i, 'x'));  // 60, 70, 80, 90 bytes
    more.push_back(e);
  }
  ASSERT_TRUE(ms.Append(more).ok());
  EXPECT_EQ(ms.CompactIndexKeeping(9, 0), 9u);        // nothing kept
  EXPECT_EQ(ms.CompactIndexKeeping(9, 89), 9u);       // entry 9 alone is 90
  EXPECT_EQ(ms.CompactIndexKeeping(9, 90), 8u);       // keeps 9
  EXPECT_EQ(ms.CompactIndexKeeping(9, 169), 8u);      // 9 and 8 are 170
  EXPECT_EQ(ms.CompactIndexKeeping(9, 170), 7u);      // keeps 8, 9
  EXPECT_EQ(ms.CompactIndexKeeping(8, 150), 6u);      // keeps 7, 8 behind 8
  EXPECT_EQ(ms.CompactIndexKeeping(9, 1 << 20), 3u);  // all fit: the dummy
  EXPECT_EQ(ms.CompactIndexKeeping(100, 90), 8u);     // clamped to the last index
  ASSERT_TRUE(ms.Compact(ms.CompactIndexKeeping(9, 170)).ok());
  EXPECT_EQ(ms.FirstIndex(), 8u);
  EXPECT_EQ(ms.CompactIndexKeeping(9, 1 << 20), 7u);
}

TEST(MemoryStorageTest, CreateSnapshotAndApplySnapshotRejectOldSnapshots) {
  MemoryStorage ms;
  InitStorage(ms);
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  auto snap = ms.CreateSnapshot(4, &cs, "data");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().index(), 4u);
  EXPECT_EQ(snap->metadata().term(), 4u);
  EXPECT_EQ(snap->metadata().conf_state().voters_size(), 2);
  EXPECT_FALSE(ms.CreateSnapshot(3, &cs, "old").ok());
  EXPECT_FALSE(ms.ApplySnapshot(*snap).ok());  // not newer

  MemoryStorage other;
  ASSERT_TRUE(other.ApplySnapshot(*snap).ok());
  EXPECT_EQ(other.FirstIndex(), 5u);
  EXPECT_EQ(other.LastIndex(), 4u);
  EXPECT_EQ(other.InitialState()->conf_state.voters_size(), 2);
}

}  // namespace
}  // namespace etcdpp::raft
