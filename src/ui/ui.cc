#include "ui/ui.h"

#include <algorithm>

namespace etcdpp::ui {
namespace {

constexpr std::string_view kPrefix = "/ui";

// If-None-Match is a list of entity tags or "*"; a weak tag (W/"...")
// matches a strong one of the same value for GET (RFC 9110 §13.1.2).
bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  size_t pos = 0;
  while (pos < if_none_match.size()) {
    size_t end = if_none_match.find(',', pos);
    if (end == std::string_view::npos) end = if_none_match.size();
    std::string_view tag = if_none_match.substr(pos, end - pos);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    pos = end + 1;
  }
  return false;
}

void AddSecurityHeaders(Reply& reply) {
  reply.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  reply.headers.emplace_back("X-Frame-Options", "DENY");
  reply.headers.emplace_back("Referrer-Policy", "no-referrer");
  reply.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
}

Reply PlainText(int status, std::string_view text) {
  Reply reply;
  reply.status = status;
  reply.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  AddSecurityHeaders(reply);
  reply.body = text;
  return reply;
}

}  // namespace

const Asset* FindAsset(std::string_view path) {
  const auto assets = EmbeddedAssets();
  const auto it = std::lower_bound(assets.begin(), assets.end(), path,
                                   [](const Asset& a, std::string_view p) { return a.path < p; });
  if (it == assets.end() || it->path != path) return nullptr;
  return &*it;
}

bool IsUiPath(std::string_view path) {
  return path == kPrefix ||
         (path.starts_with(kPrefix) && path.size() > kPrefix.size() && path[kPrefix.size()] == '/');
}

Reply Serve(std::string_view method, std::string_view path, std::string_view if_none_match) {
  if (method != "GET") {
    Reply reply = PlainText(405, "Method Not Allowed\n");
    reply.headers.emplace_back("Allow", "GET");
    return reply;
  }
  if (path == kPrefix) {
    Reply reply = PlainText(301, "");
    reply.headers.emplace_back("Location", "/ui/");
    return reply;
  }
  std::string_view name = path.substr(kPrefix.size() + 1);
  if (name.empty()) name = "index.html";
  const Asset* asset = FindAsset(name);
  if (asset == nullptr) return PlainText(404, "404 page not found\n");

  Reply reply;
  reply.headers.emplace_back("ETag", std::string(asset->etag));
  // Cached, but checked with the ETag on every use: the file names carry
  // no version, so a fresh binary's console must not be masked by a stale
  // copy; an unchanged file costs a 304 without a body.
  reply.headers.emplace_back("Cache-Control", "no-cache");
  AddSecurityHeaders(reply);
  if (EtagMatches(if_none_match, asset->etag)) {
    reply.status = 304;
    return reply;
  }
  reply.headers.emplace_back("Content-Type", std::string(asset->content_type));
  reply.body = asset->body;
  return reply;
}

}  // namespace etcdpp::ui
