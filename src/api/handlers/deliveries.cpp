// Beacons from the service worker. Answered 202 once durable; a repeat is
// also 202 (browsers retry keepalive requests), with "recorded": false.
#include "webpushd/api/delivery_routes.hpp"

#include <nlohmann/json.hpp>

#include "json_body.hpp"

namespace webpushd::api {

void add_delivery_event_routes(router& r, tracking::beacon_recorder& recorder) {
  auto* rec = &recorder;
  r.add("POST", "/v1/deliveries/{id}/events", access::browser, [rec](request&& req, respond_fn respond) {
    auto body = handlers::json_object_body(req);
    if (!body) return respond(error_response(body.error()));
    auto type = handlers::required_string(*body, "type", "type");
    if (!type) return respond(error_response(type.error()));
    auto action = handlers::optional_string(*body, "action", "action");
    if (!action) return respond(error_response(action.error()));
    auto sig = handlers::required_string(*body, "sig", "sig");
    if (!sig) return respond(error_response(sig.error()));
    tracking::beacon b{req.params.at("id"), std::move(*type), std::move(*action), std::move(*sig)};
    rec->record(std::move(b), [respond](result<bool> stored) {
      if (!stored) {
        // A bad signature is a refusal (403), not a malformed request.
        const auto& e = stored.error();
        if (e.code == "invalid_signature") return respond(error_response("forbidden", e.message, e.field));
        return respond(error_response(e));
      }
      respond(json_response(202, {{"recorded", *stored}}));
    });
  });
}

}  // namespace webpushd::api
