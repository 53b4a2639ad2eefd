// What a store's data file is known to hold on disk, for stores whose
// commits return before their pages are flushed (LmdbOptions::deferred_flush).
//
// The problem. Such a commit pwrite()s its pages and then its meta page into
// the page cache, and DeferredFlush flushes them afterwards. Until that
// flush ends, the kernel may write the meta page before the pages it points
// to, and a power cut then leaves a newest meta page naming a tree that is
// not all on disk. LMDB opens the newest of its two meta pages, so it would
// serve that tree.
//
// What makes it recoverable. DeferredFlush lets a commit write its pages
// only after the previous commit's flush has ended, so at any moment at most
// the newest commit is unflushed, and the meta page before it (in the other
// of LMDB's two slots) names a tree that is wholly on disk: that commit was
// flushed, and the newest commit wrote only pages free in that tree (LMDB
// reuses a page only once no reader and neither of the two newest meta pages
// can reach it). So after a cut the store is either the newest commit or,
// safely, the one before it, and the WAL holds every entry of both (it is
// released only up to what RecordFlushedCommit recorded).
//
// The record. `flushed-commit` beside data.mdb says "every commit up to
// transaction T of the data file with inode I is on disk":
//
//   0   magic        8 bytes "etcdppFC"
//   8   txnid T      8 bytes big-endian
//   16  inode I      8 bytes big-endian
//   24  crc32c       4 bytes big-endian, of bytes 0-23
//
// 28 bytes written in place at offset 0 (within one sector) and flushed. It
// is written when a store opens (after flushing the file) and by Sync (before
// the WAL lets go of what the store holds), so T may be older than the last
// flushed commit: opening then drops the newest commit even if it was
// flushed, which costs a replay from the WAL, never data.
//
// A data file without a record, or with one naming another inode (a copy
// moved in by a restore, a defragmentation or a snapshot install; those are
// flushed whole before they are used), is opened as it is.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace etcdpp::mvcc {

// The record's file name, in the store's directory.
inline constexpr char kFlushedCommitFile[] = "flushed-commit";

// Before LMDB opens `dir`: if the record says the newest meta page of
// dir/data.mdb is newer than the last flushed commit, overwrites it with
// the meta page before it (the previous commit) and flushes the file, so
// LMDB opens that commit. Sets *rolled_back_txnid to the transaction
// dropped, or 0. A missing data file or record, or a record of another
// file, changes nothing.
Status RollBackUnflushedCommit(const std::string& dir, uint64_t* rolled_back_txnid);

// Records that every commit up to `txnid` of data.mdb in the directory
// open as `dir_fd` is on disk; the caller has flushed the data file.
// Flushes the record, and the directory the first time. A descriptor, not
// a path: a store opened in one directory may be renamed to another while
// open (a defragmentation or a snapshot install swaps it in).
Status RecordFlushedCommit(int dir_fd, uint64_t txnid);

}  // namespace etcdpp::mvcc
