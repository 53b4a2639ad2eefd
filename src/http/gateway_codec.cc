#include "http/gateway_codec.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <map>
#include <memory>

namespace etcdpp::http {
namespace {

namespace pb = google::protobuf;

// etcd 3.4's gateway paths (google.api.http annotations of its .proto files).
struct PathBinding {
  const char* path;
  const char* method;  // full protobuf name, "etcdserverpb.KV.Range"
};
constexpr PathBinding kBindings[] = {
    {"/v3/kv/range", "etcdserverpb.KV.Range"},
    {"/v3/kv/put", "etcdserverpb.KV.Put"},
    {"/v3/kv/deleterange", "etcdserverpb.KV.DeleteRange"},
    {"/v3/kv/txn", "etcdserverpb.KV.Txn"},
    {"/v3/kv/compaction", "etcdserverpb.KV.Compact"},
    {"/v3/watch", "etcdserverpb.Watch.Watch"},
    {"/v3/lease/grant", "etcdserverpb.Lease.LeaseGrant"},
    {"/v3/lease/revoke", "etcdserverpb.Lease.LeaseRevoke"},
    {"/v3/kv/lease/revoke", "etcdserverpb.Lease.LeaseRevoke"},
    {"/v3/lease/keepalive", "etcdserverpb.Lease.LeaseKeepAlive"},
    {"/v3/lease/timetolive", "etcdserverpb.Lease.LeaseTimeToLive"},
    {"/v3/kv/lease/timetolive", "etcdserverpb.Lease.LeaseTimeToLive"},
    {"/v3/lease/leases", "etcdserverpb.Lease.LeaseLeases"},
    {"/v3/kv/lease/leases", "etcdserverpb.Lease.LeaseLeases"},
    {"/v3/cluster/member/add", "etcdserverpb.Cluster.MemberAdd"},
    {"/v3/cluster/member/remove", "etcdserverpb.Cluster.MemberRemove"},
    {"/v3/cluster/member/update", "etcdserverpb.Cluster.MemberUpdate"},
    {"/v3/cluster/member/list", "etcdserverpb.Cluster.MemberList"},
    {"/v3/cluster/member/promote", "etcdserverpb.Cluster.MemberPromote"},
    {"/v3/maintenance/alarm", "etcdserverpb.Maintenance.Alarm"},
    {"/v3/maintenance/status", "etcdserverpb.Maintenance.Status"},
    {"/v3/maintenance/defragment", "etcdserverpb.Maintenance.Defragment"},
    {"/v3/maintenance/hash", "etcdserverpb.Maintenance.Hash"},
    {"/v3/maintenance/snapshot", "etcdserverpb.Maintenance.Snapshot"},
    {"/v3/maintenance/transfer-leadership", "etcdserverpb.Maintenance.MoveLeader"},
    {"/v3/auth/enable", "etcdserverpb.Auth.AuthEnable"},
    {"/v3/auth/disable", "etcdserverpb.Auth.AuthDisable"},
    {"/v3/auth/authenticate", "etcdserverpb.Auth.Authenticate"},
    {"/v3/auth/user/add", "etcdserverpb.Auth.UserAdd"},
    {"/v3/auth/user/get", "etcdserverpb.Auth.UserGet"},
    {"/v3/auth/user/list", "etcdserverpb.Auth.UserList"},
    {"/v3/auth/user/delete", "etcdserverpb.Auth.UserDelete"},
    {"/v3/auth/user/changepw", "etcdserverpb.Auth.UserChangePassword"},
    {"/v3/auth/user/grant", "etcdserverpb.Auth.UserGrantRole"},
    {"/v3/auth/user/revoke", "etcdserverpb.Auth.UserRevokeRole"},
    {"/v3/auth/role/add", "etcdserverpb.Auth.RoleAdd"},
    {"/v3/auth/role/get", "etcdserverpb.Auth.RoleGet"},
    {"/v3/auth/role/list", "etcdserverpb.Auth.RoleList"},
    {"/v3/auth/role/delete", "etcdserverpb.Auth.RoleDelete"},
    {"/v3/auth/role/grant", "etcdserverpb.Auth.RoleGrantPermission"},
    {"/v3/auth/role/revoke", "etcdserverpb.Auth.RoleRevokePermission"},
    {"/v3/lock/lock", "v3lockpb.Lock.Lock"},
    {"/v3/lock/unlock", "v3lockpb.Lock.Unlock"},
    {"/v3/election/campaign", "v3electionpb.Election.Campaign"},
    {"/v3/election/proclaim", "v3electionpb.Election.Proclaim"},
    {"/v3/election/leader", "v3electionpb.Election.Leader"},
    {"/v3/election/observe", "v3electionpb.Election.Observe"},
    {"/v3/election/resign", "v3electionpb.Election.Resign"},
};

constexpr std::string_view kV3 = "/v3/";
constexpr std::string_view kV3Beta = "/v3beta/";

const std::map<std::string, Route, std::less<>>& Routes() {
  static const auto* routes = [] {
    auto* table = new std::map<std::string, Route, std::less<>>();
    const auto* pool = pb::DescriptorPool::generated_pool();
    for (const PathBinding& b : kBindings) {
      const pb::MethodDescriptor* m = pool->FindMethodByName(b.method);
      if (m == nullptr) continue;  // a service not linked into this program
      const CallKind kind = m->client_streaming()   ? CallKind::kBidiStream
                            : m->server_streaming() ? CallKind::kServerStream
                                                    : CallKind::kUnary;
      (*table)[b.path] = Route{"/" + m->service()->full_name() + "/" + m->name(), m->input_type(),
                               m->output_type(), kind};
    }
    return table;
  }();
  return *routes;
}

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* type) {
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

}  // namespace

bool IsGatewayPath(std::string_view path) {
  return path.substr(0, kV3.size()) == kV3 || path.substr(0, kV3Beta.size()) == kV3Beta;
}

const Route* FindRoute(std::string_view path) {
  std::string canonical;
  if (path.substr(0, kV3Beta.size()) == kV3Beta) {
    canonical = std::string(kV3) + std::string(path.substr(kV3Beta.size()));
  } else {
    canonical = std::string(path);
  }
  const auto& routes = Routes();
  auto it = routes.find(canonical);
  return it == routes.end() ? nullptr : &it->second;
}

grpc::Status JsonToRequest(const Route& route, std::string_view json, std::string* serialized) {
  auto message = NewMessage(route.request);
  if (json.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    const auto status = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()),
                                                      message.get(), options);
    if (!status.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(status.message()));
    }
  }
  if (!message->SerializeToString(serialized)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot encode the request");
  }
  return grpc::Status::OK;
}

