// Flushes a store's commits on a thread of its own, so that a commit costs
// its writer the pwrite()s of its pages and not the wait for the disk.
//
// Why. The apply thread commits the store about every 100 ms (etcd's
// backend batch interval) and applies nothing while a commit runs; with the
// flush inside the commit, a commit of ~1,400 pages under `etcdctl check
// perf --load l` held the apply thread ~24 ms, ~20 of them in fdatasync, and
// every answer due meanwhile waited (docs/durability.md, "The store's flush
// off the apply thread").
//
// The order that keeps a power cut survivable (flushed_commit.h says why it
// suffices): a commit writes its pages only after the previous commit's
// flush has ended (BeforeCommit), so at most the newest commit is ever
// unflushed. What the WAL may let go of is recorded by Sync.
//
// Thread-safety: BeforeCommit, AfterCommit and Sync may be called from any
// thread, but commits are LMDB's to order (one writer at a time); the flush
// runs on the object's own thread. Errors are sticky: once a flush failed,
// the data file's state on disk is unknown (the kernel may have dropped the
// failed pages), so every later call returns that error and the member
// stops.
#pragma once

#include <lmdb.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"

namespace etcdpp::mvcc {

class DeferredFlush {
 public:
  // `env` is open with MDB_NOSYNC and without MDB_WRITEMAP (a write map
  // writes pages before the commit, when no order can be kept); `dir_fd`
  // is the directory holding its data file, open for this object's life
  // (the caller's; LmdbEnv keeps one that follows the directory across
  // renames). Flushes the file and records that (Sync), so nothing older
  // than this call is ever rolled back.
  // `on_flush`, if set, is told each background flush's duration, on the
  // flush thread.
  static Result<std::unique_ptr<DeferredFlush>> Start(
      MDB_env* env, int dir_fd, std::function<void(std::chrono::nanoseconds)> on_flush = {});
  // Waits for the flush in flight and records every commit as flushed
  // (unless a flush failed), so a store closed in order opens as it was
  // left. Only a store whose process ended without closing it (a crash, a
  // kill, a power cut) can lose its newest commit to the roll-back at open.
  ~DeferredFlush();
  DeferredFlush(const DeferredFlush&) = delete;
  DeferredFlush& operator=(const DeferredFlush&) = delete;

  // Before mdb_txn_commit of a write transaction: returns once every
  // earlier commit is on disk, or the failed flush's error.
  Status BeforeCommit();
  // After a successful mdb_txn_commit: starts flushing it, unless it wrote
  // nothing (LMDB writes no meta page for an empty transaction).
  void AfterCommit();
  // Every commit so far on disk and recorded (RecordFlushedCommit), so the
  // next open keeps them all. Waits for the flush in flight, then writes and
  // flushes the record.
  Status Sync();

 private:
  DeferredFlush(MDB_env* env, int dir_fd, std::function<void(std::chrono::nanoseconds)> on_flush);
  uint64_t LastCommittedTxnid() const;
  void Run();

  MDB_env* const env_;
  const int dir_fd_;  // the store's directory (not owned), wherever it is renamed to
  const std::function<void(std::chrono::nanoseconds)> on_flush_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t committed_ = 0;        // guarded by mu_: the newest commit's transaction id
  uint64_t flushed_ = 0;          // guarded by mu_: every commit up to this one is on disk
  std::optional<Status> failed_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::thread thread_;            // runs Run(); flushes the file for every commit after Start
};

}  // namespace etcdpp::mvcc
