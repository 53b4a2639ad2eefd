// check perf: etcdctl 3.4's write benchmark with a pass/fail verdict.
//
// For 60 seconds, `clients` connections put 1 KiB values under random
// 256-byte keys below --prefix, all together paced to `rate` puts per
// second. The run passes when the throughput reaches 90% of the rate, the
// slowest put took at most 0.5 s and the latencies' standard deviation is
// at most 0.1 s. The keys are deleted afterwards. The verdict lines and the
// exit code are what scripts read; they follow etcdctl's exactly.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/kv_ops.h"

namespace etcdpp::ctl {
namespace {

using Clock = std::chrono::steady_clock;

struct PerfLoad {
  int rate;  // puts per second, for all clients together
  int clients;
};

// etcdctl's workload models, by every name it accepts.
const PerfLoad* FindPerfLoad(const std::string& name) {
  static const std::map<std::string, PerfLoad> kLoads = {
      {"s", {150, 50}},   {"small", {150, 50}},   {"m", {1000, 200}},    {"medium", {1000, 200}},
      {"l", {8000, 500}}, {"large", {8000, 500}}, {"xl", {15000, 1000}}, {"xLarge", {15000, 1000}},
  };
  auto it = kLoads.find(name);
  return it == kLoads.end() ? nullptr : &it->second;
}

// Every load runs this long. ETCDPPCTL_CHECK_PERF_SECONDS (whole seconds)
// shortens it for tests.
constexpr int kDefaultSeconds = 60;

// Hands out send times `interval` apart. A caller that comes late sends at
// once, but missed slots are not made up (one token of burst, like Go's
// rate.Limiter with burst 1). Thread-safe; mu_ guards next_.
class Pacer {
 public:
  Pacer(Clock::duration interval, Clock::time_point end) : interval_(interval), end_(end) {}
  // Waits for the caller's slot; false once the run's time is over.
  bool Wait() {
    Clock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot = std::max(next_, Clock::now());
      if (slot >= end_) return false;
      next_ = slot + interval_;
    }
    std::this_thread::sleep_until(slot);
    return true;
  }

 private:
  const Clock::duration interval_;
  const Clock::time_point end_;
  std::mutex mu_;
  Clock::time_point next_{};
};

// The outcome of every put. Thread-safe; mu_ guards all fields.
class PerfResults {
 public:
  void Add(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    latencies_.push_back(seconds);
  }
  void AddError(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    ++errors_[text];
  }
  // Only once every worker has ended.
  const std::vector<double>& latencies() const { return latencies_; }
  const std::map<std::string, int>& errors() const { return errors_; }

