#include "webpushd/api/http.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "text.hpp"

namespace webpushd::api {

std::string request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

std::size_t request::header_count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& h : headers) n += iequals(h.first, name) ? 1 : 0;
  return n;
}

int status_for(std::string_view code) {
  const auto starts = [&](std::string_view p) { return code.starts_with(p); };
  const auto ends = [&](std::string_view s) { return code.ends_with(s); };
  // Exact codes first: several of them would also match a pattern below.
  if (code == "unauthorized") return 401;
  if (code == "forbidden") return 403;
  if (code == "not_found") return 404;
  if (code == "method_not_allowed") return 405;
  if (code == "conflict") return 409;
  if (code == "gone") return 410;
  if (code == "unsupported_media_type") return 415;
  if (code == "rate_limited") return 429;
  if (code == "headers_too_large") return 431;
  if (code == "unavailable" || code == "shutting_down") return 503;
  if (code == "invalid_json" || code == "bad_request") return 400;
  // Values in the input that name nothing we know are wrong values, not
  // missing resources; a subscription that ended is a conflict with its state.
  if (code == "unknown_category" || code == "duplicate_category" || code == "consent_missing") return 422;
  if (code == "subscription_inactive") return 409;
  if (starts("malformed_")) return 400;
  if (starts("unknown_")) return 404;
  if (ends("_conflict") || starts("already_")) return 409;
  if (ends("_too_large")) return 413;
  if (starts("invalid_") || ends("_invalid") || starts("missing_") || ends("_required") || ends("_not_allowed")) {
    return 422;
  }
  if (starts("storage_")) return 503;
  return 500;
}

response json_response(int status, const nlohmann::json& body) {
  response r;
  r.status = status;
  // Strings may carry untrusted bytes: replace invalid UTF-8 instead of throwing.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

// What a client is asked to wait after a storage failure: long enough for
// an operator's alert to fire, short enough that a shop's queue drains soon after.
constexpr int storage_retry_after_seconds = 30;

response error_response(const error& e) {
  const int status = status_for(e.code);
  if (status >= 500) {
    // The detail may name files, SQL or peers: it is for the operator.
    spdlog::error("request failed: {}: {}", e.code, e.message);
    const bool unavailable = status == 503;
    // Storage the operator must fix (space, a read-only mount, a failing
    // disk): the client learns which, and when to try again; the daemon
    // takes writes again once it is fixed, without a restart.
    const char* storage = e.code == "storage_full"        ? "the daemon's storage is full; retry later"
                          : e.code == "storage_read_only" ? "the daemon's storage is read-only; retry later"
                          : e.code == "storage_io_error"  ? "the daemon's storage failed to read or write; retry later"
                                                          : nullptr;
    auto res = json_response(
        status, {{"error",
                  {{"code", unavailable ? e.code : std::string("internal_error")},
                   {"message", storage != nullptr ? storage
                               : unavailable      ? "the service is temporarily unavailable, retry later"
                                                  : "internal error"},
                   {"field", ""}}}});
    if (storage != nullptr) res.set_header("Retry-After", std::to_string(storage_retry_after_seconds));
    return res;
  }
  return json_response(status, {{"error", {{"code", e.code}, {"message", e.message}, {"field", e.field}}}});
}

response error_response(std::string code, std::string message, std::string field) {
  return error_response(error{std::move(code), std::move(message), std::move(field)});
}

}  // namespace webpushd::api
