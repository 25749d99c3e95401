#include <doctest/doctest.h>

#include <future>
#include <map>

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
  // Outside 1970–2199 (found by fuzzing: year 1013 overflowed the engine's
  // time arithmetic): refused, and both ends are exact.
  for (const char* far : {"1013-11-06T09:00:00Z", "1969-12-31T23:59:59.999Z", "2200-01-01T00:00:00Z",
                          "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"}) {
    e["occurred_at"] = far;
    CHECK_MESSAGE(rejected(e).code == "invalid_timestamp", far);
  }
  e["occurred_at"] = "1970-01-01T00:00:00Z";
  CHECK(webpushd::ingest::validate_event(e, "").has_value());
  e["occurred_at"] = "2199-12-31T23:59:59.999Z";
  CHECK(webpushd::ingest::validate_event(e, "").has_value());
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

namespace {

// A shop's own event type, as a marketer declares it in events.custom_types.
std::map<std::string, json> wishlist_types() {
  return {{"wishlist_added",
           json::parse(R"({
             "type": "object",
             "additionalProperties": false,
             "required": ["product_id"],
             "properties": {
               "product_id": { "type": "string", "minLength": 1 },
               "name": { "type": "string" },
               "url": { "type": "string", "pattern": "^https?://" }
             }
           })")}};
}

custom_event_types compile_ok(const std::map<std::string, json>& schemas) {
  auto compiled = custom_event_types::compile(schemas);
  REQUIRE_MESSAGE(compiled.has_value(), (compiled ? "" : compiled.error().message));
  return *compiled;
}

error refused_config(const std::map<std::string, json>& schemas) {
  auto compiled = custom_event_types::compile(schemas);
  REQUIRE_FALSE(compiled.has_value());
  const auto checked = check_custom_types(schemas);
  REQUIRE_FALSE(checked.has_value());
  CHECK(checked.error().field == compiled.error().field);
  CHECK(compiled.error().code == "config_invalid");
  return compiled.error();
}

}  // namespace

TEST_CASE("custom types: accepted with their own schema, refused by it with the field named") {
  const auto custom = compile_ok(wishlist_types());
  CHECK(custom.names() == std::vector<std::string>{"wishlist_added"});
  CHECK(custom.contains("wishlist_added"));
  CHECK_FALSE(custom.contains("purchase"));
  REQUIRE(check_custom_types(wishlist_types()));

  const json props = {{"product_id", "p-9"}, {"name", "Teapot"}, {"url", "https://shop.example/p/9"}};
  auto e = envelope("wishlist_added", props);
  e["customer_id"] = "cust-7";
  const auto v = validate_event(e, "", custom);
  REQUIRE_MESSAGE(v.has_value(), (v ? "" : v.error().field + ": " + v.error().message));
  CHECK(v->type == "wishlist_added");
  CHECK(v->customer_id == "cust-7");
  CHECK(json::parse(v->properties) == props);

  // Without the config the type is unknown, as before.
  CHECK(rejected(e).code == "unknown_event_type");

  const auto refused = [&](json properties) {
    auto r = validate_event(envelope("wishlist_added", std::move(properties)), "events[4]", custom);
    REQUIRE_FALSE(r.has_value());
    return r.error();
  };
  const auto missing = refused({{"name", "Teapot"}});
  CHECK(missing.code == "missing_field");
  CHECK(missing.field == "events[4].properties.product_id");
  const auto bad_url = refused({{"product_id", "p"}, {"url", "ftp://x"}});
  CHECK(bad_url.code == "invalid_property");
  CHECK(bad_url.field == "events[4].properties.url");
  const auto extra = refused({{"product_id", "p"}, {"colour", "red"}});
  CHECK(extra.code == "field_not_allowed");
  CHECK(extra.field == "events[4].properties.colour");
  CHECK(extra.message.find("events.custom_types") != std::string::npos);
  const auto wrong_type = refused({{"product_id", 12}});
  CHECK(wrong_type.code == "invalid_property");
  CHECK(wrong_type.field == "events[4].properties.product_id");

  // Built-in types keep their schemas and checks with custom types configured.
  auto drop = envelope("price_dropped", valid_properties("price_dropped"));
  drop["properties"]["new_price"] = 25;
  const auto price = validate_event(drop, "", custom);
  REQUIRE_FALSE(price.has_value());
  CHECK(price.error().code == "invalid_price");
  CHECK(validate_event(envelope("purchase", valid_properties("purchase")), "", custom).has_value());

  // An unknown type names both lists.
  const auto unknown = validate_event(envelope("page_viewed", json::object()), "", custom);
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().code == "unknown_event_type");
  CHECK(unknown.error().message.find("wishlist_added") != std::string::npos);
  CHECK(unknown.error().message.find("purchase") != std::string::npos);
}

