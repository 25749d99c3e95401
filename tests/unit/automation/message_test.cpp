// message.hpp: the context, templates, money, UTM links, translations, payloads.
// Real ICU output and real kainjow rendering throughout: the strings below
// are what a subscriber would see.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "webpushd/automation/message.hpp"
#include "webpushd/ingest/events.hpp"

using namespace webpushd;
using namespace webpushd::automation;
using nlohmann::json;

namespace {

// ICU separates amount and currency with a no-break space.
const std::string nbsp = "\u00a0";

time_point at(std::string_view rfc3339) {
  const auto t = ingest::parse_rfc3339(rfc3339);
  REQUIRE(t);
  return *t;
}

event_view cart_event() {
  event_view e;
  e.id = "e-1";
  e.type = "cart_updated";
  e.occurred_at = at("2026-11-23T13:10:00.250Z");
  e.properties = {{"cart_id", "c-42"},
                  {"items", json::array({{{"product_id", "p-1"}, {"name", "Buty zimowe"}, {"quantity", 2}, {"price", 49.5}},
                                         {{"product_id", "p-2"}, {"quantity", 1}}})},
                  {"total", 129},
                  {"currency", "PLN"},
                  {"cart_url", "https://sklep.example/koszyk"}};
  return e;
}

subscriber_view polish(std::string customer = "") {
  subscriber_view s;
  s.locale = "pl-PL";
  s.timezone = "Europe/Warsaw";
  s.customer_id = std::move(customer);
  return s;
}

const shop_view shop{"Sklep Ania", "https://sklep.example"};

json cart_context() {
  return make_context(cart_event(), polish("cust-7"), shop, "cart_abandoned", "first_reminder", 1,
                      at("2026-11-23T13:10:00Z"));
}

std::string render_ok(std::string_view text, const json& context) {
  const auto r = render_template(text, context);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return *r;
}

error render_error(std::string_view text, const json& context) {
  const auto r = render_template(text, context);
  REQUIRE(!r);
  return r.error();
}

error check_error(std::string_view text) {
  const auto r = check_template(text);
  REQUIRE(!r);
  CHECK(r.error().code == "invalid_template");
  return r.error();
}

}  // namespace

// ------------------------------------------------------------------ context

TEST_CASE("message: context of a cart event, with aliases and derived fields") {
  const json c = cart_context();

  CHECK(c["event"] == json{{"type", "cart_updated"}, {"id", "e-1"}, {"occurred_at", "2026-11-23T13:10:00.250Z"}});
  // properties exactly as sent: no renames, no derived fields.
  CHECK(c["properties"] == cart_event().properties);

  const json& cart = c["cart"];
  CHECK(cart["id"] == "c-42");
  CHECK(cart["url"] == "https://sklep.example/koszyk");
  CHECK_FALSE(cart.contains("cart_id"));
  CHECK_FALSE(cart.contains("cart_url"));
  CHECK(cart["total"] == 129);
  CHECK(cart["total_text"] == "129,00" + nbsp + "zł");
  CHECK(cart["item_count"] == 3);
  CHECK(cart["items"][0]["price_text"] == "49,50" + nbsp + "zł");
  CHECK(cart["items"][0]["product_id"] == "p-1");  // items keep their own names
  CHECK_FALSE(cart["items"][1].contains("price_text"));

  CHECK(c["subscriber"] ==
        json{{"locale", "pl-PL"}, {"timezone", "Europe/Warsaw"}, {"customer_id", "cust-7"}});
  CHECK(c["journey"] == json{{"started_at", "2026-11-23T13:10:00.000Z"}, {"step", 1}});
  CHECK(c["scenario"] == json{{"name", "cart_abandoned"}});
  CHECK(c["step"] == json{{"name", "first_reminder"}});
  CHECK(c["shop"] == json{{"name", "Sklep Ania"}, {"url", "https://sklep.example"}});
}

