// KvStore: etcd's v3 MVCC key space, stored entirely in LMDB.
//
// There is no in-memory key index: every read is a B-tree walk over an LMDB
// snapshot, so memory use is the page cache and the read path takes no lock.
// The on-disk layout (see docs/mvcc.md for a worked example):
//
//   table `key`:  slot(user_key) || ~main || ~sub  ->  header (key_record.h)
//                 All records of a user key are contiguous, newest first;
//                 slots (key_codec.h) hold keys of any length and bytes.
//   table `rev`:  main || sub  ->  header || user key || value
//                 The change log in revision order (reads of values,
//                 compaction, watch, hash); only ever appended to.
//   table `meta`: name -> value. mvcc owns names starting with "mvcc/"; other
//                 modules may store small values under their own prefix.
//
// Reading user key k at revision R: seek slot(k) || ~(R, max sub); the first
// record found, if it still belongs to k, is k's state at R (absent if it is
// a tombstone), and its value is in `rev` under that record's revision. Ranges repeat this per user
// key and then skip past the key; a bucket of long keys is read whole and sorted.
//
// Threads: Read() may be called from any thread and its ReadTxn used by one
// thread at a time (it may move between threads). Write() is for a single
// writer thread (the apply loop): at most one WriteTxn exists at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "mvcc/lmdb_env.h"
#include "mvcc/revision.h"
#include "mvccpb/kv.pb.h"

namespace etcdpp::mvcc {

struct Options {
  // The backend quota. The server compares DbSizeBytes() with it before
  // proposing writes (etcd's NOSPACE alarm).
  uint64_t quota_bytes = uint64_t{2} << 30;
  // The LMDB map is 3 x quota + headroom. Writes that were accepted just
  // below the quota must apply, and so must deletes, which etcd accepts
  // whatever the store's size (they are how an operator frees space) and
  // which grow it. A delete of every key in one transaction is the worst
  // case: LMDB keeps every page of the last commit until this one commits,
  // so the pages in use (at most the quota, since puts stop there) stay
  // while their copies and the tombstones (each no larger than the record
  // it ends) are written, about two quotas more. The map is address space,
  // not memory or disk: without MDB_WRITEMAP the file grows only as pages
  // are used. Writes beyond the map fail with kNoSpace and leave the
  // WriteTxn unusable (KvStore::RecordMapFull says what then).
  uint64_t apply_headroom_bytes = uint64_t{256} << 20;
  // The map's size if not 0, instead of the sizes above and below; for
  // tests that need a map they can fill. A map recorded full is larger.
  uint64_t map_bytes = 0;
  // See LmdbOptions::write_map.
  bool write_map = true;
  // See LmdbOptions::deferred_flush (only without write_map).
  bool deferred_flush = true;
  // See LmdbOptions::on_flush.
  std::function<void(std::chrono::nanoseconds)> on_flush = {};
  // See LmdbOptions::mapped_bytes_bound and LmdbEnv::BoundMappedPages.
  uint64_t mapped_bytes_bound = LmdbOptions::kDefaultMappedBytesBound;
  std::chrono::milliseconds min_release_interval = LmdbOptions{}.min_release_interval;
  unsigned max_readers = 4096;
  // Named tables, including mvcc's own three.
  unsigned max_tables = 64;
  // Physical compaction work per WriteTxn, in keys (see WriteTxn::Compact):
  // the share every commit carries while a removal is pending. A share's
  // cost is mostly its commit's flush, about three dirty pages per key at a
  // million keys (the keys of a share are scattered over the key table), and
  // whoever waits for that commit (a linearizable read after a put) waits for
  // it: so client commits carry small shares, and most of the removal is
  // done by idle shares (BENCHMARKS.md, "Compaction without stalls").
  size_t compact_keys_per_txn = 8;
  // The share of KvStore::RemoveCompactedHistory, the transactions that
  // remove history while the writer has nothing else to do. Work that
  // arrives during one waits at most for its commit (it gives way before
  // that), so it bounds the stall of a write arriving then.
  size_t compact_keys_per_idle_txn = 32;
};

struct RangeOptions {
  int64_t rev = 0;    // Revision to read at; <= 0 means the view's current one.
  int64_t limit = 0;  // Maximum kvs returned; <= 0 means no limit.
  bool count_only = false;
  bool keys_only = false;  // Leave KeyValue.value empty.
};

struct RangeResult {
  google::protobuf::RepeatedPtrField<mvccpb::KeyValue> kvs;
  // Number of keys in the range at the revision, regardless of limit.
  int64_t count = 0;
  // The view's current revision (as etcd reports it; not the revision read).
  int64_t rev = 0;
};

// One key's state, pointing into LMDB's memory map (valid only during the
// callback that receives it).
struct KeyValueView {
  std::string_view key;
  std::string_view value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;

