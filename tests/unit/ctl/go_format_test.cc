// Go formatting rules etcdctl's output depends on.
#include "cmd/etcdppctl/go_format.h"

#include <gtest/gtest.h>

namespace etcdpp::ctl {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(GoQuoteTest, EscapesLikeStrconvQuote) {
  EXPECT_EQ(GoQuote("foo"), "\"foo\"");
  EXPECT_EQ(GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoQuote("t\tn\n\x01\x7f"), "\"t\\tn\\n\\x01\\x7f\"");
  // Printable UTF-8 stays; invalid bytes become \x.
  EXPECT_EQ(GoQuote("\xd0\xba\xff"), "\"\xd0\xba\\xff\"");
  EXPECT_EQ(GoQuote("\xe2\x80\xa8"), "\"\\u2028\"");
}

TEST(GoUnquoteTest, HandlesEscapesAndRejectsBadLiterals) {
  EXPECT_EQ(GoUnquote("\"a\\tb\\x41\\u00e9\\101\""),
            "a\tbA\xc3\xa9"
            "A");
  EXPECT_EQ(GoUnquote("`raw\\n`"), "raw\\n");
  EXPECT_FALSE(GoUnquote("\"unterminated"));
  EXPECT_FALSE(GoUnquote("\"bad \\q escape\""));
  EXPECT_FALSE(GoUnquote("'single'"));
}

TEST(ScanGoQuotedTest, SkipsSpacesAndReportsConsumedBytes) {
  size_t used = 0;
  auto v = ScanGoQuoted("  \"k\\\"1\") rest", &used);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "k\"1");
  EXPECT_EQ(used, 8u);
  EXPECT_FALSE(ScanGoQuoted("0", &used));
  EXPECT_FALSE(ScanGoQuoted("", &used));
}

TEST(GoDurationTest, FormatsLikeDurationString) {
  EXPECT_EQ(FormatGoDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatGoDuration(nanoseconds(999)), "999ns");
  EXPECT_EQ(FormatGoDuration(microseconds(1500)), "1.5ms");
  EXPECT_EQ(FormatGoDuration(nanoseconds(1757729)), "1.757729ms");
  EXPECT_EQ(FormatGoDuration(nanoseconds(2500)), "2.5\xc2\xb5s");
  EXPECT_EQ(FormatGoDuration(seconds(5)), "5s");
  EXPECT_EQ(FormatGoDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatGoDuration(seconds(7200)), "2h0m0s");
  EXPECT_EQ(FormatGoDuration(milliseconds(-1500)), "-1.5s");
}

TEST(GoDurationTest, ParsesLikeParseDuration) {
  EXPECT_EQ(ParseGoDuration("5s"), nanoseconds(seconds(5)));
  EXPECT_EQ(ParseGoDuration("500ms"), nanoseconds(milliseconds(500)));
  EXPECT_EQ(ParseGoDuration("1m30s"), nanoseconds(seconds(90)));
  EXPECT_EQ(ParseGoDuration("1.5s"), nanoseconds(milliseconds(1500)));
  EXPECT_EQ(ParseGoDuration("0"), nanoseconds(0));
  EXPECT_FALSE(ParseGoDuration("5"));
  EXPECT_FALSE(ParseGoDuration("bogus"));
  EXPECT_FALSE(ParseGoDuration(""));
}

TEST(HumanizeBytesTest, UsesSiUnitsLikeGoHumanize) {
  EXPECT_EQ(HumanizeBytes(9), "9 B");
  EXPECT_EQ(HumanizeBytes(20480), "20 kB");
  EXPECT_EQ(HumanizeBytes(1200000), "1.2 MB");
  EXPECT_EQ(HumanizeBytes(999), "999 B");
}

TEST(Base64Test, EncodesWithPadding) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("k1"), "azE=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("y"), "eQ==");
}

TEST(HexEscapeTest, EscapesEveryByte) { EXPECT_EQ(HexEscape("k1\xff"), "\\x6b\\x31\\xff"); }

TEST(GoParseIntTest, ParsesAndReportsGoErrors) {
  std::string err;
  EXPECT_EQ(GoParseInt("-42", 10, &err), -42);
  EXPECT_EQ(GoParseInt("694d77f5c0e5a21b", 16, &err), 0x694d77f5c0e5a21bLL);
  EXPECT_FALSE(GoParseInt("abc", 10, &err));
  EXPECT_EQ(err, "strconv.ParseInt: parsing \"abc\": invalid syntax");
  EXPECT_FALSE(GoParseInt("9223372036854775808", 10, &err));
  EXPECT_EQ(err, "strconv.ParseInt: parsing \"9223372036854775808\": value out of range");
  EXPECT_FALSE(GoParseInt("0x10", 16, &err));
}

}  // namespace
}  // namespace etcdpp::ctl
