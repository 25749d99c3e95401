// The operator's and the dashboard's view of the daemon's health. Both read
// the database on the I/O thread through the registry's sources: indexed
// counts of the outbox's waiting messages (a few milliseconds), and the
// subscription counts at most once a minute.
#include <nlohmann/json.hpp>

#include "webpushd/api/metrics_routes.hpp"
#include "webpushd/core/text.hpp"

namespace webpushd::api {

using nlohmann::json;

namespace {

json optional_number(std::optional<double> v) { return v ? json(*v) : json(nullptr); }

}  // namespace

json status_json(const metrics::status_snapshot& s) {
  json outbox = {
      {"queued", s.outbox.queued},
      {"due", s.outbox.due},
      {"sending", s.outbox.sending},
      {"oldest_due_seconds", optional_number(s.oldest_due_seconds)},
      // The states messages wait in; finished ones are history, counted in
      // `deliveries` and in the /metrics counters.
      {"by_state", {{"queued", s.outbox.queued}, {"sending", s.outbox.sending}}},
  };
  json by_service = json::object();
  for (const auto& [service, counts] : s.by_push_service) by_service[service] = counts;
  return {
      {"outbox", std::move(outbox)},
      {"deliveries",
       {{"window_seconds", s.window.count()},
        {"last_5m", s.deliveries},
        {"by_push_service", std::move(by_service)},
        {"latency_p50_seconds", optional_number(s.latency_p50_seconds)},
        {"latency_p99_seconds", optional_number(s.latency_p99_seconds)}}},
      {"subscriptions",
       {{"active", s.subscriptions.active},
        {"gone", s.subscriptions.gone},
        {"erased", s.subscriptions.erased},
        {"counted_at", format_rfc3339(s.subscriptions_counted_at)}}},
      {"started_at", format_rfc3339(s.started_at)},
      {"version", s.version},
  };
}

void add_metrics_routes(router& r, metrics::registry& registry) {
  auto* reg = &registry;
  r.add("GET", "/metrics", access::open, [reg](request&&, respond_fn respond) {
    response res;
    res.content_type = std::string{metrics::registry::content_type};
    res.body = reg->scrape();
    respond(std::move(res));
  });
  r.add("GET", "/v1/status", access::reader, [reg](request&&, respond_fn respond) {
    auto s = reg->status();
    if (!s) return respond(error_response(s.error()));
    respond(json_response(200, status_json(*s)));
  });
}

}  // namespace webpushd::api
