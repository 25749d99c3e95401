// Conversion attribution on a real SQLite file: clicks and shows reported
// through the beacon recorder, purchases ingested through the event
// ingestor with attribution hooked in as the daemon hooks it, and the
// conversions and counters that come out.

#include <doctest/doctest.h>

#include "test_support.hpp"
#include "webpushd/storage/automation_data.hpp"
#include "webpushd/storage/tracking_store.hpp"

using namespace webpushd;
using namespace webpushd::tracking;
using tracking::testing::at;
using tracking::testing::shop;
using tracking::testing::push;
using namespace std::chrono_literals;

namespace {

// 2026-03-20T12:00:00Z (a constant: doctest cannot check at static initialisation).
const time_point click_time = from_unix_millis(1'774'008'000'000);

// "kind source|step|variant revenue currency" of each conversion, by event id.
std::vector<std::string> conversions(shop& s) {
  return s.rows("SELECT event_id || ' ' || kind || ' ' || source || '|' || step || '|' || variant || ' ' || revenue "
                "|| ' ' || currency FROM conversions ORDER BY event_id");
}

}  // namespace

TEST_CASE("a purchase within the click window is a conversion of the clicked push, edges included") {
  shop s;
  const auto anna = s.device("sub_anna", "anna");
  const auto p = s.message(anna, "scenario:cart/first", "b");
  REQUIRE(s.report(p, "clicked", click_time, "open_cart").value());

  SUBCASE("exactly click_window after the click: converted") {
    s.purchase("o1", "anna", "", click_time + 24h, 129.0);
    CHECK(conversions(s) == std::vector<std::string>{"o1 converted scenario:cart|first|b 12900 PLN"});
    CHECK(s.counters() == std::vector<std::string>{
                              "scenario:cart|first|b|clicked:open_cart=1", "scenario:cart|first|b|clicked=1",
                              "scenario:cart|first|b|converted=1", "scenario:cart|first|b|revenue:PLN=12900"});
    // Counted in the purchase's hour, not the click's.
    CHECK(s.scalar("SELECT hour * 3600000 FROM pacing_counters WHERE metric = 'converted'") ==
          std::to_string(unix_millis(click_time + 24h)));
    CHECK(s.scalar("SELECT touch_at FROM conversions") == std::to_string(unix_millis(click_time)));
  }
  SUBCASE("at the click itself: converted") {
    s.purchase("o1", "anna", "", click_time, 10.0);
    CHECK(conversions(s) == std::vector<std::string>{"o1 converted scenario:cart|first|b 1000 PLN"});
  }
  SUBCASE("one millisecond past the window: nobody's") {
    s.purchase("o1", "anna", "", click_time + 24h + 1ms, 129.0);
    CHECK(conversions(s).empty());
    CHECK(s.scalar("SELECT count(*) FROM pacing_counters WHERE metric IN ('converted', 'influenced')") == "0");
  }
  SUBCASE("one millisecond before the click: a click after the purchase earns nothing") {
    s.purchase("o1", "anna", "", click_time - 1ms, 129.0);
    CHECK(conversions(s).empty());
  }
  SUBCASE("a shorter window from the config") {
    s.windows.click = 1h;
    s.windows.view = 1h;
    s.purchase("o1", "anna", "", click_time + 1h, 5.0);
    s.purchase("o2", "anna", "", click_time + 1h + 1ms, 5.0);
    CHECK(conversions(s) == std::vector<std::string>{"o1 converted scenario:cart|first|b 500 PLN"});
  }
}

TEST_CASE("a push shown and not clicked within the view window makes a purchase influenced, edges included") {
  shop s;
  const auto ben = s.device("sub_ben", "ben");
  const auto p = s.message(ben, "campaign:cmp_spring");
  REQUIRE(s.report(p, "shown", click_time).value());
  s.windows.view = 48h;

  SUBCASE("exactly view_window after it was shown: influenced") {
    s.purchase("o1", "ben", "", click_time + 48h, 59.0);
    CHECK(conversions(s) == std::vector<std::string>{"o1 influenced campaign:cmp_spring|| 5900 PLN"});
    CHECK(s.counters() == std::vector<std::string>{"campaign:cmp_spring|||influenced=1",
                                                   "campaign:cmp_spring|||influenced_revenue:PLN=5900",
                                                   "campaign:cmp_spring|||shown=1"});
  }
  SUBCASE("one millisecond past it: nobody's") {
    s.purchase("o1", "ben", "", click_time + 48h + 1ms, 59.0);
    CHECK(conversions(s).empty());
  }
  SUBCASE("a push that was clicked is not a view, even when its click is outside the click window") {
    s.windows.click = 1h;
    REQUIRE(s.report(p, "clicked", click_time + 1min).value());
    s.purchase("o1", "ben", "", click_time + 2h, 59.0);
    CHECK(conversions(s).empty());
    SUBCASE("while a push shown and not clicked on another of the customer's devices still counts") {
      const auto other = s.message(s.device("sub_ben_tablet", "ben"), "scenario:browse/only");
      REQUIRE(s.report(other, "shown", click_time - 1h).value());
      s.purchase("o2", "ben", "", click_time + 2h, 20.0);
      CHECK(conversions(s) == std::vector<std::string>{"o2 influenced scenario:browse|only| 2000 PLN"});
    }
  }
}

