// The JSON side of the v3 gateway, without I/O: which gRPC method a path
// names, JSON request -> protobuf bytes, protobuf bytes -> JSON reply, and
// gRPC errors -> HTTP status and body. The mapping is etcd 3.4's
// grpc-gateway's (a fact clients parse): field names as in the .proto,
// int64 as JSON strings in replies, bytes in base64, enums by name, zero
// values left out; requests may use the lowerCamel spelling too, give int64
// as numbers or strings, and carry unknown fields (ignored).
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

namespace google::protobuf {
class Descriptor;
}

namespace etcdpp::http {

enum class CallKind { kUnary, kServerStream, kBidiStream };

struct Route {
  std::string grpc_method;  // "/etcdserverpb.KV/Range"
  const google::protobuf::Descriptor* request;
  const google::protobuf::Descriptor* response;
  CallKind kind;
};

// True for the paths the gateway owns ("/v3/..." and the "/v3beta/..." alias).
bool IsGatewayPath(std::string_view path);
// The route for a path (no query string), or nullptr.
const Route* FindRoute(std::string_view path);

// Parses the JSON of one request (empty text: the empty message) and
// serializes it. Errors are INVALID_ARGUMENT with the parser's reason.
grpc::Status JsonToRequest(const Route& route, std::string_view json, std::string* serialized);
// The reply as JSON; false if the bytes do not parse as the reply type.
bool ReplyToJson(const Route& route, const std::string& serialized, std::string* json);

// grpc-gateway's HTTP status for a gRPC code (etcd 3.4's version).
int HttpStatusFromGrpc(grpc::StatusCode code);
// The reason phrase of an HTTP status, as Go spells it ("Precondition Failed").
std::string_view HttpStatusText(int status);
// {"error":msg,"message":msg,"code":N}: a failed unary call.
std::string ErrorJson(const grpc::Status& status);
// {"error":{"grpc_code":N,"http_code":H,"message":msg,"http_status":text}}:
// a stream that failed after its reply began.
std::string StreamErrorJson(const grpc::Status& status);
// `text` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace etcdpp::http
