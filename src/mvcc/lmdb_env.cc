#include "mvcc/lmdb_env.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/coding.h"
#include "base/crc32c.h"
#include "mvcc/flushed_commit.h"

namespace etcdpp::mvcc {

Status LmdbError(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) return Status(Code::kNoSpace, std::string(what) + ": the map is full");
  return Status::IOError(std::string(what) + ": " + mdb_strerror(rc));
}

Result<TablesDigest> HashTables(
    MDB_txn* txn, const std::vector<NamedTable>& tables,
    const std::function<bool(std::string_view table, std::string_view key)>& skip) {
  TablesDigest digest;
  uint32_t& crc = digest.hash;
  auto add = [&crc](std::string_view field) {
    char length[8];
    PutBE64(length, field.size());
    crc = crc32c::Extend(crc, length, sizeof(length));
    crc = crc32c::Extend(crc, field.data(), field.size());
  };
  for (const NamedTable& table : tables) {
    add(table.name);
    Cursor c(txn, table.dbi);
    for (bool on = c.SeekFirst(); on; on = c.Next()) {
      if (skip && skip(table.name, c.key())) continue;
      add(c.key());
      add(c.value());
      ++digest.records;
    }
    ETCDPP_RETURN_IF_ERROR(c.status());
  }
  return digest;
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
  unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD;
  if (options.write_map) flags |= MDB_WRITEMAP;
  const bool deferred_flush = options.deferred_flush && !options.write_map;
  if (deferred_flush) {
    uint64_t dropped = 0;
    if (Status st = RollBackUnflushedCommit(dir, &dropped); !st.ok()) {
      mdb_env_close(env);
      return st;
    }
    if (dropped != 0) {
      spdlog::warn(
          "{}/data.mdb: its newest commit (transaction {}) was not recorded as on disk; "
          "opening the one before it, and the WAL applies the rest again",
          dir, dropped);
    }
    flags |= MDB_NOSYNC;
  }
  rc = mdb_env_open(env, dir.c_str(), flags, 0644);
  if (rc != 0) return fail(rc, "mdb_env_open " + dir);
  std::unique_ptr<LmdbEnv> opened(new LmdbEnv(env, dir, options));
  ETCDPP_RETURN_IF_ERROR(opened->CheckIntegrity());
  if (deferred_flush) {
    if (opened->dir_fd_ < 0)
      return Status::IOError("the store's directory " + dir + " did not open");
    auto flush = DeferredFlush::Start(env, opened->dir_fd_, options.on_flush);
    if (!flush.ok()) return flush.status();
    opened->flush_ = std::move(flush.value());
  }
  // The walk read every page: without this a restarted member would keep
  // the whole store mapped until its first bound check.
  if (opened->mapped_bytes_bound_ != 0) opened->ReleaseMappedPages();
  return opened;
}

LmdbEnv::LmdbEnv(MDB_env* env, std::string dir, const LmdbOptions& options)
    : env_(env),
      dir_(std::move(dir)),
      mapped_bytes_bound_(options.mapped_bytes_bound),
      min_release_interval_(options.min_release_interval) {
  mdb_env_set_userctx(env_, this);
  dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mapped_bytes_bound_ != 0) {
    statm_fd_ = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    file_resident_base_.store(FileResidentBytes(), std::memory_order_relaxed);
  }
}

LmdbEnv* LmdbEnv::Of(MDB_txn* txn) {
  return static_cast<LmdbEnv*>(mdb_env_get_userctx(mdb_txn_env(txn)));
}

