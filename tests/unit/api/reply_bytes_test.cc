// ReplyBytes (api/h2front/reply_bytes.h) against a plain string: whatever
// mix of moved buffers, copied writes, in-place writes and partial takes,
// the bytes come out in the order they went in, none lost or repeated.
#include "api/h2front/reply_bytes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

namespace etcdpp::api::h2front {
namespace {

// Bytes that tell their position apart, so a reordering shows.
std::string Numbered(size_t n, size_t* next) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*next)++ % 251);
  return s;
}

TEST(ReplyBytesTest, BytesLeaveInTheOrderTheyCameWhateverTheMix) {
  std::mt19937 rng(20261207);
  for (int round = 0; round < 200; ++round) {
    ReplyBytes queue;
    std::string expected;  // what is queued, as one string
    std::string taken;     // what came out
    std::string model_taken;
    size_t next = 0;
    for (int step = 0; step < 300; ++step) {
      // Sizes around kCopyBelowBytes (4 KiB) and a watch batch (16 KiB).
      const size_t sizes[] = {0, 1, 5, 37, 300, 4095, 4096, 4097, 16384, 40000};
      const size_t n = sizes[rng() % std::size(sizes)];
      switch (rng() % 5) {
        case 0: {
          std::string bytes = Numbered(n, &next);
          expected += bytes;
          queue.Append(std::move(bytes));
          break;
        }
        case 1: {
          const std::string bytes = Numbered(n, &next);
          expected += bytes;
          queue.Append(std::string_view(bytes));
          break;
        }
        case 2: {
          const std::string bytes = Numbered(n, &next);
          expected += bytes;
          char* at = queue.Extend(n);
          if (n > 0) std::memcpy(at, bytes.data(), n);
          break;
        }
        case 3: {
          const size_t take = expected.empty() ? 0 : rng() % (expected.size() + 1);
          queue.MoveFrontTo(take, &taken);
          model_taken += expected.substr(0, take);
          expected.erase(0, take);
          break;
        }
        case 4:
          if (rng() % 10 == 0) {
            queue.Clear();
            expected.clear();
          }
          break;
      }
      ASSERT_EQ(queue.size(), expected.size()) << "round " << round << " step " << step;
      ASSERT_EQ(queue.empty(), expected.empty());
    }
    queue.MoveFrontTo(queue.size(), &taken);
    model_taken += expected;
    ASSERT_EQ(taken, model_taken) << "round " << round;
    EXPECT_TRUE(queue.empty());
  }
}

TEST(ReplyBytesTest, AnExtendIsContiguousAndLandsBehindWhatIsQueued) {
  ReplyBytes queue;
  queue.Append(std::string(20000, 'a'));  // a buffer of its own
  char* at = queue.Extend(5);
  std::memcpy(at, "hello", 5);
  queue.Append(std::string_view("!"));
  std::string out;
  queue.MoveFrontTo(19999, &out);
  EXPECT_EQ(queue.size(), 7u);
  out.clear();
  queue.MoveFrontTo(7, &out);
  EXPECT_EQ(out, "ahello!");
}

}  // namespace
}  // namespace etcdpp::api::h2front
