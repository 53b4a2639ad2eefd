// FaultEnv: an in-memory Env that remembers what is durable, for crash tests.
//
// Every file has two contents: what reads see (the page cache) and what a
// crash leaves (the disk). WritableFile::Sync copies the first to the second.
// Directory entries likewise: creating, renaming or removing a file changes
// what GetChildren sees at once, but only SyncDir on the directory makes the
// change survive a crash. A "crash" (DropUnsyncedData or
// DropUnsyncedSectorsRandomly) reverts names and contents to their durable
// state; file handles opened before it fail afterwards, as the process that
// held them is gone.
//
// Simplification: CreateDir is durable at once.
//
// Thread-safe (one mutex); meant for tests, not speed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "base/env.h"

namespace etcdpp {

class FaultEnv final : public Env {
 public:
  FaultEnv();
  ~FaultEnv() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> OpenWritableFile(const std::string& path,
                                                         uint64_t offset) override;
  Result<std::string> ReadFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  Result<uint64_t> GetFileSize(const std::string& path) override;
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Crash / power loss: every file reverts to its last synced contents and
  // size, every directory to its entries at its last SyncDir. Locks are released.
  void DropUnsyncedData();
  // A harsher crash: the disk persisted an arbitrary subset (chosen by `seed`)
  // of the unsynced `sector_size`-byte sectors, in no particular order, and
  // the file size is either the synced or the latest one. Unwritten sectors
  // read as their synced bytes, or zeros past the synced size.
  void DropUnsyncedSectorsRandomly(uint64_t seed, uint64_t sector_size = 512);

  // Flips bits (byte ^= xor_mask) at `offset`, in both the visible and the
  // durable contents: media corruption rather than a lost write.
  Status CorruptByte(const std::string& path, uint64_t offset, uint8_t xor_mask = 0xff);

  // While set, Append / Sync (and SyncDir) fail with kIOError and change nothing.
  void SetFailWrites(bool fail);
  void SetFailSyncs(bool fail);
  // The next `n` syncs (WritableFile::Sync or SyncDir) succeed, then every
  // one fails as with SetFailSyncs(true): stops a workload at sync point n.
  void FailSyncsAfter(uint64_t n);

  // Counters of successful WritableFile::Append and ::Sync calls, so tests
  // can check that a batch costs one write and one sync.
  uint64_t append_count() const;
  uint64_t sync_count() const;

 private:
  struct File;
  class Handle;
  class Lock;
  using Dir = std::map<std::string, std::shared_ptr<File>>;  // name -> inode

  // Splits a path into (directory, name).
  static std::pair<std::string, std::string> Split(const std::string& path);
  std::shared_ptr<File> FindLocked(const std::string& path);
  // Reverts names to their durable state; contents are fixed by the caller.
  void RevertNamesLocked();

  mutable std::mutex mu_;
  std::set<std::string> dirs_;
  std::map<std::string, Dir> live_;     // What GetChildren sees.
  std::map<std::string, Dir> durable_;  // What survives a crash.
  std::set<std::string> locks_;
  // Whether the next sync fails, consuming FailSyncsAfter's budget.
  bool SyncFailsLocked();

  uint64_t crash_epoch_ = 0;  // Handles from an older epoch are dead.
  bool fail_writes_ = false;
  bool fail_syncs_ = false;
  int64_t syncs_before_failure_ = -1;  // FailSyncsAfter's budget; -1: none.
  uint64_t appends_ = 0;
  uint64_t syncs_ = 0;
};

}  // namespace etcdpp
