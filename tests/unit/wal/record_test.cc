#include "wal/record.h"

#include <gtest/gtest.h>

#include "raftpb/raft.pb.h"
#include "wal/wal.h"

namespace etcdpp::wal {
namespace {

TEST(RecordTest, RoundTripsAndAlignsEveryDataSize) {
  for (size_t n = 0; n < 40; ++n) {
    std::string data(n, 'x');
    std::string buf;
    uint32_t crc = AppendRecord(&buf, RecordType::kMetadata, 77, data);
    EXPECT_EQ(buf.size() % 8, 0u) << n;
    auto r = DecodeRecord(buf);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->type, RecordType::kMetadata);
    EXPECT_EQ(r->durable_offset, 77u);
    EXPECT_EQ(r->data, data);
    EXPECT_EQ(r->crc, crc);
    EXPECT_EQ(r->frame_size, buf.size());
  }
}

TEST(RecordTest, ProtoRecordDecodesToTheMessage) {
  raftpb::Entry e;
  e.set_index(5);
  e.set_term(2);
  e.set_data("payload");
  std::string buf;
  AppendProtoRecord(&buf, RecordType::kEntry, 0, e);
  AppendRecord(&buf, RecordType::kSnapshot, 0, EncodeSnapshotMarker({9, 3}));
  auto r = DecodeRecord(buf);
  ASSERT_TRUE(r.ok());
  raftpb::Entry back;
  ASSERT_TRUE(back.ParseFromArray(r->data.data(), static_cast<int>(r->data.size())));
  EXPECT_EQ(back.index(), 5u);
  EXPECT_EQ(back.data(), "payload");
  auto next = DecodeRecord(std::string_view(buf).substr(r->frame_size));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*ParseSnapshotMarker(next->data), (SnapshotMarker{9, 3}));
}

TEST(RecordTest, EveryTruncationIsRejected) {
  std::string buf;
  AppendRecord(&buf, RecordType::kMetadata, 0, "some metadata bytes");
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_FALSE(DecodeRecord(std::string_view(buf).substr(0, n)).ok()) << n;
  }
}

TEST(RecordTest, EveryBitFlipIsRejected) {
  std::string buf;
  AppendRecord(&buf, RecordType::kMetadata, 12, "metadata!");  // 9 bytes: 7 of padding.
  for (size_t i = 0; i < buf.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_EQ(DecodeRecord(bad).status().code(), Code::kCorruption) << i << ":" << bit;
    }
  }
}

TEST(RecordTest, ZeroHeaderAndImpossibleLengthsAreRejected) {
  std::string zeros(64, '\0');
  EXPECT_TRUE(IsZeroHeader(zeros));
  EXPECT_EQ(DecodeRecord(zeros).status().message(), "zero header");
  // Present bit, length 2^40: bounds-checked before any read.
  std::string huge(64, '\0');
  huge[5] = 1;
  huge[7] = static_cast<char>(0x80);
  EXPECT_EQ(DecodeRecord(huge).status().message().rfind("bad length", 0), 0u);
}

TEST(RecordTest, SegmentHeaderRoundTrip) {
  auto h = ParseSegmentHeader(EncodeSegmentHeader({kFormatVersion, 42, 0xdeadbeef}));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->seq, 42u);
  EXPECT_EQ(h->prev_crc, 0xdeadbeefu);
  EXPECT_FALSE(ParseSegmentHeader(EncodeSegmentHeader({7, 1, 0})).ok());
}

TEST(SegmentNameTest, FormatsAndParses) {
  EXPECT_EQ(SegmentName(1, 0xab), "0000000000000001-00000000000000ab.wal");
  auto id = ParseSegmentName("0000000000000001-00000000000000ab.wal");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->seq, 1u);
  EXPECT_EQ(id->index, 0xabu);
  EXPECT_FALSE(ParseSegmentName("0000000000000001-00000000000000ab.wal.tmp"));
  EXPECT_FALSE(ParseSegmentName("0000000000000001-00000000000000AB.wal"));
  EXPECT_FALSE(ParseSegmentName("LOCK"));
}

}  // namespace
}  // namespace etcdpp::wal
