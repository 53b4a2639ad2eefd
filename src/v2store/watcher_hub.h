// The v2 watchers of one store, by the key they watch. A non-stream
// watcher hears one event and is gone; a stream watcher stays until
// cancelled. Every event also goes into the history (event_history.h).
//
// Not thread-safe: the Store's mutex guards it. Deliveries run under that
// mutex, so a watcher's callback must only hand the event on (post it to
// the HTTP connection's strand), never block or call back into the store.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "v2store/event.h"
#include "v2store/event_history.h"

namespace etcdpp::v2store {

using WatchCallback = std::function<void(const Event&)>;

class WatcherHub {
 public:
  // Registers a watcher; returns its id for Cancel.
  uint64_t Add(const std::string& key, bool recursive, bool stream, uint64_t since_index,
               WatchCallback deliver);
  // Safe to call for a watcher already gone.
  void Cancel(uint64_t id);
  size_t count() const { return by_id_.size(); }

  // Records the event and wakes the watchers of its key and of every
  // directory above it (etcd: notify).
  void Notify(const Event& e);
  // Wakes the watchers of exactly `path`, one of the nodes a delete or an
  // expiry removes (etcd: notifyWatchers with deleted=true).
  void NotifyRemoved(const Event& e, const std::string& path) { NotifyAt(e, path, true); }
  // Records an event that wakes nobody (a TTL refresh).
  void AddSilent(const Event& e) { history_.Add(e); }

  EventHistory& history() { return history_; }

 private:
  struct Watcher {
    uint64_t id;
    bool recursive;
    bool stream;
    uint64_t since_index;
    WatchCallback deliver;
  };
  void NotifyAt(const Event& e, const std::string& path, bool removed);

  EventHistory history_;
  uint64_t next_id_ = 1;
  std::map<std::string, std::list<Watcher>> by_key_;
  std::map<uint64_t, std::string> by_id_;  // id -> watched key
};

// Whether `key_path`, seen from a watcher of `watch_path`, lies in a hidden
// node (a name starting with '_' below the watched path).
bool HiddenFrom(const std::string& watch_path, const std::string& key_path);

}  // namespace etcdpp::v2store