  void CopyTo(mvccpb::KeyValue* kv) const;
};

// Whether WriteTxn::DeleteRange reads the values of the keys it deletes.
enum class PrevValues { kSkip, kRead };

// Lets one DeleteRange commit its tombstones in parts, so that a delete of
// many keys never holds LMDB's copies of every page it dirties at once
// (docs/mvcc.md, "A delete in parts"). Readers see none of it until the
// transaction's own Commit: each part commits the revision the scope began
// from, and the `live` table changes only in the last part. A crash between
// parts leaves a marker in `meta`; the same request applied again at the same
// revision (the WAL's replay) resumes after the last committed key.
struct DeleteParts {
  // A part is committed once it holds at least this many tombstones.
  size_t keys_per_part = 8192;
  // Runs before each part's commit and may stop the delete with an error.
  // The caller makes everything its transaction holds committable: writes
  // it keeps aside for later go in now, and the consistent index is set to
  // the entry before the delete's (whose own entry must be durable).
  std::function<Status()> before_commit;
};

// A key range with etcd's wire rules: `end` empty is the single key `key`;
// `end` == "\0" is every key >= `key`; otherwise [key, end).
struct KeyRange {
  std::string key;
  std::string end;

  bool Contains(std::string_view k) const;
};

struct HashKVResult {
  uint32_t hash = 0;
  int64_t compact_rev = 0;
  int64_t rev = 0;  // The current revision of the view.
};

// Yields the changes with revision in [from, to] in revision order as watch
// events. Borrows its transaction: must not outlive it.
class ChangeIterator {
 public:
  virtual ~ChangeIterator() = default;
  virtual bool Valid() const = 0;
  virtual const mvccpb::Event& event() const = 0;
  virtual Revision revision() const = 0;
  virtual void Next() = 0;
  // Not OK if iteration stopped because of an error or corruption.
  virtual const Status& status() const = 0;
};

class KvStore;
struct KeyEntry;  // key_record.h

// A consistent view of the store: the shared read API of ReadTxn and WriteTxn.
//
// Range key semantics follow etcd's wire rules: `end` empty reads the single
// key `key`; `end` == "\0" reads every key >= `key`; otherwise [key, end).
class ReadView {
 public:
  virtual ~ReadView();
  ReadView(const ReadView&) = delete;
  ReadView& operator=(const ReadView&) = delete;

  // Current revision of this view (for a WriteTxn: including the revision
  // being written once it holds a change). As in etcd, an empty store is at
  // revision 1 and its first write is revision 2.
  int64_t Rev() const { return rev_; }
  // 0 until the first compaction (which may be at revision 1).
  int64_t CompactRev() const { return compact_rev_; }
  uint64_t ConsistentIndex() const;

  // Errors: kCompacted if options.rev < CompactRev(), kFutureRev if > Rev().
  Result<RangeResult> Range(std::string_view key, std::string_view end,
                            const RangeOptions& options) const;
  // Calls visit() for each live key of the range at revision `rev` (<= 0:
  // current) in key order; visit returns false to stop. Same errors as Range.
  Status Scan(std::string_view key, std::string_view end, int64_t rev,
              const std::function<bool(const KeyValueView&)>& visit) const;

  // The change log for revisions [from_rev, to_rev] (to_rev <= 0: Rev()).
  // kCompacted if from_rev < CompactRev(). With prev_kv, each event carries
  // the key's previous state when it still exists. With `keys`, only changes
  // of keys in that range are yielded (others are skipped without reading
  // their records).
  Result<std::unique_ptr<ChangeIterator>> Changes(int64_t from_rev, int64_t to_rev,
                                                  bool with_prev_kv,
                                                  std::optional<KeyRange> keys = {}) const;

