// The v2 store's semantics as etcd v2 clients rely on them: indexes, the
// error codes and causes, directories, in-order keys, TTLs and watches.
#include "v2store/store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "v2store/apply.h"

namespace etcdpp::v2store {
namespace {

constexpr int64_t kSecond = 1000000000;
// A fixed "now" well after 2000, so expiry times are taken as real ones.
constexpr int64_t kNow = int64_t{1800000000} * kSecond;

class StoreTest : public ::testing::Test {
 protected:
  Store store_{[this] { return now_; }};
  int64_t now_ = kNow;
};

void ExpectError(const Outcome& out, ErrorCode code, const std::string& cause, uint64_t index) {
  ASSERT_FALSE(out.ok()) << "expected error " << static_cast<int>(code);
  EXPECT_EQ(out.error->code, code);
  EXPECT_EQ(out.error->cause, cause);
  EXPECT_EQ(out.error->index, index);
}

TEST_F(StoreTest, SetGetAndIndexes) {
  Outcome set = store_.Set("/foo", false, "bar", 0, false);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.event.action, "set");
  EXPECT_FALSE(set.event.prev_node.has_value());
  EXPECT_EQ(set.event.node.modified_index, 1u);
  EXPECT_EQ(set.event.etcd_index, 1u);
  Outcome again = store_.Set("/foo", false, "baz", 0, false);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again.event.prev_node.has_value());
  EXPECT_EQ(again.event.prev_node->value, "bar");
  EXPECT_EQ(again.event.node.created_index, 2u);  // a set replaces the node
  Outcome get = store_.Get("/foo", false, false);
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get.event.node.value, "baz");
  EXPECT_EQ(get.event.etcd_index, 2u);
  EXPECT_EQ(store_.index(), 2u);
}

TEST_F(StoreTest, FailedWritesChangeNothing) {
  ASSERT_TRUE(store_.Set("/a", false, "1", 0, false).ok());
  ExpectError(store_.Create("/a", false, "2", false, 0), ErrorCode::kNodeExist, "/a", 1);
  ExpectError(store_.Update("/b", "2", 0, false), ErrorCode::kKeyNotFound, "/b", 1);
  ExpectError(store_.CompareAndSwap("/a", "x", 0, "2", 0, false), ErrorCode::kTestFailed,
              "[x != 1]", 1);
  ExpectError(store_.CompareAndSwap("/a", "", 7, "2", 0, false), ErrorCode::kTestFailed, "[7 != 1]",
              1);
  ExpectError(store_.CompareAndSwap("/a", "x", 7, "2", 0, false), ErrorCode::kTestFailed,
              "[x != 1] [7 != 1]", 1);
  ExpectError(store_.CompareAndDelete("/a", "x", 0), ErrorCode::kTestFailed, "[x != 1]", 1);
  EXPECT_EQ(store_.index(), 1u);
  EXPECT_EQ(store_.Get("/a", false, false).event.node.value, "1");
}

TEST_F(StoreTest, CompareAndSwapAndDelete) {
  ASSERT_TRUE(store_.Set("/a", false, "1", 0, false).ok());
  Outcome cas = store_.CompareAndSwap("/a", "1", 1, "2", 0, false);
  ASSERT_TRUE(cas.ok());
  EXPECT_EQ(cas.event.action, "compareAndSwap");
  EXPECT_EQ(cas.event.node.created_index, 1u);
  EXPECT_EQ(cas.event.node.modified_index, 2u);
  Outcome cad = store_.CompareAndDelete("/a", "2", 2);
  ASSERT_TRUE(cad.ok());
  EXPECT_EQ(cad.event.action, "compareAndDelete");
  EXPECT_FALSE(cad.event.node.value.has_value());
  EXPECT_EQ(cad.event.prev_node->value, "2");
  ExpectError(store_.Get("/a", false, false), ErrorCode::kKeyNotFound, "/a", 3);
}

