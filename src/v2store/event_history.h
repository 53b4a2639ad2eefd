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
#include <vector>

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
  void Clear() {
    events_.clear();
    unsaved_ = 0;
  }
  // The events added since the last call that are still kept, oldest first.
  std::vector<Event> TakeUnsaved();
  // Replaces the history with `events` (consecutive indexes, oldest first;
  // only the newest `capacity` are kept), all counted as saved.
  void Restore(std::vector<Event> events);
  size_t capacity() const { return capacity_; }
  // The oldest event's index, 0 when empty.
  uint64_t first_index() const { return events_.empty() ? 0 : events_.front().index(); }

 private:
  size_t capacity_;
  std::deque<Event> events_;  // oldest first
  size_t unsaved_ = 0;        // the newest events not taken by TakeUnsaved yet
};

// Whether a watcher of `key` cares about `e` (etcd's rules: the key itself;
// anything below it when recursive; a deleted or expired directory above it).
bool EventConcerns(const Event& e, const std::string& key, bool recursive);

}  // namespace etcdpp::v2store
