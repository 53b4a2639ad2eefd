// Order-preserving encoding of user keys for the `key` table.
//
// A `key` table key is  encode(user_key) || ~main || ~sub  (see revision.h).
// encode() must keep byte-wise order of arbitrary user keys AND be
// prefix-free, so that all records of one user key are contiguous and the
// revision suffix never influences the order between two different user keys:
//
//   encode(k) = k with every 0x00 replaced by 0x00 0xFF, followed by 0x00 0x01
//
// Why it is order preserving: compare user keys a < b.
//  * a is a proper prefix of b: at the end of a, encode(a) has 0x00 0x01 while
//    encode(b) has either a byte x >= 0x01 (x != 0) or 0x00 0xFF; both sort
//    after 0x00 0x01.
//  * a and b first differ at byte i with a[i] < b[i]: if a[i] == 0x00 then
//    encode(a) has 0x00 there and encode(b) has b[i] > 0x00; otherwise the
//    bytes are copied unchanged.
// Why it is prefix-free: inside an encoding 0x00 is always followed by 0xFF,
// so the terminator 0x00 0x01 occurs only at the end.
//
// Consequently, for key table keys K1 = encode(a)||s1 and K2 = encode(b)||s2
// with a != b, memcmp order of K1 and K2 equals the order of a and b; and for
// any bound e, K1 < encode(e) iff a < e.
#pragma once

#include <string>
#include <string_view>

#include "mvcc/revision.h"

namespace etcdpp::mvcc {

inline constexpr char kEscapeByte = '\x00';
inline constexpr char kEscapedZero = '\xff';
inline constexpr char kTerminator = '\x01';
// Smallest encoded key: the empty user key is encoded as 0x00 0x01.
inline constexpr size_t kMinEncodedKeyBytes = 2;
// LMDB's key size limit (MDB_MAXKEYSIZE of the default build).
inline constexpr size_t kMaxTableKeyBytes = 511;

// Appends encode(user_key) to *out.
void AppendEncodedUserKey(std::string_view user_key, std::string* out);
std::string EncodeUserKey(std::string_view user_key);
// Size of encode(user_key) without building it.
size_t EncodedUserKeySize(std::string_view user_key);

// Whether `user_key` can be stored: its `key` table key (encoding plus a
// 16-byte revision) must fit LMDB's key size limit. Plain keys up to 493
// bytes always fit; each 0x00 byte costs one more.
inline bool UserKeyFits(std::string_view user_key) {
  return EncodedUserKeySize(user_key) + kRevisionBytes <= kMaxTableKeyBytes;
}

// Decodes encode(k) (terminator included) into *out. Returns false if
// `encoded` is not a valid encoding.
bool DecodeUserKey(std::string_view encoded, std::string* out);

// The user key bytes of `encoded` when it contains no escaped 0x00, so the
// caller can use them without copying; nullopt-like empty result is signalled
// by returning false.
bool UnescapedUserKey(std::string_view encoded, std::string_view* user_key);

// encode(user_key) || ~rev.
std::string MakeKeyTableKey(std::string_view user_key, Revision rev);

// Splits a `key` table key into encode(user_key) and its revision. Returns
// false if it is too short to hold both.
bool SplitKeyTableKey(std::string_view table_key, std::string_view* encoded_user_key,
                      Revision* rev);

}  // namespace etcdpp::mvcc
