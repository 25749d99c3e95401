// What each automation scenario sends, what pacing holds back, and what
// drives subscribers away. Reads run on the stats service's own connection
// on the I/O thread: a few indexed aggregates per request.
#include <nlohmann/json.hpp>

#include "json_body.hpp"
#include "webpushd/api/scenario_routes.hpp"

namespace webpushd::api {

using handlers::query_value;

void add_scenario_routes(router& r, automation::scenario_stats_service& service) {
  auto* svc = &service;
  r.add("GET", "/v1/scenarios", access::reader, [svc](request&&, respond_fn respond) {
    auto overviews = svc->list();
    if (!overviews) return respond(error_response(overviews.error()));
    nlohmann::json list = nlohmann::json::array();
    for (const auto& o : *overviews) list.push_back(automation::to_json(o));
    respond(json_response(200, {{"scenarios", std::move(list)}}));
  });
  r.add("GET", "/v1/scenarios/{name}/stats", access::reader, [svc](request&& req, respond_fn respond) {
    auto stats = svc->stats(req.params.at("name"), {query_value(req, "from"), query_value(req, "to")});
    if (!stats) return respond(error_response(stats.error()));
    respond(json_response(200, automation::to_json(*stats)));
  });
}

}  // namespace webpushd::api