TEST_CASE("message: context for trigger checks has no step; no customer id when there is none") {
  const json c = make_context(cart_event(), polish(), shop, "cart_abandoned", "", 0, at("1969-12-31T23:59:59.999Z"));
  CHECK_FALSE(c.contains("step"));
  CHECK_FALSE(c["journey"].contains("step"));
  CHECK(c["journey"]["started_at"] == "1969-12-31T23:59:59.999Z");  // before the epoch still reads right
  CHECK_FALSE(c["subscriber"].contains("customer_id"));
}

TEST_CASE("message: context of the other built-in types") {
  SUBCASE("price_dropped: product, money texts, whole discount percent rounded down") {
    event_view e;
    e.type = "price_dropped";
    e.properties = {{"product_id", "p-9"}, {"old_price", 29.99}, {"new_price", 19.99}, {"currency", "USD"}};
    subscriber_view en;
    const json c = make_context(e, en, shop, "s", "x", 1, {});
    CHECK(c["product"]["id"] == "p-9");
    CHECK(c["product"]["old_price_text"] == "$29.99");
    CHECK(c["product"]["new_price_text"] == "$19.99");
    CHECK(c["product"]["discount_percent"] == 33);  // 33.34 %

    e.properties["old_price"] = 100;
    e.properties["new_price"] = 80;  // exactly 20 %: floating point must not make it 19
    CHECK(make_context(e, en, shop, "s", "x", 1, {})["product"]["discount_percent"] == 20);
  }
  SUBCASE("product_viewed without price: no price_text") {
    event_view e;
    e.type = "product_viewed";
    e.properties = {{"product_id", "p-1"}, {"name", "Kubek"}};
    const json c = make_context(e, polish(), shop, "s", "x", 1, {});
    CHECK(c["product"] == json{{"id", "p-1"}, {"name", "Kubek"}});
  }
  SUBCASE("purchase: order, cart_id kept for exit keys") {
    event_view e;
    e.type = "purchase";
    e.properties = {{"order_id", "o-1"},
                    {"cart_id", "c-42"},
                    {"items", json::array({{{"product_id", "p-1"}, {"quantity", 4}}})},
                    {"total", 1234.5},
                    {"currency", "EUR"}};
    subscriber_view de;
    de.locale = "de";
    const json c = make_context(e, de, shop, "s", "x", 1, {});
    CHECK(c["order"]["id"] == "o-1");
    CHECK(c["order"]["cart_id"] == "c-42");
    CHECK(c["order"]["item_count"] == 4);
    CHECK(c["order"]["total_text"] == "1.234,50" + nbsp + "€");
  }
  SUBCASE("subscribed: subscription alias, names unchanged") {
    event_view e;
    e.type = "subscribed";
    e.properties = {{"subscription_id", "s-1"}, {"categories", {"offers", "reminders"}}};
    const json c = make_context(e, polish(), shop, "welcome", "hello", 1, {});
    CHECK(c["subscription"] == e.properties);
  }
  SUBCASE("custom types: properties only") {
    event_view e;
    e.type = "wishlist_added";
    e.properties = {{"product_id", "p-1"}};
    const json c = make_context(e, polish(), shop, "s", "x", 1, {});
    CHECK(c["properties"] == e.properties);
    CHECK_FALSE(c.contains("product"));
  }
}

TEST_CASE("message: alias_for") {
  CHECK(alias_for("product_viewed") == "product");
  CHECK(alias_for("product_back_in_stock") == "product");
  CHECK(alias_for("price_dropped") == "product");
  CHECK(alias_for("cart_updated") == "cart");
  CHECK(alias_for("checkout_started") == "cart");
  CHECK(alias_for("purchase") == "order");
  CHECK(alias_for("subscribed") == "subscription");
  CHECK(alias_for("wishlist_added").empty());
}

