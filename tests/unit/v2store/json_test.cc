// The JSON shapes clients parse, as etcd's Go encoder writes them.
#include "v2store/json.h"

#include <gtest/gtest.h>

namespace etcdpp::v2store {
namespace {

TEST(V2JsonTest, EventFieldsInEtcdOrderWithOmitEmpty) {
  Event e;
  e.action = "set";
  e.node = NodeView{.key = "/a",
                    .value = std::string(),  // present and empty
                    .dir = false,
                    .expiration_ns = int64_t{1800000000} * 1000000000 + 120000000,
                    .ttl = 5,
                    .nodes = {},
                    .modified_index = 7,
                    .created_index = 7};
  NodeView prev;
  prev.key = "/a";
  prev.value = "old";
  prev.modified_index = 3;
  prev.created_index = 2;
  e.prev_node = prev;
  EXPECT_EQ(EventJson(e),
            "{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"\",\"expiration\":"
            "\"2027-01-15T08:00:00.12Z\",\"ttl\":5,\"modifiedIndex\":7,\"createdIndex\":7},"
            "\"prevNode\":{\"key\":\"/a\",\"value\":\"old\",\"modifiedIndex\":3,"
            "\"createdIndex\":2}}\n");
  EXPECT_EQ(EventJson(e, true), "{\"action\":\"set\"}\n");
}

TEST(V2JsonTest, ErrorBody) {
  EXPECT_EQ(ErrorJson(Error{ErrorCode::kKeyNotFound, "/x", 12}),
            "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/x\",\"index\":12}\n");
  EXPECT_EQ(ErrorJson(Error{ErrorCode::kNotFile, "", 3}),
            "{\"errorCode\":102,\"message\":\"Not a file\",\"index\":3}\n");
}

TEST(V2JsonTest, StringsEscapedAsGo) {
  EXPECT_EQ(JsonString("<a&b>\"\\\n\x01"), "\"\\u003ca\\u0026b\\u003e\\\"\\\\\\n\\u0001\"");
  EXPECT_EQ(JsonString("\xc3\xa9"), "\"\xc3\xa9\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonString("\xe2\x80\xa8"), "\"\\u2028\"");
}

TEST(V2JsonTest, TimesWithoutTrailingZeros) {
  EXPECT_EQ(Rfc3339Nano(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339Nano(1500000000), "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(Rfc3339Nano(123), "1970-01-01T00:00:00.000000123Z");
}

}  // namespace
}  // namespace etcdpp::v2store
