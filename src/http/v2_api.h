// The v2 HTTP API (etcd's --enable-v2): /v2/keys, /v2/members,
// /v2/machines and /v2/stats/{self,leader,store}. Requests, replies, error
// bodies and status codes follow etcd 3.4 (docs/v2.md).
//
// Writes are proposed through Raft as V2Requests and answered with the
// applied outcome; reads are served from this member's v2 store (quorum=true
// waits for a ReadIndex round first); wait=true registers a watcher and the
// reply, sent chunked, waits for the event.
//
// Threads: Serve runs on the connection's strand; a V2Responder may be
// called from any thread (the apply thread, the store's watcher delivery)
// and takes the reply back to the strand itself.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/interfaces.h"

namespace etcdpp::v2store {
class Store;
}

namespace etcdpp::http {

struct V2HttpRequest {
  std::string method;  // GET, PUT, ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string body;
};

struct V2HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Where a reply goes. Either Reply once, or BeginStream, any number of
// StreamChunk, then EndStream. Thread-safe.
class V2Responder {
 public:
  virtual ~V2Responder() = default;
  virtual void Reply(V2HttpResponse response) = 0;
  // Status and headers now; the body follows in chunks.
  virtual void BeginStream(V2HttpResponse head) = 0;
  virtual void StreamChunk(std::string data) = 0;
  virtual void EndStream() = 0;
};

struct V2ApiContext {
  server::Proposer* proposer;
  server::ReadBarrier* barrier;
  server::ClusterView* cluster;
  server::ClusterAdmin* admin;  // POST, PUT and DELETE /v2/members
  v2store::Store* store;
  std::string member_name;
  // Whether a member id was removed from the cluster (ids are never
  // reused): a DELETE of it gets 410 Gone, not 404. Thread-safe.
  std::function<bool(uint64_t)> was_removed;
};

class V2Api {
 public:
  explicit V2Api(V2ApiContext context) : ctx_(std::move(context)) {}

  // Whether `path` (without the query) is served here.
  static bool Handles(std::string_view path);
  // Answers through `responder`, now or later. Returns what cancels a
  // pending watch (the client went away); empty when nothing is pending.
  std::function<void()> Serve(const V2HttpRequest& request, std::shared_ptr<V2Responder> responder);

 private:
  std::function<void()> ServeKeys(const V2HttpRequest& request, std::string_view path,
                                  std::string_view query, std::shared_ptr<V2Responder> responder);
  V2HttpResponse ServeMembers(const std::string& method, std::string_view path) const;
  // POST /v2/members (add), PUT /v2/members/<id> (new peer URLs), DELETE
  // /v2/members/<id> (remove): through Raft, answered when applied.
  void ChangeMembers(const V2HttpRequest& request, std::string_view path,
                     std::shared_ptr<V2Responder> responder);
  V2HttpResponse ServeStats(const std::string& method, std::string_view path) const;

  const V2ApiContext ctx_;
};

}  // namespace etcdpp::http
