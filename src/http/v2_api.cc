#include "http/v2_api.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "api/grpc_status.h"
#include "etcdpppb/internal.pb.h"
#include "metrics/member_stats.h"
#include "server/membership.h"
#include "v2store/json.h"
#include "v2store/store.h"

namespace etcdpp::http {
namespace {

using v2store::Error;
using v2store::ErrorCode;
using Form = std::map<std::string, std::vector<std::string>>;

constexpr std::string_view kKeysPrefix = "/v2/keys";

std::string Hex(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding as Go's url package: `plus_is_space` in queries only.
std::optional<std::string> Unescape(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = HexValue(s[i + 1]);
      const int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// url.ParseQuery: the first error wins, the pairs before it are kept.
std::optional<std::string> ParseQueryInto(std::string_view q, Form* form) {
  std::optional<std::string> error;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.find(';') != std::string_view::npos) {
      if (!error) error = "invalid semicolon separator in query";
      continue;
    }
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = Unescape(pair.substr(0, eq), true);
    auto value = Unescape(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) {
      if (!error) error = "invalid URL escape";
      continue;
    }
    (*form)[*key].push_back(*value);
  }
  return error;
}

bool Has(const Form& form, const std::string& key) { return form.count(key) != 0; }

std::string Value(const Form& form, const std::string& key) {
  auto it = form.find(key);
  return it == form.end() || it->second.empty() ? "" : it->second.front();
}

// strconv.ParseBool.
std::optional<bool> ParseBool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseUint(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// A flag absent is false; present, it must parse.
bool GetBool(const Form& form, const std::string& key, bool* out) {
  *out = false;
  if (!Has(form, key)) return true;
  auto v = ParseBool(Value(form, key));
  if (!v) return false;
  *out = *v;
  return true;
}

bool GetUint(const Form& form, const std::string& key, uint64_t* out) {
  *out = 0;
  if (!Has(form, key)) return true;
  auto v = ParseUint(Value(form, key));
  if (!v) return false;
  *out = *v;
  return true;
}

V2HttpResponse ErrorResponse(const Error& e) {
  V2HttpResponse r;
  r.status = v2store::ErrorHttpStatus(e.code);
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("X-Etcd-Index", std::to_string(e.index));
  r.body = v2store::ErrorJson(e);
  return r;
}

V2HttpResponse MethodNotAllowed(const char* allowed) {
  V2HttpResponse r;
  r.status = 405;
  r.headers.emplace_back("Allow", allowed);
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.body = "Method Not Allowed\n";
  return r;
}

V2HttpResponse NotFound() {
  V2HttpResponse r;
  r.status = 404;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.body = "404 page not found\n";
  return r;
}

std::string JsonStrings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(v2store::JsonString(items[i]));
  }
  return out + "]";
}

std::string MemberJson(const server::Member& m) {
  return "{\"id\":\"" + Hex(m.id) + "\",\"name\":" + v2store::JsonString(m.name) +
         ",\"peerURLs\":" + JsonStrings(m.peer_urls) +
         ",\"clientURLs\":" + JsonStrings(m.client_urls) + "}";
}

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The parsed /v2/keys request (etcd's parseKeyRequest).
struct KeyRequest {
  std::string key;
  internalpb::V2Request write;
  bool wait = false, recursive = false, sorted = false, quorum = false, stream = false;
  bool no_value_on_success = false;
  uint64_t wait_index = 0;
};

std::optional<Error> ParseKeyRequest(const V2HttpRequest& http, std::string_view path,
                                     std::string_view query, KeyRequest* out) {
  auto invalid = [](ErrorCode code, std::string cause) { return Error{code, std::move(cause), 0}; };
  Form form;
  std::optional<std::string> form_error;
  // Go's ParseForm: body values (form-encoded PUT / POST) before the query's.
  const bool body_form =
      (http.method == "PUT" || http.method == "POST" || http.method == "PATCH") &&
      http.content_type.starts_with("application/x-www-form-urlencoded");
  if (body_form) form_error = ParseQueryInto(http.body, &form);
  if (auto e = ParseQueryInto(query, &form); e && !form_error) form_error = e;
  if (form_error) return invalid(ErrorCode::kInvalidForm, *form_error);
  auto decoded = Unescape(path.substr(kKeysPrefix.size()), false);
  if (!decoded) return invalid(ErrorCode::kInvalidForm, "invalid URL escape");
  out->key = v2store::CleanKey(*decoded);

  uint64_t prev_index = 0;
  if (!GetUint(form, "prevIndex", &prev_index)) {
    return invalid(ErrorCode::kIndexNaN, "invalid value for \"prevIndex\"");
  }
  if (!GetUint(form, "waitIndex", &out->wait_index)) {
    return invalid(ErrorCode::kIndexNaN, "invalid value for \"waitIndex\"");
  }
  bool dir = false;
  for (auto [name, flag] : {std::pair<const char*, bool*>{"recursive", &out->recursive},
                            {"sorted", &out->sorted},
                            {"wait", &out->wait},
                            {"dir", &dir},
                            {"quorum", &out->quorum},
                            {"stream", &out->stream}}) {
    if (!GetBool(form, name, flag)) {
      return invalid(ErrorCode::kInvalidField, std::string("invalid value for \"") + name + "\"");
    }
  }
  if (out->wait && http.method != "GET") {
    return invalid(ErrorCode::kInvalidField, "\"wait\" can only be used with GET requests");
  }
  const std::string prev_value = Value(form, "prevValue");
  if (Has(form, "prevValue") && prev_value.empty()) {
    return invalid(ErrorCode::kPrevValueRequired, "\"prevValue\" cannot be empty");
  }
  if (!GetBool(form, "noValueOnSuccess", &out->no_value_on_success)) {
    return invalid(ErrorCode::kInvalidField, "invalid value for \"noValueOnSuccess\"");
  }
  std::optional<uint64_t> ttl;
  if (!Value(form, "ttl").empty()) {
    ttl = ParseUint(Value(form, "ttl"));
    if (!ttl) return invalid(ErrorCode::kTtlNaN, "invalid value for \"ttl\"");
  }
  internalpb::V2Request& w = out->write;
  if (Has(form, "prevExist")) {
    auto v = ParseBool(Value(form, "prevExist"));
    if (!v) return invalid(ErrorCode::kInvalidField, "invalid value for prevExist");
    w.set_has_prev_exist(true);
    w.set_prev_exist(*v);
  }
  if (Has(form, "refresh")) {
    auto v = ParseBool(Value(form, "refresh"));
    if (!v) return invalid(ErrorCode::kInvalidField, "invalid value for refresh");
    if (*v) {
      if (Has(form, "value") && !Value(form, "value").empty()) {
        return invalid(ErrorCode::kRefreshValue, "A value was provided on a refresh");
      }
      if (!ttl) return invalid(ErrorCode::kRefreshTtlRequired, "No TTL value set");
    }
    w.set_refresh(*v);
  }
  w.set_method(http.method);
  w.set_path(out->key);
  w.set_value(Value(form, "value"));
  w.set_dir(dir);
  w.set_prev_value(prev_value);
  w.set_prev_index(prev_index);
  w.set_recursive(out->recursive);
  if (ttl) {
    // Seconds far beyond any calendar saturate rather than wrap.
    const uint64_t max_ttl = static_cast<uint64_t>(INT64_MAX / 1000000000) / 2;
    const int64_t seconds = static_cast<int64_t>(std::min(*ttl, max_ttl));
    w.set_expiration(WallNowNs() + seconds * 1000000000);
  }
  return std::nullopt;
}

// Callbacks that may run after the V2Api is gone (a write applied during
// shutdown) use the member, which outlives every proposal, never the V2Api.
void AddRaftHeaders(const server::ClusterView* cluster, V2HttpResponse* r) {
  r->headers.emplace_back("X-Raft-Index", std::to_string(cluster->commit_index()));
  r->headers.emplace_back("X-Raft-Term", std::to_string(cluster->term()));
}

}  // namespace

bool V2Api::Handles(std::string_view path) {
  auto under = [&](std::string_view prefix) {
    return path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/');
  };
  return under(kKeysPrefix) || under("/v2/members") || path == "/v2/machines" ||
         path.starts_with("/v2/stats/");
}

std::function<void()> V2Api::Serve(const V2HttpRequest& request,
                                   std::shared_ptr<V2Responder> responder) {
  const std::string_view target = request.target;
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  if (path == kKeysPrefix || path.starts_with("/v2/keys/")) {
    return ServeKeys(request, path, query, std::move(responder));
  }
  if (path == "/v2/members" || path.starts_with("/v2/members/")) {
    if (request.method == "POST" || request.method == "PUT" || request.method == "DELETE") {
      ChangeMembers(request, path, std::move(responder));
      return {};
    }
    responder->Reply(ServeMembers(request.method, path));
  } else if (path.starts_with("/v2/stats/")) {
    responder->Reply(ServeStats(request.method, path));
  } else if (path == "/v2/machines") {
    if (request.method != "GET" && request.method != "HEAD") {
      responder->Reply(MethodNotAllowed("GET,HEAD"));
      return {};
    }
    std::string urls;
    for (const server::Member& m : ctx_.cluster->Members()) {
      for (const std::string& u : m.client_urls) urls += (urls.empty() ? "" : ", ") + u;
    }
    V2HttpResponse r;
    r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    r.body = urls;
    responder->Reply(std::move(r));
  } else {
    responder->Reply(NotFound());
  }
  return {};
}

std::function<void()> V2Api::ServeKeys(const V2HttpRequest& request, std::string_view path,
                                       std::string_view query,
                                       std::shared_ptr<V2Responder> responder) {
  const std::string& method = request.method;
  if (method != "HEAD" && method != "GET" && method != "PUT" && method != "POST" &&
      method != "DELETE") {
    responder->Reply(MethodNotAllowed("HEAD,GET,PUT,POST,DELETE"));
    return {};
  }
  const std::string cluster_id = Hex(ctx_.cluster->cluster_id());
  auto with_cluster = [cluster_id](V2HttpResponse r) {
    r.headers.emplace_back("X-Etcd-Cluster-ID", cluster_id);
    return r;
  };
  KeyRequest req;
  if (auto error = ParseKeyRequest(request, path, query, &req)) {
    responder->Reply(with_cluster(ErrorResponse(*error)));
    return {};
  }
  const bool head = method == "HEAD";
  server::ClusterView* cluster = ctx_.cluster;
  auto event_response = [cluster, with_cluster, head](const v2store::Event& e) {
    V2HttpResponse r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.headers.emplace_back("X-Etcd-Index", std::to_string(e.etcd_index));
    AddRaftHeaders(cluster, &r);
    if (!head) r.body = v2store::EventJson(e);
    return with_cluster(std::move(r));
  };

  if (method == "GET" || method == "HEAD") {
    v2store::Store* store = ctx_.store;
    if (req.wait) {
      auto stream = req.stream;
      auto start = store->Watch(req.key, req.recursive, stream, req.wait_index,
                                [responder, stream](const v2store::Event& e) {
                                  responder->StreamChunk(v2store::EventJson(e));
                                  if (!stream) responder->EndStream();
                                });
      if (start.error) {
        responder->Reply(with_cluster(ErrorResponse(*start.error)));
        return {};
      }
      V2HttpResponse head_part;
      head_part.headers.emplace_back("Content-Type", "application/json");
      head_part.headers.emplace_back("X-Etcd-Index", std::to_string(start.etcd_index));
      AddRaftHeaders(cluster, &head_part);
      responder->BeginStream(with_cluster(std::move(head_part)));
      if (start.immediate) {
        responder->StreamChunk(v2store::EventJson(*start.immediate));
        if (!stream) {
          responder->EndStream();
          return {};
        }
      }
      const uint64_t id = start.id;
      return [store, id] { store->CancelWatch(id); };
    }
    auto read = [store, req, responder, event_response, with_cluster] {
      v2store::Outcome out = store->Get(req.key, req.recursive, req.sorted);
      if (!out.ok()) return responder->Reply(with_cluster(ErrorResponse(*out.error)));
      responder->Reply(event_response(out.event));
    };
    if (!req.quorum) {
      read();
      return {};
    }
    ctx_.barrier->WaitLinearizable([read, responder, with_cluster](const Status& st) {
      if (!st.ok()) {
        return responder->Reply(with_cluster(
            ErrorResponse(Error{ErrorCode::kRaftInternal, api::ClientMessage(st), 0})));
      }
      read();
    });
    return {};
  }

  // PUT, POST, DELETE: through Raft.
  internalpb::InternalRaftRequest proposal;
  *proposal.mutable_v2() = req.write;
  auto response = std::make_shared<internalpb::V2Response>();
  const bool no_value = req.no_value_on_success;
  ctx_.proposer->Propose(
      std::move(proposal), response.get(),
      [cluster, response, responder, with_cluster, no_value](const Status& st) {
        if (!st.ok()) {
          return responder->Reply(with_cluster(
              ErrorResponse(Error{ErrorCode::kRaftInternal, api::ClientMessage(st), 0})));
        }
        if (response->error_code() != 0) {
          return responder->Reply(
              with_cluster(ErrorResponse(Error{static_cast<ErrorCode>(response->error_code()),
                                               response->error_cause(), response->error_index()})));
        }
        V2HttpResponse r;
        r.headers.emplace_back("Content-Type", "application/json");
        r.headers.emplace_back("X-Etcd-Index", std::to_string(response->etcd_index()));
        AddRaftHeaders(cluster, &r);
        const std::string& action = response->action();
        if (action == v2store::kActionCreate ||
            (action == v2store::kActionSet && !response->has_prev_node())) {
          r.status = 201;
        }
        const bool drop_nodes =
            no_value &&
            (action == v2store::kActionSet || action == v2store::kActionCreate ||
             action == v2store::kActionUpdate || action == v2store::kActionCompareAndSwap);
        if (drop_nodes) {
          r.body = "{\"action\":" + v2store::JsonString(action) + "}\n";
        } else {
          r.body = response->event_json();
        }
        responder->Reply(with_cluster(std::move(r)));
      });
  return {};
}

V2HttpResponse V2Api::ServeMembers(const std::string& method, std::string_view path) const {
  if (method != "GET") return MethodNotAllowed("GET,POST,DELETE,PUT");
  V2HttpResponse r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("X-Etcd-Cluster-ID", Hex(ctx_.cluster->cluster_id()));
  const std::vector<server::Member> members = ctx_.cluster->Members();
  if (path == "/v2/members/leader") {
    const uint64_t leader = ctx_.cluster->leader_id();
    for (const server::Member& m : members) {
      if (m.id == leader) {
        r.body = MemberJson(m) + "\n";
        return r;
      }
    }
    r.status = 503;
    r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                 {"X-Content-Type-Options", "nosniff"}};
    r.body = "During Leader Election\n";
    return r;
  }
  if (path != "/v2/members" && path != "/v2/members/") return NotFound();
  std::string body = "{\"members\":[";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i > 0) body.push_back(',');
    body.append(MemberJson(members[i]));
  }
  r.body = body + "]}\n";
  return r;
}

