#include <gtest/gtest.h>

#include "etcdserverpb/rpc.pb.h"
#include "http/gateway_codec.h"
#include "http/json_stream.h"
#include "http/sniff.h"

namespace etcdpp::http {
namespace {

TEST(SniffTest, PrefaceIsHttp2) {
  EXPECT_EQ(Classify(kHttp2Preface), Protocol::kHttp2);
  EXPECT_EQ(Classify(std::string(kHttp2Preface) + "\x00\x00\x12\x04"), Protocol::kHttp2);
}

TEST(SniffTest, PrefixOfPrefaceWaits) {
  EXPECT_EQ(Classify(""), Protocol::kUndecided);
  EXPECT_EQ(Classify("PRI * HTTP/2"), Protocol::kUndecided);
  EXPECT_EQ(Classify(kHttp2Preface.substr(0, 23)), Protocol::kUndecided);
}

TEST(SniffTest, AnyOtherByteIsHttp1) {
  EXPECT_EQ(Classify("G"), Protocol::kHttp1);
  EXPECT_EQ(Classify("GET /health HTTP/1.1\r\n"), Protocol::kHttp1);
  EXPECT_EQ(Classify("POST /v3/kv/range HTTP/1.1\r\n"), Protocol::kHttp1);
  EXPECT_EQ(Classify("PRI * HTTP/1.1\r\n"), Protocol::kHttp1);
  EXPECT_EQ(Classify(std::string("\x16\x03\x01", 3)), Protocol::kHttp1);  // a TLS hello
}

TEST(JsonValueSplitterTest, SplitsConcatenatedAndSpacedValues) {
  JsonValueSplitter s;
  s.Append(R"({"a":{"b":"}"}} {"c":"\"{"}
[1,2]{})");
  EXPECT_EQ(s.Next(), R"({"a":{"b":"}"}})");
  EXPECT_EQ(s.Next(), R"({"c":"\"{"})");
  EXPECT_EQ(s.Next(), "[1,2]");
  EXPECT_EQ(s.Next(), "{}");
  EXPECT_EQ(s.Next(), std::nullopt);
  EXPECT_EQ(s.TakeRest(), std::nullopt);
}

TEST(JsonValueSplitterTest, WaitsForTheRestOfAValue) {
  JsonValueSplitter s;
  s.Append(R"({"ID":"12)");
  EXPECT_EQ(s.Next(), std::nullopt);
  s.Append(R"(34"}  {"ID")");
  EXPECT_EQ(s.Next(), R"({"ID":"1234"})");
  EXPECT_EQ(s.Next(), std::nullopt);
  EXPECT_EQ(s.TakeRest(), R"({"ID")");  // truncated: for the parser to reject
}

TEST(JsonValueSplitterTest, ScalarTokensEndAtSpaceOrBodyEnd) {
  JsonValueSplitter s;
  s.Append("garbage");
  EXPECT_EQ(s.Next(), std::nullopt);
  EXPECT_EQ(s.TakeRest(), "garbage");
  s.Append("1 {}");
  EXPECT_EQ(s.Next(), "1");
  EXPECT_EQ(s.Next(), "{}");
}

TEST(JsonValueSplitterTest, TooLarge) {
  JsonValueSplitter s(8);
  s.Append("{\"aaaaaaaa");
  EXPECT_EQ(s.Next(), std::nullopt);
  EXPECT_TRUE(s.TooLarge());
}

TEST(GatewayRoutesTest, EtcdPathsAndAliases) {
  ASSERT_NE(FindRoute("/v3/kv/range"), nullptr);
  EXPECT_EQ(FindRoute("/v3/kv/range")->grpc_method, "/etcdserverpb.KV/Range");
  EXPECT_EQ(FindRoute("/v3/kv/range")->kind, CallKind::kUnary);
  EXPECT_EQ(FindRoute("/v3beta/kv/range"), FindRoute("/v3/kv/range"));
  EXPECT_EQ(FindRoute("/v3/kv/lease/revoke")->grpc_method, "/etcdserverpb.Lease/LeaseRevoke");
  EXPECT_EQ(FindRoute("/v3/kv/compaction")->grpc_method, "/etcdserverpb.KV/Compact");
  EXPECT_EQ(FindRoute("/v3/watch")->kind, CallKind::kBidiStream);
  EXPECT_EQ(FindRoute("/v3/lease/keepalive")->kind, CallKind::kBidiStream);
  EXPECT_EQ(FindRoute("/v3/maintenance/snapshot")->kind, CallKind::kServerStream);
  EXPECT_EQ(FindRoute("/v3/maintenance/hash")->grpc_method, "/etcdserverpb.Maintenance/Hash");
  EXPECT_EQ(FindRoute("/v3/maintenance/transfer-leadership")->grpc_method,
            "/etcdserverpb.Maintenance/MoveLeader");
  EXPECT_EQ(FindRoute("/v3/cluster/member/promote")->grpc_method,
            "/etcdserverpb.Cluster/MemberPromote");
  EXPECT_EQ(FindRoute("/v3/kv/range/"), nullptr);
  EXPECT_EQ(FindRoute("/v3alpha/kv/range"), nullptr);
  EXPECT_EQ(FindRoute("/v3/maintenance/hashkv"), nullptr);
  EXPECT_TRUE(IsGatewayPath("/v3/anything"));
  EXPECT_TRUE(IsGatewayPath("/v3beta/anything"));
  EXPECT_FALSE(IsGatewayPath("/v3"));
  EXPECT_FALSE(IsGatewayPath("/v3alpha/kv/range"));
}

