// Order-preserving layout of user keys in the `key` and `live` tables (key
// layout 5; the escape of layouts 1-4 is in escaped_key_codec.h).
//
// LMDB keys are at most 511 bytes, but etcd accepts keys of any bytes and any
// length up to the request limit. Every record of a user key k lives under
// its *slot*, the table key prefix shared by all its records:
//
//   table key = slot(k) || ~main || ~sub          (see revision.h)
//
// E(k), the encoding: bytes other than 0x00 stand for themselves; a maximal
// run of n zero bytes becomes 0x00 and a code byte saying how the run ends:
//
//   code        run of n zeros                        n
//   01          (none: the key ends here, n = 0)
//   02 - 7E     ends the key                          code - 1   (1-125)
//   7F          is 125 zeros and goes on; the rest of the run follows,
//               coded again
//   80 - FC     is followed by a non-zero byte        0xFD - code (125-1)
//
// and a key that does not end in zeros ends with 00 01. E keeps byte order
// (a < b iff E(a) < E(b)): among runs that end the key, longer sorts later;
// among runs followed by a byte, longer sorts earlier (it has a 0x00 where a
// shorter one has its byte); a run ending the key sorts before one followed
// by a byte (a prefix, or 0x00 against a byte), and 7F sits between both
// groups as a run of more than 125 zeros must. E is prefix-free: it ends with
// 0x00 and a code in 01-7E, which no other position of any encoding holds.
//
//   inline key  (|E(k)| <= kMaxInlineSlotBytes):  slot(k) = E(k)
//   long key    (otherwise):  slot(k) = E(k)[0, kMaxInlineSlotBytes) || H(k),
//               H = the first 16 bytes of SHA-256(k); its `rev` records hold k.
//
// The slot's length tells the two kinds apart (a long slot is 495 bytes).
// All long keys sharing the first kMaxInlineSlotBytes bytes of E form the
// *bucket* of those bytes: contiguous in the table, ordered by hash inside.
// Table order equals byte-wise user key order except inside a bucket
// (readers sort a bucket by its keys): for an inline key j and a long key k,
// E(j) is no prefix of k's bucket (it would be one of E(k)) and the bucket
// is no prefix of E(j) (they would be equal, E(j) a prefix of E(k)), so the
// two differ at a byte inside both, which decides both orders; two long keys
// in different buckets differ inside their buckets the same way.
//
// Examples: "a" -> 61 00 01; "a\0" -> 61 00 02; "\0b" -> 00 FC 62 00 01;
// "" -> 00 01; 256 zero bytes -> 00 7F 00 7F 00 07.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "mvcc/revision.h"

namespace etcdpp::mvcc {

// Smallest slot: the empty user key is 0x00 0x01.
inline constexpr size_t kMinSlotBytes = 2;
// LMDB's key size limit (MDB_MAXKEYSIZE of the default build).
inline constexpr size_t kMaxTableKeyBytes = 511;
// Bytes of SHA-256 kept in a long key's slot.
inline constexpr size_t kKeyHashBytes = 16;
// Longest inline slot, and the length of a bucket.
inline constexpr size_t kMaxInlineSlotBytes =
    kMaxTableKeyBytes - kRevisionBytes - kKeyHashBytes;  // 479
inline constexpr size_t kLongSlotBytes = kMaxInlineSlotBytes + kKeyHashBytes;

// |E(k)|.
size_t EncodedSize(std::string_view user_key);
inline bool IsInlineKey(std::string_view user_key) {
  return EncodedSize(user_key) <= kMaxInlineSlotBytes;
}
inline bool IsLongSlot(std::string_view slot) { return slot.size() > kMaxInlineSlotBytes; }

// Appends E(user_key), the inline slot.
void AppendEncodedUserKey(std::string_view user_key, std::string* out);
std::string EncodeUserKey(std::string_view user_key);
// Decodes E(k) into *out; false if `encoded` is not an encoding E gives.
bool DecodeUserKey(std::string_view encoded, std::string* out);
// The user key of an inline slot without zero bytes (E(k) = k 00 01), no
// copy; false otherwise.
bool PlainUserKey(std::string_view encoded, std::string_view* user_key);

std::array<char, kKeyHashBytes> KeyHash(std::string_view user_key);

// Appends slot(user_key).
void AppendKeySlot(std::string_view user_key, std::string* out);
// Appends the table position where the records of user_key and of every
// greater key start, ignoring buckets' inner order: slot(k) for an inline
// key, its bucket for a long one. For any table key K of another user key j
// (not in k's bucket), K < position(k) iff j < k.
void AppendKeyPosition(std::string_view user_key, std::string* out);
// The bucket of a long slot (slot minus its hash).
inline std::string_view BucketOf(std::string_view long_slot) {
  return long_slot.substr(0, kMaxInlineSlotBytes);
}

// slot(user_key) || ~rev.
std::string MakeKeyTableKey(std::string_view user_key, Revision rev);

// Splits a `key` table key into its slot and revision. Returns false if it is
// too short to hold both.
bool SplitKeyTableKey(std::string_view table_key, std::string_view* slot, Revision* rev);

}  // namespace etcdpp::mvcc
