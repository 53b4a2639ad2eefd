#include "mvcc/escaped_key_codec.h"

#include <algorithm>
#include <cstring>

namespace etcdpp::mvcc::escaped {
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
    out->push_back('\0');
    out->push_back(kEscapedZero);
    room -= 2;
    ++p;
  }
  return p - begin;
}

}  // namespace

size_t EscapedSize(std::string_view user_key) {
  return user_key.size() + std::count(user_key.begin(), user_key.end(), '\0');
}

std::string EncodeUserKey(std::string_view user_key) {
  std::string out;
  out.reserve(EscapedSize(user_key) + 2);
  AppendEscaped(user_key, std::string::npos, &out);
  out.push_back('\0');
  out.push_back(kTerminator);
  return out;
}

bool DecodeUserKey(std::string_view slot, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < slot.size()) {
    const char c = slot[i];
    if (c != '\0') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= slot.size()) return false;
    const char next = slot[i + 1];
    if (next == kTerminator) return i + 2 == slot.size();
    if (next != kEscapedZero) return false;
    out->push_back('\0');
    i += 2;
  }
  return false;  // No terminator.
}

void AppendKeySlot(std::string_view user_key, std::string* out) {
  const size_t consumed = AppendEscaped(user_key, kMaxEscapedBodyBytes, out);
  out->push_back('\0');
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
  AppendInvertedRevision(rev, &out);
  return out;
}

}  // namespace etcdpp::mvcc::escaped
