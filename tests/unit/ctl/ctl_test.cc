// Command-line behaviour decided before any server is contacted: command
// finding, flag errors, argument errors, help. Exit codes, error lines and
// the stdout / stderr split are etcdctl 3.4's; help screens are our own, so
// they are checked for what users rely on (every command and flag is there,
// every way of asking for help works), not for their wording.
#include "cmd/etcdppctl/ctl.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/help.h"

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

std::vector<std::string> Words(std::string_view path) {
  std::vector<std::string> words;
  std::istringstream in{std::string(path)};
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// The flags a command accepts besides the global ones.
FlagSet CommandFlags(const CommandSpec& spec) {
  FlagSet flags;
  spec.make()->AddFlags(&flags);
  return flags;
}

bool Contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// What etcdctl 3.4 offers and scripts call; each must stay reachable.
TEST(CommandTableTest, HasEtcdctlCommands) {
  for (const char* path : {"put",
                           "get",
                           "del",
                           "txn",
                           "compaction",
                           "watch",
                           "version",
                           "member list",
                           "member add",
                           "member remove",
                           "member update",
                           "member promote",
                           "move-leader",
                           "endpoint health",
                           "endpoint status",
                           "lease grant",
                           "lease revoke",
                           "lease timetolive",
                           "lease list",
                           "lease keep-alive"}) {
    EXPECT_NE(FindCommand(path), nullptr) << path;
  }
}

TEST(CommandTableTest, EveryCommandAndFlagIsDescribed) {
  std::set<std::string_view> paths;
  for (const CommandSpec& spec : AllCommands()) {
    EXPECT_TRUE(paths.insert(spec.path).second) << "listed twice: " << spec.path;
    EXPECT_FALSE(spec.summary.empty()) << spec.path;
    std::vector<std::string> words = Words(spec.path);
    ASSERT_LE(words.size(), 2u) << spec.path;
    if (words.size() == 2) {
      EXPECT_NE(FindGroup(words[0]), nullptr) << spec.path;
    }
    for (const FlagSet::Description& flag : CommandFlags(spec).Describe()) {
      EXPECT_FALSE(flag.help.empty()) << spec.path << " --" << flag.name;
    }
  }
  FlagSet global_flags;
  GlobalFlags global;
  global.Register(&global_flags, /*with_cluster=*/true);
  for (const FlagSet::Description& flag : global_flags.Describe()) {
    EXPECT_FALSE(flag.help.empty()) << "--" << flag.name;
  }
}

TEST(HelpTest, RootListsEveryCommandAndGlobalFlag) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"--help"}, {"-h"}, {"help"}}) {
    CtlResult r = Ctl(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.err, "");
    for (const CommandSpec& spec : AllCommands()) {
      EXPECT_TRUE(Contains(r.out, spec.path)) << spec.path;
      EXPECT_TRUE(Contains(r.out, spec.summary)) << spec.path;
    }
    FlagSet global_flags;
    GlobalFlags global;
    global.Register(&global_flags, /*with_cluster=*/false);
    for (const std::string& name : global_flags.Names()) {
      EXPECT_TRUE(Contains(r.out, "--" + name + " ")) << name;
    }
    EXPECT_TRUE(Contains(r.out, "-w, --write-out"));
  }
}

TEST(HelpTest, EveryCommandHelpListsItsFlagsEveryWayItIsAsked) {
  for (const CommandSpec& spec : AllCommands()) {
    std::vector<std::string> words = Words(spec.path);
    std::vector<std::string> with_long = words, with_short = words, via_help = {"help"};
    with_long.push_back("--help");
    with_short.push_back("-h");
    via_help.insert(via_help.end(), words.begin(), words.end());
    // --help may also come first, among the global flags.
    std::vector<std::string> flag_first = {"--help"};
    flag_first.insert(flag_first.end(), words.begin(), words.end());
    CtlResult r = Ctl(with_long);
    EXPECT_EQ(r.code, 0) << spec.path;
    EXPECT_EQ(r.err, "") << spec.path;
    EXPECT_TRUE(Contains(r.out, "etcdppctl " + std::string(spec.path) + " ")) << spec.path;
    EXPECT_TRUE(Contains(r.out, spec.summary)) << spec.path;
    if (!spec.arguments.empty()) {
      EXPECT_TRUE(Contains(r.out, spec.arguments)) << spec.path;
    }
    for (const FlagSet::Description& flag : CommandFlags(spec).Describe()) {
      EXPECT_TRUE(Contains(r.out, "--" + flag.name + " ")) << spec.path << " --" << flag.name;
      EXPECT_TRUE(Contains(r.out, flag.help)) << spec.path << " --" << flag.name;
    }
    for (const auto& args : {with_short, via_help, flag_first}) {
      CtlResult again = Ctl(args);
      EXPECT_EQ(again.code, 0) << spec.path;
      EXPECT_EQ(again.out, r.out) << spec.path;
    }
  }
}

