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

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace etcdpp::mvcc {

// Maps an LMDB return code to a Status: MDB_MAP_FULL is Code::kNoSpace (the
// quota is the map size), anything else is an IO error naming `what`.
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
  unsigned max_readers = 4096;
  unsigned max_tables = 64;
};

// Owns an MDB_env opened with MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD
// (and MDB_WRITEMAP if asked). Each commit flushes its pages before it
// writes the meta page that makes them current, so a power loss at any
// moment leaves a consistent B-tree: at worst the last commit is undone
// (its meta page unflushed), which the caller's WAL replays. MDB_NOSYNC
// would save that flush but lets the OS write a newer meta page before the
// pages it points to, and a power cut then leaves a corrupt tree
// (tests/robustness/powerloss shows it). Sync() also flushes the meta page:
// the caller calls it before giving up WAL entries the store holds.
class LmdbEnv {
 public:
  // Creates `dir` if needed and opens (or creates) the environment in it.
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const LmdbOptions& options);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* get() const { return env_; }
  const std::string& dir() const { return dir_; }
  // Flushes committed transactions to disk (fsync), the last meta page too.
  Status Sync();
  // Walks every page the store can reach; Corruption naming the data file if
  // one is damaged or the file is shorter than its pages. Open runs it, so a
  // store damaged by a crash or a disk is refused at start, never served.
  Status CheckIntegrity() const;
  // Bytes up to the highest page ever used: the database's size (etcd's
  // dbSize). With MDB_WRITEMAP the file itself may be larger (sparse).
  uint64_t SizeBytes() const;
  // SizeBytes() minus the free pages LMDB will reuse (etcd's dbSizeInUse).
  uint64_t InUseBytes() const;

 private:
  LmdbEnv(MDB_env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  MDB_env* env_;
  std::string dir_;
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
  Cursor(MDB_txn* txn, MDB_dbi dbi);
  // Uses a cursor owned elsewhere (not closed by this object).
  explicit Cursor(MDB_cursor* borrowed) : cursor_(borrowed), owned_(false) {}
  ~Cursor();
  Cursor(Cursor&& other) noexcept;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  Cursor& operator=(Cursor&&) = delete;

  // First entry with key >= `key`.
  bool Seek(std::string_view key) { return Move(key, MDB_SET_RANGE); }
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