namespace {

// A float64 as Go's encoding/json writes it: the shortest digits that read
// back, in plain notation between 1e-6 and 1e21, else with an exponent
// (1e-7, 1e+21).
std::string GoJsonFloat(double v) {
  char buf[64];
  const double a = std::fabs(v);
  const auto format =
      a != 0 && (a < 1e-6 || a >= 1e21) ? std::chars_format::scientific : std::chars_format::fixed;
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, format);
  if (ec != std::errc()) return "0";
  std::string out(buf, end);
  // Go writes 1e-07 as 1e-7 in JSON.
  const size_t n = out.size();
  if (n >= 4 && out[n - 4] == 'e' && out[n - 3] == '-' && out[n - 2] == '0') out.erase(n - 2, 1);
  return out;
}

// A duration as Go's time.Duration.String(): "0s", "850ns", "1.5µs",
// "107.4867ms", "2m3.5s", "1h0m0s".
std::string GoDuration(int64_t ns) {
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? static_cast<uint64_t>(-ns) : static_cast<uint64_t>(ns);
  auto fraction = [](uint64_t value, uint64_t unit, int digits) {
    std::string out = std::to_string(value / unit);
    std::string frac = std::to_string(value % unit);
    frac.insert(0, static_cast<size_t>(digits) - frac.size(), '0');
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    return frac.empty() ? out : out + "." + frac;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + fraction(u, 1000, 3) + "\u00b5s";
  if (u < 1000000000) return sign + fraction(u, 1000000, 6) + "ms";
  std::string out = sign;
  const uint64_t hours = u / 3600000000000ull;
  const uint64_t minutes = (u / 60000000000ull) % 60;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  return out + fraction(u % 60000000000ull, 1000000000, 9) + "s";
}

// etcd's httptypes.HTTPError: {"message":...}, no newline.
V2HttpResponse MessageError(int status, const std::string& message) {
  V2HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = "{\"message\":" + v2store::JsonString(message) + "}";
  return r;
}

// The peer URLs of a member create or update body, {"peerURLs": [...]};
// else the reply etcd gives (415 for another content type, 400 for bad
// JSON or URLs).
Result<std::vector<std::string>> ParsePeerUrls(const V2HttpRequest& request,
                                               V2HttpResponse* refusal) {
  std::string type = request.content_type.substr(0, request.content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  while (!type.empty() && type.front() == ' ') type.erase(0, 1);
  if (type != "application/json") {
    *refusal = MessageError(415, "Bad Content-Type " + type + ", accept application/json");
    return Status::InvalidArgument("content type");
  }
  google::protobuf::Struct doc;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(request.body, &doc, options).ok()) {
    *refusal = MessageError(400, "invalid character in the request body");
    return Status::InvalidArgument("json");
  }
  std::vector<std::string> urls;
  auto it = doc.fields().find("peerURLs");
  if (it != doc.fields().end()) {
    if (!it->second.has_list_value()) {
      *refusal = MessageError(400, "json: cannot unmarshal into peerURLs of type []string");
      return Status::InvalidArgument("json");
    }
    for (const auto& v : it->second.list_value().values()) {
      if (!v.has_string_value()) {
        *refusal = MessageError(400, "json: cannot unmarshal into peerURLs of type string");
        return Status::InvalidArgument("json");
      }
      urls.push_back(v.string_value());
    }
  }
  // etcd's types.NewURLs checks, in its order and words.
  for (const std::string& u : urls) {
    const size_t scheme_end = u.find("://");
    const std::string scheme = scheme_end == std::string::npos ? "" : u.substr(0, scheme_end);
    std::string message;
    if (scheme != "http" && scheme != "https" && scheme != "unix" && scheme != "unixs") {
      message = "URL scheme must be http, https, unix, or unixs: " + u;
    } else {
      const std::string rest = u.substr(scheme_end + 3);
      const size_t slash = rest.find('/');
      const std::string host = rest.substr(0, slash);
      if (host.find(':') == std::string::npos) {
        message = "URL address does not have the form \"host:port\": " + u;
      } else if (slash != std::string::npos) {
        message = "URL must not contain a path: " + u;
      }
    }
    if (!message.empty()) {
      *refusal = MessageError(400, message);
      return Status::InvalidArgument(message);
    }
  }
  return urls;
}

// etcd's answer to a membership change its member refused: 409 for a
// duplicate, 404 for a member never known; for a member removed before,
// 410 Gone to a DELETE and 500 to a PUT (etcd's update handler has no
// case of its own for it). Anything else is 500.
enum class RemovedMember { kNo, kYes };
V2HttpResponse MembershipError(const Status& st, const std::string& method, const std::string& id,
                               RemovedMember removed) {
  switch (st.code()) {
    case Code::kMemberExist:
      return MessageError(409, "membership: ID exists");
    case Code::kPeerURLExist:
      return MessageError(409, "membership: peerURL exists");
    case Code::kMemberNotFound:
      if (removed == RemovedMember::kNo) return MessageError(404, "No such member: " + id);
      if (method == "DELETE") return MessageError(410, "Member permanently removed: " + id);
      return MessageError(500, "Internal Server Error");
    default:
      return MessageError(500, "Internal Server Error");
  }
}

}  // namespace

