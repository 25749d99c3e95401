// The figures stats share: counters read into figures, the two-proportion
// z-test against hand-computed values, variants in order with their
// significance and the reason for it, and ranges that start with a
// campaign's creation.

#include <doctest/doctest.h>

#include <cmath>

#include "test_support.hpp"
#include "webpushd/automation/stats_figures.hpp"

namespace webpushd::automation {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::at;

stats_figures figures(std::int64_t sent, std::int64_t clicked) {
  stats_figures f;
  f.add("sent", sent);
  f.add("clicked", clicked);
  return f;
}

}  // namespace

TEST_CASE("counters become figures: the funnel, clicks by action, revenue by currency; others are left out") {
  stats_figures f;
  for (const auto& [metric, n] : std::vector<std::pair<std::string, std::int64_t>>{
           {"sent", 10},           {"shown", 8},          {"closed", 4},           {"clicked", 3},
           {"clicked:body", 2},    {"clicked:open", 1},   {"converted", 1},        {"influenced", 2},
           {"revenue:PLN", 12900}, {"revenue:EUR", 1},    {"influenced_revenue:PLN", 5950},
           {"deferred:quiet_hours", 1}, {"unsubscribed:gone", 1}, {"opened_mail", 7}, {"later:thing", 7}}) {
    f.add(metric, n);
  }
  f.entered = 12;
  const json got = figures_json(f, false);
  CHECK(got["funnel"] == json{{"entered", 12}, {"sent", 10}, {"shown", 8}, {"clicked", 3}, {"converted", 1}});
  CHECK(got["influenced"] == 2);
  CHECK(got["closed"] == 4);
  CHECK(got["clicks_by_action"] == json{{"body", 2}, {"open", 1}});
  CHECK(got["rates"] == json{{"show_rate", 0.8}, {"click_rate", 0.3}, {"conversion_rate", 1.0 / 3.0}});
  CHECK(got["revenue"] == json{{"converted", {{"PLN", 129.0}, {"EUR", 0.01}}}, {"influenced", {{"PLN", 59.5}}}});
  CHECK(got["deferred"]["quiet_hours"] == 1);
  CHECK(got["unsubscribes"]["gone"] == 1);
  CHECK_FALSE(got.contains("journeys"));
  CHECK(figures_json(f, true)["journeys"]["entered"] == 0);
  // Nothing sent, nothing clicked: rates are unknown, not 0.
  CHECK(figures_json(stats_figures{}, false)["rates"] ==
        json{{"show_rate", nullptr}, {"click_rate", nullptr}, {"conversion_rate", nullptr}});
}

TEST_CASE("the two-proportion z-test, against a textbook computation") {
  // 100 clicks of 1000 sends against 130 of 1000: pooled p = 230/2000 =
  // 0.115; SE = √(0.115 · 0.885 · (1/1000 + 1/1000)) = √0.00020355 =
  // 0.0142671; z = (0.13 − 0.10) / 0.0142671 = 2.1027; two-sided
  // p = 2 · (1 − Φ(2.1027)) = 2 · 0.01774 = 0.0355.
  auto t = two_proportion_z_test(100, 1000, 130, 1000);
  REQUIRE(t.has_value());
  CHECK(t->z == doctest::Approx(2.1027).epsilon(1e-4));
  CHECK(t->p_value == doctest::Approx(0.0355).epsilon(1e-2));
  // The sign follows the second side; the p-value does not.
  auto back = two_proportion_z_test(130, 1000, 100, 1000);
  CHECK(back->z == doctest::Approx(-t->z));
  CHECK(back->p_value == doctest::Approx(t->p_value));
  // 40 of 400 against 52 of 400: z = 0.03 / 0.022558 = 1.3299, p = 0.1836.
  t = two_proportion_z_test(40, 400, 52, 400);
  CHECK(t->z == doctest::Approx(1.3299).epsilon(1e-4));
  CHECK(t->p_value == doctest::Approx(0.1836).epsilon(1e-3));
  // Equal rates: z 0, p 1.
  t = two_proportion_z_test(10, 100, 20, 200);
  CHECK(t->z == doctest::Approx(0.0));
  CHECK(t->p_value == doctest::Approx(1.0));
  // What cannot be tested.
  CHECK_FALSE(two_proportion_z_test(0, 100, 0, 100).has_value());      // no click at all
  CHECK_FALSE(two_proportion_z_test(100, 100, 50, 50).has_value());    // every one clicked
  CHECK_FALSE(two_proportion_z_test(1, 0, 1, 10).has_value());         // nothing sent
  CHECK_FALSE(two_proportion_z_test(11, 10, 1, 10).has_value());       // more clicks than sends
}

