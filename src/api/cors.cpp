#include "webpushd/api/cors.hpp"

#include <algorithm>

#include "text.hpp"

namespace webpushd::api {

cors_policy::cors_policy(std::vector<std::string> allowed_origins) : origins_(std::move(allowed_origins)) {
  for (auto& o : origins_) o = to_lower(o);
}

bool cors_policy::allows(std::string_view origin) const {
  // "null" (sandboxed frames, file://) is never a shop.
  if (origin.empty() || origin == "null") return false;
  return std::any_of(origins_.begin(), origins_.end(), [&](const std::string& o) { return iequals(o, origin); });
}

void cors_policy::decorate(std::string_view origin, response& res) const {
  // Vary even when refusing: a shared cache must not hand one origin's
  // answer (with or without the header) to another.
  res.set_header("Vary", "Origin");
  if (allows(origin)) res.set_header("Access-Control-Allow-Origin", std::string(origin));
}

response cors_policy::preflight(const request& req, std::span<const std::string> methods) const {
  const auto origin = req.header("Origin");
  const auto wanted = req.header("Access-Control-Request-Method");
  const bool method_ok = std::find(methods.begin(), methods.end(), wanted) != methods.end() ||
                         (wanted == "HEAD" && std::find(methods.begin(), methods.end(), "GET") != methods.end());
  if (!allows(origin) || !method_ok) {
    auto res = error_response("forbidden", allows(origin) ? "method not allowed for cross-origin requests"
                                                          : "origin not allowed");
    res.set_header("Vary", "Origin");
    return res;
  }
  response res;
  res.status = 204;
  res.content_type.clear();
  res.set_header("Access-Control-Allow-Origin", origin)
      .set_header("Access-Control-Allow-Methods", join_list(methods))
      .set_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
      .set_header("Access-Control-Max-Age", std::to_string(max_age_seconds))
      .set_header("Vary", "Origin");
  return res;
}

}  // namespace webpushd::api
