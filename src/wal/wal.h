// Wal: the write-ahead log of Raft state (entries, hard state, snapshot
// markers), after etcd's wal package. The on-disk format and the recovery
// rules are specified in docs/wal.md and record.h.
//
// Layout: a directory of segment files "<seq:016x>-<index:016x>.wal", where
// seq counts segments from 0 and index is the Raft index of the first entry
// the segment was cut for (last entry index + 1). Each segment begins with a
// kSegmentHeader record (chaining it to its predecessor by CRC), the metadata
// and the latest hard state, so older segments can be deleted once a
// snapshot covers them. Segments are created as "<name>.tmp", preallocated,
// synced and renamed, and the directory is synced: a segment name, once
// visible after a crash, always has a complete header.
//
// Lifecycle:
//   Create(...)            -> a new WAL, ready to append;
//   Open(...) + ReadAll()  -> recovers the state after a snapshot marker and
//                             repairs a torn tail, then ready to append.
//
// Thread-compatible: one owner (the server's Raft loop) calls every method.
// After an I/O error while writing, every later call returns that error: the
// on-disk tail is unknown, so the process must reopen (etcd exits here).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "raftpb/raft.pb.h"
#include "wal/record.h"

namespace etcdpp::wal {

struct Options {
  // A segment is cut once it holds at least this many bytes; new segments are
  // preallocated to this size. etcd's default, 64 MiB.
  uint64_t segment_size = 64 << 20;
  // Told how long each fsync of a record-holding segment took (etcd's
  // wal_fsync_duration). Runs on the writer's thread, between the fsync and
  // the return of the call that synced; keep it cheap.
  std::function<void(std::chrono::nanoseconds)> on_sync;
};

// What ReadAll recovers.
struct ReadResult {
  std::string metadata;
  raftpb::HardState hard_state;
  // The log after the start marker's index, gap-free: Raft's overwrite rule
  // applied (an entry at index i drops every entry at i or later read before it).
  std::vector<raftpb::Entry> entries;
};

// "0000000000000001-00000000000000ab.wal" for (1, 0xab).
std::string SegmentName(uint64_t seq, uint64_t index);
// Parses a segment name; nullopt for any other file name.
struct SegmentId {
  uint64_t seq;
  uint64_t index;
};
std::optional<SegmentId> ParseSegmentName(std::string_view name);

class Wal {
 public:
  // Creates a WAL in `dir` (created if missing; it must hold no segment)
  // whose every segment carries `metadata`. Its start marker is {0, 0}.
  // Fails with kFailedPrecondition if `dir` already holds a WAL.
  static Result<std::unique_ptr<Wal>> Create(Env* env, const std::string& dir, std::string metadata,
                                             Options options = {});

  // Opens the WAL in `dir` to recover from snapshot marker `start` (the
  // snapshot the server loaded, or {0, 0}). Locks the directory (kUnavailable
  // if another Wal holds it). Call ReadAll next.
  static Result<std::unique_ptr<Wal>> Open(Env* env, const std::string& dir, SnapshotMarker start,
                                           Options options = {});

  // True if `dir` holds at least one segment file.
  static bool Exists(Env* env, const std::string& dir);

  // Every snapshot marker in the WAL whose index the saved hard state has
  // committed (a snapshot beyond the commit index may not be the cluster's).
  // Reads the gap-free run of segments that ends with the last one.
  // Read-only and lock-free: for choosing which snapshot file to load before
  // Open. Tolerates a torn tail; refuses corruption like ReadAll.
  static Result<std::vector<SnapshotMarker>> ValidSnapshotMarkers(Env* env, const std::string& dir);

  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Reads every record from the segment holding `start` on. Fails with
  //   kCorruption   damage that is not a torn final write (message names the
  //                 file and byte offset), a broken segment chain, an entry gap,
  //                 conflicting metadata, or the start marker with another term;
  //   kNotFound     no marker for `start` in the WAL.
  // A torn tail of the last segment is truncated (and re-zeroed) before
  // returning. Once, after Open; then the WAL accepts writes.
  Result<ReadResult> ReadAll();

  // Appends `entries` then `hard_state` (skipped when empty: all zero) as one
  // write, followed by one fdatasync if `sync`: the group commit of one Raft
  // Ready. Entries must follow Raft's log (index = previous + 1, or lower to
  // overwrite a suffix). Returns once durable when `sync`.
  Status Save(const raftpb::HardState& hard_state, std::span<const raftpb::Entry> entries,
              bool sync = true);

  // Records that a snapshot at `marker` has been saved; written and synced.
  Status SaveSnapshot(const SnapshotMarker& marker);

  // Makes everything written so far durable.
  Status Sync();

  // Deletes the segments that hold only entries below `index`: every segment
  // before the last one whose name index is <= `index`. Call with the index
  // of a saved snapshot; Open at that snapshot's marker keeps working.
  Status ReleaseTo(uint64_t index);

  // Syncs and closes. Further calls fail. Called by the destructor.
  Status Close();

  // The segment file names currently in use, oldest first.
  std::vector<std::string> SegmentNames() const;
  // Index of the last entry or snapshot marker written (or read).
  uint64_t last_index() const { return last_index_; }
  const std::string& dir() const { return dir_; }

 private:
  enum class State { kNeedsRead, kWritable, kClosed };

  Wal(Env* env, std::string dir, Options options);

  Status CheckWritable() const;
  // Writes buffer_ at the end of the current segment, then syncs if asked.
  Status WriteBuffer(bool sync);
  // Cuts a new segment if the current one is full.
  Status MaybeCut();
  // file_->Sync(), timed for options_.on_sync.
  Status TimedSync();
  Status Cut();
  // Creates segment (seq, index) holding its header, the metadata and the
  // latest hard state, durably; becomes the current segment.
  Status StartSegment(uint64_t seq, uint64_t index, uint32_t prev_crc);
  // Remembers `s` as the sticky write error.
  Status Fail(Status s);

  Env* const env_;
  const std::string dir_;
  const Options options_;
  std::unique_ptr<FileLock> lock_;
  State state_ = State::kNeedsRead;
  Status error_;  // Sticky write error.

  std::vector<SegmentId> segments_;  // Every segment in dir_, by seq.
  size_t read_from_ = 0;             // First segment ReadAll reads.
  SnapshotMarker start_;

  std::unique_ptr<WritableFile> file_;  // The last segment, open for appends.
  uint64_t offset_ = 0;                 // Its write position.
  uint64_t durable_offset_ = 0;         // Its synced prefix.
  uint32_t last_crc_ = 0;               // CRC of its last record: the next segment's chain.

  std::string metadata_;
  raftpb::HardState hard_state_;  // Latest saved: repeated at each segment start.
  uint64_t last_index_ = 0;
  std::string buffer_;  // Encoding buffer, reused across Saves.
};

}  // namespace etcdpp::wal
