// gRPC's wire format over HTTP/2, the parts the experimental front
// (h2_front.h) speaks itself (gRPC's PROTOCOL-HTTP2 document):
//
//   request   HEADERS  :method POST, :path /<service>/<method>,
//                      content-type application/grpc[+proto], te trailers,
//                      optional grpc-timeout, grpc-encoding, custom metadata
//                      (a name ending in "-bin" carries base64 of raw bytes)
//             DATA*    length-prefixed messages
//             END_STREAM on the last frame
//   response  HEADERS  :status 200, content-type application/grpc
//             DATA*    length-prefixed messages
//             HEADERS  (trailers) grpc-status <decimal code>,
//                      grpc-message <percent-encoded text>, END_STREAM
//   or, with no message, one HEADERS frame holding both (trailers-only).
//
// A length-prefixed message is 1 byte compressed-flag, 4 bytes big-endian
// length, then the serialized protobuf. The front never compresses what it
// sends; it takes compressed requests through message_inflater.h.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace etcdpp::api::h2front {

inline constexpr size_t kMessagePrefixBytes = 5;

// Writes the 5-byte prefix of an uncompressed message of `size` bytes at `at`.
void WriteMessagePrefix(uint32_t size, char* at);
// Appends `message` to `out` with its 5-byte prefix (uncompressed).
void AppendFramedMessage(std::string_view message, std::string* out);
// The length a prefix announces. `prefix` holds at least kMessagePrefixBytes.
uint32_t AnnouncedLength(std::string_view prefix);
// gRPC's status for a message of `length` bytes above `max_length`, in the
// words clients match.
grpc::Status MessageTooLarge(uint64_t length, uint32_t max_length);

// One message cut from the front of a request body.
struct MessageCut {
  enum class Result {
    kMessage,     // `payload` holds it; `consumed` bytes were used
    kIncomplete,  // the prefix or the payload has not fully arrived yet
    kCompressed,  // the flag byte is not 0
    kTooLarge,    // the announced length is above the limit (in `length`)
  };
  Result result = Result::kIncomplete;
  std::string_view payload;
  size_t consumed = 0;
  uint32_t length = 0;
};
MessageCut CutMessage(std::string_view body, uint32_t max_length);
// The status a call ends with when its message cannot be taken: gRPC's own
// for one above `max_length` (clients match its text), the front's for a
// compressed one (one whose call announced no encoding the front inflates,
// message_inflater.h). nullopt for a message or an incomplete one.
std::optional<grpc::Status> RefusalOf(const MessageCut& cut, uint32_t max_length);

// grpc-message's encoding: bytes outside printable ASCII, and '%', as %XX.
std::string PercentEncode(std::string_view text);
// Its inverse; malformed escapes are kept as they are (as gRPC does).
std::string PercentDecode(std::string_view text);

// grpc-timeout: 1-8 digits and a unit (H, M, S, m, u, n). nullopt when malformed.
std::optional<std::chrono::nanoseconds> ParseGrpcTimeout(std::string_view value);

// Base64 of a "-bin" metadata value, padded or not (both are allowed).
// nullopt on a character outside the alphabet.
std::optional<std::string> DecodeBinaryHeader(std::string_view value);
// Padded base64, as the front sends "-bin" trailers.
std::string EncodeBinaryHeader(std::string_view bytes);

}  // namespace etcdpp::api::h2front
