// LeaseExpiryQueue: the leader's schedule of lease deadlines, an indexed
// binary min-heap keyed by lease id.
//
// Why indexed: every keep-alive moves one lease's deadline. A plain heap
// with lazy deletion (etcd 3.4's) grows by one stale item per keep-alive
// until the item reaches the top; here Upsert moves the lease's single item
// in O(log n), so the queue holds exactly one item per scheduled lease and
// the expiry check looks at the top only (no scan per tick).
//
// Invariants: heap_[i].at >= heap_[(i - 1) / 2].at; pos_[heap_[i].id] == i;
// heap_.size() == pos_.size().
//
// Not thread-safe: the lessor guards it with its mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace etcdpp::lease {

class LeaseExpiryQueue {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Item {
    TimePoint at;
    int64_t id = 0;
  };

  // Schedules `id` at `at`, replacing its earlier deadline if it has one.
  void Upsert(int64_t id, TimePoint at) {
    auto it = pos_.find(id);
    if (it == pos_.end()) {
      pos_.emplace(id, heap_.size());
      heap_.push_back(Item{at, id});
      SiftUp(heap_.size() - 1);
      return;
    }
    const size_t i = it->second;
    const TimePoint old = heap_[i].at;
    heap_[i].at = at;
    if (at < old) {
      SiftUp(i);
    } else {
      SiftDown(i);
    }
  }

  // Unschedules `id`; no-op if it is not queued.
  void Remove(int64_t id) {
    auto it = pos_.find(id);
    if (it == pos_.end()) return;
    const size_t i = it->second;
    pos_.erase(it);
    const size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      pos_[heap_[i].id] = i;
    }
    heap_.pop_back();
    if (i < heap_.size()) {
      SiftUp(i);
      SiftDown(i);
    }
  }

  // Replaces the whole schedule in O(n) (a leader's promotion).
  void Reset(std::vector<Item> items) {
    heap_ = std::move(items);
    pos_.clear();
    pos_.reserve(heap_.size());
    for (size_t i = 0; i < heap_.size(); ++i) pos_[heap_[i].id] = i;
    if (heap_.size() < 2) return;
    for (size_t i = heap_.size() / 2; i-- > 0;) SiftDown(i);
  }

  void Clear() {
    heap_.clear();
    pos_.clear();
  }

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  bool Contains(int64_t id) const { return pos_.count(id) != 0; }
  // The earliest deadline. Requires !empty().
  const Item& Top() const { return heap_.front(); }

 private:
  void Place(size_t i, Item item) {
    pos_[item.id] = i;
    heap_[i] = item;
  }

  void SiftUp(size_t i) {
    Item item = heap_[i];
    while (i > 0) {
      const size_t parent = (i - 1) / 2;
      if (!(item.at < heap_[parent].at)) break;
      Place(i, heap_[parent]);
      i = parent;
    }
    Place(i, item);
  }

  void SiftDown(size_t i) {
    Item item = heap_[i];
    const size_t n = heap_.size();
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1].at < heap_[child].at) ++child;
      if (!(heap_[child].at < item.at)) break;
      Place(i, heap_[child]);
      i = child;
    }
    Place(i, item);
  }

  std::vector<Item> heap_;
  std::unordered_map<int64_t, size_t> pos_;
};

}  // namespace etcdpp::lease
