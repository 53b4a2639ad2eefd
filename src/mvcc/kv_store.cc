#include "mvcc/kv_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/crc32c.h"
#include "base/env.h"
#include "mvcc/escaped_key_codec.h"
#include "mvcc/key_codec.h"
#include "mvcc/key_record.h"
#include "mvcc/key_space_hash.h"

#if defined(__SANITIZE_THREAD__)
#define ETCDPP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ETCDPP_TSAN 1
#endif
#endif
#if defined(ETCDPP_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace etcdpp::mvcc {
namespace {

// LMDB's map is shared memory that liblmdb hands between the writer and the
// readers: a reader sees the pages of the commit whose meta page it found
// when its transaction began (or was renewed), and a writer reuses a page
// only once no reader slot can still reach it. liblmdb orders both with
// plain loads, stores and barriers that ThreadSanitizer does not see, so
// our own in-place accesses to the map (MDB_RESERVE writes, reads of
// records through their MDB_val) look unordered to it. Under TSan these
// hooks restate liblmdb's two orderings as release/acquire pairs on the
// store's two addresses; elsewhere they compile to nothing:
//  * PublishingCommit, just before mdb_txn_commit: every page this write
//    transaction filled happens before any read transaction that begins
//    afterwards (ReadSnapshotBegun after mdb_txn_begin/renew).
//  * ReadSnapshotEnding, just before mdb_txn_reset/abort of a read txn:
//    every access of that reader happens before a writer reuses a page
//    (ReaderSlotsObserved before the writer fills a reserved value).
// A release placed before the call that actually publishes can only hide a
// race, never report a false one, which is the safe side for a sanitizer.
#if defined(ETCDPP_TSAN)
void TsanRelease(const void* addr) { __tsan_release(const_cast<void*>(addr)); }
void TsanAcquire(const void* addr) { __tsan_acquire(const_cast<void*>(addr)); }
#else
void TsanRelease(const void*) {}
void TsanAcquire(const void*) {}
#endif

// The sync addresses: the store for commits, its reader pool for readers.
void PublishingCommit(const void* store) { TsanRelease(store); }
void ReadSnapshotBegun(const void* store) { TsanAcquire(store); }
void ReadSnapshotEnding(const void* reader_pool) { TsanRelease(reader_pool); }
void ReaderSlotsObserved(const void* reader_pool) { TsanAcquire(reader_pool); }

constexpr std::string_view kKeyTable = "key";
constexpr std::string_view kRevTable = "rev";
constexpr std::string_view kMetaTable = "meta";
// One entry per key live at the store's revision: slot(k) -> empty. Counts
// at the current revision walk it instead of `key` (docs/mvcc.md, "Counting
// past the limit").
constexpr std::string_view kLiveTable = "live";

// meta names owned by mvcc.
constexpr std::string_view kMetaRevision = "mvcc/revision";  // current || compacted
constexpr std::string_view kMetaConsistentIndex = "mvcc/consistent_index";
constexpr std::string_view kMetaScheduledCompact = "mvcc/scheduled_compact";
constexpr std::string_view kMetaFinishedCompact = "mvcc/finished_compact";
// The first sub revision of main revision finished_compact + 1 not yet done
// (absent: 0). Older etcdpp ignores it and redoes that revision's keys,
// which removes nothing twice.
constexpr std::string_view kMetaFinishedCompactSub = "mvcc/finished_compact_sub";
// Absent: layout 1 (inline keys only, up to 493 escaped bytes); "2": long
// keys in buckets (escaped_key_codec.h); "3": layout 2 plus the `live`
// table; "4": values in `rev`, `key` records of the header alone
// (key_record.h); "5": layout 4 with zero runs coded in slots (key_codec.h).
// Open() converts 1 to 4 to 5.
constexpr std::string_view kMetaKeyLayout = "mvcc/key_layout";
// A DeleteRange committed in parts and not finished (WriteTxn::CommitPart):
// PartialDelete below. Absent when no delete is under way. etcdpp before it
// ignores it and would apply the delete's request again from its first key.
constexpr std::string_view kMetaPartialDelete = "mvcc/partial_delete";
constexpr std::string_view kKeyLayoutCurrent = "5";
// Holds re-keyed `key` records during the upgrade to layout 5; never
// outlives the upgrade's transaction.
constexpr const char* kReKeyTable = "mvcc/rekey";
constexpr std::string_view kReservedMetaPrefix = "mvcc/";

// etcd's empty store is at revision 1, so its first write is revision 2;
// clients that compare revisions with etcd's rely on it. The compact
// revision of a never compacted store is 0, so revision 1 may be compacted.
constexpr int64_t kEmptyStoreRevision = 1;

// The `key` table key that sorts first among the records of a user key at
// or below main revision `at`: ~at || 0x00 * 8 (0x00 is ~max sub).
void AppendSeekSuffix(int64_t at, std::string* out) {
  char buf[kRevisionBytes];
  PutBigEndian64(~static_cast<uint64_t>(at), buf);
  std::memset(buf + 8, 0, 8);
  out->append(buf, kRevisionBytes);
}

// Sorts after every record of a user key: ~(0, 0) is all 0xFF and revision
// (0, 0) is never written.
void AppendPastKeySuffix(std::string* out) { out->append(kRevisionBytes, '\xff'); }

std::string EncodeUint64(uint64_t v) {
  std::string s(8, '\0');
  PutBigEndian64(v, s.data());
  return s;
}

Status Corrupt(std::string_view what) { return Status::Corruption(std::string(what)); }

// How far a DeleteRange committed in parts has got: its scope's main
// revision, the next sub revision, the keys deleted so far, the request's
// range, and the key its scan resumes from. Encoded as main || sub ||
// deleted || |key| || key || |end| || end || next_key, each integer 8 bytes
// big-endian.
struct PartialDelete {
  int64_t main = 0;
  int64_t sub = 0;
  int64_t deleted = 0;
  std::string key;
  std::string end;
  std::string next_key;
};

std::string EncodePartialDelete(const PartialDelete& p) {
  std::string out;
  out.reserve(40 + p.key.size() + p.end.size() + p.next_key.size());
  char buf[8];
  for (int64_t v : {p.main, p.sub, p.deleted}) {
    PutBigEndian64(static_cast<uint64_t>(v), buf);
    out.append(buf, 8);
  }
  for (const std::string* part : {&p.key, &p.end}) {
    PutBigEndian64(part->size(), buf);
    out.append(buf, 8);
    out.append(*part);
  }
  out.append(p.next_key);
  return out;
}

Result<PartialDelete> DecodePartialDelete(std::string_view in) {
  PartialDelete p;
  if (in.size() < 40) return Corrupt("partial delete marker");
  p.main = static_cast<int64_t>(GetBigEndian64(in.data()));
  p.sub = static_cast<int64_t>(GetBigEndian64(in.data() + 8));
  p.deleted = static_cast<int64_t>(GetBigEndian64(in.data() + 16));
  in.remove_prefix(24);
  for (std::string* part : {&p.key, &p.end}) {
    if (in.size() < 8) return Corrupt("partial delete marker");
    const uint64_t n = GetBigEndian64(in.data());
    in.remove_prefix(8);
    if (in.size() < n) return Corrupt("partial delete marker");
    part->assign(in.substr(0, n));
    in.remove_prefix(n);
  }
  p.next_key.assign(in);
  return p;
}

// The marker of an unfinished delete, which must exist.
Result<PartialDelete> ReadPartialDelete(const Table& meta) {
  auto value = meta.Get(kMetaPartialDelete);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return Corrupt("partial delete marker missing");
  return DecodePartialDelete(**value);
}

// True iff `k` is a key table key under `slot`.
bool SameSlot(std::string_view k, std::string_view slot) {
  return k.size() == slot.size() + kRevisionBytes &&
         std::memcmp(k.data(), slot.data(), slot.size()) == 0;
}

// The `rev` record of revision `rev`, found with `rev_cursor` (a cursor on
// `rev`). Absent is corruption: every `key` record has one, and compaction
// removes both.
Status GetRevRecord(Cursor& rev_cursor, Revision rev, std::string_view* out) {
  char rk[kRevisionBytes];
  EncodeRevision(rev, rk);
  if (!rev_cursor.SeekExact(std::string_view(rk, kRevisionBytes))) {
    return rev_cursor.status().ok() ? Corrupt("key record without rev record")
                                    : rev_cursor.status();
  }
  *out = rev_cursor.value();
  return Status::OK();
}

// Decodes one `key` table entry. The value is in the entry's `rev` record,
// read only `with_value` (and not for a tombstone); a long slot's user key
// is there too, so under a long slot the record is always read. The user
// key of an inline slot with an escaped 0x00 is decoded into *scratch (so
// `out` is valid until the next call with it); every other view points into
// the tables.
Status DecodeEntry(Cursor& rev_cursor, std::string_view table_key, std::string_view record,
                   bool with_value, std::string* scratch, KeyEntry* out) {
  std::string_view rest;
  if (!SplitKeyTableKey(table_key, &out->slot, &out->rev) ||
      !DecodeKeyRecord(record, &out->header, &rest) || !rest.empty()) {
    return Corrupt("key record");
  }
  out->value = {};
  const bool long_slot = IsLongSlot(out->slot);
  if (long_slot || (with_value && !out->header.tombstone())) {
    std::string_view rev_record;
    ETCDPP_RETURN_IF_ERROR(GetRevRecord(rev_cursor, out->rev, &rev_record));
    KeyRecordHeader rev_header;
    std::string_view user_key, value;
    if (!DecodeRevRecord(rev_record, &rev_header, &user_key, &value) ||
        rev_header.flags != out->header.flags) {
      return Corrupt("rev record");
    }
    if (with_value) out->value = value;
    if (long_slot) {
      if (out->slot.size() != kLongSlotBytes) return Corrupt("long slot");
      out->user_key = user_key;
      return Status::OK();
    }
  }
  if (PlainUserKey(out->slot, &out->user_key)) return Status::OK();
  if (!DecodeUserKey(out->slot, scratch)) return Corrupt("key table key");
  out->user_key = *scratch;
  return Status::OK();
}

void FillKeyValue(const KeyEntry& e, bool keys_only, mvccpb::KeyValue* kv) {
  kv->set_key(e.user_key.data(), e.user_key.size());
  kv->set_create_revision(e.header.create_revision);
  kv->set_mod_revision(e.rev.main);
  kv->set_version(e.header.version);
  kv->set_lease(e.header.lease);
  if (!keys_only) kv->set_value(e.value.data(), e.value.size());
}

KeyValueView ViewOf(const KeyEntry& e) {
  KeyValueView view;
  view.key = e.user_key;
  view.value = e.value;
  view.create_revision = e.header.create_revision;
  view.mod_revision = e.rev.main;
  view.version = e.header.version;
  view.lease = e.header.lease;
  return view;
}

class LogIterator final : public ChangeIterator {
 public:
  LogIterator(MDB_txn* txn, MDB_dbi rev_dbi, MDB_dbi key_dbi, int64_t from, int64_t to,
              int64_t compact_rev, bool with_prev_kv, std::optional<KeyRange> filter)
      : rev_cursor_(txn, rev_dbi),
        rev_lookup_(txn, rev_dbi),
        key_cursor_(txn, key_dbi),
        to_(to),
        compact_rev_(compact_rev),
        with_prev_kv_(with_prev_kv),
        filter_(std::move(filter)) {
    char start[kRevisionBytes];
    EncodeRevision(Revision{from, 0}, start);
    rev_cursor_.Seek(std::string_view(start, kRevisionBytes));
    Load();
  }