TEST(GatewayCodecTest, RequestsTakeBothSpellingsAndInt64AsNumberOrString) {
  const Route& range = *FindRoute("/v3/kv/range");
  std::string bytes;
  ASSERT_TRUE(JsonToRequest(range,
                            R"({"key":"Zm9v","range_end":"Zm9w","limit":"5","revision":7,
                                "keysOnly":true,"sort_order":"DESCEND","unknown_field":1})",
                            &bytes)
                  .ok());
  etcdserverpb::RangeRequest req;
  ASSERT_TRUE(req.ParseFromString(bytes));
  EXPECT_EQ(req.key(), "foo");
  EXPECT_EQ(req.range_end(), "fop");
  EXPECT_EQ(req.limit(), 5);
  EXPECT_EQ(req.revision(), 7);
  EXPECT_TRUE(req.keys_only());
  EXPECT_EQ(req.sort_order(), etcdserverpb::RangeRequest::DESCEND);
}

TEST(GatewayCodecTest, EmptyBodyIsTheEmptyRequest) {
  std::string bytes = "x";
  ASSERT_TRUE(JsonToRequest(*FindRoute("/v3/cluster/member/list"), "  ", &bytes).ok());
  EXPECT_EQ(bytes, "");
}

TEST(GatewayCodecTest, BadJsonIsInvalidArgument) {
  std::string bytes;
  for (const char* bad : {"xx", R"({"key":1})", R"({"limit":"1.5"})", R"({"key":"Zm9v")"}) {
    const grpc::Status st = JsonToRequest(*FindRoute("/v3/kv/range"), bad, &bytes);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_FALSE(st.error_message().empty()) << bad;
  }
}

TEST(GatewayCodecTest, RepliesUseProtoNamesInt64StringsAndOmitZeroes) {
  etcdserverpb::RangeResponse resp;
  resp.mutable_header()->set_cluster_id(15875391935852295136ull);
  resp.mutable_header()->set_member_id(7383792418829112008ull);
  resp.mutable_header()->set_revision(2);
  resp.mutable_header()->set_raft_term(2);
  auto* kv = resp.add_kvs();
  kv->set_key("foo");
  kv->set_value("bar");
  kv->set_create_revision(2);
  kv->set_mod_revision(2);
  kv->set_version(1);
  resp.set_count(1);
  std::string json;
  ASSERT_TRUE(ReplyToJson(*FindRoute("/v3/kv/range"), resp.SerializeAsString(), &json));
  // etcd 3.4's reply to the same range, byte for byte.
  EXPECT_EQ(json,
            R"({"header":{"cluster_id":"15875391935852295136","member_id":"7383792418829112008",)"
            R"("revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2",)"
            R"("mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})");
}

TEST(GatewayCodecTest, EnumsByNameZeroEnumOmittedAndUint32AsNumber) {
  etcdserverpb::WatchResponse w;
  w.set_watch_id(-1);
  auto* ev = w.add_events();
  ev->set_type(mvccpb::Event::DELETE);
  ev->mutable_kv()->set_key("foo");
  ev->mutable_kv()->set_mod_revision(8);
  w.add_events()->mutable_kv()->set_key("a");  // a PUT: type left out
  std::string json;
  ASSERT_TRUE(ReplyToJson(*FindRoute("/v3/watch"), w.SerializeAsString(), &json));
  EXPECT_EQ(
      json,
      R"({"watch_id":"-1","events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"8"}},)"
      R"({"kv":{"key":"YQ=="}}]})");
  etcdserverpb::HashResponse h;
  h.set_hash(4216598830u);
  ASSERT_TRUE(ReplyToJson(*FindRoute("/v3/maintenance/hash"), h.SerializeAsString(), &json));
  EXPECT_EQ(json, R"({"hash":4216598830})");
  etcdserverpb::StatusResponse s;
  s.set_dbsize(20480);
  s.set_version("3.4.0");
  ASSERT_TRUE(ReplyToJson(*FindRoute("/v3/maintenance/status"), s.SerializeAsString(), &json));
  EXPECT_EQ(json, R"({"version":"3.4.0","dbSize":"20480"})");
}

TEST(GatewayCodecTest, ErrorsAsGrpcGatewayGivesThem) {
  const grpc::Status compacted(grpc::StatusCode::OUT_OF_RANGE,
                               "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ErrorJson(compacted),
            R"({"error":"etcdserver: mvcc: required revision has been compacted",)"
            R"("message":"etcdserver: mvcc: required revision has been compacted","code":11})");
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::OUT_OF_RANGE), 400);
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::FAILED_PRECONDITION), 412);
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::UNKNOWN), 500);
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFromGrpc(grpc::StatusCode::CANCELLED), 408);
  EXPECT_EQ(StreamErrorJson(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader")),
            R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader",)"
            R"("http_status":"Service Unavailable"}})");
  EXPECT_EQ(JsonQuote("a\"b\\c\n<&>\x01"), R"("a\"b\\c\n\u003c\u0026\u003e\u0001")");
}

}  // namespace
}  // namespace etcdpp::http
