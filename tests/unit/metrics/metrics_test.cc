#include "metrics/metrics.h"
#include "metrics/member_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace etcdpp::metrics {
namespace {

TEST(FormatValueTest, MatchesGoShortestG) {
  // strconv.FormatFloat(v, 'g', -1, 64) as Go's Prometheus client prints.
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(-1), "-1");
  EXPECT_EQ(FormatValue(20480), "20480");
  EXPECT_EQ(FormatValue(999999), "999999");
  EXPECT_EQ(FormatValue(1e6), "1e+06");
  EXPECT_EQ(FormatValue(1234567), "1.234567e+06");
  EXPECT_EQ(FormatValue(1.76e9), "1.76e+09");
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.00001), "1e-05");
  EXPECT_EQ(FormatValue(8.192), "8.192");
  EXPECT_EQ(FormatValue(0.8192), "0.8192");
  EXPECT_EQ(FormatValue(1.5), "1.5");
  EXPECT_EQ(FormatValue(1e100), "1e+100");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
}

TEST(RegistryTest, RendersCountersGaugesAndSortsFamilies) {
  Registry r;
  Gauge& g = r.AddGauge("b_gauge", "A gauge.");
  Counter& c = r.AddCounter("a_total", "A counter.\nSecond line with \\.");
  c.Inc();
  c.Inc(2);
  g.Set(-2.5);
  EXPECT_EQ(r.Render(),
            "# HELP a_total A counter.\\nSecond line with \\\\.\n"
            "# TYPE a_total counter\n"
            "a_total 3\n"
            "# HELP b_gauge A gauge.\n"
            "# TYPE b_gauge gauge\n"
            "b_gauge -2.5\n");
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithInf) {
  Registry r;
  Histogram& h = r.AddHistogram("lat_seconds", "Latency.", {0.1, 0.2, 0.4});
  h.Observe(0.05);
  h.Observe(0.1);  // upper bounds are inclusive
  h.Observe(0.3);
  h.Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 2\n"
            "lat_seconds_bucket{le=\"0.2\"} 2\n"
            "lat_seconds_bucket{le=\"0.4\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 7.45\n"
            "lat_seconds_count 4\n");
}

TEST(RegistryTest, FamiliesSortChildrenAndEscapeLabelValues) {
  Registry r;
  auto& f = r.AddCounterFamily("req_total", "Requests.", {"code", "path"});
  f.WithLabels({"OK", "/b"}).Inc();
  f.WithLabels({"OK", "/a\"q\\\n"}).Inc(5);
  EXPECT_EQ(&f.WithLabels({"OK", "/b"}), &f.WithLabels({"OK", "/b"}));
  EXPECT_EQ(r.Render(),
            "# HELP req_total Requests.\n"
            "# TYPE req_total counter\n"
            "req_total{code=\"OK\",path=\"/a\\\"q\\\\\\n\"} 5\n"
            "req_total{code=\"OK\",path=\"/b\"} 1\n");
}

TEST(RegistryTest, EmptyFamilyIsLeftOutAndFuncsAreReadAtRender) {
  Registry r;
  r.AddGaugeFamily("empty", "Nothing yet.", {"x"});
  double value = 1;
  r.AddGaugeFunc("read_gauge", "Read when rendered.", [&value] { return value; });
  value = 42;
  EXPECT_EQ(r.Render(),
            "# HELP read_gauge Read when rendered.\n# TYPE read_gauge gauge\nread_gauge 42\n");
}

TEST(RegistryTest, HistogramFamilyPutsLeLast) {
  Registry r;
  auto& f = r.AddHistogramFamily("rtt_seconds", "RTT.", {"To"}, ExponentialBuckets(0.0001, 2, 2));
  f.WithLabels({"abc"}).Observe(0.00015);
  EXPECT_EQ(r.Render(),
            "# HELP rtt_seconds RTT.\n"
            "# TYPE rtt_seconds histogram\n"
            "rtt_seconds_bucket{To=\"abc\",le=\"0.0001\"} 0\n"
            "rtt_seconds_bucket{To=\"abc\",le=\"0.0002\"} 1\n"
            "rtt_seconds_bucket{To=\"abc\",le=\"+Inf\"} 1\n"
            "rtt_seconds_sum{To=\"abc\"} 0.00015\n"
            "rtt_seconds_count{To=\"abc\"} 1\n");
}