TEST_CASE("variants: the configured in order, then those found only in the data; each judged against the first") {
  std::map<std::string, stats_figures, std::less<>> data;
  data["a"] = figures(1000, 100);
  data["b"] = figures(1000, 130);
  data["c"] = figures(400, 52);
  data["old"] = figures(50, 10);
  data[""] = figures(7, 7);  // messages without a variant: not one
  const auto variants = variants_of({{"a", 50}, {"b", 30}, {"c", 20}, {"d", 0}}, data);
  REQUIRE(variants.size() == 5);
  std::vector<std::string> names;
  for (const auto& v : variants) names.push_back(v.name);
  CHECK(names == std::vector<std::string>{"a", "b", "c", "d", "old"});

  const json a = variant_json(variants[0]);
  CHECK(a["weight"] == 50.0);
  CHECK(a["configured"] == true);
  CHECK(a["click_rate"] == 0.1);
  CHECK(a["significance"].is_null());  // the baseline

  const json b = variant_json(variants[1]);
  CHECK(b["significance"]["baseline"] == "a");
  CHECK(b["significance"]["metric"] == "click_rate");
  CHECK(b["significance"]["lift"].get<double>() == doctest::Approx(0.3));
  CHECK(b["significance"]["z"].get<double>() == doctest::Approx(2.1027).epsilon(1e-4));
  CHECK(b["significance"]["significant"] == true);
  CHECK(b["significance"]["note"] == "significant: p = 0.035 is below 0.05");

  // 52 of 400 against a's 100 of 1000: pooled 152/1400 = 0.108571, SE =
  // √(0.108571 · 0.891429 · (1/1000 + 1/400)) = 0.018405, z = 0.03 /
  // 0.018405 = 1.6300, p = 0.1031: the same rate as b on fewer sends is not
  // enough.
  const json c = variant_json(variants[2]);
  CHECK(c["significance"]["significant"] == false);
  CHECK(c["significance"]["z"].get<double>() == doctest::Approx(1.6300).epsilon(1e-4));
  CHECK(c["significance"]["p_value"].get<double>() == doctest::Approx(0.1031).epsilon(1e-3));
  CHECK(c["significance"]["note"] == "not significant: p = 0.103 is not below 0.05, the difference may be chance");

  const json d = variant_json(variants[3]);  // configured, nothing sent yet
  CHECK(d["sent"] == 0);
  CHECK(d["click_rate"].is_null());
  CHECK(d["significance"]["z"].is_null());
  CHECK(d["significance"]["note"] == "too few sends to judge: each variant needs at least 100 (a: 1000, d: 0)");

  const json old = variant_json(variants[4]);
  CHECK(old["configured"] == false);
  CHECK(old["weight"].is_null());
  // p < 0.05 but 50 sends: not called significant.
  CHECK(old["significance"]["p_value"].get<double>() < significance_level);
  CHECK(old["significance"]["significant"] == false);
  CHECK(old["significance"]["note"] == "too few sends to judge: each variant needs at least 100 (a: 1000, old: 50)");

  CHECK(variants_of({}, {{"", figures(5, 1)}}).empty());
}

TEST_CASE("variants that cannot be told apart say why") {
  std::map<std::string, stats_figures, std::less<>> data;
  data["a"] = figures(200, 0);
  data["b"] = figures(200, 0);
  auto v = variants_of({}, data);
  CHECK(variant_json(v[1])["significance"]["note"] == "nothing to compare: the click rates are both 0%");
  data["b"] = figures(150, 160);  // clicks on pushes sent before the range
  v = variants_of({}, data);
  CHECK(variant_json(v[1])["significance"]["note"] ==
        "more clicks than sends in this range (clicks on pushes sent before it): widen the range");
}

TEST_CASE("a range may start with the hour something began, within the longest range") {
  const time_point now = at("2026-03-20T12:30:00Z");
  auto r = parse_stats_range({}, now, at("2026-03-18T09:15:00Z"));
  REQUIRE(r.has_value());
  CHECK(r->from == at("2026-03-18T09:00:00Z"));
  CHECK(r->to == at("2026-03-20T13:00:00Z"));
  // Created this very hour: one hour.
  r = parse_stats_range({}, now, at("2026-03-20T12:29:00Z"));
  CHECK(r->from == at("2026-03-20T12:00:00Z"));
  // Created after the requested end: the last hour before it.
  r = parse_stats_range({std::nullopt, "2026-03-01T00:00:00Z"}, now, at("2026-03-18T09:15:00Z"));
  CHECK(r->from == at("2026-02-28T23:00:00Z"));
  // Long ago: the last 400 days.
  r = parse_stats_range({}, now, at("2020-01-01T00:00:00Z"));
  CHECK(r->to - r->from == max_stats_range);
  // An explicit from wins.
  r = parse_stats_range({"2026-03-19T00:00:00Z", std::nullopt}, now, at("2026-03-18T09:15:00Z"));
  CHECK(r->from == at("2026-03-19T00:00:00Z"));
}

}  // namespace webpushd::automation