  bool Valid() const override { return valid_; }
  const mvccpb::Event& event() const override { return event_; }
  Revision revision() const override { return rev_; }
  void Next() override {
    rev_cursor_.Next();
    Load();
  }
  const Status& status() const override { return status_; }

 private:
  void Load() {
    valid_ = false;
    for (;; rev_cursor_.Next()) {
      if (!rev_cursor_.Valid()) {
        status_ = rev_cursor_.status();
        return;
      }
      std::string_view k = rev_cursor_.key();
      KeyRecordHeader header;
      std::string_view user_key, value;
      if (k.size() != kRevisionBytes ||
          !DecodeRevRecord(rev_cursor_.value(), &header, &user_key, &value)) {
        status_ = Corrupt("rev table entry");
        return;
      }
      rev_ = DecodeRevision(k.data());
      if (rev_.main > to_) return;
      if (filter_ && !filter_->Contains(user_key)) continue;
      // At or below the compact revision only what compaction keeps is
      // part of history (a key's latest record there, if not a tombstone),
      // however far the physical removal has got.
      const bool compacted = rev_.main <= compact_rev_;
      if (compacted && header.tombstone()) continue;
      if (!LoadEvent(user_key, header, value, compacted)) {
        if (!status_.ok()) return;
        continue;  // Superseded at or below the compact revision.
      }
      valid_ = true;
      return;
    }
  }

  // Builds event_ for the rev record at rev_. Returns false if the record is
  // not part of compacted history or on error (status_ set). The record has
  // the event; the key's `key` records are read only to tell whether it is
  // still history (compacted) and for its previous state (prev_kv).
  bool LoadEvent(std::string_view user_key, const KeyRecordHeader& header, std::string_view value,
                 bool compacted) {
    event_.Clear();
    event_.set_type(header.tombstone() ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    mvccpb::KeyValue* kv = event_.mutable_kv();
    kv->set_key(user_key.data(), user_key.size());
    kv->set_mod_revision(rev_.main);
    if (!header.tombstone()) {
      kv->set_create_revision(header.create_revision);
      kv->set_version(header.version);
      kv->set_lease(header.lease);
      kv->set_value(value.data(), value.size());
    }
    const bool with_prev_kv = with_prev_kv_ && !compacted;  // prev is history only above it
    if (!compacted && !with_prev_kv) return true;

    table_key_.clear();
    AppendKeySlot(user_key, &table_key_);
    const size_t prefix_len = table_key_.size();
    AppendInvertedRevision(rev_, &table_key_);
    const std::string_view prefix = std::string_view(table_key_).substr(0, prefix_len);
    if (!key_cursor_.Seek(table_key_) || key_cursor_.key() != table_key_) {
      status_ = key_cursor_.status().ok() ? Corrupt("rev entry without key record")
                                          : key_cursor_.status();
      return false;
    }
    if (compacted) {
      // Kept only if no newer record of the key is also <= compact_rev_.
      if (key_cursor_.Prev() && SameSlot(key_cursor_.key(), prefix) &&
          DecodeInvertedRevision(key_cursor_.key().data() + prefix_len).main <= compact_rev_) {
        return false;
      }
      status_ = key_cursor_.status();
      return status_.ok();
    }
    if (key_cursor_.Next() && SameSlot(key_cursor_.key(), prefix)) {
      KeyEntry e;
      status_ = DecodeEntry(rev_lookup_, key_cursor_.key(), key_cursor_.value(),
                            /*with_value=*/true, &scratch_, &e);
      if (!status_.ok()) return false;
      if (!e.header.tombstone()) FillKeyValue(e, false, event_.mutable_prev_kv());
    }
    status_ = key_cursor_.status();
    return status_.ok();
  }

  Cursor rev_cursor_;  // the change log's walk
  Cursor rev_lookup_;  // previous states' values
  Cursor key_cursor_;
  int64_t to_;
  int64_t compact_rev_;
  bool with_prev_kv_;
  std::optional<KeyRange> filter_;
  bool valid_ = false;
  Revision rev_;
  mvccpb::Event event_;
  std::string table_key_;
  std::string scratch_;
  Status status_;
};

}  // namespace

void KeyValueView::CopyTo(mvccpb::KeyValue* kv) const {
  kv->set_key(key.data(), key.size());
  kv->set_value(value.data(), value.size());
  kv->set_create_revision(create_revision);
  kv->set_mod_revision(mod_revision);
  kv->set_version(version);
  kv->set_lease(lease);
}

// ---------------------------------------------------------------------------
// ReadView

ReadView::ReadView(const KvStore* store, MDB_txn* txn)
    : store_(store), txn_(txn), dbis_(store->dbis_) {}

ReadView::~ReadView() = default;

Status ReadView::LoadState() {
  Table meta(txn_, dbis_.meta);
  auto v = meta.Get(kMetaRevision);
  if (!v.ok()) return v.status();
  if (!v->has_value()) {
    rev_ = kEmptyStoreRevision;
    compact_rev_ = 0;
    return Status::OK();
  }
  std::string_view s = **v;
  if (s.size() != 16) return Corrupt("meta revision");
  rev_ = static_cast<int64_t>(GetBigEndian64(s.data()));
  compact_rev_ = static_cast<int64_t>(GetBigEndian64(s.data() + 8));
  // Older code recorded revision 0 when a store committed (e.g. only its
  // consistent index) before its first write: that is still the empty store.
  if (rev_ < kEmptyStoreRevision) rev_ = kEmptyStoreRevision;
  return Status::OK();
}

uint64_t ReadView::ConsistentIndex() const {
  auto v = Table(txn_, dbis_.meta).Get(kMetaConsistentIndex);
  if (!v.ok() || !v->has_value() || (*v)->size() != 8) return 0;
  return GetBigEndian64((*v)->data());
}

Result<std::optional<std::string>> ReadView::GetMeta(std::string_view name) const {
  auto v = Table(txn_, dbis_.meta).Get(name);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(**v));
}

Result<int64_t> ReadView::ResolveRev(int64_t rev) const {
  if (rev > rev_) return Status(Code::kFutureRev);
  if (rev <= 0) return rev_;
  if (rev < compact_rev_) return Status(Code::kCompacted);
  return rev;
}

Status ReadView::ScanAt(std::string_view key, std::string_view end, int64_t at, bool with_values,
                        const std::function<bool(const KeyEntry&)>& visit) const {
  Cursor c = KeyCursor();
  Cursor rev = RevCursor();
  std::string seek;
  std::string scratch;
  KeyEntry entry;
  if (end.empty()) {
    // One key: its slot's first record at or below `at`.
    AppendKeySlot(key, &seek);
    const size_t slot_len = seek.size();
    AppendSeekSuffix(at, &seek);
    if (!c.Seek(seek)) return c.status();
    if (!SameSlot(c.key(), std::string_view(seek).substr(0, slot_len))) return Status::OK();
    ETCDPP_RETURN_IF_ERROR(DecodeEntry(rev, c.key(), c.value(), with_values, &scratch, &entry));
    // Another key with the same hash: Put refused `key`, so it is absent.
    if (entry.user_key != key) return Status::OK();
    if (!entry.header.tombstone()) visit(entry);
    return Status::OK();
  }
  const bool unbounded = (end == std::string_view("\0", 1));
  if (!unbounded && end <= key) return Status::OK();
  std::string end_position;
  if (!unbounded) AppendKeyPosition(end, &end_position);

  if (IsInlineKey(key)) {
    AppendKeySlot(key, &seek);
    AppendSeekSuffix(at, &seek);
  } else {
    AppendKeyPosition(key, &seek);  // The start of its bucket.
  }
  bool ok = c.Seek(seek);
  while (ok) {
    std::string_view k = c.key();
    if (k.size() < kMinSlotBytes + kRevisionBytes) return Corrupt("key table key");
    const size_t slot_len = k.size() - kRevisionBytes;
    std::string_view slot = k.substr(0, slot_len);
    if (IsLongSlot(slot)) {
      // Buckets sort like their keys against everything outside them, so
      // only the bucket of `end` itself needs a per-key bound.
      std::string_view bucket = BucketOf(slot);
      if (!unbounded && bucket > std::string_view(end_position)) break;
      bool stopped = false;
      ETCDPP_RETURN_IF_ERROR(
          ScanBucket(c, bucket, at, key, end, with_values, visit, &ok, &stopped));
      if (stopped) return Status::OK();
      continue;
    }
    if (!unbounded && k >= std::string_view(end_position)) break;
    const int64_t main = static_cast<int64_t>(~GetBigEndian64(k.data() + slot_len));
    if (main > at) {
      // Newer than the read revision: jump to this key's state at `at` (or
      // to the next user key if it did not exist then).
      seek.assign(slot);
      AppendSeekSuffix(at, &seek);
      ok = c.Seek(seek);
      continue;
    }
    ETCDPP_RETURN_IF_ERROR(DecodeEntry(rev, k, c.value(), with_values, &scratch, &entry));
    if (!entry.header.tombstone() && !visit(entry)) return Status::OK();
    // Skip the older records of this user key: usually there are none (the
    // key was written once or history is compacted), so try Next first.
    ok = c.Next();
    if (ok && SameSlot(c.key(), slot)) {
      seek.assign(slot);
      AppendPastKeySuffix(&seek);
      ok = c.Seek(seek);
    }
  }
  return c.status();
}

