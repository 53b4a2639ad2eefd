#include "base/fault_env.h"

#include <algorithm>
#include <random>

namespace etcdpp {

struct FaultEnv::File {
  std::string data;     // Visible contents.
  std::string durable;  // Contents after a crash.
};

class FaultEnv::Handle final : public WritableFile {
 public:
  Handle(FaultEnv* env, std::string path, std::shared_ptr<File> file, uint64_t position)
      : env_(env),
        path_(std::move(path)),
        file_(std::move(file)),
        position_(position),
        epoch_(env->crash_epoch_) {}

  Status Append(std::string_view data) override {
    std::lock_guard<std::mutex> l(env_->mu_);
    ETCDPP_RETURN_IF_ERROR(CheckLocked("write"));
    if (env_->fail_writes_) return Status::IOError("write " + path_ + ": injected failure");
    std::string& d = file_->data;
    if (d.size() < position_ + data.size()) d.resize(position_ + data.size(), '\0');
    std::copy(data.begin(), data.end(), d.begin() + static_cast<ptrdiff_t>(position_));
    position_ += data.size();
    ++env_->appends_;
    return Status::OK();
  }

  Status Sync() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    ETCDPP_RETURN_IF_ERROR(CheckLocked("sync"));
    if (env_->SyncFailsLocked())
      return Status::IOError("fdatasync " + path_ + ": injected failure");
    file_->durable = file_->data;
    ++env_->syncs_;
    return Status::OK();
  }

  Status Preallocate(uint64_t size) override {
    std::lock_guard<std::mutex> l(env_->mu_);
    ETCDPP_RETURN_IF_ERROR(CheckLocked("preallocate"));
    if (file_->data.size() < size) file_->data.resize(size, '\0');
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> l(env_->mu_);
    ETCDPP_RETURN_IF_ERROR(CheckLocked("truncate"));
    file_->data.resize(size, '\0');
    return Status::OK();
  }

  uint64_t Position() const override { return position_; }

  Status Close() override {
    closed_ = true;
    return Status::OK();
  }

 private:
  Status CheckLocked(const char* op) const {
    if (closed_) return Status::IOError(std::string(op) + " " + path_ + ": file closed");
    if (epoch_ != env_->crash_epoch_) {
      return Status::IOError(std::string(op) + " " + path_ + ": handle from before a crash");
    }
    return Status::OK();
  }

  FaultEnv* const env_;
  const std::string path_;
  const std::shared_ptr<File> file_;
  uint64_t position_;
  const uint64_t epoch_;
  bool closed_ = false;
};

class FaultEnv::Lock final : public FileLock {
 public:
  Lock(FaultEnv* env, std::string path, uint64_t epoch)
      : env_(env), path_(std::move(path)), epoch_(epoch) {}
  ~Lock() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    // A crash already released every lock; one taken since may hold this path.
    if (epoch_ == env_->crash_epoch_) env_->locks_.erase(path_);
  }

 private:
  FaultEnv* const env_;
  const std::string path_;
  const uint64_t epoch_;
};

FaultEnv::FaultEnv() = default;
FaultEnv::~FaultEnv() = default;

std::pair<std::string, std::string> FaultEnv::Split(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::shared_ptr<FaultEnv::File> FaultEnv::FindLocked(const std::string& path) {
  auto [dir, name] = Split(path);
  auto d = live_.find(dir);
  if (d == live_.end()) return nullptr;
  auto f = d->second.find(name);
  return f == d->second.end() ? nullptr : f->second;
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto [dir, name] = Split(path);
  if (!dirs_.count(dir)) return Status::NotFound("open " + path + ": no such directory");
  auto& slot = live_[dir][name];
  if (slot) {
    slot->data.clear();  // O_TRUNC on the existing inode.
  } else {
    slot = std::make_shared<File>();
  }
  return std::unique_ptr<WritableFile>(new Handle(this, path, slot, 0));
}

Result<std::unique_ptr<WritableFile>> FaultEnv::OpenWritableFile(const std::string& path,
                                                                 uint64_t offset) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(path);
  if (!file) return Status::NotFound("open " + path + ": no such file");
  return std::unique_ptr<WritableFile>(new Handle(this, path, file, offset));
}

Result<std::string> FaultEnv::ReadFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(path);
  if (!file) return Status::NotFound("open " + path + ": no such file");
  return file->data;
}

bool FaultEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return FindLocked(path) != nullptr || dirs_.count(path) > 0;
}

Result<uint64_t> FaultEnv::GetFileSize(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(path);
  if (!file) return Status::NotFound("stat " + path + ": no such file");
  return static_cast<uint64_t>(file->data.size());
}