  // CRC-32C over the records (as layout 3 stored them in `key`: key_record.h)
  // with main revision <= rev that are part of history (after the compact revision, or a key's kept
  // record at or below it), in table order. rev <= 0 means Rev(). Members with the same history and
  // compact revision agree, whatever their physical compaction progress.
  Result<HashKVResult> HashKV(int64_t rev) const;

  // A value stored with WriteTxn::PutMeta, or nullopt.
  Result<std::optional<std::string>> GetMeta(std::string_view name) const;

 protected:
  // KvStore owns the table handles every view shares (clang, unlike gcc,
  // needs this to let it name ReadView::Dbis).
  friend class KvStore;
  struct Dbis {
    MDB_dbi key = 0;
    MDB_dbi rev = 0;
    MDB_dbi meta = 0;
    MDB_dbi live = 0;
  };
  ReadView(const KvStore* store, MDB_txn* txn);
  // Loads rev_, compact_rev_ from meta.
  Status LoadState();
  // Resolves a requested revision against this view's bounds.
  Result<int64_t> ResolveRev(int64_t rev) const;
  // Scan at an already resolved revision; visit returns false to stop.
  // Without `with_values` the entries' values are left empty and only long
  // keys' `rev` records are read (for their user keys).
  Status ScanAt(std::string_view key, std::string_view end, int64_t at, bool with_values,
                const std::function<bool(const KeyEntry&)>& visit) const;
  // The number of live keys in [key, end) at an already resolved revision
  // (`end` as in Range, never empty). Reads only each key's table key and
  // the flags byte of its record: no key is unescaped and no value copied, so
  // a Range's count past its limit costs one cursor step per key.
  Result<int64_t> CountAt(std::string_view key, std::string_view end, int64_t at) const;
  // The same count at this view's own revision, from the `live` table (one
  // short entry per live key instead of every key's records and values).
  Result<int64_t> CountLive(std::string_view key, std::string_view end) const;
  // The user key of long slot `slot`, from its newest record (which `live`
  // says is not a tombstone).
  Result<std::string> LatestLongKey(std::string_view slot) const;
  // CountLive when `at` is this view's revision, else CountAt.
  Result<int64_t> Count(std::string_view key, std::string_view end, int64_t at) const {
    return at == rev_ ? CountLive(key, end) : CountAt(key, end, at);
  }
  // The part of a scan inside one long key bucket, `c` on its first entry:
  // visits the bucket's keys in [key, end) (end "\0": unbounded) in key
  // order and leaves `c` past the bucket (*ok: on an entry). *stopped: visit
  // returned false.
  Status ScanBucket(Cursor& c, std::string_view bucket, int64_t at, std::string_view key,
                    std::string_view end, bool with_values,
                    const std::function<bool(const KeyEntry&)>& visit, bool* ok,
                    bool* stopped) const;

  const KvStore* store_;
  MDB_txn* txn_;
  const Dbis& dbis_;
  // A cursor on `key` reused by every scan of this view (never two at once);
  // null: each scan opens its own.
  MDB_cursor* key_cursor_ = nullptr;
  // The same on `rev`, for the lookups of values and long keys. Several
  // wrappers may share it: a lookup's views point into pages, which stay put
  // while the cursor moves on.
  MDB_cursor* rev_cursor_ = nullptr;
  // Moves of every cursor the view hands out (wrappers of the two above, or
  // its own when it has none), toward the mapped-page check: many small
  // reads in one view add up like one scan.
  mutable uint32_t lent_cursor_steps_ = 0;
  Cursor KeyCursor() const {
    return key_cursor_ != nullptr ? Cursor(key_cursor_, &lent_cursor_steps_)
                                  : Cursor(txn_, dbis_.key, &lent_cursor_steps_);
  }
  Cursor RevCursor() const {
    return rev_cursor_ != nullptr ? Cursor(rev_cursor_, &lent_cursor_steps_)
                                  : Cursor(txn_, dbis_.rev, &lent_cursor_steps_);
  }
  int64_t rev_ = 0;
  int64_t compact_rev_ = 0;
};

// A read-only snapshot. Thread-compatible; may move between threads.
// Must not outlive its KvStore.
class ReadTxn : public ReadView {
 public:
  ~ReadTxn() override;
  // A named table created by some committed WriteTxn, kNotFound otherwise.
  Result<Table> OpenTable(std::string_view name) const;

