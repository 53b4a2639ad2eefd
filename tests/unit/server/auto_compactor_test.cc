// The auto-compaction schedules, stepped by hand: which revision the leader
// compacts at, and when, for etcd's periodic and revision modes.
#include "server/auto_compactor.h"

#include <gtest/gtest.h>

namespace etcdpp::server {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

AutoCompactionOptions Periodic(Clock::TimePoint::duration period) {
  AutoCompactionOptions o;
  o.mode = AutoCompactionOptions::Mode::kPeriodic;
  o.period = std::chrono::duration_cast<std::chrono::milliseconds>(period);
  return o;
}

AutoCompactionOptions ByRevision(int64_t keep) {
  AutoCompactionOptions o;
  o.mode = AutoCompactionOptions::Mode::kRevision;
  o.revisions = keep;
  return o;
}

TEST(CompactionScheduleTest, PeriodicCompactsAtTheRevisionOfOnePeriodAgo) {
  const Clock::TimePoint start;
  CompactionSchedule schedule(Periodic(hours(1)), start, 100);
  EXPECT_EQ(schedule.step_interval(), minutes(6));
  // The revision grows by 10 per step; nothing is compacted for an hour.
  int64_t rev = 100;
  Clock::TimePoint now = start;
  for (int step = 1; step < 10; ++step) {
    now += minutes(6);
    rev += 10;
    EXPECT_EQ(schedule.Step(now, rev, true), 0) << "step " << step;
  }
  now += minutes(6);
  rev += 10;
  // An hour in: the revision the store had at the start.
  ASSERT_EQ(schedule.Step(now, rev, true), 100);
  schedule.Done(Status::OK(), now, 100);
  // Then once an hour, each time at the revision of an hour before.
  const int64_t hour_ago = rev;
  for (int step = 1; step < 10; ++step) {
    now += minutes(6);
    rev += 10;
    EXPECT_EQ(schedule.Step(now, rev, true), 0);
  }
  now += minutes(6);
  EXPECT_EQ(schedule.Step(now, rev + 10, true), hour_ago);
}

TEST(CompactionScheduleTest, PeriodicLongerThanAnHourStillCompactsHourly) {
  const Clock::TimePoint start;
  CompactionSchedule schedule(Periodic(hours(3)), start, 1);
  EXPECT_EQ(schedule.step_interval(), minutes(6));
  Clock::TimePoint now = start;
  int64_t compacted = 0;
  int64_t rev = 1;
  // The first compaction waits the whole three hours, for the revision of
  // the start.
  for (int step = 1; step <= 30; ++step) {
    now += minutes(6);
    compacted = schedule.Step(now, ++rev, true);
    if (step < 30) {
      EXPECT_EQ(compacted, 0);
    }
  }
  EXPECT_EQ(compacted, 1);
  schedule.Done(Status::OK(), now, compacted);
  // The next one an hour later, at the revision of three hours before it.
  for (int step = 1; step <= 10; ++step) {
    now += minutes(6);
    compacted = schedule.Step(now, ++rev, true);
    if (step < 10) {
      EXPECT_EQ(compacted, 0);
    }
  }
  EXPECT_EQ(compacted, rev - 30);
}

TEST(CompactionScheduleTest, OnlyTheLeaderCompactsAndAFailureIsRetriedNextStep) {
  const Clock::TimePoint start;
  CompactionSchedule schedule(Periodic(minutes(10)), start, 5);
  EXPECT_EQ(schedule.step_interval(), minutes(1));
  Clock::TimePoint now = start;
  for (int step = 1; step <= 12; ++step) {
    now += minutes(1);
    EXPECT_EQ(schedule.Step(now, 5 + step, false), 0) << "a follower never compacts";
  }
  // Leader now, past the period: compacts at once, at the oldest sample kept.
  now += minutes(1);
  const int64_t first = schedule.Step(now, 18, true);
  EXPECT_EQ(first, 8);
  schedule.Done(Status(Code::kTimeout), now, first);
  now += minutes(1);
  EXPECT_EQ(schedule.Step(now, 19, true), 9);
  // Someone compacted further already: that counts as done.
  schedule.Done(Status(Code::kCompacted), now, 9);
  now += minutes(1);
  EXPECT_EQ(schedule.Step(now, 20, true), 0);
}

TEST(CompactionScheduleTest, RevisionModeKeepsTheLastNRevisions) {
  const Clock::TimePoint start;
  CompactionSchedule schedule(ByRevision(100), start, 1);
  EXPECT_EQ(schedule.step_interval(), minutes(5));
  Clock::TimePoint now = start + minutes(5);
  EXPECT_EQ(schedule.Step(now, 80, true), 0) << "fewer revisions than kept";
  EXPECT_EQ(schedule.Step(now, 250, false), 0) << "followers do not compact";
  EXPECT_EQ(schedule.Step(now, 250, true), 150);
  schedule.Done(Status::OK(), now, 150);
  EXPECT_EQ(schedule.Step(now, 250, true), 0) << "nothing new since";
  EXPECT_EQ(schedule.Step(now, 300, true), 200);
}

TEST(ParseAutoCompactionTest, RetentionIsHoursADurationOrRevisions) {
  auto hours_only = ParseAutoCompaction("periodic", "2");
  ASSERT_TRUE(hours_only.ok());
  EXPECT_EQ(hours_only->period, hours(2));
  auto duration = ParseAutoCompaction("periodic", "1h30m");
  ASSERT_TRUE(duration.ok());
  EXPECT_EQ(duration->period, minutes(90));
  auto off = ParseAutoCompaction("periodic", "0");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled());
  auto revisions = ParseAutoCompaction("revision", "1000");
  ASSERT_TRUE(revisions.ok());
  EXPECT_EQ(revisions->revisions, 1000);
  EXPECT_TRUE(revisions->enabled());
  EXPECT_FALSE(ParseAutoCompaction("revision", "1h").ok());
  EXPECT_FALSE(ParseAutoCompaction("periodic", "soon").ok());
  EXPECT_FALSE(ParseAutoCompaction("hourly", "1").ok());
}

}  // namespace
}  // namespace etcdpp::server
