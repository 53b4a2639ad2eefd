// A member without Raft, for the gRPC services' unit tests: it implements
// the interfaces of server/interfaces.h over a real store in a temp dir.
// Proposals are applied at once with KvApplier unless the test scripts an
// error; the read barrier passes at once unless scripted otherwise. Every
// call is recorded, so a test can check what the service asked for. The
// test thread and gRPC's threads both touch it (see SharedValue).
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mvcc/kv_store.h"
#include "server/interfaces.h"
#include "server/kv_applier.h"
#include "unit/mvcc/temp_dir.h"

namespace etcdpp::api::testing {

// A value the test thread and gRPC's threads share. The order between a
// test's write and the service's read (or the fake's write and the test's
// read) is real: it runs through the call, over gRPC and a TCP socket. But
// ThreadSanitizer sees neither gRPC's locks (Debian's gRPC is not built with
// it) nor sockets as synchronization, so every shared field of the fake
// takes a lock of its own.
template <typename T>
class SharedValue {
 public:
  SharedValue() = default;
  // Implicit, so that a field is declared as `SharedValue<bool> learner = false;`.
  SharedValue(T value) : value_(std::move(value)) {}
  SharedValue& operator=(T value) {
    std::lock_guard<std::mutex> lock(mu_);
    value_ = std::move(value);
    return *this;
  }
  T get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  template <typename Fn>
  void Update(Fn fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn(value_);
  }

 private:
  mutable std::mutex mu_;
  T value_{};
};

class FakeMember final : public server::Proposer,
                         public server::ReadBarrier,
                         public server::ClusterView,
                         public server::ClusterAdmin {
 public:
  FakeMember() {
    auto store = mvcc::KvStore::Open(dir_.path());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
  }

  // ---- Scripted behaviour (set before the call under test).
  SharedValue<std::optional<Status>> propose_error;
  SharedValue<std::optional<Status>> barrier_error;
  SharedValue<std::optional<Status>> admin_error;
  SharedValue<uint64_t> leader = 1;
  SharedValue<bool> learner = false;
  SharedValue<uint64_t> txn_ops_limit = 128;
  SharedValue<std::vector<server::Member>> members;
  SharedValue<uint64_t> next_member_id = 0x1234;

  // When non-zero, a proposal from a thread allowed to propose inline (the
  // HTTP/2 front's loops: server/interfaces.h) waits for that thread's
  // InlineProposals::RunDeferred. If the thread is still allowed then, it
  // sleeps this long, as if it flushed the WAL there, and applies it;
  // otherwise the proposal is applied at once, as if handed to the raft
  // loop.
  SharedValue<std::chrono::milliseconds> inline_flush{std::chrono::milliseconds(0)};

  // ---- Recorded calls.
  SharedValue<int> proposals = 0;
  // Per proposal, in the order applied: whether it was applied inline (in
  // its thread's RunDeferred, the thread still allowed to propose inline).
  SharedValue<std::vector<bool>> applied_inline;
  SharedValue<int> barrier_waits = 0;
  SharedValue<std::vector<std::string>> admin_calls;
  SharedValue<uint64_t> last_transferee = 0;
  SharedValue<std::chrono::milliseconds> last_transfer_timeout{std::chrono::milliseconds(0)};

  // A put of `key`, applied at once; its revision. What a test writes to
  // have something to watch or read.
  int64_t Put(const std::string& key, const std::string& value) {
    internalpb::InternalRaftRequest request;
    request.mutable_put()->set_key(key);
    request.mutable_put()->set_value(value);
    etcdserverpb::PutResponse resp;
    Status outcome;
    Propose(std::move(request), &resp, [&](const Status& st) { outcome = st; });
    EXPECT_TRUE(outcome.ok()) << outcome.ToString();
    return resp.header().revision();
  }

  // Proposer: applies the request at once, like a one-member cluster.
  // Calls come from gRPC's threads, one at a time in these tests; the store
  // itself takes one writer at a time.
  void Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response,
               server::ProposeCallback done) override {
    proposals.Update([](int& n) { ++n; });
    if (auto error = propose_error.get()) return done(*error);
    if (server::InlineProposals::AllowedOnThisThread() && inline_flush.get().count() > 0) {
      inline_runner_.Defer([this, request = std::move(request), response, done]() {
        const bool here = server::InlineProposals::AllowedOnThisThread();
        if (here) std::this_thread::sleep_for(inline_flush.get());
        applied_inline.Update([here](std::vector<bool>& all) { all.push_back(here); });
        Apply(request, response, done);
        return here;
      });
      return;
    }
    applied_inline.Update([](std::vector<bool>& all) { all.push_back(false); });
    Apply(request, response, done);
  }

  void WaitLinearizable(server::ReadCallback done) override {
    barrier_waits.Update([](int& n) { ++n; });
    auto error = barrier_error.get();
    done(error ? *error : Status::OK());
  }

