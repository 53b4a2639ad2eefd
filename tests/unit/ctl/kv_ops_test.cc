// Request building shared by put/get/del and txn request lines.
#include "cmd/etcdppctl/kv_ops.h"

#include <gtest/gtest.h>

namespace etcdpp::ctl {
namespace {

using etcdserverpb::RangeRequest;

TEST(PrefixRangeEndTest, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixRangeEnd("k"), "l");
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(BuildGetTest, PrefixFromKeyAndRangeEnd) {
  GetFlags flags;
  flags.consistency = "l";
  RangeRequest req;
  ASSERT_TRUE(BuildGet({"a", "c"}, flags, &req).ok());
  EXPECT_EQ(req.key(), "a");
  EXPECT_EQ(req.range_end(), "c");
  EXPECT_FALSE(req.serializable());

  flags.prefix = true;
  req.Clear();
  ASSERT_TRUE(BuildGet({""}, flags, &req).ok());
  // An empty prefix means every key.
  EXPECT_EQ(req.key(), std::string(1, '\0'));
  EXPECT_EQ(req.range_end(), std::string(1, '\0'));

  flags.prefix = false;
  flags.from_key = true;
  flags.consistency = "s";
  req.Clear();
  ASSERT_TRUE(BuildGet({"k3"}, flags, &req).ok());
  EXPECT_EQ(req.key(), "k3");
  EXPECT_EQ(req.range_end(), std::string(1, '\0'));
  EXPECT_TRUE(req.serializable());
}

TEST(BuildGetTest, AscendingKeySortIsSentAsNoSort) {
  GetFlags flags;
  flags.consistency = "l";
  flags.sort_by = "key";
  flags.order = "ascend";
  RangeRequest req;
  ASSERT_TRUE(BuildGet({"k"}, flags, &req).ok());
  EXPECT_EQ(req.sort_order(), RangeRequest::NONE);
  EXPECT_EQ(req.sort_target(), RangeRequest::KEY);

  flags.sort_by = "MODIFY";
  flags.order = "DESCEND";
  req.Clear();
  ASSERT_TRUE(BuildGet({"k"}, flags, &req).ok());
  EXPECT_EQ(req.sort_order(), RangeRequest::DESCEND);
  EXPECT_EQ(req.sort_target(), RangeRequest::MOD);
}

// Flags as the command line leaves them: consistency "l", the rest unset.
GetFlags DefaultGetFlags() {
  GetFlags flags;
  flags.consistency.assign(1, 'l');
  return flags;
}

TEST(BuildGetTest, RejectsBadArgumentsWithEtcdctlCodes) {
  RangeRequest req;
  EXPECT_EQ(BuildGet({}, DefaultGetFlags(), &req).exit_code, kExitBadArgs);

  GetFlags bad_sort = DefaultGetFlags();
  bad_sort.sort_by.assign("FOO");
  CtlStatus st = BuildGet({"k"}, bad_sort, &req);
  EXPECT_EQ(st.exit_code, kExitBadFeature);
  EXPECT_EQ(st.message, "bad sort target FOO");

  GetFlags bad_consistency = DefaultGetFlags();
  bad_consistency.consistency.assign(1, 'x');
  st = BuildGet({"k"}, bad_consistency, &req);
  EXPECT_EQ(st.exit_code, kExitBadFeature);
  EXPECT_EQ(st.message, "unknown consistency flag \"x\"");

  GetFlags both_ranges = DefaultGetFlags();
  both_ranges.prefix = both_ranges.from_key = true;
  EXPECT_EQ(BuildGet({"k"}, both_ranges, &req).exit_code, kExitBadArgs);
}

TEST(BuildPutTest, ValueFromArgumentOrStdin) {
  PutFlags flags;
  flags.lease = "0";
  etcdserverpb::PutRequest req;
  ASSERT_TRUE(BuildPut({"k", "v"}, flags, nullptr, &req).ok());
  EXPECT_EQ(req.value(), "v");

  req.Clear();
  ASSERT_TRUE(BuildPut(
                  {"k"}, flags, [] { return std::optional<std::string>("in\n"); }, &req)
                  .ok());
  EXPECT_EQ(req.value(), "in\n");

  CtlStatus st = BuildPut(
      {"k"}, flags, [] { return std::optional<std::string>(""); }, &req);
  EXPECT_EQ(st.exit_code, kExitBadArgs);
  EXPECT_EQ(st.message, "put command needs 1 argument and input from stdin or 2 arguments");
}

TEST(BuildPutTest, LeaseIsHexadecimal) {
  PutFlags flags;
  flags.lease = "694d77f5c0e5a21b";
  flags.prev_kv = true;
  etcdserverpb::PutRequest req;
  ASSERT_TRUE(BuildPut({"k", "v"}, flags, nullptr, &req).ok());
  EXPECT_EQ(req.lease(), 0x694d77f5c0e5a21bLL);
  EXPECT_TRUE(req.prev_kv());

  flags.lease = "zz";
  CtlStatus st = BuildPut({"k", "v"}, flags, nullptr, &req);
  EXPECT_EQ(st.exit_code, kExitBadArgs);
  EXPECT_EQ(st.message,
            "bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex");
}

TEST(BuildDelTest, PrefixAndArgumentCount) {
  DelFlags flags;
  etcdserverpb::DeleteRangeRequest req;
  flags.prefix = true;
  flags.prev_kv = true;
  ASSERT_TRUE(BuildDel({"d"}, flags, &req).ok());
  EXPECT_EQ(req.range_end(), "e");
  EXPECT_TRUE(req.prev_kv());
  EXPECT_EQ(BuildDel({"a", "b", "c"}, flags, &req).exit_code, kExitBadArgs);
  CtlStatus st = BuildDel({"a", "b"}, flags, &req);
  EXPECT_EQ(st.message,
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
}

}  // namespace
}  // namespace etcdpp::ctl