 private:
  friend class KvStore;
  ReadTxn(const KvStore* store, MDB_txn* txn) : ReadView(store, txn) {}
};

// Outcome of WriteTxn::Put.
struct PutResult {
  int64_t revision = 0;  // The main revision written.
  bool existed = false;  // The key was live before the put.
  int64_t prev_lease = 0;
};

// The single write transaction. Aborted on destruction unless committed.
//
// Changes happen inside a revision scope: BeginRevision(); Put/DeleteRange...;
// EndRevision(). All changes of a scope share one main revision (Rev() + 1)
// with sub revisions 0, 1, 2...; a scope that changed nothing consumes no
// revision. Many scopes may be written before one Commit().
class WriteTxn : public ReadView {
 public:
  ~WriteTxn() override;

  void BeginRevision();
  void EndRevision();
  bool InRevision() const { return in_scope_; }
  // Changes made so far in the current scope.
  int64_t ScopeChanges() const { return next_sub_; }

  // Writes key=value (lease 0: none) at the scope's revision. Keys of any
  // bytes and length are stored (the request limit bounds them); a long key
  // whose 128-bit hash equals a stored key's fails with kInternal and leaves
  // the txn usable. The new version is the previous + 1; create_revision is
  // kept, or is this revision if the key did not exist.
  Result<PutResult> Put(std::string_view key, std::string_view value, int64_t lease);
  // Writes tombstones for the live keys of the range (key semantics as in
  // Range); on_delete (optional) sees each key's state before deletion, its
  // value only with PrevValues::kRead: a value costs a lookup in `rev` per
  // key, and a delete of many keys would read (and map) most of the store
  // for values nobody asked for. Returns the number of keys deleted.
  // With `parts`, the delete may commit part-way (DeleteParts); only for a
  // scope that has changed nothing else, and the transaction's later
  // changes are ordinary ones.
  Result<int64_t> DeleteRange(std::string_view key, std::string_view end,
                              PrevValues prev_values = PrevValues::kSkip,
                              const std::function<void(const KeyValueView&)>& on_delete = {},
                              const DeleteParts* parts = nullptr);

  // After many changes of keys all over the store (a lease revoke's
  // deletes, each chunk of a delete in parts): lets go of the store's pages
  // they mapped (LmdbEnv::BoundMappedPagesOfAWalk). The transaction's own
  // changes are unaffected.
  void ReleaseWalkedPages();

  // A copy of the store made between a delete's parts (a backup) holds an
  // unfinished delete that no log will replay. This finishes it from what
  // its marker records (its own revision scope: call outside one), so the
  // copy holds the state after that delete. Nothing without one.
  Status FinishUnfinishedDelete();

  Status SetConsistentIndex(uint64_t index);
  // Stores a small value in `meta`; names starting with "mvcc/" are reserved.
  Status PutMeta(std::string_view name, std::string_view value);

  // Compacts history at `rev`: for each key, removes every revision that is
  // superseded at or below rev; the latest revision <= rev is kept unless it
  // is a tombstone. Reads below rev fail with kCompacted from now on, and
  // reads at or above it, HashKV and Changes never depend on how far the
  // physical removal has got.
  // The removal is bounded per transaction (Options::compact_keys_per_txn
  // keys): Compact() does the first share, and every later Commit() goes on
  // until done, so a huge history never makes one LMDB txn huge. When the
  // writer is idle, an empty Write()+Commit() advances it
  // (KvStore::CompactionPending()); after Open() an interrupted one goes on the same way.
  // Errors: kCompacted if rev <= CompactRev(), kFutureRev if rev > Rev().
  Status Compact(int64_t rev);
  // The parts of Compact(): ScheduleCompact records the new compact
  // revision; CompactSome removes the history of at most `max_keys` keys and
  // returns true once compaction is complete. Progress is persisted.
  Status ScheduleCompact(int64_t rev);
  // A `yield` that returns true (asked between keys) stops it with
  // kCancelled, after which only abort remains.
  Result<bool> CompactSome(size_t max_keys, const std::function<bool()>& yield = {});
  bool CompactionPending() const { return finished_compact_ < scheduled_compact_; }

  // A named table, created if missing, usable in this transaction (and, once
  // committed, by later ReadTxns via OpenTable).
  Result<Table> OpenTable(std::string_view name);

  // An LMDB write of this transaction failed (the map full, an I/O error),
  // and LMDB refuses every later operation of it: only abort remains. A
  // request's own error (kCompacted, a hash collision...) comes before any
  // write and leaves the transaction usable.
  bool Broken() const;

