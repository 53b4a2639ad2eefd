#include "transport/transport.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "base/coding.h"
#include "metrics/member_stats.h"
#include "transport/batch_stream.h"
#include "transport/callback_threads.h"
#include "transport/peer_call.h"
#include "transport/peer_listener.h"
#include "transport/peer_sender.h"
#include "transport/peer_service.h"
#include "transport/snapshot_sender.h"
#include "transport/wire.h"
#include "transportpb/transport.pb.h"

namespace etcdpp::transport {
namespace {

// The addresses of the parseable URLs (the others are logged and skipped).
std::vector<std::string> ToAddresses(uint64_t id, const std::vector<std::string>& urls) {
  std::vector<std::string> addresses;
  for (const auto& url : urls) {
    Result<std::string> a = PeerUrlToAddress(url);
    if (a.ok()) {
      addresses.push_back(std::move(*a));
    } else {
      spdlog::error("transport: ignoring URL {} of peer {:x}: {}", url, id, a.status().message());
    }
  }
  return addresses;
}

}  // namespace

Result<std::string> PeerUrlToAddress(const std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("unsupported peer URL scheme: " + url);
  }
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  if (rest.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return Status::InvalidArgument("peer URL needs host:port: " + url);
  }
  for (char c : rest.substr(colon + 1)) {
    if (c < '0' || c > '9') return Status::InvalidArgument("bad port in peer URL: " + url);
  }
  return std::string(rest);
}

Transport::Transport(uint64_t self_id, uint64_t cluster_id, Handler* handler,
                     TransportOptions options)
    : self_id_(self_id),
      cluster_id_(cluster_id),
      handler_(handler),
      options_(std::move(options)),
      dropped_(std::make_shared<std::atomic<uint64_t>>(0)),
      caller_(std::make_unique<PeerCaller>(self_id, cluster_id, options_.tls)) {
  KeepGrpcCallbackThreads();  // peer calls complete on gRPC's callback pool
}

Transport::~Transport() { Stop(); }

Status Transport::Start(const std::vector<std::string>& listen_addresses) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return Status(Code::kStopped);
    if (server_ != nullptr) return Status::Internal("transport already started");
  }
  std::vector<std::string> addresses;
  for (const auto& url : listen_addresses) {
    Result<std::string> a = PeerUrlToAddress(url);
    if (!a.ok()) return a.status();
    addresses.push_back(std::move(*a));
  }
  auto credentials = PeerServerCredentials(options_.tls);
  if (!credentials.ok()) return credentials.status();
  auto service = std::make_unique<PeerService>(this, handler_, options_);
  // Plaintext with the batch stream: the listener owns the port and hands
  // gRPC its connections, so the server listens on nothing itself.
  const bool own_port = options_.batch_stream && !options_.tls.enabled();
  grpc::ServerBuilder builder;
  ConfigurePeerServer(&builder);
  std::vector<int> ports(addresses.size(), 0);
  if (!own_port) {
    for (size_t i = 0; i < addresses.size(); ++i) {
      builder.AddListeningPort(addresses[i], *credentials, &ports[i]);
    }
  }
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return Status::Unavailable(
        fmt::format("transport: cannot listen on {}", fmt::join(addresses, ", ")));
  }
  std::unique_ptr<PeerListener> listener;
  if (own_port) {
    auto opened =
        PeerListener::Open(addresses, server.get(), [this](int fd) { ServeBatchStream(fd); });
    if (!opened.ok()) {
      server->Shutdown();
      return opened.status();
    }
    listener = std::move(*opened);
    ports = listener->ports();
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i] == 0) {
      server->Shutdown();
      return Status::Unavailable("transport: cannot listen on " + addresses[i]);
    }
  }
  spdlog::info("transport: member {:x} serving peers on {} (bound ports {}{})", self_id_,
               fmt::join(addresses, ", "), fmt::join(ports, ", "),
               own_port ? "; batch stream and gRPC" : "; gRPC");
  service_ = std::move(service);
  server_ = std::move(server);
  listener_ = std::move(listener);
  listen_ports_ = std::move(ports);
  return Status::OK();
}

void Transport::DeliverInbound(transportpb::MessageBatch& batch) {
  for (auto& m : *batch.mutable_messages()) {
    if (m.to() != self_id_) continue;  // Not ours: Raft tolerates the loss.
    if (m.type() == raftpb::MSG_APP) metrics::DefaultMemberStats().AppendReceived(m.ByteSizeLong());
    handler_->OnMessage(std::move(m));
  }
}

