// Fakes of what lease keep-alives depend on besides the cluster view: the
// member's lessor and its channel to the leader. Shared by the Lease
// service's tests and the HTTP/2 front's, which answer keep-alives alike.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/interfaces.h"
#include "server/interfaces.h"

namespace etcdpp::api::testing {

// The member's lessor: primary (it answers) or not (kNotLeader, so the
// service asks the leader). Thread-safe.
class FakeLeases final : public lease::ClientLeases {
 public:
  void Set(int64_t id, int64_t ttl) {
    std::lock_guard<std::mutex> lock(mu_);
    ttls_[id] = ttl;
  }
  void SetPrimary(bool primary) {
    std::lock_guard<std::mutex> lock(mu_);
    primary_ = primary;
  }
  int renewals() {
    std::lock_guard<std::mutex> lock(mu_);
    return renewals_;
  }

  void Renew(int64_t lease_id, RenewCallback done) override {
    Result<int64_t> outcome = Status(Code::kNotLeader);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++renewals_;
      if (primary_) {
        auto it = ttls_.find(lease_id);
        outcome = it == ttls_.end() ? Result<int64_t>(Status(Code::kLeaseNotFound))
                                    : Result<int64_t>(it->second);
      }
    }
    done(std::move(outcome));
  }
  Status TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                    etcdserverpb::LeaseTimeToLiveResponse* resp) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!primary_) return Status(Code::kNotLeader);
    auto it = ttls_.find(req.id());
    if (it == ttls_.end()) return Status(Code::kLeaseNotFound);
    resp->set_id(req.id());
    resp->set_ttl(it->second - 1);
    resp->set_grantedttl(it->second);
    if (req.keys()) resp->add_keys("attached");
    return Status::OK();
  }
  std::vector<int64_t> Leases() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> ids;
    for (const auto& [id, ttl] : ttls_) ids.push_back(id);
    return ids;
  }

 private:
  mutable std::mutex mu_;
  std::map<int64_t, int64_t> ttls_;  // guarded by mu_
  bool primary_ = true;              // guarded by mu_
  int renewals_ = 0;                 // guarded by mu_
};

// The leader at the other end of the peer transport: records each call and
// answers with a scripted reply, on a thread of its own as the transport
// does. Threads are joined by JoinAll (the fixture's destructor).
class FakeLeaderChannel final : public server::LeaderChannel {
 public:
  struct Call {
    std::string method;
    std::string body;
  };

  void CallLeader(const std::string& method, std::string body,
                  std::function<void(Result<std::string>)> done) override {
    Result<std::string> reply = Status(Code::kNoLeader);
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back({method, body});
      if (reply_) reply = *reply_;
    }
    std::lock_guard<std::mutex> lock(threads_mu_);
    threads_.emplace_back([done = std::move(done), reply = std::move(reply)] { done(reply); });
  }

  void SetReply(Result<std::string> reply) {
    std::lock_guard<std::mutex> lock(mu_);
    reply_ = std::move(reply);
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  void JoinAll() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(threads_mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  std::mutex mu_;
  std::optional<Result<std::string>> reply_;  // guarded by mu_; none: kNoLeader
  std::vector<Call> calls_;                   // guarded by mu_
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;  // guarded by threads_mu_
};

}  // namespace etcdpp::api::testing
