// pflag grammar and messages that etcdctl users and scripts rely on.
#include "cmd/etcdppctl/flag_set.h"

#include <gtest/gtest.h>

namespace etcdpp::ctl {
namespace {

class FlagSetTest : public ::testing::Test {
 protected:
  FlagSetTest() {
    flags_.AddBool("prefix", 0, &prefix_, false);
    flags_.AddString("write-out", 'w', &write_out_, "simple");
    flags_.AddInt64("limit", 0, &limit_, 0);
    flags_.AddBool("interactive", 'i', &interactive_, false);
    flags_.AddStringSlice("endpoints", 0, &endpoints_, {"127.0.0.1:2379"});
    flags_.AddDuration("dial-timeout", 0, &dial_timeout_, std::chrono::seconds(2));
  }

  std::optional<std::vector<std::string>> Parse(std::vector<std::string> args) {
    return flags_.Parse(args, &error_);
  }

  FlagSet flags_;
  bool prefix_ = false;
  bool interactive_ = false;
  std::string write_out_;
  int64_t limit_ = 0;
  std::vector<std::string> endpoints_;
  std::chrono::nanoseconds dial_timeout_{};
  std::string error_;
};

TEST_F(FlagSetTest, FlagsMayAppearAnywhereAmongPositionals) {
  auto pos = Parse({"k", "--prefix", "--limit", "2", "-w", "json", "end"});
  ASSERT_TRUE(pos);
  EXPECT_EQ(*pos, (std::vector<std::string>{"k", "end"}));
  EXPECT_TRUE(prefix_);
  EXPECT_EQ(limit_, 2);
  EXPECT_EQ(write_out_, "json");
}

TEST_F(FlagSetTest, AcceptsEqualsAndAttachedShorthandForms) {
  ASSERT_TRUE(Parse({"--limit=3", "-wfields", "--prefix=false", "-i"}));
  EXPECT_EQ(limit_, 3);
  EXPECT_EQ(write_out_, "fields");
  EXPECT_FALSE(prefix_);
  EXPECT_TRUE(interactive_);
  EXPECT_TRUE(flags_.Changed("limit"));
  EXPECT_FALSE(flags_.Changed("endpoints"));
}

TEST_F(FlagSetTest, DoubleDashEndsFlags) {
  auto pos = Parse({"--", "-k", "--prefix"});
  ASSERT_TRUE(pos);
  EXPECT_EQ(*pos, (std::vector<std::string>{"-k", "--prefix"}));
  EXPECT_FALSE(prefix_);
}

TEST_F(FlagSetTest, StringSliceReplacesDefaultThenAppends) {
  ASSERT_TRUE(Parse({"--endpoints=a:1,b:2", "--endpoints", "c:3"}));
  EXPECT_EQ(endpoints_, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
}

TEST_F(FlagSetTest, ReportsErrorsWithPflagText) {
  EXPECT_FALSE(Parse({"--bogus"}));
  EXPECT_EQ(error_, "unknown flag: --bogus");
  EXPECT_FALSE(Parse({"-z"}));
  EXPECT_EQ(error_, "unknown shorthand flag: 'z' in -z");
  EXPECT_FALSE(Parse({"--limit=abc"}));
  EXPECT_EQ(error_,
            "invalid argument \"abc\" for \"--limit\" flag: strconv.ParseInt: parsing \"abc\": "
            "invalid syntax");
  EXPECT_FALSE(Parse({"--limit"}));
  EXPECT_EQ(error_, "flag needs an argument: --limit");
  EXPECT_FALSE(Parse({"--dial-timeout=x"}));
  EXPECT_EQ(error_,
            "invalid argument \"x\" for \"--dial-timeout\" flag: time: invalid duration \"x\"");
  EXPECT_FALSE(Parse({"-w"}));
  EXPECT_EQ(error_, "flag needs an argument: 'w' in -w");
}

TEST_F(FlagSetTest, SetFromEnvironmentMarksChanged) {
  std::string err;
  ASSERT_TRUE(flags_.Set("dial-timeout", "3s", &err));
  EXPECT_EQ(dial_timeout_, std::chrono::seconds(3));
  EXPECT_TRUE(flags_.Changed("dial-timeout"));
  EXPECT_FALSE(flags_.Set("limit", "x", &err));
}

}  // namespace
}  // namespace etcdpp::ctl
