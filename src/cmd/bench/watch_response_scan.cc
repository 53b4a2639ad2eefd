#include "cmd/bench/watch_response_scan.h"

#include <cstdint>
#include <string_view>

namespace etcdpp::bench {
namespace {

// Protobuf wire types.
enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// Field numbers of rpc.proto's WatchResponse and kv.proto's Event and
// KeyValue.
constexpr uint32_t kResponseCreated = 3;
constexpr uint32_t kResponseEvents = 11;
constexpr uint32_t kEventKv = 2;
constexpr uint32_t kKeyValueValue = 5;

constexpr uint32_t Tag(uint32_t field, WireType type) { return (field << 3) | type; }

// A cursor over one message's bytes. The fan-out load scans millions of
// small messages three levels deep; on protobuf's CodedInputStream (a
// stream object per level) the walk took a fifth of the generator's CPU
// samples. It accepts what protobuf's parser accepts (varints of up to ten bytes,
// excess bits dropped; tags cut to 32 bits; unknown fields of every wire
// type, groups included) and refuses truncated input.
struct Cursor {
  const uint8_t* at;
  const uint8_t* end;

  bool ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (at == end) return false;
      const uint8_t byte = *at++;
      if (shift < 64) result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;  // more than ten bytes
  }

  bool Skip(uint64_t n) {
    if (n > static_cast<uint64_t>(end - at)) return false;
    at += n;
    return true;
  }

  // A length-delimited value: its length (which protobuf caps at 2 GiB),
  // then that many bytes, returned in `body`.
  bool ReadBytes(std::string_view* body) {
    uint64_t length = 0;
    if (!ReadVarint(&length) || length > INT32_MAX) return false;
    const uint8_t* start = at;
    if (!Skip(length)) return false;
    *body = std::string_view(reinterpret_cast<const char*>(start), length);
    return true;
  }

  // Skips the fields of a group up to its end tag for `field`.
  bool SkipGroup(uint32_t field, int depth) {
    for (;;) {
      uint64_t tag = 0;
      if (!ReadTag(&tag)) return false;
      if ((tag & 7) == kEndGroup) return (tag >> 3) == field;
      if (!SkipValue(tag, depth)) return false;
    }
  }

  // Skips the value of a field whose tag was just read.
  bool SkipValue(uint64_t tag, int depth) {
    uint64_t n = 0;
    switch (tag & 7) {
      case kVarint:
        return ReadVarint(&n);
      case kFixed64:
        return Skip(8);
      case kLengthDelimited: {
        std::string_view body;
        return ReadBytes(&body);
      }
      case kStartGroup:
        // protobuf's own limit on nesting.
        return depth < 100 && SkipGroup(static_cast<uint32_t>(tag >> 3), depth + 1);
      case kFixed32:
        return Skip(4);
      default:  // an end tag with no group open, or wire type 6 or 7
        return false;
    }
  }

  // A tag: its varint's low 32 bits (as protobuf reads one), with a field
  // number other than 0.
  bool ReadTag(uint64_t* tag) {
    if (!ReadVarint(tag)) return false;
    *tag &= UINT32_MAX;
    return (*tag >> 3) != 0;
  }
};

// Calls `on_length_delimited(tag, body)` for each length-delimited field of
// `wire` (false from it stops the walk) and `on_varint(tag, value)` for each
// varint; skips the others. False if `wire` is malformed.
template <typename OnLengthDelimited, typename OnVarint>
bool WalkFields(std::string_view wire, OnLengthDelimited on_length_delimited, OnVarint on_varint) {
  const auto* begin = reinterpret_cast<const uint8_t*>(wire.data());
  Cursor in{begin, begin + wire.size()};
  while (in.at != in.end) {
    uint64_t tag = 0;
    if (!in.ReadTag(&tag)) return false;
    switch (tag & 7) {
      case kLengthDelimited: {
        std::string_view body;
        if (!in.ReadBytes(&body) || !on_length_delimited(static_cast<uint32_t>(tag), body)) {
          return false;
        }
        break;
      }
      case kVarint: {
        uint64_t value = 0;
        if (!in.ReadVarint(&value)) return false;
        on_varint(static_cast<uint32_t>(tag), value);
        break;
      }
      default:
        if (!in.SkipValue(tag, 0)) return false;
    }
  }
  return true;
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
        if (tag != Tag(kResponseEvents, kLengthDelimited)) return true;
        out.events++;
        // As a parser would merge them: the last kv and its last value win.
        std::string_view value;
        bool ok = WalkFields(
            body,
            [&value](uint32_t event_tag, std::string_view kv) {
              if (event_tag != Tag(kEventKv, kLengthDelimited)) {
                return true;
              }
              return WalkFields(
                  kv,
                  [&value](uint32_t kv_tag, std::string_view bytes) {
                    if (kv_tag == Tag(kKeyValueValue, kLengthDelimited)) {
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
        if (tag == Tag(kResponseCreated, kVarint)) out.created = value != 0;
      });
}

}  // namespace etcdpp::bench
