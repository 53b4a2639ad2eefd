// Order-preserving layout of user keys in the `key` table.
//
// LMDB keys are at most 511 bytes, but etcd accepts keys of any bytes and any
// length up to the request limit. Every record of a user key k lives under
// its *slot*, the table key prefix shared by all its records:
//
//   table key = slot(k) || ~main || ~sub          (see revision.h)
//
//   esc(k)  = k with every 0x00 replaced by 0x00 0xFF
//   inline key  (|esc(k)| <= kMaxEscapedBodyBytes):
//               slot(k) = esc(k) 0x00 0x01               (at most 479 bytes)
//   long key    (|esc(k)| >  kMaxEscapedBodyBytes):
//               slot(k) = esc(p) 0x00 0x02 H(k)          (at least 494 bytes)
//               p = the longest prefix of k with |esc(p)| <= kMaxEscapedBodyBytes,
//               H = the first 16 bytes of SHA-256(k); the record holds k.
//
// The slot's length tells the two kinds apart. All long keys sharing p form
// the *bucket* esc(p) 0x00 0x02: contiguous in the table, ordered by hash
// inside. Table order equals byte-wise user key order except inside a bucket
// (readers sort a bucket by its keys):
//  * two inline keys: esc is order preserving (a proper prefix ends with
//    0x00 0x01, below the next byte x >= 0x01 or the 0x00 0xFF of the longer
//    key; at a first differing byte the bytes, or 0x00 against x > 0x00,
//    decide) and the terminator makes slots prefix-free;
//  * an inline key a and a long key b with bucket p: if a and p differ inside
//    both, that byte decides in both orders; if a is p or a prefix of p, a
//    sorts first in both; if p is a proper prefix of a, let x and y be the
//    bytes after p in a and b: a is inline so |esc(p)| + |esc(x)| <= limit,
//    p is maximal for b so |esc(p)| + |esc(y)| > limit, hence x != 0 and
//    y == 0: a > b, and the table agrees (x > 0x00 0x02);
//  * two long keys in different buckets: the same argument with a's bucket
//    as p.
// The same limit must bound inline keys and bucket prefixes, or a short key
// p||x could sit after the bucket of p||y with x < y.
//
// Examples: "a" -> 61 00 01; "a\0" -> 61 00 FF 00 01; "" -> 00 01.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "mvcc/revision.h"

namespace etcdpp::mvcc {

inline constexpr char kEscapeByte = '\x00';
inline constexpr char kEscapedZero = '\xff';
inline constexpr char kTerminator = '\x01';
inline constexpr char kLongKeyMarker = '\x02';
// Smallest slot: the empty user key is 0x00 0x01.
inline constexpr size_t kMinSlotBytes = 2;
// LMDB's key size limit (MDB_MAXKEYSIZE of the default build).
inline constexpr size_t kMaxTableKeyBytes = 511;
// Bytes of SHA-256 kept in a long key's slot.
inline constexpr size_t kKeyHashBytes = 16;
// Longest escaped body of an inline key, and of a bucket prefix.
inline constexpr size_t kMaxEscapedBodyBytes =
    kMaxTableKeyBytes - kRevisionBytes - kKeyHashBytes - 2;  // 477
inline constexpr size_t kMaxInlineSlotBytes = kMaxEscapedBodyBytes + 2;
// The format before long keys: inline keys up to 493 escaped bytes, no
// buckets (docs/mvcc.md, "Key layout versions").
inline constexpr size_t kV1MaxSlotBytes = kMaxTableKeyBytes - kRevisionBytes;

// |esc(k)|.
size_t EscapedSize(std::string_view user_key);
inline bool IsInlineKey(std::string_view user_key) {
  return EscapedSize(user_key) <= kMaxEscapedBodyBytes;
}
inline bool IsLongSlot(std::string_view slot) { return slot.size() > kMaxInlineSlotBytes; }

// Appends esc(user_key) 0x00 0x01 (the inline slot, also the v1 encoding).
void AppendEncodedUserKey(std::string_view user_key, std::string* out);
std::string EncodeUserKey(std::string_view user_key);
// Decodes an inline slot into *out; false if it is not one.
bool DecodeUserKey(std::string_view encoded, std::string* out);
// The user key bytes of an inline slot without escaped 0x00 (no copy);
// false otherwise.
bool UnescapedUserKey(std::string_view encoded, std::string_view* user_key);

std::array<char, kKeyHashBytes> KeyHash(std::string_view user_key);

// Appends slot(user_key).
void AppendKeySlot(std::string_view user_key, std::string* out);
// Appends the table position where the records of user_key and of every
// greater key start, ignoring buckets' inner order: slot(k) for an inline
// key, its bucket esc(p) 0x00 0x02 for a long one. For any table key K of
// another user key j (not in k's bucket), K < position(k) iff j < k.
void AppendKeyPosition(std::string_view user_key, std::string* out);
// The bucket of a long slot (slot minus its hash).
inline std::string_view BucketOf(std::string_view long_slot) {
  return long_slot.substr(0, long_slot.size() - kKeyHashBytes);
}

// slot(user_key) || ~rev.
std::string MakeKeyTableKey(std::string_view user_key, Revision rev);

// Splits a `key` table key into its slot and revision. Returns false if it is
// too short to hold both.
bool SplitKeyTableKey(std::string_view table_key, std::string_view* slot, Revision* rev);

}  // namespace etcdpp::mvcc
