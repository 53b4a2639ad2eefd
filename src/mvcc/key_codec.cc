#include "mvcc/key_codec.h"

#include <openssl/sha.h>

#include <cstring>

namespace etcdpp::mvcc {
namespace {

// Appends esc(k) for the longest prefix k of `user_key` with |esc(k)| <=
// max_escaped; returns the number of user key bytes consumed.
size_t AppendEscaped(std::string_view user_key, size_t max_escaped, std::string* out) {
  const char* begin = user_key.data();
  const char* p = begin;
  const char* end = p + user_key.size();
  size_t room = max_escaped;
  while (p < end && room > 0) {
    const size_t span = std::min<size_t>(end - p, room);
    const void* zero = std::memchr(p, 0, span);
    const char* stop = zero ? static_cast<const char*>(zero) : p + span;
    out->append(p, stop - p);
    room -= stop - p;
    p = stop;
    if (zero == nullptr) break;
    if (room < 2) break;  // An escaped 0x00 does not fit.
    out->push_back(kEscapeByte);
    out->push_back(kEscapedZero);
    room -= 2;
    ++p;
  }
  return p - begin;
}

}  // namespace

size_t EscapedSize(std::string_view user_key) {
  size_t zeros = 0;
  const char* p = user_key.data();
  const char* end = p + user_key.size();
  while (p < end) {
    const void* zero = std::memchr(p, 0, end - p);
    if (zero == nullptr) break;
    ++zeros;
    p = static_cast<const char*>(zero) + 1;
  }
  return user_key.size() + zeros;
}

void AppendEncodedUserKey(std::string_view user_key, std::string* out) {
  AppendEscaped(user_key, std::string::npos, out);
  out->push_back(kEscapeByte);
  out->push_back(kTerminator);
}

std::string EncodeUserKey(std::string_view user_key) {
  std::string out;
  out.reserve(EscapedSize(user_key) + 2);
  AppendEncodedUserKey(user_key, &out);
  return out;
}

bool DecodeUserKey(std::string_view encoded, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < encoded.size()) {
    char c = encoded[i];
    if (c != kEscapeByte) {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= encoded.size()) return false;
    char next = encoded[i + 1];
    if (next == kTerminator) return i + 2 == encoded.size();
    if (next != kEscapedZero) return false;
    out->push_back(kEscapeByte);
    i += 2;
  }
  return false;  // No terminator.
}

bool UnescapedUserKey(std::string_view encoded, std::string_view* user_key) {
  if (encoded.size() < kMinSlotBytes) return false;
  std::string_view body = encoded.substr(0, encoded.size() - 2);
  if (std::memchr(body.data(), 0, body.size()) != nullptr) return false;
  *user_key = body;
  return true;
}

std::array<char, kKeyHashBytes> KeyHash(std::string_view user_key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(user_key.data()), user_key.size(), digest);
  std::array<char, kKeyHashBytes> out;
  std::memcpy(out.data(), digest, kKeyHashBytes);
  return out;
}

void AppendKeyPosition(std::string_view user_key, std::string* out) {
  const size_t consumed = AppendEscaped(user_key, kMaxEscapedBodyBytes, out);
  out->push_back(kEscapeByte);
  out->push_back(consumed == user_key.size() ? kTerminator : kLongKeyMarker);
}

void AppendKeySlot(std::string_view user_key, std::string* out) {
  const size_t consumed = AppendEscaped(user_key, kMaxEscapedBodyBytes, out);
  out->push_back(kEscapeByte);
  if (consumed == user_key.size()) {
    out->push_back(kTerminator);
    return;
  }
  out->push_back(kLongKeyMarker);
  const auto hash = KeyHash(user_key);
  out->append(hash.data(), hash.size());
}

std::string MakeKeyTableKey(std::string_view user_key, Revision rev) {
  std::string out;
  out.reserve(kMaxTableKeyBytes);
  AppendKeySlot(user_key, &out);
  char suffix[kRevisionBytes];
  EncodeInvertedRevision(rev, suffix);
  out.append(suffix, kRevisionBytes);
  return out;
}

bool SplitKeyTableKey(std::string_view table_key, std::string_view* slot, Revision* rev) {
  if (table_key.size() < kMinSlotBytes + kRevisionBytes) return false;
  size_t n = table_key.size() - kRevisionBytes;
  *slot = table_key.substr(0, n);
  *rev = DecodeInvertedRevision(table_key.data() + n);
  return true;
}

}  // namespace etcdpp::mvcc
