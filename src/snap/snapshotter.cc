#include "snap/snapshotter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace etcdpp::snap {
namespace {

constexpr char kMagic[8] = {'e', 't', 'c', 'd', 'p', 'p', 'S', 'N'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 24;
constexpr char kSnapSuffix[] = ".snap";
constexpr char kTmpSuffix[] = ".snap.tmp";
constexpr char kBrokenSuffix[] = ".broken";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Status NoSnapshot() { return Status::NotFound("snap: no intact snapshot file to load"); }

std::string SnapName(uint64_t term, uint64_t index) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "-%016" PRIx64 ".snap", term, index);
  return buf;
}

std::optional<wal::SnapshotMarker> ParseSnapName(std::string_view name) {
  if (name.size() != 38 || name[16] != '-' || name.substr(33) != kSnapSuffix) return std::nullopt;
  auto hex = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        v = (v << 4) | static_cast<uint64_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = (v << 4) | static_cast<uint64_t>(c - 'a' + 10);
      } else {
        return std::nullopt;
      }
    }
    return v;
  };
  auto term = hex(name.substr(0, 16));
  auto index = hex(name.substr(17, 16));
  if (!term || !index) return std::nullopt;
  return wal::SnapshotMarker{*index, *term};
}

std::string EncodeSnapshotFile(const raftpb::Snapshot& snapshot) {
  const size_t n = snapshot.ByteSizeLong();
  std::string out(kHeaderSize + n, '\0');
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  PutLE32(out.data() + 12, kVersion);
  PutLE64(out.data() + 16, n);
  snapshot.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + kHeaderSize));
  PutLE32(out.data() + 8, crc32c::Mask(crc32c::Value(out.data() + 16, out.size() - 16)));
  return out;
}

Result<raftpb::Snapshot> DecodeSnapshotFile(std::string_view contents) {
  if (contents.size() < kHeaderSize) return Status::Corruption("snap: file too short");
  if (std::memcmp(contents.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("snap: bad magic");
  }
  if (GetLE32(contents.data() + 12) != kVersion) return Status::Corruption("snap: bad version");
  const uint64_t n = GetLE64(contents.data() + 16);
  if (n != contents.size() - kHeaderSize) return Status::Corruption("snap: length mismatch");
  const uint32_t crc = crc32c::Value(contents.data() + 16, contents.size() - 16);
  if (crc32c::Unmask(GetLE32(contents.data() + 8)) != crc) {
    return Status::Corruption("snap: crc mismatch");
  }
  raftpb::Snapshot snapshot;
  if (!snapshot.ParseFromArray(contents.data() + kHeaderSize, static_cast<int>(n))) {
    return Status::Corruption("snap: unparsable snapshot");
  }
  return snapshot;
}

Snapshotter::Snapshotter(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}

Status Snapshotter::SaveSnap(const raftpb::Snapshot& snapshot) {
  if (snapshot.metadata().index() == 0) return Status::OK();
  ETCDPP_RETURN_IF_ERROR(env_->CreateDir(dir_));
  const std::string name = SnapName(snapshot.metadata().term(), snapshot.metadata().index());
  return WriteFileAtomically(env_, JoinPath(dir_, name), EncodeSnapshotFile(snapshot));
}

Result<std::vector<std::string>> Snapshotter::SnapNames() {
  auto children = env_->GetChildren(dir_);
  if (!children.ok()) {
    if (children.status().code() == Code::kNotFound) return std::vector<std::string>{};
    return children.status();
  }
  std::vector<std::string> names;
  for (auto& name : *children) {
    if (ParseSnapName(name)) names.push_back(std::move(name));
  }
  // Fixed-width hex (term, then index): lexical order is numeric order.
  std::sort(names.rbegin(), names.rend());
  return names;
}

Result<raftpb::Snapshot> Snapshotter::Read(const std::string& name) {
  auto contents = env_->ReadFile(JoinPath(dir_, name));
  if (!contents.ok()) return contents.status();
  auto snapshot = DecodeSnapshotFile(*contents);
  if (!snapshot.ok()) return Status::Corruption(snapshot.status().message() + " in " + name);
  auto marker = ParseSnapName(name);
  if (snapshot->metadata().index() != marker->index ||
      snapshot->metadata().term() != marker->term) {
    return Status::Corruption("snap: " + name + " holds another snapshot");
  }
  return snapshot;
}

template <typename Pred>
Result<raftpb::Snapshot> Snapshotter::LoadNewest(Pred wanted) {
  auto names = SnapNames();
  if (!names.ok()) return names.status();
  for (const auto& name : *names) {
    if (!wanted(*ParseSnapName(name))) continue;
    auto snapshot = Read(name);
    if (snapshot.ok()) return snapshot;
    if (snapshot.status().code() != Code::kCorruption) return snapshot.status();
    // Set the damaged file aside, as etcd does, and fall back to an older one.
    spdlog::warn("snap: {}; renaming it {}{}", snapshot.status().message(), name, kBrokenSuffix);
    const std::string path = JoinPath(dir_, name);
    ETCDPP_RETURN_IF_ERROR(env_->RenameFile(path, path + kBrokenSuffix));
    ETCDPP_RETURN_IF_ERROR(env_->SyncDir(dir_));
  }
  return NoSnapshot();
}

Result<raftpb::Snapshot> Snapshotter::Load() {
  return LoadNewest([](const wal::SnapshotMarker&) { return true; });
}

Result<raftpb::Snapshot> Snapshotter::LoadNewestAvailable(
    const std::vector<wal::SnapshotMarker>& wal_markers) {
  return LoadNewest([&](const wal::SnapshotMarker& m) {
    return std::find(wal_markers.begin(), wal_markers.end(), m) != wal_markers.end();
  });
}

Status Snapshotter::Purge(size_t keep) {
  auto names = SnapNames();
  if (!names.ok()) return names.status();
  bool removed = false;
  for (size_t i = keep; i < names->size(); ++i) {
    ETCDPP_RETURN_IF_ERROR(env_->RemoveFile(JoinPath(dir_, (*names)[i])));
    removed = true;
  }
  auto children = env_->GetChildren(dir_);
  if (children.ok()) {
    for (const auto& name : *children) {
      if (EndsWith(name, kTmpSuffix)) {
        ETCDPP_RETURN_IF_ERROR(env_->RemoveFile(JoinPath(dir_, name)));
        removed = true;
      }
    }
  }
  return removed ? env_->SyncDir(dir_) : Status::OK();
}

}  // namespace etcdpp::snap
