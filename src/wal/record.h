// The WAL's record framing: encoding and a pure, bounds-checked decoder.
//
// Every record is one frame, 8-byte aligned within its segment file:
//
//   offset  size  field
//   0       8     header, little-endian u64:
//                   bits  0..55  body length L (bytes, 16 <= L <= kMaxBodySize)
//                   bits 56..58  pad length P = (8 - L % 8) % 8
//                   bits 59..62  zero
//                   bit  63     one: a valid header is never all zero, so
//                               zeroed (preallocated) space cannot look like a record
//   8       L     body:
//                   0   4  masked CRC-32C (crc32c::Mask) of header[0..8) + body[4..L)
//                   4   1  record type (RecordType)
//                   5   3  zero
//                   8   8  durable offset, little-endian u64: the length of the
//                          segment prefix that had been fsynced when this record
//                          was written (recovery uses it to tell a torn
//                          unsynced write from damage to synced data)
//                   16  L-16 data (type specific, below)
//   8+L     P     zero padding
//
// Data by type:
//   kSegmentHeader  u32 format version (kFormatVersion), u32 zero, u64 segment
//                   sequence number, u32 CRC (unmasked) of the previous segment's
//                   last record, u32 zero. First record of every segment.
//   kMetadata       opaque bytes given to Wal::Create (node and cluster ids).
//   kEntry          raftpb::Entry, protobuf encoded.
//   kHardState      raftpb::HardState, protobuf encoded.
//   kSnapshot       u64 index, u64 term: a snapshot marker.
//
// The 8-byte header never straddles a 512-byte sector (frames are 8-aligned),
// so a torn write cannot produce a half-old, half-new length. See docs/wal.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace etcdpp::wal {

// The position of a Raft snapshot in the log, recorded in the WAL when the
// snapshot is saved. {0, 0} is the empty start every WAL begins with.
struct SnapshotMarker {
  uint64_t index = 0;
  uint64_t term = 0;
  bool operator==(const SnapshotMarker&) const = default;
};

enum class RecordType : uint8_t {
  kSegmentHeader = 1,
  kMetadata = 2,
  kEntry = 3,
  kHardState = 4,
  kSnapshot = 5,
};

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kFrameHeaderSize = 8;
inline constexpr size_t kBodyPrefixSize = 16;  // crc, type, zero, durable offset.
// Bounds every length read from disk; also the largest record Save accepts.
inline constexpr uint64_t kMaxBodySize = uint64_t{1} << 30;

struct SegmentHeader {
  uint32_t version = kFormatVersion;
  uint64_t seq = 0;
  uint32_t prev_crc = 0;
};

// One decoded frame. `data` points into the buffer given to DecodeRecord.
struct Record {
  RecordType type;
  uint64_t durable_offset;
  std::string_view data;
  uint32_t crc;       // Unmasked, for chaining segments.
  size_t frame_size;  // Header + body + padding: where the next frame starts.
};

// Appends one frame holding `data` to *dst, which must be 8-byte aligned in
// length (true of any concatenation of frames). Returns the record's CRC.
uint32_t AppendRecord(std::string* dst, RecordType type, uint64_t durable_offset,
                      std::string_view data);
// Same, serializing `message` straight into *dst (no temporary copy).
uint32_t AppendProtoRecord(std::string* dst, RecordType type, uint64_t durable_offset,
                           const google::protobuf::MessageLite& message);

// Decodes the frame at the start of `buf`. Never reads outside `buf`. Fails
// with kCorruption and a short reason ("zero header", "truncated record",
// "bad length", "crc mismatch", "unknown record type", ...); the caller adds
// file and offset. Does not parse the data: see the Parse* functions.
Result<Record> DecodeRecord(std::string_view buf);

// True when the 8 bytes at the start of `buf` are zero (unwritten space).
bool IsZeroHeader(std::string_view buf);

std::string EncodeSegmentHeader(const SegmentHeader& header);
Result<SegmentHeader> ParseSegmentHeader(std::string_view data);
std::string EncodeSnapshotMarker(const SnapshotMarker& marker);
Result<SnapshotMarker> ParseSnapshotMarker(std::string_view data);

}  // namespace etcdpp::wal
