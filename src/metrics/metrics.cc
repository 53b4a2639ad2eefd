#include "metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace etcdpp::metrics {
namespace {

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "metrics: %s\n", why.c_str());
  std::abort();
}

void AppendEscaped(std::string& out, const std::string& text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"}` for the family's labels plus an optional extra pair (le).
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const char* extra_name = nullptr, const std::string& extra_value = {}) {
  if (names.empty() && extra_name == nullptr) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i], true);
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    AppendEscaped(out, extra_value, true);
    out += '"';
  }
  out += '}';
  return out;
}

void AppendSample(std::string& out, const std::string& name, const std::string& labels,
                  double value) {
  out += name;
  out += labels;
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

void AppendHistogram(std::string& out, const std::string& name,
                     const std::vector<std::string>& label_names,
                     const std::vector<std::string>& label_values, const Histogram& h) {
  const Histogram::Snapshot snap = h.Read();
  const auto& bounds = h.upper_bounds();
  for (size_t i = 0; i <= bounds.size(); ++i) {
    const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
    AppendSample(out, name + "_bucket", LabelText(label_names, label_values, "le", le),
                 static_cast<double>(snap.cumulative[i]));
  }
  const std::string labels = LabelText(label_names, label_values);
  AppendSample(out, name + "_sum", labels, snap.sum);
  AppendSample(out, name + "_count", labels, static_cast<double>(snap.cumulative.back()));
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (!std::isfinite(upper_bounds_[i]) || (i > 0 && upper_bounds_[i] <= upper_bounds_[i - 1])) {
      Die("histogram bounds must be finite and strictly increasing");
    }
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  snap.cumulative.resize(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snap.cumulative[i] = running;
  }
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> bounds;
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

template <typename Metric>
Metric& Family<Metric>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) Die("wrong number of label values");
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = children_[values];
  if (!slot) slot = make_();
  return *slot;
}

template <typename Metric>
void Family<Metric>::ForEach(
    const std::function<void(const std::vector<std::string>&, const Metric&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, metric] : children_) fn(values, *metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // The shortest digits that read back as v, as d.ddde±x.
  char sci[64];
  auto [end, ec] = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  if (ec != std::errc()) Die("cannot format a value");
  std::string text(sci, end);
  std::string out;
  size_t pos = 0;
  if (text[0] == '-') {
    out += '-';
    pos = 1;
  }
  const size_t e = text.find('e');
  std::string digits;
  for (size_t i = pos; i < e; ++i) {
    if (text[i] != '.') digits += text[i];
  }
  const int exp = std::atoi(text.c_str() + e + 1);
  const int nd = static_cast<int>(digits.size());
  // Go: %e when the exponent is < -4 or >= 6 (the shortest-precision rule).
  if (exp < -4 || exp >= 6) {
    out += digits[0];
    if (nd > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char exp_text[16];
    std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += exp_text;
    return out;
  }
  const int point = exp + 1;  // digits before the decimal point
  if (point <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-point), '0');
    out += digits;
  } else if (point >= nd) {
    out += digits;
    out.append(static_cast<size_t>(point - nd), '0');
  } else {
    out.append(digits, 0, static_cast<size_t>(point));
    out += '.';
    out.append(digits, static_cast<size_t>(point), std::string::npos);
  }
  return out;
}

void Registry::Add(const std::string& name, const std::string& help, Type type,
                   std::function<void(const std::string&, std::string&)> render) {
  // Caller holds mu_.
  if (!entries_.emplace(name, Entry{help, type, std::move(render)}).second) {
    Die("metric registered twice: " + name);
  }
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  Counter& c = counters_.emplace_back();
  Add(name, help, Type::kCounter, [&c](const std::string& n, std::string& out) {
    AppendSample(out, n, {}, static_cast<double>(c.value()));
  });
  return c;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  Gauge& g = gauges_.emplace_back();
  Add(name, help, Type::kGauge,
      [&g](const std::string& n, std::string& out) { AppendSample(out, n, {}, g.value()); });
  return g;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = histograms_.emplace_back(std::move(upper_bounds));
  Add(name, help, Type::kHistogram,
      [&h](const std::string& n, std::string& out) { AppendHistogram(out, n, {}, {}, h); });
  return h;
}

Family<Counter>& Registry::AddCounterFamily(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = counter_families_.emplace_back(std::move(label_names),
                                           [] { return std::make_unique<Counter>(); });
  Add(name, help, Type::kCounter, [&f](const std::string& n, std::string& out) {
    f.ForEach([&](const std::vector<std::string>& values, const Counter& c) {
      AppendSample(out, n, LabelText(f.label_names(), values), static_cast<double>(c.value()));
    });
  });
  return f;
}

Family<Gauge>& Registry::AddGaugeFamily(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = gauge_families_.emplace_back(std::move(label_names),
                                         [] { return std::make_unique<Gauge>(); });
  Add(name, help, Type::kGauge, [&f](const std::string& n, std::string& out) {
    f.ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
      AppendSample(out, n, LabelText(f.label_names(), values), g.value());
    });
  });
  return f;
}

Family<Histogram>& Registry::AddHistogramFamily(const std::string& name, const std::string& help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  const Histogram bounds_check(upper_bounds);  // fails now rather than at the first child
  auto& f = histogram_families_.emplace_back(
      std::move(label_names), [upper_bounds] { return std::make_unique<Histogram>(upper_bounds); });
  Add(name, help, Type::kHistogram, [&f](const std::string& n, std::string& out) {
    f.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
      AppendHistogram(out, n, f.label_names(), values, h);
    });
  });
  return f;
}

void Registry::AddGaugeFunc(const std::string& name, const std::string& help,
                            std::function<double()> read) {
  std::lock_guard<std::mutex> lock(mu_);
  Add(name, help, Type::kGauge, [read = std::move(read)](const std::string& n, std::string& out) {
    AppendSample(out, n, {}, read());
  });
}

void Registry::AddCounterFunc(const std::string& name, const std::string& help,
                              std::function<double()> read) {
  std::lock_guard<std::mutex> lock(mu_);
  Add(name, help, Type::kCounter, [read = std::move(read)](const std::string& n, std::string& out) {
    AppendSample(out, n, {}, read());
  });
}

std::string Registry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, entry] : entries_) {
    std::string samples;
    entry.render(name, samples);
    // A family without children has nothing to show yet; Go's client omits it too.
    if (samples.empty()) continue;
    out += "# HELP " + name + ' ';
    AppendEscaped(out, entry.help, false);
    out += "\n# TYPE " + name + ' ';
    out += entry.type == Type::kCounter ? "counter"
           : entry.type == Type::kGauge ? "gauge"
                                        : "histogram";
    out += '\n';
    out += samples;
  }
  return out;
}

Registry& DefaultRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

}  // namespace etcdpp::metrics
