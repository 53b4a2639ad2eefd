// The slots of key layouts 1 to 4, read by KvStore::Open's upgrade and by
// HashKV, whose definition keeps layout 4's order and bytes so that members
// on different layouts agree (docs/mvcc.md, "Key layout versions").
//
//   esc(k)  = k with every 0x00 replaced by 0x00 0xFF
//   inline key  (|esc(k)| <= kMaxEscapedBodyBytes):
//               slot(k) = esc(k) 0x00 0x01               (at most 479 bytes)
//   long key    (|esc(k)| >  kMaxEscapedBodyBytes):
//               slot(k) = esc(p) 0x00 0x02 H(k)          (494 or 495 bytes)
//               p = the longest prefix of k with |esc(p)| <= kMaxEscapedBodyBytes,
//               H = KeyHash(k).
//
// Layout 1 had no long keys: every slot was esc(k) 0x00 0x01, up to
// kV1MaxSlotBytes. All long keys sharing p form the bucket esc(p) 0x00 0x02,
// ordered by hash inside; outside buckets table order is user key order (the
// same limit bounds inline keys and bucket prefixes, so no inline key p||x
// sits between two keys of the bucket of p).
#pragma once

#include <string>
#include <string_view>

#include "mvcc/key_codec.h"
#include "mvcc/revision.h"

namespace etcdpp::mvcc::escaped {

inline constexpr char kEscapedZero = '\xff';
inline constexpr char kTerminator = '\x01';
inline constexpr char kLongKeyMarker = '\x02';
// Longest escaped body of an inline key, and of a bucket prefix.
inline constexpr size_t kMaxEscapedBodyBytes =
    kMaxTableKeyBytes - kRevisionBytes - kKeyHashBytes - 2;  // 477
inline constexpr size_t kMaxInlineSlotBytes = kMaxEscapedBodyBytes + 2;
// Layout 1's limit: inline keys up to 493 escaped bytes, no buckets.
inline constexpr size_t kV1MaxSlotBytes = kMaxTableKeyBytes - kRevisionBytes;

// |esc(k)|.
size_t EscapedSize(std::string_view user_key);
inline bool IsLongSlot(std::string_view slot) { return slot.size() > kMaxInlineSlotBytes; }

// esc(user_key) 0x00 0x01: an inline slot, and every slot of layout 1.
std::string EncodeUserKey(std::string_view user_key);
// Decodes esc(k) 0x00 0x01 into *out; false if `slot` is not one.
bool DecodeUserKey(std::string_view slot, std::string* out);

// Appends slot(user_key).
void AppendKeySlot(std::string_view user_key, std::string* out);
// The bucket of a long slot (slot minus its hash).
inline std::string_view BucketOf(std::string_view long_slot) {
  return long_slot.substr(0, long_slot.size() - kKeyHashBytes);
}
// slot(user_key) || ~rev.
std::string MakeKeyTableKey(std::string_view user_key, Revision rev);

}  // namespace etcdpp::mvcc::escaped
