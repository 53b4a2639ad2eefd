// The value stored in the `key` table for one (user key, revision):
//
//   offset  size  field
//   0       1     flags: bit 0 = tombstone (the key was deleted at this revision)
//   1       8     create_revision, big-endian (0 for a tombstone)
//   9       8     version, big-endian (0 for a tombstone)
//   17      8     lease id, big-endian two's complement (0 = none)
//   25      n     value bytes (empty for a tombstone)
//
// A record under a long key's slot (key_codec.h) holds the user key first:
//
//   25      4     user key length, big-endian
//   29      m     user key bytes
//   29+m    n     value bytes
//
// mod_revision is not stored: it is the revision in the record's key.
#pragma once

#include <cstdint>
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

// Splits the body after the header of a long key's record into the user key
// and the value. Returns false if the lengths do not add up.
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

// One `key` table entry, decoded. Views point into the table (or a caller's
// buffer for an inline key with 0x00 bytes).
struct KeyEntry {
  std::string_view slot;  // key_codec.h
  Revision rev;
  KeyRecordHeader header;
  std::string_view user_key;
  std::string_view value;
};

// `rev` table value: flags (as above) || user key (raw bytes).
inline constexpr size_t kRevRecordHeaderBytes = 1;

}  // namespace etcdpp::mvcc
