// The console's file server: what a browser relies on (types, revalidation,
// the security headers, the redirect to /ui/) for every embedded file.
#include "ui/ui.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace etcdpp::ui {
namespace {

std::map<std::string, std::string> Headers(const Reply& reply) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : reply.headers) {
    EXPECT_TRUE(out.emplace(name, value).second) << "header twice: " << name;
  }
  return out;
}

TEST(UiTest, PathsTheConsoleOwns) {
  EXPECT_TRUE(IsUiPath("/ui"));
  EXPECT_TRUE(IsUiPath("/ui/"));
  EXPECT_TRUE(IsUiPath("/ui/app.js"));
  EXPECT_FALSE(IsUiPath("/uix"));
  EXPECT_FALSE(IsUiPath("/u"));
  EXPECT_FALSE(IsUiPath("/v3/kv/range"));
  EXPECT_FALSE(IsUiPath("/"));
}

TEST(UiTest, AssetsAreSortedAndIncludeThePage) {
  const auto assets = EmbeddedAssets();
  ASSERT_FALSE(assets.empty());
  for (size_t i = 1; i < assets.size(); ++i) EXPECT_LT(assets[i - 1].path, assets[i].path);
  ASSERT_NE(FindAsset("index.html"), nullptr);
  ASSERT_NE(FindAsset("app.js"), nullptr);
  EXPECT_EQ(FindAsset("missing.js"), nullptr);
}

TEST(UiTest, EveryAssetServedWithTypeEtagAndPolicy) {
  for (const Asset& asset : EmbeddedAssets()) {
    SCOPED_TRACE(std::string(asset.path));
    const Reply reply = Serve("GET", "/ui/" + std::string(asset.path), "");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, asset.body);
    EXPECT_FALSE(reply.body.empty());
    auto headers = Headers(reply);
    EXPECT_EQ(headers["Content-Type"], asset.content_type);
    EXPECT_EQ(headers["ETag"], asset.etag);
    EXPECT_EQ(headers["ETag"].size(), 34u);  // 32 hex digits, quoted
    EXPECT_EQ(headers["Cache-Control"], "no-cache");
    EXPECT_EQ(headers["Content-Security-Policy"], kContentSecurityPolicy);
    EXPECT_EQ(headers["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(headers["X-Frame-Options"], "DENY");
  }
  EXPECT_EQ(Headers(Serve("GET", "/ui/app.js", ""))["Content-Type"],
            "text/javascript; charset=utf-8");
  EXPECT_EQ(Headers(Serve("GET", "/ui/style.css", ""))["Content-Type"], "text/css; charset=utf-8");
}

TEST(UiTest, PolicyForbidsInlineScript) {
  const std::string policy(kContentSecurityPolicy);
  EXPECT_NE(policy.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(policy.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(policy.find("unsafe-eval"), std::string::npos);
}

TEST(UiTest, IndexAtTheFolderAndRedirectToIt) {
  const Reply index = Serve("GET", "/ui/", "");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, FindAsset("index.html")->body);
  EXPECT_EQ(Headers(index)["Content-Type"], "text/html; charset=utf-8");

  const Reply bare = Serve("GET", "/ui", "");
  EXPECT_EQ(bare.status, 301);
  EXPECT_EQ(Headers(bare)["Location"], "/ui/");
}

TEST(UiTest, RevalidationAnswers304) {
  const Asset* app = FindAsset("app.js");
  const std::string etag(app->etag);
  for (const std::string& header : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    SCOPED_TRACE(header);
    const Reply reply = Serve("GET", "/ui/app.js", header);
    EXPECT_EQ(reply.status, 304);
    EXPECT_TRUE(reply.body.empty());
    EXPECT_EQ(Headers(reply)["ETag"], etag);
  }
  EXPECT_EQ(Serve("GET", "/ui/app.js", "\"other\"").status, 200);
  // A tag that differs from the asset's by its first character.
  std::string strong(1, '"');
  strong.append(etag, 2);
  EXPECT_EQ(Serve("GET", "/ui/app.js", strong).status, 200);
}

TEST(UiTest, UnknownFilesAndOtherMethods) {
  EXPECT_EQ(Serve("GET", "/ui/nope.js", "").status, 404);
  EXPECT_EQ(Serve("GET", "/ui/../etc/passwd", "").status, 404);
  EXPECT_EQ(Serve("GET", "/ui/static/app.js", "").status, 404);
  const Reply post = Serve("POST", "/ui/", "");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(Headers(post)["Allow"], "GET");
  EXPECT_EQ(Serve("PUT", "/ui/app.js", "").status, 405);
}

}  // namespace
}  // namespace etcdpp::ui
