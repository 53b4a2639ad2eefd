#include "wal/record.h"

#include <google/protobuf/message_lite.h>

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace etcdpp::wal {
namespace {

constexpr uint64_t kLengthMask = (uint64_t{1} << 56) - 1;
constexpr uint64_t kPresentBit = uint64_t{1} << 63;
constexpr uint64_t kReservedBits = uint64_t{0xf} << 59;

size_t PadFor(uint64_t body_size) { return static_cast<size_t>((8 - body_size % 8) % 8); }

// Lays out a frame for `data_size` bytes of data at the end of *dst, lets
// `fill` write the data, then seals the header, prefix and CRC.
template <typename Fill>
uint32_t AppendFrame(std::string* dst, RecordType type, uint64_t durable_offset, size_t data_size,
                     Fill fill) {
  const uint64_t body_size = kBodyPrefixSize + data_size;
  const size_t pad = PadFor(body_size);
  const size_t start = dst->size();
  dst->resize(start + kFrameHeaderSize + body_size + pad, '\0');  // Zero-fills the padding.
  char* frame = dst->data() + start;
  char* body = frame + kFrameHeaderSize;
  PutLE64(frame, body_size | (uint64_t{pad} << 56) | kPresentBit);
  body[4] = static_cast<char>(type);
  PutLE64(body + 8, durable_offset);
  fill(body + kBodyPrefixSize);
  uint32_t crc = crc32c::Value(frame, kFrameHeaderSize);
  crc = crc32c::Extend(crc, body + 4, body_size - 4);
  PutLE32(body, crc32c::Mask(crc));
  return crc;
}

bool KnownType(uint8_t type) {
  return type >= static_cast<uint8_t>(RecordType::kSegmentHeader) &&
         type <= static_cast<uint8_t>(RecordType::kSnapshot);
}

}  // namespace

uint32_t AppendRecord(std::string* dst, RecordType type, uint64_t durable_offset,
                      std::string_view data) {
  return AppendFrame(dst, type, durable_offset, data.size(), [&](char* out) {
    if (!data.empty()) std::memcpy(out, data.data(), data.size());
  });
}

uint32_t AppendProtoRecord(std::string* dst, RecordType type, uint64_t durable_offset,
                           const google::protobuf::MessageLite& message) {
  const size_t size = message.ByteSizeLong();
  return AppendFrame(dst, type, durable_offset, size, [&](char* out) {
    message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out));
  });
}

bool IsZeroHeader(std::string_view buf) {
  return buf.size() >= kFrameHeaderSize && GetLE64(buf.data()) == 0;
}

Result<Record> DecodeRecord(std::string_view buf) {
  if (buf.size() < kFrameHeaderSize) return Status::Corruption("truncated header");
  const uint64_t header = GetLE64(buf.data());
  if (header == 0) return Status::Corruption("zero header");
  if ((header & kPresentBit) == 0 || (header & kReservedBits) != 0) {
    return Status::Corruption("bad header flags");
  }
  const uint64_t body_size = header & kLengthMask;
  const uint64_t pad = (header >> 56) & 0x7;
  if (body_size < kBodyPrefixSize || body_size > kMaxBodySize) {
    return Status::Corruption("bad length " + std::to_string(body_size));
  }
  if (pad != PadFor(body_size)) return Status::Corruption("bad padding length");
  // Both terms are bounded (kMaxBodySize), so the sum cannot overflow.
  const uint64_t frame_size = kFrameHeaderSize + body_size + pad;
  if (frame_size > buf.size()) {
    return Status::Corruption("truncated record: frame of " + std::to_string(frame_size) +
                              " bytes, " + std::to_string(buf.size()) + " left");
  }
  const char* body = buf.data() + kFrameHeaderSize;
  uint32_t crc = crc32c::Value(buf.data(), kFrameHeaderSize);
  crc = crc32c::Extend(crc, body + 4, body_size - 4);
  if (crc32c::Unmask(GetLE32(body)) != crc) return Status::Corruption("crc mismatch");
  // Past the CRC, damage is not a torn write: whatever is wrong was written so.
  const uint8_t type = static_cast<uint8_t>(body[4]);
  if (!KnownType(type)) return Status::Corruption("unknown record type " + std::to_string(type));
  if (body[5] != 0 || body[6] != 0 || body[7] != 0) {
    return Status::Corruption("nonzero reserved bytes");
  }
  for (uint64_t i = 0; i < pad; ++i) {
    if (body[body_size + i] != 0) return Status::Corruption("nonzero padding");
  }
  Record r;
  r.type = static_cast<RecordType>(type);
  r.durable_offset = GetLE64(body + 8);
  r.data = std::string_view(body + kBodyPrefixSize, body_size - kBodyPrefixSize);
  r.crc = crc;
  r.frame_size = static_cast<size_t>(frame_size);
  return r;
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(24, '\0');
  PutLE32(out.data(), header.version);
  PutLE64(out.data() + 8, header.seq);
  PutLE32(out.data() + 16, header.prev_crc);
  return out;
}

Result<SegmentHeader> ParseSegmentHeader(std::string_view data) {
  if (data.size() != 24) return Status::Corruption("bad segment header size");
  SegmentHeader h;
  h.version = GetLE32(data.data());
  h.seq = GetLE64(data.data() + 8);
  h.prev_crc = GetLE32(data.data() + 16);
  if (h.version != kFormatVersion) {
    return Status::Corruption("unsupported format version " + std::to_string(h.version));
  }
  return h;
}

std::string EncodeSnapshotMarker(const SnapshotMarker& marker) {
  std::string out(16, '\0');
  PutLE64(out.data(), marker.index);
  PutLE64(out.data() + 8, marker.term);
  return out;
}

Result<SnapshotMarker> ParseSnapshotMarker(std::string_view data) {
  if (data.size() != 16) return Status::Corruption("bad snapshot marker size");
  return SnapshotMarker{GetLE64(data.data()), GetLE64(data.data() + 8)};
}

}  // namespace etcdpp::wal