 private:
  std::mutex mu_;
  std::vector<double> latencies_;
  std::map<std::string, int> errors_;
};

// "00m59s", as etcdctl's progress bar shows the time left.
std::string MinutesSeconds(int64_t seconds) {
  return fmt::format("{:02d}m{:02d}s", seconds / 60, seconds % 60);
}

// Go's time.Duration text for whole seconds: "1m0s", "5s".
std::string GoWholeSeconds(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  return fmt::format("{}m{}s", seconds / 60, seconds % 60);
}

class CheckPerfCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddString("load", 0, &load_, "s",
                 "workload: s (small, 150 puts/s), m (medium, 1000), l (large, 8000) or xl "
                 "(xLarge, 15000)");
    f->AddString("prefix", 0, &prefix_, "/etcdctl-check-perf/",
                 "write the test keys under this prefix, which must be empty");
    f->AddBool("auto-compact", 0, &auto_compact_, false,
               "afterwards, compact the history up to the last revision");
    f->AddBool("auto-defrag", 0, &auto_defrag_, false,
               "afterwards, defragment every endpoint's database");
  }

  int Run(Invocation& inv) override {
    const PerfLoad* load = FindPerfLoad(load_);
    if (!load) return inv.Fail(CtlStatus::Fail(kExitBadFeature, "unknown load option " + load_));
    if (auto rc = inv.PrepareClient()) return *rc;
    const int seconds = RunSeconds(inv);

    etcdserverpb::RangeRequest probe;
    probe.set_key(prefix_);
    probe.set_range_end(PrefixRangeEnd(prefix_));
    probe.set_limit(1);
    etcdserverpb::RangeResponse probed;
    grpc::Status st = inv.client().Range(probe, &probed);
    if (!st.ok()) return inv.RpcFailure(st);
    if (probed.kvs_size() > 0) {
      return inv.Fail(CtlStatus::Fail(
          kExitInvalidInput, fmt::format("prefix {} has keys. Delete with etcdctl del --prefix {} "
                                         "first",
                                         GoQuote(prefix_), prefix_)));
    }

    PerfResults results;
    const Clock::time_point start = Clock::now();
    Pacer pacer(std::chrono::nanoseconds(1'000'000'000LL / load->rate),
                start + std::chrono::seconds(seconds));
    std::atomic<bool> done{false};
    std::thread progress([&] { ShowProgress(inv, start, seconds, done); });
    std::vector<std::thread> workers;
    workers.reserve(load->clients);
    for (int i = 0; i < load->clients; ++i) {
      workers.emplace_back([&, i] { PutUntilDone(inv.client().options(), i, pacer, results); });
    }
    for (std::thread& worker : workers) worker.join();
    const double total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    done = true;
    progress.join();

    etcdserverpb::DeleteRangeRequest del;
    del.set_key(prefix_);
    del.set_range_end(PrefixRangeEnd(prefix_));
    etcdserverpb::DeleteRangeResponse deleted;
    st = inv.client().DeleteRange(del, &deleted);
    if (!st.ok()) return inv.RpcFailure(st);
    if (auto_compact_) {
      const int64_t rev = deleted.header().revision();
      inv.io().out << "Compacting with revision " << rev << "\n";
      etcdserverpb::CompactionRequest compact;
      compact.set_revision(rev);
      compact.set_physical(true);
      etcdserverpb::CompactionResponse compacted;
      st = inv.client().Compact(compact, &compacted);
      if (!st.ok()) return inv.RpcFailure(st);
      inv.io().out << "Compacted with revision " << rev << "\n";
    }
    if (auto_defrag_) {
      for (const std::string& ep : inv.client().options().endpoints) {
        inv.io().out << "Defragmenting " << GoQuote(ep) << "\n";
        etcdserverpb::DefragmentResponse defragged;
        st = inv.client().DefragmentOn(ep, &defragged);
        if (!st.ok()) return inv.RpcFailure(st);
        inv.io().out << "Defragmented " << GoQuote(ep) << "\n";
      }
    }
    return Verdict(inv, *load, results, total_seconds);
  }

 private:
  int RunSeconds(Invocation& inv) const {
    const std::string name = "ETCDPPCTL_CHECK_PERF_SECONDS=";
    for (const std::string& entry : inv.io().environ) {
      if (entry.rfind(name, 0) != 0) continue;
      long value = std::strtol(entry.c_str() + name.size(), nullptr, 10);
      if (value > 0) return static_cast<int>(value);
    }
    return kDefaultSeconds;
  }

  // One client connection's share of the load: its own Client, because a
  // Client serves one thread.
  void PutUntilDone(ClientOptions options, int worker, Pacer& pacer, PerfResults& results) const {
    Client client(std::move(options));
    std::mt19937_64 random(std::random_device{}() + static_cast<uint64_t>(worker));
    std::uniform_int_distribution<int64_t> key_number(0, INT64_MAX - 1);
    etcdserverpb::PutRequest put;
    put.set_value(std::string(1024, '\0'));
    while (pacer.Wait()) {
      // A random number as a Go varint (zig-zag), zero-padded to 256 bytes.
      std::string key(256, '\0');
      uint64_t zigzag = static_cast<uint64_t>(key_number(random)) << 1;
      size_t at = 0;
      while (zigzag >= 0x80) {
        key[at++] = static_cast<char>((zigzag & 0x7f) | 0x80);
        zigzag >>= 7;
      }
      key[at] = static_cast<char>(zigzag);
      put.set_key(prefix_ + key);
      etcdserverpb::PutResponse resp;
      const Clock::time_point sent = Clock::now();
      grpc::Status st = client.Put(put, &resp);
      if (st.ok()) {
        results.Add(std::chrono::duration<double>(Clock::now() - sent).count());
      } else {
        results.AddError(ErrorText(st));
      }
    }
  }

  // etcdctl's progress bar without the bar: "\r N / total  P% 00mSSs" once a
  // second, ended by the elapsed time and a newline.
  void ShowProgress(Invocation& inv, Clock::time_point start, int seconds,
                    const std::atomic<bool>& done) const {
    for (int elapsed = 0; elapsed < seconds && !done; ++elapsed) {
      inv.io().out << fmt::format("\r {} / {} {:7.2f}%", elapsed, seconds,
                                  100.0 * elapsed / seconds);
      if (elapsed > 0) inv.io().out << " " << MinutesSeconds(seconds - elapsed);
      inv.io().out.flush();
      std::this_thread::sleep_until(start + std::chrono::seconds(elapsed + 1));
    }
    inv.io().out << fmt::format("\r {} / {} {:7.2f}% {}\n", seconds, seconds, 100.0,
                                GoWholeSeconds(seconds));
  }

  int Verdict(Invocation& inv, const PerfLoad& load, const PerfResults& results,
              double total_seconds) const {
    std::ostream& out = inv.io().out;
    bool ok = true;
    if (!results.errors().empty()) {
      out << "FAIL: too many errors\n";
      for (const auto& [text, count] : results.errors()) {
        out << "FAIL: ERROR(" << text << ") -> " << count << "\n";
      }
      ok = false;
    }
    const std::vector<double>& latencies = results.latencies();
    double slowest = 0, mean = 0, variance = 0;
    for (double l : latencies) {
      slowest = std::max(slowest, l);
      mean += l;
    }
    if (!latencies.empty()) mean /= static_cast<double>(latencies.size());
    for (double l : latencies) variance += (l - mean) * (l - mean);
    if (!latencies.empty()) variance /= static_cast<double>(latencies.size());
    const double stddev = std::sqrt(variance);
    const double rps = static_cast<double>(latencies.size()) / total_seconds;
    // etcdctl rounds the throughput up by adding one to its integer part.
    const int64_t shown_rps = static_cast<int64_t>(rps) + 1;
    if (rps / load.rate <= 0.9) {
      out << "FAIL: Throughput too low: " << shown_rps << " writes/s\n";
      ok = false;
    } else {
      out << "PASS: Throughput is " << shown_rps << " writes/s\n";
    }
    if (slowest > 0.5) {
      out << fmt::format("Slowest request took too long: {:f}s\n", slowest);
      ok = false;
    } else {
      out << fmt::format("PASS: Slowest request took {:f}s\n", slowest);
    }
    if (stddev > 0.1) {
      out << fmt::format("Stddev too high: {:f}s\n", stddev);
      ok = false;
    } else {
      out << fmt::format("PASS: Stddev is {:f}s\n", stddev);
    }
    out << (ok ? "PASS\n" : "FAIL\n");
    return ok ? kExitSuccess : kExitError;
  }

  std::string load_, prefix_;
  bool auto_compact_ = false;
  bool auto_defrag_ = false;
};

}  // namespace

std::vector<CommandSpec> CheckCommandSpecs() {
  return {
      {"check perf", "", "put keys at a fixed rate for a minute and judge the latencies",
       "Puts 1 KiB values under random keys below --prefix for 60 seconds, from\n"
       "many connections at once, at the rate --load names, then deletes them.\n"
       "Passes when at least 90% of that rate was reached, no put took longer\n"
       "than 0.5 s and the latencies' standard deviation stayed within 0.1 s.\n"
       "Prints one PASS or FAIL line per criterion, then the verdict; exits 1 on\n"
       "FAIL. Run it against an idle cluster: the load is real.",
       Make<CheckPerfCommand>},
  };
}

}  // namespace etcdpp::ctl