TEST_CASE("message: context_fields from the type's schema") {
  SUBCASE("cart_updated (built-in schema)") {
    const auto f = context_fields("cart_updated", nullptr);
    CHECK(f.at("cart") == true);
    CHECK(f.at("cart.id") == true);
    CHECK(f.at("cart.items") == true);
    CHECK(f.at("cart.item_count") == true);
    CHECK(f.at("cart.total") == false);
    CHECK(f.at("cart.total_text") == false);
    CHECK(f.at("cart.url") == false);
    CHECK(f.at("properties.cart_id") == true);
    CHECK(f.at("properties.cart_url") == false);
    CHECK(f.at("subscriber.customer_id") == false);
    CHECK(f.at("event.occurred_at") == true);
    CHECK(f.at("step.name") == true);
    CHECK(f.at("shop.name") == true);
    CHECK_FALSE(f.contains("cart.cart_id"));
    CHECK_FALSE(f.contains("cart.items.0.name"));  // array items are not expanded
    CHECK_FALSE(f.contains("properties.total_text"));
  }
  SUBCASE("purchase and price_dropped: derived fields always there when their inputs are") {
    const auto order = context_fields("purchase", nullptr);
    CHECK(order.at("order.id") == true);
    CHECK(order.at("order.total_text") == true);
    CHECK(order.at("order.item_count") == true);
    CHECK(order.at("order.cart_id") == false);
    const auto drop = context_fields("price_dropped", nullptr);
    CHECK(drop.at("product.discount_percent") == true);
    CHECK(drop.at("product.old_price_text") == true);
    CHECK(drop.at("product.name") == false);
  }
  SUBCASE("subscribed") {
    const auto f = context_fields("subscribed", nullptr);
    CHECK(f.at("subscription.subscription_id") == true);
    CHECK(f.at("subscription.categories") == false);
  }
  SUBCASE("a custom type's schema: nested objects expanded, no alias") {
    const json schema = {{"type", "object"},
                         {"required", {"list"}},
                         {"properties",
                          {{"list", {{"type", "object"},
                                     {"required", {"id"}},
                                     {"properties", {{"id", {{"type", "string"}}}, {"owner", {{"type", "string"}}}}}}},
                           {"note", {{"type", "string"}}}}}};
    const auto f = context_fields("wishlist_added", schema);
    CHECK(f.at("properties.list") == true);
    CHECK(f.at("properties.list.id") == true);
    CHECK(f.at("properties.list.owner") == false);
    CHECK(f.at("properties.note") == false);
    CHECK_FALSE(f.contains("product"));
  }
}

TEST_CASE("message: builtin_properties_schema") {
  CHECK(builtin_properties_schema("purchase")["required"] == json{"order_id", "items", "total", "currency"});
  CHECK(builtin_properties_schema("subscribed")["required"] == json{"subscription_id"});
  CHECK(builtin_properties_schema("wishlist_added").is_null());
}

// ------------------------------------------------------------------ templates

TEST_CASE("message: rendering dotted names, lists and numbers") {
  const json c = cart_context();
  CHECK(render_ok("{{shop.name}}: {{cart.item_count}} items, {{cart.total_text}}", c) ==
        "Sklep Ania: 3 items, 129,00" + nbsp + "zł");
  CHECK(render_ok("{{#cart.items}}{{quantity}}× {{product_id}};{{/cart.items}}", c) == "2× p-1;1× p-2;");
  CHECK(render_ok("{{cart.items.0.name}} za {{cart.items.0.price_text}}", c) == "Buty zimowe za 49,50" + nbsp + "zł");
  // Inside a list section a name resolves in the item first, then outwards.
  CHECK(render_ok("{{#cart.items}}{{product_id}}@{{cart.id}} {{/cart.items}}", c) == "p-1@c-42 p-2@c-42 ");

  const json n = {{"i", 3}, {"neg", -7}, {"whole", 129.0}, {"half", 5.5}, {"cents", 0.1 + 0.2},
                  {"round", 19.999}, {"tiny", -0.001}, {"big", 12345678901LL}};
  CHECK(render_ok("{{i}} {{neg}} {{whole}} {{half}} {{cents}} {{round}} {{tiny}} {{big}}", n) ==
        "3 -7 129 5.5 0.3 20 0 12345678901");
}