TEST_F(StoreTest, DirectoryErrors) {
  ASSERT_TRUE(store_.Set("/dir/file", false, "v", 0, false).ok());
  // The parent was made on the way, at the index of the write.
  Outcome dir = store_.Get("/dir", false, false);
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(dir.event.node.dir);
  EXPECT_EQ(dir.event.node.created_index, 1u);
  ExpectError(store_.Set("/dir", false, "x", 0, false), ErrorCode::kNotFile, "/dir", 1);
  ExpectError(store_.Set("/dir/file/sub", false, "x", 0, false), ErrorCode::kNotDir, "/dir/file",
              1);
  ExpectError(store_.Get("/dir/file/sub", false, false), ErrorCode::kNotDir, "/dir/file", 1);
  ExpectError(store_.Delete("/dir", false, false), ErrorCode::kNotFile, "/dir", 1);
  ExpectError(store_.Delete("/dir", true, false), ErrorCode::kDirNotEmpty, "/dir", 1);
  ExpectError(store_.Delete("", true, true), ErrorCode::kRootReadOnly, "/", 1);
  ExpectError(store_.Set("", false, "x", 0, false), ErrorCode::kRootReadOnly, "/", 1);
  ExpectError(store_.CompareAndDelete("/dir", "x", 0), ErrorCode::kNotFile, "/dir", 1);
  Outcome removed = store_.Delete("/dir", false, true);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed.event.node.dir);
  ExpectError(store_.Get("/dir/file", false, false), ErrorCode::kKeyNotFound, "/dir", 2);
}

TEST_F(StoreTest, ListingsHideUnderscoreNamesAndRecurseOnRequest) {
  ASSERT_TRUE(store_.Set("/d/b", false, "b", 0, false).ok());
  ASSERT_TRUE(store_.Set("/d/a/x", false, "x", 0, false).ok());
  ASSERT_TRUE(store_.Set("/d/_h", false, "h", 0, false).ok());
  Outcome flat = store_.Get("/d", false, true);
  ASSERT_EQ(flat.event.node.nodes.size(), 2u);
  EXPECT_EQ(flat.event.node.nodes[0].key, "/d/a");
  EXPECT_TRUE(flat.event.node.nodes[0].nodes.empty());
  EXPECT_EQ(flat.event.node.nodes[1].key, "/d/b");
  Outcome deep = store_.Get("/d", true, true);
  ASSERT_EQ(deep.event.node.nodes[0].nodes.size(), 1u);
  EXPECT_EQ(deep.event.node.nodes[0].nodes[0].value, "x");
  EXPECT_TRUE(store_.Get("/d/_h", false, false).ok());  // hidden, not secret
}

TEST_F(StoreTest, InOrderKeysAreNamedByIndex) {
  ASSERT_TRUE(store_.Set("/other", false, "o", 0, false).ok());
  Outcome first = store_.Create("/q", false, "1", true, 0);
  Outcome second = store_.Create("/q", false, "2", true, 0);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first.event.node.key, "/q/00000000000000000002");
  EXPECT_EQ(second.event.node.key, "/q/00000000000000000003");
  ExpectError(store_.Create("/other", false, "x", true, 0), ErrorCode::kNotDir, "/other", 3);
}

TEST_F(StoreTest, TtlShownRoundedUpAndExpiredBySweep) {
  ASSERT_TRUE(store_.Set("/t", false, "v", kNow + 2 * kSecond, false).ok());
  EXPECT_TRUE(store_.HasTtlKeys());
  now_ = kNow + kSecond / 2;  // 1.5 s left: shown as 2
  EXPECT_EQ(store_.Get("/t", false, false).event.node.ttl, 2);
  store_.DeleteExpired(kNow + kSecond);  // not due yet
  EXPECT_TRUE(store_.Get("/t", false, false).ok());
  store_.DeleteExpired(kNow + 2 * kSecond);
  ExpectError(store_.Get("/t", false, false), ErrorCode::kKeyNotFound, "/t", 2);
  EXPECT_FALSE(store_.HasTtlKeys());
  EXPECT_EQ(store_.stats().expire_count, 1u);
}

TEST_F(StoreTest, UpdateWithoutTtlMakesPermanentAndRefreshKeepsValue) {
  ASSERT_TRUE(store_.Set("/t", false, "v", kNow + 5 * kSecond, false).ok());
  Outcome refresh = store_.Update("/t", "", kNow + 50 * kSecond, true);
  ASSERT_TRUE(refresh.ok());
  EXPECT_TRUE(refresh.event.refresh);
  EXPECT_EQ(refresh.event.node.value, "v");
  EXPECT_EQ(refresh.event.node.ttl, 50);
  ASSERT_TRUE(store_.Update("/t", "w", 0, false).ok());
  EXPECT_FALSE(store_.HasTtlKeys());
  store_.DeleteExpired(kNow + 100 * kSecond);
  EXPECT_EQ(store_.Get("/t", false, false).event.node.value, "w");
}

