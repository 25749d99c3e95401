#include <doctest/doctest.h>

#include <future>

#include <nlohmann/json.hpp>

#include "../storage/test_support.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/write_queue.hpp"

using namespace webpushd;
using namespace webpushd::ingest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

json envelope(const std::string& type, json properties, const std::string& id = "e-1") {
  return {{"id", id}, {"type", type}, {"occurred_at", "2026-11-23T13:10:00Z"}, {"properties", std::move(properties)}};
}

// A valid properties object per built-in type.
json valid_properties(const std::string& type) {
  const json items = json::array({{{"product_id", "p-1"}, {"name", "Mug"}, {"quantity", 2}, {"price", 9.5}}});
  if (type == "product_viewed") {
    return {{"product_id", "p-1"}, {"name", "Mug"}, {"url", "https://shop.example/p/1"},
            {"image", "https://shop.example/i/1.jpg"}, {"price", 19}, {"currency", "EUR"}, {"category", "kitchen"}};
  }
  if (type == "cart_updated" || type == "checkout_started") {
    return {{"cart_id", "c-1"}, {"items", items}, {"total", 19.0}, {"currency", "EUR"},
            {"cart_url", "https://shop.example/cart"}};
  }
  if (type == "purchase") return {{"order_id", "o-1"}, {"items", items}, {"total", 19.0}, {"currency", "EUR"}};
  if (type == "product_back_in_stock") return {{"product_id", "p-1"}, {"name", "Mug"}, {"quantity", 3}};
  if (type == "price_dropped") return {{"product_id", "p-1"}, {"old_price", 20}, {"new_price", 15.5}, {"currency", "EUR"}};
  FAIL("no example for " << type);
  return {};
}

