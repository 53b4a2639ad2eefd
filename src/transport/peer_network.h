// PeerNetwork: what a member needs from the network between the members of
// its cluster, and nothing more. The server depends on this interface only;
// transport::Transport (transport.h, gRPC) is the production implementation,
// and tests may inject another one (tests/integration/mem_network.h keeps a
// whole cluster in one process, without sockets, so ThreadSanitizer sees
// every thread involved).
//
// An implementation's contract, which the server relies on:
//  - Every method may be called from any thread, concurrently, and none of
//    them waits for the network (Start and Stop excepted).
//  - The Handler (below) is called on the network's own threads, never on
//    the thread that called Send, SendSnapshot or Call; no Handler callback
//    runs after Stop returns.
//  - Per recipient, messages arrive in the order they were sent. Any message
//    may be lost; Raft retransmits.
//  - Every `done` given to SendSnapshot or Call runs exactly once, also when
//    the peer is unknown, the link fails or the network stops first.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "raftpb/raft.pb.h"

namespace etcdpp::transport {

// Receives what peers send. Implemented by the server, which enqueues for its
// Raft loop. Called on the network's threads (see the file comment).
class Handler {
 public:
  virtual ~Handler() = default;
  // A Raft message addressed to this member (m.to() == self id).
  virtual void OnMessage(raftpb::Message m) = 0;
  // A complete, fsynced snapshot: `m` is the MsgSnap (its snapshot metadata;
  // snapshot.data is whatever the sender put there, normally empty) and
  // `data_file_path` the received file in the member's snapshot directory.
  // The handler owns the file from now on (rename or delete it).
  virtual void OnSnapshot(raftpb::Message m, std::string data_file_path) = 0;
  // A peer's PeerNetwork::Call. `done` must be called exactly once, from any
  // thread, with the reply body or an error; the default refuses the call.
  using CallDone = std::function<void(Result<std::string>)>;
  virtual void OnCall(uint64_t /*from*/, const std::string& method, const std::string& /*body*/,
                      CallDone done) {
    done(Status::Unimplemented("no handler for peer call " + method));
  }
  // The applied membership, encoded by the server, for a joining member's
  // FetchMembership.
  virtual std::string MembershipForPeers() { return {}; }
  // A peer refused this member as removed from the cluster (it may never
  // learn that through Raft). Must not block.
  virtual void OnRemovedFromCluster() {}
};

class PeerNetwork {
 public:
  virtual ~PeerNetwork() = default;

  // Accepts peers' traffic on every address (peer URLs or host:port; port 0
  // picks a free one). Called at most once, before or after adding peers.
  virtual Status Start(const std::vector<std::string>& listen_addresses) = 0;
  // The ports Start bound, in the order of its addresses.
  virtual std::vector<int> listen_ports() const = 0;

  // Starts sending to member `id` at `urls`; replaces the URLs of a known
  // peer. A removed id and self are ignored (ids are never reused).
  virtual void AddPeer(uint64_t id, std::vector<std::string> urls) = 0;
  // Stops sending to `id`, drops what is queued for it, and from now on
  // drops what it sends and refuses its calls.
  virtual void RemovePeer(uint64_t id) = 0;
  // Moves `id` to new URLs. Unknown ids are ignored.
  virtual void UpdatePeer(uint64_t id, std::vector<std::string> urls) = 0;

  // Queues every message for its recipient (m.to()) and returns at once;
  // messages to unknown peers or self are dropped.
  virtual void Send(std::vector<raftpb::Message> messages) = 0;

  // Hands `msg` (a MsgSnap; msg.to() is the recipient) and the file at
  // `data_file_path` to the peer, then calls done(ok), never on the calling
  // thread (unless the network is stopped: then done(false) at once). ok
  // means the peer stored the whole file and gave it to its Handler.
  virtual void SendSnapshot(raftpb::Message msg, std::string data_file_path,
                            std::function<void(bool ok)> done) = 0;

  // One request to peer `to`, answered by its Handler::OnCall: done(reply)
  // or done(error), kUnavailable when the request or its reply is lost
  // (including after `timeout`). Never blocks.
  virtual void Call(uint64_t to, const std::string& method, std::string body,
                    std::chrono::milliseconds timeout,
                    std::function<void(Result<std::string>)> done) = 0;

  // The peers messages to which were lost since the last call, each once,
  // ascending; the server reports them to Raft as unreachable.
  virtual std::vector<uint64_t> TakeUnreachable() = 0;

  // Since when the link to `id` has been up without a break; nullopt while
  // it is down. The strict reconfiguration check reads it.
  virtual std::optional<std::chrono::steady_clock::time_point> ActiveSince(uint64_t id) const = 0;

  // Ends every transfer and call, joins every thread the network started for
  // this member; queued messages are dropped. Idempotent.
  virtual void Stop() = 0;
};

// What a member asked for its cluster answered (FetchMembership).
struct PeerMembership {
  uint64_t cluster_id = 0;
  std::string membership;  // the server's encoding
};

// How a server gets its PeerNetwork, and how a member joining a running
// cluster asks the members at their peer URLs who is in it. Shared by every
// member built from the same ServerOptions; thread-safe.
class PeerNetworkFactory {
 public:
  virtual ~PeerNetworkFactory() = default;
  // The network endpoint of member `self_id`. `handler` must outlive it;
  // received snapshot files are written to `snapshot_dir`.
  virtual std::unique_ptr<PeerNetwork> Create(uint64_t self_id, uint64_t cluster_id,
                                              Handler* handler,
                                              const std::string& snapshot_dir) = 0;
  // The first answer of the members at `peer_urls`, asked in turn;
  // kUnavailable when none answers within `timeout` each.
  virtual Result<PeerMembership> FetchMembership(const std::vector<std::string>& peer_urls,
                                                 std::chrono::milliseconds timeout) = 0;
};

}  // namespace etcdpp::transport