TEST_CASE("message: sections and inverted sections as fallbacks") {
  const json c = cart_context();
  const std::string name_or =
      "{{#cart.items.1.name}}{{cart.items.1.name}}{{/cart.items.1.name}}{{^cart.items.1.name}}your item{{/cart.items.1.name}}";
  CHECK(render_ok(name_or, c) == "your item");  // p-2 has no name
  CHECK(render_ok("{{#cart.items.0.name}}{{.}}{{/cart.items.0.name}}", c) == "Buty zimowe");

  const json v = {{"empty", ""}, {"none", nullptr}, {"no", false}, {"yes", true}, {"zero", 0}, {"list", json::array()}};
  CHECK(render_ok("{{#empty}}A{{/empty}}{{^empty}}a{{/empty}}", v) == "a");  // "" is falsy
  CHECK(render_ok("{{#none}}B{{/none}}{{^none}}b{{/none}}", v) == "b");      // null is missing
  CHECK(render_ok("{{#no}}C{{/no}}{{^no}}c{{/no}}", v) == "c");
  CHECK(render_ok("{{#yes}}D{{/yes}}{{^yes}}d{{/yes}}", v) == "D");
  CHECK(render_ok("{{#zero}}E{{/zero}}{{^zero}}e{{/zero}}", v) == "E");  // numbers are truthy
  CHECK(render_ok("{{#list}}F{{/list}}{{^list}}f{{/list}}", v) == "f");
  CHECK(render_ok("{{#absent.deeply}}G{{/absent.deeply}}{{^absent.deeply}}g{{/absent.deeply}}", v) == "g");
  // Booleans print as words, in and out of sections.
  CHECK(render_ok("{{yes}}/{{no}}/{{#yes}}{{.}}{{/yes}}", v) == "true/false/true");
  CHECK(render_ok("[{{empty}}]", v) == "[]");  // present though empty: no missing_field
}

TEST_CASE("message: missing_field for unguarded variables only") {
  const json c = cart_context();
  const error e = render_error("Hi {{subscriber.name}}!", c);
  CHECK(e.code == "missing_field");
  CHECK(e.field == "subscriber.name");
  CHECK(e.message == "missing field subscriber.name");

  CHECK(render_error("{{cart.items.5.name}}", c).field == "cart.items.5.name");
  CHECK(render_error("{{{product.name}}}", c).field == "product.name");
  CHECK(render_error("{{& product.name }}", c).field == "product.name");
  CHECK(render_error("{{n}}", json{{"n", nullptr}}).field == "n");
  // Guarded: missing is fine.
  CHECK(render_ok("A{{#product}}{{product.name}}{{/product}}B{{^x}}{{x.y}}{{/x}}C", c) == "ABC");
}

TEST_CASE("message: unicode, no HTML escaping, comments, whitespace") {
  const json c = {{"product", {{"name", "Żółta kurtka 🧥 <XL> & \"ciepła\" 'zimowa'"}}}};
  CHECK(render_ok("Wróciła: {{product.name}} 🎉", c) == "Wróciła: Żółta kurtka 🧥 <XL> & \"ciepła\" 'zimowa' 🎉");
  CHECK(render_ok("{{{product.name}}}", c) == c["product"]["name"]);
  CHECK(render_ok("a{{! a note for the team }}b", c) == "ab");
  CHECK(render_ok("{{  product.name  }}", c) == c["product"]["name"]);
  CHECK(render_ok("no tags, just } and { and }}", c) == "no tags, just } and { and }}");
}

