// The last `capacity` events (etcd keeps 1000), for watches that start in
// the past (waitIndex). Events arrive with consecutive indexes, so the
// event at index i sits at a fixed offset from the oldest one kept.
//
// Not thread-safe: the Store's mutex guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "v2store/errors.h"
#include "v2store/event.h"

namespace etcdpp::v2store {

inline constexpr size_t kEventHistoryCapacity = 1000;

class EventHistory {
 public:
  explicit EventHistory(size_t capacity = kEventHistoryCapacity) : capacity_(capacity) {}

  void Add(Event event);
  // The first event at or after `index` that a watcher of `key` (and, if
  // `recursive`, of everything below it) would see; nullopt when none has
  // happened yet. kEventIndexCleared when `index` is older than the oldest
  // event kept (the error's index is left for the caller to fill).
  struct ScanResult {
    std::optional<Event> event;
    std::optional<Error> error;
  };
  ScanResult Scan(const std::string& key, bool recursive, uint64_t index) const;
  // Forgets everything (the store was replaced by a snapshot).
  void Clear() { events_.clear(); }

 private:
  size_t capacity_;
  std::deque<Event> events_;  // oldest first
};

// Whether a watcher of `key` cares about `e` (etcd's rules: the key itself;
// anything below it when recursive; a deleted or expired directory above it).
bool EventConcerns(const Event& e, const std::string& key, bool recursive);

}  // namespace etcdpp::v2store
