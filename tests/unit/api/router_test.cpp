#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "webpushd/api/router.hpp"

using namespace webpushd::api;

namespace {

const std::string backend_key = "k3y-for-the-shop-backend-0123456789abcdef";

// Runs a request through the router and returns what it answered at once.
response call(const router& r, std::string method, std::string target,
              std::vector<std::pair<std::string, std::string>> headers = {}) {
  request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.headers = std::move(headers);
  std::optional<response> out;
  r.dispatch(std::move(req), [&](response res) { out = std::move(res); });
  REQUIRE(out.has_value());
  return *out;
}

std::string header_of(const response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return {};
}

std::string code_of(const response& r) { return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>(); }

struct test_routes {
  router r{cors_policy{{"https://shop.example"}}, api_key_set{{{"backend", backend_key}}}};
  request last;

  handler record(std::string tag) {
    return [this, tag](request&& req, respond_fn respond) {
      last = std::move(req);
      respond(json_response(200, {{"route", tag}}));
    };
  }

  test_routes() {
    r.add("GET", "/healthz", access::open, record("health"));
    r.add("GET", "/v1/vapid-public-key", access::browser, record("vapid"));
    r.add("POST", "/v1/subscriptions", access::browser, record("subscribe"));
    r.add("PUT", "/v1/subscriptions/{id}/consent", access::subscriber, record("consent"));
    r.add("DELETE", "/v1/subscriptions/{id}", access::subscriber, record("unsubscribe"));
    r.add("GET", "/v1/subscriptions/{id}/export", access::backend, record("export"));
    r.add("GET", "/v1/subscriptions/{id}", access::backend, record("show"));
    r.add("GET", "/v1/subscriptions/stats", access::backend, record("stats"));
    r.add("POST", "/v1/events", access::backend, record("events"));
    r.add("GET", "/throws", access::open, [](request&&, respond_fn) -> void { throw std::runtime_error("boom"); });
  }
};

std::string route_of(const response& res) { return nlohmann::json::parse(res.body)["route"].get<std::string>(); }

}  // namespace

TEST_CASE("routes match literal segments and {params}") {
  test_routes t;
  const auto bearer = std::pair<std::string, std::string>{"Authorization", "Bearer " + backend_key};
  auto res = call(t.r, "GET", "/v1/subscriptions/sub_42/export", {bearer});
  CHECK(res.status == 200);
  CHECK(route_of(res) == "export");
  CHECK(t.last.params.at("id") == "sub_42");
  CHECK(t.last.route == "/v1/subscriptions/{id}/export");

  SUBCASE("a literal beats a parameter in the same position") {
    CHECK(route_of(call(t.r, "GET", "/v1/subscriptions/stats", {bearer})) == "stats");
    CHECK(route_of(call(t.r, "GET", "/v1/subscriptions/other", {bearer})) == "show");
  }
  SUBCASE("segments are percent-decoded one by one; the query is decoded too") {
    call(t.r, "GET", "/v1/subscriptions/a%2Fb%20c/export?x=1+2&y=%C3%A9&x=ignored&flag", {bearer});
    CHECK(t.last.params.at("id") == "a/b c");
    CHECK(t.last.path == "/v1/subscriptions/a/b c/export");
    CHECK(t.last.query.at("x") == "1 2");
    CHECK(t.last.query.at("y") == "\xC3\xA9");
    CHECK(t.last.query.at("flag").empty());
  }
  SUBCASE("an empty segment or a trailing slash does not match") {
    CHECK(call(t.r, "GET", "/v1/subscriptions//export", {bearer}).status == 404);
    CHECK(call(t.r, "GET", "/healthz/").status == 404);
  }
}