  // Makes every change of this transaction visible and (after Sync) durable.
  Status Commit();

 private:
  friend class KvStore;
  WriteTxn(KvStore* store, MDB_txn* txn) : ReadView(store, txn), mutable_store_(store) {}
  Status WriteState();
  // What a key record does to its key's entry in the `live` table.
  enum class LiveChange { kNone, kAdd, kRemove };
  Status PutKeyRecord(std::string_view key, Revision rev, uint8_t flags, int64_t create,
                      int64_t version, int64_t lease, std::string_view value, LiveChange live);
  // Removes the superseded history at or below `rev` of one user key.
  Status CompactKey(std::string_view user_key, int64_t rev);
  // Writes the tombstones of the next chunk of live keys of [*from, end) and
  // moves *from past the last of them; *more: keys may remain. Returns how
  // many it deleted.
  Result<size_t> DeleteChunk(std::string* from, std::string_view end, bool with_values,
                             const std::function<void(const KeyValueView&)>& on_delete,
                             LiveChange live, bool* more);
  // Breaks the transaction over a write other than the unfinished delete's.
  Status RefuseBeforeUnfinishedDelete();
  // DeleteRange with parts (DeleteParts); resumes the request's unfinished
  // delete when the marker in `meta` names it.
  Result<int64_t> DeleteInParts(std::string_view key, std::string_view end, bool with_values,
                                const std::function<void(const KeyValueView&)>& on_delete,
                                const DeleteParts& parts);
  Result<int64_t> DeletePartByPart(std::string_view key, std::string_view end, bool with_values,
                                   const std::function<void(const KeyValueView&)>& on_delete,
                                   const DeleteParts& parts);
  // Commits the tombstones written so far with the marker that resumes the
  // delete after `next_key`, the scope's revision not yet published, and
  // begins a new LMDB transaction in place of the committed one.
  Status CommitPart(std::string_view key, std::string_view end, std::string_view next_key,
                    int64_t deleted);
  // Removes from `live` the slots of the keys the scope's DeleteRange of
  // [key, end) deleted (its only changes).
  Status RemoveScopeFromLive(std::string_view key, std::string_view end);

  KvStore* mutable_store_;
  bool in_scope_ = false;
  bool committed_ = false;
  bool failed_ = false;  // An LMDB write failed: only abort remains.
  int64_t scope_main_ = 0;
  int64_t next_sub_ = 0;
  uint64_t consistent_index_ = 0;
  bool consistent_index_dirty_ = false;
  int64_t scheduled_compact_ = 0;
  int64_t finished_compact_ = 0;
  int64_t finished_compact_sub_ = 0;  // see kMetaFinishedCompactSub
  bool compacted_in_txn_ = false;     // Compact() already did this txn's share.
  // The meta marker of a delete committed part-way exists (loaded by
  // KvStore::Write): only that delete may write until it is finished.
  bool unfinished_delete_ = false;
  std::map<std::string, MDB_dbi, std::less<>> new_tables_;
};

class KvStore {
 public:
  static Result<std::unique_ptr<KvStore>> Open(const std::string& dir, Options options = {});
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // A snapshot of the latest committed state. Thread-safe, takes no lock
  // shared with the writer.
  Result<std::unique_ptr<ReadTxn>> Read() const;
  // The write transaction. Only one may exist at a time; call from the
  // writer thread only.
  Result<std::unique_ptr<WriteTxn>> Write();

  // fsyncs every committed transaction.
  Status Sync();

  // A write found the map full (kNoSpace from a WriteTxn). The map cannot
  // grow while this process holds a transaction of the store (LMDB remaps
  // the file, and readers point into the map), and the failed transaction
  // cannot be redone in place, so the caller stops. This records, durably,
  // that the next Open of this directory maps twice as much (the file
  // `map-size` beside data.mdb): a member restarted on the same entries
  // then applies them.
  Status RecordMapFull();
  // The map's size in bytes.
  uint64_t MapBytes() const { return env_->MapBytes(); }

  // Removes the compacted history of up to Options::compact_keys_per_idle_txn
  // keys in a write transaction of its own (the writer thread only, between
  // its other transactions); nothing if none is pending. `yield` is asked
  // between keys: once it returns true the share is abandoned (aborted, so
  // nothing of it is committed or flushed) and the writer is free at once
  // for whatever it waited for; the next share starts over from the recorded
  // progress. Returns whether the share was committed.
  Result<bool> RemoveCompactedHistory(const std::function<bool()>& yield = {});

