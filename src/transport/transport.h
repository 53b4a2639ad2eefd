// Transport: Raft message delivery between the members of one cluster, the
// production PeerNetwork (peer_network.h).
//
// The Raft loop hands its outgoing messages to Send, which never blocks: each
// message is appended to its recipient's bounded queue and the call returns.
// One sender thread per peer drains that queue, writing everything queued
// since its last write as ONE MessageBatch on a long-lived stream: between
// plaintext peers a batch stream (batch_stream.h: a TCP connection of
// length-prefixed batches), over TLS, or to a member that does not serve the
// batch stream, a gRPC client stream (RaftPeer.Stream,
// proto/transportpb/transport.proto). A slow or dead peer only fills its own
// queue; when the queue is full further messages to it are dropped and
// counted (Raft retransmits what matters), and the peer is reported
// unreachable.
//
// Inbound, Handler::OnMessage runs for every message received, on one thread
// per inbound stream (the batch stream's own, or gRPC's for RaftPeer.Stream),
// so messages from one peer arrive in the order that peer sent them. The
// peer port of a plaintext member is a PeerListener (peer_listener.h), which
// serves batch streams itself and hands every other connection to the gRPC
// server; over TLS the gRPC server listens itself.
//
// Snapshots travel on their own call (RaftPeer.Snapshot) and connection, so a
// large file never holds up heartbeats: SendSnapshot streams the MsgSnap and
// the file in 1 MiB chunks from a background thread; the receiver writes the
// chunks to a new file under TransportOptions::snapshot_dir, fsyncs it (and the
// directory), checks size and CRC-32C and only then calls
// Handler::OnSnapshot; the sender's `done(true)` means exactly that.
//
// Threads and locks:
//  - Send, AddPeer, RemovePeer, UpdatePeer, TakeUnreachable, PeerActive,
//    ActiveSince, SendSnapshot and the counters may be called from any thread,
//    concurrently. None of them waits for the network.
//  - mu_ guards the peer table, the removed-id set and the unreachable set.
//    Each peer's queue has its own mutex (PeerSender::mu_), always taken after
//    mu_ if both are held, never the other way round.
//  - Handler callbacks run on transport threads with no transport lock held;
//    they must not block for long (enqueue and return) and may call back into
//    the transport (e.g. Send).
//  - Stop cancels every call in flight, joins every thread the transport
//    started and returns; no Handler callback runs after Stop returns. A
//    Handler callback blocked forever would block Stop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "raftpb/raft.pb.h"
#include "transport/peer_network.h"

namespace grpc {
class Server;
}
namespace etcdpp::transportpb {
class MessageBatch;
}
namespace etcdpp::transport {
class PeerCaller;
}

namespace etcdpp::transport {

class PeerListener;
class PeerSender;
class PeerService;
class SnapshotSender;

// Peer TLS (--peer-cert-file ...). With a certificate, the peer server
// serves TLS only and every outgoing channel speaks TLS, presenting the same
// certificate as its client certificate. Outgoing channels read the files
// when they connect, so a rotated certificate is used from the next
// connection; the server re-reads them when they change (within
// kPeerCertificateRefresh, wire.h). --cipher-suites reaches both through
// tls::RestrictGrpcCipherSuites, set once per process.
struct PeerTlsOptions {
  std::string cert_file;
  std::string key_file;
  // Signs the certificates peers present, both ways. Empty with
  // skip_server_verify only.
  std::string trusted_ca_file;
  // Inbound: a peer without a certificate signed by trusted_ca_file fails
  // the handshake.
  bool client_cert_auth = false;
  // Inbound: if not empty, only a certificate with this subject common name
  // is admitted (calls from others fail with PERMISSION_DENIED).
  std::string allowed_common_name;
  // Outgoing: accept any server certificate (--peer-auto-tls, whose
  // certificates are self-signed): encrypted, not authenticated.
  bool skip_server_verify = false;
  // --tls-min-version=TLS1.3, both ways. gRPC's TLS (1.51, Debian 12's)
  // never goes below TLS 1.2 and has no setting to go higher, so only the
  // TLS 1.2 floor is honoured: ValidatePeerTls refuses this rather than
  // quietly accept TLS 1.2 from peers.
  bool require_tls13 = false;

