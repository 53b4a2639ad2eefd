// Thin RAII layer over LMDB: the environment, cursors and named tables.
//
// LMDB facts the rest of mvcc relies on:
//  * A write transaction is exclusive and must stay on the thread that began it.
//  * With MDB_NOTLS a read transaction is a snapshot that any one thread at a
//    time may use; readers take no lock and never block the writer.
//  * Views returned by Get/Cursor point into the memory map. In a read
//    transaction they stay valid until it ends; in a write transaction only
//    until the next write to the same transaction.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "mvcc/deferred_flush.h"

namespace etcdpp::mvcc {

// Maps an LMDB return code to a Status: MDB_MAP_FULL is Code::kNoSpace,
// anything else is an IO error; both name `what`.
Status LmdbError(int rc, std::string_view what);

inline MDB_val ToMdbVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view FromMdbVal(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

struct LmdbOptions {
  uint64_t map_size = uint64_t{2} << 30;
  // MDB_WRITEMAP: commits write pages in place instead of pwrite()-ing
  // copies (about 1.6x faster batched puts). The data file is then sized to
  // the map up front (sparse).
  bool write_map = true;
  // Without write_map: a commit returns once its pages are written to the
  // page cache, and a thread of the environment's flushes them
  // (DeferredFlush); at most the newest commit is ever unflushed, and an
  // open after a power cut drops it if it was not recorded as flushed
  // (flushed_commit.h). With write_map the flush stays in the commit.
  bool deferred_flush = true;
  // With deferred_flush: told how long each background flush took (on the
  // flush thread); may be empty.
  std::function<void(std::chrono::nanoseconds)> on_flush = {};
  unsigned max_readers = 4096;
  unsigned max_tables = 64;
  // How many bytes of the map this process may keep mapped before it lets
  // go of them (LmdbEnv::BoundMappedPages); 0: never. See kDefaultMappedBytesBound.
  uint64_t mapped_bytes_bound = kDefaultMappedBytesBound;

  // 128 MiB: a check that finds more than this mapped since the last
  // release lets all of it go (once min_release_interval has passed). The
  // price is minor faults: a page let go is faulted in again when next
  // used, and so are the neighbours the kernel maps with it (fault-around).
  // Between releases (min_release_interval) a load may map up to the whole
  // store (docs/mvcc.md, "At a million keys", "No hard bound").
  static constexpr uint64_t kDefaultMappedBytesBound = uint64_t{128} << 20;
  // A release lets go of hot pages with cold ones, and whatever is used
  // next faults back in. A load whose pages outgrow the bound (puts or
  // reads at random keys of a store larger than it) would re-fault its
  // working set after every release, so a release waits until this long
  // after the previous one, however far past the bound the mapping has
  // grown: between releases the process maps at most the store itself
  // (docs/mvcc.md, "Releases held apart", "No hard bound"). 0: release
  // at every check.
  std::chrono::milliseconds min_release_interval{std::chrono::seconds(10)};
};

// Owns an MDB_env opened with MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD
// (and MDB_WRITEMAP if asked). Each commit flushes its pages before it
// writes the meta page that makes them current, so a power loss at any
// moment leaves a consistent B-tree: at worst the last commit is undone
// (its meta page unflushed), which the caller's WAL replays. MDB_NOSYNC
// alone would save that flush but lets the OS write a newer meta page
// before the pages it points to, and a power cut then leaves a corrupt tree
// (tests/robustness/powerloss shows it). With deferred_flush the env runs
// MDB_NOSYNC and keeps the order itself: the flush runs after the commit on
// a thread of its own, the next commit waits for it, and Open rolls back a
// newest commit not recorded as flushed (deferred_flush.h,
// flushed_commit.h). Sync() also flushes the meta page: the caller calls
// it before giving up WAL entries the store holds.
class LmdbEnv {
 public:
  // Creates `dir` if needed and opens (or creates) the environment in it.
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const LmdbOptions& options);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* get() const { return env_; }
  const std::string& dir() const { return dir_; }
  // Where the directory is now: a store opened in one directory may be
  // renamed to another while open (a defragmentation or a snapshot install
  // swaps it in). dir() if the kernel cannot say.
  std::string CurrentDir() const;
  // Commits a write transaction of this environment; every write
  // transaction ends here or in mdb_txn_abort. On failure LMDB has freed
  // `txn` all the same.
  Status Commit(MDB_txn* txn, std::string_view what);
  // Flushes committed transactions to disk (fsync), the last meta page too,
  // and with deferred_flush records them as flushed.
  Status Sync();
  // Walks every page the store can reach; Corruption naming the data file if
  // one is damaged or the file is shorter than its pages. Open runs it, so a
  // store damaged by a crash or a disk is refused at start, never served.
  Status CheckIntegrity() const;
  // Bytes up to the highest page ever used: the database's size (etcd's
  // dbSize). With MDB_WRITEMAP the file itself may be larger (sparse).
  uint64_t SizeBytes() const;
  // Makes the map at least `bytes` large. Only while no transaction of
  // this process is open (LMDB remaps the file).
  Status GrowMap(uint64_t bytes);
  uint64_t MapBytes() const;
  // SizeBytes() minus the free pages LMDB will reuse (etcd's dbSizeInUse).
  uint64_t InUseBytes() const;

  // Mapped pages. Every page of the store a transaction reads or writes is
  // mapped into this process and counts in its RSS (RssFile, VmHWM) until
  // the process unmaps it, although it is page cache: a store read or
  // written whole (a load, a scan, the integrity walk, a copy) ends up all
  // resident. ReleaseMappedPages drops this process's mappings of the whole
  // map with madvise(MADV_DONTNEED), which is safe at any moment, with read
  // and write transactions running on other threads:
  //  * The map is a MAP_SHARED mapping of data.mdb (LMDB never maps it
  //    privately). For a shared file mapping MADV_DONTNEED removes page
  //    table entries only: the pages stay in the page cache, and a later
  //    access faults the same page back (a minor fault, no disk read unless
  //    the kernel evicted it meanwhile, when it is read from the file, which
  //    holds the same bytes). Nothing is zeroed, unlike for private or
  //    anonymous memory.
  //  * With MDB_WRITEMAP, commits write into the map: a page written and
  //    not yet flushed is dirty in the page table, and unmapping it moves
  //    its dirty bit to the page cache, so the next msync/fsync still
  //    writes it. Without MDB_WRITEMAP (the member's stores) the map is
  //    read-only and commits pwrite() copies: nothing in the map is dirty.
  //  * A reader's pointers into the map (MDB_vals, cursor pages) stay
  //    valid: the range stays mapped at the same address; only its
  //    residency changes. LMDB never reuses a page a live reader can reach,
  //    so what faults back in is what the reader saw.
  //  * The range released is found in /proc/self/maps by the data file's
  //    device and inode, and only if it is exactly one shared mapping of
  //    the map's size (mdb_env_info): nothing else of the process can be
  //    hit. The map never moves: nothing calls mdb_env_set_mapsize on an
  //    open environment (Open sets the size before mdb_env_open).
  // Returns false if the map could not be found (then nothing is released).
  bool ReleaseMappedPages() const;
  // Calls ReleaseMappedPages if the process's file-backed RSS grew by more
  // than LmdbOptions::mapped_bytes_bound since the last release and the
  // last release is min_release_interval old. Cheap (one
  // pread of /proc/self/statm): the writer calls it after every commit,
  // cursors every kCursorStepsPerBoundCheck steps, readers every
  // kReadsPerBoundCheck read transactions. Any thread; concurrent calls
  // release at most once.
  void BoundMappedPages() const;
  // BoundMappedPages without the interval: for a writer that walks the
  // store once in key order (a delete in parts, after each chunk of keys),
  // which does not come back to the pages it let go, so releasing often
  // costs it nothing, while the interval let such a walk map the store's
  // size on top of what a load had mapped (etcdctl check perf's closing
  // delete: +156 MiB).
  void BoundMappedPagesOfAWalk() const;
  // After a read of the whole store (a copy): releases unless the bound is
  // off, whatever /proc/self/statm says. statm's count is process-wide, so a
  // growth check made right after a whole read can miss what it mapped
  // (mapped_pages_test saw a copy leave the store's map fully resident).
  void ReleaseAfterWholeRead() const;
  // Read transactions ending between two checks (NoteReadDone).
  static constexpr uint64_t kReadsPerBoundCheck = 64;
  void NoteReadDone() const {
    if (reads_done_.fetch_add(1, std::memory_order_relaxed) % kReadsPerBoundCheck == 0) {
      BoundMappedPages();
    }
  }
  // Bytes of the map resident in this process (the map's Rss in
  // /proc/self/smaps; 0 if not found). For tests and diagnostics: it reads
  // the whole smaps file.
  uint64_t MappedResidentBytes() const;
  // The environment `txn` belongs to, if LmdbEnv opened it.
  static LmdbEnv* Of(MDB_txn* txn);

 private:
  LmdbEnv(MDB_env* env, std::string dir, const LmdbOptions& options);
  // The process's file-backed resident bytes (statm's third field), or 0.
  uint64_t FileResidentBytes() const;
  // The map's address range, found in /proc/self/maps (see above).
  bool FindMap(uintptr_t* begin, uintptr_t* end) const;
  // Releases if the mapped bytes grew past the bound since the last
  // release (and, if `wait_interval`, that release is
  // min_release_interval old).
  void ReleaseIfGrown(bool wait_interval) const;

  MDB_env* env_;
  std::string dir_;
  std::unique_ptr<DeferredFlush> flush_;  // with deferred_flush only
  const uint64_t mapped_bytes_bound_;
  const std::chrono::steady_clock::duration min_release_interval_;
  int statm_fd_ = -1;  // /proc/self/statm, kept open: one pread per check
  int dir_fd_ = -1;    // the directory, followed across renames (CurrentDir)
  mutable std::atomic<uint64_t> reads_done_{0};
  // File-backed RSS right after the last release: the process's other
  // file pages (its binary, libraries, other stores), the base the bound
  // is measured from.
  mutable std::atomic<uint64_t> file_resident_base_{0};
  mutable std::mutex release_mu_;  // one release at a time; checks never wait on it
  // When the last release ended (steady clock, nanoseconds since its epoch).
  mutable std::atomic<int64_t> last_release_ns_{0};
};

// One named table of an environment, for whole-backend walks.
struct NamedTable {
  std::string name;
  MDB_dbi dbi = 0;
};

// CRC-32C over `tables` as `txn` sees them: for each table in the order
// given, its name, then each record's key and value in key order (every
// field preceded by its length, so boundaries count). Records for which
// skip(table, key) is true are left out, of the hash and of the count.
struct TablesDigest {
  uint32_t hash = 0;
  uint64_t records = 0;
};
Result<TablesDigest> HashTables(
    MDB_txn* txn, const std::vector<NamedTable>& tables,
    const std::function<bool(std::string_view table, std::string_view key)>& skip);

// A cursor over one table in one transaction; closed on destruction.
// Positioning calls return true iff the cursor is on an entry; on false,
// status() tells whether the end was reached (OK) or LMDB failed.
class Cursor {
 public:
  // shared_steps: as for a borrowed cursor below; null counts its own.
  Cursor(MDB_txn* txn, MDB_dbi dbi, uint32_t* shared_steps = nullptr);
  // Uses a cursor owned elsewhere (not closed by this object). Its moves
  // count in *shared_steps, which its owner keeps for every wrapper it
  // lends: wrappers made for one lookup each would otherwise start from zero
  // and never reach the mapped-page check.
  Cursor(MDB_cursor* borrowed, uint32_t* shared_steps)
      : cursor_(borrowed), owned_(false), steps_(shared_steps) {}
  ~Cursor();
  Cursor(Cursor&& other) noexcept;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  Cursor& operator=(Cursor&&) = delete;

