// RttProbe against a network whose calls the test answers by hand: which
// answers become round-trip observations, and when peers are probed again.
#include "transport/rtt_probe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "transport/peer_network.h"

namespace etcdpp::transport {
namespace {

using namespace std::chrono_literals;

// Holds every Call until the test answers it.
class HeldCallNetwork : public PeerNetwork {
 public:
  struct HeldCall {
    uint64_t to = 0;
    std::function<void(Result<std::string>)> done;
  };

  Status Start(const std::vector<std::string>&) override { return Status::OK(); }
  std::vector<int> listen_ports() const override { return {}; }
  void AddPeer(uint64_t, std::vector<std::string>) override {}
  void RemovePeer(uint64_t) override {}
  void UpdatePeer(uint64_t, std::vector<std::string>) override {}
  void Send(std::vector<raftpb::Message>) override {}
  void SendSnapshot(raftpb::Message, std::string, std::function<void(bool)> done) override {
    done(false);
  }
  void Call(uint64_t to, const std::string& method, std::string, std::chrono::milliseconds,
            std::function<void(Result<std::string>)> done) override {
    EXPECT_EQ(method, kRttProbeMethod);
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(HeldCall{to, std::move(done)});
    cv_.notify_all();
  }
  std::vector<uint64_t> TakeUnreachable() override { return {}; }
  std::optional<std::chrono::steady_clock::time_point> ActiveSince(uint64_t) const override {
    return std::nullopt;
  }
  void Stop() override {}

  // The oldest call not answered yet; fails the test if none comes in time.
  std::optional<HeldCall> NextCall(std::chrono::milliseconds wait = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, wait, [this] { return !held_.empty(); })) return std::nullopt;
    HeldCall call = std::move(held_.front());
    held_.pop_front();
    return call;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HeldCall> held_;
};

// What the probe reported, in order.
class Observations {
 public:
  void Add(uint64_t peer, std::optional<double> seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back({peer, seconds});
  }
  std::vector<std::pair<uint64_t, std::optional<double>>> Seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<uint64_t, std::optional<double>>> seen_;
};

constexpr uint64_t kPeer = 7;

TEST(RttProbeTest, AnAnswerThatSetUpTheConnectionIsNotARoundTrip) {
  HeldCallNetwork network;
  Observations observations;
  RttProbeOptions options;
  options.interval = 50ms;
  options.retry = 20ms;
  RttProbe probe(
      &network, [] { return std::vector<uint64_t>{kPeer}; },
      [&](uint64_t peer, std::optional<double> seconds) { observations.Add(peer, seconds); },
      options);
  probe.Start();

  // The first probe waits for the connection (here: 300 ms before its
  // answer). It is not reported, and the peer is probed again at once,
  // well before the interval.
  auto first = network.NextCall();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->to, kPeer);
  std::this_thread::sleep_for(300ms);
  first->done(std::string());
  EXPECT_TRUE(observations.Seen().empty());
  auto second = network.NextCall(40ms);
  ASSERT_TRUE(second) << "a peer that just connected is probed again at once";
  second->done(std::string());
  auto seen = observations.Seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, kPeer);
  ASSERT_TRUE(seen[0].second);
  EXPECT_LT(*seen[0].second, 0.3) << "the reported time includes the connection's setup";

  // Probes go on every interval; a failure is reported without a time...
  auto third = network.NextCall();
  ASSERT_TRUE(third);
  third->done(Status::Unavailable("connection refused"));
  seen = observations.Seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[1].second);

  // ...and the answer after it sets the connection up again: not reported,
  // the probe after it is.
  auto fourth = network.NextCall();
  ASSERT_TRUE(fourth);
  std::this_thread::sleep_for(300ms);
  fourth->done(std::string());
  EXPECT_EQ(observations.Seen().size(), 2u);
  auto fifth = network.NextCall(40ms);
  ASSERT_TRUE(fifth);
  fifth->done(std::string());
  seen = observations.Seen();
  ASSERT_EQ(seen.size(), 3u);
  ASSERT_TRUE(seen[2].second);
  EXPECT_LT(*seen[2].second, 0.3);

  probe.Stop();
  // Answers after Stop are dropped.
  while (auto late = network.NextCall(100ms)) late->done(std::string());
  EXPECT_EQ(observations.Seen().size(), 3u);
}

}  // namespace
}  // namespace etcdpp::transport