Status ReadView::ScanBucket(Cursor& c, std::string_view bucket, int64_t at, std::string_view key,
                            std::string_view end, bool with_values,
                            const std::function<bool(const KeyEntry&)>& visit, bool* ok,
                            bool* stopped) const {
  // The table orders a bucket's keys by hash: collect each key's state at
  // `at`, then visit them in key order. The views stay valid: nothing writes
  // during a scan.
  const std::string bucket_copy(bucket);  // `bucket` points at the cursor's key.
  std::vector<KeyEntry> live;
  std::string_view slot;
  bool slot_done = false;
  std::string unused;
  Cursor rev = RevCursor();
  const bool unbounded = (end == std::string_view("\0", 1));
  for (; *ok && c.key().starts_with(bucket_copy); *ok = c.Next()) {
    std::string_view k = c.key();
    if (k.size() != bucket_copy.size() + kKeyHashBytes + kRevisionBytes) {
      return Corrupt("key table key in a long key bucket");
    }
    std::string_view this_slot = k.substr(0, k.size() - kRevisionBytes);
    if (this_slot != slot) {
      slot = this_slot;
      slot_done = false;
    }
    if (slot_done) continue;
    const int64_t main = static_cast<int64_t>(~GetBigEndian64(k.data() + slot.size()));
    if (main > at) continue;
    slot_done = true;  // Newest first: this is the key's state at `at`.
    if (c.value().empty()) return Corrupt("key record");
    if (static_cast<uint8_t>(c.value()[0]) & kTombstoneFlag) continue;
    KeyEntry e;
    ETCDPP_RETURN_IF_ERROR(DecodeEntry(rev, k, c.value(), with_values, &unused, &e));
    if (e.user_key >= key && (unbounded || e.user_key < end)) {
      live.push_back(e);
    }
  }
  if (!c.status().ok()) return c.status();
  std::sort(live.begin(), live.end(),
            [](const KeyEntry& a, const KeyEntry& b) { return a.user_key < b.user_key; });
  for (const KeyEntry& e : live) {
    if (!visit(e)) {
      *stopped = true;
      break;
    }
  }
  return Status::OK();
}

Result<RangeResult> ReadView::Range(std::string_view key, std::string_view end,
                                    const RangeOptions& options) const {
  auto at = ResolveRev(options.rev);
  if (!at.ok()) return at.status();
  RangeResult result;
  result.rev = rev_;
  const bool single_key = end.empty();
  if (options.count_only && !single_key) {
    auto count = Count(key, end, *at);
    if (!count.ok()) return count.status();
    result.count = *count;
    return result;
  }
  // The reply's count covers the whole range whatever the limit (etcd's
  // RangeResponse.count, which clients page with). The keys past the limit
  // are only counted: the scan stops at the limit-th key and Count goes on
  // from the byte string right after it.
  const int64_t limit =
      options.limit > 0 && !single_key ? options.limit : std::numeric_limits<int64_t>::max();
  std::string resume_at;
  const bool with_values = !options.keys_only && !options.count_only;
  Status s = ScanAt(key, end, *at, with_values, [&](const KeyEntry& e) {
    ++result.count;
    if (!options.count_only) FillKeyValue(e, options.keys_only, result.kvs.Add());
    if (result.count < limit) return true;
    resume_at.assign(e.user_key);
    resume_at.push_back('\0');  // The smallest key after e's.
    return false;
  });
  if (!s.ok()) return s;
  if (!resume_at.empty()) {
    auto rest = Count(resume_at, end, *at);
    if (!rest.ok()) return rest.status();
    result.count += *rest;
  }
  return result;
}

Result<int64_t> ReadView::CountAt(std::string_view key, std::string_view end, int64_t at) const {
  // The walk is ScanAt's (same seeks, same bounds) with the decoding left out.
  const bool unbounded = (end == std::string_view("\0", 1));
  if (!unbounded && end <= key) return int64_t{0};
  std::string end_position;
  if (!unbounded) AppendKeyPosition(end, &end_position);
  Cursor c = KeyCursor();
  std::string seek;
  if (IsInlineKey(key)) {
    AppendKeySlot(key, &seek);
    AppendSeekSuffix(at, &seek);
  } else {
    AppendKeyPosition(key, &seek);
  }
  int64_t live = 0;
  bool ok = c.Seek(seek);
  while (ok) {
    std::string_view k = c.key();
    if (k.size() < kMinSlotBytes + kRevisionBytes) return Corrupt("key table key");
    const size_t slot_len = k.size() - kRevisionBytes;
    std::string_view slot = k.substr(0, slot_len);
    if (IsLongSlot(slot)) {
      // Long keys need their user key to be compared with the bounds; they
      // are rare enough to decode.
      std::string_view bucket = BucketOf(slot);
      if (!unbounded && bucket > std::string_view(end_position)) break;
      bool stopped = false;
      ETCDPP_RETURN_IF_ERROR(ScanBucket(
          c, bucket, at, key, end, /*with_values=*/false,
          [&live](const KeyEntry&) {
            ++live;
            return true;
          },
          &ok, &stopped));
      continue;
    }
    if (!unbounded && k >= std::string_view(end_position)) break;
    const int64_t main = static_cast<int64_t>(~GetBigEndian64(k.data() + slot_len));
    if (main > at) {
      seek.assign(slot);
      AppendSeekSuffix(at, &seek);
      ok = c.Seek(seek);
      continue;
    }
    std::string_view record = c.value();
    if (record.size() < kKeyRecordHeaderBytes) return Corrupt("key record");
    if ((static_cast<uint8_t>(record[0]) & kTombstoneFlag) == 0) ++live;
    ok = c.Next();
    if (ok && SameSlot(c.key(), slot)) {
      seek.assign(slot);
      AppendPastKeySuffix(&seek);
      ok = c.Seek(seek);
    }
  }
  if (!c.status().ok()) return c.status();
  return live;
}

Result<int64_t> ReadView::CountLive(std::string_view key, std::string_view end) const {
  // `live` holds the slots of `key` without their revisions, in the same
  // order, so the bounds are CountAt's.
  const bool unbounded = (end == std::string_view("\0", 1));
  if (!unbounded && end <= key) return int64_t{0};
  std::string start_position, end_position;
  AppendKeyPosition(key, &start_position);
  if (!unbounded) AppendKeyPosition(end, &end_position);
  Cursor c(txn_, dbis_.live);
  int64_t live = 0;
  bool ok = c.Seek(start_position);
  for (; ok; ok = c.Next()) {
    std::string_view slot = c.key();
    if (slot.size() < kMinSlotBytes) return Corrupt("live table key");
    if (!IsLongSlot(slot)) {
      if (!unbounded && slot >= std::string_view(end_position)) break;
      ++live;
      continue;
    }
    // A bucket other than those of the bounds is wholly inside or outside
    // the range; in a bound's bucket the key itself decides.
    std::string_view bucket = BucketOf(slot);
    if (!unbounded && bucket > std::string_view(end_position)) break;
    if (bucket == start_position || (!unbounded && bucket == end_position)) {
      auto user_key = LatestLongKey(slot);
      if (!user_key.ok()) return user_key.status();
      if (*user_key < key || (!unbounded && *user_key >= end)) continue;
    }
    ++live;
  }
  if (!c.status().ok()) return c.status();
  return live;
}

Result<std::string> ReadView::LatestLongKey(std::string_view slot) const {
  // `slot` may point into the caller's cursor's page: pages stay mapped and
  // unchanged while nothing writes, and this only reads.
  Cursor c(txn_, dbis_.key);
  if (!c.Seek(slot) || !SameSlot(c.key(), slot)) {
    if (!c.status().ok()) return c.status();
    return Corrupt("live table key without a key record");
  }
  KeyEntry e;
  std::string unused;
  Cursor rev = RevCursor();
  ETCDPP_RETURN_IF_ERROR(DecodeEntry(rev, c.key(), c.value(), /*with_value=*/false, &unused, &e));
  if (e.header.tombstone()) return Corrupt("key record of a live key");
  return std::string(e.user_key);
}

Status ReadView::Scan(std::string_view key, std::string_view end, int64_t rev,
                      const std::function<bool(const KeyValueView&)>& visit) const {
  auto at = ResolveRev(rev);
  if (!at.ok()) return at.status();
  return ScanAt(key, end, *at, /*with_values=*/true,
                [&](const KeyEntry& e) { return visit(ViewOf(e)); });
}

bool KeyRange::Contains(std::string_view k) const {
  if (end.empty()) return k == key;
  if (end == std::string_view("\0", 1)) return k >= key;
  return k >= key && k < end;
}

Result<std::unique_ptr<ChangeIterator>> ReadView::Changes(int64_t from_rev, int64_t to_rev,
                                                          bool with_prev_kv,
                                                          std::optional<KeyRange> keys) const {
  if (from_rev < compact_rev_) return Status(Code::kCompacted);
  if (to_rev <= 0 || to_rev > rev_) to_rev = rev_;
  return std::unique_ptr<ChangeIterator>(
      std::make_unique<LogIterator>(txn_, dbis_.rev, dbis_.key, std::max<int64_t>(from_rev, 1),
                                    to_rev, compact_rev_, with_prev_kv, std::move(keys)));
}

