#include "integration/mem_network.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <thread>

#include "transport/rtt_probe.h"
#include "transport/transport.h"

namespace etcdpp::testing {

using SteadyTime = std::chrono::steady_clock::time_point;

// One thread running posted tasks in post order. A task not yet started
// when the queue stops is abandoned: its `abandon` (if any) runs on the
// stopping thread instead.
class MemNetwork::DeliveryQueue {
 public:
  DeliveryQueue() : thread_([this] { Run(); }) {}
  ~DeliveryQueue() { StopAndJoin(); }

  void Post(std::function<void()> run, std::function<void()> abandon) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      // Members are unregistered before their queue stops, and tasks are
      // posted only to registered members.
      fmt::print(stderr, "MemNetwork: task posted to a stopped member\n");
      std::abort();
    }
    tasks_.push_back(Task{std::move(run), std::move(abandon)});
    wake_.notify_one();
  }

  // Lets the running task finish and joins the thread. Idempotent.
  void StopAndJoin() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    std::deque<Task> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(tasks_);
    }
    for (Task& t : left) {
      if (t.abandon) t.abandon();
    }
  }

 private:
  struct Task {
    std::function<void()> run;
    std::function<void()> abandon;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task.run();
      task = Task{};  // whatever it captured goes before the lock is taken again
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> tasks_;  // Guarded by mu_.
  bool stopping_ = false;   // Guarded by mu_.
  std::thread thread_;      // Last: started once the rest is built.
};

// One member's side of the network. Fields below `queue` are guarded by
// MemNetwork::mu_; the rest is fixed at creation.
struct MemNetwork::Member {
  Member(uint64_t member_id, uint64_t member_cluster_id, transport::Handler* member_handler,
         std::string member_snapshot_dir)
      : id(member_id),
        cluster_id(member_cluster_id),
        handler(member_handler),
        snapshot_dir(std::move(member_snapshot_dir)) {}

  const uint64_t id;
  const uint64_t cluster_id;
  transport::Handler* const handler;
  const std::string snapshot_dir;
  DeliveryQueue queue;

  bool listening = false;
  bool stopped = false;
  SteadyTime listening_since{};
  std::vector<std::string> listen_urls;
  std::vector<int> listen_ports;
  std::map<uint64_t, SteadyTime> peers;  // id -> when added or moved
  std::set<uint64_t> removed;
  std::set<uint64_t> unreachable;
  // Calls and snapshot sends whose `done` has not run; Stop fails them.
  std::set<std::shared_ptr<Outstanding>> outstanding;
};

// A Call's or SendSnapshot's completion, run once: whoever takes `done`
// (under mu_) runs it.
struct MemNetwork::Outstanding {
  std::function<void(Result<std::string>)> done;
};

// The PeerNetwork a member's server holds.
class MemNetwork::Endpoint final : public transport::PeerNetwork {
 public:
  Endpoint(MemNetwork* net, std::shared_ptr<Member> self) : net_(net), self_(std::move(self)) {}
  ~Endpoint() override { Stop(); }

  Status Start(const std::vector<std::string>& listen_addresses) override {
    std::vector<int> ports;
    for (const std::string& url : listen_addresses) {
      auto address = transport::PeerUrlToAddress(url);
      if (!address.ok()) return address.status();
      const int port = std::atoi(address->substr(address->rfind(':') + 1).c_str());
      if (port <= 0) {
        return Status::InvalidArgument("MemNetwork needs an explicit port in " + url);
      }
      ports.push_back(port);
    }
    std::lock_guard<std::mutex> lock(net_->mu_);
    for (const auto& [id, m] : net_->members_) {
      if (m == self_ || !m->listening) continue;
      for (const std::string& url : listen_addresses) {
        if (std::find(m->listen_urls.begin(), m->listen_urls.end(), url) != m->listen_urls.end()) {
          return Status::Unavailable(url + " is taken by member " + fmt::format("{:x}", id));
        }
      }
    }
    self_->listening = true;
    self_->listening_since = std::chrono::steady_clock::now();
    self_->listen_urls = listen_addresses;
    self_->listen_ports = std::move(ports);
    return Status::OK();
  }

