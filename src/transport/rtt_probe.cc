#include "transport/rtt_probe.h"

#include <map>
#include <set>
#include <string>

#include "transport/peer_network.h"

namespace etcdpp::transport {

struct RttProbe::Shared {
  explicit Shared(Observe observe_fn) : observe(std::move(observe_fn)) {}

  const Observe observe;
  std::mutex mu;
  std::condition_variable wake;
  bool stopped = false;          // guarded by mu
  std::set<uint64_t> in_flight;  // guarded by mu: at most one probe per peer
  // Peers whose probe failed since the probe thread last looked: it
  // schedules their retry.
  std::set<uint64_t> failed;  // guarded by mu
  // Peers whose last probe was answered: their connection is set up, so the
  // next answer's time is a round trip.
  std::set<uint64_t> connected;  // guarded by mu
  // Peers that just connected: the probe thread probes them again at once.
  std::set<uint64_t> reprobe;  // guarded by mu
};

RttProbe::RttProbe(PeerNetwork* network, PeerList peers, Observe observe, RttProbeOptions options)
    : network_(network),
      peers_(std::move(peers)),
      options_(options),
      shared_(std::make_shared<Shared>(std::move(observe))) {}

RttProbe::~RttProbe() { Stop(); }

void RttProbe::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RttProbe::Stop() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stopped = true;
  }
  shared_->wake.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RttProbe::Run() {
  using Clock = std::chrono::steady_clock;
  std::map<uint64_t, Clock::time_point> next_probe;  // this thread's
  std::unique_lock<std::mutex> lock(shared_->mu);
  while (!shared_->stopped) {
    lock.unlock();
    const std::vector<uint64_t> peers = peers_();
    lock.lock();
    const Clock::time_point now = Clock::now();
    for (uint64_t peer : shared_->failed) next_probe[peer] = now + options_.retry;
    shared_->failed.clear();
    for (uint64_t peer : shared_->reprobe) next_probe[peer] = now;
    shared_->reprobe.clear();
    Clock::time_point wake_at = now + options_.interval;
    std::map<uint64_t, Clock::time_point> kept;  // removed members drop out
    std::vector<uint64_t> due;
    for (uint64_t peer : peers) {
      auto it = next_probe.find(peer);
      Clock::time_point at = it == next_probe.end() ? now : it->second;
      if (at <= now) {
        const bool sent = shared_->in_flight.insert(peer).second;
        if (sent) due.push_back(peer);
        // Still out: look again soon rather than stack a second probe.
        at = now + (sent ? options_.interval : options_.retry);
      }
      kept[peer] = at;
      wake_at = std::min(wake_at, at);
    }
    next_probe = std::move(kept);
    lock.unlock();
    for (uint64_t peer : due) {
      const Clock::time_point sent = Clock::now();
      std::shared_ptr<Shared> shared = shared_;
      network_->Call(
          peer, kRttProbeMethod, std::string(), options_.timeout,
          [shared, peer, sent](Result<std::string> reply) {
            const double seconds = std::chrono::duration<double>(Clock::now() - sent).count();
            {
              std::lock_guard<std::mutex> guard(shared->mu);
              shared->in_flight.erase(peer);
              if (shared->stopped) return;
              if (!reply.ok()) {
                shared->connected.erase(peer);
                shared->failed.insert(peer);
                shared->wake.notify_all();
              } else if (shared->connected.insert(peer).second) {
                shared->reprobe.insert(peer);
                shared->wake.notify_all();
                return;
              }
            }
            shared->observe(peer, reply.ok() ? std::optional<double>(seconds) : std::nullopt);
          });
    }
    lock.lock();
    shared_->wake.wait_until(lock, wake_at, [this] {
      return shared_->stopped || !shared_->failed.empty() || !shared_->reprobe.empty();
    });
  }
}

}  // namespace etcdpp::transport