  // Writes a compacted, consistent copy of the latest committed state (free
  // pages omitted) to `fd` / to a new file `path`. The copy is a complete
  // LMDB data file: placed as `<dir>/data.mdb` it opens with Open(dir).
  // For etcd's Maintenance.Snapshot, Raft snapshots and defragmentation.
  // Thread-safe; runs in its own read transaction, concurrently with writes.
  Status CopyToFd(int fd) const;
  Status CopyToFile(const std::string& path) const;
  // The hash of every table as of the latest commit (HashTables; tables in
  // name order), leaving out the meta values that differ between members
  // holding the same data: the consistent index and the progress of
  // physical compaction. Members agree once their physical compactions are
  // done (etcd's Maintenance.Hash has the same caveat).
  Result<TablesDigest> HashBackend() const;

  // As of the last commit.
  int64_t CurrentRevision() const { return current_rev_.load(std::memory_order_acquire); }
  int64_t CompactRevision() const { return compact_rev_.load(std::memory_order_acquire); }
  uint64_t ConsistentIndex() const { return consistent_index_.load(std::memory_order_acquire); }
  // Physical compaction is unfinished (see WriteTxn::Compact).
  bool CompactionPending() const { return compaction_pending_.load(std::memory_order_acquire); }

  // etcd's dbSize (bytes up to the highest page used) and dbSizeInUse
  // (minus free pages LMDB will reuse).
  uint64_t DbSizeBytes() const { return env_->SizeBytes(); }
  uint64_t DbSizeInUseBytes() const { return env_->InUseBytes(); }
  const std::string& dir() const { return env_->dir(); }
  // Bytes of the store's map resident in this process (LmdbEnv, "Mapped
  // pages"); reads /proc/self/smaps, for tests and diagnostics.
  uint64_t MappedResidentBytes() const { return env_->MappedResidentBytes(); }

 private:
  friend class ReadView;
  friend class ReadTxn;
  friend class WriteTxn;
  class ReaderPool;
  explicit KvStore(std::unique_ptr<LmdbEnv> env);
  Status Init();
  // Converts an older key layout in place (txn: Init's write txn), or
  // refuses a newer one naming the data file.
  Status UpgradeKeyLayout(MDB_txn* txn);
  // Layout 1 to 2: the records of keys now too long for an inline slot
  // move to their long slot.
  Status MoveLayoutOneLongKeys(MDB_txn* txn);
  // Layout 2 to 3: one `live` entry per slot whose newest record is not a
  // tombstone.
  Status BuildLiveTable(MDB_txn* txn);
  // Layout 3 to 4: values (and long keys' bytes) move from `key` records to
  // `rev` records.
  Status MoveValuesToRevTable(MDB_txn* txn);
  // Layout 4 to 5: every `key` record whose layout 4 slot is not also its
  // layout 5 slot (a zero byte in the key, or a long slot) moves.
  Status ReKeyEscapedSlots(MDB_txn* txn);
  std::optional<MDB_dbi> FindTable(std::string_view name) const;
  void PublishTables(const std::map<std::string, MDB_dbi, std::less<>>& tables);

  std::unique_ptr<LmdbEnv> env_;
  ReadView::Dbis dbis_;
  std::atomic<int64_t> current_rev_{0};
  std::atomic<int64_t> compact_rev_{0};
  std::atomic<uint64_t> consistent_index_{0};
  std::atomic<bool> writer_active_{false};
  std::atomic<bool> compaction_pending_{false};
  // Init rewrote records to upgrade the key layout (Open then opens the
  // store once more).
  bool rewrote_layout_ = false;
  size_t compact_keys_per_txn_ = Options{}.compact_keys_per_txn;
  size_t compact_keys_per_idle_txn_ = Options{}.compact_keys_per_idle_txn;
  // Reset read transactions kept for reuse (see Read()).
  std::unique_ptr<ReaderPool> readers_;
  // Named tables other than mvcc's own, opened by committed write txns.
  mutable std::shared_mutex tables_mu_;
  std::map<std::string, MDB_dbi, std::less<>> tables_;  // GUARDED_BY(tables_mu_)
};

}  // namespace etcdpp::mvcc
