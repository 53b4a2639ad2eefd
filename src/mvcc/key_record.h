// The records of the `key` and `rev` tables (key layout 4, docs/mvcc.md).
//
// `key` table value, one per (user key, revision), exactly the header:
//
//   offset  size  field
//   0       1     flags: bit 0 = tombstone (the key was deleted at this revision)
//   1       8     create_revision, big-endian (0 for a tombstone)
//   9       8     version, big-endian (0 for a tombstone)
//   17      8     lease id, big-endian two's complement (0 = none)
//
// `rev` table value, one per revision: the same header, then the user key
// and the value (empty for a tombstone):
//
//   25      4     user key length, big-endian
//   29      m     user key bytes
//   29+m    n     value bytes
//
// Values live in `rev` because its keys only grow: a commit's records fill
// its last pages in order, where a value in `key` would dirty a leaf page
// per written key wherever the key sorts. `key` keeps what reads without
// values need (counts, keys_only, a put's previous version) and what
// compaction and the change log check (the tombstone flag).
//
// mod_revision is not stored: it is the revision in the record's key.
//
// Layout 3 (upgraded by KvStore::Open) kept the value in the `key` record
// after the header, preceded under a long key's slot by the user key's
// length and bytes; its `rev` value was flags || user key.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "mvcc/revision.h"

namespace etcdpp::mvcc {

inline constexpr uint8_t kTombstoneFlag = 0x01;
inline constexpr size_t kKeyRecordHeaderBytes = 25;

struct KeyRecordHeader {
  uint8_t flags = 0;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;

  bool tombstone() const { return (flags & kTombstoneFlag) != 0; }
};

inline void EncodeKeyRecordHeader(const KeyRecordHeader& h, char out[kKeyRecordHeaderBytes]) {
  out[0] = static_cast<char>(h.flags);
  PutBigEndian64(static_cast<uint64_t>(h.create_revision), out + 1);
  PutBigEndian64(static_cast<uint64_t>(h.version), out + 9);
  PutBigEndian64(static_cast<uint64_t>(h.lease), out + 17);
}

// Returns false if `record` is too short to be a key record.
inline bool DecodeKeyRecord(std::string_view record, KeyRecordHeader* h, std::string_view* value) {
  if (record.size() < kKeyRecordHeaderBytes) return false;
  const char* p = record.data();
  h->flags = static_cast<uint8_t>(p[0]);
  h->create_revision = static_cast<int64_t>(GetBigEndian64(p + 1));
  h->version = static_cast<int64_t>(GetBigEndian64(p + 9));
  h->lease = static_cast<int64_t>(GetBigEndian64(p + 17));
  *value = record.substr(kKeyRecordHeaderBytes);
  return true;
}

inline constexpr size_t kLongKeyLengthBytes = 4;

// Splits `body` = user key length || user key || value (the tail of a `rev`
// record, or of a layout 3 long key's `key` record). Returns false if the
// lengths do not add up.
inline bool SplitLongKeyBody(std::string_view body, std::string_view* user_key,
                             std::string_view* value) {
  if (body.size() < kLongKeyLengthBytes) return false;
  uint32_t n = 0;
  for (size_t i = 0; i < kLongKeyLengthBytes; ++i) {
    n = (n << 8) | static_cast<unsigned char>(body[i]);
  }
  if (body.size() - kLongKeyLengthBytes < n) return false;
  *user_key = body.substr(kLongKeyLengthBytes, n);
  *value = body.substr(kLongKeyLengthBytes + n);
  return true;
}

inline void PutLongKeyLength(uint32_t n, char out[kLongKeyLengthBytes]) {
  for (int i = 3; i >= 0; --i) {
    out[i] = static_cast<char>(n & 0xff);
    n >>= 8;
  }
}

// `rev` record size for a user key of `key_bytes` and a value of `value_bytes`.
inline constexpr size_t RevRecordBytes(size_t key_bytes, size_t value_bytes) {
  return kKeyRecordHeaderBytes + kLongKeyLengthBytes + key_bytes + value_bytes;
}

// Fills `out` (RevRecordBytes(key.size(), value.size()) bytes).
inline void EncodeRevRecord(const KeyRecordHeader& h, std::string_view key, std::string_view value,
                            char* out) {
  EncodeKeyRecordHeader(h, out);
  out += kKeyRecordHeaderBytes;
  PutLongKeyLength(static_cast<uint32_t>(key.size()), out);
  out += kLongKeyLengthBytes;
  if (!key.empty()) std::memcpy(out, key.data(), key.size());
  if (!value.empty()) std::memcpy(out + key.size(), value.data(), value.size());
}

// Returns false if `record` is not a `rev` record.
inline bool DecodeRevRecord(std::string_view record, KeyRecordHeader* h, std::string_view* user_key,
                            std::string_view* value) {
  std::string_view body;
  return DecodeKeyRecord(record, h, &body) && SplitLongKeyBody(body, user_key, value);
}

// One `key` table entry, decoded. Views point into the tables (or a caller's
// buffer for an inline key with 0x00 bytes); `value` is set only when the
// decoder was asked for it.
struct KeyEntry {
  std::string_view slot;  // key_codec.h
  Revision rev;
  KeyRecordHeader header;
  std::string_view user_key;
  std::string_view value;
};

}  // namespace etcdpp::mvcc
