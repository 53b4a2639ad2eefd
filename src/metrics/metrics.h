// Prometheus metrics: counters, gauges and histograms, with or without
// labels, kept in a Registry that renders them in the text exposition format
// (version 0.0.4) that Prometheus scrapes from /metrics.
//
// The hot path takes no lock: Inc/Set/Observe are relaxed atomic operations
// on the metric object itself. Locks are taken only to register a metric, to
// create a labelled child the first time its label values are seen, and to
// render. Callers keep the reference a registration or WithLabels returns
// (it stays valid for the registry's lifetime) and update it directly:
//
//   static metrics::Histogram& fsync = metrics::DefaultRegistry().AddHistogram(
//       "etcd_disk_wal_fsync_duration_seconds", "...", metrics::ExponentialBuckets(0.001, 2, 14));
//   fsync.Observe(seconds);
//
// Values are rendered as Go's Prometheus client renders them (strconv 'g'
// formatting), so label values such as le="0.0001" and the numbers read the
// same as etcd's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace etcdpp::metrics {

// A value that only goes up (requests served, bytes written).
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (a size, a flag, a queue length).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with fixed upper bounds (inclusive, as
// Prometheus' `le`), plus their sum. A scrape reads the buckets one by one
// while observations continue, so `_sum` may trail `_count` by the
// observations made during the scrape; `_count` always equals the +Inf bucket.
class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per upper bound, then +Inf
    double sum = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  // counts_[i]: observations in (bound[i-1], bound[i]]; the last one is +Inf.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// `count` bounds: start, start*factor, start*factor^2, ... (as Go's client).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// A metric name with label names; one child per distinct label values,
// created on first use and kept for the family's lifetime.
template <typename Metric>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // Takes the family's lock: call it once per label combination and keep the
  // reference, not on every update.
  Metric& WithLabels(const std::vector<std::string>& values);

  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `fn(values, metric)` for each child in label order, under the lock.
  void ForEach(const std::function<void(const std::vector<std::string>&, const Metric&)>& fn) const;

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;  // guarded by mu_
};

// Go's strconv.FormatFloat(v, 'g', -1, 64), with Prometheus' spellings of
// the specials ("+Inf", "-Inf", "NaN").
std::string FormatValue(double v);

// Owns metrics and renders them. Thread-safe. Names must be unique; a second
// registration of a name aborts (two owners of one metric is a bug).
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& AddCounter(const std::string& name, const std::string& help);
  Gauge& AddGauge(const std::string& name, const std::string& help);
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds);
  Family<Counter>& AddCounterFamily(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names);
  Family<Gauge>& AddGaugeFamily(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names);
  Family<Histogram>& AddHistogramFamily(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> upper_bounds);

  // Read at scrape time, for values that already live elsewhere (the DB
  // size, the leader, /proc): nothing to update on the hot path. `read` runs
  // on the scraping thread and must be thread-safe.
  void AddGaugeFunc(const std::string& name, const std::string& help, std::function<double()> read);
  void AddCounterFunc(const std::string& name, const std::string& help,
                      std::function<double()> read);

  // The text exposition format, families sorted by name, children by labels.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Entry {
    std::string help;
    Type type;
    std::function<void(const std::string& name, std::string& out)> render;
  };
  void Add(const std::string& name, const std::string& help, Type type,
           std::function<void(const std::string&, std::string&)> render);

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_; sorted as rendered
  // The metrics themselves; deques so references stay valid as they grow.
  std::deque<Counter> counters_;                      // guarded by mu_
  std::deque<Gauge> gauges_;                          // guarded by mu_
  std::deque<Histogram> histograms_;                  // guarded by mu_
  std::deque<Family<Counter>> counter_families_;      // guarded by mu_
  std::deque<Family<Gauge>> gauge_families_;          // guarded by mu_
  std::deque<Family<Histogram>> histogram_families_;  // guarded by mu_
};

// The process-wide registry /metrics renders. Modules register their metrics
// here (see etcd_metrics.h for etcd's names).
Registry& DefaultRegistry();

// The Prometheus content type of Render()'s output.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace etcdpp::metrics
