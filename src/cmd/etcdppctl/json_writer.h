// A streaming JSON writer that produces the bytes Go's encoding/json does.
//
// etcdctl's -w json output is json.Marshal of the gogo-protobuf Go structs,
// so field order is declaration order, zero fields tagged omitempty are left
// out by the caller, []byte is base64, and strings use Go's escaping: <, >
// and & as \u003c \u003e \u0026, U+2028/U+2029 escaped, invalid UTF-8 as
// \ufffd. No whitespace anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace etcdpp::ctl {

class JsonWriter {
 public:
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // Inside an object: the next value's name.
  void Key(std::string_view name);
  void String(std::string_view s);
  // A []byte value: base64 in a string.
  void Bytes(std::string_view data);
  void Int(int64_t v);
  void Uint(uint64_t v);
  void Bool(bool v);
  void Null();

  const std::string& str() const { return out_; }

 private:
  // Writes the comma separating this value from the previous one.
  void BeforeValue();

  std::string out_;
  // One entry per open container: true until its first element is written.
  std::vector<bool> first_;
  // True right after Key(): the value then needs no comma.
  bool after_key_ = false;
};

// Go's encoding/json string encoding of s, quotes included.
std::string GoJsonString(std::string_view s);

}  // namespace etcdpp::ctl