TEST_F(StoreTest, ExpiredDirectoryTakesItsChildren) {
  ASSERT_TRUE(store_.Set("/d", true, "", kNow + kSecond, false).ok());
  ASSERT_TRUE(store_.Set("/d/x", false, "x", kNow + 10 * kSecond, false).ok());
  std::vector<Event> seen;
  store_.Watch("/d/x", false, false, 0, [&](const Event& e) { seen.push_back(e); });
  store_.DeleteExpired(kNow + kSecond);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].action, "expire");
  EXPECT_EQ(seen[0].node.key, "/d");
  EXPECT_FALSE(store_.HasTtlKeys());
  EXPECT_EQ(store_.index(), 3u);
}

TEST_F(StoreTest, WatchWokenOnceByLaterWrite) {
  std::vector<Event> seen;
  auto start = store_.Watch("/w", false, false, 0, [&](const Event& e) { seen.push_back(e); });
  ASSERT_FALSE(start.error || start.immediate);
  ASSERT_TRUE(store_.Set("/other", false, "x", 0, false).ok());
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(store_.Set("/w", false, "1", 0, false).ok());
  ASSERT_TRUE(store_.Set("/w", false, "2", 0, false).ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].node.value, "1");
  EXPECT_EQ(store_.stats().watchers, 0u);
}

TEST_F(StoreTest, RecursiveWatchSkipsHiddenNodes) {
  std::vector<Event> seen;
  store_.Watch("/d", true, true, 0, [&](const Event& e) { seen.push_back(e); });
  ASSERT_TRUE(store_.Set("/d/_hidden", false, "h", 0, false).ok());
  ASSERT_TRUE(store_.Set("/d/x/y", false, "y", 0, false).ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].node.key, "/d/x/y");
}

TEST_F(StoreTest, WatchFromHistoryAndOutdatedIndex) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store_.Set("/h", false, std::to_string(i), 0, false).ok());
  auto past = store_.Watch("/h", false, false, 3, [](const Event&) {});
  ASSERT_TRUE(past.immediate.has_value());
  EXPECT_EQ(past.immediate->node.value, "2");
  EXPECT_EQ(past.immediate->etcd_index, 5u);
  for (size_t i = 0; i < kEventHistoryCapacity; ++i) {
    ASSERT_TRUE(store_.Set("/many", false, "x", 0, false).ok());
  }
  auto outdated = store_.Watch("/h", false, false, 3, [](const Event&) {});
  ASSERT_TRUE(outdated.error.has_value());
  EXPECT_EQ(outdated.error->code, ErrorCode::kEventIndexCleared);
  EXPECT_EQ(outdated.error->cause, "the requested history has been cleared [6/3]");
  EXPECT_EQ(outdated.error->index, 1005u);
}

TEST_F(StoreTest, CancelledWatchHearsNothing) {
  int heard = 0;
  auto start = store_.Watch("/c", false, false, 0, [&](const Event&) { ++heard; });
  store_.CancelWatch(start.id);
  ASSERT_TRUE(store_.Set("/c", false, "x", 0, false).ok());
  EXPECT_EQ(heard, 0);
}

TEST_F(StoreTest, ApplyDispatchesLikeEtcd) {
  internalpb::V2Request put;
  put.set_method("PUT");
  put.set_path("/k");
  put.set_value("1");
  internalpb::V2Response response;
  ApplyV2Request(store_, put, &response);
  EXPECT_EQ(response.action(), "set");
  put.set_has_prev_exist(true);
  put.set_prev_exist(false);
  response.Clear();
  ApplyV2Request(store_, put, &response);
  EXPECT_EQ(response.error_code(), 105);
  put.set_prev_exist(true);
  put.set_prev_value("1");
  put.set_value("2");
  response.Clear();
  ApplyV2Request(store_, put, &response);
  EXPECT_EQ(response.action(), "compareAndSwap");
  internalpb::V2Request post;
  post.set_method("POST");
  post.set_path("/q");
  response.Clear();
  ApplyV2Request(store_, post, &response);
  EXPECT_EQ(response.action(), "create");
  internalpb::V2Request del;
  del.set_method("DELETE");
  del.set_path("/k");
  del.set_prev_index(99);
  response.Clear();
  ApplyV2Request(store_, del, &response);
  EXPECT_EQ(response.error_code(), 101);
}

TEST(CleanKeyTest, AsGoPathClean) {
  EXPECT_EQ(CleanKey("/"), "");
  EXPECT_EQ(CleanKey(""), "");
  EXPECT_EQ(CleanKey("a//b/../c/"), "/a/c");
  EXPECT_EQ(CleanKey("/../x"), "/x");
  EXPECT_EQ(CleanKey("/a/./b"), "/a/b");
}

}  // namespace
}  // namespace etcdpp::v2store
