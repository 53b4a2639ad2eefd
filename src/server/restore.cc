#include "server/restore.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "mvcc/kv_store.h"
#include "server/alarms.h"
#include "server/membership.h"

namespace etcdpp::server {
namespace {

constexpr size_t kChecksumBytes = SHA256_DIGEST_LENGTH;

Status WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.flush();
  if (!out) return Status::IOError("write " + path + " failed");
  return Status::OK();
}

// Opens the copy as a store in `dir` (created), which must not exist yet.
Result<std::unique_ptr<mvcc::KvStore>> OpenCopy(const std::string& data, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("create " + dir + ": " + ec.message());
  ETCDPP_RETURN_IF_ERROR(WriteFile(dir + "/data.mdb", data));
  mvcc::Options options;
  // The copy may hold more than the default quota; the server sizes the
  // map from its own flag when it opens the store.
  options.quota_bytes = std::max<uint64_t>(options.quota_bytes, data.size());
  auto store = mvcc::KvStore::Open(dir, options);
  if (!store.ok()) {
    return Status(store.status().code(),
                  "the snapshot is not an etcdpp database: " + store.status().message());
  }
  return store;
}

}  // namespace

Status ReadSnapshotFile(const std::string& path, bool skip_hash_check, std::string* data) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("open " + path + ": " + std::strerror(errno));
  data->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IOError("read " + path + " failed");
  const bool has_checksum = data->size() % 512 == kChecksumBytes;
  if (!has_checksum) {
    if (skip_hash_check) return Status::OK();
    return Status::InvalidArgument("snapshot missing hash but --skip-hash-check=false");
  }
  const size_t body = data->size() - kChecksumBytes;
  unsigned char digest[kChecksumBytes];
  SHA256(reinterpret_cast<const unsigned char*>(data->data()), body, digest);
  if (!skip_hash_check && data->compare(body, kChecksumBytes, reinterpret_cast<const char*>(digest),
                                        kChecksumBytes) != 0) {
    return Status::Corruption("expected sha256 of the snapshot does not match its contents");
  }
  data->resize(body);
  return Status::OK();
}

Status WriteRestoredStore(const std::string& data, const std::string& store_dir) {
  auto store = OpenCopy(data, store_dir);
  if (!store.ok()) return store.status();
  auto txn = (*store)->Write();
  if (!txn.ok()) return txn.status();
  // A backup taken while a large delete committed its parts: the new
  // cluster starts from the state after it.
  ETCDPP_RETURN_IF_ERROR((*txn)->FinishUnfinishedDelete());
  ETCDPP_RETURN_IF_ERROR((*txn)->SetConsistentIndex(0));
  // Empty values decode as an empty membership and no alarms.
  ETCDPP_RETURN_IF_ERROR((*txn)->PutMeta(kMembershipMetaKey, ""));
  ETCDPP_RETURN_IF_ERROR((*txn)->PutMeta(kAlarmsMetaKey, ""));
  ETCDPP_RETURN_IF_ERROR((*txn)->Commit());
  return (*store)->Sync();
}

Result<SnapshotSummary> SummarizeSnapshot(const std::string& data, const std::string& scratch_dir) {
  auto summarize = [&]() -> Result<SnapshotSummary> {
    auto store = OpenCopy(data, scratch_dir);
    if (!store.ok()) return store.status();
    auto digest = (*store)->HashBackend();
    if (!digest.ok()) return digest.status();
    SnapshotSummary summary;
    summary.hash = digest->hash;
    summary.revision = (*store)->CurrentRevision();
    summary.total_keys = digest->records;
    summary.total_size = data.size();
    return summary;
  };
  Result<SnapshotSummary> summary = summarize();
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir, ec);
  return summary;
}

}  // namespace etcdpp::server
