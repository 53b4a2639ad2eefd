// Command-line behaviour decided before any server is contacted: command
// finding, flag errors, argument errors, help. Exit codes and the stdout /
// stderr split are etcdctl 3.4's.
#include "cmd/etcdppctl/ctl.h"

#include <gtest/gtest.h>

#include <sstream>

namespace etcdpp::ctl {
namespace {

struct CtlResult {
  int code;
  std::string out;
  std::string err;
};

CtlResult Ctl(std::vector<std::string> args, std::string stdin_text = "",
              std::vector<std::string> env = {}) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  CtlIo io{in, out, err, std::move(env)};
  int code = RunCtl(args, io);
  return {code, out.str(), err.str()};
}

TEST(RunCtlTest, NoCommandPrintsRootHelp) {
  CtlResult r = Ctl({});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("NAME:\n\tetcdctl - A simple command line client for etcd3.\n", 0), 0u);
}

TEST(RunCtlTest, UnknownCommand) {
  CtlResult r = Ctl({"bogus"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: unknown command \"bogus\" for \"etcdctl\"\nRun 'etcdctl --help' for usage.\n"
            "Error: unknown command \"bogus\" for \"etcdctl\"\n");
}

TEST(RunCtlTest, UnknownFlagPrintsUsageOnStdoutAndErrorTwice) {
  CtlResult r = Ctl({"get", "--bogus"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out.rfind("NAME:\n\tget - Gets the key or a range of keys\n", 0), 0u);
  EXPECT_EQ(r.err, "Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n");
}

TEST(RunCtlTest, HelpFlag) {
  CtlResult r = Ctl({"member", "list", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("NAME:\n\tmember list - Lists all members in the cluster\n", 0), 0u);
}

TEST(RunCtlTest, ArgumentErrorsComeBeforeAnyConnection) {
  EXPECT_EQ(Ctl({"get"}).code, 128);
  EXPECT_EQ(Ctl({"put"}).err,
            "Error: put command needs 1 argument and input from stdin or 2 arguments\n");
  EXPECT_EQ(Ctl({"del", "a", "b", "c"}).code, 128);
  EXPECT_EQ(Ctl({"txn", "extra"}).err, "Error: txn command does not accept argument\n");
  CtlResult r = Ctl({"compaction", "abc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: strconv.ParseInt: parsing \"abc\": invalid syntax\n");
  EXPECT_EQ(Ctl({"lease", "revoke", "zz"}).code, 128);
}

TEST(RunCtlTest, UnsupportedOutputFormatIsCheckedBeforeConnecting) {
  CtlResult r = Ctl({"--endpoints=127.0.0.1:1", "-w", "yaml", "get", "k"});
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.err, "Error: unsupported output format\n");
}

TEST(RunCtlTest, EnvironmentConflictsWithFlagIsFatal) {
  CtlResult r = Ctl({"--endpoints=127.0.0.1:1", "get", "k"}, "",
                    {"ETCDCTL_ENDPOINTS=127.0.0.1:2", "ETCDCTL_API=3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(" C | pkg/flags: conflicting environment variable \"ETCDCTL_ENDPOINTS\""),
            std::string::npos);
}

TEST(RunCtlTest, VersionNeedsNoServer) {
  CtlResult r = Ctl({"version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "etcdctl version: 3.4.23\nAPI version: 3.4\n");
}

}  // namespace
}  // namespace etcdpp::ctl