Result<HashKVResult> ReadView::HashKV(int64_t rev) const {
  if (rev > rev_) return Status(Code::kFutureRev);
  // A revision at the compact revision is refused too (etcd 3.4 answers
  // ErrCompacted there), while rev <= 0 hashes the current state even when it
  // is the compact revision.
  if (rev > 0 && rev <= compact_rev_) return Status(Code::kCompacted);
  if (rev <= 0) rev = rev_;
  // Hash the logical content only, so the result does not depend on how far
  // a compaction has physically got: records after the compact revision,
  // plus each key's latest record at or below it unless a tombstone. The
  // bytes and order hashed are layout 4's whatever this store's layout
  // (key_space_hash.h), so members agree during a rolling upgrade.
  KeySpaceHash hash;
  Cursor c(txn_, dbis_.key);
  Cursor rev_cursor = RevCursor();
  std::string group;            // slot of the current key
  bool seen_compacted = false;  // its record <= compact_rev_ was handled
  for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
    std::string_view k = c.key();
    if (k.size() < kMinSlotBytes + kRevisionBytes) return Corrupt("key table key");
    std::string_view prefix = k.substr(0, k.size() - kRevisionBytes);
    if (prefix != group) {
      group.assign(prefix);
      seen_compacted = false;
    }
    const Revision record_rev = DecodeInvertedRevision(k.data() + prefix.size());
    const int64_t main = record_rev.main;
    if (main > rev) continue;
    if (main <= compact_rev_) {
      if (seen_compacted) continue;
      seen_compacted = true;
      std::string_view v = c.value();
      if (v.empty()) return Corrupt("key record");
      if (static_cast<uint8_t>(v[0]) & kTombstoneFlag) continue;
    }
    std::string_view record = c.value();
    if (record.size() != kKeyRecordHeaderBytes) return Corrupt("key record");
    std::string_view rev_record;
    ETCDPP_RETURN_IF_ERROR(GetRevRecord(rev_cursor, record_rev, &rev_record));
    KeyRecordHeader header;
    std::string_view user_key, value;
    if (!DecodeRevRecord(rev_record, &header, &user_key, &value)) return Corrupt("rev record");
    hash.Add(user_key, record_rev, record, value);
  }
  if (!c.status().ok()) return c.status();
  return HashKVResult{hash.Finish(), compact_rev_, rev_};
}

// ---------------------------------------------------------------------------
// ReaderPool

// Reset read transactions with their `key` cursor. Renewing one instead of
// beginning a new transaction skips LMDB's reader-table mutex (with
// MDB_NOTLS every new read txn takes a reader slot under it) and two
// mallocs. Sharded by thread so concurrent readers rarely share a mutex; each
// critical section is a vector push or pop.
class KvStore::ReaderPool {
 public:
  struct Reader {
    MDB_txn* txn = nullptr;
    MDB_cursor* key_cursor = nullptr;
    MDB_cursor* rev_cursor = nullptr;
  };

  ~ReaderPool() {
    for (Shard& shard : shards_) {
      for (Reader& r : shard.free) Close(r);
    }
  }

  bool Take(Reader* out) {
    Shard& shard = MyShard();
    std::lock_guard lock(shard.mu);
    if (shard.free.empty()) return false;
    *out = shard.free.back();
    shard.free.pop_back();
    return true;
  }

  // `r.txn` must be reset (mdb_txn_reset).
  void Give(Reader r) {
    Shard& shard = MyShard();
    {
      std::lock_guard lock(shard.mu);
      if (shard.free.size() < kMaxPerShard) {
        shard.free.push_back(r);
        return;
      }
    }
    Close(r);
  }

  static void Close(Reader r) {
    if (r.key_cursor != nullptr) mdb_cursor_close(r.key_cursor);
    if (r.rev_cursor != nullptr) mdb_cursor_close(r.rev_cursor);
    mdb_txn_abort(r.txn);
  }

 private:
  static constexpr size_t kShards = 8;
  static constexpr size_t kMaxPerShard = 32;
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<Reader> free;  // GUARDED_BY(mu)
  };
  Shard& MyShard() {
    return shards_[std::hash<std::thread::id>()(std::this_thread::get_id()) % kShards];
  }
  std::array<Shard, kShards> shards_;
};

// ---------------------------------------------------------------------------
// ReadTxn

ReadTxn::~ReadTxn() {
  ReadSnapshotEnding(store_->readers_.get());
  mdb_txn_reset(txn_);
  const_cast<KvStore*>(store_)->readers_->Give({txn_, key_cursor_, rev_cursor_});
  store_->env_->NoteReadDone();
}

Result<Table> ReadTxn::OpenTable(std::string_view name) const {
  auto dbi = store_->FindTable(name);
  if (!dbi) return Status::NotFound("table " + std::string(name));
  return Table(txn_, *dbi);
}

// ---------------------------------------------------------------------------
// WriteTxn

WriteTxn::~WriteTxn() {
  if (!committed_) mdb_txn_abort(txn_);
  mutable_store_->writer_active_.store(false, std::memory_order_release);
}

void WriteTxn::BeginRevision() {
  assert(!in_scope_);
  in_scope_ = true;
  scope_main_ = rev_ + 1;
  next_sub_ = 0;
}

void WriteTxn::EndRevision() {
  assert(in_scope_);
  in_scope_ = false;
  // rev_ already advanced to scope_main_ by the first change, if any.
  next_sub_ = 0;
}

Status WriteTxn::PutKeyRecord(std::string_view key, Revision rev, uint8_t flags, int64_t create,
                              int64_t version, int64_t lease, std::string_view value,
                              LiveChange live) {
  std::string tk;
  tk.reserve(kMaxTableKeyBytes);
  AppendKeySlot(key, &tk);
  if (live != LiveChange::kNone) {
    MDB_val slot = ToMdbVal(tk);
    MDB_val empty{0, nullptr};
    int rc = live == LiveChange::kAdd ? mdb_put(txn_, dbis_.live, &slot, &empty, 0)
                                      : mdb_del(txn_, dbis_.live, &slot, nullptr);
    if (rc != 0) {
      failed_ = true;
      // A live key missing from `live` means the table no longer matches
      // `key`; counting on would give wrong answers.
      return rc == MDB_NOTFOUND ? Corrupt("live table lacks a live key")
                                : LmdbError(rc, "update live table");
    }
  }
  AppendInvertedRevision(rev, &tk);

  const KeyRecordHeader h{flags, create, version, lease};
  MDB_val k = ToMdbVal(tk);
  MDB_val v{kKeyRecordHeaderBytes, nullptr};
  int rc = mdb_put(txn_, dbis_.key, &k, &v, MDB_RESERVE);
  if (rc != 0) {
    failed_ = true;
    return LmdbError(rc, "put key record");
  }
  ReaderSlotsObserved(mutable_store_->readers_.get());
  EncodeKeyRecordHeader(h, static_cast<char*>(v.mv_data));

  char rk[kRevisionBytes];
  EncodeRevision(rev, rk);
  MDB_val rkv{kRevisionBytes, rk};
  MDB_val rv{RevRecordBytes(key.size(), value.size()), nullptr};
  // Revisions only grow, so the change log is appended at its end.
  rc = mdb_put(txn_, dbis_.rev, &rkv, &rv, MDB_RESERVE | MDB_APPEND);
  if (rc != 0) {
    failed_ = true;
    return LmdbError(rc, "put rev record");
  }
  ReaderSlotsObserved(mutable_store_->readers_.get());
  EncodeRevRecord(h, key, value, static_cast<char*>(rv.mv_data));
  return Status::OK();
}

Result<PutResult> WriteTxn::Put(std::string_view key, std::string_view value, int64_t lease) {
  assert(in_scope_);
  if (failed_) return Status::Internal("write txn failed earlier");
  if (unfinished_delete_) return RefuseBeforeUnfinishedDelete();
  if (key.size() > std::numeric_limits<uint32_t>::max()) {
    return Status(Code::kRequestTooLarge);
  }
  PutResult result;
  KeyRecordHeader prev;
  {
    std::string seek;
    seek.reserve(kMaxTableKeyBytes);
    AppendKeySlot(key, &seek);
    const size_t slot_len = seek.size();
    AppendSeekSuffix(scope_main_, &seek);
    Cursor c = KeyCursor();
    if (c.Seek(seek) && SameSlot(c.key(), std::string_view(seek).substr(0, slot_len))) {
      KeyEntry e;
      std::string scratch;
      Cursor rev = RevCursor();
      ETCDPP_RETURN_IF_ERROR(
          DecodeEntry(rev, c.key(), c.value(), /*with_value=*/false, &scratch, &e));
      if (e.user_key != key) {
        // Two keys whose SHA-256 agree in 128 bits: never seen, but sharing
        // a slot would mix their histories, so the second is refused.
        return Status::Internal("key hash collides with a stored key");
      }
      prev = e.header;
      result.existed = !prev.tombstone();
    }
    if (!c.status().ok()) return c.status();
  }
  const Revision rev{scope_main_, next_sub_};
  const int64_t create = result.existed ? prev.create_revision : rev.main;
  const int64_t version = result.existed ? prev.version + 1 : 1;
  if (result.existed) result.prev_lease = prev.lease;
  ETCDPP_RETURN_IF_ERROR(PutKeyRecord(key, rev, 0, create, version, lease, value,
                                      result.existed ? LiveChange::kNone : LiveChange::kAdd));
  ++next_sub_;
  rev_ = scope_main_;
  result.revision = rev.main;
  return result;
}

Result<int64_t> WriteTxn::DeleteRange(std::string_view key, std::string_view end,
                                      PrevValues prev_values,
                                      const std::function<void(const KeyValueView&)>& on_delete,
                                      const DeleteParts* parts) {
  assert(in_scope_);
  if (failed_) return Status::Internal("write txn failed earlier");
  const bool with_values = on_delete && prev_values == PrevValues::kRead;
  if (parts != nullptr && !end.empty()) {
    return DeleteInParts(key, end, with_values, on_delete, *parts);
  }
  if (unfinished_delete_) return RefuseBeforeUnfinishedDelete();
  std::string from(key);
  int64_t deleted = 0;
  for (bool more = true; more;) {
    auto n = DeleteChunk(&from, end, with_values, on_delete, LiveChange::kRemove, &more);
    if (!n.ok()) return n.status();
    deleted += static_cast<int64_t>(*n);
  }
  return deleted;
}