TEST_CASE("unknown path 404, known path with another method 405 with Allow, HEAD runs GET") {
  test_routes t;
  auto res = call(t.r, "GET", "/nope");
  CHECK(res.status == 404);
  CHECK(code_of(res) == "not_found");

  res = call(t.r, "POST", "/healthz");
  CHECK(res.status == 405);
  CHECK(code_of(res) == "method_not_allowed");
  CHECK(header_of(res, "Allow") == "GET, HEAD");

  res = call(t.r, "HEAD", "/healthz");
  CHECK(res.status == 200);
  CHECK(route_of(res) == "health");
  CHECK(t.last.method == "HEAD");

  res = call(t.r, "OPTIONS", "/healthz");
  CHECK(res.status == 204);
  CHECK(header_of(res, "Allow") == "GET, HEAD, OPTIONS");
}

TEST_CASE("malformed targets are 400") {
  test_routes t;
  CHECK(call(t.r, "GET", "/healthz%zz").status == 400);
  CHECK(call(t.r, "GET", "/healthz?a=%4").status == 400);
  CHECK(call(t.r, "GET", "http://other/healthz").status == 400);
  CHECK(call(t.r, "GET", "*").status == 400);
  CHECK(code_of(call(t.r, "GET", "/x%")) == "malformed_request");
}

TEST_CASE("a throwing handler becomes a generic 500") {
  test_routes t;
  const auto res = call(t.r, "GET", "/throws");
  CHECK(res.status == 500);
  CHECK(res.body.find("boom") == std::string::npos);
}

