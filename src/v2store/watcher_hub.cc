#include "v2store/watcher_hub.h"

namespace etcdpp::v2store {

bool HiddenFrom(const std::string& watch_path, const std::string& key_path) {
  // A removed directory notifies watchers of paths below it.
  if (watch_path.size() > key_path.size()) return false;
  std::string below(1, '/');
  below.append(key_path, watch_path.size());
  return below.find("/_") != std::string::npos;
}

uint64_t WatcherHub::Add(const std::string& key, bool recursive, bool stream, uint64_t since_index,
                         WatchCallback deliver) {
  const uint64_t id = next_id_++;
  by_key_[key].push_back(Watcher{id, recursive, stream, since_index, std::move(deliver)});
  by_id_[id] = key;
  return id;
}

void WatcherHub::Cancel(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto list = by_key_.find(it->second);
  if (list != by_key_.end()) {
    list->second.remove_if([id](const Watcher& w) { return w.id == id; });
    if (list->second.empty()) by_key_.erase(list);
  }
  by_id_.erase(it);
}

void WatcherHub::Notify(const Event& e) {
  history_.Add(e);
  // The root ("") and every prefix of the key: "", "/a", "/a/b".
  const std::string& key = e.node.key;
  NotifyAt(e, "", false);
  for (size_t pos = 1; pos <= key.size(); ++pos) {
    if (pos == key.size() || key[pos] == '/') NotifyAt(e, key.substr(0, pos), false);
  }
}

void WatcherHub::NotifyAt(const Event& e, const std::string& path, bool removed) {
  auto list = by_key_.find(path);
  if (list == by_key_.end()) return;
  const bool own_path = e.node.key == path;
  if (!own_path && HiddenFrom(path, e.node.key)) return;
  for (auto it = list->second.begin(); it != list->second.end();) {
    Watcher& w = *it;
    if ((w.recursive || own_path || removed) && e.index() >= w.since_index) {
      w.deliver(e);
      if (!w.stream) {
        by_id_.erase(w.id);
        it = list->second.erase(it);
        continue;
      }
    }
    ++it;
  }
  if (list->second.empty()) by_key_.erase(list);
}

}  // namespace etcdpp::v2store