  bool enabled() const { return !cert_file.empty(); }
};

// Whether `tls` can be enforced on the peer port and channels: OK, or
// InvalidArgument saying why not (a minimum above TLS 1.2).
Status ValidatePeerTls(const PeerTlsOptions& tls);

struct TransportOptions {
  PeerTlsOptions tls;
  // Where received snapshot files are written. Must exist when a snapshot
  // arrives; if empty, inbound snapshots are refused.
  std::string snapshot_dir;
  // File system for received snapshots (tests may inject a fault Env).
  Env* env = Env::Default();
  // Messages queued per peer before further ones are dropped.
  size_t max_queued_messages = 4096;
  // A batch holds at most about this many bytes of entry data; the rest of
  // the queue goes in the next write.
  size_t max_batch_bytes = 8 << 20;
  // Reconnect backoff after a failed stream: doubles from min to max.
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
  // Snapshot file chunk size on the wire.
  size_t snapshot_chunk_bytes = 1 << 20;
  // A snapshot transfer that has not finished after
  //   snapshot_base_timeout + file size / snapshot_min_bytes_per_second
  // fails (done(false)), so Raft never waits forever on a stuck transfer.
  std::chrono::milliseconds snapshot_base_timeout{30'000};
  uint64_t snapshot_min_bytes_per_second = 1 << 20;
  // Without TLS: serve the batch stream on the peer port and send over it to
  // peers that serve it. False: gRPC's Stream only, both ways (what members
  // before the batch stream did; tests use it to stand for one).
  bool batch_stream = true;
};

class Transport final : public PeerNetwork {
 public:
  // `handler` must outlive the transport.
  Transport(uint64_t self_id, uint64_t cluster_id, Handler* handler, TransportOptions options = {});
  // Stops if still running.
  ~Transport() override;

  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Serves RaftPeer on every address: "http://host:port" peer URLs or bare
  // "host:port"; port 0 picks a free port (see listen_ports). Call at most
  // once, before or after adding peers. Fails with kUnavailable when an
  // address cannot be bound, kInvalidArgument when it cannot be parsed.
  Status Start(const std::vector<std::string>& listen_addresses) override;
  // The ports Start bound, in the order of its addresses.
  std::vector<int> listen_ports() const override;

  // Starts sending to member `id` at `urls` (peer URLs or host:port; the
  // sender tries them in turn when one fails). Replaces an existing peer's
  // URLs (same as UpdatePeer). Adding a removed id is ignored: ids are never
  // reused in a cluster. Adding self is ignored.
  void AddPeer(uint64_t id, std::vector<std::string> urls) override;
  // Stops sending to `id`, drops what is queued for it, and from now on
  // refuses its inbound calls and drops messages it sent.
  void RemovePeer(uint64_t id) override;
  // Switches `id` to new URLs: the current stream is closed and reopened on
  // the first new URL. Unknown ids are ignored.
  void UpdatePeer(uint64_t id, std::vector<std::string> urls) override;

  // Queues every message for its recipient (m.to()) and returns at once.
  // Messages to unknown peers or to self are dropped; when a peer's queue is
  // full the message is dropped and the peer reported unreachable. Per
  // recipient, messages go out in the order given (and across calls, in
  // call order).
  void Send(std::vector<raftpb::Message> messages) override;

  // Streams `msg` (a MsgSnap; msg.to() is the recipient) and the file at
  // `data_file_path` to the peer on a background thread, then calls
  // done(ok) on that thread: ok means the peer has stored the whole file and
  // handed it to its Handler. done(false) if the peer is unknown, the file
  // cannot be read, the call fails or the transport stops first. `done` is
  // always called exactly once, never on the calling thread (unless the
  // transport is already stopped: then done(false) at once). `done` may call
  // into the transport, except Stop. The peer's URL is taken at call time.
  void SendSnapshot(raftpb::Message msg, std::string data_file_path,
                    std::function<void(bool ok)> done) override;

  // Sends one request to peer `to` (RaftPeer.Call, answered by its
  // Handler::OnCall) and calls done(reply body) or done(error) exactly
  // once, on a gRPC thread, or at once if `to` is unknown or the transport
  // stopped. kUnavailable when the call fails on the wire (including after
  // `timeout`), else the peer handler's error. Never blocks.
  void Call(uint64_t to, const std::string& method, std::string body,
            std::chrono::milliseconds timeout,
            std::function<void(Result<std::string>)> done) override;

