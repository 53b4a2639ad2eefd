// RttProbe: measures how long a request takes to reach each peer and come
// back, for etcd_network_peer_round_trip_time_seconds{To}. Each probe is a
// RaftPeer.Call of kRttProbeMethod on the connection the transport keeps for
// calls to that peer; the peer's transport answers it itself (no handler, no
// Raft), so the time is the network's and the two gRPC stacks', as etcd's
// probe of its peers' /raft/probing is.
//
// Every peer is probed once per `interval`; a peer whose last probe failed
// (down, not listening yet) is tried again after `retry` instead, so a
// cluster that is starting reports its round trips within a second.
// A failed probe is reported without a time (etcd's histogram records
// successful ones only; its leader stats count the failures).
//
// The first answer from a peer after a start or a failure is not reported:
// its time holds the connection's setup, and a call waits for that setup
// (including gRPC's reconnect backoff, a second or more) rather than fail
// fast. That answer only opens the way; the peer is probed again at once,
// and that round trip is the first reported.
//
// Threads: Start/Stop from the owner's thread; the probe owns one thread
// that sends, and `observe` runs on the transport's gRPC threads. The state
// shared with in-flight calls lives in `Shared` (its mutex guards it), so a
// reply that arrives after Stop finds it alive and is dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace etcdpp::transport {

class PeerNetwork;

// The RaftPeer.Call method a transport answers with an empty body itself.
inline constexpr char kRttProbeMethod[] = "transport/rtt-probe";

struct RttProbeOptions {
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds retry{500};
  // A probe not answered within this is a failure.
  std::chrono::milliseconds timeout{5000};
};

class RttProbe {
 public:
  // The member ids to probe now (self excluded), read before each round.
  using PeerList = std::function<std::vector<uint64_t>()>;
  // One probe of `peer`: its round trip in seconds, or nullopt if it failed.
  using Observe = std::function<void(uint64_t peer, std::optional<double> seconds)>;

  // `network` must outlive the probe's Stop.
  RttProbe(PeerNetwork* network, PeerList peers, Observe observe, RttProbeOptions options = {});
  ~RttProbe();  // Stops.

  RttProbe(const RttProbe&) = delete;
  RttProbe& operator=(const RttProbe&) = delete;

  void Start();
  // Joins the thread; calls still in flight end in the transport (their
  // replies are dropped). Idempotent.
  void Stop();

 private:
  struct Shared;
  void Run();

  PeerNetwork* const network_;
  const PeerList peers_;
  const RttProbeOptions options_;
  const std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace etcdpp::transport
