// LatencyReport: the summary etcd's benchmark tool prints, from raw latencies.
//
// Output format follows etcd's tools/benchmark (pkg/report): a Summary block
// (Total, Slowest, Fastest, Average, Stddev, Requests/sec), a response time
// histogram, the latency distribution at 10/25/50/75/90/95/99/99.9 percent,
// and the error distribution. All durations are in seconds, as etcd prints
// them. ToJson() gives the same numbers on one line (milliseconds) for scripts.
#ifndef ETCDPP_CMD_BENCH_LATENCY_REPORT_H_
#define ETCDPP_CMD_BENCH_LATENCY_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace etcdpp::bench {

struct LatencySummary {
  double total_s = 0;  // wall time of the whole load
  double slowest_s = 0;
  double fastest_s = 0;
  double average_s = 0;
  double stddev_s = 0;
  double requests_per_s = 0;  // successful requests / total_s
  int64_t succeeded = 0;
  int64_t failed = 0;
  // (percent, latency in seconds) for 10, 25, 50, 75, 90, 95, 99, 99.9.
  std::vector<std::pair<double, double>> percentiles;
};

class LatencyReport {
 public:
  // latencies_s: one entry per successful request; errors: message -> count.
  LatencyReport(std::vector<double> latencies_s, std::map<std::string, int64_t> errors,
                double total_s);

  const LatencySummary& summary() const { return summary_; }

  // The human-readable report, formatted like etcd's benchmark.
  std::string ToText() const;
  // One line of JSON; `fields` (already JSON-encoded values) are prepended.
  std::string ToJson(const std::vector<std::pair<std::string, std::string>>& fields) const;

 private:
  std::string Histogram() const;

  std::vector<double> sorted_s_;  // ascending
  std::map<std::string, int64_t> errors_;
  LatencySummary summary_;
};

// Quotes s as a JSON string.
std::string JsonString(const std::string& s);

}  // namespace etcdpp::bench

#endif  // ETCDPP_CMD_BENCH_LATENCY_REPORT_H_