void Transport::ServeBatchStream(int fd) {
  // A sender writes its hello at once; a connection that does not is cut.
  SetReceiveTimeout(fd, std::chrono::seconds(10));
  std::string hello(kHelloBytes, '\0');
  Handshake hs;
  if (!ReadFull(fd, hello.data(), hello.size()).ok() || !DecodeHello(hello, &hs)) return;
  const Status admitted = CheckInbound(hs.from, hs.cluster_id, hs.to);
  if (!admitted.ok()) {
    spdlog::warn("transport: refused batch stream from peer {:x}: {}", hs.from, admitted.message());
    std::string reason(admitted.message().substr(0, kMaxReasonBytes));
    std::string reply(5, kRefused);
    PutBE32(reply.data() + 1, static_cast<uint32_t>(reason.size()));
    reply += reason;
    (void)WriteAll(fd, reply.data(), reply.size());
    return;
  }
  if (!WriteAll(fd, &kAccepted, 1).ok()) return;
  // An idle stream waits for its next batch as long as it takes; a peer
  // that vanished is noticed by TCP's keepalive probes.
  SetReceiveTimeout(fd, std::chrono::milliseconds(0));
  EnableKeepalive(fd);
  std::string frame;
  transportpb::MessageBatch batch;
  for (;;) {
    char length[4];
    if (!ReadFull(fd, length, sizeof length).ok()) return;
    const uint32_t n = GetBE32(length);
    if (n > kMaxFrameBytes) {
      spdlog::warn("transport: batch stream from peer {:x} sent a frame of {} bytes; closing it",
                   hs.from, n);
      return;
    }
    frame.resize(n);
    if (!ReadFull(fd, frame.data(), n).ok()) return;
    batch.Clear();
    if (!batch.ParseFromString(frame) || batch.from() != hs.from ||
        batch.cluster_id() != cluster_id_) {
      spdlog::warn("transport: batch stream from peer {:x} sent a malformed batch; closing it",
                   hs.from);
      return;
    }
    // The peer may have been removed while its stream was open: it learns
    // why when it connects again.
    if (IsRemoved(hs.from)) return;
    DeliverInbound(batch);
  }
}

std::vector<int> Transport::listen_ports() const { return listen_ports_; }

void Transport::AddPeer(uint64_t id, std::vector<std::string> urls) {
  if (id == self_id_) return;
  std::vector<std::string> addresses = ToAddresses(id, urls);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || removed_.contains(id)) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    it->second->UpdateAddresses(std::move(addresses));
    return;
  }
  peers_.emplace(id, std::make_shared<PeerSender>(
                         self_id_, cluster_id_, id, std::move(addresses), options_, dropped_,
                         [this](uint64_t peer) { MarkUnreachable(peer); },
                         [this] { handler_->OnRemovedFromCluster(); }));
}

void Transport::RemovePeer(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  removed_.insert(id);
  unreachable_.erase(id);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  // Stop without waiting (the Raft loop may be calling); Stop() joins it.
  it->second->Stop();
  retired_.push_back(std::move(it->second));
  peers_.erase(it);
}

void Transport::UpdatePeer(uint64_t id, std::vector<std::string> urls) {
  std::vector<std::string> addresses = ToAddresses(id, urls);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second->UpdateAddresses(std::move(addresses));
}

void Transport::Send(std::vector<raftpb::Message> messages) {
  // Group by recipient under mu_ (map lookups only), enqueue outside it so
  // the Raft loop never waits for a sender that holds its queue lock.
  std::vector<std::pair<std::shared_ptr<PeerSender>, std::vector<raftpb::Message>>> groups;
  size_t unknown = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      dropped_->fetch_add(messages.size(), std::memory_order_relaxed);
      return;
    }
    for (auto& m : messages) {
      auto it = peers_.find(m.to());
      if (it == peers_.end()) {
        ++unknown;
        continue;
      }
      if (m.type() == raftpb::MSG_APP) metrics::DefaultMemberStats().AppendSent(m.ByteSizeLong());
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const auto& e) { return e.first == it->second; });
      if (g == groups.end()) {
        groups.emplace_back(it->second, std::vector<raftpb::Message>{});
        g = groups.end() - 1;
      }
      g->second.push_back(std::move(m));
    }
  }
  if (unknown > 0) dropped_->fetch_add(unknown, std::memory_order_relaxed);
  std::vector<uint64_t> full;
  for (auto& [peer, batch] : groups) {
    const uint64_t to = batch.front().to();
    if (peer->Enqueue(batch) > 0) full.push_back(to);
  }
  for (uint64_t id : full) MarkUnreachable(id);
}

void Transport::SendSnapshot(raftpb::Message msg, std::string data_file_path,
                             std::function<void(bool ok)> done) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopped_) {
    lock.unlock();  // done may call back into the transport.
    if (done) done(false);
    return;
  }
  ReapSnapshotSenders();
  std::string address;
  auto it = peers_.find(msg.to());
  if (it != peers_.end()) address = it->second->CurrentAddress();
  snapshot_senders_.push_back(
      std::make_unique<SnapshotSender>(self_id_, cluster_id_, std::move(address), std::move(msg),
                                       std::move(data_file_path), options_, std::move(done)));
}