Result<size_t> WriteTxn::DeleteChunk(std::string* from, std::string_view end, bool with_values,
                                     const std::function<void(const KeyValueView&)>& on_delete,
                                     LiveChange live, bool* more) {
  // The keys are collected a chunk at a time and their tombstones written
  // before the scan goes on past the last of them: writes invalidate the
  // scan's views into LMDB's pages, and a list of every doomed key at once
  // held a copy of each (about 100 MB for etcdctl check perf's closing
  // delete of ~360,000 keys of 276 bytes). Keys already deleted are behind
  // the point the scan resumes from, so it sees the range as it was.
  constexpr size_t kChunk = 1024;
  std::vector<std::string> doomed;
  Status s = ScanAt(*from, end, Rev(), with_values, [&](const KeyEntry& e) {
    if (on_delete) on_delete(ViewOf(e));
    doomed.emplace_back(e.user_key);
    return doomed.size() < kChunk;
  });
  if (!s.ok()) return s;
  for (const std::string& k : doomed) {
    ETCDPP_RETURN_IF_ERROR(
        PutKeyRecord(k, Revision{scope_main_, next_sub_}, kTombstoneFlag, 0, 0, 0, {}, live));
    ++next_sub_;
    rev_ = scope_main_;
  }
  *more = doomed.size() == kChunk && !end.empty();
  if (*more) {
    *from = doomed.back();
    from->push_back('\0');  // the smallest key after the last one deleted
    const bool to_the_end = end == std::string_view("\0", 1);
    if (!to_the_end && std::string_view(*from) >= end) *more = false;
  }
  return doomed.size();
}

void WriteTxn::ReleaseWalkedPages() { mutable_store_->env_->BoundMappedPagesOfAWalk(); }

Status WriteTxn::FinishUnfinishedDelete() {
  assert(!in_scope_);
  if (!unfinished_delete_) return Status::OK();
  auto marker = ReadPartialDelete(Table(txn_, dbis_.meta));
  if (!marker.ok()) return marker.status();
  BeginRevision();
  // The rest in one commit: a restore has nobody else to serve meanwhile.
  const DeleteParts no_more_parts{std::numeric_limits<size_t>::max(), {}};
  auto deleted = DeleteInParts(marker->key, marker->end, false, {}, no_more_parts);
  EndRevision();
  return deleted.status();
}

Status WriteTxn::RefuseBeforeUnfinishedDelete() {
  // The replay applies the delete's own entry first (its parts were
  // committed only once it was durable), so another write here means the
  // store and the log disagree: the member must stop, not answer.
  failed_ = true;
  return Corrupt("a delete committed in parts is not finished");
}

Result<int64_t> WriteTxn::DeleteInParts(std::string_view key, std::string_view end,
                                        bool with_values,
                                        const std::function<void(const KeyValueView&)>& on_delete,
                                        const DeleteParts& parts) {
  auto deleted = DeletePartByPart(key, end, with_values, on_delete, parts);
  // Once a part is committed, this transaction must not commit what it
  // holds without the rest: only an abort (and the replay that resumes the
  // delete) remains.
  if (!deleted.ok() && unfinished_delete_) failed_ = true;
  return deleted;
}

Result<int64_t> WriteTxn::DeletePartByPart(
    std::string_view key, std::string_view end, bool with_values,
    const std::function<void(const KeyValueView&)>& on_delete, const DeleteParts& parts) {
  // The scope is this delete alone: its sub revisions count the tombstones
  // of every part, which the last part checks against the keys it finds.
  assert(next_sub_ == 0);
  std::string from(key);
  int64_t deleted = 0;
  if (unfinished_delete_) {
    auto marker = ReadPartialDelete(Table(txn_, dbis_.meta));
    if (!marker.ok()) return marker.status();
    // The WAL replays the delete's own entry first: the part was committed
    // only once that entry was durable.
    if (marker->main != scope_main_ || marker->key != key || marker->end != end) {
      return Corrupt("the delete committed in parts is not the request applied at its revision");
    }
    spdlog::warn(
        "mvcc: a delete at revision {} stopped after {} keys committed in parts; "
        "finishing it",
        scope_main_, marker->deleted);
    from = std::move(marker->next_key);
    next_sub_ = marker->sub;
    deleted = marker->deleted;
    if (next_sub_ > 0) rev_ = scope_main_;
  }
  // A chunk of keys at a time, as in DeleteRange. Their slots stay in `live`
  // until the last part, so that a count at the revision readers see
  // between parts still holds every key.
  size_t in_part = 0;
  for (bool more = true; more;) {
    auto n = DeleteChunk(&from, end, with_values, on_delete, LiveChange::kNone, &more);
    if (!n.ok()) return n.status();
    deleted += static_cast<int64_t>(*n);
    in_part += *n;
    ReleaseWalkedPages();
    if (more && in_part >= parts.keys_per_part) {
      if (parts.before_commit) ETCDPP_RETURN_IF_ERROR(parts.before_commit());
      ETCDPP_RETURN_IF_ERROR(CommitPart(key, end, from, deleted));
      in_part = 0;
    }
  }
  ETCDPP_RETURN_IF_ERROR(RemoveScopeFromLive(key, end));
  if (unfinished_delete_) {
    ETCDPP_RETURN_IF_ERROR(Table(txn_, dbis_.meta).Delete(kMetaPartialDelete));
    unfinished_delete_ = false;
  }
  return deleted;
}

Status WriteTxn::CommitPart(std::string_view key, std::string_view end, std::string_view next_key,
                            int64_t deleted) {
  Table meta(txn_, dbis_.meta);
  PartialDelete marker{scope_main_,      next_sub_,        deleted,
                       std::string(key), std::string(end), std::string(next_key)};
  ETCDPP_RETURN_IF_ERROR(meta.Put(kMetaPartialDelete, EncodePartialDelete(marker)));
  // Readers of this commit see the revision the scope began from, so none
  // of the scope's records (all newer) and all of `live` as it was.
  char state[16];
  PutBigEndian64(static_cast<uint64_t>(scope_main_ - 1), state);
  PutBigEndian64(static_cast<uint64_t>(compact_rev_), state + 8);
  ETCDPP_RETURN_IF_ERROR(meta.Put(kMetaRevision, std::string_view(state, 16)));
  PublishingCommit(mutable_store_);
  Status committed = mutable_store_->env_->Commit(txn_, "commit part of a delete");
  // Committed or not, LMDB has freed the transaction and its cursors.
  txn_ = nullptr;
  key_cursor_ = rev_cursor_ = nullptr;
  if (!committed.ok()) {
    committed_ = failed_ = true;
    return committed;
  }
  KvStore* store = mutable_store_;
  store->PublishTables(new_tables_);
  new_tables_.clear();
  int rc = mdb_txn_begin(store->env_->get(), nullptr, 0, &txn_);
  if (rc == 0) rc = mdb_cursor_open(txn_, dbis_.key, &key_cursor_);
  if (rc == 0) rc = mdb_cursor_open(txn_, dbis_.rev, &rev_cursor_);
  if (rc != 0) {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
    committed_ = failed_ = true;
    return LmdbError(rc, "begin the next part of a delete");
  }
  unfinished_delete_ = true;
  return Status::OK();
}

Status WriteTxn::RemoveScopeFromLive(std::string_view key, std::string_view end) {
  // The keys this delete took are the keys of the range that were live at
  // the revision before its scope: a scan at that revision finds them in
  // `key`, whose leaves the delete has just read. (Reading its tombstones
  // back from `rev` instead mapped every page of them: ~120 MiB for check
  // perf's closing delete.)
  constexpr size_t kChunk = 1024;
  const bool to_the_end = end == std::string_view("\0", 1);
  std::vector<std::string> slots;
  std::string from(key), last;
  int64_t removed = 0;
  for (;;) {
    slots.clear();
    Status s = ScanAt(from, end, scope_main_ - 1, /*with_values=*/false, [&](const KeyEntry& e) {
      slots.emplace_back();
      AppendKeySlot(e.user_key, &slots.back());
      last.assign(e.user_key);
      return slots.size() < kChunk;
    });
    if (!s.ok()) return s;
    for (const std::string& slot : slots) {
      MDB_val k = ToMdbVal(slot);
      int rc = mdb_del(txn_, dbis_.live, &k, nullptr);
      if (rc != 0) {
        failed_ = true;
        return rc == MDB_NOTFOUND ? Corrupt("live table lacks a live key")
                                  : LmdbError(rc, "update live table");
      }
    }
    removed += static_cast<int64_t>(slots.size());
    ReleaseWalkedPages();
    if (slots.size() < kChunk) break;
    from = last;
    from.push_back('\0');
    if (!to_the_end && std::string_view(from) >= end) break;
  }
  if (removed != next_sub_) {
    failed_ = true;
    return Corrupt("a delete's keys and its tombstones disagree");
  }
  return Status::OK();
}

Status WriteTxn::SetConsistentIndex(uint64_t index) {
  consistent_index_ = index;
  consistent_index_dirty_ = true;
  return Table(txn_, dbis_.meta).Put(kMetaConsistentIndex, EncodeUint64(index));
}

Status WriteTxn::PutMeta(std::string_view name, std::string_view value) {
  if (name.starts_with(kReservedMetaPrefix)) {
    return Status::InvalidArgument("meta name reserved by mvcc: " + std::string(name));
  }
  return Table(txn_, dbis_.meta).Put(name, value);
}

Status WriteTxn::WriteState() {
  char buf[16];
  PutBigEndian64(static_cast<uint64_t>(rev_), buf);
  PutBigEndian64(static_cast<uint64_t>(compact_rev_), buf + 8);
  return Table(txn_, dbis_.meta).Put(kMetaRevision, std::string_view(buf, 16));
}

Status WriteTxn::ScheduleCompact(int64_t rev) {
  assert(!in_scope_);
  if (rev <= compact_rev_) return Status(Code::kCompacted);
  if (rev > rev_) return Status(Code::kFutureRev);
  compact_rev_ = rev;
  scheduled_compact_ = rev;
  ETCDPP_RETURN_IF_ERROR(WriteState());
  return Table(txn_, dbis_.meta).Put(kMetaScheduledCompact, EncodeUint64(rev));
}

