// The body of POST /v1/events from the shop backend: one event or
// {"events":[…]} (built-in and the example config's custom types), through
// the route's handler, the ingestor's validation and the writer's commit,
// with the example scenarios reacting. The answer must agree with
// ingest::validate_event on the same value.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_app.hpp"
#include "handlers/json_body.hpp"
#include "webpushd/ingest/events.hpp"

using nlohmann::json;
using webpushd::fuzz::fixture;

namespace {

const webpushd::ingest::custom_event_types& custom_types() {
  static const auto types = [] {
    auto t = webpushd::ingest::custom_event_types::compile(fixture::instance().config().events.custom_types);
    FUZZ_CHECK(t.has_value(), "the example config's custom types compile");
    return *t;
  }();
  return types;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& app = fixture::instance();
  auto req = fixture::make_request(
      "POST", "/v1/events",
      {{"Authorization", std::string("Bearer ") + fixture::api_key}, {"Content-Type", "application/json"}},
      std::string(reinterpret_cast<const char*>(data), size));
  // The body as the handler reads it (not parsing, not an object, a name
  // repeated within an object: 400), to compare the answer with.
  const auto read = webpushd::api::handlers::json_object_body(req);
  auto res = app.dispatch(std::move(req));
  if (!read) {
    FUZZ_CHECK(res.status == 400 && res.body.find(read.error().code) != std::string::npos, res.body);
    return 0;
  }
  const json& parsed = *read;
  const auto answer = json::parse(res.body, nullptr, false);
  FUZZ_CHECK(answer.is_object(), res.body);
  if (res.status == 202) {
    const auto accepted = answer.value("accepted", 0U), duplicates = answer.value("duplicates", 0U);
    FUZZ_CHECK(accepted + duplicates >= 1, res.body);
  } else {
    FUZZ_CHECK(res.status >= 400 && res.status < 500, res.body);
  }
  if (answer.contains("rejected")) {
    for (const auto& r : answer["rejected"]) {
      FUZZ_CHECK(r.is_object() && r["code"].is_string() && !r["code"].get<std::string>().empty(), res.body);
      FUZZ_CHECK(r["field"].is_string() && r["index"].is_number_unsigned(), res.body);
    }
  }
  // A single event (no "events" member): the route says what the pure
  // validation says.
  if (!parsed.contains("events")) {
    const auto direct = webpushd::ingest::validate_event(parsed, "", custom_types());
    if (direct) {
      FUZZ_CHECK(res.status == 202, "validate_event accepts it, the route answered " + res.body);
    } else {
      FUZZ_CHECK(res.status == 422, "validate_event refuses it (" + direct.error().code + "), the route answered " +
                                        res.body);
      FUZZ_CHECK(answer["rejected"].size() == 1 && answer["rejected"][0]["code"] == direct.error().code, res.body);
    }
  }
  return 0;
}