TEST_CASE("backend routes take only a configured key as Bearer") {
  test_routes t;
  SUBCASE("no credential") {
    const auto res = call(t.r, "POST", "/v1/events");
    CHECK(res.status == 401);
    CHECK(code_of(res) == "unauthorized");
    CHECK(header_of(res, "WWW-Authenticate").starts_with("Bearer"));
  }
  SUBCASE("the right key") {
    const auto res = call(t.r, "POST", "/v1/events", {{"authorization", "bearer " + backend_key}});
    CHECK(res.status == 200);
    CHECK(t.last.api_key_name == "backend");
    CHECK(t.last.subscriber_token.empty());
  }
  SUBCASE("a wrong key, a prefix of the key, the key plus a byte") {
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Bearer wrong"}}).status == 401);
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Bearer " + backend_key.substr(0, 10)}}).status == 401);
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Bearer " + backend_key + "x"}}).status == 401);
  }
  SUBCASE("a subscriber token, in either scheme, never opens a backend route") {
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Subscriber sometoken"}}).status == 401);
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Bearer sometoken"}}).status == 401);
    // Even the real key, sent in the subscriber scheme, is refused.
    CHECK(call(t.r, "POST", "/v1/events", {{"Authorization", "Subscriber " + backend_key}}).status == 401);
  }
  SUBCASE("two Authorization headers are ambiguous and refused") {
    CHECK(call(t.r, "POST", "/v1/events",
               {{"Authorization", "Bearer " + backend_key}, {"Authorization", "Bearer " + backend_key}})
              .status == 401);
  }
  SUBCASE("backend answers never carry CORS headers, and their preflight is refused") {
    const auto res = call(t.r, "POST", "/v1/events",
                          {{"Authorization", "Bearer " + backend_key}, {"Origin", "https://shop.example"}});
    CHECK(header_of(res, "Access-Control-Allow-Origin").empty());
    const auto pre = call(t.r, "OPTIONS", "/v1/events",
                          {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(pre.status == 403);
    CHECK(header_of(pre, "Access-Control-Allow-Origin").empty());
  }
}

TEST_CASE("wrong API keys are limited per client address, a right key included, until the window passes") {
  using namespace std::chrono_literals;
  test_routes t;
  t.r.add("GET", "/v1/campaigns/{id}/stats", access::reader, t.record("reader"));
  webpushd::manual_clock clk;
  failure_limiter limiter({3, 60s, 100});
  t.r.set_key_limiter(limiter, clk);
  const auto from = [&](std::string ip, std::string method, std::string target, std::string authorization) {
    request req;
    req.method = std::move(method);
    req.target = std::move(target);
    if (!authorization.empty()) req.headers.emplace_back("Authorization", std::move(authorization));
    req.remote_ip = std::move(ip);
    std::optional<response> out;
    t.r.dispatch(std::move(req), [&](response res) { out = std::move(res); });
    REQUIRE(out.has_value());
    return *out;
  };
  const std::string right = "Bearer " + backend_key;

  // No Authorization header is not a guess: it never counts.
  for (int i = 0; i < 5; ++i) CHECK(from("192.0.2.7", "POST", "/v1/events", "").status == 401);
  CHECK(from("192.0.2.7", "POST", "/v1/events", right).status == 200);
  // Two wrong keys on a backend route, one on a reader route: the third blocks.
  CHECK(from("192.0.2.7", "POST", "/v1/events", "Bearer guess-1").status == 401);
  clk.advance(10s);
  CHECK(from("192.0.2.7", "POST", "/v1/events", "Bearer guess-2").status == 401);
  CHECK(from("192.0.2.7", "GET", "/v1/campaigns/c1/stats", "Bearer guess-3").status == 401);
  const auto limited = from("192.0.2.7", "POST", "/v1/events", right);
  CHECK(limited.status == 429);
  CHECK(code_of(limited) == "rate_limited");
  CHECK(header_of(limited, "Retry-After") == "50");  // the first failure (at +0 s) leaves the window at +60 s
  CHECK(from("192.0.2.7", "GET", "/v1/campaigns/c1/stats", right).status == 429);
  // Another address is not affected; routes without a key are not limited.
  CHECK(from("192.0.2.8", "POST", "/v1/events", right).status == 200);
  CHECK(from("192.0.2.7", "GET", "/healthz", "").status == 200);
  // Refused requests do not count: once the first failure is 60 s old, one more try is allowed.
  clk.advance(49s);
  CHECK(from("192.0.2.7", "POST", "/v1/events", right).status == 429);
  clk.advance(1s);
  CHECK(from("192.0.2.7", "POST", "/v1/events", right).status == 200);
  // A success does not clear the count (guess-2 and guess-3 are still in the window).
  CHECK(from("192.0.2.7", "POST", "/v1/events", "Bearer guess-4").status == 401);
  CHECK(from("192.0.2.7", "POST", "/v1/events", right).status == 429);
}

TEST_CASE("subscriber routes take only the Subscriber scheme") {
  test_routes t;
  const std::pair<std::string, std::string> origin{"Origin", "https://shop.example"};
  SUBCASE("the token reaches the handler, unverified, with the id") {
    const auto res = call(t.r, "PUT", "/v1/subscriptions/s1/consent", {origin, {"Authorization", "Subscriber tok_abc"}});
    CHECK(res.status == 200);
    CHECK(t.last.subscriber_token == "tok_abc");
    CHECK(t.last.api_key_name.empty());
    CHECK(t.last.params.at("id") == "s1");
    CHECK(header_of(res, "Access-Control-Allow-Origin") == "https://shop.example");
  }
  SUBCASE("a backend key sent as Bearer is refused before the handler, with CORS so the page can read why") {
    const auto res = call(t.r, "DELETE", "/v1/subscriptions/s1", {origin, {"Authorization", "Bearer " + backend_key}});
    CHECK(res.status == 401);
    CHECK(header_of(res, "WWW-Authenticate").starts_with("Subscriber"));
    CHECK(header_of(res, "Access-Control-Allow-Origin") == "https://shop.example");
    CHECK(t.last.method.empty());  // the handler never ran
  }
  SUBCASE("no credential") { CHECK(call(t.r, "DELETE", "/v1/subscriptions/s1").status == 401); }
}

TEST_CASE("CORS on browser routes: only the configured origins") {
  test_routes t;
  auto res = call(t.r, "GET", "/v1/vapid-public-key", {{"Origin", "https://shop.example"}});
  CHECK(header_of(res, "Access-Control-Allow-Origin") == "https://shop.example");
  CHECK(header_of(res, "Vary") == "Origin");

  res = call(t.r, "GET", "/v1/vapid-public-key", {{"Origin", "https://evil.example"}});
  CHECK(res.status == 200);  // served, but the browser will not hand it to the page
  CHECK(header_of(res, "Access-Control-Allow-Origin").empty());
  CHECK(header_of(res, "Vary") == "Origin");

  res = call(t.r, "GET", "/healthz", {{"Origin", "https://shop.example"}});
  CHECK(header_of(res, "Access-Control-Allow-Origin").empty());

  SUBCASE("preflight for an allowed origin and method") {
    const auto pre = call(t.r, "OPTIONS", "/v1/subscriptions/abc/consent",
                          {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "PUT"},
                           {"Access-Control-Request-Headers", "content-type, authorization"}});
    CHECK(pre.status == 204);
    CHECK(header_of(pre, "Access-Control-Allow-Origin") == "https://shop.example");
    CHECK(header_of(pre, "Access-Control-Allow-Methods") == "PUT");
    CHECK(header_of(pre, "Access-Control-Allow-Headers") == "Content-Type, Authorization");
    CHECK(header_of(pre, "Access-Control-Max-Age") == "600");
    CHECK(header_of(pre, "Vary") == "Origin");
  }
  SUBCASE("preflight from another origin, or for a method the path does not offer browsers") {
    auto pre = call(t.r, "OPTIONS", "/v1/subscriptions",
                    {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(pre.status == 403);
    CHECK(header_of(pre, "Access-Control-Allow-Origin").empty());
    pre = call(t.r, "OPTIONS", "/v1/subscriptions",
               {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "DELETE"}});
    CHECK(pre.status == 403);
    // A path shared by a backend GET and a subscriber DELETE offers browsers only DELETE.
    pre = call(t.r, "OPTIONS", "/v1/subscriptions/s1",
               {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "GET"}});
    CHECK(pre.status == 403);
    pre = call(t.r, "OPTIONS", "/v1/subscriptions/s1",
               {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "DELETE"}});
    CHECK(pre.status == 204);
  }
  SUBCASE("preflight for an unknown path is 404") {
    CHECK(call(t.r, "OPTIONS", "/nope", {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "GET"}})
              .status == 404);
  }
}

