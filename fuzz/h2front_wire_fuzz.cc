// Fuzzes the gRPC wire helpers of the HTTP/2 front (api/h2front/grpc_wire.h)
// with what a client controls: request bodies cut into messages, grpc-timeout
// values, base64 "-bin" metadata, and grpc-message text. Checks, beyond "no
// crash": a cut never reaches past its input nor above the limit; a decoded
// binary header encodes back to something that decodes to the same bytes;
// percent-encoding is printable and decodes back exactly; what the
// inflater (api/h2front/message_inflater.h) gives for a body cut in two is
// whole uncompressed messages within the limit, or a refusal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/h2front/grpc_wire.h"
#include "api/h2front/message_inflater.h"

namespace h2 = etcdpp::api::h2front;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const uint32_t max_length = size > 0 ? data[0] * 64u : 0u;

  std::string_view body = input;
  for (;;) {
    const h2::MessageCut cut = h2::CutMessage(body, max_length);
    if (cut.result != h2::MessageCut::Result::kMessage) break;
    if (cut.consumed > body.size() || cut.payload.size() > max_length ||
        cut.consumed != h2::kMessagePrefixBytes + cut.payload.size()) {
      std::abort();
    }
    std::string framed;
    h2::AppendFramedMessage(cut.payload, &framed);
    if (framed != body.substr(0, cut.consumed)) std::abort();
    body.remove_prefix(cut.consumed);
  }

  for (auto encoding : {h2::MessageEncoding::kGzip, h2::MessageEncoding::kDeflate}) {
    h2::MessageInflater inflater(encoding, max_length);
    const size_t split = size > 1 ? data[1] % size : 0;
    std::string out;
    if (!inflater.Take(input.substr(0, split), &out) && !inflater.Take(input.substr(split), &out)) {
      std::string_view inflated = out;
      while (!inflated.empty()) {
        const h2::MessageCut cut = h2::CutMessage(inflated, max_length);
        if (cut.result != h2::MessageCut::Result::kMessage) std::abort();
        inflated.remove_prefix(cut.consumed);
      }
    }
  }

  if (auto timeout = h2::ParseGrpcTimeout(input); timeout && timeout->count() < 0) std::abort();

  if (auto decoded = h2::DecodeBinaryHeader(input)) {
    const std::string again = h2::EncodeBinaryHeader(*decoded);
    if (h2::DecodeBinaryHeader(again) != decoded) std::abort();
  }

  const std::string encoded = h2::PercentEncode(input);
  for (char c : encoded) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) std::abort();
  }
  if (h2::PercentDecode(encoded) != input) std::abort();
  return 0;
}
