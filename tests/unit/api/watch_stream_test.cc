// WatchStream's writes, seen from its Writer: a transport that takes one
// response per write (gRPC) gets exactly that, and one built with a batch
// size gets everything queued behind a write in the next one, up to that
// size, in order. The stream runs over a fake member and a real WatchHub;
// the writer holds every write until the test completes it.
#include "api/watch_stream.h"

#include <gtest/gtest.h>

#include <deque>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "api/watch_write_pump.h"
#include "unit/api/fake_member.h"
#include "watch/watch_hub.h"

namespace etcdpp::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// Records each write as the messages staged for it; completes nothing.
class HeldWriter final : public WatchStream::Writer {
 public:
  char* Stage(size_t size) override {
    // A deque: what Stage returned stays put while later ones are staged.
    staged_.emplace_back(size, '\0');
    return staged_.back().data();
  }
  void Write(bool more) override {
    std::lock_guard<std::mutex> lock(mu_);
    writes_.emplace_back(staged_.begin(), staged_.end());
    more_.push_back(more);
    staged_.clear();
  }
  void EndCall(const grpc::Status&) override {}

  std::vector<std::vector<std::string>> writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }
  std::vector<bool> more() const {
    std::lock_guard<std::mutex> lock(mu_);
    return more_;
  }

 private:
  // Between a Stage and its Write only the thread in the stream's Pump
  // touches it.
  std::deque<std::string> staged_;
  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> writes_;  // guarded by mu_
  std::vector<bool> more_;                        // guarded by mu_
};

class WatchStreamTest : public ::testing::Test {
 protected:
  WatchStreamTest() : hub_(member_.store().get()) {
    deps_.cluster = &member_;
    deps_.hub = &hub_;
    deps_.pump = &pump_;
  }
  ~WatchStreamTest() override { hub_.Stop(); }

  std::unique_ptr<WatchStream> Open(size_t batch_bytes) {
    auto stream = std::make_unique<WatchStream>(deps_, nullptr, CallCredentials{}, &writer_,
                                                std::numeric_limits<int>::max(), batch_bytes);
    stream->Start();
    return stream;
  }
  static WatchRequest CreateOn(const std::string& key) {
    WatchRequest request;
    request.mutable_create_request()->set_key(key);
    return request;
  }
  // The watch ids of the created responses a write carried, in order.
  static std::vector<int64_t> CreatedIds(const std::vector<std::string>& messages) {
    std::vector<int64_t> ids;
    for (const std::string& m : messages) {
      WatchResponse response;
      EXPECT_TRUE(response.ParseFromString(m));
      EXPECT_TRUE(response.created());
      ids.push_back(response.watch_id());
    }
    return ids;
  }

  testing::FakeMember member_;
  watch::WatchHub hub_;
  WritePump pump_;
  WatchStreamDeps deps_{};
  HeldWriter writer_;
};

TEST_F(WatchStreamTest, WithoutABatchSizeEachWriteCarriesOneResponse) {
  auto stream = Open(0);
  for (int i = 0; i < 4; ++i) stream->Handle(CreateOn("k"));
  // The first create's answer is being written; three wait behind it.
  ASSERT_EQ(writer_.writes().size(), 1u);
  EXPECT_EQ(writer_.more(), std::vector<bool>({false}));
  for (int done = 1; done < 4; ++done) {
    stream->WriteDone(true);
    ASSERT_EQ(writer_.writes().size(), static_cast<size_t>(done + 1));
  }
  const auto writes = writer_.writes();
  for (size_t i = 0; i < writes.size(); ++i) {
    EXPECT_EQ(CreatedIds(writes[i]), std::vector<int64_t>({static_cast<int64_t>(i)}));
  }
  EXPECT_EQ(writer_.more(), std::vector<bool>({false, true, true, false}));
  stream->WriteDone(true);
  EXPECT_EQ(writer_.writes().size(), 4u);
  stream->Detach();
}

TEST_F(WatchStreamTest, AWriteTakesEveryResponseQueuedBehindTheOneBeforeIt) {
  auto stream = Open(64 << 10);
  for (int i = 0; i < 6; ++i) stream->Handle(CreateOn("k"));
  ASSERT_EQ(writer_.writes().size(), 1u);
  stream->WriteDone(true);
  const auto writes = writer_.writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(CreatedIds(writes[0]), std::vector<int64_t>({0}));
  EXPECT_EQ(CreatedIds(writes[1]), std::vector<int64_t>({1, 2, 3, 4, 5}));
  EXPECT_EQ(writer_.more(), std::vector<bool>({false, false}));
  // Nothing was left behind for a third write.
  stream->WriteDone(true);
  EXPECT_EQ(writer_.writes().size(), 2u);
  stream->Detach();
}

TEST_F(WatchStreamTest, AWriteStopsBeforeTheResponseThatWouldPassTheBatchSize) {
  // Every created response here has the same size (ids below 128): the
  // first write's tells it. Room for two and a bit.
  auto probe = Open(0);
  probe->Handle(CreateOn("k"));
  const size_t size = writer_.writes().at(0).at(0).size();
  probe->WriteDone(true);
  probe->Detach();
  probe.reset();

  const size_t first_write = writer_.writes().size();
  auto stream = Open(2 * size + size / 2);
  for (int i = 0; i < 6; ++i) stream->Handle(CreateOn("k"));
  stream->WriteDone(true);  // Five wait: two go.
  stream->WriteDone(true);  // Three wait: two go.
  stream->WriteDone(true);  // The last one.
  const auto all = writer_.writes();
  ASSERT_EQ(all.size(), first_write + 4);
  const std::vector<std::vector<std::string>> writes(all.begin() + first_write, all.end());
  EXPECT_EQ(CreatedIds(writes[0]), std::vector<int64_t>({0}));
  EXPECT_EQ(CreatedIds(writes[1]), std::vector<int64_t>({1, 2}));
  EXPECT_EQ(CreatedIds(writes[2]), std::vector<int64_t>({3, 4}));
  EXPECT_EQ(CreatedIds(writes[3]), std::vector<int64_t>({5}));
  stream->WriteDone(true);
  stream->Detach();
}

TEST_F(WatchStreamTest, AResponseLargerThanTheBatchSizeStillGoesAlone) {
  auto stream = Open(1);
  for (int i = 0; i < 3; ++i) stream->Handle(CreateOn("k"));
  stream->WriteDone(true);
  stream->WriteDone(true);
  const auto writes = writer_.writes();
  ASSERT_EQ(writes.size(), 3u);
  for (size_t i = 0; i < writes.size(); ++i) {
    EXPECT_EQ(CreatedIds(writes[i]), std::vector<int64_t>({static_cast<int64_t>(i)}));
  }
  stream->WriteDone(true);
  stream->Detach();
}

}  // namespace
}  // namespace etcdpp::api
