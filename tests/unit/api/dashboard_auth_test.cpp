// The dashboard's credentials: session cookies (signing, expiry, tampering,
// revocation by a password change), failed-login limits, the `reader` access
// rule in the router, and the login/logout routes with a manual clock.
#include <doctest/doctest.h>

#include <future>
#include <optional>

#include <nlohmann/json.hpp>

#include "webpushd/api/dashboard_auth.hpp"
#include "webpushd/api/dashboard_routes.hpp"
#include "webpushd/api/router.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/crypto/primitives.hpp"

using namespace webpushd;
using namespace webpushd::api;
using namespace std::chrono_literals;

namespace {

const std::string backend_key = "k3y-for-the-shop-backend-0123456789abcdef";
constexpr crypto::scrypt_params cheap{10, 8, 1};

bytes key_of(char fill) { return bytes(32, static_cast<std::uint8_t>(fill)); }

dashboard_user user(std::string name, std::string_view password) {
  auto hash = crypto::hash_password(password, cheap);
  return {std::move(name), *crypto::parse_password_hash(hash), hash};
}

std::string header_of(const response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return {};
}

std::string code_of(const response& r) { return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>(); }

// The cookie's value from a Set-Cookie header.
std::string cookie_value(const std::string& set_cookie) {
  const auto eq = set_cookie.find('=');
  return set_cookie.substr(eq + 1, set_cookie.find(';') - eq - 1);
}

// Dispatches and waits (bounded) for the answer, which may come from another thread.
response call(const router& r, std::string method, std::string target,
              std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = {},
              std::string remote_ip = "203.0.113.7") {
  request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.headers = std::move(headers);
  req.body = std::move(body);
  req.remote_ip = std::move(remote_ip);
  auto answered = std::make_shared<std::promise<response>>();
  auto future = answered->get_future();
  r.dispatch(std::move(req), [answered](response res) { answered->set_value(std::move(res)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

}  // namespace

TEST_CASE("session_codec: a signed value decodes to its user until it expires") {
  const session_codec codec(key_of('k'));
  const time_point now{std::chrono::seconds{1'700'000'000}};
  const auto binding = [](std::string_view u) -> std::optional<std::string> {
    if (u == "anna") return std::string("hash-of-anna");
    return std::nullopt;
  };
  const auto value = codec.encode("anna", now + 1h, "hash-of-anna");
  CHECK(value.starts_with("v1."));
  auto s = codec.decode(value, binding, now);
  REQUIRE(s.has_value());
  CHECK(s->user == "anna");
  CHECK(s->expires_at == now + 1h);
  CHECK(codec.decode(value, binding, now + 59min).has_value());
  CHECK_FALSE(codec.decode(value, binding, now + 1h).has_value());  // expired at its expiry

  SUBCASE("tampering with any part, or another key, fails") {
    CHECK_FALSE(session_codec(key_of('x')).decode(value, binding, now).has_value());
    const auto dot2 = value.find('.', 3);
    const auto dot3 = value.find('.', dot2 + 1);
    // A later expiry with the old MAC.
    auto extended = value.substr(0, dot2 + 1) + std::to_string(1'700'000'000 + 86400) + value.substr(dot3);
    CHECK_FALSE(codec.decode(extended, binding, now).has_value());
    // Another user with the old MAC.
    auto other = std::string("v1.") + base64url_encode(as_bytes("root")) + value.substr(dot2);
    const auto any_user = [](std::string_view) -> std::optional<std::string> { return std::string("hash-of-anna"); };
    CHECK_FALSE(codec.decode(other, any_user, now).has_value());
    // A flipped MAC character, a truncated value, junk.
    auto flipped = value;
    flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
    CHECK_FALSE(codec.decode(flipped, binding, now).has_value());
    CHECK_FALSE(codec.decode(value.substr(0, value.size() - 2), binding, now).has_value());
    for (const auto* junk : {"", "v1", "v1...", "v2.YW5uYQ.1700003600.x", "v1.YW5uYQ.17e8.x", "v1.YW5uYQ.-1.x"}) {
      CHECK_FALSE(codec.decode(junk, binding, now).has_value());
    }
  }
  SUBCASE("a removed user or a changed password ends the session") {
    const auto gone = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
    CHECK_FALSE(codec.decode(value, gone, now).has_value());
    const auto changed = [](std::string_view) -> std::optional<std::string> { return std::string("new-hash"); };
    CHECK_FALSE(codec.decode(value, changed, now).has_value());
  }
}

TEST_CASE("login_limiter: five failures block the address for the rest of the window") {
  login_limiter limiter({5, 900s, 3});
  time_point t{std::chrono::seconds{1'700'000'000}};
  for (int i = 0; i < 4; ++i) {
    CHECK_FALSE(limiter.blocked_for("198.51.100.1", t).has_value());
    limiter.failed("198.51.100.1", t);
    t += 10s;
  }
  CHECK_FALSE(limiter.blocked_for("198.51.100.1", t).has_value());
  limiter.failed("198.51.100.1", t);  // the fifth, at +40 s
  auto wait = limiter.blocked_for("198.51.100.1", t);
  REQUIRE(wait.has_value());
  CHECK(*wait == 860s);  // until the first failure (at +0 s) is 15 minutes old
  CHECK_FALSE(limiter.blocked_for("198.51.100.2", t).has_value());  // others are not affected
  CHECK(limiter.blocked_for("198.51.100.1", t + 859s).has_value());
  CHECK_FALSE(limiter.blocked_for("198.51.100.1", t - 40s + 900s).has_value());

  SUBCASE("a success clears the address") {
    limiter.succeeded("198.51.100.1");
    CHECK_FALSE(limiter.blocked_for("198.51.100.1", t).has_value());
  }
  SUBCASE("an IPv6 address counts by its /64") {
    for (int i = 0; i < 5; ++i) limiter.failed("2001:db8:1:2::" + std::to_string(i + 1), t);
    CHECK(limiter.blocked_for("2001:db8:1:2:ffff::9", t).has_value());
    CHECK_FALSE(limiter.blocked_for("2001:db8:1:3::1", t).has_value());
  }
  SUBCASE("at most max_addresses are kept: the stalest is forgotten") {
    limiter.failed("192.0.2.1", t + 1s);
    limiter.failed("192.0.2.2", t + 2s);
    limiter.failed("192.0.2.3", t + 3s);  // a fourth address: 198.51.100.1 (latest failure at t) goes
    CHECK_FALSE(limiter.blocked_for("198.51.100.1", t).has_value());
  }
}

TEST_CASE("cookie_values reads every occurrence of a cookie") {
  request req;
  req.headers = {{"Cookie", "a=1; webpushd_session=first;b=2"}, {"cookie", " webpushd_session=\"second\" "}};
  CHECK(cookie_values(req, "webpushd_session") == std::vector<std::string>{"first", "second"});
  CHECK(cookie_values(req, "missing").empty());
  CHECK(cookie_values(req, "webpushd").empty());
}

TEST_CASE("authenticate_reader: a Bearer key, or without Authorization a session") {
  const api_key_set keys{{{"backend", backend_key}}};
  const session_check sessions = [](const request& r) -> std::optional<std::string> {
    if (r.header("Cookie") == "webpushd_session=good") return std::string("anna");
    return std::nullopt;
  };
  const auto with = [](std::vector<std::pair<std::string, std::string>> headers) {
    request r;
    r.headers = std::move(headers);
    return r;
  };
  auto who = authenticate_reader(keys, sessions, with({{"Authorization", "Bearer " + backend_key}}));
  REQUIRE(who.has_value());
  CHECK(who->api_key_name == "backend");
  CHECK(who->user.empty());
  who = authenticate_reader(keys, sessions, with({{"Cookie", "webpushd_session=good"}}));
  REQUIRE(who.has_value());
  CHECK(who->user == "anna");
  CHECK(who->api_key_name.empty());
  // A wrong key is refused even beside a good session: the caller meant the key.
  CHECK_FALSE(authenticate_reader(keys, sessions,
                                  with({{"Authorization", "Bearer wrong"}, {"Cookie", "webpushd_session=good"}})));
  CHECK_FALSE(authenticate_reader(keys, sessions, with({{"Authorization", "Subscriber x"}})));
  CHECK_FALSE(authenticate_reader(keys, sessions, with({{"Cookie", "webpushd_session=bad"}})));
  CHECK_FALSE(authenticate_reader(keys, sessions, with({})));
  CHECK_FALSE(authenticate_reader(keys, {}, with({{"Cookie", "webpushd_session=good"}})));
  CHECK(authenticate_reader(keys, sessions, with({})).error().code == "unauthorized");
}

TEST_CASE("the router's reader routes: key or session, never CORS, never a backend route") {
  manual_clock clk;
  dashboard_auth auth({user("anna", "correct horse")}, key_of('s'), {}, clk);
  router r{cors_policy{{"https://shop.example"}}, api_key_set{{{"backend", backend_key}}},
           [&auth](const request& req) -> std::optional<std::string> {
             auto s = auth.session_of(req);
             if (!s) return std::nullopt;
             return s->user;
           }};
  request seen;
  r.add("GET", "/v1/scenarios", access::reader, [&](request&& req, respond_fn respond) {
    seen = std::move(req);
    respond(json_response(200, {{"ok", true}}));
  });
  r.add("POST", "/v1/events", access::backend, [](request&&, respond_fn respond) { respond(json_response(202, {})); });
  time_point expires_at;
  const auto cookie = "webpushd_session=" + cookie_value(auth.session_cookie("anna", expires_at));

  auto res = call(r, "GET", "/v1/scenarios", {{"Origin", "https://shop.example"}});
  CHECK(res.status == 401);
  CHECK(code_of(res) == "unauthorized");
  CHECK(header_of(res, "WWW-Authenticate") == "Bearer realm=\"webpushd\"");
  CHECK(header_of(res, "Access-Control-Allow-Origin").empty());

  res = call(r, "GET", "/v1/scenarios", {{"Cookie", cookie}, {"Origin", "https://shop.example"}});
  CHECK(res.status == 200);
  CHECK(seen.dashboard_user == "anna");
  CHECK(header_of(res, "Access-Control-Allow-Origin").empty());

  res = call(r, "GET", "/v1/scenarios", {{"Authorization", "Bearer " + backend_key}});
  CHECK(res.status == 200);
  CHECK(seen.api_key_name == "backend");
  CHECK(seen.dashboard_user.empty());

  // The session opens reader routes only.
  CHECK(call(r, "POST", "/v1/events", {{"Cookie", cookie}}).status == 401);
  // A preflight for a reader route is refused like a backend route's.
  res = call(r, "OPTIONS", "/v1/scenarios",
             {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "GET"}});
  CHECK(res.status == 403);
  CHECK(header_of(res, "Access-Control-Allow-Origin").empty());
  // Expired.
  clk.advance(12h);
  CHECK(call(r, "GET", "/v1/scenarios", {{"Cookie", cookie}}).status == 401);
}

TEST_CASE("login, cookie flags, logout and the failed-login limit through the routes") {
  manual_clock clk;
  dashboard_auth::options o;
  o.session_lifetime = 2h;
  o.limits = {3, 600s, 100};
  dashboard_auth auth({user("anna", "correct horse")}, key_of('s'), o, clk);
  router r{cors_policy{}, api_key_set{}, [&auth](const request& req) -> std::optional<std::string> {
             auto s = auth.session_of(req);
             if (!s) return std::nullopt;
             return s->user;
           }};
  add_dashboard_routes(r, auth, {"https://push.shop.example"});
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}, {"Host", "127.0.0.1:8080"}};
  auto html_form = form;
  html_form.emplace_back("Accept", "text/html,application/xhtml+xml");

  SUBCASE("GET /dashboard: the login form without a session, with the CSP") {
    const auto res = call(r, "GET", "/dashboard");
    CHECK(res.status == 200);
    CHECK(res.content_type == "text/html; charset=utf-8");
    CHECK(res.body.find("action=\"/dashboard/login\"") != std::string::npos);
    CHECK(header_of(res, "Content-Security-Policy") == dashboard_csp);
    CHECK(header_of(res, "Content-Security-Policy").find("script-src 'self';") != std::string::npos);
    CHECK(header_of(res, "Cache-Control") == "no-store");
    CHECK(header_of(res, "X-Frame-Options") == "DENY");
  }
  SUBCASE("a good login sets an HttpOnly, SameSite=Strict cookie that opens the page") {
    auto res = call(r, "POST", "/dashboard/login", html_form, "name=anna&password=correct+horse");
    CHECK(res.status == 303);
    CHECK(header_of(res, "Location") == "/dashboard");
    const auto set = header_of(res, "Set-Cookie");
    CHECK(set.starts_with("webpushd_session=v1."));
    CHECK(set.find("; Max-Age=7200; Path=/; HttpOnly; SameSite=Strict") != std::string::npos);
    CHECK(set.find("Secure") == std::string::npos);  // plain http here
    const auto cookie = "webpushd_session=" + cookie_value(set);
    res = call(r, "GET", "/dashboard", {{"Cookie", cookie}});
    CHECK(res.status == 200);
    CHECK(res.body.find("/dashboard/app.js") != std::string::npos);
    CHECK(header_of(res, "Content-Security-Policy") == dashboard_csp);
    res = call(r, "GET", "/dashboard/session", {{"Cookie", cookie}});
    CHECK(res.status == 200);
    CHECK(nlohmann::json::parse(res.body)["user"] == "anna");
    // Logout clears the cookie in the browser.
    res = call(r, "POST", "/dashboard/logout", {{"Accept", "text/html"}, {"Cookie", cookie}});
    CHECK(res.status == 303);
    CHECK(header_of(res, "Set-Cookie") == "webpushd_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict");
    CHECK(call(r, "POST", "/dashboard/logout").status == 204);
  }
  SUBCASE("a script gets JSON: the user and expiry, or the project's errors") {
    auto res = call(r, "POST", "/dashboard/login", form, "name=anna&password=correct%20horse");
    CHECK(res.status == 200);
    const auto body = nlohmann::json::parse(res.body);
    CHECK(body["user"] == "anna");
    CHECK(body["expires_at"] == format_rfc3339(std::chrono::floor<std::chrono::seconds>(clk.now()) + 2h));
    res = call(r, "POST", "/dashboard/login", form, "name=anna&password=wrong");
    CHECK(res.status == 401);
    CHECK(code_of(res) == "unauthorized");
    CHECK(header_of(res, "Set-Cookie").empty());
    res = call(r, "POST", "/dashboard/login", form, "name=nobody&password=correct+horse");
    CHECK(res.status == 401);
    res = call(r, "POST", "/dashboard/login", form, "name=anna");
    CHECK(res.status == 422);
    CHECK(code_of(res) == "missing_field");
    res = call(r, "POST", "/dashboard/login", {{"Content-Type", "application/json"}}, "{}");
    CHECK(res.status == 415);
  }
  SUBCASE("the form gets a friendly page") {
    const auto res = call(r, "POST", "/dashboard/login", html_form, "name=anna&password=nope");
    CHECK(res.status == 401);
    CHECK(res.content_type == "text/html; charset=utf-8");
    CHECK(res.body.find("Wrong name or password.") != std::string::npos);
    CHECK(header_of(res, "Content-Security-Policy") == dashboard_csp);
  }
  SUBCASE("logins from another site's page are refused") {
    auto headers = form;
    headers.emplace_back("Origin", "https://evil.example");
    auto res = call(r, "POST", "/dashboard/login", headers, "name=anna&password=correct+horse");
    CHECK(res.status == 403);
    headers.back().second = "http://127.0.0.1:8080";
    CHECK(call(r, "POST", "/dashboard/login", headers, "name=anna&password=correct+horse").status == 200);
    headers.back().second = "https://push.shop.example";
    CHECK(call(r, "POST", "/dashboard/login", headers, "name=anna&password=correct+horse").status == 200);
    CHECK(call(r, "POST", "/dashboard/logout", {{"Origin", "null"}}).status == 403);
  }
  SUBCASE("after three failures the address is refused, even with the right password, until the window ends") {
    for (int i = 0; i < 3; ++i) CHECK(call(r, "POST", "/dashboard/login", form, "name=anna&password=x").status == 401);
    auto res = call(r, "POST", "/dashboard/login", form, "name=anna&password=correct+horse");
    CHECK(res.status == 429);
    CHECK(code_of(res) == "rate_limited");
    CHECK(header_of(res, "Retry-After") == "600");
    // Another address is not affected.
    CHECK(call(r, "POST", "/dashboard/login", form, "name=anna&password=correct+horse", "203.0.113.8").status == 200);
    clk.advance(600s);
    CHECK(call(r, "POST", "/dashboard/login", form, "name=anna&password=correct+horse").status == 200);
  }
}

TEST_CASE("same_origin_request") {
  CHECK(same_origin_request("", "127.0.0.1:8080", ""));
  CHECK(same_origin_request("http://127.0.0.1:8080", "127.0.0.1:8080", ""));
  CHECK(same_origin_request("https://PUSH.shop.example", "push.shop.example", ""));
  CHECK(same_origin_request("https://push.shop.example", "10.0.0.5:8080", "https://push.shop.example"));
  CHECK_FALSE(same_origin_request("https://evil.example", "127.0.0.1:8080", "https://push.shop.example"));
  CHECK_FALSE(same_origin_request("null", "127.0.0.1:8080", ""));
  CHECK_FALSE(same_origin_request("http://127.0.0.1:8081", "127.0.0.1:8080", ""));
  CHECK_FALSE(same_origin_request("ftp://127.0.0.1:8080", "127.0.0.1:8080", ""));
}
