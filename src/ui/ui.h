// The web console at /ui on the client port: static files (HTML, CSS and
// JavaScript modules under src/ui/static) embedded into the binary at build
// time (EmbedFiles.cmake writes them as byte arrays) and answered from
// memory. The console is an ordinary client of the JSON gateway: it needs
// nothing from the server that curl could not ask for (docs/ui.md).
//
// No I/O and no state: everything here is immutable after static
// initialisation, so any thread may call it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etcdpp::ui {

// One embedded file. `path` is relative to /ui/ ("index.html", "app.js").
struct Asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
  // A strong validator: the quoted start of the file's SHA-256, so it only
  // changes when the bytes do (a rebuilt binary with the same console keeps
  // browsers' cached copies valid).
  std::string_view etag;
};

// Every embedded file, sorted by path (generated at build time).
std::span<const Asset> EmbeddedAssets();
const Asset* FindAsset(std::string_view path);

// The policy every console reply carries: scripts, styles and fetches only
// from the serving origin, except that fetch() may reach the other members'
// client URLs (the cluster page asks each member for its own health and
// status). No inline script or style, no framing, no plugins.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

// True for the paths the console owns: "/ui" and everything under "/ui/".
bool IsUiPath(std::string_view path);

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // points into the embedded bytes or a literal
};

// The answer to `method path` (path without the query), given the
// request's If-None-Match header ("" when absent). "/ui" redirects to
// "/ui/" so the page's relative module URLs resolve under /ui/.
Reply Serve(std::string_view method, std::string_view path, std::string_view if_none_match);

}  // namespace etcdpp::ui