TEST_CASE("message: template syntax errors name the fault, with kainjow's message") {
  CHECK(check_template("Hi {{#product.name}}{{product.name}}{{/product.name}}{{^x}}-{{/x}}"));
  CHECK(check_template(""));

  error e = check_error("Hi {{#product.name}}{{product.name}}");
  CHECK(e.message ==
        "unclosed section product.name (opened at line 1, column 4): add {{/product.name}}"
        " (mustache: Unclosed section \"product.name\" at 3)");

  e = check_error("Total\n  {{cart.total}}{{/cart}}");
  CHECK(e.message == "unmatched {{/cart}} at line 2, column 17: no section is open"
                     " (mustache: Unopened section \"cart\" at 22)");

  e = check_error("{{#a}}{{#b}}x{{/a}}{{/b}}");
  CHECK(e.message.rfind("unclosed section b (opened at line 1, column 7): {{/a}} at line 1, column 14 closes another", 0) == 0);

  e = check_error("Hi {{product.name}");
  CHECK(e.message == "unclosed tag at line 1, column 4: no }} follows (mustache: Unclosed tag at 3)");
  e = check_error("{{{product.name}}");
  CHECK(e.message.rfind("unclosed tag at line 1, column 1: no }}} follows", 0) == 0);

  CHECK(check_error("{{> footer}}").message == "partials are not supported: {{> footer}} at line 1, column 1");
  CHECK(check_error("{{=<% %>=}}").message.rfind("changing delimiters is not supported", 0) == 0);
  CHECK(check_error("{{product name}}").message.rfind("invalid name \"product name\" in {{product name}}", 0) == 0);
  CHECK(check_error("{{cart..total}}").message.rfind("invalid name \"cart..total\"", 0) == 0);
  CHECK(check_error("a {{}} b").message == "empty tag {{}} at line 1, column 3");
  CHECK(check_error("{{#}}{{/}}").message.rfind("invalid name \"\"", 0) == 0);
  // Columns count characters, not UTF-8 bytes.
  CHECK(check_error("Żółw {{/x}}").message.rfind("unmatched {{/x}} at line 1, column 6", 0) == 0);

  // render_template refuses the same templates.
  const auto r = render_template("{{#a}}", json::object());
  REQUIRE(!r);
  CHECK(r.error().code == "invalid_template");
}

TEST_CASE("message: template_variables") {
  const auto vars = template_variables(
      "{{! greeting }}Hi {{subscriber.name}}, {{#cart.items}}{{name}} {{#name}}{{name}}{{/name}}{{/cart.items}}"
      "{{^product.name}}your item{{/product.name}} {{{shop.url}}} {{subscriber.name}} {{.}}");
  REQUIRE(vars.size() == 7);
  CHECK(vars[0].name == "subscriber.name");
  CHECK_FALSE(vars[0].guarded);
  CHECK(vars[0].sections.empty());
  CHECK(vars[1].name == "cart.items");
  CHECK(vars[1].guarded);
  CHECK(vars[1].sections.empty());
  // {{name}} and the section {{#name}} inside cart.items are the same use: listed once.
  CHECK(vars[2].name == "name");
  CHECK(vars[2].guarded);
  CHECK(vars[2].sections == std::vector<std::string>{"cart.items"});
  CHECK(vars[3].name == "name");
  CHECK(vars[3].sections == std::vector<std::string>{"cart.items", "name"});
  CHECK(vars[4].name == "product.name");
  CHECK(vars[4].guarded);
  CHECK(vars[4].sections.empty());
  CHECK(vars[5].name == "shop.url");
  CHECK_FALSE(vars[5].guarded);
  CHECK(vars[6].name == ".");  // the second subscriber.name is the first one again: not repeated

  // Up to the fault on an invalid template.
  const auto partial = template_variables("{{a}} {{#b}} {{c}");
  REQUIRE(partial.size() == 2);
  CHECK(partial[1].name == "b");
}

// ------------------------------------------------------------------ money and links