  std::vector<int> listen_ports() const override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    return self_->listen_ports;
  }

  void AddPeer(uint64_t id, std::vector<std::string> /*urls*/) override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    if (id == self_->id || self_->removed.contains(id)) return;
    self_->peers.emplace(id, std::chrono::steady_clock::now());
  }

  void RemovePeer(uint64_t id) override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    self_->peers.erase(id);
    self_->removed.insert(id);
    self_->unreachable.erase(id);
  }

  // Delivery is by id, so new URLs only restart the link's up time, as a
  // reconnect does.
  void UpdatePeer(uint64_t id, std::vector<std::string> /*urls*/) override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    auto it = self_->peers.find(id);
    if (it != self_->peers.end()) it->second = std::chrono::steady_clock::now();
  }

  void Send(std::vector<raftpb::Message> messages) override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    if (self_->stopped) return;
    for (raftpb::Message& m : messages) {
      const uint64_t to = m.to();
      if (to == self_->id || !self_->peers.contains(to)) continue;
      std::shared_ptr<Member> peer = net_->ListeningLocked(to);
      if (peer == nullptr || peer->cluster_id != self_->cluster_id ||
          !net_->LinkedLocked(self_->id, to)) {
        self_->unreachable.insert(to);
        continue;
      }
      if (peer->removed.contains(self_->id)) {
        transport::Handler* handler = self_->handler;
        net_->PostLocked(*self_, [handler] { handler->OnRemovedFromCluster(); });
        continue;
      }
      Member* receiver = peer.get();
      net_->PostLocked(*peer, [net = net_, from = self_->id, receiver, m = std::move(m)]() mutable {
        {
          std::lock_guard<std::mutex> guard(net->mu_);
          if (receiver->stopped || !net->LinkedLocked(from, receiver->id) ||
              receiver->removed.contains(from)) {
            return;
          }
          ++net->messages_delivered_;
        }
        receiver->handler->OnMessage(std::move(m));
      });
    }
  }

  void SendSnapshot(raftpb::Message msg, std::string data_file_path,
                    std::function<void(bool ok)> done) override {
    auto call = std::make_shared<Outstanding>();
    call->done = [done = std::move(done)](Result<std::string> reply) { done(reply.ok()); };
    std::shared_ptr<Member> receiver;
    {
      std::lock_guard<std::mutex> lock(net_->mu_);
      if (!self_->stopped) {
        self_->outstanding.insert(call);
        receiver = Reachable(msg.to());
        if (receiver == nullptr) {
          net_->FinishLocked(self_, 0, call, Status::Unavailable("snapshot: peer unreachable"));
          return;
        }
        net_->PostLocked(
            *receiver,
            [net = net_, caller = self_, to = receiver.get(), call, msg = std::move(msg),
             path = std::move(data_file_path)]() mutable {
              net->DeliverSnapshot(caller, to, call, std::move(msg), path);
            },
            [net = net_, caller = self_, to = receiver->id, call] {
              net->Finish(caller, to, call, Status::Unavailable("snapshot: peer stopped"));
            });
        return;
      }
    }
    call->done(Status::Unavailable("stopped"));
  }

  void Call(uint64_t to, const std::string& method, std::string body,
            std::chrono::milliseconds /*timeout*/,
            std::function<void(Result<std::string>)> done) override {
    auto call = std::make_shared<Outstanding>();
    call->done = std::move(done);
    {
      std::lock_guard<std::mutex> lock(net_->mu_);
      if (!self_->stopped && to != self_->id && self_->peers.contains(to)) {
        self_->outstanding.insert(call);
        std::shared_ptr<Member> callee = Reachable(to);
        if (callee == nullptr) {
          net_->FinishLocked(self_, 0, call, Status::Unavailable("call: peer unreachable"));
          return;
        }
        net_->PostLocked(
            *callee,
            [net = net_, caller = self_, callee = callee.get(), call, method,
             body = std::move(body)] { net->ServeCall(caller, callee, call, method, body); },
            [net = net_, caller = self_, to, call] {
              net->Finish(caller, to, call, Status::Unavailable("call: peer stopped"));
            });
        return;
      }
    }
    call->done(Status::Unavailable(fmt::format("call to {:x}: unknown peer or stopped", to)));
  }

  std::vector<uint64_t> TakeUnreachable() override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    std::vector<uint64_t> out(self_->unreachable.begin(), self_->unreachable.end());
    self_->unreachable.clear();
    return out;
  }

  std::optional<SteadyTime> ActiveSince(uint64_t id) const override {
    std::lock_guard<std::mutex> lock(net_->mu_);
    auto it = self_->peers.find(id);
    if (self_->stopped || it == self_->peers.end()) return std::nullopt;
    std::shared_ptr<Member> peer = net_->ListeningLocked(id);
    if (peer == nullptr || !net_->LinkedLocked(self_->id, id)) return std::nullopt;
    return std::max({it->second, peer->listening_since, net_->last_heal_});
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(net_->mu_);
      if (self_->stopped) return;
      self_->stopped = true;
      auto it = net_->members_.find(self_->id);
      if (it != net_->members_.end() && it->second == self_) net_->members_.erase(it);
    }
    // Unregistered: nothing is posted to the queue any more.
    self_->queue.StopAndJoin();
    std::set<std::shared_ptr<Outstanding>> left;
    {
      std::lock_guard<std::mutex> lock(net_->mu_);
      left.swap(self_->outstanding);
    }
    for (const std::shared_ptr<Outstanding>& call : left) {
      call->done(Status::Unavailable("stopped"));
    }
  }

 private:
  // The peer `to` if this member may reach it now, else null. Requires mu_.
  std::shared_ptr<Member> Reachable(uint64_t to) const {
    if (!self_->peers.contains(to)) return nullptr;
    std::shared_ptr<Member> peer = net_->ListeningLocked(to);
    if (peer == nullptr || peer->cluster_id != self_->cluster_id ||
        !net_->LinkedLocked(self_->id, to) || peer->removed.contains(self_->id)) {
      return nullptr;
    }
    return peer;
  }

  MemNetwork* const net_;
  const std::shared_ptr<Member> self_;
};

