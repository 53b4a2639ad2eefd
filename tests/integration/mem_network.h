// MemNetwork: a whole cluster's peer network inside one process, with no
// sockets and no gRPC, so that every thread a cluster test runs is one
// ThreadSanitizer instruments. Members get their endpoint from it through
// ServerOptions::peer_network (it is a transport::PeerNetworkFactory).
//
// Delivery. Each member's endpoint owns one delivery thread and a FIFO of
// tasks; everything addressed to the member (Raft messages, snapshots, peer
// calls, replies to its own calls, SendSnapshot's `done`) is run there, never
// on the sender's thread, so messages cross threads as they do over gRPC and
// arrive per sender in send order. A member receives only once it has
// called Start (it "listens"), until Stop.
//
// Faults. Links are cut and healed per pair of members, in both directions
// (Cut, Heal, Isolate, HealAll). A cut link loses what is sent over it and
// what was still queued for delivery over it: the sender's next Send marks
// the peer unreachable, calls fail with kUnavailable and snapshots with
// done(false). Partitions are by member id, so they also hold for a member
// that restarts or joins later.
//
// Snapshots are handed over as the gRPC transport does: the file is copied
// into the receiver's snapshot directory under a new name and the receiver's
// Handler::OnSnapshot gets that path; then the sender's done(true).
//
// Not modelled: Call timeouts (a request or reply that is lost fails at
// once with kUnavailable, and a member's handler always answers), message
// size limits and queue overflow.
//
// Threads and locks: every method is thread-safe. mu_ guards all of the
// network's state, endpoints' included; a delivery queue's own mutex is
// taken after mu_, never before. No Handler runs with either held.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "transport/peer_network.h"

namespace etcdpp::testing {

class MemNetwork final : public transport::PeerNetworkFactory {
 public:
  MemNetwork() = default;
  // Every endpoint it created must be stopped first.
  ~MemNetwork() override;
  MemNetwork(const MemNetwork&) = delete;
  MemNetwork& operator=(const MemNetwork&) = delete;

  std::unique_ptr<transport::PeerNetwork> Create(uint64_t self_id, uint64_t cluster_id,
                                                 transport::Handler* handler,
                                                 const std::string& snapshot_dir) override;
  // Asks the listening member at the first of `peer_urls` that has one, on
  // that member's delivery thread.
  Result<transport::PeerMembership> FetchMembership(const std::vector<std::string>& peer_urls,
                                                    std::chrono::milliseconds timeout) override;

  // Loses everything between `a` and `b` from now on, both ways.
  void Cut(uint64_t a, uint64_t b);
  void Heal(uint64_t a, uint64_t b);
  // Cuts `id` from every other member, present or future, until healed.
  void Isolate(uint64_t id);
  // Heals every cut and isolation.
  void HealAll();

  // Snapshots handed to a receiver's Handler so far.
  uint64_t snapshots_delivered() const;
  // Raft messages handed to a receiver's Handler so far.
  uint64_t messages_delivered() const;

 private:
  class DeliveryQueue;
  class Endpoint;
  struct Member;
  struct Outstanding;

  // Whether `a` and `b` reach each other now. Requires mu_.
  bool LinkedLocked(uint64_t a, uint64_t b) const;
  // The listening, running member `id`, or null. Requires mu_.
  std::shared_ptr<Member> ListeningLocked(uint64_t id) const;
  // Runs `run` on `to`'s delivery thread, or `abandon` on the thread that
  // stops `to` first. `to` must be registered. Requires mu_.
  void PostLocked(Member& to, std::function<void()> run, std::function<void()> abandon = {});
  // Ends a Call or SendSnapshot of `caller` with `reply`: its `done` runs on
  // the caller's delivery thread, once. A reply over a cut link to `callee`
  // (0: none) is lost, kUnavailable instead. FinishLocked requires mu_.
  void FinishLocked(const std::shared_ptr<Member>& caller, uint64_t callee,
                    const std::shared_ptr<Outstanding>& call, Result<std::string> reply);
  void Finish(const std::shared_ptr<Member>& caller, uint64_t callee,
              const std::shared_ptr<Outstanding>& call, Result<std::string> reply);
  // On the callee's / receiver's delivery thread.
  void ServeCall(const std::shared_ptr<Member>& caller, Member* callee,
                 const std::shared_ptr<Outstanding>& call, const std::string& method,
                 const std::string& body);
  void DeliverSnapshot(const std::shared_ptr<Member>& caller, Member* receiver,
                       const std::shared_ptr<Outstanding>& call, raftpb::Message msg,
                       const std::string& data_file_path);

  mutable std::mutex mu_;
  // Guarded by mu_. Members by id; an id is bound to the endpoint that was
  // created last for it (a restarted member replaces its stopped self).
  std::map<uint64_t, std::shared_ptr<Member>> members_;
  std::set<std::pair<uint64_t, uint64_t>> cuts_;  // (smaller id, larger id)
  std::set<uint64_t> isolated_;
  // When a link last came back; a link's ActiveSince is never earlier.
  std::chrono::steady_clock::time_point last_heal_{};
  uint64_t snapshots_delivered_ = 0;
  uint64_t messages_delivered_ = 0;
  uint64_t next_snapshot_file_ = 0;
};

}  // namespace etcdpp::testing
