// SingleMemberTest: the fixture of the in-process tests that run one member
// (server_test, maintenance_test, server_disk_fault_test): a fresh temporary
// data dir, options for a lone member with short Raft timers, and the
// blocking helpers the tests write and read through.
//
// Owned by the test's thread. The helpers block until the member's callback
// runs on the member's own threads. TearDown stops the member before the
// data dir is removed and before a derived fixture's members (a clock the
// member reads, say) are destroyed.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "server/etcd_server.h"
#include "server/kv_applier.h"

namespace etcdpp::testing {

class SingleMemberTest : public ::testing::Test {
 protected:
  // `dir_prefix` names the temporary data dir, so a leftover one says which
  // test left it.
  explicit SingleMemberTest(std::string dir_prefix) : dir_prefix_(std::move(dir_prefix)) {}

  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           (dir_prefix_ + std::to_string(rd()) + std::to_string(rd()));
    options_.name = "m1";
    options_.data_dir = dir_.string();
    options_.initial_cluster = "m1=http://127.0.0.1:2380";
    options_.initial_advertise_peer_urls = {"http://127.0.0.1:2380"};
    options_.client_urls = {"http://127.0.0.1:2379"};
    options_.heartbeat_interval = std::chrono::milliseconds(10);
    options_.election_timeout = std::chrono::milliseconds(100);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer() {
    auto s = server::EtcdServer::Start(options_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
  }

  // Proposes `request` to `server` and waits for its answer.
  static Status Propose(server::EtcdServer* server, internalpb::InternalRaftRequest request,
                        google::protobuf::Message* response) {
    std::promise<Status> done;
    server->Propose(std::move(request), response,
                    [&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
  }
  Status Propose(internalpb::InternalRaftRequest request, google::protobuf::Message* response) {
    return Propose(server_.get(), std::move(request), response);
  }

  static Status Put(server::EtcdServer* server, const std::string& key, const std::string& value,
                    etcdserverpb::PutResponse* response = nullptr) {
    internalpb::InternalRaftRequest request;
    request.mutable_put()->set_key(key);
    request.mutable_put()->set_value(value);
    etcdserverpb::PutResponse ignored;
    return Propose(server, std::move(request), response != nullptr ? response : &ignored);
  }
  Status Put(const std::string& key, const std::string& value,
             etcdserverpb::PutResponse* response = nullptr) {
    return Put(server_.get(), key, value, response);
  }

  Status WaitLinearizable() {
    std::promise<Status> done;
    server_->WaitLinearizable([&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
  }

  // The value of `key` in the member's store as applied so far, or
  // "<absent>"; no read barrier.
  std::string StoredValue(const std::string& key) {
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    etcdserverpb::RangeResponse response;
    auto store = server_->store();
    auto view = store->Read();
    EXPECT_TRUE(view.ok());
    if (!view.ok()) return "<no store view>";
    Status st = server::KvApplier::Range(**view, request, &response);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (response.kvs_size() == 0) return "<absent>";
    return response.kvs(0).value();
  }

  // The value of `key` after a linearizable barrier, or "<absent>".
  std::string Get(const std::string& key) {
    EXPECT_TRUE(WaitLinearizable().ok());
    return StoredValue(key);
  }

  std::filesystem::path dir_;
  server::ServerOptions options_;
  std::unique_ptr<server::EtcdServer> server_;

 private:
  std::string dir_prefix_;
};

}  // namespace etcdpp::testing
