// Blocking requests to an in-process member, for the tests that run whole
// clusters (cluster_test, memnet_cluster_test, server_disk_fault_test).
// Each call waits on the calling thread until the member's callback runs on
// one of the member's own threads.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <utility>

#include "mvcc/kv_store.h"
#include "server/etcd_server.h"
#include "server/interfaces.h"
#include "server/kv_applier.h"

namespace etcdpp::testing {

// Proposes key=value through `server` (a follower forwards it) and returns
// the answer. On a thread allowed to propose inline it runs what it
// deferred, as the HTTP/2 front's loops do (server/interfaces.h).
inline Status Put(server::EtcdServer* server, const std::string& key, const std::string& value) {
  internalpb::InternalRaftRequest request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  etcdserverpb::PutResponse response;
  std::promise<Status> done;
  server->Propose(std::move(request), &response, [&done](const Status& st) { done.set_value(st); });
  server::InlineProposals::RunDeferred();
  return done.get_future().get();
}

// The value of `key` on `server` after a ReadIndex round (so every write
// acknowledged before the call is in): the value, "<absent>", or
// "<error: ...>".
inline std::string Get(server::EtcdServer* server, const std::string& key) {
  std::promise<Status> done;
  server->WaitLinearizable([&done](const Status& st) { done.set_value(st); });
  Status st = done.get_future().get();
  if (!st.ok()) return "<error: " + st.ToString() + ">";
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  etcdserverpb::RangeResponse response;
  std::shared_ptr<mvcc::KvStore> store = server->store();
  auto view = store->Read();
  if (!view.ok()) return "<error: " + view.status().ToString() + ">";
  st = server::KvApplier::Range(**view, request, &response);
  if (!st.ok()) return "<error: " + st.ToString() + ">";
  return response.kvs_size() == 0 ? "<absent>" : response.kvs(0).value();
}

}  // namespace etcdpp::testing