TEST_CASE("custom types: a schema without constraints accepts any properties object") {
  const auto custom = compile_ok({{"store_visit", json::object()}});
  CHECK(validate_event(envelope("store_visit", {{"store", "Warsaw"}, {"minutes", 12}}), "", custom).has_value());
  CHECK(rejected(envelope("store_visit", json::array())).code == "unknown_event_type");
  auto not_object = validate_event(envelope("store_visit", json::array()), "", custom);
  REQUIRE_FALSE(not_object.has_value());
  CHECK(not_object.error().code == "invalid_type");
  CHECK(not_object.error().field == "properties");
}

TEST_CASE("custom types: shadowing, reserved and malformed names, broken schemas are config errors") {
  const auto shadow = refused_config({{"purchase", json::object()}});
  CHECK(shadow.field == "events.custom_types.purchase");
  CHECK(shadow.message.find("built-in") != std::string::npos);
  for (const auto& builtin : builtin_event_types()) {
    CAPTURE(builtin);
    CHECK(refused_config({{builtin, json::object()}}).field == "events.custom_types." + builtin);
  }
  const auto reserved = refused_config({{"subscribed", json::object()}});
  CHECK(reserved.field == "events.custom_types.subscribed");
  CHECK(reserved.message.find("reserved") != std::string::npos);

  CHECK(refused_config({{"Wishlist", json::object()}}).field == "events.custom_types.Wishlist");
  CHECK(refused_config({{"", json::object()}}).field == "events.custom_types.");
  CHECK(refused_config({{std::string(65, 'a'), json::object()}}).code == "config_invalid");
  CHECK(refused_config({{"wishlist_added", json("object")}}).field == "events.custom_types.wishlist_added");

  // Schemas valijson cannot compile, or whose regular expressions are broken
  // (otherwise every event of the type would fail at validation time).
  const auto bad_type = refused_config({{"wishlist_added", {{"type", "objekt"}}}});
  CHECK(bad_type.field == "events.custom_types.wishlist_added");
  CHECK(bad_type.message.find("JSON Schema") != std::string::npos);
  CHECK(refused_config({{"wishlist_added", {{"required", "product_id"}}}}).code == "config_invalid");
  CHECK(refused_config({{"wishlist_added", {{"$ref", "https://example.com/remote.json"}}}}).code == "config_invalid");
  const auto bad_pattern = refused_config(
      {{"wishlist_added", {{"properties", {{"sku", {{"type", "string"}, {"pattern", "([a-z"}}}}}}}});
  CHECK(bad_pattern.message.find("([a-z") != std::string::npos);
  CHECK(refused_config({{"wishlist_added", {{"patternProperties", {{"*bad", json::object()}}}}}}).code ==
        "config_invalid");
  // A property named "pattern" is a property, not a regular expression.
  CHECK(custom_event_types::compile({{"wishlist_added", {{"properties", {{"pattern", {{"type", "string"}}}}}}}})
            .has_value());
  // The first bad entry fails the whole set: nothing half-configured.
  auto mixed = wishlist_types();
  mixed["purchase"] = json::object();
  CHECK(refused_config(mixed).field == "events.custom_types.purchase");
  CHECK(check_custom_types({}).has_value());
}

TEST_CASE("ingestor: custom types from ingest_options are stored like built-in ones") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock, {.max_batch_events = 10, .custom_types = compile_ok(wishlist_types())});
  const json body = {{"events",
                      {envelope("wishlist_added", {{"product_id", "p-9"}}, "w-1"),
                       envelope("wishlist_added", {{"name", "no id"}}, "w-2"),
                       envelope("purchase", valid_properties("purchase"), "o-1")}}};
  const auto out = ingest_sync(ingestor, body);
  REQUIRE(out.has_value());
  CHECK(out->accepted == 2);
  REQUIRE(out->rejected.size() == 1);
  CHECK(out->rejected[0].index == 1);
  CHECK(out->rejected[0].reason.field == "events[1].properties.product_id");
  writer.stop();
  auto reader = storage::testing::open_ok(dir.db_file());
  const auto stored = storage::make_sqlite_event_store(reader)->find("w-1").value();
  REQUIRE(stored.has_value());
  CHECK(stored->type == "wishlist_added");
  CHECK(json::parse(stored->properties) == json{{"product_id", "p-9"}});
}