Result<std::vector<std::string>> FaultEnv::GetChildren(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  if (!dirs_.count(dir)) return Status::NotFound("opendir " + dir + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [name, file] : live_[dir]) names.push_back(name);
  for (const auto& d : dirs_) {
    auto [parent, name] = Split(d);
    if (parent == dir && !name.empty()) names.push_back(name);
  }
  return names;
}

Status FaultEnv::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
    dirs_.insert(dir.substr(0, pos));
    if (pos == std::string::npos) break;
  }
  return Status::OK();
}

Status FaultEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto [dir, name] = Split(path);
  if (!FindLocked(path)) return Status::NotFound("unlink " + path + ": no such file");
  live_[dir].erase(name);
  return Status::OK();
}

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(from);
  if (!file) return Status::NotFound("rename " + from + ": no such file");
  auto [to_dir, to_name] = Split(to);
  if (!dirs_.count(to_dir)) return Status::NotFound("rename to " + to + ": no such directory");
  auto [from_dir, from_name] = Split(from);
  live_[from_dir].erase(from_name);
  live_[to_dir][to_name] = file;
  return Status::OK();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  if (!dirs_.count(dir)) return Status::NotFound("open " + dir + ": no such directory");
  if (SyncFailsLocked()) return Status::IOError("fsync " + dir + ": injected failure");
  durable_[dir] = live_[dir];
  ++syncs_;
  return Status::OK();
}

Status FaultEnv::Truncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(path);
  if (!file) return Status::NotFound("truncate " + path + ": no such file");
  file->data.resize(size, '\0');
  return Status::OK();
}

Result<std::unique_ptr<FileLock>> FaultEnv::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto [dir, name] = Split(path);
  if (!dirs_.count(dir)) return Status::NotFound("open " + path + ": no such directory");
  if (!locks_.insert(path).second) {
    return Status::Unavailable("lock " + path + ": held by another process or handle");
  }
  auto& slot = live_[dir][name];
  if (!slot) slot = std::make_shared<File>();
  return std::unique_ptr<FileLock>(new Lock(this, path, crash_epoch_));
}

void FaultEnv::RevertNamesLocked() {
  live_ = durable_;
  locks_.clear();
  ++crash_epoch_;
}

void FaultEnv::DropUnsyncedData() {
  std::lock_guard<std::mutex> l(mu_);
  RevertNamesLocked();
  for (auto& [dir, entries] : live_) {
    for (auto& [name, file] : entries) file->data = file->durable;
  }
}

void FaultEnv::DropUnsyncedSectorsRandomly(uint64_t seed, uint64_t sector_size) {
  std::lock_guard<std::mutex> l(mu_);
  RevertNamesLocked();
  std::mt19937_64 rng(seed);
  std::set<File*> done;  // An inode may have several names.
  for (auto& [dir, entries] : live_) {
    for (auto& [name, file] : entries) {
      if (!done.insert(file.get()).second) continue;
      std::string result = file->durable;
      size_t size = (rng() & 1) ? file->data.size() : file->durable.size();
      result.resize(size, '\0');
      for (size_t start = 0; start < size; start += sector_size) {
        if (rng() & 1) continue;  // This sector kept its durable bytes.
        size_t end = std::min<size_t>({start + sector_size, size, file->data.size()});
        for (size_t i = start; i < end; ++i) result[i] = file->data[i];
      }
      file->data = result;
      file->durable = result;
    }
  }
}

Status FaultEnv::CorruptByte(const std::string& path, uint64_t offset, uint8_t xor_mask) {
  std::lock_guard<std::mutex> l(mu_);
  auto file = FindLocked(path);
  if (!file) return Status::NotFound("corrupt " + path + ": no such file");
  if (offset >= file->data.size()) return Status::InvalidArgument("corrupt: offset past end");
  file->data[offset] = static_cast<char>(file->data[offset] ^ xor_mask);
  if (offset < file->durable.size()) {
    file->durable[offset] = static_cast<char>(file->durable[offset] ^ xor_mask);
  }
  return Status::OK();
}

void FaultEnv::SetFailWrites(bool fail) {
  std::lock_guard<std::mutex> l(mu_);
  fail_writes_ = fail;
}

void FaultEnv::SetFailSyncs(bool fail) {
  std::lock_guard<std::mutex> l(mu_);
  fail_syncs_ = fail;
  syncs_before_failure_ = -1;
}

void FaultEnv::FailSyncsAfter(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  fail_syncs_ = false;
  syncs_before_failure_ = static_cast<int64_t>(n);
}

bool FaultEnv::SyncFailsLocked() {
  if (syncs_before_failure_ == 0) fail_syncs_ = true;
  if (syncs_before_failure_ > 0) --syncs_before_failure_;
  return fail_syncs_;
}

uint64_t FaultEnv::append_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return appends_;
}

uint64_t FaultEnv::sync_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return syncs_;
}

}  // namespace etcdpp
