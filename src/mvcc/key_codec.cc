#include "mvcc/key_codec.h"

#include <openssl/sha.h>

#include <cstring>

namespace etcdpp::mvcc {
namespace {

// Code bytes after a 0x00 (key_codec.h).
constexpr uint8_t kEndCode = 0x01;
constexpr uint8_t kRunLongerCode = 0x7f;
constexpr size_t kMaxRunPerCode = 125;
constexpr uint8_t RunEndsKeyCode(size_t n) { return static_cast<uint8_t>(1 + n); }
constexpr uint8_t RunBeforeByteCode(size_t n) { return static_cast<uint8_t>(0xfd - n); }

size_t ZeroRunLength(const char* p, const char* end) {
  const char* q = p;
  while (q < end && *q == '\0') ++q;
  return q - p;
}

// Appends E(user_key) and returns true, or returns false once more than
// `limit` bytes are appended (then at least limit + 1 bytes are).
bool AppendEncoded(std::string_view user_key, size_t limit, std::string* out) {
  const size_t start = out->size();
  auto over = [&] { return out->size() - start > limit; };
  const char* p = user_key.data();
  const char* const end = p + user_key.size();
  for (;;) {
    const size_t used = out->size() - start;
    const size_t room = limit == std::string::npos ? std::string::npos : limit - used + 1;
    const size_t span = std::min<size_t>(end - p, room);
    const void* zero = std::memchr(p, 0, span);
    const char* stop = zero ? static_cast<const char*>(zero) : p + span;
    out->append(p, stop - p);
    p = stop;
    if (zero == nullptr) {
      if (p != end) return false;  // limit + 1 bytes appended.
      out->push_back('\0');
      out->push_back(static_cast<char>(kEndCode));
      return !over();
    }
    size_t n = ZeroRunLength(p, end);
    p += n;
    const bool ends_key = p == end;
    for (; n > kMaxRunPerCode; n -= kMaxRunPerCode) {
      out->push_back('\0');
      out->push_back(static_cast<char>(kRunLongerCode));
      if (over()) return false;
    }
    out->push_back('\0');
    out->push_back(static_cast<char>(ends_key ? RunEndsKeyCode(n) : RunBeforeByteCode(n)));
    if (over()) return false;
    if (ends_key) return true;
  }
}

}  // namespace

size_t EncodedSize(std::string_view user_key) {
  size_t size = 0;
  const char* p = user_key.data();
  const char* const end = p + user_key.size();
  while (p < end) {
    const void* zero = std::memchr(p, 0, end - p);
    if (zero == nullptr) return size + (end - p) + 2;
    size += static_cast<const char*>(zero) - p;
    p = static_cast<const char*>(zero);
    const size_t n = ZeroRunLength(p, end);
    p += n;
    size += 2 * ((n + kMaxRunPerCode - 1) / kMaxRunPerCode);
  }
  // The empty key, or one that ends in zeros (its last code ends it).
  return user_key.empty() || user_key.back() != '\0' ? size + 2 : size;
}

void AppendEncodedUserKey(std::string_view user_key, std::string* out) {
  AppendEncoded(user_key, std::string::npos, out);
}

std::string EncodeUserKey(std::string_view user_key) {
  std::string out;
  out.reserve(EncodedSize(user_key));
  AppendEncodedUserKey(user_key, &out);
  return out;
}

bool DecodeUserKey(std::string_view encoded, std::string* out) {
  out->clear();
  // After a 7F the run goes on: the next token is a 0x00 whose code is not
  // 01 (that run would have been coded 7E), or the encoding is not E's.
  bool run_continues = false;
  size_t i = 0;
  while (i < encoded.size()) {
    const char c = encoded[i];
    if (c != '\0') {
      if (run_continues) return false;
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= encoded.size()) return false;
    const uint8_t code = static_cast<uint8_t>(encoded[i + 1]);
    i += 2;
    if (code == kEndCode) return !run_continues && i == encoded.size();
    run_continues = false;
    if (code >= RunEndsKeyCode(1) && code <= RunEndsKeyCode(kMaxRunPerCode)) {
      out->append(code - 1, '\0');
      return i == encoded.size();
    }
    if (code == kRunLongerCode) {
      out->append(kMaxRunPerCode, '\0');
      run_continues = true;
      continue;
    }
    if (code >= RunBeforeByteCode(kMaxRunPerCode) && code <= RunBeforeByteCode(1)) {
      out->append(0xfd - code, '\0');
      // A non-zero byte must follow.
      if (i >= encoded.size() || encoded[i] == '\0') return false;
      continue;
    }
    return false;  // 00, FD, FE, FF are no codes.
  }
  return false;  // No end.
}

bool PlainUserKey(std::string_view encoded, std::string_view* user_key) {
  if (encoded.size() < kMinSlotBytes) return false;
  const size_t n = encoded.size() - 2;
  if (encoded[n] != '\0' || static_cast<uint8_t>(encoded[n + 1]) != kEndCode) return false;
  if (std::memchr(encoded.data(), 0, n) != nullptr) return false;
  *user_key = encoded.substr(0, n);
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
  const size_t start = out->size();
  if (!AppendEncoded(user_key, kMaxInlineSlotBytes, out)) out->resize(start + kMaxInlineSlotBytes);
}

void AppendKeySlot(std::string_view user_key, std::string* out) {
  const size_t start = out->size();
  if (AppendEncoded(user_key, kMaxInlineSlotBytes, out)) return;
  out->resize(start + kMaxInlineSlotBytes);
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

bool SplitKeyTableKey(std::string_view table_key, std::string_view* slot, Revision* rev) {
  if (table_key.size() < kMinSlotBytes + kRevisionBytes) return false;
  size_t n = table_key.size() - kRevisionBytes;
  *slot = table_key.substr(0, n);
  *rev = DecodeInvertedRevision(table_key.data() + n);
  return true;
}

}  // namespace etcdpp::mvcc
