#include "server/auto_compactor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace etcdpp::server {
namespace {

constexpr std::chrono::hours kMaxPeriodicInterval{1};
constexpr int kStepsPerInterval = 10;
constexpr std::chrono::minutes kRevisionStep{5};
constexpr std::chrono::milliseconds kStopPollInterval{100};

bool AllDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// A Go duration: decimal numbers with units h, m, s, ms, us, ns.
Result<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {{"ns", 1e-6}, {"us", 1e-3}, {"ms", 1.0},
                                                          {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6}};
  auto bad = [&] {
    return Status::InvalidArgument("invalid auto-compaction-retention \"" + text + "\"");
  };
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.'))
      ++j;
    if (j == i) return bad();
    const double number = std::stod(text.substr(i, j - i));
    bool matched = false;
    for (const auto& [unit, ms] : kUnits) {
      const std::string u(unit);
      if (text.compare(j, u.size(), u) == 0 &&
          !(u == "m" && j + 1 < text.size() && text[j + 1] == 's')) {
        total_ms += number * ms;
        j += u.size();
        matched = true;
        break;
      }
    }
    if (!matched) return bad();
    i = j;
  }
  if (text.empty()) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

}  // namespace

Result<AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                  const std::string& retention) {
  AutoCompactionOptions options;
  if (mode == "periodic") {
    options.mode = AutoCompactionOptions::Mode::kPeriodic;
    if (AllDigits(retention)) {
      options.period = std::chrono::hours(std::stoll(retention));
    } else {
      auto period = ParseDuration(retention);
      if (!period.ok()) return period.status();
      options.period = *period;
    }
  } else if (mode == "revision") {
    options.mode = AutoCompactionOptions::Mode::kRevision;
    if (!AllDigits(retention)) {
      return Status::InvalidArgument("invalid auto-compaction-retention \"" + retention +
                                     "\" for mode revision: a whole number of revisions");
    }
    options.revisions = std::stoll(retention);
  } else {
    return Status::InvalidArgument("unknown auto-compaction-mode \"" + mode +
                                   "\" (periodic or revision)");
  }
  return options;
}

CompactionSchedule::CompactionSchedule(const AutoCompactionOptions& options, Clock::TimePoint start,
                                       int64_t start_revision)
    : options_(options), last_done_(start) {
  if (options_.mode == AutoCompactionOptions::Mode::kRevision) {
    step_ = kRevisionStep;
    return;
  }
  interval_ = std::min<Clock::TimePoint::duration>(options_.period, kMaxPeriodicInterval);
  step_ = std::max<Clock::TimePoint::duration>(interval_ / kStepsPerInterval,
                                               Clock::TimePoint::duration(1));
  wait_ = options_.period;
  // The samples cover one retention period: the oldest is the revision of
  // about `period` ago.
  samples_kept_ = static_cast<size_t>(options_.period / step_) + 1;
  samples_.push_back(start_revision);
}

int64_t CompactionSchedule::Step(Clock::TimePoint now, int64_t current_revision, bool leader) {
  if (options_.mode == AutoCompactionOptions::Mode::kRevision) {
    const int64_t target = current_revision - options_.revisions;
    if (!leader || target <= 0 || target == last_compacted_) return 0;
    return target;
  }
  samples_.push_back(current_revision);
  if (samples_.size() > samples_kept_) samples_.pop_front();
  if (!leader || now - last_done_ < wait_) return 0;
  return samples_.front();
}

void CompactionSchedule::Done(const Status& status, Clock::TimePoint now, int64_t revision) {
  if (!status.ok() && status.code() != Code::kCompacted) return;
  last_compacted_ = revision;
  last_done_ = now;
  wait_ = interval_;
}

AutoCompactor::AutoCompactor(const AutoCompactionOptions& options, Clock* clock,
                             std::function<int64_t()> current_revision,
                             std::function<bool()> is_leader, CompactFn compact)
    : clock_(clock),
      current_revision_(std::move(current_revision)),
      is_leader_(std::move(is_leader)),
      compact_(std::move(compact)),
      schedule_(options, clock->Now(), current_revision_()) {}

AutoCompactor::~AutoCompactor() { Stop(); }

void AutoCompactor::Start() {
  thread_ = std::thread([this] { Run(); });
}

void AutoCompactor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AutoCompactor::WaitForStop(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  return stop_cv_.wait_for(lock, wait, [this] { return stopping_; });
}

std::optional<Status> AutoCompactor::CompactAndWait(int64_t revision) {
  // Shared with the callback, which may outlive this object.
  struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> status;  // guarded by mu
  };
  auto outcome = std::make_shared<Outcome>();
  compact_(revision, [outcome](const Status& st) {
    {
      std::lock_guard<std::mutex> lock(outcome->mu);
      outcome->status = st;
    }
    outcome->cv.notify_all();
  });
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(outcome->mu);
      if (outcome->cv.wait_for(lock, kStopPollInterval,
                               [&] { return outcome->status.has_value(); })) {
        return outcome->status;
      }
    }
    if (WaitForStop(std::chrono::milliseconds(0))) return std::nullopt;
  }
}

void AutoCompactor::Run() {
  Clock::TimePoint next_step = clock_->Now() + schedule_.step_interval();
  for (;;) {
    if (WaitForStop(kStopPollInterval)) return;
    const Clock::TimePoint now = clock_->Now();
    if (now < next_step) continue;
    next_step = now + schedule_.step_interval();
    const int64_t revision = schedule_.Step(now, current_revision_(), is_leader_());
    if (revision <= 0) continue;
    const std::optional<Status> outcome = CompactAndWait(revision);
    if (!outcome) return;
    const Status& st = *outcome;
    if (st.ok()) {
      spdlog::info("auto-compaction at revision {} done", revision);
    } else if (st.code() != Code::kCompacted) {
      spdlog::warn("auto-compaction at revision {} failed: {}", revision, st.ToString());
    }
    schedule_.Done(st, clock_->Now(), revision);
  }
}

}  // namespace etcdpp::server