TEST(HelpTest, EndpointCommandsShowClusterFlag) {
  EXPECT_TRUE(Contains(Ctl({"endpoint", "status", "--help"}).out, "--cluster "));
  EXPECT_FALSE(Contains(Ctl({"get", "--help"}).out, "--cluster "));
}

TEST(HelpTest, GroupListsItsCommands) {
  for (const GroupSpec& group : AllGroups()) {
    std::string name(group.name);
    CtlResult bare = Ctl({name});
    EXPECT_EQ(bare.code, 0) << name;
    EXPECT_TRUE(Contains(bare.out, group.summary)) << name;
    int listed = 0;
    for (const CommandSpec& spec : AllCommands()) {
      std::vector<std::string> words = Words(spec.path);
      if (words[0] != name || words.size() != 2) continue;
      EXPECT_TRUE(Contains(bare.out, "  " + words[1] + " ")) << spec.path;
      ++listed;
    }
    EXPECT_GT(listed, 0) << name;
    EXPECT_EQ(Ctl({"help", name}).out, bare.out) << name;
    EXPECT_EQ(Ctl({name, "--help"}).out, bare.out) << name;
    // etcdctl answers an unknown command of a group with the group's list.
    CtlResult unknown = Ctl({name, "bogus"});
    EXPECT_EQ(unknown.code, 0) << name;
    EXPECT_EQ(unknown.out, bare.out) << name;
  }
}

TEST(HelpTest, HelpForUnknownTopicSaysSoAndListsCommands) {
  CtlResult r = Ctl({"help", "bogus"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(Contains(r.err, "\"bogus\""));
  EXPECT_EQ(r.out, Ctl({}).out);
}

TEST(RunCtlTest, UnknownCommand) {
  CtlResult r = Ctl({"bogus"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "Error: unknown command \"bogus\" for \"etcdctl\"\nRun 'etcdctl --help' for usage.\n"
            "Error: unknown command \"bogus\" for \"etcdctl\"\n");
  EXPECT_EQ(Ctl({"--endpoints=x:1", "bogus", "arg"}).err, r.err);
}

TEST(RunCtlTest, UnknownFlagGivesEtcdctlErrorAndTheCommandsHelp) {
  CtlResult r = Ctl({"get", "--bogus"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, Ctl({"get", "--help"}).out);
  EXPECT_EQ(r.err, "Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n");
  r = Ctl({"get", "-z", "k"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: unknown shorthand flag: 'z' in -z\n\nError: unknown shorthand flag: 'z' in "
            "-z\n");
  r = Ctl({"get", "k", "--limit=x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: invalid argument \"x\" for \"--limit\" flag: strconv.ParseInt: parsing \"x\": "
            "invalid syntax\n\nError: invalid argument \"x\" for \"--limit\" flag: "
            "strconv.ParseInt: parsing \"x\": invalid syntax\n");
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
  EXPECT_TRUE(Contains(r.err, " C | pkg/flags: ETCDCTL_ENDPOINTS ")) << r.err;
}

TEST(RunCtlTest, VersionNeedsNoServer) {
  CtlResult r = Ctl({"version"});
  EXPECT_EQ(r.code, 0);
  // etcdctl's two lines first and unchanged (scripts parse them), then this build's.
  EXPECT_EQ(r.out.rfind("etcdctl version: 3.4.23\nAPI version: 3.4\netcdppctl version: ", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("\nGit SHA: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nCompiler: "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace etcdpp::ctl