TEST_CASE("a click beats a later view; the latest click wins across a customer's devices") {
  shop s;
  const auto phone = s.device("sub_phone", "cleo");
  const auto laptop = s.device("sub_laptop", "cleo");
  const auto cart = s.message(phone, "scenario:cart/first");
  const auto sale = s.message(laptop, "campaign:cmp_sale");
  const auto news = s.message(laptop, "campaign:cmp_news");

  REQUIRE(s.report(cart, "clicked", click_time).value());
  REQUIRE(s.report(news, "shown", click_time + 2h).value());
  s.purchase("o1", "cleo", "", click_time + 3h, 100.0);
  CHECK(conversions(s) == std::vector<std::string>{"o1 converted scenario:cart|first| 10000 PLN"});

  REQUIRE(s.report(sale, "clicked", click_time + 1h).value());  // later than the phone's click
  s.purchase("o2", "cleo", "", click_time + 3h, 50.0);
  // The event may name the device instead of the customer; the customer's
  // other devices still count when it names both.
  s.purchase("o3", "cleo", "sub_phone", click_time + 3h, 1.0);
  s.purchase("o4", "", "sub_phone", click_time + 3h, 2.0);
  CHECK(conversions(s) == std::vector<std::string>{"o1 converted scenario:cart|first| 10000 PLN",
                                                   "o2 converted campaign:cmp_sale|| 5000 PLN",
                                                   "o3 converted campaign:cmp_sale|| 100 PLN",
                                                   "o4 converted scenario:cart|first| 200 PLN"});
  // A purchase by someone else, or by nobody in particular, is nobody's.
  s.purchase("o5", "dan", "", click_time + 3h, 3.0);
  s.purchase("o6", "", "", click_time + 3h, 3.0);
  CHECK(conversions(s).size() == 4);
}

TEST_CASE("currencies are counted apart, and a repeated purchase is attributed once") {
  shop s;
  const auto eva = s.device("sub_eva", "eva");
  const auto p = s.message(eva, "scenario:cart/first");
  REQUIRE(s.report(p, "clicked", click_time).value());
  s.purchase("o1", "eva", "", click_time + 1h, 129.0, "PLN");
  s.purchase("o2", "eva", "", click_time + 1h, 30.5, "EUR");
  s.purchase("o3", "eva", "", click_time + 1h, 0.1, "PLN");  // 0.1 × 100 is 10.000000000000002
  const auto again = s.purchase("o1", "eva", "", click_time + 1h, 129.0, "PLN");  // the backend retries
  CHECK(again.accepted == 0);
  CHECK(again.duplicates == 1);
  CHECK(s.counters() == std::vector<std::string>{"scenario:cart|first||clicked:body=1", "scenario:cart|first||clicked=1",
                                                 "scenario:cart|first||converted=3",
                                                 "scenario:cart|first||revenue:EUR=3050",
                                                 "scenario:cart|first||revenue:PLN=12910"});

  // Attribution itself refuses a second attribution of the same event.
  auto db = storage::testing::open_ok(s.dir.db_file());
  storage::stored_event o1{"o1", "purchase", "eva", "", click_time + 1h, click_time + 1h,
                           R"({"order_id":"x","items":[{"product_id":"mug","quantity":1}],"total":129,"currency":"PLN"})"};
  auto tally = attribute_purchases(db, {o1}, s.windows, click_time + 2h);
  REQUIRE(tally.has_value());
  CHECK(tally->converted == 0);
  CHECK(s.scalar("SELECT sum(n) FROM pacing_counters WHERE metric = 'converted'") == "3");
}

TEST_CASE("an erasure takes the device's touches and conversions along; the counters stay") {
  shop s;
  const auto fay = s.device("sub_fay", "fay");
  const auto p = s.message(fay, "scenario:cart/first");
  REQUIRE(s.report(p, "shown", click_time).value());
  REQUIRE(s.report(p, "clicked", click_time).value());
  s.purchase("o1", "fay", "", click_time + 1h, 10.0);
  CHECK(s.scalar("SELECT count(*) FROM tracking_touches") == "1");
  CHECK(s.scalar("SELECT count(*) FROM conversions") == "1");
  REQUIRE(storage::erase_person_data(s.setup, {storage::subscriber_person("sub_fay")}, {fay}).has_value());
  CHECK(s.scalar("SELECT count(*) FROM tracking_touches") == "0");
  CHECK(s.scalar("SELECT count(*) FROM conversions") == "0");
  CHECK(s.scalar("SELECT sum(n) FROM pacing_counters WHERE metric = 'converted'") == "1");
}
