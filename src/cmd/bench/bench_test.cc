// Unit tests of etcdpp-bench's pure parts: the latency report's numbers and
// the key encoding shared with etcd's benchmark tool.
#include <set>

#include <gtest/gtest.h>

#include "cmd/bench/kv_calls.h"
#include "cmd/bench/latency_report.h"

namespace etcdpp::bench {
namespace {

std::string Bytes(std::initializer_list<int> bytes, size_t size) {
  std::string s(size, '\0');
  size_t i = 0;
  for (int b : bytes) s[i++] = static_cast<char>(b);
  return s;
}

// Expected bytes are Go's binary.PutVarint output for the same numbers.
TEST(BenchmarkKeyTest, MatchesGoVarintInFixedSizeKey) {
  EXPECT_EQ(BenchmarkKey(0, 8), Bytes({0x00}, 8));
  EXPECT_EQ(BenchmarkKey(1, 8), Bytes({0x02}, 8));
  EXPECT_EQ(BenchmarkKey(-1, 8), Bytes({0x01}, 8));
  EXPECT_EQ(BenchmarkKey(63, 8), Bytes({0x7e}, 8));
  EXPECT_EQ(BenchmarkKey(64, 8), Bytes({0x80, 0x01}, 8));
  EXPECT_EQ(BenchmarkKey(300, 8), Bytes({0xd8, 0x04}, 8));
}

TEST(BenchmarkKeyTest, DistinctIndexesGiveDistinctKeys) {
  std::set<std::string> keys;
  for (int64_t i = 0; i < 100000; ++i) keys.insert(BenchmarkKey(i, 8));
  EXPECT_EQ(keys.size(), 100000u);
}

TEST(BenchmarkKeyTest, ShortKeyKeepsLeadingBytes) {
  EXPECT_EQ(BenchmarkKey(300, 1), Bytes({0xd8}, 1));
}

TEST(LatencyReportTest, SummaryOfKnownLatencies) {
  std::vector<double> latencies;
  for (int i = 100; i >= 1; --i) latencies.push_back(i / 1000.0);  // 1..100 ms, unsorted
  LatencyReport report(latencies, {}, 2.0);
  const LatencySummary& s = report.summary();
  EXPECT_EQ(s.succeeded, 100);
  EXPECT_EQ(s.failed, 0);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 50.0);
  EXPECT_DOUBLE_EQ(s.fastest_s, 0.001);
  EXPECT_DOUBLE_EQ(s.slowest_s, 0.100);
  EXPECT_NEAR(s.average_s, 0.0505, 1e-12);
  EXPECT_NEAR(s.stddev_s, 0.028866, 1e-6);
  ASSERT_EQ(s.percentiles.size(), 8u);
  // Nearest rank: the p-th percentile of 1..100 is ceil(p) ms.
  EXPECT_DOUBLE_EQ(s.percentiles[0].second, 0.010);  // 10%
  EXPECT_DOUBLE_EQ(s.percentiles[2].second, 0.050);  // 50%
  EXPECT_DOUBLE_EQ(s.percentiles[6].second, 0.099);  // 99%
  EXPECT_DOUBLE_EQ(s.percentiles[7].second, 0.100);  // 99.9%
}

TEST(LatencyReportTest, ErrorsAreCountedNotTimed) {
  LatencyReport report({0.002}, {{"rpc error: code = Unavailable desc = x", 3}}, 1.0);
  EXPECT_EQ(report.summary().succeeded, 1);
  EXPECT_EQ(report.summary().failed, 3);
  EXPECT_DOUBLE_EQ(report.summary().requests_per_s, 1.0);
  EXPECT_NE(report.ToText().find("[3]\trpc error: code = Unavailable desc = x"), std::string::npos);
  EXPECT_NE(report.ToJson({}).find("\"errors\":{\"rpc error: code = Unavailable desc = x\":3}"),
            std::string::npos);
}

TEST(LatencyReportTest, TextHasEtcdBenchmarkSections) {
  LatencyReport report({0.001, 0.002, 0.003}, {}, 0.5);
  const std::string text = report.ToText();
  for (const char* section :
       {"Summary:", "Total:", "Slowest:", "Fastest:", "Average:", "Stddev:", "Requests/sec:",
        "Response time histogram:", "Latency distribution:", "99.9% in 0.0030 secs."}) {
    EXPECT_NE(text.find(section), std::string::npos) << section;
  }
}

TEST(LatencyReportTest, JsonIsOneLineWithCallerFieldsFirst) {
  LatencyReport report({0.001}, {}, 1.0);
  const std::string json = report.ToJson({{"op", JsonString("put")}, {"total", "1"}});
  EXPECT_EQ(json.rfind("{\"op\":\"put\",\"total\":1,\"succeeded\":1,", 0), 0u) << json;
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\"p99_9_ms\":1.000"), std::string::npos) << json;
}

TEST(LatencyReportTest, EmptyLoadHasZeroSummary) {
  LatencyReport report({}, {}, 0.0);
  EXPECT_EQ(report.summary().succeeded, 0);
  EXPECT_TRUE(report.summary().percentiles.empty());
  EXPECT_EQ(report.ToText().find("Latency distribution:"), std::string::npos);
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace etcdpp::bench
