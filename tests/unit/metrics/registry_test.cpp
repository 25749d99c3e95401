// The metrics registry through its public interface: what each observation
// does to the exposition text (read back by a small parser of the text
// format's sample lines), the scrape-time figures and their caching, the
// status window, and the guard on label combinations. The integration test
// (tests/integration/metrics.test.mjs) checks the daemon's real scrape with
// an independent parser and linter.
#include "webpushd/metrics/registry.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>

using namespace webpushd;
using namespace webpushd::metrics;
using namespace std::chrono_literals;

namespace {

// Every sample line of an exposition: "name{labels}" → value. Label order is
// as the serializer writes it: sorted by name, a histogram's `le` last.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// The `# TYPE` of each family.
std::map<std::string, std::string> types(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    std::string name, type;
    words >> name >> type;
    out[name] = type;
  }
  return out;
}

double value(const std::string& text, const std::string& series) {
  const auto all = samples(text);
  const auto it = all.find(series);
  if (it == all.end()) FAIL("no sample " << series << " in:\n" << text);
  return it->second;
}

bool has(const std::string& text, const std::string& series) { return samples(text).count(series) > 0; }

delivery_observation delivery(std::string_view outcome, std::string_view service = "fcm",
                              std::optional<double> latency = std::nullopt, std::string_view failure = "") {
  delivery_observation d;
  d.outcome = outcome;
  d.push_service = service;
  if (latency) d.latency = std::chrono::duration<double>(*latency);
  d.failure_class = failure;
  return d;
}

}  // namespace

