#include "mvcc/key_space_hash.h"

#include <algorithm>

#include "base/crc32c.h"
#include "mvcc/escaped_key_codec.h"
#include "mvcc/key_record.h"

namespace etcdpp::mvcc {
namespace {

uint32_t Extend(uint32_t crc, std::string_view bytes) {
  return crc32c::Extend(crc, bytes.data(), bytes.size());
}

}  // namespace

KeySpaceHash::KeySpaceHash() : crc_(Extend(0, "key")) {}

void KeySpaceHash::Add(std::string_view user_key, Revision rev, std::string_view header,
                       std::string_view value) {
  table_key_.clear();
  escaped::AppendKeySlot(user_key, &table_key_);
  const bool long_key = escaped::IsLongSlot(table_key_);
  if (long_key) {
    std::string_view bucket = escaped::BucketOf(table_key_);
    if (bucket != bucket_) {
      FlushBucket();
      bucket_.assign(bucket);
    }
  } else {
    FlushBucket();
  }
  AppendInvertedRevision(rev, &table_key_);
  if (!long_key) {
    crc_ = Extend(crc_, table_key_);
    crc_ = Extend(crc_, header);
    const bool tombstone = !header.empty() && (static_cast<uint8_t>(header[0]) & kTombstoneFlag);
    if (!tombstone) crc_ = Extend(crc_, value);
    return;
  }
  Pending p{table_key_, std::string(header)};
  char length[kLongKeyLengthBytes];
  PutLongKeyLength(static_cast<uint32_t>(user_key.size()), length);
  p.hashed.append(length, kLongKeyLengthBytes);
  p.hashed.append(user_key);
  p.hashed.append(value);
  pending_.push_back(std::move(p));
}

void KeySpaceHash::FlushBucket() {
  std::sort(pending_.begin(), pending_.end(),
            [](const Pending& a, const Pending& b) { return a.table_key < b.table_key; });
  for (const Pending& p : pending_) {
    crc_ = Extend(crc_, p.table_key);
    crc_ = Extend(crc_, p.hashed);
  }
  pending_.clear();
  bucket_.clear();
}

uint32_t KeySpaceHash::Finish() {
  FlushBucket();
  return crc_;
}

}  // namespace etcdpp::mvcc
