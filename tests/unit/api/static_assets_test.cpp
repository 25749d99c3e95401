#include <doctest/doctest.h>

#include <optional>

#include "webpushd/api/router.hpp"
#include "webpushd/api/static_assets.hpp"

using namespace webpushd::api;

namespace {
std::string header_of(const response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return {};
}
request get(std::string path, std::string if_none_match = {}) {
  request r;
  r.method = "GET";
  r.path = std::move(path);
  r.target = r.path;
  if (!if_none_match.empty()) r.headers = {{"If-None-Match", std::move(if_none_match)}};
  return r;
}
}  // namespace

TEST_CASE("the SDK and the service worker are embedded from web/") {
  const auto assets = web_assets();
  const auto* sdk = assets.find("/sdk/webpushd.js");
  const auto* sw = assets.find("/sdk/sw.js");
  REQUIRE(sdk != nullptr);
  REQUIRE(sw != nullptr);
  CHECK(sdk->content_type == "text/javascript; charset=utf-8");
  CHECK(sdk->cache_control == "public, max-age=3600");
  CHECK(sw->cache_control == "no-cache");
  CHECK_FALSE(sdk->body.empty());
}

TEST_CASE("ETag and If-None-Match") {
  static_assets assets;
  assets.add("/a.js", "console.log(1)", "text/javascript; charset=utf-8", "no-cache");
  const auto* a = assets.find("/a.js");
  REQUIRE(a != nullptr);
  CHECK(a->etag.size() == 34);
  CHECK(a->etag.front() == '"');

  auto res = assets.serve(get("/a.js"));
  CHECK(res.status == 200);
  CHECK(res.body == "console.log(1)");
  CHECK(header_of(res, "ETag") == a->etag);
  CHECK(header_of(res, "Cache-Control") == "no-cache");

  for (const auto& inm : {a->etag, "\"other\", " + a->etag, "W/" + a->etag, std::string("*")}) {
    res = assets.serve(get("/a.js", inm));
    CHECK(res.status == 304);
    CHECK(res.body.empty());
    CHECK(header_of(res, "ETag") == a->etag);
  }
  CHECK(assets.serve(get("/a.js", "\"stale\"")).status == 200);
  CHECK(assets.serve(get("/missing.js")).status == 404);

  // Same content, same ETag; other content, another.
  static_assets other;
  other.add("/b.js", "console.log(1)", "text/javascript", "no-cache");
  other.add("/c.js", "console.log(2)", "text/javascript", "no-cache");
  CHECK(other.find("/b.js")->etag == a->etag);
  CHECK(other.find("/c.js")->etag != a->etag);
}

TEST_CASE("install serves every file through the router, HEAD included") {
  router r;
  web_assets().install(r);
  for (const std::string method : {"GET", "HEAD"}) {
    request req;
    req.method = method;
    req.target = "/sdk/sw.js?v=2";
    std::optional<response> out;
    r.dispatch(std::move(req), [&](response res) { out = std::move(res); });
    REQUIRE(out.has_value());
    CHECK(out->status == 200);
    CHECK(header_of(*out, "Cache-Control") == "no-cache");
  }
}

TEST_CASE("content types by extension") {
  CHECK(content_type_for("x/app.mjs") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("index.html") == "text/html; charset=utf-8");
  CHECK(content_type_for("a.css") == "text/css; charset=utf-8");
  CHECK(content_type_for("logo.svg") == "image/svg+xml");
  CHECK(content_type_for("data.bin") == "application/octet-stream");
}