MemNetwork::~MemNetwork() = default;

std::unique_ptr<transport::PeerNetwork> MemNetwork::Create(uint64_t self_id, uint64_t cluster_id,
                                                           transport::Handler* handler,
                                                           const std::string& snapshot_dir) {
  auto member = std::make_shared<Member>(self_id, cluster_id, handler, snapshot_dir);
  {
    std::lock_guard<std::mutex> lock(mu_);
    members_[self_id] = member;
  }
  return std::make_unique<Endpoint>(this, std::move(member));
}

Result<transport::PeerMembership> MemNetwork::FetchMembership(
    const std::vector<std::string>& peer_urls, std::chrono::milliseconds timeout) {
  for (const std::string& url : peer_urls) {
    auto answer = std::make_shared<std::promise<Result<transport::PeerMembership>>>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::shared_ptr<Member> target;
      for (const auto& [id, m] : members_) {
        if (m->listening &&
            std::find(m->listen_urls.begin(), m->listen_urls.end(), url) != m->listen_urls.end()) {
          target = m;
        }
      }
      if (target == nullptr) continue;
      PostLocked(
          *target,
          [answer, member = target.get()] {
            answer->set_value(transport::PeerMembership{member->cluster_id,
                                                        member->handler->MembershipForPeers()});
          },
          [answer] { answer->set_value(Status::Unavailable("member stopped")); });
    }
    auto reply = answer->get_future();
    if (reply.wait_for(timeout) == std::future_status::ready) {
      Result<transport::PeerMembership> got = reply.get();
      if (got.ok()) return got;
    }
  }
  return Status::Unavailable("MemNetwork: no member listens at the given peer URLs");
}

void MemNetwork::Cut(uint64_t a, uint64_t b) {
  std::lock_guard<std::mutex> lock(mu_);
  cuts_.insert(std::minmax(a, b));
}

void MemNetwork::Heal(uint64_t a, uint64_t b) {
  std::lock_guard<std::mutex> lock(mu_);
  cuts_.erase(std::minmax(a, b));
  last_heal_ = std::chrono::steady_clock::now();
}

void MemNetwork::Isolate(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  isolated_.insert(id);
}