TEST_CASE("message: format_money through ICU") {
  CHECK(format_money(129, "PLN", "pl") == "129,00" + nbsp + "zł");
  CHECK(format_money(1234.567, "PLN", "pl-PL") == "1234,57" + nbsp + "zł");  // Polish groups from 5 digits
  CHECK(format_money(12345.5, "PLN", "pl_PL") == "12" + nbsp + "345,50" + nbsp + "zł");
  CHECK(format_money(5.5, "USD", "en") == "$5.50");
  CHECK(format_money(-5, "USD", "en-US") == "-$5.00");
  CHECK(format_money(1234.5, "EUR", "de") == "1.234,50" + nbsp + "€");
  CHECK(format_money(1234.5, "GBP", "en-GB") == "£1,234.50");
  CHECK(format_money(1234.5, "JPY", "ja") == "￥1,234");  // yen has no minor unit; ICU rounds half-even
  // Unknown or broken locales: ICU's root, which names the currency by code.
  CHECK(format_money(129, "PLN", "xx") == "PLN" + nbsp + "129.00");
  CHECK(format_money(129, "PLN", "!!") == "PLN" + nbsp + "129.00");
  CHECK(format_money(129, "PLN", "") == "PLN" + nbsp + "129.00");
  // Three letters ICU does not know: printed as the code.
  CHECK(format_money(129, "ABC", "en") == "ABC" + nbsp + "129.00");
  // Not a currency code at all: no crash, the plain form.
  CHECK(format_money(129, "XYZ1", "en") == "129.00 XYZ1");
  CHECK(format_money(3.5, "", "pl") == "3.50");
}

TEST_CASE("message: add_utm") {
  const utm_values utm{"webpush", "push", "cart abandoned", "krok 1: ł&#"};
  const std::string tail = "utm_source=webpush&utm_medium=push&utm_campaign=cart%20abandoned&utm_content=krok%201%3A%20%C5%82%26%23";
  CHECK(add_utm("https://shop.example/cart", utm) == "https://shop.example/cart?" + tail);
  CHECK(add_utm("https://shop.example/p?id=7&utm_medium=email#reviews", {"webpush", "push", "c", ""}) ==
        "https://shop.example/p?id=7&utm_medium=email&utm_source=webpush&utm_campaign=c#reviews");
  CHECK(add_utm("http://shop.example/?", {"a", "", "", ""}) == "http://shop.example/?utm_source=a");
  CHECK(add_utm("HTTPS://shop.example/x?a=1&", {"a", "", "", ""}) == "HTTPS://shop.example/x?a=1&utm_source=a");
  CHECK(add_utm("https://shop.example/#top", {"a", "", "", ""}) == "https://shop.example/?utm_source=a#top");
  // A parameter whose name only starts like ours does not count as present.
  CHECK(add_utm("https://shop.example/?utm_sourced=1", {"a", "", "", ""}) ==
        "https://shop.example/?utm_sourced=1&utm_source=a");
  CHECK(add_utm("https://shop.example/x", {}) == "https://shop.example/x");
  CHECK(add_utm("mailto:ania@sklep.example", utm) == "mailto:ania@sklep.example");
  CHECK(add_utm("/relative/path", utm) == "/relative/path");
  CHECK(add_utm("", utm).empty());
}

// ------------------------------------------------------------------ messages

namespace {

message_def sample_message() {
  message_def m;
  m.fields.title = "Your cart is waiting";
  m.fields.body = "{{cart.item_count}} items, {{cart.total_text}}";
  m.fields.image = "https://sklep.example/banner.png";
  m.fields.url = "{{cart.url}}";
  m.fields.actions = {{"open", "Open cart", ""}, {"shop", "Shop", "{{shop.url}}/?ref=push#new"}};
  message_fields pl;
  pl.title = "Twój koszyk czeka 🛒";
  pl.body = "{{cart.item_count}} produkty, {{cart.total_text}}";
  m.locales["pl"] = pl;
  message_fields pl_pl;
  pl_pl.title = "Koszyk czeka (PL)";
  pl_pl.actions = {{"open", "Otwórz", ""}};
  m.locales["pl-PL"] = pl_pl;
  message_fields de;
  de.title = "Ihr Warenkorb wartet";
  m.locales["DE"] = de;
  return m;
}

}  // namespace