TEST_CASE("the observer hears each request once, by route pattern, never the raw path") {
  test_routes t;
  struct heard {
    std::string method, route;
    int status;
  };
  std::vector<heard> seen;
  t.r.set_observer([&](const answered_request& a) {
    CHECK(a.elapsed >= std::chrono::steady_clock::duration::zero());
    seen.push_back({std::string(a.method), std::string(a.route), a.status});
  });
  call(t.r, "GET", "/v1/subscriptions/sub_secret123/export", {{"Authorization", "Bearer " + backend_key}});
  call(t.r, "GET", "/v1/subscriptions/sub_secret123/export");   // refused: no key
  call(t.r, "PATCH", "/v1/subscriptions/sub_secret123/export");  // a method the path does not take
  call(t.r, "GET", "/v1/nothing/here");
  call(t.r, "GET", "/throws");
  REQUIRE(seen.size() == 5);
  CHECK(seen[0].route == "/v1/subscriptions/{id}/export");
  CHECK(seen[0].status == 200);
  CHECK(seen[1].route == "/v1/subscriptions/{id}/export");
  CHECK(seen[1].status == 401);
  CHECK(seen[2].route == "/v1/subscriptions/{id}/export");
  CHECK(seen[2].method == "PATCH");
  CHECK(seen[2].status == 405);
  CHECK(seen[3].route.empty());
  CHECK(seen[3].status == 404);
  CHECK(seen[4].route == "/throws");
  CHECK(seen[4].status == 500);

  // A handler that answers twice is observed once (the second answer is ignored anyway).
  t.r.add("GET", "/twice", access::open, [](request&&, respond_fn respond) {
    respond(json_response(200, {}));
    respond(json_response(201, {}));
  });
  request req;
  req.method = "GET";
  req.target = "/twice";
  t.r.dispatch(std::move(req), [](response) {});
  REQUIRE(seen.size() == 6);
  CHECK(seen[5].status == 200);
}