uint64_t LmdbEnv::FileResidentBytes() const {
  if (statm_fd_ < 0) return 0;
  char buf[256];
  const ssize_t n = ::pread(statm_fd_, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // size resident shared text lib data dt, in pages; "shared" counts the
  // resident file-backed (and shmem) pages: RssFile + RssShmem.
  unsigned long long size = 0, resident = 0, shared = 0;
  if (std::sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3) return 0;
  return static_cast<uint64_t>(shared) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

void LmdbEnv::BoundMappedPages() const { ReleaseIfGrown(/*wait_interval=*/true); }

void LmdbEnv::BoundMappedPagesOfAWalk() const { ReleaseIfGrown(/*wait_interval=*/false); }

void LmdbEnv::ReleaseIfGrown(bool wait_interval) const {
  if (mapped_bytes_bound_ == 0) return;
  const uint64_t resident = FileResidentBytes();
  const uint64_t base = file_resident_base_.load(std::memory_order_relaxed);
  if (resident <= base + mapped_bytes_bound_) return;
  if (wait_interval) {
    const auto since_release =
        std::chrono::steady_clock::now().time_since_epoch() -
        std::chrono::nanoseconds(last_release_ns_.load(std::memory_order_relaxed));
    if (since_release < min_release_interval_) return;
  }
  std::unique_lock lock(release_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is releasing right now
  ReleaseMappedPages();
}

void LmdbEnv::ReleaseAfterWholeRead() const {
  if (mapped_bytes_bound_ == 0) return;
  std::lock_guard lock(release_mu_);
  ReleaseMappedPages();
}

bool LmdbEnv::FindMap(uintptr_t* begin, uintptr_t* end) const {
  MDB_envinfo info;
  mdb_filehandle_t fd;
  struct stat st;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_get_fd(env_, &fd) != 0 || ::fstat(fd, &st) != 0) {
    return false;
  }
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int found = 0;
  while (std::getline(maps, line)) {
    unsigned long long from = 0, to = 0, offset = 0, inode = 0;
    unsigned dev_major = 0, dev_minor = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu", &from, &to, perms, &offset,
                    &dev_major, &dev_minor, &inode) != 7) {
      continue;
    }
    if (inode != st.st_ino || dev_major != major(st.st_dev) || dev_minor != minor(st.st_dev)) {
      continue;
    }
    // LMDB maps the data file once, shared, from offset 0, map size bytes.
    if (++found > 1 || perms[3] != 's' || offset != 0 || to - from != info.me_mapsize) {
      return false;
    }
    *begin = static_cast<uintptr_t>(from);
    *end = static_cast<uintptr_t>(to);
  }
  return found == 1;
}

bool LmdbEnv::ReleaseMappedPages() const {
  uintptr_t begin = 0, end = 0;
  if (!FindMap(&begin, &end)) {
    static std::once_flag warned;
    std::call_once(warned, [this] {
      spdlog::warn("{}/data.mdb: its map is not found in /proc/self/maps; its pages stay mapped",
                   dir_);
    });
    return false;
  }
  if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) != 0) {
    spdlog::warn("{}/data.mdb: madvise(MADV_DONTNEED) of its map: {}", dir_, std::strerror(errno));
    return false;
  }
  file_resident_base_.store(FileResidentBytes(), std::memory_order_relaxed);
  last_release_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count(),
                         std::memory_order_relaxed);
  return true;
}

uint64_t LmdbEnv::MappedResidentBytes() const {
  uintptr_t begin = 0, end = 0;
  if (!FindMap(&begin, &end)) return 0;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_map = false;
  while (std::getline(smaps, line)) {
    unsigned long long from = 0, to = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &from, &to) == 2) {
      in_map = (from == begin && to == end);
      continue;
    }
    unsigned long long kib = 0;
    if (in_map && std::sscanf(line.c_str(), "Rss: %llu kB", &kib) == 1) return kib * 1024;
  }
  return 0;
}

