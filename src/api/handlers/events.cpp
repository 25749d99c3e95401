// Shop events from the backend. Answered only after the valid events are
// committed: 202 when at least one was valid (the rejected ones listed by
// index), 422 with the same list when none was. Never silent loss.
#include <nlohmann/json.hpp>

#include "json_body.hpp"
#include "webpushd/api/event_routes.hpp"

namespace webpushd::api {
namespace {

using nlohmann::json;

json rejected_json(const std::vector<ingest::rejection>& rejected) {
  json list = json::array();
  for (const auto& r : rejected) {
    list.push_back(
        {{"index", r.index}, {"code", r.reason.code}, {"message", r.reason.message}, {"field", r.reason.field}});
  }
  return list;
}

response outcome_response(const ingest::ingest_outcome& out) {
  if (out.accepted + out.duplicates == 0) {
    // Nothing was valid: the first reason as the error, all of them listed.
    const auto& first = out.rejected.front().reason;
    const auto n = out.rejected.size();
    return json_response(422, {{"error",
                                {{"code", "events_invalid"},
                                 {"message", n == 1 ? first.message
                                                    : std::to_string(n) + " events are invalid; the first: " +
                                                          first.message},
                                 {"field", first.field}}},
                               {"rejected", rejected_json(out.rejected)}});
  }
  return json_response(
      202, {{"accepted", out.accepted}, {"duplicates", out.duplicates}, {"rejected", rejected_json(out.rejected)}});
}

}  // namespace

void add_event_routes(router& r, ingest::event_ingestor& ingestor) {
  auto* ing = &ingestor;
  r.add("POST", "/v1/events", access::backend, [ing](request&& req, respond_fn respond) {
    auto body = handlers::json_object_body(req);
    if (!body) return respond(error_response(body.error()));
    ing->ingest(*body, [respond](result<ingest::ingest_outcome> out) {
      if (!out) return respond(error_response(out.error()));
      respond(outcome_response(*out));
    });
  });
}

}  // namespace webpushd::api