TEST(RegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("c_total", "C.");
  Histogram& h = r.AddHistogram("h", "H.", {1, 2});
  Gauge& g = r.AddGauge("g", "G.");
  constexpr int kThreads = 4;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        c.Inc();
        h.Observe(1.5);
        g.Add(1);
        if (i % 1000 == 0) (void)r.Render();  // scrapes run alongside
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads * kEach});
  EXPECT_EQ(g.value(), kThreads * kEach);
  const auto snap = h.Read();
  EXPECT_EQ(snap.cumulative[0], 0u);
  EXPECT_EQ(snap.cumulative[1], uint64_t{kThreads * kEach});
  EXPECT_EQ(snap.cumulative[2], uint64_t{kThreads * kEach});
  EXPECT_DOUBLE_EQ(snap.sum, 1.5 * kThreads * kEach);
}

TEST(RegistryDeathTest, DuplicateNameAborts) {
  Registry r;
  r.AddCounter("dup_total", "One.");
  EXPECT_DEATH(r.AddGauge("dup_total", "Two."), "registered twice");
}

// /v2/stats/self's rates: messages and bytes per second over the window.
TEST(AppendRateWindowTest, RatesSpanTheWindowFromItsOldestToItsNewestMessage) {
  AppendRateWindow w;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  EXPECT_EQ(w.RatesAt(t0).messages_per_second, 0);
  w.Add(t0, 100);
  // One message spans no time: no rate rather than a division by zero.
  EXPECT_EQ(w.RatesAt(t0).messages_per_second, 0);
  for (int i = 1; i <= 4; ++i) w.Add(t0 + std::chrono::milliseconds(100 * i), 100);
  // 5 messages, 500 bytes, 0.4 s from the first to the last (counted as etcd does).
  const AppendRates r = w.RatesAt(t0 + std::chrono::milliseconds(500));
  EXPECT_DOUBLE_EQ(r.messages_per_second, 12.5);
  EXPECT_DOUBLE_EQ(r.bytes_per_second, 1250);
}

TEST(AppendRateWindowTest, OnlyTheLastSamplesCount) {
  AppendRateWindow w;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  // A slow, large start pushed out by kSamples fast, small messages.
  w.Add(t0, 1'000'000);
  const auto start = t0 + std::chrono::milliseconds(500);
  for (size_t i = 0; i < AppendRateWindow::kSamples; ++i) {
    w.Add(start + std::chrono::milliseconds(i), 10);
  }
  const AppendRates r = w.RatesAt(start + std::chrono::milliseconds(AppendRateWindow::kSamples));
  const double span = static_cast<double>(AppendRateWindow::kSamples - 1) / 1000;
  EXPECT_DOUBLE_EQ(r.messages_per_second, AppendRateWindow::kSamples / span);
  EXPECT_DOUBLE_EQ(r.bytes_per_second, 10 * AppendRateWindow::kSamples / span);
}

TEST(AppendRateWindowTest, AnIdleSecondEmptiesTheWindow) {
  AppendRateWindow w;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  w.Add(t0, 100);
  w.Add(t0 + std::chrono::milliseconds(100), 100);
  const auto idle = t0 + std::chrono::milliseconds(100) + AppendRateWindow::kIdle;
  EXPECT_GT(w.RatesAt(idle).messages_per_second, 0);
  EXPECT_EQ(w.RatesAt(idle + std::chrono::milliseconds(1)).messages_per_second, 0);
  // The next burst is measured on its own, not against the old messages.
  const auto later = idle + std::chrono::seconds(10);
  w.Add(later, 100);
  w.Add(later + std::chrono::milliseconds(500), 100);
  EXPECT_DOUBLE_EQ(w.RatesAt(later + std::chrono::milliseconds(500)).messages_per_second, 4);
}

TEST(MemberStatsTest, AppendsCountAndFeedTheirRates) {
  MemberStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  stats.AppendSent(50, t0);
  stats.AppendSent(150, t0 + std::chrono::milliseconds(500));
  stats.AppendReceived(10, t0);
  EXPECT_EQ(stats.append_sent(), 2u);
  EXPECT_EQ(stats.append_received(), 1u);
  EXPECT_DOUBLE_EQ(stats.SendRates(t0 + std::chrono::milliseconds(500)).bytes_per_second, 400);
  EXPECT_EQ(stats.ReceiveRates(t0 + std::chrono::milliseconds(500)).bytes_per_second, 0);
}

}  // namespace
}  // namespace etcdpp::metrics
