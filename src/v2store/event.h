// What the v2 API returns: a node as clients see it (NodeView) and the
// event an operation produced (Event). Both are plain values, copied out of
// the store under its lock, so they stay valid after the tree changes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace etcdpp::v2store {

// Actions, as etcd names them on the wire.
inline constexpr char kActionGet[] = "get";
inline constexpr char kActionSet[] = "set";
inline constexpr char kActionCreate[] = "create";
inline constexpr char kActionUpdate[] = "update";
inline constexpr char kActionDelete[] = "delete";
inline constexpr char kActionCompareAndSwap[] = "compareAndSwap";
inline constexpr char kActionCompareAndDelete[] = "compareAndDelete";
inline constexpr char kActionExpire[] = "expire";

// A node as rendered to clients. Zero / empty fields are left out of the
// JSON (etcd's omitempty), so the root, whose key is "" and indexes 0,
// shows neither.
struct NodeView {
  std::string key;  // "" for the root, else "/a/b"
  std::optional<std::string> value;
  bool dir = false;
  // Unix nanoseconds; 0: the node never expires.
  int64_t expiration_ns = 0;
  // Seconds left, rounded up, as of when the view was taken.
  int64_t ttl = 0;
  // Only for directories listed by a get (recursively for recursive gets).
  std::vector<NodeView> nodes;
  uint64_t modified_index = 0;
  uint64_t created_index = 0;
};

struct Event {
  std::string action;
  NodeView node;
  std::optional<NodeView> prev_node;
  // The store's index when the event was produced (X-Etcd-Index); not part
  // of the JSON.
  uint64_t etcd_index = 0;
  // A TTL refresh: kept in the history for waitIndex, but never wakes a
  // watcher (etcd's refresh events are silent).
  bool refresh = false;

  // The index the event happened at (its node's modified index).
  uint64_t index() const { return node.modified_index; }
};

}  // namespace etcdpp::v2store
