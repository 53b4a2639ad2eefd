#include "wal/wal.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <functional>

namespace etcdpp::wal {
namespace {

constexpr char kLockName[] = "LOCK";
constexpr char kTmpSuffix[] = ".tmp";
// The unit a disk writes atomically: a torn write loses whole sectors.
constexpr uint64_t kSectorSize = 512;

Status FailedPrecondition(std::string msg) {
  return Status(Code::kFailedPrecondition, std::move(msg));
}

Status CorruptAt(const std::string& name, uint64_t offset, std::string_view reason) {
  return Status::Corruption("wal: corrupt record in " + name + " at offset " +
                            std::to_string(offset) + ": " + std::string(reason));
}

bool IsEmpty(const raftpb::HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Every segment in `dir`, ordered by sequence number.
Result<std::vector<SegmentId>> ListSegments(Env* env, const std::string& dir) {
  auto children = env->GetChildren(dir);
  if (!children.ok()) return children.status();
  std::vector<SegmentId> segments;
  for (const auto& name : *children) {
    if (auto id = ParseSegmentName(name)) segments.push_back(*id);
  }
  std::sort(segments.begin(), segments.end(),
            [](const SegmentId& a, const SegmentId& b) { return a.seq < b.seq; });
  return segments;
}

// The segments read from `from` on must have consecutive sequence numbers: a
// missing one loses entries. Gaps before `from` are harmless (a purge that a
// crash interrupted may have deleted some old segments but not others).
Status CheckContiguous(const std::vector<SegmentId>& segments, size_t from) {
  for (size_t i = from + 1; i < segments.size(); ++i) {
    if (segments[i].seq != segments[i - 1].seq + 1) {
      return Status::Corruption("wal: missing segment between " +
                                SegmentName(segments[i - 1].seq, segments[i - 1].index) + " and " +
                                SegmentName(segments[i].seq, segments[i].index));
    }
  }
  return Status::OK();
}

// The first segment of the gap-free run that ends with the last segment.
size_t ContiguousSuffixStart(const std::vector<SegmentId>& segments) {
  size_t from = segments.empty() ? 0 : segments.size() - 1;
  while (from > 0 && segments[from - 1].seq + 1 == segments[from].seq) --from;
  return from;
}

// Decoding stopped at `bad` in the last segment. Decides whether the bytes
// from there on are the remains of an interrupted, unsynced write (true: the
// caller truncates them) or damage to data that had been written completely
// (false: refuse to open). The rules, argued in docs/wal.md:
//   1. No valid record after `bad`: torn. The last write did not finish.
//   2. A valid record after `bad` whose durable offset exceeds `bad`: the
//      bytes at `bad` were fsynced before that record was written. Damage.
//   3. Otherwise the valid records came from the same unsynced write. The
//      write is torn only if a lost sector shows: one ending by the first
//      valid record whose bytes from `bad` on are all zero (never written).
//      Anything else, like a flipped bit, is damage.
bool IsTornTail(std::string_view data, uint64_t bad) {
  constexpr uint64_t kNone = UINT64_MAX;
  uint64_t first_valid = kNone;
  for (uint64_t q = bad + kFrameHeaderSize; q + kFrameHeaderSize <= data.size();) {
    std::string_view rest = data.substr(q);
    if (IsZeroHeader(rest)) {
      q += kFrameHeaderSize;
      continue;
    }
    auto record = DecodeRecord(rest);
    if (!record.ok()) {
      q += kFrameHeaderSize;
      continue;
    }
    if (record->durable_offset > bad) return false;  // Rule 2.
    if (first_valid == kNone) first_valid = q;
    q += record->frame_size;
  }
  if (first_valid == kNone) return true;  // Rule 1.
  for (uint64_t s = bad / kSectorSize * kSectorSize; s + kSectorSize <= first_valid;
       s += kSectorSize) {
    uint64_t from = std::max(s, bad);
    if (AllZero(data.substr(from, s + kSectorSize - from))) return true;  // Rule 3.
  }
  return false;
}

// Where decoding a segment ended.
struct SegmentEnd {
  uint64_t offset = 0;    // After the last valid record.
  uint32_t last_crc = 0;  // CRC of that record.
};

// Decodes segment `id` (contents `data`), checking its header and its chain
// to the previous segment (`prev_crc`, when known), and hands every later
// record to `visit` with its offset. In the last segment a torn tail ends the
// scan; anywhere else any undecodable byte is corruption.
Result<SegmentEnd> ScanSegment(const SegmentId& id, std::string_view data, bool is_last,
                               std::optional<uint32_t> prev_crc,
                               const std::function<Status(const Record&, uint64_t)>& visit) {
  const std::string name = SegmentName(id.seq, id.index);
  auto first = DecodeRecord(data);
  if (!first.ok()) return CorruptAt(name, 0, first.status().message());
  if (first->type != RecordType::kSegmentHeader) {
    return CorruptAt(name, 0, "first record is not a segment header");
  }
  auto header = ParseSegmentHeader(first->data);
  if (!header.ok()) return CorruptAt(name, 0, header.status().message());
  if (header->seq != id.seq) return CorruptAt(name, 0, "segment header names another sequence");
  if (prev_crc && header->prev_crc != *prev_crc) {
    return CorruptAt(name, 0, "crc chain broken: previous segment ends with another record");
  }
  SegmentEnd end{first->frame_size, first->crc};
  while (end.offset < data.size()) {
    auto record = DecodeRecord(data.substr(end.offset));
    if (!record.ok()) {
      if (is_last && IsTornTail(data, end.offset)) break;
      return CorruptAt(name, end.offset, record.status().message());
    }
    if (record->type == RecordType::kSegmentHeader) {
      return CorruptAt(name, end.offset, "segment header in the middle of a segment");
    }
    ETCDPP_RETURN_IF_ERROR(visit(*record, end.offset));
    end.offset += record->frame_size;
    end.last_crc = record->crc;
  }
  return end;
}

// Removes segment files a crash left before their rename: never visible as
// segments, so never acknowledged.
Status RemoveTmpFiles(Env* env, const std::string& dir) {
  auto children = env->GetChildren(dir);
  if (!children.ok()) return children.status();
  for (const auto& name : *children) {
    if (EndsWith(name, kTmpSuffix)) ETCDPP_RETURN_IF_ERROR(env->RemoveFile(JoinPath(dir, name)));
  }
  return Status::OK();
}

}  // namespace

std::string SegmentName(uint64_t seq, uint64_t index) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "-%016" PRIx64 ".wal", seq, index);
  return buf;
}

