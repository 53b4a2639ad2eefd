// StoreSlot: the member's current MVCC store, replaceable while readers use
// it. A follower that installs a snapshot swaps in a whole new store; the old
// one may be closed only after the last reader has let go of it.
//
// Readers (any thread) take a handle with Get() and keep it for as long as
// anything read from the store is in use. The apply thread alone calls
// Replace(), which returns once no handle to the old store is left. The
// handles are shared_ptrs whose last release signals the slot, so the wait
// is on a condition, not a poll.
//
// mu_ guards the current handle and the count of released generations.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

namespace etcdpp::mvcc {
class KvStore;
}

namespace etcdpp::server {

class StoreSlot {
 public:
  explicit StoreSlot(std::shared_ptr<mvcc::KvStore> store);
  ~StoreSlot();
  StoreSlot(const StoreSlot&) = delete;
  StoreSlot& operator=(const StoreSlot&) = delete;

  std::shared_ptr<mvcc::KvStore> Get() const;
  // Apply thread only, in this order: Publish makes `fresh` the store new
  // readers get; Retire then waits until every handle to the previous
  // store is gone and returns it, no longer shared, for the caller to close.
  void Publish(std::shared_ptr<mvcc::KvStore> fresh);
  std::shared_ptr<mvcc::KvStore> Retire();
  // For the apply thread, which owns writes: the store without a handle.
  mvcc::KvStore* raw() const { return owner_.get(); }

 private:
  // A reader handle on `store` whose last release records `generation`.
  std::shared_ptr<mvcc::KvStore> Handle(mvcc::KvStore* store, uint64_t generation);

  // Written by the apply thread only (Replace), which is the only reader of
  // it without mu_.
  std::shared_ptr<mvcc::KvStore> owner_;
  std::shared_ptr<mvcc::KvStore> retiring_;  // apply thread only
  mutable std::mutex mu_;
  std::condition_variable released_cv_;
  std::shared_ptr<mvcc::KvStore> handle_;  // guarded by mu_
  uint64_t generation_ = 0;                // guarded by mu_
  uint64_t released_ = 0;                  // guarded by mu_: newest generation fully released
};

}  // namespace etcdpp::server