void V2Api::ChangeMembers(const V2HttpRequest& request, std::string_view path,
                          std::shared_ptr<V2Responder> responder) {
  std::string id_text(path.substr(std::string_view("/v2/members").size()));
  if (!id_text.empty() && id_text.front() == '/') id_text.erase(0, 1);
  if (request.method == "POST") {
    V2HttpResponse refusal;
    auto urls = ParsePeerUrls(request, &refusal);
    if (!urls.ok()) {
      responder->Reply(std::move(refusal));
      return;
    }
    auto member = std::make_shared<server::Member>();
    member->peer_urls = std::move(*urls);
    ctx_.admin->AddMember(member.get(), [member, responder](const Status& st) {
      if (!st.ok()) {
        responder->Reply(MembershipError(st, "POST", "", RemovedMember::kNo));
        return;
      }
      V2HttpResponse r;
      r.status = 201;
      r.headers.emplace_back("Content-Type", "application/json");
      server::Member shown = *member;
      shown.client_urls.clear();  // not published yet
      r.body = MemberJson(shown) + "\n";
      responder->Reply(std::move(r));
    });
    return;
  }
  // PUT and DELETE name a member: /v2/members/<hex id>.
  if (id_text.empty()) {
    V2HttpResponse r = MethodNotAllowed("GET,POST,DELETE,PUT");
    r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                 {"X-Content-Type-Options", "nosniff"}};
    responder->Reply(std::move(r));
    return;
  }
  uint64_t id = 0;
  bool valid = id_text.size() <= 16;
  for (char c : id_text) {
    const int v = HexValue(c);
    if (v < 0) valid = false;
    id = (id << 4) | static_cast<uint64_t>(v < 0 ? 0 : v);
  }
  if (!valid) {
    responder->Reply(MessageError(404, "No such member: " + id_text));
    return;
  }
  auto done = [responder, id, method = request.method,
               was_removed = ctx_.was_removed](const Status& st) {
    if (!st.ok()) {
      const bool removed = st.code() == Code::kMemberNotFound && was_removed && was_removed(id);
      responder->Reply(
          MembershipError(st, method, Hex(id), removed ? RemovedMember::kYes : RemovedMember::kNo));
      return;
    }
    V2HttpResponse r;
    r.status = 204;
    responder->Reply(std::move(r));
  };
  if (request.method == "DELETE") {
    ctx_.admin->RemoveMember(id, std::move(done));
    return;
  }
  V2HttpResponse refusal;
  auto urls = ParsePeerUrls(request, &refusal);
  if (!urls.ok()) {
    responder->Reply(std::move(refusal));
    return;
  }
  ctx_.admin->UpdateMember(id, std::move(*urls), std::move(done));
}