TEST_CASE("message: pick_locale falls back tag → language → default → base") {
  const message_def m = sample_message();
  auto [f, tag] = pick_locale(m, "pl-pl", "en");  // exact, case-insensitive
  CHECK(tag == "pl-PL");
  CHECK(f.title == "Koszyk czeka (PL)");
  CHECK(f.body == m.fields.body);    // the translation left it empty: base
  CHECK(f.image == m.fields.image);  // kept from the base
  REQUIRE(f.actions.size() == 1);    // a translation's actions replace the list
  CHECK(f.actions[0].title == "Otwórz");

  std::tie(f, tag) = pick_locale(m, "pl-AT", "en");  // language
  CHECK(tag == "pl");
  CHECK(f.title == "Twój koszyk czeka 🛒");
  CHECK(f.body == "{{cart.item_count}} produkty, {{cart.total_text}}");
  CHECK(f.actions.size() == 2);  // the translation has none: the base's

  std::tie(f, tag) = pick_locale(m, "fr-FR", "de");  // default locale, matched case-insensitively
  CHECK(tag == "DE");
  CHECK(f.title == "Ihr Warenkorb wartet");

  std::tie(f, tag) = pick_locale(m, "fr", "de-CH");  // the default locale's language
  CHECK(tag == "DE");

  std::tie(f, tag) = pick_locale(m, "fr", "en");  // nothing: the base fields
  CHECK(tag.empty());
  CHECK(f.title == "Your cart is waiting");

  std::tie(f, tag) = pick_locale(m, "", "");
  CHECK(tag.empty());
}

