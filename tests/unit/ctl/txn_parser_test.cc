// etcdctl's txn input language: compares, request lines, sections.
#include "cmd/etcdppctl/txn_parser.h"

#include <gtest/gtest.h>

#include <sstream>

namespace etcdpp::ctl {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

TEST(ParseCompareTest, ParsesEveryTargetAndOperator) {
  Compare c;
  ASSERT_TRUE(ParseCompare("mod(\"key1\") > \"0\"", &c).ok());
  EXPECT_EQ(c.key(), "key1");
  EXPECT_EQ(c.target(), Compare::MOD);
  EXPECT_EQ(c.result(), Compare::GREATER);
  EXPECT_EQ(c.mod_revision(), 0);
  EXPECT_EQ(c.target_union_case(), Compare::kModRevision);

  ASSERT_TRUE(ParseCompare("value(\"k\") = \"v w\"", &c).ok());
  EXPECT_EQ(c.target(), Compare::VALUE);
  EXPECT_EQ(c.value(), "v w");
  EXPECT_EQ(c.result(), Compare::EQUAL);

  ASSERT_TRUE(ParseCompare("ver(\"k\") != \"2\"", &c).ok());
  EXPECT_EQ(c.target(), Compare::VERSION);
  EXPECT_EQ(c.version(), 2);
  EXPECT_EQ(c.result(), Compare::NOT_EQUAL);

  ASSERT_TRUE(ParseCompare("c(\"k\") < \"5\"", &c).ok());
  EXPECT_EQ(c.target(), Compare::CREATE);
  EXPECT_EQ(c.create_revision(), 5);
  EXPECT_EQ(c.result(), Compare::LESS);

  // Lease IDs are hexadecimal, as etcdctl prints them.
  ASSERT_TRUE(ParseCompare("lease(\"k\") = \"1f\"", &c).ok());
  EXPECT_EQ(c.target(), Compare::LEASE);
  EXPECT_EQ(c.lease(), 0x1f);
}

TEST(ParseCompareTest, KeysAreGoStringLiterals) {
  Compare c;
  ASSERT_TRUE(ParseCompare("val(\"a\\\"b\\x00\") = \"\"", &c).ok());
  EXPECT_EQ(c.key(), std::string("a\"b\0", 4));
  EXPECT_EQ(c.value(), "");
}

TEST(ParseCompareTest, ReportsEtcdctlErrors) {
  Compare c;
  CtlStatus st = ParseCompare("bogus", &c);
  EXPECT_EQ(st.exit_code, kExitInvalidInput);
  EXPECT_EQ(st.message, "malformed comparison: bogus");

  st = ParseCompare("mod(\"k1\") > 0", &c);
  EXPECT_EQ(st.message, "malformed comparison: mod(\"k1\") > 0; got mod(\"k1\") > \"\"");

  // Go's Sscanf needs a space where the format has one.
  st = ParseCompare("mod(\"k1\")>\"1\"", &c);
  EXPECT_EQ(st.message, "malformed comparison: mod(\"k1\")>\"1\"; got mod(\"k1\")  \"\"");

  st = ParseCompare("mod(\"k1\") > \"x\"", &c);
  EXPECT_EQ(st.message, "invalid txn compare request: mod(\"k1\") > \"x\"");

  st = ParseCompare("foo(\"k1\") > \"1\"", &c);
  EXPECT_EQ(st.message, "malformed comparison: foo(\"k1\") > \"1\" (unknown target foo)");
}

TEST(ArgifyTest, SplitsLikeEtcdctl) {
  std::vector<std::string> words;
  ASSERT_TRUE(Argify("put \"a b\" \"c\\td\"  plain", &words).ok());
  EXPECT_EQ(words, (std::vector<std::string>{"put", "a b", "c\td", "plain"}));
  // A word may contain quotes after its first character.
  ASSERT_TRUE(Argify("put a\"b c", &words).ok());
  EXPECT_EQ(words, (std::vector<std::string>{"put", "a\"b", "c"}));
  // etcdctl's quirk: a single-quoted word is cut at (number of words - 1).
  ASSERT_TRUE(Argify("put 'abcdef' v", &words).ok());
  EXPECT_EQ(words, (std::vector<std::string>{"put", "a", "v"}));
}

TEST(ParseRequestOpTest, BuildsPutGetDelWithFlags) {
  RequestOp op;
  ASSERT_TRUE(ParseRequestOp("put k1 \"v 1\" --prev-kv", &op).ok());
  ASSERT_EQ(op.request_case(), RequestOp::kRequestPut);
  EXPECT_EQ(op.request_put().key(), "k1");
  EXPECT_EQ(op.request_put().value(), "v 1");
  EXPECT_TRUE(op.request_put().prev_kv());

  op.Clear();
  ASSERT_TRUE(ParseRequestOp("get k --prefix --limit=2 --sort-by=VALUE --order=DESCEND", &op).ok());
  ASSERT_EQ(op.request_case(), RequestOp::kRequestRange);
  EXPECT_EQ(op.request_range().key(), "k");
  EXPECT_EQ(op.request_range().range_end(), "l");
  EXPECT_EQ(op.request_range().limit(), 2);
  EXPECT_EQ(op.request_range().sort_target(), RangeRequest::VALUE);
  EXPECT_EQ(op.request_range().sort_order(), RangeRequest::DESCEND);

  op.Clear();
  ASSERT_TRUE(ParseRequestOp("del a --from-key --prev-kv", &op).ok());
  ASSERT_EQ(op.request_case(), RequestOp::kRequestDeleteRange);
  EXPECT_EQ(op.request_delete_range().range_end(), std::string(1, '\0'));
  EXPECT_TRUE(op.request_delete_range().prev_kv());
}

TEST(ParseRequestOpTest, RejectsBadLinesLikeEtcdctl) {
  RequestOp op;
  CtlStatus st = ParseRequestOp("put", &op);
  EXPECT_EQ(st.message, "invalid txn compare request: put");
  st = ParseRequestOp("foo bar", &op);
  EXPECT_EQ(st.message, "invalid txn request: foo bar");
  EXPECT_EQ(st.exit_code, kExitInvalidInput);
  // A bad flag also prints what a get line accepts, every flag included.
  st = ParseRequestOp("get k1 -w json", &op);
  EXPECT_EQ(st.message, "invalid txn request: get k1 -w json");
  EXPECT_EQ(st.exit_code, kExitInvalidInput);
  for (const char* flag : {"--consistency", "--count-only", "--from-key", "--keys-only", "--limit",
                           "--order", "--prefix", "--print-value-only", "--rev", "--sort-by"}) {
    EXPECT_NE(st.stderr_prefix.find(flag), std::string::npos) << flag;
  }
  st = ParseRequestOp("put k v --bogus", &op);
  EXPECT_EQ(st.exit_code, kExitInvalidInput);
  EXPECT_NE(st.stderr_prefix.find("--ignore-lease"), std::string::npos);
}

TEST(ReadTxnTest, ReadsThreeSections) {
  std::istringstream in(
      "mod(\"k1\") > \"0\"\n  value(\"k2\") = \"v2\"  \n\nput k1 v\nget k2\n\ndel k3\n\n");
  std::ostringstream prompts;
  TxnRequest txn;
  ASSERT_TRUE(ReadTxn(in, false, prompts, &txn).ok());
  EXPECT_EQ(txn.compare_size(), 2);
  EXPECT_EQ(txn.success_size(), 2);
  EXPECT_EQ(txn.failure_size(), 1);
  EXPECT_EQ(prompts.str(), "");
}

TEST(ReadTxnTest, InteractiveModePromptsEachSection) {
  std::istringstream in("\n\n\n");
  std::ostringstream prompts;
  TxnRequest txn;
  ASSERT_TRUE(ReadTxn(in, true, prompts, &txn).ok());
  EXPECT_EQ(prompts.str(),
            "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n");
}

TEST(ReadTxnTest, EndOfInputBeforeTheLastEmptyLineIsEof) {
  for (const char* input : {"", "mod(\"k1\") > \"1\"\n", "\n\nput k v\n"}) {
    std::istringstream in(input);
    std::ostringstream prompts;
    TxnRequest txn;
    CtlStatus st = ReadTxn(in, false, prompts, &txn);
    EXPECT_EQ(st.message, "EOF") << input;
    EXPECT_EQ(st.exit_code, kExitInvalidInput);
  }
  // A final line without '\n' counts as end of input too.
  std::istringstream in("\n\n");
  std::ostringstream prompts;
  TxnRequest txn;
  EXPECT_EQ(ReadTxn(in, false, prompts, &txn).message, "EOF");
}

}  // namespace
}  // namespace etcdpp::ctl
