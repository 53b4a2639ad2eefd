#include "api/h2front/grpc_wire.h"

#include <array>

namespace etcdpp::api::h2front {
namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// -1 for bytes outside the alphabet.
constexpr std::array<int8_t, 256> Base64Values() {
  std::array<int8_t, 256> values{};
  for (auto& v : values) v = -1;
  for (int i = 0; i < 64; ++i) values[static_cast<uint8_t>(kBase64Alphabet[i])] = int8_t(i);
  return values;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void WriteMessagePrefix(uint32_t size, char* at) {
  at[0] = 0;  // not compressed
  at[1] = char(size >> 24);
  at[2] = char(size >> 16);
  at[3] = char(size >> 8);
  at[4] = char(size);
}

void AppendFramedMessage(std::string_view message, std::string* out) {
  char prefix[kMessagePrefixBytes];
  WriteMessagePrefix(static_cast<uint32_t>(message.size()), prefix);
  out->append(prefix, kMessagePrefixBytes);
  out->append(message);
}

uint32_t AnnouncedLength(std::string_view prefix) {
  return (uint32_t(uint8_t(prefix[1])) << 24) | (uint32_t(uint8_t(prefix[2])) << 16) |
         (uint32_t(uint8_t(prefix[3])) << 8) | uint32_t(uint8_t(prefix[4]));
}

grpc::Status MessageTooLarge(uint64_t length, uint32_t max_length) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (" +
                                                                std::to_string(length) + " vs. " +
                                                                std::to_string(max_length) + ")");
}

MessageCut CutMessage(std::string_view body, uint32_t max_length) {
  MessageCut cut;
  if (body.size() < kMessagePrefixBytes) return cut;
  if (body[0] != 0) {
    cut.result = MessageCut::Result::kCompressed;
    return cut;
  }
  cut.length = AnnouncedLength(body);
  if (cut.length > max_length) {
    cut.result = MessageCut::Result::kTooLarge;
    return cut;
  }
  if (body.size() - kMessagePrefixBytes < cut.length) return cut;
  cut.result = MessageCut::Result::kMessage;
  cut.payload = body.substr(kMessagePrefixBytes, cut.length);
  cut.consumed = kMessagePrefixBytes + cut.length;
  return cut;
}

std::optional<grpc::Status> RefusalOf(const MessageCut& cut, uint32_t max_length) {
  switch (cut.result) {
    case MessageCut::Result::kTooLarge:
      return MessageTooLarge(cut.length, max_length);
    case MessageCut::Result::kCompressed:
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "a compressed message needs grpc-encoding gzip or deflate");
    case MessageCut::Result::kMessage:
    case MessageCut::Result::kIncomplete:
      break;
  }
  return std::nullopt;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte >= 0x20 && byte <= 0x7e && c != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::optional<std::chrono::nanoseconds> ParseGrpcTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t amount = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + (c - '0');
  }
  using std::chrono::nanoseconds;
  switch (value.back()) {
    case 'H':
      return std::chrono::duration_cast<nanoseconds>(std::chrono::hours(amount));
    case 'M':
      return std::chrono::duration_cast<nanoseconds>(std::chrono::minutes(amount));
    case 'S':
      return std::chrono::duration_cast<nanoseconds>(std::chrono::seconds(amount));
    case 'm':
      return std::chrono::duration_cast<nanoseconds>(std::chrono::milliseconds(amount));
    case 'u':
      return std::chrono::duration_cast<nanoseconds>(std::chrono::microseconds(amount));
    case 'n':
      return nanoseconds(amount);
    default:
      return std::nullopt;
  }
}

std::optional<std::string> DecodeBinaryHeader(std::string_view value) {
  static constexpr std::array<int8_t, 256> kValues = Base64Values();
  while (!value.empty() && value.back() == '=') value.remove_suffix(1);
  if (value.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(value.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : value) {
    const int8_t v = kValues[static_cast<uint8_t>(c)];
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | uint32_t(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::string EncodeBinaryHeader(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint32_t(uint8_t(bytes[i + 2]));
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(kBase64Alphabet[(n >> 6) & 63]);
    out.push_back(kBase64Alphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace etcdpp::api::h2front
