// Splits a byte stream into consecutive JSON values, as the streaming gateway
// endpoints read their request body: `{"create_request":{...}}` then
// `{"progress_request":{}}`..., separated by any whitespace (or nothing), the
// body possibly arriving a few bytes at a time. Only finds the boundaries;
// the values are parsed afterwards (gateway.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace etcdpp::http {

class JsonValueSplitter {
 public:
  // Bytes buffered without a complete value beyond this are an error (a
  // runaway or malicious body). Default: the size etcd accepts per request,
  // base64-inflated, with room to spare.
  explicit JsonValueSplitter(size_t max_value_bytes = 4 << 20)
      : max_value_bytes_(max_value_bytes) {}

  void Append(std::string_view bytes) { pending_.append(bytes); }

  // The next complete value, if one has arrived. A value that is not an
  // object or array (`1`, `"x"`, garbage) is returned as it stands up to the
  // next whitespace so the JSON parser reports the error.
  std::optional<std::string> Next();

  // At the body's end: what is left that is not whitespace (a truncated
  // value, or a scalar token that ran to the end), for the parser to reject.
  std::optional<std::string> TakeRest();
  bool TooLarge() const { return pending_.size() > max_value_bytes_; }

 private:
  size_t max_value_bytes_;
  std::string pending_;
};

}  // namespace etcdpp::http