Status LmdbEnv::CheckIntegrity() const {
  const std::string file = dir_ + "/data.mdb";
  auto damaged = [&file](const std::string& why) {
    return Status::Corruption("backend " + file + " is damaged (" + why +
                              "); refusing to serve it: restore this member from a snapshot "
                              "or remove and re-add it");
  };
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0) {
    return damaged("no environment info");
  }
  // Every page the newest meta page can reach must be inside the file: a
  // mapped page past its end faults (SIGBUS) instead of failing a read.
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(file, ec);
  const uint64_t needed = (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  if (ec) return damaged("cannot stat: " + ec.message());
  if (file_size < needed) {
    return damaged("truncated: " + std::to_string(file_size) + " bytes, its pages need " +
                   std::to_string(needed));
  }
  // Walk every B-tree (the main one and each named table) leaf by leaf:
  // LMDB checks each page's type and bounds as a cursor reaches it, so a
  // torn or stale page surfaces here rather than under a client's read.
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "begin integrity walk");
  auto walk = [&](MDB_dbi dbi, const std::string& name, std::vector<std::string>* names) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, dbi, &cursor);
    MDB_val key, value;
    uint64_t entries = 0;
    for (rc = rc != 0 ? rc : mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
      if (++entries % Cursor::kCursorStepsPerBoundCheck == 0) {
        BoundMappedPages();
      }
      if (names != nullptr) names->emplace_back(FromMdbVal(key));
    }
    if (cursor != nullptr) mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) return Status::OK();
    return damaged("table '" + name + "' after " + std::to_string(entries) +
                   " entries: " + mdb_strerror(rc));
  };
  MDB_dbi main_dbi;
  std::vector<std::string> names;
  Status st = (rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi)) != 0
                  ? damaged(std::string("main table: ") + mdb_strerror(rc))
                  : walk(main_dbi, "(main)", &names);
  for (size_t i = 0; st.ok() && i < names.size(); ++i) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, names[i].c_str(), 0, &dbi);
    if (rc == MDB_INCOMPATIBLE) continue;  // a plain key of the main table, not a table
    st = rc != 0 ? damaged("table '" + names[i] + "': " + mdb_strerror(rc))
                 : walk(dbi, names[i], nullptr);
  }
  mdb_txn_abort(txn);
  return st;
}

LmdbEnv::~LmdbEnv() {
  flush_.reset();  // its flush in flight uses the env
  mdb_env_close(env_);
  if (statm_fd_ >= 0) ::close(statm_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::string LmdbEnv::CurrentDir() const {
  if (dir_fd_ < 0) return dir_;
  char target[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(dir_fd_);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof(target));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(target)) return dir_;
  return std::string(target, static_cast<size_t>(n));
}

Status LmdbEnv::Commit(MDB_txn* txn, std::string_view what) {
  if (flush_) {
    if (Status st = flush_->BeforeCommit(); !st.ok()) {
      mdb_txn_abort(txn);
      return st;
    }
  }
  if (int rc = mdb_txn_commit(txn); rc != 0) return LmdbError(rc, what);
  if (flush_) flush_->AfterCommit();
  return Status::OK();
}

Status LmdbEnv::Sync() {
  if (flush_) return flush_->Sync();
  int rc = mdb_env_sync(env_, 1);
  return rc == 0 ? Status::OK() : LmdbError(rc, "mdb_env_sync");
}

uint64_t LmdbEnv::SizeBytes() const {
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0) return 0;
  return (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

Status LmdbEnv::GrowMap(uint64_t bytes) {
  MDB_envinfo info;
  if (int rc = mdb_env_info(env_, &info); rc != 0) return LmdbError(rc, "mdb_env_info");
  if (info.me_mapsize >= bytes) return Status::OK();
  if (int rc = mdb_env_set_mapsize(env_, bytes); rc != 0) return LmdbError(rc, "set_mapsize");
  return Status::OK();
}

uint64_t LmdbEnv::MapBytes() const {
  MDB_envinfo info;
  return mdb_env_info(env_, &info) == 0 ? info.me_mapsize : 0;
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

Cursor::Cursor(MDB_txn* txn, MDB_dbi dbi, uint32_t* shared_steps) {
  if (shared_steps != nullptr) steps_ = shared_steps;
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
      own_steps_(other.own_steps_),
      steps_(other.steps_ == &other.own_steps_ ? &own_steps_ : other.steps_),
      key_(other.key_),
      value_(other.value_),
      valid_(other.valid_),
      status_(std::move(other.status_)) {
  other.cursor_ = nullptr;
  other.valid_ = false;
}

bool Cursor::Move(std::string_view key, MDB_cursor_op op) {
  *steps_ += op == MDB_SET_KEY ? kStepsPerLookup : 1;
  if (*steps_ >= kCursorStepsPerBoundCheck) {
    *steps_ = 0;
    if (LmdbEnv* env = LmdbEnv::Of(mdb_cursor_txn(cursor_))) env->BoundMappedPages();
  }
  if (op == MDB_SET_RANGE || op == MDB_SET_KEY) key_ = ToMdbVal(key);
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