 private:
  // The proposals deferred by each thread, run by its RunDeferred.
  class InlineRunner final : public server::InlineProposals::Runner {
   public:
    // `proposal` returns whether it was applied inline.
    void Defer(std::function<bool()> proposal) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        deferred_.emplace_back(std::this_thread::get_id(), std::move(proposal));
      }
      server::InlineProposals::Defer(this);
    }
    bool RunDeferred() override {
      std::vector<std::function<bool()>> mine;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = deferred_.begin(); it != deferred_.end();) {
          if (it->first == std::this_thread::get_id()) {
            mine.push_back(std::move(it->second));
            it = deferred_.erase(it);
          } else {
            ++it;
          }
        }
      }
      bool here = false;
      for (auto& proposal : mine) here = proposal() || here;
      return here;
    }

   private:
    std::mutex mu_;
    std::vector<std::pair<std::thread::id, std::function<bool()>>> deferred_;
  };

  void Apply(const internalpb::InternalRaftRequest& request, google::protobuf::Message* response,
             const server::ProposeCallback& done) {
    auto txn = store_->Write();
    ASSERT_TRUE(txn.ok());
    Status st;
    if (request.has_put()) {
      st = kv_.Put(**txn, request.put(), static_cast<etcdserverpb::PutResponse*>(response));
    } else if (request.has_delete_range()) {
      st = kv_.DeleteRange(**txn, request.delete_range(),
                           static_cast<etcdserverpb::DeleteRangeResponse*>(response));
    } else if (request.has_txn()) {
      st = kv_.Txn(**txn, request.txn(), static_cast<etcdserverpb::TxnResponse*>(response));
    } else if (request.has_compaction()) {
      st = kv_.Compact(**txn, request.compaction(),
                       static_cast<etcdserverpb::CompactionResponse*>(response));
    } else {
      st = Status::Unimplemented("not faked");
    }
    if (st.ok()) st = (*txn)->Commit();
    done(st);
  }

  InlineRunner inline_runner_;

 public:
  // ClusterView.
  uint64_t member_id() const override { return 0xaa; }
  uint64_t cluster_id() const override { return 0xcc; }
  uint64_t leader_id() const override { return leader.get(); }
  bool is_learner() const override { return learner.get(); }
  uint64_t term() const override { return 7; }
  uint64_t applied_index() const override { return 41; }
  uint64_t commit_index() const override { return 42; }
  std::vector<server::Member> Members() const override { return members.get(); }
  void FillHeader(etcdserverpb::ResponseHeader* header) const override {
    header->set_cluster_id(cluster_id());
    header->set_member_id(member_id());
    header->set_raft_term(term());
  }
  std::shared_ptr<mvcc::KvStore> store() const override { return store_; }
  int64_t revision() const override { return store_->CurrentRevision(); }
  uint64_t max_request_bytes() const override { return 1536 * 1024; }
  uint64_t max_txn_ops() const override { return txn_ops_limit.get(); }
  std::chrono::milliseconds request_timeout() const override {
    return std::chrono::milliseconds(7000);
  }
  std::chrono::milliseconds election_timeout() const override {
    return std::chrono::milliseconds(1000);
  }

  // ClusterAdmin: records the call and answers with admin_error or OK.
  void AddMember(server::Member* member, server::ProposeCallback done) override {
    if (auto error = RecordAdminCall("add")) return done(*error);
    member->id = next_member_id.get();
    members.Update([&](std::vector<server::Member>& all) { all.push_back(*member); });
    done(Status::OK());
  }
  void RemoveMember(uint64_t id, server::ProposeCallback done) override {
    if (auto error = RecordAdminCall("remove " + std::to_string(id))) return done(*error);
    members.Update([id](std::vector<server::Member>& all) {
      std::erase_if(all, [id](const server::Member& m) { return m.id == id; });
    });
    done(Status::OK());
  }
  void UpdateMember(uint64_t id, std::vector<std::string> peer_urls,
                    server::ProposeCallback done) override {
    if (auto error = RecordAdminCall("update " + std::to_string(id))) return done(*error);
    members.Update([&](std::vector<server::Member>& all) {
      for (server::Member& m : all) {
        if (m.id == id) m.peer_urls = peer_urls;
      }
    });
    done(Status::OK());
  }
  void PromoteMember(uint64_t id, server::ProposeCallback done) override {
    if (auto error = RecordAdminCall("promote " + std::to_string(id))) return done(*error);
    members.Update([id](std::vector<server::Member>& all) {
      for (server::Member& m : all) {
        if (m.id == id) m.is_learner = false;
      }
    });
    done(Status::OK());
  }
  void MoveLeader(uint64_t transferee, std::chrono::milliseconds timeout,
                  server::ProposeCallback done) override {
    last_transferee = transferee;
    last_transfer_timeout = timeout;
    if (auto error = RecordAdminCall("move " + std::to_string(transferee))) return done(*error);
    leader = transferee;
    done(Status::OK());
  }

 private:
  // Records an admin call; the scripted error, if any.
  std::optional<Status> RecordAdminCall(std::string call) {
    admin_calls.Update([&](std::vector<std::string>& calls) { calls.push_back(std::move(call)); });
    return admin_error.get();
  }

  etcdpp::testing::TempDir dir_;
  std::shared_ptr<mvcc::KvStore> store_;
  server::KvApplier kv_;
};

// One gRPC service on a free local port, with a channel to it.
class InProcessServer {
 public:
  explicit InProcessServer(grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  ~InProcessServer() { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A client context that gives up after a few seconds, so a handler that
// never finishes fails the test instead of hanging it.
inline std::unique_ptr<grpc::ClientContext> Context(bool require_leader = false) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (require_leader) context->AddMetadata("hasleader", "true");
  return context;
}

}  // namespace etcdpp::api::testing
