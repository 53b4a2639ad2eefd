// lossyfs: a FUSE pass-through file system that can lose what was not synced,
// the way a disk loses its write cache when the power goes.
//
//   lossyfs <backing dir> <mount point> --seed N [--keep P] [-f]
//
// Every file operation goes straight to the backing directory, but before a
// write (or truncate, or fallocate) changes a 4 KiB page of a file for the
// first time since that file's last fsync/fdatasync, the page's old bytes and
// the file's old size are saved in memory. fsync forgets them: from then on
// the page is durable. When the file system is unmounted (the power cut: the
// test kills the server first, so the kernel flushes the killed process's
// dirty pages, mmap'd ones included, to us as ordinary writes), each page
// still unsynced is kept with probability P (default 0.5) and otherwise put
// back as it was, independently and in no order, as a disk's write-back
// would: the backing directory then holds what a machine could find after a
// power loss. The decisions follow --seed, so a failing cut can be replayed.
//
// Not modelled: directory operations (create, rename including
// RENAME_EXCHANGE, unlink, mkdir) are durable at once, as on a journalling file system that orders
// metadata; fsync of a directory is accepted and does nothing. A test that needs rename atomicity
// without a directory fsync would pass here wrongly.
//
// Runs single-threaded (fuse -s), so operations never interleave; mu still
// guards the saved pages, for the destroy callback and for safety if that
// ever changes.
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;

// What a file looked like at its last sync, for the pages changed since.
struct Unsynced {
  uint64_t synced_size = 0;
  // Page index -> the page's bytes at the last sync (shorter than kPage, or
  // empty, where the file ended before the page's end).
  std::map<uint64_t, std::string> pages;
};

struct State {
  std::string backing;
  double keep = 0.5;
  uint64_t seed = 1;
  std::mutex mu;
  std::map<std::string, Unsynced> files;  // by path under the mount; guarded by mu
  uint64_t writes = 0, syncs = 0;         // guarded by mu
};

State* state() { return static_cast<State*>(fuse_get_context()->private_data); }
State* g_state = nullptr;  // for init(), before the context carries it

std::string Real(const char* path) { return state()->backing + path; }

uint64_t FileSize(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Saves the synced bytes of pages [first, last] of `path` (open as `fd`) that
// are not saved yet. Caller holds mu.
void SavePages(State& s, const std::string& path, int fd, uint64_t first, uint64_t last) {
  auto [it, created] = s.files.try_emplace(path);
  Unsynced& u = it->second;
  if (created) u.synced_size = FileSize(fd);
  for (uint64_t p = first; p <= last; ++p) {
    if (u.pages.count(p)) continue;
    std::string bytes;
    if (p * kPage < u.synced_size) {
      bytes.resize(std::min(kPage, u.synced_size - p * kPage));
      ssize_t n = ::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(p * kPage));
      if (n < 0) {
        // An empty saved page means "held nothing": the cut would zero
        // bytes that may have been synced. Better no test than a false one.
        std::fprintf(stderr, "lossyfs: cannot save page %llu of %s: %s\n",
                     static_cast<unsigned long long>(p), path.c_str(), std::strerror(errno));
        std::abort();
      }
      bytes.resize(static_cast<size_t>(n));
    }
    u.pages.emplace(p, std::move(bytes));
  }
}

// Before the file's size changes from `old_size` to `new_size`.
void SaveResize(State& s, const std::string& path, int fd, uint64_t old_size, uint64_t new_size) {
  if (old_size == new_size) return;
  const uint64_t lo = std::min(old_size, new_size), hi = std::max(old_size, new_size);
  std::lock_guard<std::mutex> lock(s.mu);
  SavePages(s, path, fd, lo / kPage, (hi - 1) / kPage);
}

// Puts every unsynced page back (or keeps it), as the power cut leaves it.
void Cut(State& s) {
  std::mt19937_64 rng(s.seed);
  std::bernoulli_distribution keep(s.keep);
  uint64_t kept = 0, lost = 0;
  for (auto& [path, u] : s.files) {
    const std::string real = s.backing + path;
    int fd = ::open(real.c_str(), O_RDWR);
    if (fd < 0) continue;  // deleted since: its deletion was durable
    const uint64_t size_now = FileSize(fd);
    uint64_t final_size = u.synced_size;
    std::map<uint64_t, bool> kept_page;
    for (auto& [page, bytes] : u.pages) {
      const bool k = keep(rng);
      kept_page[page] = k;
      if (k) final_size = std::max(final_size, std::min(size_now, (page + 1) * kPage));
    }
    for (auto& [page, bytes] : u.pages) {
      if (kept_page[page]) {
        ++kept;
        continue;
      }
      ++lost;
      const uint64_t start = page * kPage;
      if (start >= final_size) continue;
      // A page past the synced size held nothing: a hole reads as the zeros
      // it goes back to, and costs no disk (a store's map file grows by
      // hundreds of MiB at once and most of it is never written).
      if (bytes.empty() &&
          ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
                      static_cast<off_t>(std::min(kPage, final_size - start))) == 0) {
        continue;
      }
      std::string restore = bytes;
      restore.resize(std::min(kPage, final_size - start), '\0');
      if (::pwrite(fd, restore.data(), restore.size(), static_cast<off_t>(start)) < 0) {
        std::perror("lossyfs: restoring a page");
      }
    }
    if (::ftruncate(fd, static_cast<off_t>(final_size)) != 0) std::perror("lossyfs: truncate");
    ::fsync(fd);
    ::close(fd);
  }
  std::fprintf(stderr, "lossyfs: power cut: %llu unsynced pages kept, %llu lost (seed %llu)\n",
               static_cast<unsigned long long>(kept), static_cast<unsigned long long>(lost),
               static_cast<unsigned long long>(s.seed));
  s.files.clear();
}