TEST_CASE("message: render_message renders, picks the translation and decorates links") {
  const json c = cart_context();
  utm_def utm;  // defaults: webpush / push / {{scenario.name}} / {{step.name}}
  const std::string q = "utm_source=webpush&utm_medium=push&utm_campaign=cart_abandoned&utm_content=first_reminder";

  SUBCASE("Polish subscriber, language translation") {
    const auto r = render_message(sample_message(), c, "pl-AT", "en", utm);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->locale == "pl");
    CHECK(r->title == "Twój koszyk czeka 🛒");
    CHECK(r->body == "3 produkty, 129,00" + nbsp + "zł");
    CHECK(r->image == "https://sklep.example/banner.png");  // images are not decorated
    CHECK(r->icon.empty());
    CHECK(r->url == "https://sklep.example/koszyk?" + q);
    REQUIRE(r->actions.size() == 2);
    CHECK(r->actions[0].action == "open");
    CHECK(r->actions[0].url == "https://sklep.example/koszyk?" + q);  // empty url: the message's
    CHECK(r->actions[1].url == "https://sklep.example/?ref=push&" + q + "#new");
  }
  SUBCASE("base fields report the default locale") {
    const auto r = render_message(sample_message(), c, "fr", "en", utm);
    REQUIRE(r);
    CHECK(r->locale == "en");
    CHECK(r->title == "Your cart is waiting");
  }
  SUBCASE("UTM values are templates; empty ones are skipped; disabled leaves links alone") {
    utm_def custom;
    custom.campaign = "{{shop.name}} zima";
    custom.content = "{{#nothing}}x{{/nothing}}";
    auto r = render_message(sample_message(), c, "en", "en", custom);
    REQUIRE(r);
    CHECK(r->url == "https://sklep.example/koszyk?utm_source=webpush&utm_medium=push&utm_campaign=Sklep%20Ania%20zima");
    custom.enabled = false;
    r = render_message(sample_message(), c, "en", "en", custom);
    REQUIRE(r);
    CHECK(r->url == "https://sklep.example/koszyk");
  }
  SUBCASE("texts are trimmed; an action without a label is dropped") {
    message_def m;
    m.fields.title = "  {{#cart.id}}Cart {{cart.id}}{{/cart.id}} {{^x}} {{/x}}";
    m.fields.body = "\n{{cart.total_text}}\n";
    m.fields.actions = {{"a", "{{#nope}}A{{/nope}}", "https://x.example"}, {"b", "B", "https://y.example"}};
    const auto r = render_message(m, c, "en", "en", utm_def{.enabled = false});
    REQUIRE(r);
    CHECK(r->title == "Cart c-42");
    CHECK(r->body == "129,00" + nbsp + "zł");
    REQUIRE(r->actions.size() == 1);
    CHECK(r->actions[0].action == "b");
  }
  SUBCASE("errors") {
    message_def m;
    m.fields.title = "{{#product.name}}{{product.name}}{{/product.name}}";
    auto r = render_message(m, c, "en", "en", utm);
    REQUIRE(!r);
    CHECK(r.error().code == "missing_field");  // the title rendered empty
    CHECK(r.error().field == "title");

    m.fields.title = "{{product.name}} is back";
    r = render_message(m, c, "en", "en", utm);
    REQUIRE(!r);
    CHECK(r.error().code == "missing_field");
    CHECK(r.error().field == "product.name");

    m.fields.title = "ok";
    m.fields.body = "{{#cart}}";
    r = render_message(m, c, "en", "en", utm);
    REQUIRE(!r);
    CHECK(r.error().code == "invalid_template");
    CHECK(r.error().field == "body");
    CHECK(r.error().message.rfind("body: unclosed section cart", 0) == 0);

    m.fields.body.clear();
    m.fields.actions = {{"a", "{{/x}}", ""}};
    r = render_message(m, c, "en", "en", utm);
    REQUIRE(!r);
    CHECK(r.error().field == "actions[0].title");

    m.fields.actions.clear();
    utm_def bad;
    bad.campaign = "{{scenario.name";
    r = render_message(m, c, "en", "en", bad);
    REQUIRE(!r);
    CHECK(r.error().field == "utm.campaign");
  }
}

TEST_CASE("message: to_payload is webpushd's own form, empty fields left out") {
  rendered_message m;
  m.locale = "pl";
  m.title = "Twój koszyk czeka 🛒";
  m.body = "3 produkty, 129,00" + nbsp + "zł";
  m.icon = "https://sklep.example/icon.png";
  m.url = "https://sklep.example/koszyk?utm_source=webpush";
  m.actions = {{"open", "Otwórz", "https://sklep.example/koszyk"}, {"later", "Później", ""}};
  const delivery_block d{"d_abc", "sig123", "https://push.sklep.example/v1/deliveries/d_abc/events"};

  const std::string p = to_payload(m, d, "j-17");
  CHECK(p ==
        R"({"title":"Twój koszyk czeka 🛒","body":"3 produkty, 129,00)" + nbsp +
            R"(zł","icon":"https://sklep.example/icon.png","tag":"j-17","url":"https://sklep.example/koszyk?utm_source=webpush",)"
            R"("actions":[{"action":"open","title":"Otwórz","url":"https://sklep.example/koszyk"},{"action":"later","title":"Później"}],)"
            R"("delivery":{"id":"d_abc","sig":"sig123","report":"https://push.sklep.example/v1/deliveries/d_abc/events"}})");

  rendered_message bare;
  bare.title = "Hi";
  CHECK(to_payload(bare, d, "") ==
        R"({"title":"Hi","delivery":{"id":"d_abc","sig":"sig123","report":"https://push.sklep.example/v1/deliveries/d_abc/events"}})");

  // A backend's broken UTF-8 does not stop the message.
  bare.body = std::string{"caf\xC3"};
  CHECK(json::parse(to_payload(bare, d, ""))["body"] == "caf\xEF\xBF\xBD");
}