TEST_CASE("ingestor: the stored hook sees only the new events, in request order, inside the batch's item") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock);
  std::vector<std::vector<std::string>> calls;  // written on the writer thread, read after each callback
  std::vector<time_point> times;
  ingestor.set_stored_hook([&](storage::database& db, const std::vector<storage::stored_event>& stored,
                               time_point now) -> result<void> {
    std::vector<std::string> ids;
    for (const auto& e : stored) ids.push_back(e.id);
    calls.push_back(ids);
    times.push_back(now);
    // What the hook writes commits with the events (the engine's journeys).
    return db.exec("CREATE TABLE IF NOT EXISTS hook_seen (id TEXT); INSERT INTO hook_seen SELECT '" + ids.front() +
                   "'");
  });
  const auto stock = [](const std::string& id) { return envelope("product_back_in_stock", {{"product_id", "p"}}, id); };

  REQUIRE(ingest_sync(ingestor, stock("a"))->accepted == 1);
  clock.advance(5s);
  // "a" is a duplicate, "x" invalid, "b" repeated in the batch: the hook gets c, b.
  const json body = {{"events", {stock("a"), stock("c"), envelope("nope", json::object(), "x"), stock("b"), stock("b")}}};
  const auto out = ingest_sync(ingestor, body);
  REQUIRE(out.has_value());
  CHECK(out->accepted == 2);
  CHECK(out->duplicates == 2);
  // Every valid event a duplicate: no call.
  CHECK(ingest_sync(ingestor, body)->duplicates == 4);

  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == std::vector<std::string>{"a"});
  CHECK(calls[1] == std::vector<std::string>{"c", "b"});
  CHECK(times[1] == clock.now());
  writer.stop();
  auto reader = storage::testing::open_ok(dir.db_file());
  CHECK(storage::testing::scalar(reader, "SELECT group_concat(id) FROM hook_seen") == "a,c");
}

TEST_CASE("ingestor: a failing stored hook fails the whole batch; nothing of it is stored") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock);
  bool refuse = true;
  ingestor.set_stored_hook([&](storage::database& db, const std::vector<storage::stored_event>&,
                               time_point) -> result<void> {
    // Writes first, then fails: the write must be rolled back with the events.
    if (auto r = db.exec("CREATE TABLE IF NOT EXISTS hook_seen (id TEXT); INSERT INTO hook_seen VALUES ('x')"); !r) {
      return r;
    }
    if (refuse) return fail("storage_error", "the engine could not store a journey");
    return {};
  });
  const json body = {{"events",
                      {envelope("product_back_in_stock", {{"product_id", "p"}}, "y"),
                       envelope("product_back_in_stock", {{"product_id", "p"}}, "z")}}};
  const auto out = ingest_sync(ingestor, body);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().code == "storage_error");
  CHECK(out.error().message == "the engine could not store a journey");
  {
    auto reader = storage::testing::open_ok(dir.db_file());
    auto store = storage::make_sqlite_event_store(reader);
    CHECK_FALSE(store->find("y")->has_value());
    CHECK_FALSE(store->find("z")->has_value());
    CHECK(storage::testing::scalar(reader, "SELECT count(*) FROM sqlite_master WHERE name = 'hook_seen'") == "0");
  }
  // The retry of the same batch, once the engine is healthy, stores it all.
  refuse = false;
  const auto retried = ingest_sync(ingestor, body);
  REQUIRE(retried.has_value());
  CHECK(retried->accepted == 2);
  CHECK(retried->duplicates == 0);
  // A cleared hook is not called.
  ingestor.set_stored_hook({});
  refuse = true;
  CHECK(ingest_sync(ingestor, envelope("product_back_in_stock", {{"product_id", "p"}}, "w"))->accepted == 1);
}

TEST_CASE("ingestor: the committed observer hears each outcome with its accepted events by type") {
  storage::testing::temp_dir dir;
  storage::write_queue writer(storage::testing::open_ok(dir.db_file()));
  manual_clock clock;
  event_ingestor ingestor(writer, clock);
  std::vector<std::map<std::string, std::size_t>> heard;  // written on the writer thread before each callback
  ingestor.set_committed_observer([&](const ingest_outcome& out) { heard.push_back(out.accepted_by_type); });
  const auto stock = [](const std::string& id) { return envelope("product_back_in_stock", {{"product_id", "p"}}, id); };

  const json body = {{"events", {stock("s-1"), stock("s-2"), envelope("purchase", valid_properties("purchase"), "o-1"),
                                 envelope("nope", json::object(), "x"), stock("s-1")}}};
  const auto out = ingest_sync(ingestor, body);
  REQUIRE(out.has_value());
  CHECK(out->accepted_by_type == std::map<std::string, std::size_t>{{"product_back_in_stock", 2}, {"purchase", 1}});
  REQUIRE(heard.size() == 1);
  CHECK(heard[0] == out->accepted_by_type);

  // All duplicates: committed, nothing accepted, an empty tally.
  const auto again = ingest_sync(ingestor, stock("s-2"));
  REQUIRE(again.has_value());
  REQUIRE(heard.size() == 2);
  CHECK(heard[1].empty());
  // Nothing valid: no write, so nothing to observe.
  REQUIRE(ingest_sync(ingestor, envelope("nope", json::object(), "y")).has_value());
  CHECK(heard.size() == 2);
}
