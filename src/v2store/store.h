// Store: etcd's v2 key space, a tree of files and directories in memory,
// with TTLs, a 1000-event history and watchers. Every write produces one
// event and advances the store's index by one (creating missing parent
// directories does not); failed writes change nothing.
//
// The store is deterministic: a write's outcome depends only on the tree
// and the request (expiry times travel in the requests, and expiry happens
// only through DeleteExpired with the leader's cut-off time), so every
// member applying the same Raft log holds the same tree and index. Only
// the remaining TTL shown to clients is computed from the local clock.
//
// Keys are cleaned paths: "" is the root (the v2 API's /v2/keys/), "/a/b"
// a node below it. Names starting with '_' are hidden from listings.
//
// Durability: the store itself does no I/O. It remembers which nodes each
// write touched (TakeChanges), and persistence.h writes those to the
// member's LMDB store in the apply loop's transaction.
//
// Threads: every method takes the store's mutex; writes come from the
// apply thread, reads and watches from HTTP threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "v2store/errors.h"
#include "v2store/event.h"
#include "v2store/watcher_hub.h"

namespace etcdpp::v2store {

// An operation's result: the event, or the error.
struct Outcome {
  Event event;
  std::optional<Error> error;
  bool ok() const { return !error.has_value(); }
};

// A node as persisted: everything but its children and its key.
struct NodeRecord {
  bool dir = false;
  std::string value;
  uint64_t created_index = 0;
  uint64_t modified_index = 0;
  int64_t expire_ns = 0;  // 0: permanent
};

// Counters of /v2/stats/store.
struct StoreStats {
  uint64_t gets_success = 0, gets_fail = 0;
  uint64_t sets_success = 0, sets_fail = 0;
  uint64_t delete_success = 0, delete_fail = 0;
  uint64_t update_success = 0, update_fail = 0;
  uint64_t create_success = 0, create_fail = 0;
  uint64_t compare_and_swap_success = 0, compare_and_swap_fail = 0;
  uint64_t compare_and_delete_success = 0, compare_and_delete_fail = 0;
  uint64_t expire_count = 0;
  uint64_t watchers = 0;
};

// Turns any path into a store key as Go's path.Clean("/" + p) does, with
// the root as "": "a//b/../c/" -> "/a/c", "/" -> "".
std::string CleanKey(std::string_view path);

class Store {
 public:
  // `now_ns`: wall-clock Unix nanoseconds, only for the TTLs shown.
  explicit Store(std::function<int64_t()> now_ns);
  ~Store();

  uint64_t index() const;
  bool HasTtlKeys() const;
  StoreStats stats() const;

  // --- reads
  Outcome Get(const std::string& key, bool recursive, bool sorted);

  // --- writes (apply thread). `expire_ns` 0 means permanent.
  // PUT: creates or replaces a file, or creates a directory.
  Outcome Set(const std::string& key, bool dir, const std::string& value, int64_t expire_ns,
              bool refresh);
  // PUT with prevExist=false, and POST (`unique`: a new key named by the
  // next index, zero-padded to 20 digits, under `key`).
  Outcome Create(const std::string& key, bool dir, const std::string& value, bool unique,
                 int64_t expire_ns);
  // PUT with prevExist=true.
  Outcome Update(const std::string& key, const std::string& value, int64_t expire_ns, bool refresh);
  Outcome CompareAndSwap(const std::string& key, const std::string& prev_value, uint64_t prev_index,
                         const std::string& value, int64_t expire_ns, bool refresh);
  Outcome Delete(const std::string& key, bool dir, bool recursive);
  Outcome CompareAndDelete(const std::string& key, const std::string& prev_value,
                           uint64_t prev_index);
  // Removes every node whose expiry is at or before `cutoff_ns`, each with
  // an expire event, in (expiry, key) order.
  void DeleteExpired(int64_t cutoff_ns);

  // --- watches
  struct WatchStart {
    std::optional<Error> error;
    // Already in the history: the watch is answered at once, nothing is
    // registered.
    std::optional<Event> immediate;
    uint64_t id = 0;          // for CancelWatch when registered
    uint64_t etcd_index = 0;  // the store's index when the watch started
  };
  // `since_index` 0: from the next write on.
  WatchStart Watch(const std::string& key, bool recursive, bool stream, uint64_t since_index,
                   WatchCallback deliver);
  void CancelWatch(uint64_t id);

  // --- persistence
  // The keys written since the last call: a record, or nullopt for a key
  // that no longer exists.
  std::vector<std::pair<std::string, std::optional<NodeRecord>>> TakeChanges();
  // The events of the history added since the last call (oldest first),
  // and the index of the oldest event the history still keeps (0: none):
  // persisted events older than that are to be dropped.
  std::vector<Event> TakeNewEvents(uint64_t* oldest_kept);
  // Replaces the tree, index and event history (start-up, snapshot
  // install). `records` must hold every node's ancestors; `history` holds
  // the events as persisted, oldest first. Watchers stay.
  void Restore(uint64_t index, const std::vector<std::pair<std::string, NodeRecord>>& records,
               std::vector<Event> history = {});

 private:
  struct Node;
  Node* Find(const std::string& key, Error* error);
  Node* EnsureDir(const std::string& key, Error* error);
  Outcome InternalCreate(const std::string& key, bool dir, const std::string& value, bool unique,
                         bool replace, int64_t expire_ns, const char* action);
  NodeView Repr(const Node& n, bool recursive, bool sorted) const;
  void ExpiryAndTtl(const Node& n, NodeView* view) const;
  void RemoveNode(Node* n, const Event& e, bool notify);
  void SetExpiry(Node* n, int64_t expire_ns);
  void Touch(const std::string& key) { dirty_.insert(key); }
  Error ErrorAt(ErrorCode code, std::string cause) const {
    return {code, std::move(cause), index_};
  }

  const std::function<int64_t()> now_ns_;
  mutable std::mutex mu_;
  std::unique_ptr<Node> root_;                     // guarded by mu_
  uint64_t index_ = 0;                             // guarded by mu_
  std::set<std::pair<int64_t, std::string>> ttl_;  // guarded by mu_: (expiry, key)
  WatcherHub hub_;                                 // guarded by mu_
  std::set<std::string> dirty_;                    // guarded by mu_
  StoreStats stats_;                               // guarded by mu_
};

}  // namespace etcdpp::v2store
