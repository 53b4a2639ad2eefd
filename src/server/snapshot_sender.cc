#include "server/snapshot_sender.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/env.h"
#include "mvcc/kv_store.h"
#include "server/store_slot.h"
#include "transport/peer_network.h"

namespace etcdpp::server {

SnapshotSender::SnapshotSender(Env* env, std::string dir, StoreSlot* store,
                               transport::PeerNetwork* transport, int threads,
                               std::function<void(uint64_t, bool)> report)
    : env_(env),
      dir_(std::move(dir)),
      store_(store),
      transport_(transport),
      report_(std::move(report)) {
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Work(); });
}

SnapshotSender::~SnapshotSender() { Stop(); }

void SnapshotSender::Send(raftpb::Message message) {
  spdlog::info("member {:x} needs a snapshot at index {}; queued for sending", message.to(),
               message.snapshot().metadata().index());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(message));
      cv_.notify_one();
      return;
    }
  }
  report_(message.to(), true);
}

void SnapshotSender::Stop() {
  std::deque<raftpb::Message> unsent;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    unsent.swap(queue_);
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  for (const raftpb::Message& m : unsent) report_(m.to(), true);
}

void SnapshotSender::Work() {
  for (;;) {
    raftpb::Message message;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      message = std::move(queue_.front());
      queue_.pop_front();
    }
    SendOne(std::move(message));
  }
}

void SnapshotSender::SendOne(raftpb::Message message) {
  const uint64_t to = message.to();
  const std::string path = dir_ + "/" + std::to_string(message.snapshot().metadata().index()) +
                           "-" + std::to_string(to) + ".send.db";
  (void)env_->RemoveFile(path);
  Status st = store_->Get()->CopyToFile(path);
  if (!st.ok()) {
    spdlog::warn("copying the store for member {:x} failed: {}", to, st.ToString());
    (void)env_->RemoveFile(path);
    report_(to, true);
    return;
  }
  // The transport streams the file from a thread of its own and calls back
  // once; the file is ours to remove then.
  transport_->SendSnapshot(std::move(message), path, [this, path, to](bool delivered) {
    (void)env_->RemoveFile(path);
    report_(to, !delivered);
  });
}

}  // namespace etcdpp::server