  // Every this many moves a cursor checks its environment's mapped pages,
  // so one long scan does not map the whole store.
  static constexpr uint32_t kCursorStepsPerBoundCheck = 256;
  // A lookup of one key lands on a page of its own, where consecutive steps
  // mostly share one, so it counts as this many steps toward the check.
  static constexpr uint32_t kStepsPerLookup = 16;

  // First entry with key >= `key`.
  bool Seek(std::string_view key) { return Move(key, MDB_SET_RANGE); }
  // The entry with key `key`, if any.
  bool SeekExact(std::string_view key) { return Move(key, MDB_SET_KEY); }
  bool SeekFirst() { return Move({}, MDB_FIRST); }
  bool SeekLast() { return Move({}, MDB_LAST); }
  bool Next() { return Move({}, MDB_NEXT); }
  bool Prev() { return Move({}, MDB_PREV); }

  bool Valid() const { return valid_; }
  std::string_view key() const { return FromMdbVal(key_); }
  std::string_view value() const { return FromMdbVal(value_); }
  const MDB_val& raw_key() const { return key_; }
  const MDB_val& raw_value() const { return value_; }
  const Status& status() const { return status_; }

 private:
  bool Move(std::string_view key, MDB_cursor_op op);

  MDB_cursor* cursor_ = nullptr;
  bool owned_ = true;
  // Steps since the last mapped-page check (LmdbEnv::BoundMappedPages):
  // own_steps_ for an owned cursor, the lender's count for a borrowed one.
  uint32_t own_steps_ = 0;
  uint32_t* steps_ = &own_steps_;
  MDB_val key_{0, nullptr};
  MDB_val value_{0, nullptr};
  bool valid_ = false;
  Status status_;
};

// A named table (LMDB database) seen through one transaction. Cheap to copy;
// must not outlive the transaction. Writes fail in a read transaction.
class Table {
 public:
  Table(MDB_txn* txn, MDB_dbi dbi) : txn_(txn), dbi_(dbi) {}

  // The value stored under `key`, or nullopt. See the view validity rules above.
  Result<std::optional<std::string_view>> Get(std::string_view key) const;
  Status Put(std::string_view key, std::string_view value);
  // Deletes `key`; OK if it was absent.
  Status Delete(std::string_view key);
  Cursor NewCursor() const { return Cursor(txn_, dbi_); }

  MDB_txn* txn() const { return txn_; }
  MDB_dbi dbi() const { return dbi_; }

 private:
  MDB_txn* txn_;
  MDB_dbi dbi_;
};

}  // namespace etcdpp::mvcc