  // The peers whose messages were lost (stream failure, failed connect,
  // full queue) since the last call, each once, ascending. The server
  // passes each to RawNode::ReportUnreachable.
  std::vector<uint64_t> TakeUnreachable() override;

  // Whether a stream to `id` is currently established, and since when. A
  // stream that broke while idle is noticed at the next write or keepalive.
  bool PeerActive(uint64_t id) const;
  std::optional<std::chrono::steady_clock::time_point> ActiveSince(uint64_t id) const override;

  // Messages dropped since construction (full queues, failed streams,
  // unknown recipients).
  uint64_t dropped_messages() const { return dropped_->load(std::memory_order_relaxed); }

  // Cancels all calls, joins all threads; queued messages are dropped.
  // Idempotent; bounded time (no network waits).
  void Stop() override;

  uint64_t self_id() const { return self_id_; }
  uint64_t cluster_id() const { return cluster_id_; }

 private:
  friend class PeerService;

  // Inbound side, called by PeerService and the PeerListener.
  // OK if a call from `from` for `to` in `cluster_id` may proceed.
  Status CheckInbound(uint64_t from, uint64_t cluster_id, uint64_t to) const;
  // Hands the batch's messages for this member to the handler. The caller
  // checked that the batch comes from its stream's admitted peer.
  void DeliverInbound(transportpb::MessageBatch& batch);
  // Serves one batch stream (batch_stream.h) on `fd` until it ends.
  void ServeBatchStream(int fd);
  bool IsRemoved(uint64_t id) const;
  void MarkUnreachable(uint64_t id);
  // Destroys finished snapshot senders. Requires mu_.
  void ReapSnapshotSenders();

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  Handler* const handler_;
  const TransportOptions options_;
  // Shared with the sender threads, which may count drops after a peer is
  // removed.
  const std::shared_ptr<std::atomic<uint64_t>> dropped_;

  mutable std::mutex mu_;
  bool stopped_ = false;                                           // Guarded by mu_.
  std::map<uint64_t, std::shared_ptr<PeerSender>> peers_;          // Guarded by mu_.
  std::vector<std::shared_ptr<PeerSender>> retired_;               // Guarded by mu_.
  std::vector<std::unique_ptr<SnapshotSender>> snapshot_senders_;  // Guarded by mu_.
  std::set<uint64_t> removed_;                                     // Guarded by mu_.
  std::set<uint64_t> unreachable_;                                 // Guarded by mu_.

  // Set by Start, torn down by Stop (never concurrently with each other).
  std::unique_ptr<PeerService> service_;
  std::unique_ptr<grpc::Server> server_;
  // The peer port when plaintext with batch_stream (else the server listens).
  std::unique_ptr<PeerListener> listener_;
  std::vector<int> listen_ports_;
  // Outgoing Calls; stopped by Stop.
  const std::unique_ptr<PeerCaller> caller_;
};

// How a member refuses calls from a member removed from the cluster.
std::string RemovedMemberMessage(uint64_t id);

// Asks the members at `peer_urls`, in turn, for their cluster id and
// membership; the first answer wins. kUnavailable if none answers within
// `timeout` each.
Result<PeerMembership> FetchMembership(const std::vector<std::string>& peer_urls,
                                       std::chrono::milliseconds timeout,
                                       const PeerTlsOptions& tls = {});

// The production PeerNetworkFactory: one Transport per member (the peer TLS
// options and the batch stream choice are everyone's), FetchMembership over
// RaftPeer.Members.
class GrpcPeerNetworkFactory final : public PeerNetworkFactory {
 public:
  explicit GrpcPeerNetworkFactory(PeerTlsOptions tls, bool batch_stream = true)
      : tls_(std::move(tls)), batch_stream_(batch_stream) {}
  std::unique_ptr<PeerNetwork> Create(uint64_t self_id, uint64_t cluster_id, Handler* handler,
                                      const std::string& snapshot_dir) override;
  Result<PeerMembership> FetchMembership(const std::vector<std::string>& peer_urls,
                                         std::chrono::milliseconds timeout) override;

 private:
  const PeerTlsOptions tls_;
  const bool batch_stream_;
};

// "host:port" from "http://host:port" or "https://host:port" (also accepts
// "host:port" and a trailing '/'). Whether TLS is spoken is PeerTlsOptions'
// business, not the URL's.
Result<std::string> PeerUrlToAddress(const std::string& url);

}  // namespace etcdpp::transport
