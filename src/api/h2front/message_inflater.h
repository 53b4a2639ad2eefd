// Compressed request messages (grpc-encoding gzip or deflate) for the
// HTTP/2 front.
//
// gRPC's servers take a message whose flag byte is 1 when the call's
// grpc-encoding names an algorithm they know, and a client may compress
// without asking first (grpc-go's UseCompressor, grpc C++'s
// set_compression_algorithm). The front's message consumers (the native
// calls, keep-alives, watch streams, the relay) take uncompressed messages
// only, so a stream that announces gzip or deflate passes its DATA through
// an inflater first: what comes out is the same body with every message
// uncompressed and its flag byte 0. The front never compresses replies.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <grpcpp/support/status.h>

namespace etcdpp::api::h2front {

enum class MessageEncoding { kGzip, kDeflate };

// The algorithms the front inflates, by their grpc-encoding name. nullopt
// for "identity" and for names it does not know (a compressed message on
// such a call is refused, RefusalOf).
std::optional<MessageEncoding> MessageEncodingNamed(std::string_view name);

class MessageInflater {
 public:
  // Messages above `max_length` once inflated are refused, as gRPC refuses
  // one announced above its limit (the inflating stops there).
  MessageInflater(MessageEncoding encoding, uint32_t max_length);
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  // Takes the next `data` of the request body and appends to `out` the
  // messages it completes, each uncompressed with a 0 flag byte; a partial
  // message waits for the rest. Uncompressed messages pass as they are. A
  // status when a message cannot be taken (too large, or not valid for the
  // encoding); the call should then fail with it, and nothing more is taken.
  std::optional<grpc::Status> Take(std::string_view data, std::string* out);

 private:
  // Inflates one message's payload into `out` (after its prefix).
  std::optional<grpc::Status> Inflate(std::string_view compressed, std::string* out);

  const MessageEncoding encoding_;
  const uint32_t max_length_;
  z_stream zs_{};
  bool failed_ = false;
  std::string held_;  // bytes of a message that has not fully arrived
};

}  // namespace etcdpp::api::h2front