void Transport::ReapSnapshotSenders() {
  std::erase_if(snapshot_senders_, [](const std::unique_ptr<SnapshotSender>& s) {
    return s->finished();  // ~SnapshotSender joins a finished thread at once.
  });
}

std::vector<uint64_t> Transport::TakeUnreachable() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> ids(unreachable_.begin(), unreachable_.end());
  unreachable_.clear();
  return ids;
}

bool Transport::PeerActive(uint64_t id) const { return ActiveSince(id).has_value(); }

std::optional<std::chrono::steady_clock::time_point> Transport::ActiveSince(uint64_t id) const {
  std::shared_ptr<PeerSender> peer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return std::nullopt;
    peer = it->second;
  }
  return peer->ActiveSince();
}

void Transport::Stop() {
  std::map<uint64_t, std::shared_ptr<PeerSender>> peers;
  std::vector<std::shared_ptr<PeerSender>> retired;
  std::vector<std::unique_ptr<SnapshotSender>> snapshots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    peers.swap(peers_);
    retired.swap(retired_);
    snapshots.swap(snapshot_senders_);
  }
  // Inbound first: cancels every call in flight and waits for the handlers
  // to return, so no Handler callback runs after this.
  if (listener_ != nullptr) listener_->Stop();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
  for (auto& [id, peer] : peers) peer->Stop();
  for (auto& s : snapshots) s->Cancel();
  for (auto& [id, peer] : peers) peer->Join();
  for (auto& peer : retired) peer->Join();
  for (auto& s : snapshots) s->Join();
  caller_->Stop();
  listener_.reset();
  server_.reset();
  service_.reset();
}

void Transport::Call(uint64_t to, const std::string& method, std::string body,
                     std::chrono::milliseconds timeout,
                     std::function<void(Result<std::string>)> done) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(to);
    if (!stopped_ && it != peers_.end()) address = it->second->CurrentAddress();
  }
  if (address.empty()) {
    done(Status::Unavailable(fmt::format("etcdpp transport: no address for member {:x}", to)));
    return;
  }
  caller_->Call(to, address, method, std::move(body), timeout, std::move(done));
}

Status Transport::CheckInbound(uint64_t from, uint64_t cluster_id, uint64_t to) const {
  if (cluster_id != cluster_id_) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("member {:x} belongs to cluster {:x}, but this member belongs to "
                              "cluster {:x}; refusing a member of another cluster",
                              from, cluster_id, cluster_id_));
  }
  if (to != self_id_) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("member {:x} expected member {:x} at this address, but this is "
                              "member {:x}",
                              from, to, self_id_));
  }
  if (IsRemoved(from)) return Status(Code::kFailedPrecondition, RemovedMemberMessage(from));
  return Status::OK();
}

bool Transport::IsRemoved(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return removed_.contains(id);
}

void Transport::MarkUnreachable(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (peers_.contains(id)) unreachable_.insert(id);
}

std::string RemovedMemberMessage(uint64_t id) {
  return fmt::format("member {:x} was removed from the cluster", id);
}

std::unique_ptr<PeerNetwork> GrpcPeerNetworkFactory::Create(uint64_t self_id, uint64_t cluster_id,
                                                            Handler* handler,
                                                            const std::string& snapshot_dir) {
  TransportOptions options;
  options.snapshot_dir = snapshot_dir;
  options.tls = tls_;
  options.batch_stream = batch_stream_;
  return std::make_unique<Transport>(self_id, cluster_id, handler, std::move(options));
}

Result<PeerMembership> GrpcPeerNetworkFactory::FetchMembership(
    const std::vector<std::string>& peer_urls, std::chrono::milliseconds timeout) {
  return transport::FetchMembership(peer_urls, timeout, tls_);
}

Result<PeerMembership> FetchMembership(const std::vector<std::string>& peer_urls,
                                       std::chrono::milliseconds timeout,
                                       const PeerTlsOptions& tls) {
  std::string errors;
  for (const std::string& url : peer_urls) {
    Result<std::string> address = PeerUrlToAddress(url);
    if (!address.ok()) return address.status();
    auto stub = transportpb::RaftPeer::NewStub(NewPeerChannel(*address, tls));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    ctx.set_wait_for_ready(true);
    transportpb::MembersResponse response;
    grpc::Status st = stub->Members(&ctx, transportpb::MembersRequest(), &response);
    if (st.ok()) return PeerMembership{response.cluster_id(), response.membership()};
    errors += fmt::format("; {}: {}", url, st.error_message());
  }
  return Status::Unavailable("could not retrieve the cluster from its members" + errors);
}

}  // namespace etcdpp::transport
