// The pacing decision on its own: caps at their window boundaries, the
// minimum gap, quiet hours across midnight and across daylight-saving
// changes in real IANA zones (the system's tzdata), and the next allowed
// moment when several rules hold at once.
#include "webpushd/pacing/rules.hpp"

#include <cstdio>

#include <date/date.h>
#include <date/tz.h>
#include <doctest/doctest.h>

using namespace webpushd;
using namespace webpushd::pacing;
using namespace std::chrono_literals;

namespace {

// "YYYY-MM-DD HH:MM" as minutes since the epoch of a day count (no
// date::parse: its template trips -Wmaybe-uninitialized in g++ 12).
std::chrono::minutes wall(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  REQUIRE(std::sscanf(text.c_str(), "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi) == 5);
  const date::sys_days day{date::year{y} / mo / d};
  return day.time_since_epoch() + std::chrono::hours{h} + std::chrono::minutes{mi};
}

// A UTC instant.
time_point utc(const std::string& text) { return time_point{wall(text)}; }

// A local wall-clock time in `zone` as UTC (earliest if ambiguous).
time_point local(const char* zone, const std::string& text) {
  return time_point{date::locate_zone(zone)->to_sys(date::local_time<std::chrono::minutes>{wall(text)},
                                                    date::choose::earliest)};
}

policy two_a_day_five_a_week() {
  policy p;
  p.caps = {{2, 24h}, {5, 7 * 24h}};
  return p;
}

}  // namespace

TEST_CASE("a cap counts pushes strictly inside its rolling window") {
  const auto p = two_a_day_five_a_week();
  const auto t0 = utc("2026-11-23 10:00");
  history h;
  h.every = {t0 + 1h, t0};  // two pushes today, newest first
  SUBCASE("one millisecond before the older push leaves the window: held until exactly then") {
    const auto held = check(p, {}, h, 0, t0 + 24h - 1ms);
    REQUIRE(held.has_value());
    CHECK(held->reason == hold_reason::global_cap);
    CHECK(held->detail == "2 per 1d");
    CHECK(held->until == t0 + 24h);
  }
  SUBCASE("at the boundary the older push no longer counts") { CHECK_FALSE(check(p, {}, h, 0, t0 + 24h)); }
  SUBCASE("fewer pushes than the cap: free") {
    h.every = {t0};
    CHECK_FALSE(check(p, {}, h, 0, t0 + 1min));
  }
}

TEST_CASE("the weekly cap holds when every daily window is free, until its oldest push leaves") {
  const auto p = two_a_day_five_a_week();
  const auto monday = utc("2026-11-16 12:00");
  history h;
  // Five pushes on five days, newest first.
  for (int d = 4; d >= 0; --d) h.every.push_back(monday + d * 24h);
  const auto saturday = monday + 5 * 24h + 1h;
  const auto held = check(p, {}, h, 0, saturday);
  REQUIRE(held.has_value());
  CHECK(held->detail == "5 per 7d");
  CHECK(held->until == monday + 7 * 24h);
  CHECK_FALSE(check(p, {}, h, 0, monday + 7 * 24h));
}

TEST_CASE("scenario and category caps count only their own pushes; the global cap counts all") {
  policy p;
  p.caps = {{3, 24h}};
  p.scenarios["browse"].caps = {{1, 24h}};
  p.category_caps["promotions"] = {{1, 7 * 24h}};
  const auto now = utc("2026-11-23 12:00");
  history h;
  h.every = {now - 2h};
  h.scenario = {now - 2h};
  CHECK(check(p, {"browse", "", nullptr}, h, 0, now)->reason == hold_reason::scenario_cap);
  CHECK_FALSE(check(p, {"abandoned_cart", "", nullptr}, {h.every, {}, {}}, 0, now));
  history promo{{now - 3 * 24h}, {}, {now - 3 * 24h}};
  const auto held = check(p, {"", "promotions", nullptr}, promo, 0, now);
  REQUIRE(held.has_value());
  CHECK(held->reason == hold_reason::category_cap);
  CHECK(held->until == now - 3 * 24h + 7 * 24h);
}

TEST_CASE("adaptive levels tighten a scenario's caps one count per level, never below the floor") {
  const std::vector<cap> caps{{3, 7 * 24h}, {1, 24h}};
  CHECK(tightened(caps, 0, 1) == caps);
  CHECK(tightened(caps, 1, 1) == std::vector<cap>{{2, 7 * 24h}, {1, 24h}});
  CHECK(tightened(caps, 5, 1) == std::vector<cap>{{1, 7 * 24h}, {1, 24h}});
  CHECK(max_level(caps, 1) == 2);
  policy p;
  p.scenarios["cart"].caps = caps;
  p.scenarios["cart"].adaptive = adaptive_policy{};
  const auto now = utc("2026-11-23 12:00");
  history h{{now - 3 * 24h, now - 5 * 24h}, {now - 3 * 24h, now - 5 * 24h}, {}};
  CHECK_FALSE(check(p, {"cart", "", nullptr}, h, 0, now));  // 2 of 3 this week
  CHECK(check(p, {"cart", "", nullptr}, h, 1, now)->detail == "2 per 7d");
}

TEST_CASE("a scenario's effective caps follow its level only when it is adaptive") {
  scenario_pacing own;
  own.caps = {{3, 7 * 24h}};
  CHECK(effective_caps(own, 2) == own.caps);
  own.adaptive = adaptive_policy{};
  own.adaptive->min_count = 2;
  CHECK(effective_caps(own, 0) == own.caps);
  CHECK(effective_caps(own, 5) == std::vector<cap>{{2, 7 * 24h}});
}

TEST_CASE("the minimum gap follows the newest push of any source") {
  policy p;
  p.min_gap = 2h;
  const auto now = utc("2026-11-23 12:00");
  history h{{now - 90min}, {}, {}};
  const auto held = check(p, {"cart", "", nullptr}, h, 0, now);
  REQUIRE(held.has_value());
  CHECK(held->reason == hold_reason::min_gap);
  CHECK(held->until == now + 30min);
  CHECK_FALSE(check(p, {}, h, 0, now + 30min));
}

TEST_CASE("quiet hours across midnight, in the subscriber's zone") {
  const quiet_hours q{21 * 60, 8 * 60};
  const auto* warsaw = date::locate_zone("Europe/Warsaw");
  SUBCASE("before the start: not quiet") { CHECK_FALSE(quiet_until(q, warsaw, local("Europe/Warsaw", "2026-11-23 20:59"))); }
  SUBCASE("at the start: quiet until 08:00 the next morning") {
    CHECK(quiet_until(q, warsaw, local("Europe/Warsaw", "2026-11-23 21:00")) ==
          local("Europe/Warsaw", "2026-11-24 08:00"));
  }
  SUBCASE("after midnight: until 08:00 the same day") {
    CHECK(quiet_until(q, warsaw, local("Europe/Warsaw", "2026-11-24 03:10")) ==
          local("Europe/Warsaw", "2026-11-24 08:00"));
  }
  SUBCASE("at the end: free") { CHECK_FALSE(quiet_until(q, warsaw, local("Europe/Warsaw", "2026-11-24 08:00"))); }
  SUBCASE("the same instant is quiet in one zone and not in another") {
    const auto instant = utc("2026-11-23 21:30");  // 22:30 Warsaw, 16:30 New York, 03:00 Kolkata
    CHECK(quiet_until(q, warsaw, instant).has_value());
    CHECK_FALSE(quiet_until(q, date::locate_zone("America/New_York"), instant).has_value());
    CHECK(quiet_until(q, date::locate_zone("Asia/Kolkata"), instant) == local("Asia/Kolkata", "2026-11-24 08:00"));
  }
  SUBCASE("without a zone, UTC") { CHECK(quiet_until(q, nullptr, utc("2026-11-23 22:00")) == utc("2026-11-24 08:00")); }
}

TEST_CASE("quiet hours within one day, and none when start equals end") {
  const quiet_hours lunch{12 * 60, 13 * 60 + 30};
  CHECK(quiet_until(lunch, nullptr, utc("2026-11-23 12:15")) == utc("2026-11-23 13:30"));
  CHECK_FALSE(quiet_until(lunch, nullptr, utc("2026-11-23 13:30")));
  CHECK_FALSE(quiet_until(lunch, nullptr, utc("2026-11-23 11:59")));
  CHECK_FALSE(quiet_until({8 * 60, 8 * 60}, nullptr, utc("2026-11-23 08:00")));
}

TEST_CASE("quiet hours across daylight-saving changes") {
  SUBCASE("spring forward: the night is an hour shorter in UTC") {
    // Europe/Warsaw, 2026-03-29: 02:00 CET becomes 03:00 CEST.
    const auto* z = date::locate_zone("Europe/Warsaw");
    const auto end = quiet_until({21 * 60, 8 * 60}, z, local("Europe/Warsaw", "2026-03-28 23:00"));
    REQUIRE(end.has_value());
    CHECK(*end == utc("2026-03-29 06:00"));  // 08:00 CEST
    CHECK(*end - local("Europe/Warsaw", "2026-03-28 23:00") == 8h);
  }
  SUBCASE("fall back: an hour longer") {
    // America/New_York, 2026-11-01: 02:00 EDT becomes 01:00 EST.
    const auto* z = date::locate_zone("America/New_York");
    const auto start = utc("2026-11-01 02:00");  // 22:00 EDT on Oct 31
    const auto end = quiet_until({21 * 60, 8 * 60}, z, start);
    REQUIRE(end.has_value());
    CHECK(*end == utc("2026-11-01 13:00"));  // 08:00 EST
    CHECK(*end - start == 11h);
  }
  SUBCASE("an end time the clocks skip is the moment of the change") {
    // Quiet 22:00–02:30 in Warsaw; 02:30 does not exist on 2026-03-29.
    const auto* z = date::locate_zone("Europe/Warsaw");
    const auto end = quiet_until({22 * 60, 2 * 60 + 30}, z, local("Europe/Warsaw", "2026-03-29 01:00"));
    REQUIRE(end.has_value());
    CHECK(*end == utc("2026-03-29 01:00"));  // 02:00 CET = 03:00 CEST
  }
  SUBCASE("an end time that happens twice is its first occurrence") {
    // Quiet 23:00–01:30 in New York; 01:30 happens twice on 2026-11-01.
    const auto* z = date::locate_zone("America/New_York");
    const auto end = quiet_until({23 * 60, 60 + 30}, z, utc("2026-11-01 04:00"));  // 00:00 EDT
    REQUIRE(end.has_value());
    CHECK(*end == utc("2026-11-01 05:30"));  // 01:30 EDT
  }
}

TEST_CASE("the next allowed moment satisfies every rule at once") {
  policy p;
  p.caps = {{1, 24h}};
  p.quiet = quiet_hours{21 * 60, 8 * 60};
  const auto* z = date::locate_zone("Europe/Warsaw");
  // Pushed at 20:30 local: the cap frees at 20:30 the next day, not quiet.
  const auto sent = local("Europe/Warsaw", "2026-11-23 20:30");
  history h{{sent}, {}, {}};
  SUBCASE("held by the cap first, and the slot it frees is outside quiet hours") {
    const auto held = check(p, {"cart", "", z}, h, 0, local("Europe/Warsaw", "2026-11-24 10:00"));
    REQUIRE(held.has_value());
    CHECK(held->reason == hold_reason::global_cap);
    CHECK(held->until == local("Europe/Warsaw", "2026-11-24 20:30"));
  }
  SUBCASE("a cap that frees in quiet hours waits for their end") {
    h.every = {local("Europe/Warsaw", "2026-11-23 20:59")};
    p.caps = {{1, 24h + 30min}};  // frees at 21:29 local: quiet
    const auto held = check(p, {"cart", "", z}, h, 0, local("Europe/Warsaw", "2026-11-24 12:00"));
    REQUIRE(held.has_value());
    CHECK(held->until == local("Europe/Warsaw", "2026-11-25 08:00"));
  }
  SUBCASE("quiet hours first: the reason is quiet_hours, the moment their end") {
    const auto held = check(p, {"cart", "", z}, {}, 0, local("Europe/Warsaw", "2026-11-24 23:00"));
    REQUIRE(held.has_value());
    CHECK(held->reason == hold_reason::quiet_hours);
    CHECK(held->detail == "21:00–08:00 Europe/Warsaw");
    CHECK(held->until == local("Europe/Warsaw", "2026-11-25 08:00"));
  }
  SUBCASE("a scenario that opts out of quiet hours is held only by caps") {
    p.scenarios["back_in_stock"].quiet_hours = false;
    CHECK_FALSE(check(p, {"back_in_stock", "", z}, {}, 0, local("Europe/Warsaw", "2026-11-24 23:00")));
  }
}

TEST_CASE("remember keeps only what the caps can still need") {
  const auto now = utc("2026-11-23 12:00");
  std::vector<time_point> h;
  for (int i = 10; i >= 1; --i) h.push_back(now - i * 24h);
  std::reverse(h.begin(), h.end());  // newest first
  remember(h, now, {{2, 24h}, {5, 7 * 24h}});
  REQUIRE(h.size() == 5);
  CHECK(h.front() == now);
  std::vector<time_point> gap_only;
  remember(gap_only, now, {});
  remember(gap_only, now + 1h, {});
  CHECK(gap_only == std::vector<time_point>{now + 1h});
}
