#include "mvcc/flushed_commit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/env.h"

namespace etcdpp::mvcc {
namespace {

constexpr char kMagic[8] = {'e', 't', 'c', 'd', 'p', 'p', 'F', 'C'};
constexpr size_t kRecordBytes = 28;

// LMDB 0.9's meta pages (data format version 1), as far as a roll-back
// needs them; native byte order, like the rest of LMDB's file. Page 0 and
// page 1 of data.mdb each hold one: a 16-byte page header (flags at 10),
// then MDB_meta: magic (4), version (4), address (8), map size (8), the
// free and main tables' MDB_db (48 each; the page size is the free table's
// first 4 bytes), the last page number (8) and the transaction id (8).
constexpr size_t kPageHeaderBytes = 16;
constexpr size_t kMetaBytes = 136;
constexpr size_t kFlagsOffset = 10;
constexpr uint16_t kMetaPageFlag = 0x08;
constexpr size_t kMagicOffset = kPageHeaderBytes;
constexpr size_t kVersionOffset = kPageHeaderBytes + 4;
constexpr size_t kPageSizeOffset = kPageHeaderBytes + 24;
constexpr size_t kTxnidOffset = kPageHeaderBytes + 128;
constexpr uint32_t kLmdbMagic = 0xBEEFC0DE;
constexpr uint32_t kLmdbDataVersion = 1;

template <typename T>
T Native(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

// Reads exactly n bytes at offset; false at end of file.
Result<bool> ReadAt(int fd, char* buf, size_t n, off_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, buf + done, n - done, offset + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("read " + path);
    if (r == 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

Status WriteAt(int fd, const char* buf, size_t n, off_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd, buf + done, n - done, offset + static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("write " + path);
    done += static_cast<size_t>(w);
  }
  return Status::OK();
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Record {
  uint64_t txnid = 0;
  uint64_t inode = 0;
};

// The record in `dir`, or nullopt if there is none or it does not check
// (then nothing is known, and nothing is rolled back: see the header).
std::optional<Record> ReadRecord(const std::string& dir) {
  auto contents = Env::Default()->ReadFile(dir + "/" + kFlushedCommitFile);
  if (!contents.ok() || contents->size() < kRecordBytes) return std::nullopt;
  const char* buf = contents->data();
  if (std::memcmp(buf, kMagic, sizeof(kMagic)) != 0) return std::nullopt;
  if (GetBE32(buf + 24) != crc32c::Value(buf, 24)) return std::nullopt;
  return Record{GetBE64(buf + 8), GetBE64(buf + 16)};
}

struct MetaPage {
  char bytes[kPageHeaderBytes + kMetaBytes];
  uint64_t txnid() const { return Native<uint64_t>(bytes + kTxnidOffset); }
  bool valid() const {
    return (Native<uint16_t>(bytes + kFlagsOffset) & kMetaPageFlag) != 0 &&
           Native<uint32_t>(bytes + kMagicOffset) == kLmdbMagic &&
           Native<uint32_t>(bytes + kVersionOffset) == kLmdbDataVersion;
  }
};

}  // namespace

Status RollBackUnflushedCommit(const std::string& dir, uint64_t* rolled_back_txnid) {
  *rolled_back_txnid = 0;
  const std::optional<Record> record = ReadRecord(dir);
  if (!record) return Status::OK();
  const std::string path = dir + "/data.mdb";
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::OK();
    return Errno("open " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat " + path);
  if (static_cast<uint64_t>(st.st_ino) != record->inode) return Status::OK();

  MetaPage metas[2];
  auto read = ReadAt(fd.get(), metas[0].bytes, sizeof(metas[0].bytes), 0, path);
  if (!read.ok()) return read.status();
  // A file too short or not LMDB's is LMDB's to refuse.
  if (!*read || !metas[0].valid()) return Status::OK();
  const uint32_t page_size = Native<uint32_t>(metas[0].bytes + kPageSizeOffset);
  read = ReadAt(fd.get(), metas[1].bytes, sizeof(metas[1].bytes), page_size, path);
  if (!read.ok()) return read.status();
  if (!*read || !metas[1].valid()) return Status::OK();

  const int newer = metas[1].txnid() > metas[0].txnid() ? 1 : 0;
  const MetaPage& older = metas[1 - newer];
  if (metas[newer].txnid() <= record->txnid) return Status::OK();
  if (older.txnid() < record->txnid) {
    // The newer page then overwrote the last one recorded as flushed, with
    // the one between them unflushed too: two commits unflushed at once,
    // which DeferredFlush never allows. Neither page can be trusted.
    return Status::Corruption(path + ": meta pages at transactions " +
                              std::to_string(older.txnid()) + " and " +
                              std::to_string(metas[newer].txnid()) + ", but " +
                              std::to_string(record->txnid) + " was recorded as flushed");
  }
  ETCDPP_RETURN_IF_ERROR(WriteAt(fd.get(), older.bytes + kPageHeaderBytes, kMetaBytes,
                                 static_cast<off_t>(newer) * page_size + kPageHeaderBytes, path));
  if (::fdatasync(fd.get()) != 0) return Errno("flush " + path);
  *rolled_back_txnid = metas[newer].txnid();
  return Status::OK();
}

Status RecordFlushedCommit(int dir_fd, uint64_t txnid) {
  struct stat st;
  if (::fstatat(dir_fd, "data.mdb", &st, 0) != 0) return Errno("stat data.mdb");
  char buf[kRecordBytes];
  std::memcpy(buf, kMagic, sizeof(kMagic));
  PutBE64(buf + 8, txnid);
  PutBE64(buf + 16, static_cast<uint64_t>(st.st_ino));
  PutBE32(buf + 24, crc32c::Value(buf, 24));

  const bool existed = ::faccessat(dir_fd, kFlushedCommitFile, F_OK, 0) == 0;
  Fd fd(::openat(dir_fd, kFlushedCommitFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Errno(std::string("open ") + kFlushedCommitFile);
  ETCDPP_RETURN_IF_ERROR(WriteAt(fd.get(), buf, sizeof(buf), 0, kFlushedCommitFile));
  if (::fdatasync(fd.get()) != 0) return Errno(std::string("flush ") + kFlushedCommitFile);
  // A record lost with its directory entry would let a later open trust an
  // unflushed meta page.
  if (!existed && ::fsync(dir_fd) != 0) return Errno("flush the store's directory");
  return Status::OK();
}

}  // namespace etcdpp::mvcc
