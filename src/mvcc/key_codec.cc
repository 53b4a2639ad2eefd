#include "mvcc/key_codec.h"

#include <cstring>

namespace etcdpp::mvcc {

size_t EncodedUserKeySize(std::string_view user_key) {
  size_t zeros = 0;
  for (char c : user_key) zeros += (c == kEscapeByte);
  return user_key.size() + zeros + 2;
}

void AppendEncodedUserKey(std::string_view user_key, std::string* out) {
  const char* p = user_key.data();
  const char* end = p + user_key.size();
  while (p < end) {
    const void* zero = std::memchr(p, 0, end - p);
    const char* stop = zero ? static_cast<const char*>(zero) : end;
    out->append(p, stop - p);
    if (stop == end) break;
    out->push_back(kEscapeByte);
    out->push_back(kEscapedZero);
    p = stop + 1;
  }
  out->push_back(kEscapeByte);
  out->push_back(kTerminator);
}

std::string EncodeUserKey(std::string_view user_key) {
  std::string out;
  out.reserve(EncodedUserKeySize(user_key));
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
  if (encoded.size() < kMinEncodedKeyBytes) return false;
  std::string_view body = encoded.substr(0, encoded.size() - 2);
  if (std::memchr(body.data(), 0, body.size()) != nullptr) return false;
  *user_key = body;
  return true;
}

std::string MakeKeyTableKey(std::string_view user_key, Revision rev) {
  std::string out;
  out.reserve(EncodedUserKeySize(user_key) + kRevisionBytes);
  AppendEncodedUserKey(user_key, &out);
  char suffix[kRevisionBytes];
  EncodeInvertedRevision(rev, suffix);
  out.append(suffix, kRevisionBytes);
  return out;
}

bool SplitKeyTableKey(std::string_view table_key, std::string_view* encoded_user_key,
                      Revision* rev) {
  if (table_key.size() < kMinEncodedKeyBytes + kRevisionBytes) return false;
  size_t n = table_key.size() - kRevisionBytes;
  *encoded_user_key = table_key.substr(0, n);
  *rev = DecodeInvertedRevision(table_key.data() + n);
  return true;
}

}  // namespace etcdpp::mvcc