int Err(int rc) { return rc < 0 ? -errno : rc; }

int GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  return Err(::lstat(Real(path).c_str(), st));
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
            fuse_readdir_flags) {
  DIR* dir = ::opendir(Real(path).c_str());
  if (dir == nullptr) return -errno;
  while (dirent* e = ::readdir(dir)) {
    struct stat st {};
    st.st_ino = e->d_ino;
    st.st_mode = static_cast<mode_t>(e->d_type) << 12;
    if (fill(buf, e->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0))) break;
  }
  ::closedir(dir);
  return 0;
}

int MkDir(const char* path, mode_t mode) { return Err(::mkdir(Real(path).c_str(), mode)); }

int Unlink(const char* path) {
  State& s = *state();
  int rc = Err(::unlink(Real(path).c_str()));
  if (rc == 0) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.files.erase(path);
  }
  return rc;
}

int RmDir(const char* path) { return Err(::rmdir(Real(path).c_str())); }

// The saved pages follow their files: a rename moves the entries of `from`
// (a file, or every file under a directory) to `to` and drops what `to`
// replaced; RENAME_EXCHANGE (how a defragmented store is swapped in) swaps
// the two sets.
std::map<std::string, Unsynced> TakeTree(std::map<std::string, Unsynced>& files,
                                         const std::string& root) {
  std::map<std::string, Unsynced> taken;
  for (auto it = files.begin(); it != files.end();) {
    const std::string& path = it->first;
    if (path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                         path[root.size()] == '/')) {
      taken.emplace(path.substr(root.size()), std::move(it->second));
      it = files.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

void PutTree(std::map<std::string, Unsynced>& files, const std::string& root,
             std::map<std::string, Unsynced> tree) {
  for (auto& [suffix, unsynced] : tree) files[root + suffix] = std::move(unsynced);
}

int Rename(const char* from, const char* to, unsigned int flags) {
  if ((flags & ~static_cast<unsigned>(RENAME_EXCHANGE | RENAME_NOREPLACE)) != 0) return -EINVAL;
  State& s = *state();
  int rc = Err(::renameat2(AT_FDCWD, Real(from).c_str(), AT_FDCWD, Real(to).c_str(), flags));
  if (rc == 0) {
    std::lock_guard<std::mutex> lock(s.mu);
    auto moved = TakeTree(s.files, from);
    auto replaced = TakeTree(s.files, to);
    PutTree(s.files, to, std::move(moved));
    if (flags & RENAME_EXCHANGE) PutTree(s.files, from, std::move(replaced));
  }
  return rc;
}

int Chmod(const char* path, mode_t mode, fuse_file_info*) {
  return Err(::chmod(Real(path).c_str(), mode));
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  State& s = *state();
  int fd = fi != nullptr ? static_cast<int>(fi->fh) : ::open(Real(path).c_str(), O_RDWR);
  if (fd < 0) return -errno;
  SaveResize(s, path, fd, FileSize(fd), static_cast<uint64_t>(size));
  int rc = Err(::ftruncate(fd, size));
  if (fi == nullptr) ::close(fd);
  return rc;
}

int Utimens(const char* path, const struct timespec tv[2], fuse_file_info*) {
  return Err(::utimensat(AT_FDCWD, Real(path).c_str(), tv, AT_SYMLINK_NOFOLLOW));
}

// Flags for the backing descriptor of a file the caller opens with `flags`.
// It is always readable: before a write changes a page, SavePages reads the
// page's synced bytes through it, and a write-only handle (how the WAL opens
// its segments) would make that read fail.
int BackingFlags(int flags) {
  return (flags & O_ACCMODE) == O_WRONLY ? (flags & ~O_ACCMODE) | O_RDWR : flags;
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  int fd = ::open(Real(path).c_str(), BackingFlags(fi->flags), mode);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  State& s = *state();
  int fd = ::open(Real(path).c_str(), BackingFlags(fi->flags) & ~O_TRUNC);
  if (fd < 0) return -errno;
  if (fi->flags & O_TRUNC) {
    SaveResize(s, path, fd, FileSize(fd), 0);
    if (::ftruncate(fd, 0) != 0) {
      int err = errno;
      ::close(fd);
      return -err;
    }
  }
  fi->fh = static_cast<uint64_t>(fd);
  return 0;
}

int Read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, offset);
  return n < 0 ? -errno : static_cast<int>(n);
}

