#include "cmd/bench/watch_response_scan.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>

namespace etcdpp::bench {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Field numbers of rpc.proto's WatchResponse and kv.proto's Event and
// KeyValue.
constexpr int kResponseCreated = 3;
constexpr int kResponseEvents = 11;
constexpr int kEventKv = 2;
constexpr int kKeyValueValue = 5;

constexpr uint32_t Tag(int field, WireFormatLite::WireType type) {
  return (static_cast<uint32_t>(field) << 3) | static_cast<uint32_t>(type);
}

// Calls `on_length_delimited(tag, body)` for each length-delimited field of
// `wire` (false from it stops the walk) and `on_varint(tag, value)` for each
// varint; skips the others. False if `wire` is malformed.
template <typename OnLengthDelimited, typename OnVarint>
bool WalkFields(std::string_view wire, OnLengthDelimited on_length_delimited, OnVarint on_varint) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()), static_cast<int>(wire.size()));
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage();
    switch (WireFormatLite::GetTagWireType(tag)) {
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        uint32_t length = 0;
        if (!in.ReadVarint32(&length)) return false;
        const size_t start = static_cast<size_t>(in.CurrentPosition());
        if (length > wire.size() - start) return false;
        if (!on_length_delimited(tag, wire.substr(start, length))) return false;
        if (!in.Skip(static_cast<int>(length))) return false;
        break;
      }
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t value = 0;
        if (!in.ReadVarint64(&value)) return false;
        on_varint(tag, value);
        break;
      }
      default:
        if (!WireFormatLite::SkipField(&in, tag)) return false;
    }
  }
}

constexpr auto kIgnoreVarint = [](uint32_t, uint64_t) {};

}  // namespace

bool ScanWatchResponse(std::string_view wire, WatchResponseScan& out) {
  out.created = false;
  out.events = 0;
  out.values.clear();
  return WalkFields(
      wire,
      [&out](uint32_t tag, std::string_view body) {
        if (tag != Tag(kResponseEvents, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) return true;
        out.events++;
        // As a parser would merge them: the last kv and its last value win.
        std::string_view value;
        bool ok = WalkFields(
            body,
            [&value](uint32_t event_tag, std::string_view kv) {
              if (event_tag != Tag(kEventKv, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
                return true;
              }
              return WalkFields(
                  kv,
                  [&value](uint32_t kv_tag, std::string_view bytes) {
                    if (kv_tag == Tag(kKeyValueValue, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
                      value = bytes;
                    }
                    return true;
                  },
                  kIgnoreVarint);
            },
            kIgnoreVarint);
        out.values.push_back(value);
        return ok;
      },
      [&out](uint32_t tag, uint64_t value) {
        if (tag == Tag(kResponseCreated, WireFormatLite::WIRETYPE_VARINT)) out.created = value != 0;
      });
}

}  // namespace etcdpp::bench
