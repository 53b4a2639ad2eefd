#include "server/store_slot.h"

#include <utility>

#include "mvcc/kv_store.h"

namespace etcdpp::server {

StoreSlot::StoreSlot(std::shared_ptr<mvcc::KvStore> store) : owner_(std::move(store)) {
  handle_ = Handle(owner_.get(), ++generation_);
}

StoreSlot::~StoreSlot() {
  std::shared_ptr<mvcc::KvStore> last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last = std::move(handle_);
  }
  // Released outside mu_: the handle's deleter takes it. Readers still
  // holding handles must be gone by now (the server stops them first).
}

std::shared_ptr<mvcc::KvStore> StoreSlot::Handle(mvcc::KvStore* store, uint64_t generation) {
  return std::shared_ptr<mvcc::KvStore>(store, [this, generation](mvcc::KvStore*) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (generation > released_) released_ = generation;
    }
    released_cv_.notify_all();
  });
}

std::shared_ptr<mvcc::KvStore> StoreSlot::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handle_;
}

void StoreSlot::Publish(std::shared_ptr<mvcc::KvStore> fresh) {
  std::shared_ptr<mvcc::KvStore> old_handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old_handle = std::move(handle_);
    handle_ = Handle(fresh.get(), ++generation_);
  }
  retiring_ = std::move(owner_);
  owner_ = std::move(fresh);
  // Dropped outside mu_: the last release of a generation takes mu_.
  old_handle.reset();
}

std::shared_ptr<mvcc::KvStore> StoreSlot::Retire() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t previous = generation_ - 1;
    released_cv_.wait(lock, [&] { return released_ >= previous; });
  }
  return std::move(retiring_);
}

}  // namespace etcdpp::server