error rejected(const json& e, const std::string& path = "") {
  auto r = validate_event(e, path);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

result<ingest_outcome> ingest_sync(event_ingestor& ingestor, const json& body) {
  std::promise<result<ingest_outcome>> p;
  auto f = p.get_future();
  ingestor.ingest(body, [&p](result<ingest_outcome> out) { p.set_value(std::move(out)); });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

std::int64_t ms(time_point t) { return unix_millis(t); }

}  // namespace

TEST_CASE("the six built-in types are embedded") {
  CHECK(builtin_event_types() == std::vector<std::string>{"cart_updated", "checkout_started", "price_dropped",
                                                          "product_back_in_stock", "product_viewed", "purchase"});
}

TEST_CASE("every built-in type accepts its example, and the event comes back as plain values") {
  for (const auto& type : builtin_event_types()) {
    CAPTURE(type);
    auto e = envelope(type, valid_properties(type));
    e["customer_id"] = "cust-7";
    e["subscription_id"] = nullptr;
    const auto v = validate_event(e, "");
    REQUIRE_MESSAGE(v.has_value(), (v ? "" : v.error().field + ": " + v.error().message));
    CHECK(v->id == "e-1");
    CHECK(v->type == type);
    CHECK(v->customer_id == "cust-7");
    CHECK(v->subscription_id.empty());
    CHECK(ms(v->occurred_at) == 1'795'439'400'000);
    CHECK(json::parse(v->properties) == valid_properties(type));
  }
}

TEST_CASE("each schema refuses what it must, naming the field") {
  struct bad_case {
    std::string type;
    json patch;  // merged into the valid properties (null removes)
    std::string code;
    std::string field;
  };
  const std::vector<bad_case> cases{
      {"product_viewed", {{"product_id", nullptr}}, "missing_field", "properties.product_id"},
      {"product_viewed", {{"price", -1}}, "invalid_property", "properties.price"},
      {"product_viewed", {{"price", "19.00"}}, "invalid_property", "properties.price"},
      {"product_viewed", {{"currency", "eur"}}, "invalid_property", "properties.currency"},
      {"product_viewed", {{"currency", "EURO"}}, "invalid_property", "properties.currency"},
      {"product_viewed", {{"url", "javascript:alert(1)"}}, "invalid_property", "properties.url"},
      {"product_viewed", {{"colour", "red"}}, "field_not_allowed", "properties.colour"},
      {"cart_updated", {{"items", nullptr}}, "missing_field", "properties.items"},
      {"cart_updated", {{"items", {{{"product_id", "p"}, {"quantity", 0}}}}}, "invalid_property",
       "properties.items[0].quantity"},
      {"cart_updated", {{"items", {{{"product_id", "p"}, {"quantity", 1}}, {{"quantity", 1}}}}}, "missing_field",
       "properties.items[1].product_id"},
      {"cart_updated", {{"total", -0.01}}, "invalid_property", "properties.total"},
      {"checkout_started", {{"cart_id", ""}}, "invalid_property", "properties.cart_id"},
      {"purchase", {{"order_id", nullptr}}, "missing_field", "properties.order_id"},
      {"purchase", {{"items", json::array()}}, "invalid_property", "properties.items"},
      {"purchase", {{"items", {{{"product_id", "p"}, {"quantity", 1.5}}}}}, "invalid_property",
       "properties.items[0].quantity"},
      {"purchase", {{"currency", nullptr}}, "missing_field", "properties.currency"},
      {"product_back_in_stock", {{"product_id", 12}}, "invalid_property", "properties.product_id"},
      {"price_dropped", {{"new_price", nullptr}}, "missing_field", "properties.new_price"},
      {"price_dropped", {{"old_price", -5}}, "invalid_property", "properties.old_price"},
      {"price_dropped", {{"new_price", 20}}, "invalid_price", "properties.new_price"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.type);
    CAPTURE(c.patch.dump());
    auto props = valid_properties(c.type);
    props.merge_patch(c.patch);
    const auto e = rejected(envelope(c.type, props), "events[3]");
    CHECK(e.code == c.code);
    CHECK(e.field == "events[3]." + c.field);
    CHECK_FALSE(e.message.empty());
  }
}

TEST_CASE("the envelope: id, type, ids, occurred_at, properties") {
  const auto good = envelope("product_back_in_stock", {{"product_id", "p"}});
  REQUIRE(validate_event(good, "").has_value());
  auto e = good;

  CHECK(rejected(json::array(), "events[0]").field == "events[0]");
  CHECK(rejected(json("x")).code == "invalid_type");

  e = good;
  e.erase("id");
  CHECK(rejected(e).field == "id");
  e["id"] = "";
  CHECK(rejected(e).code == "invalid_event_id");
  e["id"] = std::string(129, 'a');
  CHECK(rejected(e).code == "invalid_event_id");
  e["id"] = std::string(128, 'a');
  CHECK(validate_event(e, "").has_value());
  e["id"] = "a\nb";
  CHECK(rejected(e).code == "invalid_event_id");
  e["id"] = 42;
  CHECK(rejected(e).code == "invalid_type");

  e = good;
  e["type"] = "page_viewed";
  const auto unknown = rejected(e, "events[2]");
  CHECK(unknown.code == "unknown_event_type");
  CHECK(unknown.field == "events[2].type");
  e.erase("type");
  CHECK(rejected(e).code == "missing_field");

  e = good;
  e["customer_id"] = "";
  CHECK(rejected(e).field == "customer_id");
  e["customer_id"] = 7;
  CHECK(rejected(e).code == "invalid_type");
  e = good;
  e["subscription_id"] = std::string(129, 's');
  CHECK(rejected(e).field == "subscription_id");

  e = good;
  e["occurred_at"] = "yesterday";
  CHECK(rejected(e).code == "invalid_timestamp");
  e["occurred_at"] = 1700000000;
  CHECK(rejected(e).code == "invalid_type");
  e.erase("occurred_at");
  CHECK(rejected(e).field == "occurred_at");

  e = good;
  e.erase("properties");
  CHECK(rejected(e).field == "properties");
  e["properties"] = json::array();
  CHECK(rejected(e).code == "invalid_type");

  e = good;
  e["extra"] = true;
  const auto extra = rejected(e, "events[1]");
  CHECK(extra.code == "field_not_allowed");
  CHECK(extra.field == "events[1].extra");
}

TEST_CASE("RFC 3339: offsets, fractions, case, leap days and seconds; everything else refused") {
  const auto at = [](const char* s) { return parse_rfc3339(s); };
  REQUIRE(at("1970-01-01T00:00:00Z"));
  CHECK(ms(*at("1970-01-01T00:00:00Z")) == 0);
  CHECK(ms(*at("2026-11-23T13:10:00Z")) == 1'795'439'400'000);
  CHECK(*at("2026-11-23T14:10:00+01:00") == *at("2026-11-23T13:10:00Z"));
  CHECK(*at("2026-11-23T08:40:00-04:30") == *at("2026-11-23T13:10:00Z"));
  CHECK(*at("2026-11-23T13:10:00-00:00") == *at("2026-11-23T13:10:00Z"));
  CHECK(*at("2026-11-23t13:10:00z") == *at("2026-11-23T13:10:00Z"));
  CHECK(ms(*at("1970-01-01T00:00:00.5Z")) == 500);
  CHECK(ms(*at("1970-01-01T00:00:00.123Z")) == 123);
  CHECK(ms(*at("1970-01-01T00:00:00.123999999Z")) == 123);  // truncated, not rounded
  CHECK(ms(*at("1969-12-31T23:59:59Z")) == -1000);
  CHECK(at("2024-02-29T00:00:00Z"));
  CHECK(at("2000-02-29T00:00:00Z"));
  CHECK(*at("2016-12-31T23:59:60Z") == *at("2017-01-01T00:00:00Z"));  // a leap second
  for (const char* bad : {"", "2026-11-23", "2026-11-23T13:10Z", "2026-11-23T13:10:00", "2026-11-23 13:10:00Z",
                          "2026-11-23T13:10:00.Z", "2026-11-23T13:10:00+0100", "2026-11-23T13:10:00+01",
                          "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-31T00:00:00Z",
                          "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-11-23T24:00:00Z",
                          "2026-11-23T13:60:00Z", "2026-11-23T13:10:61Z", "2026-11-23T13:10:00+24:00",
                          "2026-11-23T13:10:00Zjunk", "26-11-23T13:10:00Z", "2026-1-23T13:10:00Z",
                          "+2026-11-23T13:10:00Z", "2026-11-23T13:10:00 Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(at(bad).has_value());
  }
}

TEST_CASE("ingestor: a batch commits its valid events together; ids are idempotent") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock, {.max_batch_events = 5});

  SUBCASE("one event, then the same id again") {
    const auto body = envelope("purchase", valid_properties("purchase"), "order-1:purchase");
    auto out = ingest_sync(ingestor, body);
    REQUIRE(out.has_value());
    CHECK(out->accepted == 1);
    CHECK(out->duplicates == 0);
    CHECK(out->rejected.empty());
    out = ingest_sync(ingestor, body);
    REQUIRE(out.has_value());
    CHECK(out->accepted == 0);
    CHECK(out->duplicates == 1);

    // A retry with other content keeps the first copy.
    auto changed = body;
    changed["properties"]["total"] = 99;
    CHECK(ingest_sync(ingestor, changed)->duplicates == 1);
    writer.stop();
    auto reader = storage::testing::open_ok(dir.db_file());
    const auto stored = storage::make_sqlite_event_store(reader)->find("order-1:purchase");
    REQUIRE(stored.has_value());
    REQUIRE(stored->has_value());
    CHECK((*stored)->type == "purchase");
    CHECK((*stored)->customer_id.empty());
    CHECK(json::parse((*stored)->properties) == valid_properties("purchase"));
    CHECK((*stored)->occurred_at == *parse_rfc3339("2026-11-23T13:10:00Z"));
    CHECK((*stored)->received_at == clock.now());
  }

  SUBCASE("mixed batch: valid ones stored, invalid ones listed by index, in-batch repeats are duplicates") {
    auto bad_price = envelope("product_viewed", valid_properties("product_viewed"), "b");
    bad_price["properties"]["price"] = -3;
    const json body = {{"events",
                        {envelope("product_viewed", valid_properties("product_viewed"), "a"), bad_price,
                         envelope("cart_updated", valid_properties("cart_updated"), "c"),
                         envelope("page_viewed", json::object(), "d"),
                         envelope("product_viewed", valid_properties("product_viewed"), "a")}}};
    const auto out = ingest_sync(ingestor, body);
    REQUIRE(out.has_value());
    CHECK(out->accepted == 2);
    CHECK(out->duplicates == 1);
    REQUIRE(out->rejected.size() == 2);
    CHECK(out->rejected[0].index == 1);
    CHECK(out->rejected[0].reason.field == "events[1].properties.price");
    CHECK(out->rejected[1].index == 3);
    CHECK(out->rejected[1].reason.code == "unknown_event_type");
    CHECK(out->rejected[1].reason.field == "events[3].type");
    CHECK(writer.counters().items == 1);  // one write_queue item for the whole batch

    // Retrying the whole batch (backend retry): all valid ones are duplicates.
    const auto again = ingest_sync(ingestor, body);
    CHECK(again->accepted == 0);
    CHECK(again->duplicates == 3);

    writer.stop();
    auto reader = storage::testing::open_ok(dir.db_file());
    auto store = storage::make_sqlite_event_store(reader);
    CHECK(store->find("a")->has_value());
    CHECK(store->find("c")->has_value());
    CHECK_FALSE(store->find("b")->has_value());
    CHECK_FALSE(store->find("d")->has_value());
  }

  SUBCASE("nothing valid: no write, every event listed") {
    const json body = {{"events", {json::object(), envelope("nope", json::object(), "x")}}};
    const auto out = ingest_sync(ingestor, body);
    REQUIRE(out.has_value());
    CHECK(out->accepted + out->duplicates == 0);
    REQUIRE(out->rejected.size() == 2);
    CHECK(out->rejected[0].reason.field == "events[0].id");
    CHECK(writer.counters().items == 0);
  }

  SUBCASE("the request as a whole: too many, none, not an array") {
    json many = {{"events", json::array()}};
    for (int i = 0; i < 6; ++i) many["events"].push_back(envelope("product_back_in_stock", {{"product_id", "p"}}, std::to_string(i)));
    auto out = ingest_sync(ingestor, many);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().code == "batch_too_large");
    CHECK(out.error().field == "events");
    out = ingest_sync(ingestor, {{"events", json::array()}});
    CHECK(out.error().code == "events_required");
    out = ingest_sync(ingestor, {{"events", json::object()}});
    CHECK(out.error().code == "invalid_type");
    CHECK(writer.counters().items == 0);
  }
}

TEST_CASE("a batch whose write fails stores none of its events") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock);
  // Make the second insert fail inside the batch's savepoint.
  std::promise<result<void>> p;
  auto f = p.get_future();
  REQUIRE(writer.submit(
      [](storage::database& db) {
        return db.exec("CREATE TRIGGER refuse_z BEFORE INSERT ON events WHEN NEW.id = 'z' "
                       "BEGIN SELECT RAISE(ABORT, 'refused'); END");
      },
      [&p](result<void> r) { p.set_value(std::move(r)); }));
  REQUIRE(f.get().has_value());
  const json body = {{"events",
                      {envelope("product_back_in_stock", {{"product_id", "p"}}, "y"),
                       envelope("product_back_in_stock", {{"product_id", "p"}}, "z")}}};
  const auto out = ingest_sync(ingestor, body);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code.starts_with("storage_"));
  writer.stop();
  auto reader = storage::testing::open_ok(dir.db_file());
  CHECK_FALSE(storage::make_sqlite_event_store(reader)->find("y")->has_value());
}
