#include "cmd/bench/latency_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace etcdpp::bench {
namespace {

constexpr double kPercents[] = {10, 25, 50, 75, 90, 95, 99, 99.9};
constexpr int kHistogramBuckets = 10;
constexpr int kHistogramBarWidth = 40;

// Nearest-rank percentile of an ascending, non-empty vector.
double Percentile(const std::vector<double>& sorted, double percent) {
  size_t rank = static_cast<size_t>(std::ceil(percent / 100.0 * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

LatencyReport::LatencyReport(std::vector<double> latencies_s, std::map<std::string, int64_t> errors,
                             double total_s)
    : sorted_s_(std::move(latencies_s)), errors_(std::move(errors)) {
  std::sort(sorted_s_.begin(), sorted_s_.end());
  summary_.total_s = total_s;
  summary_.succeeded = static_cast<int64_t>(sorted_s_.size());
  for (const auto& [message, count] : errors_) summary_.failed += count;
  if (total_s > 0) summary_.requests_per_s = summary_.succeeded / total_s;
  if (sorted_s_.empty()) return;
  summary_.fastest_s = sorted_s_.front();
  summary_.slowest_s = sorted_s_.back();
  double sum = std::accumulate(sorted_s_.begin(), sorted_s_.end(), 0.0);
  summary_.average_s = sum / sorted_s_.size();
  double squares = 0;
  for (double l : sorted_s_) squares += (l - summary_.average_s) * (l - summary_.average_s);
  summary_.stddev_s = std::sqrt(squares / sorted_s_.size());
  for (double p : kPercents) summary_.percentiles.emplace_back(p, Percentile(sorted_s_, p));
}

std::string LatencyReport::Histogram() const {
  // Buckets split [fastest, slowest] evenly; each line shows its upper bound.
  const double lo = summary_.fastest_s, hi = summary_.slowest_s;
  std::vector<double> bounds;
  for (int i = 0; i < kHistogramBuckets; ++i)
    bounds.push_back(lo + (hi - lo) * i / (kHistogramBuckets - 1));
  std::vector<int64_t> counts(bounds.size(), 0);
  size_t b = 0;
  for (double l : sorted_s_) {
    while (b + 1 < bounds.size() && l > bounds[b]) ++b;
    ++counts[b];
  }
  const int64_t max_count = *std::max_element(counts.begin(), counts.end());
  std::string out = "\nResponse time histogram:\n";
  for (size_t i = 0; i < bounds.size(); ++i) {
    int bar = max_count > 0 ? static_cast<int>(counts[i] * kHistogramBarWidth / max_count) : 0;
    std::string bars;
    for (int j = 0; j < bar; ++j) bars += "\u220e";  // etcd's bar glyph
    out += fmt::format("  {:.4f} [{}]\t|{}\n", bounds[i], counts[i], bars);
  }
  return out;
}

std::string LatencyReport::ToText() const {
  const LatencySummary& s = summary_;
  std::string out = "\nSummary:\n";
  out += fmt::format("  Total:\t{:.4f} secs.\n", s.total_s);
  out += fmt::format("  Slowest:\t{:.4f} secs.\n", s.slowest_s);
  out += fmt::format("  Fastest:\t{:.4f} secs.\n", s.fastest_s);
  out += fmt::format("  Average:\t{:.4f} secs.\n", s.average_s);
  out += fmt::format("  Stddev:\t{:.4f} secs.\n", s.stddev_s);
  out += fmt::format("  Requests/sec:\t{:.4f}\n", s.requests_per_s);
  if (!sorted_s_.empty()) {
    out += Histogram();
    out += "\nLatency distribution:\n";
    for (const auto& [percent, latency] : s.percentiles)
      out += fmt::format("  {}% in {:.4f} secs.\n", percent, latency);
  }
  if (!errors_.empty()) {
    out += "\nError distribution:\n";
    for (const auto& [message, count] : errors_) out += fmt::format("  [{}]\t{}\n", count, message);
  }
  return out;
}

std::string LatencyReport::ToJson(
    const std::vector<std::pair<std::string, std::string>>& fields) const {
  const LatencySummary& s = summary_;
  std::string out = "{";
  for (const auto& [name, value] : fields) out += fmt::format("{}:{},", JsonString(name), value);
  out += fmt::format(
      "\"succeeded\":{},\"failed\":{},\"total_s\":{:.4f},\"requests_per_s\":{:.1f},"
      "\"fastest_ms\":{:.3f},\"average_ms\":{:.3f},\"stddev_ms\":{:.3f},\"slowest_ms\":{:.3f}",
      s.succeeded, s.failed, s.total_s, s.requests_per_s, s.fastest_s * 1e3, s.average_s * 1e3,
      s.stddev_s * 1e3, s.slowest_s * 1e3);
  for (const auto& [percent, latency] : s.percentiles) {
    std::string name = fmt::format("p{}", percent);
    std::replace(name.begin(), name.end(), '.', '_');
    out += fmt::format(",\"{}_ms\":{:.3f}", name, latency * 1e3);
  }
  if (!errors_.empty()) {
    out += ",\"errors\":{";
    bool first = true;
    for (const auto& [message, count] : errors_) {
      out += fmt::format("{}{}:{}", first ? "" : ",", JsonString(message), count);
      first = false;
    }
    out += "}";
  }
  return out + "}";
}

}  // namespace etcdpp::bench
