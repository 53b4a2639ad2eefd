// libFuzzer target for the WAL's record decoder: feeds arbitrary bytes to
// DecodeRecord frame after frame, as recovery does over a segment, and parses
// each record's data like ReadAll. Must never crash, hang, or read out of
// bounds (run under ASan/UBSan), and a decoded frame must stay inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "raftpb/raft.pb.h"
#include "wal/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace etcdpp::wal;
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos < buf.size()) {
    auto record = DecodeRecord(buf.substr(pos));
    if (!record.ok()) {
      pos += kFrameHeaderSize;  // Resynchronise like the torn-tail scan does.
      continue;
    }
    if (record->frame_size == 0 || record->frame_size > buf.size() - pos ||
        record->frame_size % 8 != 0) {
      std::abort();  // A frame must advance and stay within the input.
    }
    const std::string_view payload = record->data;
    switch (record->type) {
      case RecordType::kSegmentHeader:
        (void)ParseSegmentHeader(payload);
        break;
      case RecordType::kSnapshot:
        (void)ParseSnapshotMarker(payload);
        break;
      case RecordType::kEntry: {
        etcdpp::raftpb::Entry e;
        (void)e.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
        break;
      }
      case RecordType::kHardState: {
        etcdpp::raftpb::HardState hs;
        (void)hs.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
        break;
      }
      case RecordType::kMetadata:
        break;
    }
    pos += record->frame_size;
  }
  return 0;
}
