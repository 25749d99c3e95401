#include "webpushd/api/health.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "webpushd/api/router.hpp"

#ifndef WEBPUSHD_VERSION
#define WEBPUSHD_VERSION "unknown"
#endif

namespace webpushd::api {

void add_health_route(router& r, health_check storage) {
  r.add("GET", "/healthz", access::open, [storage = std::move(storage)](request&&, respond_fn respond) {
    const auto ok = storage ? storage() : result<void>{};
    if (ok) {
      respond(json_response(200, {{"status", "ok"}, {"storage", "ok"}, {"version", WEBPUSHD_VERSION}}));
      return;
    }
    // Probes poll this often: warn rather than flood the error log.
    spdlog::warn("healthz: storage check failed: {}: {}", ok.error().code, ok.error().message);
    respond(json_response(503, {{"status", "unavailable"},
                                {"storage", "failing"},
                                {"version", WEBPUSHD_VERSION},
                                {"error",
                                 {{"code", "storage_unavailable"},
                                  {"message", "the service is temporarily unavailable, retry later"},
                                  {"field", ""}}}}));
  });
}

void add_vapid_public_key_route(router& r, std::string public_key) {
  r.add("GET", "/v1/vapid-public-key", access::browser,
        [key = std::move(public_key)](request&&, respond_fn respond) {
          respond(json_response(200, {{"publicKey", key}}));
        });
}

}  // namespace webpushd::api