Result<bool> WriteTxn::CompactSome(size_t max_keys, const std::function<bool()>& yield) {
  if (finished_compact_ >= scheduled_compact_) return true;
  // Every key changed in (finished, scheduled] may have history to drop;
  // keys not changed there kept at most one record <= finished, which is
  // still their latest record <= scheduled.
  std::unordered_set<std::string> keys;
  // Where the next share starts: a share may end inside a main revision (a
  // txn of many puts), so its size, and with it its commit's flush, is
  // bounded by max_keys however many keys one revision changed.
  Revision next{finished_compact_ + 1, finished_compact_sub_};
  bool done = true;
  {
    Cursor c(txn_, dbis_.rev);
    char start[kRevisionBytes];
    EncodeRevision(next, start);
    for (bool ok = c.Seek(std::string_view(start, kRevisionBytes)); ok; ok = c.Next()) {
      std::string_view k = c.key();
      KeyRecordHeader header;
      std::string_view user_key, value;
      if (k.size() != kRevisionBytes || !DecodeRevRecord(c.value(), &header, &user_key, &value)) {
        return Corrupt("rev table entry");
      }
      const Revision rev = DecodeRevision(k.data());
      if (rev.main > scheduled_compact_) break;
      if (keys.size() >= max_keys) {
        next = rev;
        done = false;
        break;
      }
      keys.emplace(user_key);
    }
    if (!c.status().ok()) return c.status();
  }
  for (const std::string& key : keys) {
    // The keys are in no order, so a partial share cannot record progress.
    if (yield && yield()) {
      failed_ = true;
      return Status(Code::kCancelled, "compaction share abandoned");
    }
    ETCDPP_RETURN_IF_ERROR(CompactKey(key, scheduled_compact_));
  }
  // Every revision below `next` is done.
  finished_compact_ = done ? scheduled_compact_ : next.main - 1;
  finished_compact_sub_ = done ? 0 : next.sub;
  Table meta(txn_, dbis_.meta);
  ETCDPP_RETURN_IF_ERROR(meta.Put(kMetaFinishedCompact, EncodeUint64(finished_compact_)));
  ETCDPP_RETURN_IF_ERROR(finished_compact_sub_ != 0 ? meta.Put(kMetaFinishedCompactSub,
                                                               EncodeUint64(finished_compact_sub_))
                                                    : meta.Delete(kMetaFinishedCompactSub));
  return done;
}

Status WriteTxn::CompactKey(std::string_view user_key, int64_t rev) {
  std::string seek;
  AppendKeySlot(user_key, &seek);
  const size_t prefix_len = seek.size();
  AppendSeekSuffix(rev, &seek);
  std::vector<std::string> doomed;
  {
    Cursor c(txn_, dbis_.key);
    std::string_view prefix = std::string_view(seek).substr(0, prefix_len);
    bool ok = c.Seek(seek);
    if (ok && SameSlot(c.key(), prefix)) {
      // The latest record <= rev survives unless it is a tombstone.
      std::string_view v = c.value();
      if (v.empty()) return Corrupt("key record");
      if (static_cast<uint8_t>(v[0]) & kTombstoneFlag) doomed.emplace_back(c.key());
      while (c.Next() && SameSlot(c.key(), prefix)) doomed.emplace_back(c.key());
    }
    if (!c.status().ok()) return c.status();
  }
  for (const std::string& tk : doomed) {
    MDB_val k = ToMdbVal(tk);
    int rc = mdb_del(txn_, dbis_.key, &k, nullptr);
    if (rc != 0) {
      failed_ = true;
      return LmdbError(rc, "compact key record");
    }
    char rk[kRevisionBytes];
    EncodeRevision(DecodeInvertedRevision(tk.data() + tk.size() - kRevisionBytes), rk);
    MDB_val rkv{kRevisionBytes, rk};
    rc = mdb_del(txn_, dbis_.rev, &rkv, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) {
      failed_ = true;
      return LmdbError(rc, "compact rev record");
    }
  }
  return Status::OK();
}

Status WriteTxn::Compact(int64_t rev) {
  ETCDPP_RETURN_IF_ERROR(ScheduleCompact(rev));
  auto done = CompactSome(mutable_store_->compact_keys_per_txn_);
  if (!done.ok()) return done.status();
  compacted_in_txn_ = true;
  return Status::OK();
}

Result<Table> WriteTxn::OpenTable(std::string_view name) {
  if (name == kKeyTable || name == kRevTable || name == kMetaTable || name == kLiveTable) {
    return Status::InvalidArgument("table reserved by mvcc: " + std::string(name));
  }
  if (auto dbi = store_->FindTable(name)) return Table(txn_, *dbi);
  if (auto it = new_tables_.find(name); it != new_tables_.end()) return Table(txn_, it->second);
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn_, std::string(name).c_str(), MDB_CREATE, &dbi);
  if (rc != 0) return LmdbError(rc, "open table " + std::string(name));
  new_tables_.emplace(std::string(name), dbi);
  return Table(txn_, dbi);
}

bool WriteTxn::Broken() const {
  if (failed_) return true;
  // LMDB marks a transaction whose write failed and answers MDB_BAD_TXN to
  // any later call on it, a read of meta included.
  MDB_val k = ToMdbVal(kMetaRevision);
  MDB_val v;
  return mdb_get(txn_, dbis_.meta, &k, &v) == MDB_BAD_TXN;
}

Status WriteTxn::Commit() {
  assert(!in_scope_ && !committed_);
  if (failed_) return Status::Internal("write txn failed earlier");
  if (CompactionPending() && !compacted_in_txn_) {
    auto done = CompactSome(mutable_store_->compact_keys_per_txn_);
    if (!done.ok()) return done.status();
  }
  ETCDPP_RETURN_IF_ERROR(WriteState());
  PublishingCommit(mutable_store_);
  Status st = mutable_store_->env_->Commit(txn_, "commit");
  committed_ = true;  // Even on failure LMDB has freed the transaction.
  if (!st.ok()) return st;
  KvStore* s = mutable_store_;
  s->PublishTables(new_tables_);
  s->current_rev_.store(rev_, std::memory_order_release);
  s->compact_rev_.store(compact_rev_, std::memory_order_release);
  s->compaction_pending_.store(CompactionPending(), std::memory_order_release);
  if (consistent_index_dirty_) {
    s->consistent_index_.store(consistent_index_, std::memory_order_release);
  }
  // The pages this commit read and wrote stay mapped; the writer is where
  // a load's mapped pages grow, so it bounds them after each commit.
  s->env_->BoundMappedPages();
  return Status::OK();
}

// ---------------------------------------------------------------------------
// KvStore

namespace {

// Beside data.mdb: the map size the next Open takes at least, in decimal
// (KvStore::RecordMapFull).
constexpr std::string_view kMapSizeFile = "map-size";

// The recorded map size, or 0 if none (or unreadable: the sizes from the
// options still apply, and a full map is recorded again).
uint64_t RecordedMapBytes(const std::string& dir) {
  const std::string path = JoinPath(dir, kMapSizeFile);
  Env* env = Env::Default();
  if (!env->FileExists(path)) return 0;
  auto text = env->ReadFile(path);
  if (!text.ok()) return 0;
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    spdlog::warn("{}: not a map size, ignored", path);
    return 0;
  }
}

}  // namespace

Status KvStore::RecordMapFull() {
  const uint64_t bytes = 2 * env_->MapBytes();
  // Beside the data file wherever it is now: a store swapped in by a
  // defragmentation was opened in another directory.
  const std::string dir = env_->CurrentDir();
  spdlog::error(
      "{}: a write needed more than the store's map of {} bytes; it maps {} bytes when next opened",
      JoinPath(dir, "data.mdb"), bytes / 2, bytes);
  return WriteFileAtomically(Env::Default(), JoinPath(dir, kMapSizeFile),
                             std::to_string(bytes) + "\n");
}

Result<std::unique_ptr<KvStore>> KvStore::Open(const std::string& dir, Options options) {
  LmdbOptions lmdb;
  lmdb.map_size = options.map_bytes != 0 ? options.map_bytes
                                         : 3 * options.quota_bytes + options.apply_headroom_bytes;
  lmdb.map_size = std::max(lmdb.map_size, RecordedMapBytes(dir));
  lmdb.max_readers = options.max_readers;
  lmdb.max_tables = options.max_tables;
  lmdb.write_map = options.write_map;
  lmdb.deferred_flush = options.deferred_flush;
  lmdb.on_flush = options.on_flush;
  lmdb.mapped_bytes_bound = options.mapped_bytes_bound;
  lmdb.min_release_interval = options.min_release_interval;
  if (options.compact_keys_per_txn == 0 || options.compact_keys_per_idle_txn == 0) {
    return Status::InvalidArgument(
        "compact_keys_per_txn and compact_keys_per_idle_txn must be positive");
  }
  auto env = LmdbEnv::Open(dir, lmdb);
  if (!env.ok()) return env.status();
  // A store can hold more than its quota (deletes grow it past the quota,
  // and a member may restart with a lower one); the worst delete must fit
  // then too, so the map also covers three times what the store holds.
  if (const uint64_t held = (*env)->SizeBytes();
      options.map_bytes == 0 && held > options.quota_bytes) {
    ETCDPP_RETURN_IF_ERROR((*env)->GrowMap(3 * held + options.apply_headroom_bytes));
  }
  std::unique_ptr<KvStore> store(new KvStore(std::move(*env)));
  store->compact_keys_per_txn_ = options.compact_keys_per_txn;
  store->compact_keys_per_idle_txn_ = options.compact_keys_per_idle_txn;
  ETCDPP_RETURN_IF_ERROR(store->Init());
  if (store->rewrote_layout_) {
    // The upgrade dirtied every page of the store in one transaction, and
    // LMDB keeps a transaction's page copies for the environment's life
    // (docs/mvcc.md, "Environment"): a fresh environment starts without them.
    store.reset();
    return Open(dir, options);
  }
  return store;
}

KvStore::~KvStore() {
  // Pooled readers hold LMDB reader slots: release them before the env.
  readers_.reset();
}

