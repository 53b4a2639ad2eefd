// Which fields of a request's header block the front takes.
//
// nghttp2 can enforce HTTP/2's messaging rules itself, but it then also
// holds `:authority` to RFC 3986's grammar, and grpc-go (etcdctl,
// clientv3) sends the endpoint as the user wrote it there:
// `--endpoints http://127.0.0.1:2379` arrives as
// `:authority: http://127.0.0.1:2379`, which nghttp2 resets with
// PROTOCOL_ERROR while gRPC's own servers take it. So the front turns
// nghttp2's checks off (nghttp2_option_set_no_http_messaging) and applies
// the same rules here, with `:authority` (and `host`) taken as any valid
// field value:
//  * a pseudo-header must be one of :method, :scheme, :path, :authority,
//    at most once each, all before the first regular field; :method a
//    token, :path non-empty and without spaces, :scheme a URI scheme;
//  * `te` must be `trailers`; connection-specific fields (connection,
//    keep-alive, proxy-connection, transfer-encoding, upgrade) are refused;
//  * a field whose name or value has characters HTTP does not allow is
//    refused if it is a pseudo-header, dropped otherwise;
//  * the block must have :method, :scheme, :path and :authority or host.
// A refused request is reset with PROTOCOL_ERROR, as nghttp2 did.
#pragma once

#include <cstdint>
#include <string_view>

namespace etcdpp::api::h2front {

class RequestHeaderRules {
 public:
  enum class Verdict {
    kTake,    // the field is valid: use it
    kIgnore,  // drop the field, go on with the request
    kRefuse,  // reset the stream
  };

  // The next field of the block, in the order received.
  Verdict Check(std::string_view name, std::string_view value);
  // At the end of the block: whether the fields every request needs came.
  bool Complete() const;

 private:
  enum Pseudo : uint8_t {
    kMethod = 1 << 0,
    kScheme = 1 << 1,
    kPath = 1 << 2,
    kAuthority = 1 << 3,
  };
  uint8_t pseudo_seen_ = 0;
  bool regular_seen_ = false;
  bool host_seen_ = false;
};

}  // namespace etcdpp::api::h2front
