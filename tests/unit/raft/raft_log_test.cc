// RaftLog: log matching, conflict detection, commit rules, unstable handling.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace etcdpp::raft {
namespace {

using testing::Ent;
using testing::EntsWithTerms;

TEST(RaftLogTest, FindConflictReturnsFirstMismatchOrNewEntry) {
  MemoryStorage ms;
  RaftLog log(&ms, kNoLimit);
  log.Append(EntsWithTerms({1, 2, 3}));
  EXPECT_EQ(log.FindConflict({}), 0u);
  EXPECT_EQ(log.FindConflict({Ent(1, 1), Ent(2, 2)}), 0u);
  EXPECT_EQ(log.FindConflict({Ent(2, 2), Ent(3, 3), Ent(4, 4)}), 4u);  // new entry
  EXPECT_EQ(log.FindConflict({Ent(2, 2), Ent(3, 4)}), 3u);             // conflict
}

TEST(RaftLogTest, MaybeAppendChecksPrecedingEntryAndTruncatesConflicts) {
  MemoryStorage ms;
  RaftLog log(&ms, kNoLimit);
  log.Append(EntsWithTerms({1, 2, 3}));
  // Mismatching (index, term) of the preceding entry: rejected.
  EXPECT_FALSE(log.MaybeAppend(3, 2, 3, {Ent(4, 4)}).has_value());
  EXPECT_FALSE(log.MaybeAppend(4, 4, 3, {Ent(5, 4)}).has_value());
  // Match: conflicting suffix replaced, commit = min(leader commit, last new).
  auto last = log.MaybeAppend(1, 1, 10, {Ent(2, 4)});
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log.LastIndex(), 2u);
  EXPECT_EQ(log.committed(), 2u);
  // A heartbeat-like empty append does not truncate.
  EXPECT_EQ(*log.MaybeAppend(1, 1, 2, {}), 1u);
  EXPECT_EQ(log.LastIndex(), 2u);
}

TEST(RaftLogTest, IsUpToDateComparesLastTermThenIndex) {
  MemoryStorage ms;
  RaftLog log(&ms, kNoLimit);
  log.Append(EntsWithTerms({1, 2, 3}));
  EXPECT_TRUE(log.IsUpToDate(1, 4));   // higher term wins even if shorter
  EXPECT_FALSE(log.IsUpToDate(5, 2));  // lower term loses even if longer
  EXPECT_TRUE(log.IsUpToDate(3, 3));
  EXPECT_FALSE(log.IsUpToDate(2, 3));
}

TEST(RaftLogTest, MaybeCommitOnlyForTheGivenTerm) {
  MemoryStorage ms;
  RaftLog log(&ms, kNoLimit);
  log.Append(EntsWithTerms({1, 2, 2}));
  EXPECT_FALSE(log.MaybeCommit(2, 3));
  EXPECT_EQ(log.committed(), 0u);
  EXPECT_TRUE(log.MaybeCommit(3, 2));
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_FALSE(log.MaybeCommit(2, 2));  // never decreases
}

TEST(RaftLogTest, NextEntriesSpanStableAndUnstableAndRespectApplied) {
  MemoryStorage ms;
  ASSERT_TRUE(ms.Append(EntsWithTerms({1, 1})).ok());
  RaftLog log(&ms, kNoLimit);
  log.Append({Ent(3, 2), Ent(4, 2)});
  log.CommitTo(3);
  auto next = log.NextEntries();
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next.back().index(), 3u);
  log.AppliedTo(2);
  next = log.NextEntries();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].index(), 3u);
  // Stabilizing entries only drops them from the unstable tail.
  log.StableTo(4, 2);
  EXPECT_TRUE(log.UnstableEntries().empty());
  // A stale StableTo (term mismatch) is ignored.
  log.Append({Ent(4, 3)});
  log.StableTo(4, 2);
  EXPECT_EQ(log.UnstableEntries().size(), 1u);
}

TEST(RaftLogTest, CompactedEntriesReportCompaction) {
  MemoryStorage ms;
  ASSERT_TRUE(ms.Append(EntsWithTerms({1, 1, 2, 2, 3})).ok());
  ASSERT_TRUE(ms.CreateSnapshot(3, nullptr, "").ok());
  ASSERT_TRUE(ms.Compact(3).ok());
  RaftLog log(&ms, kNoLimit);
  EXPECT_EQ(log.FirstIndex(), 4u);
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_EQ(*log.Term(3), 2u);
  EXPECT_EQ(*log.Term(2), 0u);  // below the dummy entry: unknown
  EXPECT_TRUE(IsCompacted(log.Entries(2, kNoLimit).status()));
  EXPECT_EQ(log.Entries(4, kNoLimit)->size(), 2u);
}

TEST(RaftLogTest, RestoreFromSnapshotResetsTheLog) {
  MemoryStorage ms;
  RaftLog log(&ms, kNoLimit);
  log.Append(EntsWithTerms({1, 1}));
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  log.Restore(snap);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(*log.Term(10), 4u);
  EXPECT_TRUE(log.HasPendingSnapshot());
  EXPECT_TRUE(log.UnstableEntries().empty());
}

}  // namespace
}  // namespace etcdpp::raft