void MemNetwork::HealAll() {
  std::lock_guard<std::mutex> lock(mu_);
  cuts_.clear();
  isolated_.clear();
  last_heal_ = std::chrono::steady_clock::now();
}

uint64_t MemNetwork::snapshots_delivered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshots_delivered_;
}

uint64_t MemNetwork::messages_delivered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_delivered_;
}

bool MemNetwork::LinkedLocked(uint64_t a, uint64_t b) const {
  return !isolated_.contains(a) && !isolated_.contains(b) && !cuts_.contains(std::minmax(a, b));
}

std::shared_ptr<MemNetwork::Member> MemNetwork::ListeningLocked(uint64_t id) const {
  auto it = members_.find(id);
  if (it == members_.end() || !it->second->listening || it->second->stopped) return nullptr;
  return it->second;
}

void MemNetwork::PostLocked(Member& to, std::function<void()> run, std::function<void()> abandon) {
  to.queue.Post(std::move(run), std::move(abandon));
}

void MemNetwork::FinishLocked(const std::shared_ptr<Member>& caller, uint64_t callee,
                              const std::shared_ptr<Outstanding>& call, Result<std::string> reply) {
  // A stopped caller has failed its calls already.
  if (caller->stopped) return;
  if (callee != 0 && !LinkedLocked(caller->id, callee)) {
    reply = Status::Unavailable("reply lost: link cut");
  }
  Member* self = caller.get();
  PostLocked(*caller, [this, self, call, reply = std::move(reply)]() mutable {
    std::function<void(Result<std::string>)> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (self->outstanding.erase(call) == 0) return;
      done = std::move(call->done);
    }
    done(std::move(reply));
  });
}

void MemNetwork::Finish(const std::shared_ptr<Member>& caller, uint64_t callee,
                        const std::shared_ptr<Outstanding>& call, Result<std::string> reply) {
  std::lock_guard<std::mutex> lock(mu_);
  FinishLocked(caller, callee, call, std::move(reply));
}

void MemNetwork::ServeCall(const std::shared_ptr<Member>& caller, Member* callee,
                           const std::shared_ptr<Outstanding>& call, const std::string& method,
                           const std::string& body) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (callee->stopped || !LinkedLocked(caller->id, callee->id) ||
        callee->removed.contains(caller->id)) {
      FinishLocked(caller, callee->id, call, Status::Unavailable("call lost"));
      return;
    }
  }
  // The gRPC transport answers its round-trip probes itself, too.
  if (method == transport::kRttProbeMethod) {
    Finish(caller, callee->id, call, std::string());
    return;
  }
  callee->handler->OnCall(caller->id, method, body,
                          [this, caller, callee_id = callee->id, call](Result<std::string> reply) {
                            Finish(caller, callee_id, call, std::move(reply));
                          });
}

void MemNetwork::DeliverSnapshot(const std::shared_ptr<Member>& caller, Member* receiver,
                                 const std::shared_ptr<Outstanding>& call, raftpb::Message msg,
                                 const std::string& data_file_path) {
  std::string received;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (receiver->stopped || !LinkedLocked(caller->id, receiver->id) ||
        receiver->removed.contains(caller->id) || receiver->snapshot_dir.empty()) {
      FinishLocked(caller, receiver->id, call, Status::Unavailable("snapshot lost"));
      return;
    }
    const raftpb::SnapshotMetadata& meta = msg.snapshot().metadata();
    // The gRPC transport's naming: a fresh file per transfer.
    received = (std::filesystem::path(receiver->snapshot_dir) /
                fmt::format("{:016x}-{:016x}.snap.recv-{:x}-{}", meta.term(), meta.index(),
                            caller->id, next_snapshot_file_++))
                   .string();
  }
  std::error_code error;
  std::filesystem::copy_file(data_file_path, received, error);
  if (error) {
    Finish(caller, receiver->id, call, Status::IOError("snapshot copy: " + error.message()));
    return;
  }
  receiver->handler->OnSnapshot(std::move(msg), received);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++snapshots_delivered_;
  }
  Finish(caller, receiver->id, call, std::string());
}

}  // namespace etcdpp::testing