Status KvStore::Init() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_->get(), nullptr, 0, &txn);
  if (rc != 0) return LmdbError(rc, "begin init txn");
  auto fail = [&](int code, std::string_view what) {
    mdb_txn_abort(txn);
    return LmdbError(code, what);
  };
  if ((rc = mdb_dbi_open(txn, "key", MDB_CREATE, &dbis_.key)) != 0) return fail(rc, "open key");
  if ((rc = mdb_dbi_open(txn, "rev", MDB_CREATE, &dbis_.rev)) != 0) return fail(rc, "open rev");
  if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbis_.meta)) != 0) return fail(rc, "open meta");
  if ((rc = mdb_dbi_open(txn, "live", MDB_CREATE, &dbis_.live)) != 0) return fail(rc, "open live");

  // Open every other named table now, so ReadTxns never need to.
  MDB_dbi main_dbi;
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi)) != 0) return fail(rc, "open main");
  std::vector<std::string> names;
  {
    Cursor c(txn, main_dbi);
    for (bool ok = c.SeekFirst(); ok; ok = c.Next()) names.emplace_back(c.key());
    if (!c.status().ok()) {
      mdb_txn_abort(txn);
      return c.status();
    }
  }
  for (const std::string& name : names) {
    if (name == kKeyTable || name == kRevTable || name == kMetaTable || name == kLiveTable) {
      continue;
    }
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi)) != 0) return fail(rc, "open " + name);
    tables_.emplace(name, dbi);
  }
  if (Status s = UpgradeKeyLayout(txn); !s.ok()) {
    mdb_txn_abort(txn);
    return s;
  }
  ETCDPP_RETURN_IF_ERROR(env_->Commit(txn, "commit init txn"));

  int64_t scheduled = 0, finished = 0;
  {
    auto r = Read();
    if (!r.ok()) return r.status();
    current_rev_ = (*r)->Rev();
    compact_rev_ = (*r)->CompactRev();
    consistent_index_ = (*r)->ConsistentIndex();
    auto get = [&](std::string_view name, int64_t* out) -> Status {
      auto v = Table((*r)->txn_, dbis_.meta).Get(name);
      if (!v.ok()) return v.status();
      if (v->has_value() && (*v)->size() == 8) *out = GetBigEndian64((*v)->data());
      return Status::OK();
    };
    ETCDPP_RETURN_IF_ERROR(get(kMetaScheduledCompact, &scheduled));
    ETCDPP_RETURN_IF_ERROR(get(kMetaFinishedCompact, &finished));
  }
  // An interrupted compaction is not finished here: every later commit does
  // a share of it (and the server's apply thread commits shares while idle),
  // so a member serves at once after restart instead of removing a large
  // history first. Reads never see the difference (see Compaction in
  // docs/mvcc.md).
  compaction_pending_ = scheduled > finished;
  return Status::OK();
}

Status KvStore::UpgradeKeyLayout(MDB_txn* txn) {
  Table meta(txn, dbis_.meta);
  auto stored = meta.Get(kMetaKeyLayout);
  if (!stored.ok()) return stored.status();
  const std::string layout = stored->has_value() ? std::string(**stored) : "1";
  if (layout == kKeyLayoutCurrent) return Status::OK();
  if (layout != "1" && layout != "2" && layout != "3" && layout != "4") {
    return Status(Code::kFailedPrecondition,
                  dir() + "/data.mdb: key layout " + layout +
                      " is unknown to this etcdpp (it reads layouts 1 to " +
                      std::string(kKeyLayoutCurrent) + "); run the etcdpp that wrote it");
  }
  if (layout == "1") ETCDPP_RETURN_IF_ERROR(MoveLayoutOneLongKeys(txn));
  if (layout != "4") ETCDPP_RETURN_IF_ERROR(MoveValuesToRevTable(txn));
  ETCDPP_RETURN_IF_ERROR(ReKeyEscapedSlots(txn));
  // `live` holds slots too; rebuilt from `key` rather than re-keyed (layouts
  // 1 and 2 had none).
  ETCDPP_RETURN_IF_ERROR(BuildLiveTable(txn));
  // The rebuild dirtied every page of `live` at least (a new store, whose
  // tables are empty, has no layout yet either).
  MDB_stat key_stat;
  if (int rc = mdb_stat(txn, dbis_.key, &key_stat); rc != 0) return LmdbError(rc, "stat key");
  if (key_stat.ms_entries > 0) rewrote_layout_ = true;
  return meta.Put(kMetaKeyLayout, kKeyLayoutCurrent);
}

Status KvStore::MoveValuesToRevTable(MDB_txn* txn) {
  // Layout 3 kept each value (and a long key's bytes) in its `key` record
  // and flags || user key in `rev`. Every record is rewritten once: `rev`
  // gets the whole record, `key` keeps the header. In chunks, since LMDB
  // views die at the first write; each chunk resumes after the last key of
  // the one before (a `key` table key is never rewritten, only its value).
  constexpr size_t kChunk = 1024;
  std::vector<std::pair<std::string, std::string>> chunk;
  std::string resume;
  std::string user_key;
  for (;;) {
    chunk.clear();
    {
      Cursor c(txn, dbis_.key);
      bool ok = resume.empty() ? c.SeekFirst() : c.Seek(resume);
      if (ok && !resume.empty() && c.key() == resume) ok = c.Next();
      for (; ok && chunk.size() < kChunk; ok = c.Next()) chunk.emplace_back(c.key(), c.value());
      if (!c.status().ok()) return c.status();
    }
    if (chunk.empty()) return Status::OK();
    for (const auto& [table_key, record] : chunk) {
      std::string_view slot;
      Revision rev;
      KeyRecordHeader header;
      std::string_view body, key, value;
      if (!SplitKeyTableKey(table_key, &slot, &rev) || !DecodeKeyRecord(record, &header, &body)) {
        return Corrupt(dir() + "/data.mdb: layout 3 key record");
      }
      if (escaped::IsLongSlot(slot)) {
        if (!SplitLongKeyBody(body, &key, &value)) {
          return Corrupt(dir() + "/data.mdb: layout 3 long key record");
        }
      } else {
        if (!escaped::DecodeUserKey(slot, &user_key)) {
          return Corrupt(dir() + "/data.mdb: key table key");
        }
        key = user_key;
        value = body;
      }
      std::string rev_record(RevRecordBytes(key.size(), value.size()), '\0');
      EncodeRevRecord(header, key, value, rev_record.data());
      char rk[kRevisionBytes];
      EncodeRevision(rev, rk);
      ETCDPP_RETURN_IF_ERROR(
          Table(txn, dbis_.rev).Put(std::string_view(rk, kRevisionBytes), rev_record));
      ETCDPP_RETURN_IF_ERROR(
          Table(txn, dbis_.key).Put(table_key, record.substr(0, kKeyRecordHeaderBytes)));
    }
    resume = chunk.back().first;
  }
}

Status KvStore::BuildLiveTable(MDB_txn* txn) {
  if (int rc = mdb_drop(txn, dbis_.live, 0); rc != 0) return LmdbError(rc, "clear live table");
  // Each slot's first record is its newest; the slots come in `live`'s
  // order, so every entry is appended.
  Cursor c(txn, dbis_.key);
  std::string slot;
  for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
    std::string_view k = c.key();
    if (k.size() < kMinSlotBytes + kRevisionBytes) {
      return Corrupt(dir() + "/data.mdb: key table key");
    }
    std::string_view this_slot = k.substr(0, k.size() - kRevisionBytes);
    if (this_slot == slot) continue;
    slot.assign(this_slot);
    std::string_view record = c.value();
    if (record.size() < kKeyRecordHeaderBytes) return Corrupt(dir() + "/data.mdb: key record");
    if (static_cast<uint8_t>(record[0]) & kTombstoneFlag) continue;
    MDB_val key = ToMdbVal(slot);
    MDB_val empty{0, nullptr};
    if (int rc = mdb_put(txn, dbis_.live, &key, &empty, MDB_APPEND); rc != 0) {
      return LmdbError(rc, "build live table");
    }
  }
  return c.status();
}

Status KvStore::MoveLayoutOneLongKeys(MDB_txn* txn) {
  // Layout 1 stored keys of up to 493 escaped bytes inline. Those above
  // today's inline limit move to their long-key slot; every other record
  // is already in place. One pass over the table, once per data dir.
  std::vector<std::pair<std::string, std::string>> moved;
  {
    Cursor c(txn, dbis_.key);
    for (bool ok = c.SeekFirst(); ok; ok = c.Next()) {
      std::string_view k = c.key();
      if (k.size() <= escaped::kMaxInlineSlotBytes + kRevisionBytes) continue;
      if (k.size() > escaped::kV1MaxSlotBytes + kRevisionBytes) {
        return Corrupt(dir() + "/data.mdb: layout 1 key table key longer than its limit");
      }
      moved.emplace_back(k, c.value());
    }
    if (!c.status().ok()) return c.status();
  }
  std::string user_key;
  for (const auto& [old_key, record] : moved) {
    std::string_view slot;
    Revision rev;
    KeyRecordHeader header;
    std::string_view value;
    if (!SplitKeyTableKey(old_key, &slot, &rev) || !escaped::DecodeUserKey(slot, &user_key) ||
        !DecodeKeyRecord(record, &header, &value)) {
      return Corrupt(dir() + "/data.mdb: layout 1 key record");
    }
    MDB_val k = ToMdbVal(old_key);
    if (int rc = mdb_del(txn, dbis_.key, &k, nullptr); rc != 0) {
      return LmdbError(rc, "move layout 1 key record");
    }
    std::string new_record = record.substr(0, kKeyRecordHeaderBytes);
    char length[kLongKeyLengthBytes];
    PutLongKeyLength(static_cast<uint32_t>(user_key.size()), length);
    new_record.append(length, kLongKeyLengthBytes);
    new_record += user_key;
    new_record += value;
    ETCDPP_RETURN_IF_ERROR(
        Table(txn, dbis_.key).Put(escaped::MakeKeyTableKey(user_key, rev), new_record));
  }
  return Status::OK();
}

