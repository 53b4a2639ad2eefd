// Tells the two protocols of the client port apart by a connection's first
// bytes. A gRPC client speaks HTTP/2 with prior knowledge, so its first 24
// bytes are the HTTP/2 connection preface (RFC 9113 section 3.4); an HTTP/1.x
// request starts with a method token, which never matches it.
#pragma once

#include <string_view>

namespace etcdpp::http {

inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class Protocol {
  kHttp2,      // the whole preface arrived
  kHttp1,      // a byte differs from the preface
  kUndecided,  // a proper prefix of the preface so far: wait for more
};

// `first_bytes`: what the connection has received so far (peeked, not consumed).
Protocol Classify(std::string_view first_bytes);

}  // namespace etcdpp::http
