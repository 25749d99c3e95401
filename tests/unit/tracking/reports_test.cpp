// What the service worker's reports count, on a real SQLite file through
// the beacon recorder and the single writer: each (delivery, type) once,
// for the push's source, step and variant, in the hour of the report; the
// device's latest shown and clicked push kept for attribution; forged
// reports and reports for pushes nobody knows count nothing.

#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace webpushd;
using namespace webpushd::tracking;
using tracking::testing::at;
using tracking::testing::shop;
using tracking::testing::push;
using namespace std::chrono_literals;

TEST_CASE("clicks are counted by action; a body click is 'body', a name that is no action name 'other'") {
  CHECK(click_metric("open_cart") == "clicked:open_cart");
  CHECK(click_metric("") == "clicked:body");
  CHECK(click_metric("Open Cart") == "clicked:other");
  CHECK(click_metric("1st") == "clicked:other");
  CHECK(click_metric(std::string(64, 'a')) == "clicked:" + std::string(64, 'a'));
}

TEST_CASE("each report counts once for its push's source, step and variant, in the hour it came") {
  shop s;
  const auto anna = s.device("sub_anna", "anna");
  const auto p = s.message(anna, "scenario:cart/first", "b");
  const auto shown_at = at("2026-03-20T12:59:59.999Z");
  const auto clicked_at = at("2026-03-20T13:00:00Z");

  CHECK(s.report(p, "shown", shown_at).value() == true);
  CHECK(s.report(p, "clicked", clicked_at, "open_cart").value() == true);
  CHECK(s.report(p, "closed", clicked_at).value() == true);
  // Browsers retry keepalive requests: the repeats are answered, not counted.
  CHECK(s.report(p, "shown", clicked_at).value() == false);
  CHECK(s.report(p, "clicked", clicked_at, "open_cart").value() == false);
  CHECK(s.report(p, "clicked", clicked_at).value() == false);  // another click of the same push

  CHECK(s.counters() == std::vector<std::string>{
                            "scenario:cart|first|b|clicked:open_cart=1", "scenario:cart|first|b|clicked=1",
                            "scenario:cart|first|b|closed=1", "scenario:cart|first|b|shown=1"});
  CHECK(s.rows("SELECT metric || '@' || (hour * 3600000) FROM pacing_counters ORDER BY metric") ==
        std::vector<std::string>{"clicked@" + std::to_string(unix_millis(clicked_at)),
                                 "clicked:open_cart@" + std::to_string(unix_millis(clicked_at)),
                                 "closed@" + std::to_string(unix_millis(clicked_at)),
                                 "shown@" + std::to_string(unix_millis(at("2026-03-20T12:00:00Z")))});
  // The device's latest shown and clicked push, at the times they came.
  CHECK(s.scalar("SELECT shown_outbox_id || ' ' || shown_at || ' ' || clicked_outbox_id || ' ' || clicked_at "
                 "FROM tracking_touches WHERE subscription_id = " + std::to_string(anna)) ==
        std::to_string(p.outbox_id) + " " + std::to_string(unix_millis(shown_at)) + " " +
            std::to_string(p.outbox_id) + " " + std::to_string(unix_millis(clicked_at)));

  SUBCASE("the latest report is the touch; one stamped earlier (a clock set back) does not replace it") {
    const auto second = s.message(anna, "campaign:cmp_1");
    REQUIRE(s.report(second, "shown", clicked_at + 1h).value());
    CHECK(s.scalar("SELECT shown_outbox_id FROM tracking_touches") == std::to_string(second.outbox_id));
    const auto third = s.message(anna, "campaign:cmp_2");
    REQUIRE(s.report(third, "shown", clicked_at + 30min).value());
    CHECK(s.scalar("SELECT shown_outbox_id FROM tracking_touches") == std::to_string(second.outbox_id));
    CHECK(s.scalar("SELECT clicked_outbox_id FROM tracking_touches") == std::to_string(p.outbox_id));
  }
}

TEST_CASE("a forged report is refused and changes nothing") {
  shop s;
  const auto p = s.message(s.device("sub_ben"), "campaign:cmp_1");
  const auto other = s.message(s.device("sub_cleo"), "campaign:cmp_1");
  const delivery_signer stranger(bytes(32, 8));

  const auto refused = [&](const std::string& id, const std::string& sig) {
    const auto r = s.report_signed(id, "clicked", at("2026-03-20T12:00:00Z"), "", sig);
    REQUIRE_FALSE(r.has_value());
    return r.error().code;
  };
  CHECK(refused(p.delivery_id, stranger.sign(p.delivery_id)) == "invalid_signature");  // another daemon's key
  CHECK(refused(p.delivery_id, s.signer.sign(other.delivery_id)) == "invalid_signature");  // another push's signature
  CHECK(refused(p.delivery_id, "AAAAAAAAAAAAAAAAAAAAAA") == "invalid_signature");

  for (const auto* table : {"delivery_events", "pacing_counters", "tracking_touches", "conversions"}) {
    CHECK_MESSAGE(s.scalar(std::string{"SELECT count(*) FROM "} + table) == "0", table);
  }
  // The genuine report still counts afterwards.
  CHECK(s.report(p, "clicked", at("2026-03-20T12:00:00Z")).value() == true);
  CHECK(s.counters() == std::vector<std::string>{"campaign:cmp_1|||clicked:body=1", "campaign:cmp_1|||clicked=1"});
}

TEST_CASE("a signed report for a delivery id no message carries is answered, stored once and counts nothing") {
  shop s;
  const auto unknown = delivery_signer::new_delivery_id();
  const push gone{0, unknown};
  CHECK(s.report(gone, "clicked", at("2026-03-20T12:00:00Z"), "open").value() == true);
  CHECK(s.report(gone, "clicked", at("2026-03-20T12:00:00Z"), "open").value() == false);
  CHECK(s.scalar("SELECT count(*) FROM delivery_events") == "1");
  CHECK(s.counters().empty());
  CHECK(s.scalar("SELECT count(*) FROM tracking_touches") == "0");
}

TEST_CASE("reports of an erased subscriber's push are counted, but remember nothing about the device") {
  shop s;
  const auto gus = s.device("sub_gus", "gus");
  const auto p = s.message(gus, "scenario:cart/first");
  REQUIRE(storage::make_sqlite_subscriber_store(s.setup)->erase(gus, at("2026-03-20T11:00:00Z")).has_value());
  CHECK(s.report(p, "clicked", at("2026-03-20T12:00:00Z")).value() == true);
  CHECK(s.counters() == std::vector<std::string>{"scenario:cart|first||clicked:body=1", "scenario:cart|first||clicked=1"});
  CHECK(s.scalar("SELECT count(*) FROM tracking_touches") == "0");
}