bool ReplyToJson(const Route& route, const std::string& serialized, std::string* json) {
  auto message = NewMessage(route.response);
  if (!message->ParseFromString(serialized)) return false;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  json->clear();
  return pb::util::MessageToJsonString(*message, json, options).ok();
}

int HttpStatusFromGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 408;
    case grpc::StatusCode::UNKNOWN:
      return 500;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 412;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::INTERNAL:
      return 500;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DATA_LOSS:
      return 500;
    default:
      return 500;
  }
}

std::string_view HttpStatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Request Entity Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      // Go's encoding/json escapes these so the text is safe inside HTML.
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string ErrorJson(const grpc::Status& status) {
  const std::string message = JsonQuote(status.error_message());
  return "{\"error\":" + message + ",\"message\":" + message +
         ",\"code\":" + std::to_string(static_cast<int>(status.error_code())) + "}";
}

std::string StreamErrorJson(const grpc::Status& status) {
  const int http_status = HttpStatusFromGrpc(status.error_code());
  return "{\"error\":{\"grpc_code\":" + std::to_string(static_cast<int>(status.error_code())) +
         ",\"http_code\":" + std::to_string(http_status) +
         ",\"message\":" + JsonQuote(status.error_message()) +
         ",\"http_status\":" + JsonQuote(HttpStatusText(http_status)) + "}}";
}

}  // namespace etcdpp::http
