#include "mvcc/lmdb_env.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

namespace etcdpp::mvcc {

Status LmdbError(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) return Status(Code::kNoSpace);
  return Status::IOError(std::string(what) + ": " + mdb_strerror(rc));
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const LmdbOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("create " + dir + ": " + ec.message());

  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError(rc, "mdb_env_create");
  auto fail = [&](int code, std::string_view what) -> Status {
    mdb_env_close(env);
    return LmdbError(code, what);
  };
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return fail(rc, "set_mapsize");
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != 0) {
    return fail(rc, "set_maxreaders");
  }
  if ((rc = mdb_env_set_maxdbs(env, options.max_tables)) != 0) return fail(rc, "set_maxdbs");
  unsigned flags = MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD;
  if (options.write_map) flags |= MDB_WRITEMAP;
  rc = mdb_env_open(env, dir.c_str(), flags, 0644);
  if (rc != 0) return fail(rc, "mdb_env_open " + dir);
  return std::unique_ptr<LmdbEnv>(new LmdbEnv(env, dir));
}

LmdbEnv::~LmdbEnv() { mdb_env_close(env_); }

Status LmdbEnv::Sync() {
  int rc = mdb_env_sync(env_, 1);
  return rc == 0 ? Status::OK() : LmdbError(rc, "mdb_env_sync");
}

uint64_t LmdbEnv::SizeBytes() const {
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0) return 0;
  return (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

uint64_t LmdbEnv::InUseBytes() const {
  MDB_stat stat;
  if (mdb_env_stat(env_, &stat) != 0) return 0;
  uint64_t size = SizeBytes();
  // The free list (database 0) maps txn ids to lists of page numbers; the
  // first word of each list is its length (as mdb_stat -f counts them).
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return size;
  uint64_t free_pages = 0;
  MDB_cursor* cursor = nullptr;
  if (mdb_cursor_open(txn, 0, &cursor) == 0) {
    MDB_val k, v;
    while (mdb_cursor_get(cursor, &k, &v, MDB_NEXT) == 0) {
      if (v.mv_size >= sizeof(size_t)) {
        size_t n;
        std::memcpy(&n, v.mv_data, sizeof(n));
        free_pages += n;
      }
    }
    mdb_cursor_close(cursor);
  }
  mdb_txn_abort(txn);
  uint64_t free_bytes = free_pages * stat.ms_psize;
  return free_bytes < size ? size - free_bytes : 0;
}

Cursor::Cursor(MDB_txn* txn, MDB_dbi dbi) {
  int rc = mdb_cursor_open(txn, dbi, &cursor_);
  if (rc != 0) {
    // Only invalid arguments make this fail: a programming error.
    spdlog::critical("mdb_cursor_open: {}", mdb_strerror(rc));
    std::abort();
  }
}

Cursor::~Cursor() {
  if (cursor_ != nullptr && owned_) mdb_cursor_close(cursor_);
}

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(other.cursor_),
      owned_(other.owned_),
      key_(other.key_),
      value_(other.value_),
      valid_(other.valid_),
      status_(std::move(other.status_)) {
  other.cursor_ = nullptr;
  other.valid_ = false;
}

bool Cursor::Move(std::string_view key, MDB_cursor_op op) {
  if (op == MDB_SET_RANGE) key_ = ToMdbVal(key);
  int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
  valid_ = (rc == 0);
  if (rc != 0 && rc != MDB_NOTFOUND) status_ = LmdbError(rc, "mdb_cursor_get");
  return valid_;
}

Result<std::optional<std::string_view>> Table::Get(std::string_view key) const {
  MDB_val k = ToMdbVal(key);
  MDB_val v;
  int rc = mdb_get(txn_, dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return LmdbError(rc, "mdb_get");
  return std::optional<std::string_view>(FromMdbVal(v));
}

Status Table::Put(std::string_view key, std::string_view value) {
  MDB_val k = ToMdbVal(key);
  MDB_val v = ToMdbVal(value);
  int rc = mdb_put(txn_, dbi_, &k, &v, 0);
  return rc == 0 ? Status::OK() : LmdbError(rc, "mdb_put");
}

Status Table::Delete(std::string_view key) {
  MDB_val k = ToMdbVal(key);
  int rc = mdb_del(txn_, dbi_, &k, nullptr);
  if (rc == 0 || rc == MDB_NOTFOUND) return Status::OK();
  return LmdbError(rc, "mdb_del");
}

}  // namespace etcdpp::mvcc