std::optional<SegmentId> ParseSegmentName(std::string_view name) {
  // Exactly 16 lowercase hex digits, '-', 16 more, ".wal".
  if (name.size() != 37 || name[16] != '-' || name.substr(33) != ".wal") return std::nullopt;
  auto hex = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return std::nullopt;
      }
      v = (v << 4) | static_cast<uint64_t>(d);
    }
    return v;
  };
  auto seq = hex(name.substr(0, 16));
  auto index = hex(name.substr(17, 16));
  if (!seq || !index) return std::nullopt;
  return SegmentId{*seq, *index};
}

Wal::Wal(Env* env, std::string dir, Options options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() { (void)Close(); }

bool Wal::Exists(Env* env, const std::string& dir) {
  auto children = env->GetChildren(dir);
  if (!children.ok()) return false;
  return std::any_of(children->begin(), children->end(),
                     [](const std::string& n) { return ParseSegmentName(n).has_value(); });
}

Result<std::unique_ptr<Wal>> Wal::Create(Env* env, const std::string& dir, std::string metadata,
                                         Options options) {
  if (Exists(env, dir)) return FailedPrecondition("wal: " + dir + " already holds a WAL");
  ETCDPP_RETURN_IF_ERROR(env->CreateDir(dir));
  ETCDPP_RETURN_IF_ERROR(env->SyncDir(DirName(dir)));
  std::unique_ptr<Wal> wal(new Wal(env, dir, options));
  auto lock = env->LockFile(JoinPath(dir, kLockName));
  if (!lock.ok()) return lock.status();
  wal->lock_ = std::move(lock).value();
  ETCDPP_RETURN_IF_ERROR(RemoveTmpFiles(env, dir));
  wal->metadata_ = std::move(metadata);
  ETCDPP_RETURN_IF_ERROR(wal->StartSegment(0, 0, 0));
  wal->state_ = State::kWritable;
  return wal;
}

Result<std::unique_ptr<Wal>> Wal::Open(Env* env, const std::string& dir, SnapshotMarker start,
                                       Options options) {
  std::unique_ptr<Wal> wal(new Wal(env, dir, options));
  auto lock = env->LockFile(JoinPath(dir, kLockName));
  if (!lock.ok()) return lock.status();
  wal->lock_ = std::move(lock).value();
  ETCDPP_RETURN_IF_ERROR(RemoveTmpFiles(env, dir));
  auto segments = ListSegments(env, dir);
  if (!segments.ok()) return segments.status();
  if (segments->empty()) return Status::NotFound("wal: no segment in " + dir);
  // The last segment cut at or before the start index holds (or precedes)
  // the start marker: markers are written after the entries they cover.
  size_t from = segments->size();
  while (from > 0 && (*segments)[from - 1].index > start.index) --from;
  if (from == 0) {
    return Status::NotFound("wal: no segment holds index " + std::to_string(start.index));
  }
  ETCDPP_RETURN_IF_ERROR(CheckContiguous(*segments, from - 1));
  wal->segments_ = std::move(segments).value();
  wal->read_from_ = from - 1;
  wal->start_ = start;
  return wal;
}

Result<ReadResult> Wal::ReadAll() {
  if (state_ != State::kNeedsRead) return FailedPrecondition("wal: ReadAll after Open only");
  ReadResult result;
  bool have_metadata = false;
  bool found_start = false;
  std::string current;  // Name of the segment being read, for messages.
  const SegmentId& first = segments_[read_from_];
  last_index_ = first.index > 0 ? first.index - 1 : 0;

  auto visit = [&](const Record& r, uint64_t offset) -> Status {
    switch (r.type) {
      case RecordType::kMetadata:
        if (have_metadata && r.data != result.metadata) {
          return CorruptAt(current, offset, "metadata conflicts with an earlier segment");
        }
        result.metadata.assign(r.data);
        have_metadata = true;
        break;
      case RecordType::kEntry: {
        raftpb::Entry e;
        if (!e.ParseFromArray(r.data.data(), static_cast<int>(r.data.size()))) {
          return CorruptAt(current, offset, "unparsable entry");
        }
        last_index_ = e.index();
        if (e.index() > start_.index) {
          // Raft's log rule: an entry at index i replaces i and everything after.
          uint64_t keep = e.index() - start_.index - 1;
          if (keep > result.entries.size()) {
            return CorruptAt(current, offset,
                             "entry " + std::to_string(e.index()) + " leaves a gap after " +
                                 std::to_string(start_.index + result.entries.size()));
          }
          result.entries.resize(keep);
          result.entries.push_back(std::move(e));
        }
        break;
      }
      case RecordType::kHardState:
        if (!result.hard_state.ParseFromArray(r.data.data(), static_cast<int>(r.data.size()))) {
          return CorruptAt(current, offset, "unparsable hard state");
        }
        break;
      case RecordType::kSnapshot: {
        auto marker = ParseSnapshotMarker(r.data);
        if (!marker.ok()) return CorruptAt(current, offset, marker.status().message());
        if (marker->index == start_.index) {
          if (marker->term != start_.term) {
            return Status::Corruption(
                "wal: snapshot marker at index " + std::to_string(start_.index) + " has term " +
                std::to_string(marker->term) + ", expected " + std::to_string(start_.term));
          }
          found_start = true;
        }
        last_index_ = std::max(last_index_, marker->index);
        break;
      }
      case RecordType::kSegmentHeader:
        break;  // ScanSegment handles these.
    }
    return Status::OK();
  };

  std::optional<uint32_t> prev_crc;
  SegmentEnd end;
  std::string data;
  for (size_t i = read_from_; i < segments_.size(); ++i) {
    const SegmentId& id = segments_[i];
    current = SegmentName(id.seq, id.index);
    auto contents = env_->ReadFile(JoinPath(dir_, current));
    if (!contents.ok()) return contents.status();
    data = std::move(contents).value();
    const bool is_last = i + 1 == segments_.size();
    auto scanned = ScanSegment(id, data, is_last, prev_crc, visit);
    if (!scanned.ok()) return scanned.status();
    end = *scanned;
    prev_crc = end.last_crc;
  }
  if (!have_metadata) return Status::Corruption("wal: no metadata record in " + dir_);
  if (!found_start) {
    return Status::NotFound("wal: no snapshot marker at index " + std::to_string(start_.index) +
                            " term " + std::to_string(start_.term));
  }

  // Make the last segment appendable: cut off a torn tail (re-zeroed so it
  // cannot be mistaken for records later), restore preallocation, and sync so
  // that everything read counts as durable from now on.
  const std::string path = JoinPath(dir_, current);
  if (!AllZero(std::string_view(data).substr(end.offset))) {
    spdlog::warn("wal: repairing torn tail of {}: truncating at offset {} ({} bytes dropped)",
                 current, end.offset, data.size() - end.offset);
    ETCDPP_RETURN_IF_ERROR(env_->Truncate(path, end.offset));
  }
  auto file = env_->OpenWritableFile(path, end.offset);
  if (!file.ok()) return file.status();
  file_ = std::move(file).value();
  ETCDPP_RETURN_IF_ERROR(file_->Preallocate(options_.segment_size));
  ETCDPP_RETURN_IF_ERROR(file_->Sync());
  offset_ = durable_offset_ = end.offset;
  last_crc_ = end.last_crc;
  metadata_ = result.metadata;
  hard_state_ = result.hard_state;
  state_ = State::kWritable;
  return result;
}

Result<std::vector<SnapshotMarker>> Wal::ValidSnapshotMarkers(Env* env, const std::string& dir) {
  auto segments = ListSegments(env, dir);
  if (!segments.ok()) return segments.status();
  std::vector<SnapshotMarker> markers;
  raftpb::HardState hard_state;
  std::string current;
  auto visit = [&](const Record& r, uint64_t offset) -> Status {
    if (r.type == RecordType::kSnapshot) {
      auto marker = ParseSnapshotMarker(r.data);
      if (!marker.ok()) return CorruptAt(current, offset, marker.status().message());
      markers.push_back(*marker);
    } else if (r.type == RecordType::kHardState) {
      if (!hard_state.ParseFromArray(r.data.data(), static_cast<int>(r.data.size()))) {
        return CorruptAt(current, offset, "unparsable hard state");
      }
    }
    return Status::OK();
  };
  std::optional<uint32_t> prev_crc;
  for (size_t i = ContiguousSuffixStart(*segments); i < segments->size(); ++i) {
    const SegmentId& id = (*segments)[i];
    current = SegmentName(id.seq, id.index);
    auto data = env->ReadFile(JoinPath(dir, current));
    if (!data.ok()) return data.status();
    auto end = ScanSegment(id, *data, i + 1 == segments->size(), prev_crc, visit);
    if (!end.ok()) return end.status();
    prev_crc = end->last_crc;
  }
  std::erase_if(markers, [&](const SnapshotMarker& m) { return m.index > hard_state.commit(); });
  return markers;
}

Status Wal::CheckWritable() const {
  if (!error_.ok()) return error_;
  if (state_ == State::kNeedsRead) return FailedPrecondition("wal: call ReadAll before writing");
  if (state_ == State::kClosed) return FailedPrecondition("wal: closed");
  return Status::OK();
}

Status Wal::Fail(Status s) {
  if (!s.ok() && error_.ok()) {
    spdlog::error("wal: write failed, the WAL refuses further writes: {}", s.ToString());
    error_ = s;
  }
  return s;
}

Status Wal::WriteBuffer(bool sync) {
  Status s = file_->Append(buffer_);
  if (!s.ok()) return Fail(s);
  offset_ += buffer_.size();
  if (sync) {
    s = TimedSync();
    if (!s.ok()) return Fail(s);
    durable_offset_ = offset_;
  }
  return Status::OK();
}

Status Wal::Save(const raftpb::HardState& hard_state, std::span<const raftpb::Entry> entries,
                 bool sync) {
  ETCDPP_RETURN_IF_ERROR(CheckWritable());
  const bool empty_state = IsEmpty(hard_state);
  if (empty_state && entries.empty()) return Status::OK();
  buffer_.clear();
  for (const auto& e : entries) {
    if (e.ByteSizeLong() > kMaxBodySize - kBodyPrefixSize) {
      return Status::InvalidArgument("wal: entry " + std::to_string(e.index()) + " too large");
    }
    last_crc_ = AppendProtoRecord(&buffer_, RecordType::kEntry, durable_offset_, e);
  }
  if (!empty_state) {
    last_crc_ = AppendProtoRecord(&buffer_, RecordType::kHardState, durable_offset_, hard_state);
  }
  ETCDPP_RETURN_IF_ERROR(WriteBuffer(sync));
  if (!entries.empty()) last_index_ = entries.back().index();
  if (!empty_state) hard_state_ = hard_state;
  return MaybeCut();
}

Status Wal::SaveSnapshot(const SnapshotMarker& marker) {
  ETCDPP_RETURN_IF_ERROR(CheckWritable());
  buffer_.clear();
  last_crc_ =
      AppendRecord(&buffer_, RecordType::kSnapshot, durable_offset_, EncodeSnapshotMarker(marker));
  ETCDPP_RETURN_IF_ERROR(WriteBuffer(/*sync=*/true));
  last_index_ = std::max(last_index_, marker.index);
  return MaybeCut();
}

Status Wal::Sync() {
  ETCDPP_RETURN_IF_ERROR(CheckWritable());
  if (durable_offset_ == offset_) return Status::OK();
  Status s = TimedSync();
  if (!s.ok()) return Fail(s);
  durable_offset_ = offset_;
  return Status::OK();
}

Status Wal::TimedSync() {
  if (!options_.on_sync) return file_->Sync();
  const auto start = std::chrono::steady_clock::now();
  Status s = file_->Sync();
  if (s.ok()) options_.on_sync(std::chrono::steady_clock::now() - start);
  return s;
}

Status Wal::MaybeCut() {
  if (offset_ < options_.segment_size) return Status::OK();
  return Cut();
}

Status Wal::Cut() {
  // Finish the full segment first, durably: drop its preallocated tail so it
  // ends exactly at its last record (what recovery requires of every segment
  // but the last), and sync before the next segment can exist.
  Status s = file_->Truncate(offset_);
  if (s.ok()) s = file_->Sync();
  if (s.ok()) s = file_->Close();
  if (!s.ok()) return Fail(s);
  const SegmentId& last = segments_.back();
  return StartSegment(last.seq + 1, last_index_ + 1, last_crc_);
}

Status Wal::StartSegment(uint64_t seq, uint64_t index, uint32_t prev_crc) {
  const std::string name = SegmentName(seq, index);
  const std::string path = JoinPath(dir_, name);
  const std::string tmp = path + kTmpSuffix;
  buffer_.clear();
  uint32_t crc = AppendRecord(&buffer_, RecordType::kSegmentHeader, 0,
                              EncodeSegmentHeader({kFormatVersion, seq, prev_crc}));
  crc = AppendRecord(&buffer_, RecordType::kMetadata, 0, metadata_);
  if (!IsEmpty(hard_state_)) {
    crc = AppendProtoRecord(&buffer_, RecordType::kHardState, 0, hard_state_);
  }
  if (seq == 0) {
    // The empty snapshot every log starts from, so Open({0, 0}) finds its marker.
    crc = AppendRecord(&buffer_, RecordType::kSnapshot, 0, EncodeSnapshotMarker({}));
  }
  auto file = env_->NewWritableFile(tmp);
  if (!file.ok()) return Fail(file.status());
  Status s = (*file)->Preallocate(options_.segment_size);
  if (s.ok()) s = (*file)->Append(buffer_);
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = env_->RenameFile(tmp, path);
  if (s.ok()) s = env_->SyncDir(dir_);
  if (!s.ok()) return Fail(s);
  file_ = std::move(file).value();
  offset_ = durable_offset_ = buffer_.size();
  last_crc_ = crc;
  segments_.push_back({seq, index});
  return Status::OK();
}

Status Wal::ReleaseTo(uint64_t index) {
  if (state_ == State::kClosed) return FailedPrecondition("wal: closed");
  size_t keep = segments_.size();
  while (keep > 0 && segments_[keep - 1].index > index) --keep;
  if (keep <= 1) return Status::OK();
  --keep;  // segments_[keep] is the last segment cut at or before `index`.
  for (size_t i = 0; i < keep; ++i) {
    Status s = env_->RemoveFile(JoinPath(dir_, SegmentName(segments_[i].seq, segments_[i].index)));
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(keep));
  read_from_ = read_from_ > keep ? read_from_ - keep : 0;
  return env_->SyncDir(dir_);
}

Status Wal::Close() {
  if (state_ == State::kClosed) return Status::OK();
  Status s;
  if (state_ == State::kWritable && error_.ok()) s = Sync();
  if (file_) {
    Status closed = file_->Close();
    if (s.ok()) s = closed;
    file_.reset();
  }
  lock_.reset();
  state_ = State::kClosed;
  return s;
}

std::vector<std::string> Wal::SegmentNames() const {
  std::vector<std::string> names;
  for (const auto& id : segments_) names.push_back(SegmentName(id.seq, id.index));
  return names;
}

}  // namespace etcdpp::wal