V2HttpResponse V2Api::ServeStats(const std::string& method, std::string_view path) const {
  if (method != "GET") return MethodNotAllowed("GET");
  V2HttpResponse r;
  r.headers.emplace_back("Content-Type", "application/json");
  const uint64_t self = ctx_.cluster->member_id();
  const uint64_t leader = ctx_.cluster->leader_id();
  if (path == "/v2/stats/store") {
    const v2store::StoreStats s = ctx_.store->stats();
    r.body = "{\"getsSuccess\":" + std::to_string(s.gets_success) +
             ",\"getsFail\":" + std::to_string(s.gets_fail) +
             ",\"setsSuccess\":" + std::to_string(s.sets_success) +
             ",\"setsFail\":" + std::to_string(s.sets_fail) +
             ",\"deleteSuccess\":" + std::to_string(s.delete_success) +
             ",\"deleteFail\":" + std::to_string(s.delete_fail) +
             ",\"updateSuccess\":" + std::to_string(s.update_success) +
             ",\"updateFail\":" + std::to_string(s.update_fail) +
             ",\"createSuccess\":" + std::to_string(s.create_success) +
             ",\"createFail\":" + std::to_string(s.create_fail) +
             ",\"compareAndSwapSuccess\":" + std::to_string(s.compare_and_swap_success) +
             ",\"compareAndSwapFail\":" + std::to_string(s.compare_and_swap_fail) +
             ",\"compareAndDeleteSuccess\":" + std::to_string(s.compare_and_delete_success) +
             ",\"compareAndDeleteFail\":" + std::to_string(s.compare_and_delete_fail) +
             ",\"expireCount\":" + std::to_string(s.expire_count) +
             ",\"watchers\":" + std::to_string(s.watchers) + "}";
    return r;
  }
  metrics::MemberStats& stats = metrics::DefaultMemberStats();
  if (path == "/v2/stats/self") {
    const int64_t leader_since = stats.leader_start_time();
    // etcd leaves a rate out when it is 0 (no append in the last second).
    auto rate = [](std::string_view name, double value) {
      return value > 0 ? ",\"" + std::string(name) + "\":" + GoJsonFloat(value) : std::string();
    };
    const metrics::AppendRates received = stats.ReceiveRates();
    const metrics::AppendRates sent = stats.SendRates();
    r.body = "{\"name\":" + v2store::JsonString(ctx_.member_name) + ",\"id\":\"" + Hex(self) +
             "\",\"state\":\"" + (leader == self ? "StateLeader" : "StateFollower") +
             "\",\"startTime\":\"" + v2store::Rfc3339Nano(stats.start_time()) +
             "\",\"leaderInfo\":{\"leader\":\"" + Hex(leader) + "\",\"uptime\":\"" +
             GoDuration(leader_since == 0 ? 0 : WallNowNs() - leader_since) +
             "\",\"startTime\":\"" + v2store::Rfc3339Nano(leader_since) +
             "\"},\"recvAppendRequestCnt\":" + std::to_string(stats.append_received()) +
             rate("recvPkgRate", received.messages_per_second) +
             rate("recvBandwidthRate", received.bytes_per_second) +
             ",\"sendAppendRequestCnt\":" + std::to_string(stats.append_sent()) +
             rate("sendPkgRate", sent.messages_per_second) +
             rate("sendBandwidthRate", sent.bytes_per_second) + "}";
    return r;
  }
  if (path == "/v2/stats/leader") {
    if (leader != self) {
      r.status = 403;
      r.body = "{\"message\":\"not current leader\"}";
      return r;
    }
    std::string followers;
    const std::map<uint64_t, metrics::FollowerLatency> measured = stats.Followers();
    for (const server::Member& m : ctx_.cluster->Members()) {
      if (m.id == self) continue;
      if (!followers.empty()) followers.push_back(',');
      auto it = measured.find(m.id);
      const metrics::FollowerLatency f =
          it == measured.end() ? metrics::FollowerLatency{} : it->second;
      followers += "\"" + Hex(m.id) + "\":{\"latency\":{\"current\":" + GoJsonFloat(f.current) +
                   ",\"average\":" + GoJsonFloat(f.average) +
                   ",\"standardDeviation\":" + GoJsonFloat(f.standard_deviation) +
                   ",\"minimum\":" + GoJsonFloat(f.minimum) +
                   ",\"maximum\":" + GoJsonFloat(f.maximum) +
                   "},\"counts\":{\"fail\":" + std::to_string(f.fail) +
                   ",\"success\":" + std::to_string(f.success) + "}}";
    }
    r.body = "{\"leader\":\"" + Hex(self) + "\",\"followers\":{" + followers + "}}";
    return r;
  }
  return NotFound();
}

}  // namespace etcdpp::http
