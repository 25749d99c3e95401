// One-off campaigns from the shop backend. A POST is answered only after the
// campaign is committed; the fan-out happens later on the scheduler thread,
// and GET shows its progress.
#include <charconv>

#include <nlohmann/json.hpp>

#include "json_body.hpp"
#include "webpushd/api/campaign_routes.hpp"

namespace webpushd::api {
namespace {

using nlohmann::json;

constexpr std::size_t default_list_limit = 50;
constexpr std::size_t max_list_limit = 1000;

// `?limit=N`: 1 … max_list_limit, default default_list_limit.
result<std::size_t> list_limit(const request& req) {
  const auto it = req.query.find("limit");
  if (it == req.query.end()) return default_list_limit;
  const auto& text = it->second;
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < 1 || n > max_list_limit) {
    return fail("invalid_limit", "limit must be a whole number from 1 to " + std::to_string(max_list_limit), "limit");
  }
  return n;
}

}  // namespace

void add_campaign_routes(router& r, automation::campaign_service& service) {
  auto* svc = &service;
  r.add("POST", "/v1/campaigns", access::backend, [svc](request&& req, respond_fn respond) {
    auto body = handlers::json_object_body(req);
    if (!body) return respond(error_response(body.error()));
    svc->create(*body, req.api_key_name, [respond](result<automation::campaign_created> out) {
      if (!out) return respond(error_response(out.error()));
      // 202: stored, sent later. A retry with the same client id that found
      // the campaign already stored answers 200 with its present state.
      respond(json_response(out->created ? 202 : 200, {{"id", out->id}, {"state", storage::to_string(out->state)}}));
    });
  });
  // Reads run on the service's read connection on the I/O thread: a
  // campaign row and one indexed count of its messages.
  r.add("GET", "/v1/campaigns", access::reader, [svc](request&& req, respond_fn respond) {
    auto limit = list_limit(req);
    if (!limit) return respond(error_response(limit.error()));
    auto views = svc->list(*limit);
    if (!views) return respond(error_response(views.error()));
    json list = json::array();
    for (const auto& v : *views) list.push_back(automation::to_json(v, false));
    respond(json_response(200, {{"campaigns", std::move(list)}}));
  });
  r.add("GET", "/v1/campaigns/{id}", access::reader, [svc](request&& req, respond_fn respond) {
    auto view = svc->get(req.params.at("id"));
    if (!view) return respond(error_response(view.error()));
    respond(json_response(200, automation::to_json(*view, true)));
  });
  // What the campaign earned: its counters by day and variant and one
  // count of its messages, on the same read connection.
  r.add("GET", "/v1/campaigns/{id}/stats", access::reader, [svc](request&& req, respond_fn respond) {
    auto stats = svc->stats(req.params.at("id"), {handlers::query_value(req, "from"), handlers::query_value(req, "to")});
    if (!stats) return respond(error_response(stats.error()));
    respond(json_response(200, automation::to_json(*stats)));
  });
  r.add("DELETE", "/v1/campaigns/{id}", access::backend, [svc](request&& req, respond_fn respond) {
    svc->cancel(req.params.at("id"), req.api_key_name, [respond](result<automation::campaign_view> out) {
      if (!out) return respond(error_response(out.error()));
      respond(json_response(200, automation::to_json(*out, true)));
    });
  });
}

}  // namespace webpushd::api
