// MemberFaultEnv: the Env a member runs on in disk-fault tests. The WAL,
// the snapshot files and the member directory live in a FaultEnv (so a
// crash keeps only what was synced), while the LMDB store's directories go
// to the real file system: LMDB does its own I/O on real paths, so the
// directory operations the server does on them (RemoveTree, ExchangePaths,
// files of a received store) must too.
//
// Faults are chosen by one predicate, asked before every operation that can
// fail on a real disk; a non-OK answer is returned instead of doing the
// operation. Thread-safe: the predicate is guarded by mu_ and must not call
// back into the env.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/fault_env.h"

namespace etcdpp::testing {

class MemberFaultEnv final : public Env {
 public:
  enum class Op { kAppend, kSync, kRename, kSyncDir };
  // OK lets the operation go ahead. `path` is the file written or synced,
  // the rename's target, or the synced directory.
  using FaultRule = std::function<Status(Op op, const std::string& path)>;

  // Paths under `store_prefix` (<data-dir>/member/snap/db, which also
  // covers db.incoming) go to the real file system.
  explicit MemberFaultEnv(std::string store_prefix) : store_prefix_(std::move(store_prefix)) {}

  void SetFaultRule(FaultRule rule) {
    std::lock_guard<std::mutex> lock(mu_);
    rule_ = std::move(rule);
  }
  FaultEnv& disk() { return disk_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    if (IsStore(path)) return Env::Default()->NewWritableFile(path);
    auto file = disk_.NewWritableFile(path);
    if (!file.ok()) return file.status();
    return Wrap(path, std::move(file).value());
  }
  Result<std::unique_ptr<WritableFile>> OpenWritableFile(const std::string& path,
                                                         uint64_t offset) override {
    if (IsStore(path)) return Env::Default()->OpenWritableFile(path, offset);
    auto file = disk_.OpenWritableFile(path, offset);
    if (!file.ok()) return file.status();
    return Wrap(path, std::move(file).value());
  }
  Result<std::string> ReadFile(const std::string& path) override {
    return For(path)->ReadFile(path);
  }
  bool FileExists(const std::string& path) override { return For(path)->FileExists(path); }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    return For(path)->GetFileSize(path);
  }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return For(dir)->GetChildren(dir);
  }
  Status CreateDir(const std::string& dir) override { return For(dir)->CreateDir(dir); }
  Status RemoveFile(const std::string& path) override { return For(path)->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (IsStore(to)) return Env::Default()->RenameFile(from, to);
    ETCDPP_RETURN_IF_ERROR(Check(Op::kRename, to));
    return disk_.RenameFile(from, to);
  }
  Status SyncDir(const std::string& dir) override {
    if (IsStore(dir)) return Env::Default()->SyncDir(dir);
    ETCDPP_RETURN_IF_ERROR(Check(Op::kSyncDir, dir));
    return disk_.SyncDir(dir);
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    return For(path)->Truncate(path, size);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return For(path)->LockFile(path);
  }
  // Only the store's directories are removed or exchanged.
  Status RemoveTree(const std::string& path) override { return Env::Default()->RemoveTree(path); }
  Status ExchangePaths(const std::string& a, const std::string& b) override {
    return Env::Default()->ExchangePaths(a, b);
  }

  // What a crash leaves, written to the real file system at the same paths,
  // for a restart on Env::Default(): DropUnsyncedData, then a copy of every
  // file of `dirs`. Meant for the moment the process dies.
  void CrashAndCopyToRealDisk(const std::vector<std::string>& dirs) {
    disk_.DropUnsyncedData();
    Env* real = Env::Default();
    for (const std::string& dir : dirs) {
      auto names = disk_.GetChildren(dir);
      if (!names.ok()) continue;
      (void)real->CreateDir(dir);
      for (const std::string& name : *names) {
        const std::string path = JoinPath(dir, name);
        auto contents = disk_.ReadFile(path);
        if (!contents.ok()) continue;  // a subdirectory
        auto out = real->NewWritableFile(path);
        if (!out.ok()) continue;
        (void)(*out)->Append(*contents);
        (void)(*out)->Close();
      }
    }
  }

 private:
  // Forwards to the FaultEnv's file and asks the rule first.
  class File final : public WritableFile {
   public:
    File(MemberFaultEnv* env, std::string path, std::unique_ptr<WritableFile> file)
        : env_(env), path_(std::move(path)), file_(std::move(file)) {}
    Status Append(std::string_view data) override {
      ETCDPP_RETURN_IF_ERROR(env_->Check(Op::kAppend, path_));
      return file_->Append(data);
    }
    Status Sync() override {
      ETCDPP_RETURN_IF_ERROR(env_->Check(Op::kSync, path_));
      return file_->Sync();
    }
    Status Preallocate(uint64_t size) override { return file_->Preallocate(size); }
    Status Truncate(uint64_t size) override { return file_->Truncate(size); }
    uint64_t Position() const override { return file_->Position(); }
    Status Close() override { return file_->Close(); }

   private:
    MemberFaultEnv* const env_;
    const std::string path_;
    const std::unique_ptr<WritableFile> file_;
  };

  bool IsStore(std::string_view path) const { return path.starts_with(store_prefix_); }
  Env* For(const std::string& path) { return IsStore(path) ? Env::Default() : &disk_; }
  std::unique_ptr<WritableFile> Wrap(const std::string& path, std::unique_ptr<WritableFile> file) {
    return std::make_unique<File>(this, path, std::move(file));
  }
  Status Check(Op op, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return rule_ ? rule_(op, path) : Status::OK();
  }

  const std::string store_prefix_;
  FaultEnv disk_;
  std::mutex mu_;
  FaultRule rule_;  // guarded by mu_
};

}  // namespace etcdpp::testing
