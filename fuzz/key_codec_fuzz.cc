// libFuzzer target for the `key` table's slot encoding (mvcc/key_codec.h):
// any bytes that decode must be the one encoding of what they decode to;
// every key must round-trip; and two keys cut from the input must order
// like their encodings and like their table keys against positions (what
// range scans rely on). Aborts on any broken property.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mvcc/escaped_key_codec.h"
#include "mvcc/key_codec.h"

namespace {

using namespace etcdpp::mvcc;

void Require(bool ok) {
  if (!ok) std::abort();
}

void CheckDecode(std::string_view bytes) {
  std::string key;
  if (DecodeUserKey(bytes, &key)) {
    Require(EncodeUserKey(key) == bytes);
    Require(EncodedSize(key) == bytes.size());
  }
  if (escaped::DecodeUserKey(bytes, &key)) Require(escaped::EncodeUserKey(key) == bytes);
}

void CheckKey(std::string_view key) {
  const std::string enc = EncodeUserKey(key);
  Require(enc.size() == EncodedSize(key));
  std::string decoded;
  Require(DecodeUserKey(enc, &decoded) && decoded == key);
  std::string_view plain;
  Require(PlainUserKey(enc, &plain) == (key.find('\0') == std::string_view::npos));
  std::string slot;
  AppendKeySlot(key, &slot);
  Require(IsLongSlot(slot) == !IsInlineKey(key));
  Require(IsLongSlot(slot) ? slot.size() == kLongSlotBytes : slot == enc);
}

void CheckPair(std::string_view a, std::string_view b) {
  const std::string ea = EncodeUserKey(a), eb = EncodeUserKey(b);
  Require((a < b) == (ea < eb));
  if (a != b) Require(eb.compare(0, ea.size(), ea) != 0);  // prefix-free
  std::string sa, sb, pb;
  AppendKeySlot(a, &sa);
  AppendKeySlot(b, &sb);
  AppendKeyPosition(b, &pb);
  const bool same_bucket = IsLongSlot(sa) && IsLongSlot(sb) && BucketOf(sa) == BucketOf(sb);
  if (a != b && !same_bucket) Require((sa + std::string(kRevisionBytes, '\x5a') < pb) == (a < b));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckDecode(input);
  CheckKey(input);
  if (size == 0) return 0;
  // The first byte says where to cut the rest into two keys; a second
  // pass stretches both with zero runs so the 479-byte limit is reached.
  const std::string_view rest = input.substr(1);
  const size_t cut = rest.empty() ? 0 : static_cast<uint8_t>(data[0]) % (rest.size() + 1);
  const std::string_view a = rest.substr(0, cut), b = rest.substr(cut);
  CheckKey(a);
  CheckKey(b);
  CheckPair(a, b);
  CheckPair(b, a);
  const std::string pad(470, 'p');
  CheckPair(pad + std::string(a), pad + std::string(b));
  CheckPair(pad + std::string(b), pad + std::string(a));
  return 0;
}