int Write(const char* path, const char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  State& s = *state();
  const int fd = static_cast<int>(fi->fh);
  if (size > 0) {
    std::lock_guard<std::mutex> lock(s.mu);
    const uint64_t first = static_cast<uint64_t>(offset) / kPage;
    const uint64_t last = (static_cast<uint64_t>(offset) + size - 1) / kPage;
    SavePages(s, path, fd, first, last);
    // A write past the end also changes the pages between the old end and it.
    const uint64_t end = FileSize(fd);
    if (static_cast<uint64_t>(offset) > end) SavePages(s, path, fd, end / kPage, first);
    ++s.writes;
  }
  ssize_t n = ::pwrite(fd, buf, size, offset);
  return n < 0 ? -errno : static_cast<int>(n);
}

int StatFs(const char* path, struct statvfs* st) { return Err(::statvfs(Real(path).c_str(), st)); }

int Release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

int FSync(const char* path, int datasync, fuse_file_info* fi) {
  State& s = *state();
  const int fd = static_cast<int>(fi->fh);
  int rc = Err(datasync ? ::fdatasync(fd) : ::fsync(fd));
  if (rc == 0) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.files.erase(path);
    ++s.syncs;
  }
  return rc;
}

int FSyncDir(const char*, int, fuse_file_info*) { return 0; }

int FAllocate(const char* path, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  if (mode != 0) return -EOPNOTSUPP;
  State& s = *state();
  const int fd = static_cast<int>(fi->fh);
  const uint64_t old_size = FileSize(fd);
  const uint64_t new_size = std::max(old_size, static_cast<uint64_t>(offset + length));
  SaveResize(s, path, fd, old_size, new_size);
  return -::posix_fallocate(fd, offset, length);
}

int Flock(const char*, fuse_file_info* fi, int op) {
  return Err(::flock(static_cast<int>(fi->fh), op));
}

void* Init(fuse_conn_info*, fuse_config* cfg) {
  // The kernel must not cache attributes or data across our restores, and
  // inode numbers pass through (LMDB compares them for its lock file).
  cfg->use_ino = 1;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  return g_state;
}

void Destroy(void* data) {
  State& s = *static_cast<State*>(data);
  std::lock_guard<std::mutex> lock(s.mu);
  std::fprintf(stderr, "lossyfs: %llu writes, %llu syncs\n",
               static_cast<unsigned long long>(s.writes), static_cast<unsigned long long>(s.syncs));
  Cut(s);
}

fuse_operations MakeOperations() {
  fuse_operations ops{};
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.mkdir = MkDir;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.rename = Rename;
  ops.chmod = Chmod;
  ops.truncate = Truncate;
  ops.utimens = Utimens;
  ops.create = Create;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.statfs = StatFs;
  ops.release = Release;
  ops.fsync = FSync;
  ops.fsyncdir = FSyncDir;
  ops.fallocate = FAllocate;
  ops.flock = Flock;
  ops.init = Init;
  ops.destroy = Destroy;
  return ops;
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s <backing dir> <mount point> --seed N [--keep P] [-f]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  State s;
  std::string backing, mount;
  bool foreground = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--seed" && i + 1 < argc) {
      s.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--keep" && i + 1 < argc) {
      s.keep = std::strtod(argv[++i], nullptr);
    } else if (arg == "-f") {
      foreground = true;
    } else if (backing.empty()) {
      backing = arg;
    } else if (mount.empty()) {
      mount = arg;
    } else {
      return Usage(argv[0]);
    }
  }
  if (backing.empty() || mount.empty() || s.keep < 0 || s.keep > 1) return Usage(argv[0]);
  char* real = ::realpath(backing.c_str(), nullptr);
  if (real == nullptr) {
    std::perror(backing.c_str());
    return 1;
  }
  s.backing = real;
  std::free(real);
  g_state = &s;
  std::string prog = argv[0];
  std::vector<char*> fuse_args = {prog.data(), mount.data()};
  std::string fg = "-f", single = "-s";  // one thread: the undo order stays simple
  if (foreground) fuse_args.push_back(fg.data());
  fuse_args.push_back(single.data());
  const fuse_operations ops = MakeOperations();
  return fuse_main(static_cast<int>(fuse_args.size()), fuse_args.data(), &ops, &s);
}