TEST_CASE("every family has HELP and TYPE, counters end in _total, and the fixed series start at 0") {
  manual_clock clk;
  registry r(clk, {.version = "9.9.9"});
  const auto text = r.scrape();
  const auto t = types(text);
  for (const auto& [name, type] : t) {
    CHECK_MESSAGE(text.find("# HELP " + name + " ") != std::string::npos, name);
    CHECK_MESSAGE(name.rfind(name.starts_with("process_") ? "process_" : "webpushd_", 0) == 0, name);
    if (type == "counter") CHECK_MESSAGE(name.ends_with("_total"), name);
    if (type != "counter") CHECK_MESSAGE(!name.ends_with("_total"), name);
  }
  CHECK(t.at("webpushd_sends_total") == "counter");
  CHECK(t.at("webpushd_delivery_latency_seconds") == "histogram");
  CHECK(t.at("webpushd_outbox_messages") == "gauge");

  CHECK(value(text, R"(webpushd_build_info{version="9.9.9"})") == 1);
  CHECK(value(text, "process_start_time_seconds") == doctest::Approx(1'700'000'000));
  for (const auto* service : {"fcm", "mozilla", "apple", "windows", "other"}) {
    for (const auto* outcome : {"sent", "retried", "gone", "failed", "dead", "expired"}) {
      CHECK(value(text, std::string{"webpushd_sends_total{outcome=\""} + outcome + "\",push_service=\"" + service +
                            "\"}") == 0);
    }
  }
  CHECK(value(text, R"(webpushd_pacing_suppressions_total{reason="global_cap"})") == 0);
  CHECK(value(text, R"(webpushd_beacons_recorded_total{type="clicked"})") == 0);
}

TEST_CASE("deliveries: sends by outcome and push service, retries and dead letters by reason, latency") {
  manual_clock clk;
  registry r(clk);
  r.delivery_recorded(delivery("sent", "fcm", 0.2));
  r.delivery_recorded(delivery("sent", "fcm", 0.02));
  r.delivery_recorded(delivery("gone", "mozilla", 0.1));
  r.delivery_recorded(delivery("retried", "apple", 0.3, "server_error"));
  r.delivery_recorded(delivery("retried", "apple", std::nullopt, "timeout"));
  r.delivery_recorded(delivery("dead", "apple", std::nullopt, "network"));
  r.delivery_recorded(delivery("sent", "push.evil.example", 0.05));  // not a service: other
  r.delivery_recorded(delivery("bounced"));                          // not an outcome: ignored
  const auto text = r.scrape();
  CHECK(value(text, R"(webpushd_sends_total{outcome="sent",push_service="fcm"})") == 2);
  CHECK(value(text, R"(webpushd_sends_total{outcome="gone",push_service="mozilla"})") == 1);
  CHECK(value(text, R"(webpushd_sends_total{outcome="retried",push_service="apple"})") == 2);
  CHECK(value(text, R"(webpushd_sends_total{outcome="dead",push_service="apple"})") == 1);
  CHECK(value(text, R"(webpushd_sends_total{outcome="sent",push_service="other"})") == 1);
  CHECK(text.find("push.evil.example") == std::string::npos);
  CHECK(text.find("bounced") == std::string::npos);
  CHECK(value(text, R"(webpushd_send_retries_total{push_service="apple",reason="server_error"})") == 1);
  CHECK(value(text, R"(webpushd_send_retries_total{push_service="apple",reason="timeout"})") == 1);
  CHECK(value(text, R"(webpushd_dead_letters_total{reason="network"})") == 1);
  CHECK(value(text, R"(webpushd_dead_letters_total{reason="server_error"})") == 0);

  CHECK(value(text, R"(webpushd_delivery_latency_seconds_count{push_service="fcm"})") == 2);
  CHECK(value(text, R"(webpushd_delivery_latency_seconds_sum{push_service="fcm"})") == doctest::Approx(0.22));
  CHECK(value(text, R"(webpushd_delivery_latency_seconds_bucket{push_service="fcm",le="0.025"})") == 1);
  CHECK(value(text, R"(webpushd_delivery_latency_seconds_bucket{push_service="fcm",le="0.25"})") == 2);
  CHECK(value(text, R"(webpushd_delivery_latency_seconds_bucket{push_service="fcm",le="+Inf"})") == 2);
  // Unanswered attempts have no latency.
  CHECK(value(text, R"(webpushd_delivery_latency_seconds_count{push_service="apple"})") == 1);
}

TEST_CASE("events, journeys, pacing and beacons count under their bounded labels") {
  manual_clock clk;
  registry r(clk);
  const std::vector<std::string> types_declared{"cart_updated", "purchase"};
  r.declare_event_types(types_declared);
  const std::vector<std::string> scenarios{"abandoned_cart"};
  r.declare_scenarios(scenarios);
  auto text = r.scrape();
  CHECK(value(text, R"(webpushd_events_ingested_total{type="purchase"})") == 0);
  CHECK(value(text, R"(webpushd_journeys_started_total{scenario="abandoned_cart"})") == 0);
  CHECK(value(text, R"(webpushd_journeys_ended_total{how="exited",scenario="abandoned_cart"})") == 0);

  r.events_ingested("cart_updated", 3);
  r.events_ingested("purchase", 0);
  r.journey_logged("abandoned_cart", "entered");
  r.journey_logged("abandoned_cart", "entered");
  r.journey_logged("abandoned_cart", "sent");  // a step, not a start or an end
  r.journey_logged("abandoned_cart", "exited");
  r.journey_logged("welcome", "completed");
  r.pacing_held(true, "quiet_hours");
  r.pacing_held(false, "global_cap");
  r.pacing_held(false, "global_cap");
  r.pacing_held(false, "no_such_rule");
  r.pacing_level_changed("browse_abandonment", true);
  r.beacon_recorded("shown");
  r.beacon_recorded("clicked");
  r.beacon_recorded("forged");
  r.purchases_attributed(2, 1);
  text = r.scrape();
  CHECK(value(text, R"(webpushd_events_ingested_total{type="cart_updated"})") == 3);
  CHECK(value(text, R"(webpushd_events_ingested_total{type="purchase"})") == 0);
  CHECK(value(text, R"(webpushd_journeys_started_total{scenario="abandoned_cart"})") == 2);
  CHECK(value(text, R"(webpushd_journeys_ended_total{how="exited",scenario="abandoned_cart"})") == 1);
  CHECK(value(text, R"(webpushd_journeys_ended_total{how="completed",scenario="welcome"})") == 1);
  CHECK(value(text, R"(webpushd_pacing_deferrals_total{reason="quiet_hours"})") == 1);
  CHECK(value(text, R"(webpushd_pacing_suppressions_total{reason="global_cap"})") == 2);
  CHECK(text.find("no_such_rule") == std::string::npos);
  CHECK(value(text, R"(webpushd_pacing_level_changes_total{direction="tightened",scenario="browse_abandonment"})") ==
        1);
  CHECK(value(text, R"(webpushd_beacons_recorded_total{type="shown"})") == 1);
  CHECK(value(text, R"(webpushd_beacons_recorded_total{type="clicked"})") == 1);
  CHECK(text.find("forged") == std::string::npos);
  CHECK(value(text, R"(webpushd_purchases_attributed_total{kind="converted"})") == 2);
  CHECK(value(text, R"(webpushd_purchases_attributed_total{kind="influenced"})") == 1);
}

TEST_CASE("HTTP requests are labelled by route pattern, a known method and the status") {
  manual_clock clk;
  registry r(clk);
  r.http_request_answered("GET", "/v1/subscriptions/{id}", 200, 3ms);
  r.http_request_answered("GET", "/v1/subscriptions/{id}", 200, 30ms);
  r.http_request_answered("BREW", "", 404, 1ms);  // a method and path a client made up
  const auto text = r.scrape();
  CHECK(types(text).at("webpushd_http_request_duration_seconds") == "histogram");
  CHECK(value(text, R"(webpushd_http_request_duration_seconds_count{method="GET",route="/v1/subscriptions/{id}",status="200"})") ==
        2);
  CHECK(value(text, R"(webpushd_http_request_duration_seconds_bucket{method="GET",route="/v1/subscriptions/{id}",status="200",le="0.005"})") ==
        1);
  CHECK(value(text, R"(webpushd_http_request_duration_seconds_count{method="other",route="unmatched",status="404"})") ==
        1);
  CHECK(text.find("BREW") == std::string::npos);
}

TEST_CASE("a family keeps at most max_series label combinations; the rest count as overflow") {
  manual_clock clk;
  registry_options options;
  options.max_series = 3;
  registry r(clk, options);
  for (int i = 0; i < 10; ++i) r.events_ingested("type_" + std::to_string(i), 1);
  const auto text = r.scrape();
  CHECK(value(text, R"(webpushd_events_ingested_total{type="type_0"})") == 1);
  CHECK(value(text, R"(webpushd_events_ingested_total{type="type_2"})") == 1);
  CHECK_FALSE(has(text, R"(webpushd_events_ingested_total{type="type_3"})"));
  CHECK(value(text, R"(webpushd_events_ingested_total{type="overflow"})") == 7);
}

TEST_CASE("database figures are read at scrape; subscription counts are reused for their max age") {
  manual_clock clk;
  registry_options options;
  options.subscriptions_max_age = 60s;
  registry r(clk, options);
  int outbox_reads = 0;
  int subscription_reads = 0;
  bool failing = false;
  figure_sources sources;
  sources.outbox = [&](time_point now) -> result<outbox_figures> {
    ++outbox_reads;
    if (failing) return fail("storage_error", "disk on fire");
    return outbox_figures{7, 4, 2, now - 90s};
  };
  sources.subscriptions = [&]() -> result<subscription_figures> {
    ++subscription_reads;
    return subscription_figures{100 + subscription_reads, 5, 1};
  };
  r.set_sources(sources);

  auto text = r.scrape();
  CHECK(value(text, R"(webpushd_outbox_messages{state="queued"})") == 7);
  CHECK(value(text, R"(webpushd_outbox_messages{state="sending"})") == 2);
  CHECK(value(text, "webpushd_outbox_due_messages") == 4);
  CHECK(value(text, "webpushd_outbox_oldest_due_age_seconds") == doctest::Approx(90));
  CHECK(value(text, R"(webpushd_subscriptions{state="active"})") == 101);
  CHECK(value(text, R"(webpushd_subscriptions{state="gone"})") == 5);

  clk.advance(30s);
  text = r.scrape();
  CHECK(outbox_reads == 2);
  CHECK(subscription_reads == 1);  // still fresh
  CHECK(value(text, R"(webpushd_subscriptions{state="active"})") == 101);
  clk.advance(31s);
  text = r.scrape();
  CHECK(subscription_reads == 2);
  CHECK(value(text, R"(webpushd_subscriptions{state="active"})") == 102);

  // A failing source: the scrape keeps the last values, status() reports the error.
  failing = true;
  text = r.scrape();
  CHECK(value(text, R"(webpushd_outbox_messages{state="queued"})") == 7);
  const auto s = r.status();
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == "storage_error");
}

TEST_CASE("status: deliveries and latency quantiles over the last window only") {
  manual_clock clk;
  registry r(clk, {.version = "1.2.3", .window = 300s});
  figure_sources sources;
  sources.outbox = [&](time_point) -> result<outbox_figures> { return outbox_figures{3, 0, 1, std::nullopt}; };
  sources.subscriptions = []() -> result<subscription_figures> { return subscription_figures{10, 2, 0}; };
  r.set_sources(sources);

  auto s = r.status();
  REQUIRE(s.has_value());
  CHECK(s->deliveries.at("sent") == 0);
  CHECK_FALSE(s->latency_p50_seconds.has_value());
  CHECK_FALSE(s->oldest_due_seconds.has_value());
  CHECK(s->outbox.queued == 3);
  CHECK(s->subscriptions.active == 10);
  CHECK(s->version == "1.2.3");
  CHECK(s->started_at == clk.now());

  // 100 deliveries at 10 ms, 20 ms, …, 1 s; then a gone one without an answer time.
  for (int i = 1; i <= 100; ++i) r.delivery_recorded(delivery("sent", "fcm", i / 100.0));
  r.delivery_recorded(delivery("gone", "mozilla"));
  clk.advance(200s);
  r.delivery_recorded(delivery("retried", "fcm", 0.5, "rate_limited"));
  s = r.status();
  REQUIRE(s.has_value());
  CHECK(s->deliveries.at("sent") == 100);
  CHECK(s->deliveries.at("gone") == 1);
  CHECK(s->deliveries.at("retried") == 1);
  CHECK(s->deliveries.at("dead") == 0);
  CHECK(s->by_push_service.at("fcm").at("sent") == 100);
  CHECK(s->by_push_service.at("mozilla").at("gone") == 1);
  CHECK(s->by_push_service.at("apple").at("sent") == 0);
  // True p50 ≈ 0.5 s, p99 ≈ 0.99 s; the buckets are within about 10 %.
  REQUIRE(s->latency_p50_seconds.has_value());
  CHECK(*s->latency_p50_seconds == doctest::Approx(0.5).epsilon(0.12));
  CHECK(*s->latency_p99_seconds == doctest::Approx(0.99).epsilon(0.12));

  // 301 s after the first batch only the retry is left in the window.
  clk.advance(101s);
  s = r.status();
  REQUIRE(s.has_value());
  CHECK(s->deliveries.at("sent") == 0);
  CHECK(s->deliveries.at("retried") == 1);
  CHECK(*s->latency_p50_seconds == doctest::Approx(0.5).epsilon(0.12));
  clk.advance(300s);
  s = r.status();
  REQUIRE(s.has_value());
  CHECK(s->deliveries.at("retried") == 0);
  CHECK_FALSE(s->latency_p50_seconds.has_value());
}

TEST_CASE("further counter families can be added with fixed labels") {
  manual_clock clk;
  registry r(clk);
  auto& clicks = r.counter("webpushd_test_clicks_total", "Clicks, by action.", {"action"});
  clicks.add({"open"});
  clicks.add({"open"}, 2);
  clicks.add({"open", "extra"});  // wrong count of values: ignored
  clicks.add({"open"}, -1);       // counters only go up
  const auto text = r.scrape();
  CHECK(value(text, R"(webpushd_test_clicks_total{action="open"})") == 3);
}