Status KvStore::ReKeyEscapedSlots(MDB_txn* txn) {
  // A key without zero bytes that was inline in layout 4 has the same slot
  // in layout 5 (k 00 01); every other record moves. They go to a scratch
  // table under their new table keys and are deleted from `key`, then come
  // back: new and old slots never share `key`, whatever their bytes. In
  // chunks, since LMDB views die at the first write.
  constexpr size_t kChunk = 1024;
  MDB_dbi scratch;
  if (int rc = mdb_dbi_open(txn, kReKeyTable, MDB_CREATE, &scratch); rc != 0) {
    return LmdbError(rc, "open re-key table");
  }
  struct Move {
    std::string old_key, new_key, record;
  };
  std::vector<Move> chunk;
  std::string resume, user_key;
  for (bool done = false; !done;) {
    chunk.clear();
    {
      Cursor c(txn, dbis_.key);
      Cursor rev_cursor(txn, dbis_.rev);
      bool ok = resume.empty() ? c.SeekFirst() : c.Seek(resume);
      if (ok && !resume.empty() && c.key() == resume) ok = c.Next();
      for (; ok && chunk.size() < kChunk; ok = c.Next()) {
        std::string_view table_key = c.key();
        resume.assign(table_key);
        std::string_view slot;
        Revision rev;
        if (!SplitKeyTableKey(table_key, &slot, &rev)) {
          return Corrupt(dir() + "/data.mdb: key table key");
        }
        std::string_view plain;
        if (!escaped::IsLongSlot(slot) && PlainUserKey(slot, &plain)) continue;
        if (escaped::IsLongSlot(slot)) {
          std::string_view rev_record, key, value;
          KeyRecordHeader header;
          ETCDPP_RETURN_IF_ERROR(GetRevRecord(rev_cursor, rev, &rev_record));
          if (!DecodeRevRecord(rev_record, &header, &key, &value)) {
            return Corrupt(dir() + "/data.mdb: rev record");
          }
          user_key.assign(key);
        } else if (!escaped::DecodeUserKey(slot, &user_key)) {
          return Corrupt(dir() + "/data.mdb: key table key");
        }
        chunk.push_back(
            Move{std::string(table_key), MakeKeyTableKey(user_key, rev), std::string(c.value())});
      }
      if (!c.status().ok()) return c.status();
      done = !ok;
    }
    for (const Move& m : chunk) {
      ETCDPP_RETURN_IF_ERROR(Table(txn, scratch).Put(m.new_key, m.record));
      MDB_val k = ToMdbVal(m.old_key);
      if (int rc = mdb_del(txn, dbis_.key, &k, nullptr); rc != 0) {
        return LmdbError(rc, "re-key key record");
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> back;
  for (resume.clear();;) {
    back.clear();
    {
      Cursor c(txn, scratch);
      bool ok = resume.empty() ? c.SeekFirst() : c.Seek(resume);
      if (ok && !resume.empty() && c.key() == resume) ok = c.Next();
      for (; ok && back.size() < kChunk; ok = c.Next()) back.emplace_back(c.key(), c.value());
      if (!c.status().ok()) return c.status();
    }
    if (back.empty()) break;
    for (const auto& [table_key, record] : back) {
      ETCDPP_RETURN_IF_ERROR(Table(txn, dbis_.key).Put(table_key, record));
    }
    resume = back.back().first;
  }
  if (int rc = mdb_drop(txn, scratch, 1); rc != 0) return LmdbError(rc, "drop re-key table");
  return Status::OK();
}

KvStore::KvStore(std::unique_ptr<LmdbEnv> env)
    : env_(std::move(env)), readers_(std::make_unique<ReaderPool>()) {}

Result<std::unique_ptr<ReadTxn>> KvStore::Read() const {
  ReaderPool::Reader reader;
  if (readers_->Take(&reader)) {
    if (mdb_txn_renew(reader.txn) != 0 || mdb_cursor_renew(reader.txn, reader.key_cursor) != 0 ||
        mdb_cursor_renew(reader.txn, reader.rev_cursor) != 0) {
      ReaderPool::Close(reader);
      reader = {};
    }
  }
  if (reader.txn == nullptr) {
    int rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, &reader.txn);
    if (rc != 0) return LmdbError(rc, "begin read txn");
    rc = mdb_cursor_open(reader.txn, dbis_.key, &reader.key_cursor);
    if (rc == 0) rc = mdb_cursor_open(reader.txn, dbis_.rev, &reader.rev_cursor);
    if (rc != 0) {
      ReaderPool::Close(reader);
      return LmdbError(rc, "open cursor");
    }
  }
  ReadSnapshotBegun(this);
  std::unique_ptr<ReadTxn> r(new ReadTxn(this, reader.txn));
  r->key_cursor_ = reader.key_cursor;
  r->rev_cursor_ = reader.rev_cursor;
  ETCDPP_RETURN_IF_ERROR(r->LoadState());
  return r;
}

Result<bool> KvStore::RemoveCompactedHistory(const std::function<bool()>& yield) {
  auto write = Write();
  if (!write.ok()) return write.status();
  WriteTxn& txn = **write;
  if (!txn.CompactionPending()) return false;
  auto done = txn.CompactSome(compact_keys_per_idle_txn_, yield);
  txn.compacted_in_txn_ = true;  // this was the share of its commit
  if (!done.ok()) {
    if (done.status().code() == Code::kCancelled) return false;  // destroying txn aborts it
    return done.status();
  }
  if (yield && yield()) return false;  // the flush would still be ahead
  ETCDPP_RETURN_IF_ERROR(txn.Commit());
  return true;
}

Result<std::unique_ptr<WriteTxn>> KvStore::Write() {
  bool expected = false;
  if (!writer_active_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    return Status(Code::kFailedPrecondition, "another WriteTxn is active");
  }
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_->get(), nullptr, 0, &txn);
  if (rc != 0) {
    writer_active_.store(false, std::memory_order_release);
    return LmdbError(rc, "begin write txn");
  }
  std::unique_ptr<WriteTxn> w(new WriteTxn(this, txn));
  // Freed by LMDB when the transaction ends.
  rc = mdb_cursor_open(txn, dbis_.key, &w->key_cursor_);
  if (rc == 0) rc = mdb_cursor_open(txn, dbis_.rev, &w->rev_cursor_);
  if (rc != 0) return LmdbError(rc, "open cursor");
  ETCDPP_RETURN_IF_ERROR(w->LoadState());
  auto load = [&](std::string_view name, int64_t* out) -> Status {
    auto v = Table(txn, dbis_.meta).Get(name);
    if (!v.ok()) return v.status();
    if (v->has_value() && (*v)->size() == 8) *out = GetBigEndian64((*v)->data());
    return Status::OK();
  };
  ETCDPP_RETURN_IF_ERROR(load(kMetaScheduledCompact, &w->scheduled_compact_));
  ETCDPP_RETURN_IF_ERROR(load(kMetaFinishedCompact, &w->finished_compact_));
  ETCDPP_RETURN_IF_ERROR(load(kMetaFinishedCompactSub, &w->finished_compact_sub_));
  auto partial = Table(txn, dbis_.meta).Get(kMetaPartialDelete);
  if (!partial.ok()) return partial.status();
  w->unfinished_delete_ = partial->has_value();
  return w;
}

Status KvStore::Sync() { return env_->Sync(); }

Status KvStore::CopyToFd(int fd) const {
  // LMDB's copy reads the whole store through the map on a thread of its
  // own, where no cursor of ours counts steps: a watcher bounds the mapped
  // pages meanwhile (a copy reads a few hundred MiB a second here, so at
  // most a few MiB go past the bound between two looks).
  std::mutex mu;
  std::condition_variable copied_cv;
  bool copied = false;
  std::thread watcher([&] {
    std::unique_lock lock(mu);
    while (!copied_cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return copied; })) {
      env_->BoundMappedPages();
    }
  });
  int rc = mdb_env_copyfd2(env_->get(), fd, MDB_CP_COMPACT);
  {
    std::lock_guard lock(mu);
    copied = true;
  }
  copied_cv.notify_one();
  watcher.join();
  env_->ReleaseAfterWholeRead();
  return rc == 0 ? Status::OK() : LmdbError(rc, "copy environment");
}

Status KvStore::CopyToFile(const std::string& path) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("create " + path + ": " + std::strerror(errno));
  Status s = CopyToFd(fd);
  if (s.ok() && ::fsync(fd) != 0)
    s = Status::IOError("fsync " + path + ": " + std::strerror(errno));
  if (::close(fd) != 0 && s.ok())
    s = Status::IOError("close " + path + ": " + std::strerror(errno));
  return s;
}

Result<TablesDigest> KvStore::HashBackend() const {
  std::vector<NamedTable> tables = {{std::string(kKeyTable), dbis_.key},
                                    {std::string(kLiveTable), dbis_.live},
                                    {std::string(kMetaTable), dbis_.meta},
                                    {std::string(kRevTable), dbis_.rev}};
  {
    std::shared_lock lock(tables_mu_);
    for (const auto& [name, dbi] : tables_) tables.push_back({name, dbi});
  }
  std::sort(tables.begin(), tables.end(),
            [](const NamedTable& a, const NamedTable& b) { return a.name < b.name; });
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "begin read txn");
  ReadSnapshotBegun(this);
  auto hash = HashTables(txn, tables, [](std::string_view table, std::string_view key) {
    return table == kMetaTable && (key == kMetaConsistentIndex || key == kMetaFinishedCompact ||
                                   key == kMetaFinishedCompactSub);
  });
  ReadSnapshotEnding(readers_.get());
  mdb_txn_abort(txn);
  return hash;
}

std::optional<MDB_dbi> KvStore::FindTable(std::string_view name) const {
  std::shared_lock lock(tables_mu_);
  auto it = tables_.find(name);
  if (it == tables_.end()) return std::nullopt;
  return it->second;
}

void KvStore::PublishTables(const std::map<std::string, MDB_dbi, std::less<>>& tables) {
  if (tables.empty()) return;
  std::unique_lock lock(tables_mu_);
  tables_.insert(tables.begin(), tables.end());
}

}  // namespace etcdpp::mvcc
