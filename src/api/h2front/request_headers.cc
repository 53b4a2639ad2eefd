#include "api/h2front/request_headers.h"

#include <nghttp2/nghttp2.h>

#include <cctype>

namespace etcdpp::api::h2front {
namespace {

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

bool ValidValue(std::string_view value) {
  return nghttp2_check_header_value_rfc9113(Bytes(value), value.size()) != 0;
}

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool ValidScheme(std::string_view scheme) {
  if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme[0]))) return false;
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// RFC 9113 section 8.2.2: fields that only mean something on one hop of
// HTTP/1.1.
bool IsConnectionSpecific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace

RequestHeaderRules::Verdict RequestHeaderRules::Check(std::string_view name,
                                                      std::string_view value) {
  const bool pseudo = !name.empty() && name[0] == ':';
  if (nghttp2_check_header_name(Bytes(name), name.size()) == 0) {
    return pseudo ? Verdict::kRefuse : Verdict::kIgnore;
  }
  if (!pseudo) {
    regular_seen_ = true;
    if (IsConnectionSpecific(name)) return Verdict::kRefuse;
    if (name == "te" && !EqualsIgnoringCase(value, "trailers")) return Verdict::kRefuse;
    if (!ValidValue(value)) return Verdict::kIgnore;
    if (name == "host") host_seen_ = true;
    return Verdict::kTake;
  }
  if (regular_seen_) return Verdict::kRefuse;
  uint8_t which = 0;
  bool valid = false;
  if (name == ":method") {
    which = kMethod;
    valid = nghttp2_check_method(Bytes(value), value.size()) != 0;
  } else if (name == ":scheme") {
    which = kScheme;
    valid = ValidScheme(value);
  } else if (name == ":path") {
    which = kPath;
    valid = !value.empty() && nghttp2_check_path(Bytes(value), value.size()) != 0;
  } else if (name == ":authority") {
    // Any field value, not RFC 3986's authority: see the header comment.
    which = kAuthority;
    valid = ValidValue(value);
  } else {
    return Verdict::kRefuse;
  }
  if (!valid || (pseudo_seen_ & which) != 0) return Verdict::kRefuse;
  pseudo_seen_ |= which;
  return Verdict::kTake;
}

bool RequestHeaderRules::Complete() const {
  const uint8_t required = kMethod | kScheme | kPath;
  return (pseudo_seen_ & required) == required && ((pseudo_seen_ & kAuthority) != 0 || host_seen_);
}

}  // namespace etcdpp::api::h2front
