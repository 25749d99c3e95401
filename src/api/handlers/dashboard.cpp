// The dashboard's page, login and logout. Password checks (scrypt, about
// 0.1 s) run on dashboard_auth's own thread, never on an I/O thread.
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "../text.hpp"
#include "webpushd/api/dashboard_routes.hpp"
#include "webpushd/api/static_assets.hpp"
#include "webpushd/core/text.hpp"

namespace webpushd::api {
namespace {

constexpr std::size_t max_name = 64;
constexpr std::size_t max_password = 1024;

void add_page_headers(response& res) {
  res.set_header("Content-Security-Policy", std::string(dashboard_csp))
      .set_header("X-Frame-Options", "DENY")
      .set_header("X-Content-Type-Options", "nosniff")
      .set_header("Referrer-Policy", "same-origin")
      .set_header("Cache-Control", "no-store");
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string embedded_text(std::string_view path) {
  const auto* f = find_embedded(path);
  return f == nullptr ? std::string{} : std::string(f->content);
}

// The login form, with a message where login.html has its marker.
response login_page(int status, std::string_view message) {
  static const std::string page = embedded_text("dashboard/login.html");
  response res;
  res.status = status;
  res.content_type = "text/html; charset=utf-8";
  res.body = page;
  if (const auto at = res.body.find("<!--message-->"); at != std::string::npos && !message.empty()) {
    res.body.replace(at, 14, "<p class=\"message\" role=\"alert\">" + html_escape(message) + "</p>");
  }
  add_page_headers(res);
  return res;
}

response dashboard_page() {
  static const std::string page = embedded_text("dashboard/index.html");
  response res;
  res.content_type = "text/html; charset=utf-8";
  res.body = page;
  add_page_headers(res);
  return res;
}

bool wants_html(const request& req) { return req.header("Accept").find("text/html") != std::string::npos; }

// For the form: the friendly page; for scripts: the project's JSON error.
response refusal(bool html, const error& e, std::string_view friendly) {
  if (html) return login_page(status_for(e.code), friendly);
  auto res = error_response(e);
  res.set_header("Cache-Control", "no-store");
  return res;
}

response see_dashboard() {
  response res;
  res.status = 303;
  res.content_type.clear();
  res.set_header("Location", "/dashboard").set_header("Cache-Control", "no-store");
  return res;
}

std::map<std::string, std::string> form_fields(std::string_view body) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    const auto pair = body.substr(start, end - start);
    const auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (name && value && !name->empty()) out.emplace(std::move(*name), std::move(*value));
    start = end + 1;
  }
  return out;
}

std::string minutes_text(std::chrono::seconds wait) {
  const auto minutes = (wait.count() + 59) / 60;
  return minutes <= 1 ? std::string("a minute") : std::to_string(minutes) + " minutes";
}

}  // namespace

bool same_origin_request(std::string_view origin, std::string_view host, std::string_view public_origin) {
  if (origin.empty()) return true;  // not sent by a browser page (curl, scripts): nothing to forge
  if (!public_origin.empty() && origin == public_origin) return true;
  const auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos || host.empty()) return false;
  const auto scheme = origin.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  return iequals(origin.substr(scheme_end + 3), host);
}

void add_dashboard_routes(router& r, dashboard_auth& auth, dashboard_options options) {
  auto* a = &auth;
  auto public_origin = std::make_shared<const std::string>(std::move(options.public_origin));

  r.add("GET", "/dashboard", access::open, [a](request&& req, respond_fn respond) {
    respond(a->session_of(req) ? dashboard_page() : login_page(200, {}));
  });

  r.add("GET", "/dashboard/session", access::reader, [a](request&& req, respond_fn respond) {
    nlohmann::json body;
    if (!req.dashboard_user.empty()) {
      const auto s = a->session_of(req);
      body = {{"user", req.dashboard_user}, {"expires_at", s ? format_rfc3339(s->expires_at) : std::string{}}};
    } else {
      body = {{"api_key", req.api_key_name}};
    }
    auto res = json_response(200, body);
    res.set_header("Cache-Control", "no-store");
    respond(std::move(res));
  });

  r.add("POST", "/dashboard/login", access::open, [a, public_origin](request&& req, respond_fn respond) {
    const bool html = wants_html(req);
    if (!same_origin_request(req.header("Origin"), req.header("Host"), *public_origin)) {
      return respond(refusal(html, {"forbidden", "log in from the dashboard's own page", ""},
                             "Log in from this page, not from another site."));
    }
    const auto type = req.header("Content-Type");
    if (!iequals(trim(std::string_view(type).substr(0, type.find(';'))), "application/x-www-form-urlencoded")) {
      return respond(refusal(html, {"unsupported_media_type", "send the form as application/x-www-form-urlencoded", ""},
                             "The form could not be read. Reload the page and try again."));
    }
    auto fields = form_fields(req.body);
    const auto name = fields["name"];
    const auto password = fields["password"];
    if (name.empty() || password.empty()) {
      return respond(refusal(html, {"missing_field", "name and password are required", name.empty() ? "name" : "password"},
                             "Enter your name and your password."));
    }
    if (name.size() > max_name || password.size() > max_password) {
      return respond(refusal(html, {"invalid_field", "the name or the password is too long", ""},
                             "Wrong name or password."));
    }
    const auto now = a->now_source().now();
    if (const auto wait = a->limiter().blocked_for(req.remote_ip, now)) {
      auto res = refusal(html, {"rate_limited", "too many failed logins from this address; try again later", ""},
                         "Too many failed attempts from your address. Try again in " + minutes_text(*wait) + ".");
      res.set_header("Retry-After", std::to_string(wait->count()));
      return respond(std::move(res));
    }
    auto address = req.remote_ip;
    auto accepted = a->check_password(name, password, [a, html, name, address, respond](bool ok) {
      if (!ok) {
        a->limiter().failed(address, a->now_source().now());
        spdlog::warn("dashboard: failed login from {}", address);
        return respond(refusal(html, {"unauthorized", "wrong name or password", ""}, "Wrong name or password."));
      }
      a->limiter().succeeded(address);
      spdlog::info("dashboard: {} logged in from {}", name, address);
      time_point expires_at;
      const auto cookie = a->session_cookie(name, expires_at);
      auto res = html ? see_dashboard() : json_response(200, {{"user", name}, {"expires_at", format_rfc3339(expires_at)}});
      res.set_header("Set-Cookie", cookie).set_header("Cache-Control", "no-store");
      respond(std::move(res));
    });
    if (!accepted) {
      respond(refusal(html, {"unavailable", "too many logins at once", ""},
                      "The dashboard is busy. Try again in a moment."));
    }
  });

  r.add("POST", "/dashboard/logout", access::open, [a, public_origin](request&& req, respond_fn respond) {
    const bool html = wants_html(req);
    if (!same_origin_request(req.header("Origin"), req.header("Host"), *public_origin)) {
      return respond(refusal(html, {"forbidden", "log out from the dashboard's own page", ""},
                             "Log out from this page, not from another site."));
    }
    response res;
    if (html) {
      res = see_dashboard();
    } else {
      res.status = 204;
      res.content_type.clear();
      res.set_header("Cache-Control", "no-store");
    }
    res.set_header("Set-Cookie", a->clearing_cookie());
    respond(std::move(res));
  });

  // The page's scripts, styles and the chart library: public files (no
  // secret in them), served without CORS. The pages go through the routes above.
  web_assets("dashboard/", ".html").install(r, access::open);
}

}  // namespace webpushd::api
