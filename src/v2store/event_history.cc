#include "v2store/event_history.h"

#include <algorithm>

namespace etcdpp::v2store {

bool EventConcerns(const Event& e, const std::string& key, bool recursive) {
  if (e.node.key == key) return true;
  if (recursive && e.node.key.starts_with(key + "/")) return true;
  const bool removal = e.action == kActionDelete || e.action == kActionExpire;
  // etcd compares the raw prefix here (no separator), and so do we.
  return removal && e.prev_node && e.prev_node->dir && key.starts_with(e.prev_node->key);
}

void EventHistory::Add(Event event) {
  events_.push_back(std::move(event));
  while (events_.size() > capacity_) events_.pop_front();
  unsaved_ = std::min(unsaved_ + 1, events_.size());
}

std::vector<Event> EventHistory::TakeUnsaved() {
  std::vector<Event> out(events_.end() - static_cast<std::ptrdiff_t>(unsaved_), events_.end());
  unsaved_ = 0;
  return out;
}

void EventHistory::Restore(std::vector<Event> events) {
  events_.clear();
  for (Event& e : events) events_.push_back(std::move(e));
  while (events_.size() > capacity_) events_.pop_front();
  unsaved_ = 0;
}

EventHistory::ScanResult EventHistory::Scan(const std::string& key, bool recursive,
                                            uint64_t index) const {
  ScanResult result;
  const uint64_t first = events_.empty() ? 0 : events_.front().index();
  const uint64_t last = events_.empty() ? 0 : events_.back().index();
  if (index < first) {
    result.error = Error{ErrorCode::kEventIndexCleared,
                         "the requested history has been cleared [" + std::to_string(first) + "/" +
                             std::to_string(index) + "]",
                         0};
    return result;
  }
  if (events_.empty() || index > last) return result;
  for (size_t i = index - first; i < events_.size(); ++i) {
    const Event& e = events_[i];
    if (e.refresh) continue;
    if (EventConcerns(e, key, recursive)) {
      result.event = e;
      return result;
    }
  }
  return result;
}

}  // namespace etcdpp::v2store
