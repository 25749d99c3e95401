// The tracking store on a real SQLite file: messages found by delivery id,
// each device's latest touches, conversions stored once, and what a GDPR
// export lists.

#include <doctest/doctest.h>

#include "test_support.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/tracking_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using namespace std::chrono_literals;
using webpushd::storage::testing::stores;

namespace {

struct shop : stores {
  std::unique_ptr<subscriber_store> subscribers = make_sqlite_subscriber_store(db);
  std::unique_ptr<tracking_store> tracking = make_sqlite_tracking_store(db);
  const time_point t0 = from_unix_millis(1'773'000'000'000);

  std::int64_t device(const std::string& public_id) {
    subscriber_fields f;
    f.endpoint = "https://push.example/" + public_id;
    f.p256dh = "k";
    f.auth = "a";
    f.new_public_id = public_id;
    auto up = subscribers->upsert(f, t0);
    REQUIRE(up.has_value());
    return up->subscriber.id;
  }

  std::int64_t message(std::int64_t device, const std::string& source, const std::string& delivery_id,
                       const std::string& variant = "") {
    new_outbox_message m;
    m.subscription_id = device;
    m.payload = bytes{'{', '}'};
    m.source = source;
    m.delivery_id = delivery_id;
    m.variant = variant;
    auto ids = outbox->enqueue({m}, t0);
    REQUIRE(ids.has_value());
    return ids->front();
  }
};

}  // namespace

TEST_CASE("a delivery id names its message, its source and variant, and whether its subscriber was erased") {
  shop s;
  const auto anna = s.device("sub_anna");
  const auto id = s.message(anna, "scenario:cart/first", "d_one", "b");
  auto found = s.tracking->find_delivery("d_one");
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  CHECK((*found)->outbox_id == id);
  CHECK((*found)->subscription_id == anna);
  CHECK((*found)->source == "scenario:cart/first");
  CHECK((*found)->variant == "b");
  CHECK_FALSE((*found)->subscription_erased);
  CHECK_FALSE(s.tracking->find_delivery("d_none")->has_value());

  REQUIRE(s.subscribers->erase(anna, s.t0 + 1h).has_value());
  auto after = s.tracking->find_push(id);
  REQUIRE(after.has_value());
  REQUIRE(after->has_value());
  CHECK((*after)->subscription_erased);
  CHECK((*after)->source == "scenario:cart/first");
}

TEST_CASE("touches keep each device's latest shown and latest clicked push") {
  shop s;
  const auto anna = s.device("sub_anna");
  const auto ben = s.device("sub_ben");
  const auto first = s.message(anna, "campaign:cmp_1", "d_1");
  const auto second = s.message(anna, "campaign:cmp_2", "d_2");

  REQUIRE(s.tracking->touch(anna, touch_kind::shown, first, s.t0 + 1h).has_value());
  REQUIRE(s.tracking->touch(anna, touch_kind::clicked, first, s.t0 + 2h).has_value());
  REQUIRE(s.tracking->touch(anna, touch_kind::shown, second, s.t0 + 3h).has_value());
  REQUIRE(s.tracking->touch(anna, touch_kind::shown, first, s.t0 + 150min).has_value());  // stamped earlier: kept out

  auto touches = s.tracking->touches({ben, anna});  // ben has none
  REQUIRE(touches.has_value());
  REQUIRE(touches->size() == 1);
  const auto& t = touches->front();
  CHECK(t.subscription_id == anna);
  REQUIRE(t.shown.has_value());
  CHECK(t.shown->outbox_id == second);
  CHECK(t.shown->at == s.t0 + 3h);
  REQUIRE(t.clicked.has_value());
  CHECK(t.clicked->outbox_id == first);
  CHECK(t.clicked->at == s.t0 + 2h);
}

TEST_CASE("whether a push was clicked, and the reports of a device's pushes") {
  shop s;
  const auto anna = s.device("sub_anna");
  const auto first = s.message(anna, "campaign:cmp_1", "d_1");
  const auto second = s.message(anna, "campaign:cmp_2", "d_2");
  s.message(s.device("sub_ben"), "campaign:cmp_2", "d_3");
  auto events = make_sqlite_delivery_event_store(s.db);
  REQUIRE(events->record({"d_1", "shown", "", s.t0 + 1h}).has_value());
  REQUIRE(events->record({"d_1", "clicked", "open", s.t0 + 2h}).has_value());
  REQUIRE(events->record({"d_2", "shown", "", s.t0 + 3h}).has_value());
  REQUIRE(events->record({"d_3", "clicked", "", s.t0 + 3h}).has_value());

  CHECK(s.tracking->was_clicked(first).value());
  CHECK_FALSE(s.tracking->was_clicked(second).value());
  auto reports = s.tracking->reports_of(anna);
  REQUIRE(reports.has_value());
  REQUIRE(reports->size() == 3);
  CHECK((*reports)[0].outbox_id == first);
  CHECK((*reports)[0].type == "shown");
  CHECK((*reports)[1].type == "clicked");
  CHECK((*reports)[1].action == "open");
  CHECK((*reports)[1].at == s.t0 + 2h);
  CHECK((*reports)[2].outbox_id == second);
}

TEST_CASE("a conversion is stored once per purchase event") {
  shop s;
  const auto anna = s.device("sub_anna");
  const auto id = s.message(anna, "scenario:cart/first", "d_1", "a");
  conversion c;
  c.event_id = "order-1";
  c.kind = "converted";
  c.subscription_id = anna;
  c.outbox_id = id;
  c.source = "scenario:cart";
  c.step = "first";
  c.variant = "a";
  c.touch_at = s.t0 + 1h;
  c.occurred_at = s.t0 + 2h;
  c.revenue = 12900;
  c.currency = "PLN";
  c.attributed_at = s.t0 + 3h;
  CHECK(s.tracking->record_conversion(c).value() == true);
  auto again = c;
  again.kind = "influenced";
  again.revenue = 1;
  CHECK(s.tracking->record_conversion(again).value() == false);

  auto stored = s.tracking->conversions_of(anna);
  REQUIRE(stored.has_value());
  REQUIRE(stored->size() == 1);
  const auto& got = stored->front();
  CHECK(got.event_id == "order-1");
  CHECK(got.kind == "converted");
  CHECK(got.outbox_id == id);
  CHECK(got.source == "scenario:cart");
  CHECK(got.step == "first");
  CHECK(got.variant == "a");
  CHECK(got.touch_at == s.t0 + 1h);
  CHECK(got.occurred_at == s.t0 + 2h);
  CHECK(got.revenue == 12900);
  CHECK(got.currency == "PLN");
  CHECK(got.attributed_at == s.t0 + 3h);
}
