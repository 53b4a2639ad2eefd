#include "mvcc/deferred_flush.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include "mvcc/flushed_commit.h"
#include "mvcc/lmdb_env.h"

namespace etcdpp::mvcc {

Result<std::unique_ptr<DeferredFlush>> DeferredFlush::Start(
    MDB_env* env, int dir_fd, std::function<void(std::chrono::nanoseconds)> on_flush) {
  if (int rc = mdb_env_sync(env, 1); rc != 0) return LmdbError(rc, "flushing the store");
  std::unique_ptr<DeferredFlush> flush(new DeferredFlush(env, dir_fd, std::move(on_flush)));
  ETCDPP_RETURN_IF_ERROR(flush->Sync());
  return flush;
}

DeferredFlush::DeferredFlush(MDB_env* env, int dir_fd,
                             std::function<void(std::chrono::nanoseconds)> on_flush)
    : env_(env), dir_fd_(dir_fd), on_flush_(std::move(on_flush)) {
  committed_ = flushed_ = LastCommittedTxnid();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-flush");
    Run();
  });
}

DeferredFlush::~DeferredFlush() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (!failed_) {
    if (Status st = RecordFlushedCommit(dir_fd_, flushed_); !st.ok()) {
      spdlog::warn("closing the store: {}; its next open drops its newest commit", st.ToString());
    }
  }
}

uint64_t DeferredFlush::LastCommittedTxnid() const {
  MDB_envinfo info;
  return mdb_env_info(env_, &info) == 0 ? info.me_last_txnid : 0;
}

Status DeferredFlush::BeforeCommit() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || flushed_ >= committed_; });
  return failed_ ? *failed_ : Status::OK();
}

void DeferredFlush::AfterCommit() {
  const uint64_t txnid = LastCommittedTxnid();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (txnid <= committed_) return;
    committed_ = txnid;
  }
  cv_.notify_all();
}

Status DeferredFlush::Sync() {
  uint64_t txnid = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return failed_ || flushed_ >= committed_; });
    if (failed_) return *failed_;
    txnid = flushed_;
  }
  // A commit made meanwhile is newer than the record, which is all the
  // record claims.
  return RecordFlushedCommit(dir_fd_, txnid);
}

void DeferredFlush::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || (committed_ > flushed_ && !failed_); });
    if (committed_ <= flushed_ || failed_) return;  // stopping, nothing left to flush
    const uint64_t target = committed_;
    lock.unlock();
    // The data pages and the meta page of every commit up to `target`.
    const auto started = std::chrono::steady_clock::now();
    const int rc = mdb_env_sync(env_, 1);
    if (rc == 0 && on_flush_) on_flush_(std::chrono::steady_clock::now() - started);
    lock.lock();
    if (rc == 0) {
      flushed_ = target;
    } else {
      failed_ = LmdbError(rc, "flushing the store");
      spdlog::error("{}; the store's state on disk is unknown", failed_->ToString());
    }
    cv_.notify_all();
  }
}

}  // namespace etcdpp::mvcc
