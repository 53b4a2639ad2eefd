// Env: the file-system seam (after leveldb's Env). Every file operation of the
// WAL, the snapshotter and the server goes through an Env so tests can swap in
// FaultEnv (base/fault_env.h), which simulates crashes that lose unsynced data.
//
// Durability contract, the one POSIX gives and FaultEnv enforces:
//   - bytes written to a file are durable only after WritableFile::Sync();
//   - a created, renamed or removed directory entry is durable only after
//     SyncDir() on its directory.
// Paths are plain strings joined with '/'. All methods are thread-safe for
// distinct files; a WritableFile has one owner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace etcdpp {

// A file open for writing. Writes go to a position that starts at the offset
// given when the file was opened and advances with every Append; the file is
// not opened O_APPEND, so a preallocated file is filled from the front.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `data` at the current position.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync: every byte written so far (and the file size) survives a crash.
  virtual Status Sync() = 0;
  // Extends the file with zeros to at least `size` bytes, allocating the
  // blocks now (fallocate) so later writes do not fail on a full disk.
  // ext4 marks such blocks unwritten, and the first write into one still
  // changes the block map, which the next Sync writes too (BENCHMARKS.md,
  // "Where a sequential put's flush sleeps"). Never shrinks; the position
  // does not move.
  virtual Status Preallocate(uint64_t size) = 0;
  // Sets the file size to exactly `size`; the position does not move.
  virtual Status Truncate(uint64_t size) = 0;
  // The offset the next Append writes at.
  virtual uint64_t Position() const = 0;
  // Closes the file (without syncing). Further calls fail.
  virtual Status Close() = 0;
};

// An advisory exclusive lock; released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system. Never deleted.
  static Env* Default();

  // Creates `path`, or truncates it if it exists, for writing at offset 0.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens the existing file `path` for writing at `offset`, keeping its contents.
  virtual Result<std::unique_ptr<WritableFile>> OpenWritableFile(const std::string& path,
                                                                 uint64_t offset) = 0;
  // Reads the whole file.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`, without "." and "..", unsorted.
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  // Creates `dir` and any missing parents; OK if it already exists. Call
  // SyncDir on the parent to make a new directory durable.
  virtual Status CreateDir(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // fsync on the directory: makes entries created, renamed or removed in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Takes an exclusive lock on `path` (created if missing) with flock, so two
  // processes, or two opens in one process, cannot own the same data. Fails
  // with kUnavailable when the lock is held.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  // Removes `path` and everything below it; OK if it does not exist. Only the
  // POSIX Env implements it (the server's store directories); others answer
  // kUnimplemented.
  virtual Status RemoveTree(const std::string& path);
  // Atomically swaps the directory entries `a` and `b` (both must exist), so
  // a crash leaves either both old or both new names. POSIX Env only.
  virtual Status ExchangePaths(const std::string& a, const std::string& b);
};

// "a/b" from ("a", "b"); tolerates a trailing '/' on dir.
std::string JoinPath(std::string_view dir, std::string_view name);
// The directory part of `path` ("." when there is none).
std::string DirName(std::string_view path);

// Durably replaces `path` with `data`: writes `path`.tmp, syncs it, renames it
// over `path` and syncs the directory. After a crash `path` holds either its
// old contents or `data`, never a mix.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

}  // namespace etcdpp
