#include "api/h2front/message_inflater.h"

#include <algorithm>

#include "api/h2front/grpc_wire.h"

namespace etcdpp::api::h2front {
namespace {

// zlib's window bits: 15 for the zlib wrapper gRPC calls "deflate", plus
// 16 for the gzip wrapper.
constexpr int kDeflateWindowBits = 15;
constexpr int kGzipWindowBits = 16 + 15;

}  // namespace

std::optional<MessageEncoding> MessageEncodingNamed(std::string_view name) {
  if (name == "gzip") return MessageEncoding::kGzip;
  if (name == "deflate") return MessageEncoding::kDeflate;
  return std::nullopt;
}

MessageInflater::MessageInflater(MessageEncoding encoding, uint32_t max_length)
    : encoding_(encoding), max_length_(max_length) {
  const int bits = encoding == MessageEncoding::kGzip ? kGzipWindowBits : kDeflateWindowBits;
  // Fails only without memory; every Take then refuses.
  failed_ = inflateInit2(&zs_, bits) != Z_OK;
}

MessageInflater::~MessageInflater() { inflateEnd(&zs_); }

std::optional<grpc::Status> MessageInflater::Take(std::string_view data, std::string* out) {
  if (failed_) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the request message cannot be decompressed");
  }
  // The common case, a whole message in one chunk, needs no copy into held_.
  std::string_view body = data;
  if (!held_.empty()) {
    held_.append(data);
    body = held_;
  }
  size_t used = 0;
  while (body.size() - used >= kMessagePrefixBytes) {
    const std::string_view prefix = body.substr(used, kMessagePrefixBytes);
    const uint32_t length = AnnouncedLength(prefix);
    // An announced length above the limit is refused before the rest is
    // buffered, as an uncompressed one is (RefusalOf).
    if (length > max_length_) {
      failed_ = true;
      return MessageTooLarge(length, max_length_);
    }
    if (body.size() - used - kMessagePrefixBytes < length) break;
    const std::string_view payload = body.substr(used + kMessagePrefixBytes, length);
    if (prefix[0] == 0) {
      out->append(body.substr(used, kMessagePrefixBytes + length));
    } else if (auto refusal = Inflate(payload, out)) {
      failed_ = true;
      return refusal;
    }
    used += kMessagePrefixBytes + length;
  }
  if (held_.empty()) {
    held_.assign(body.substr(used));
  } else {
    held_.erase(0, used);
  }
  return std::nullopt;
}

std::optional<grpc::Status> MessageInflater::Inflate(std::string_view compressed,
                                                     std::string* out) {
  const size_t prefix_at = out->size();
  out->append(kMessagePrefixBytes, '\0');
  const size_t payload_at = out->size();
  inflateReset(&zs_);
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs_.avail_in = static_cast<uInt>(compressed.size());
  int rc = Z_OK;
  // Grown a chunk at a time: a small message costs a small buffer, and one
  // that inflates past the limit stops one chunk after it.
  constexpr size_t kChunk = 16 << 10;
  while (rc != Z_STREAM_END) {
    const size_t produced = out->size() - payload_at;
    if (produced > max_length_) {
      out->resize(prefix_at);
      return MessageTooLarge(produced, max_length_);
    }
    const size_t at = out->size();
    out->resize(at + kChunk);
    zs_.next_out = reinterpret_cast<Bytef*>(out->data() + at);
    zs_.avail_out = static_cast<uInt>(kChunk);
    rc = inflate(&zs_, Z_NO_FLUSH);
    out->resize(out->size() - zs_.avail_out);
    // Z_BUF_ERROR with input left means no progress was possible; with no
    // input left the message ended before its stream did.
    if (rc != Z_OK && rc != Z_STREAM_END) {
      out->resize(prefix_at);
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          std::string("the request message is not valid ") +
                              (encoding_ == MessageEncoding::kGzip ? "gzip" : "deflate"));
    }
  }
  const size_t length = out->size() - payload_at;
  if (length > max_length_) {
    out->resize(prefix_at);
    return MessageTooLarge(length, max_length_);
  }
  const char prefix[kMessagePrefixBytes] = {0, char(length >> 24), char(length >> 16),
                                            char(length >> 8), char(length)};
  std::copy(prefix, prefix + kMessagePrefixBytes, out->begin() + prefix_at);
  return std::nullopt;
}

}  // namespace etcdpp::api::h2front
