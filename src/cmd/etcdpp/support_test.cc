// The server program's own support code: the JSON log line format that
// operators' tools parse, --log-outputs, and the listen-port check.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "cmd/etcdpp/listen_check.h"
#include "cmd/etcdpp/logging.h"

namespace etcdpp::cmd {
namespace {

std::string Format(spdlog::level::level_enum level, std::string_view text,
                   spdlog::source_loc where = {}) {
  spdlog::details::log_msg msg(where, "etcdpp", level, text);
  spdlog::memory_buf_t out;
  JsonLineFormatter().format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(JsonLineFormatterTest, EtcdFieldNamesInEtcdOrder) {
  const std::string line = Format(spdlog::level::info, "ready");
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(\{"level":"info","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",)"
                       R"("msg":"ready"\}\n)")))
      << line;
}

TEST(JsonLineFormatterTest, LevelsAreZapNames) {
  EXPECT_NE(Format(spdlog::level::warn, "x").find(R"("level":"warn")"), std::string::npos);
  EXPECT_NE(Format(spdlog::level::err, "x").find(R"("level":"error")"), std::string::npos);
  EXPECT_NE(Format(spdlog::level::critical, "x").find(R"("level":"fatal")"), std::string::npos);
  EXPECT_NE(Format(spdlog::level::trace, "x").find(R"("level":"debug")"), std::string::npos);
}

TEST(JsonLineFormatterTest, MessageIsEscaped) {
  const std::string line = Format(spdlog::level::info, "a \"quoted\" \\ path\nnext\x01");
  EXPECT_NE(line.find(R"("msg":"a \"quoted\" \\ path\nnext\u0001"})"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per entry";
}

TEST(JsonLineFormatterTest, CallerWhenTheCallSiteGaveIt) {
  const std::string line =
      Format(spdlog::level::info, "m", spdlog::source_loc("/work/src/server/x.cc", 42, "F"));
  EXPECT_NE(line.find(R"("ts":)"), std::string::npos);
  EXPECT_NE(line.find(R"(Z","caller":"server/x.cc:42","msg":"m"})"), std::string::npos) << line;
}

TEST(SetUpLoggingTest, FileOutputIsAppendedTo) {
  char path[] = "/tmp/etcdpp-log-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "earlier\n", 8), 8);
  close(fd);
  ASSERT_TRUE(SetUpLogging({path, "json", "info"}).ok());
  spdlog::info("to the file");
  spdlog::debug("below the level");
  spdlog::default_logger()->flush();
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str().rfind("earlier\n{\"level\":\"info\"", 0), 0u) << content.str();
  EXPECT_NE(content.str().find(R"("msg":"to the file"})"), std::string::npos);
  EXPECT_EQ(content.str().find("below the level"), std::string::npos);
  spdlog::drop_all();
  std::remove(path);
}

TEST(SetUpLoggingTest, UnopenableOutputIsAnError) {
  Status st = SetUpLogging({"/proc/no-such-dir/etcdpp.log", "json", "info"});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/proc/no-such-dir/etcdpp.log"), std::string::npos);
  EXPECT_FALSE(SetUpLogging({"stderr,", "json", "info"}).ok());
}

// gRPC listens with SO_REUSEPORT; a second listener with it would share the
// port silently. The check must refuse such a port.
TEST(CheckCanListenTest, RefusesAPortAnotherListenerHolds) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const std::string url = "http://127.0.0.1:" + port;

  Status st = CheckListenUrls(url, "http://127.0.0.1:1", "");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "cannot listen on " + url + ": Address already in use (port " + port +
                              " is taken by another program)");
  close(fd);
  EXPECT_TRUE(CheckListenUrls(url, "http://127.0.0.1:1", "").ok());
}

TEST(CheckCanListenTest, PeerUrlsOnlyForSeveralMembers) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string peer = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  EXPECT_TRUE(CheckListenUrls("http://127.0.0.1:0", peer, "a=" + peer).ok());
  EXPECT_FALSE(
      CheckListenUrls("http://127.0.0.1:0", peer, "a=" + peer + ",b=http://127.0.0.1:9").ok());
  close(fd);
}

}  // namespace
}  // namespace etcdpp::cmd
