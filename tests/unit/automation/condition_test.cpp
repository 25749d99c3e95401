#include <doctest/doctest.h>

#include "webpushd/automation/condition.hpp"

using namespace webpushd::automation;
using nlohmann::json;

namespace {

condition parse_ok(std::string_view text) {
  auto c = parse_condition(text);
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  return *c;
}

std::string parse_error(std::string_view text) {
  auto c = parse_condition(text);
  REQUIRE_FALSE_MESSAGE(c.has_value(), text);
  CHECK(c.error().code == "invalid_condition");
  return c.error().message;
}

bool eval(std::string_view text, const json& context) { return holds(parse_ok(text), context); }

const json context = json::parse(R"({
  "cart": {"id": "c1", "total": 129, "total_text": "129,00 zł", "item_count": 2,
           "items": [{"product_id": "p1", "name": "Red shoes", "quantity": 1, "price": 99.5},
                     {"product_id": "p2", "quantity": 1}],
           "tags": ["gift", "sale"], "coupon": null},
  "product": {"category": "shoes", "price": 99.5, "id": "p1"},
  "subscriber": {"locale": "pl"},
  "flag": true
})");

}  // namespace

TEST_CASE("the grammar: paths, operators and literals") {
  SUBCASE("comparison with a number") {
    const auto c = parse_ok("cart.total >= 100");
    CHECK(c.path == "cart.total");
    CHECK(c.oper == condition::op::ge);
    CHECK(c.value == 100);
    CHECK(c.text == "cart.total >= 100");
  }
  SUBCASE("whitespace between tokens is free, the text is kept trimmed") {
    const auto c = parse_ok("  cart.total>=100.5 ");
    CHECK(c.oper == condition::op::ge);
    CHECK(c.value == 100.5);
    CHECK(c.text == "cart.total>=100.5");
  }
  SUBCASE("every operator") {
    CHECK(parse_ok("a == 1").oper == condition::op::eq);
    CHECK(parse_ok("a != 1").oper == condition::op::ne);
    CHECK(parse_ok("a > 1").oper == condition::op::gt);
    CHECK(parse_ok("a >= 1").oper == condition::op::ge);
    CHECK(parse_ok("a < 1").oper == condition::op::lt);
    CHECK(parse_ok("a <= 1").oper == condition::op::le);
    CHECK(parse_ok("a in [1]").oper == condition::op::in);
    CHECK(parse_ok("a contains \"x\"").oper == condition::op::contains);
    CHECK(parse_ok("a exists").oper == condition::op::exists);
    CHECK(parse_ok("a missing").oper == condition::op::missing);
  }
  SUBCASE("exists and missing take no value") {
    const auto c = parse_ok("product.image exists");
    CHECK(c.value.is_null());
  }
  SUBCASE("strings are JSON strings") {
    CHECK(parse_ok(R"(product.name == "Buty \"Zimowe\" \u00e9")").value == "Buty \"Zimowe\" \xc3\xa9");
  }
  SUBCASE("lists, negative and exponent numbers, true/false/null") {
    CHECK(parse_ok(R"(subscriber.locale in ["pl", "cs"])").value == json::array({"pl", "cs"}));
    CHECK(parse_ok("x in []").value == json::array());
    CHECK(parse_ok("x in [1, -2.5, true, null]").value == json::parse("[1, -2.5, true, null]"));
    CHECK(parse_ok("x > -1e3").value == -1000.0);
    CHECK(parse_ok("x == false").value == false);
    CHECK(parse_ok("x == null").value.is_null());
  }
  SUBCASE("indexes and underscores in paths") {
    CHECK(parse_ok("cart.items.0.name exists").path == "cart.items.0.name");
    CHECK(parse_ok("_x.y_1 exists").path == "_x.y_1");
  }
  SUBCASE("an operator word needs a word boundary") {
    CHECK(parse_ok("tags contains\"x\"").oper == condition::op::contains);
    CHECK(parse_error("a index [1]").find("column 3: expected an operator") != std::string::npos);
  }
}

TEST_CASE("errors say what was expected, at which column") {
  CHECK(parse_error("") == "column 1: expected a condition such as cart.total >= 100");
  CHECK(parse_error("cart.total") ==
        "column 11: expected an operator (==, !=, >, >=, <, <=, in, contains, exists, missing)");
  CHECK(parse_error("cart.total => 100").find("column 12: expected an operator") == 0);
  CHECK(parse_error("cart.total = 100").find("column 12: expected an operator") == 0);
  CHECK(parse_error("cart.total = 100").find("did you mean ==?") != std::string::npos);
  CHECK(parse_error("cart.total >=") ==
        "column 14: expected a value after the operator: a number, a \"string\", true, false, null or a [list]");
  CHECK(parse_error("Cart.total > 1") == "column 1: field names are lower case (cart.total)");
  CHECK(parse_error("cart.Total > 1") == "column 6: field names are lower case (cart.total)");
  CHECK(parse_error("cart. > 1") == "column 6: expected a field name after '.'");
  CHECK(parse_error("> 1") == "column 1: expected a field path such as cart.total");
  CHECK(parse_error("cart.items.0x exists") == "column 13: a list index is digits only (cart.items.0.name)");
  CHECK(parse_error("product.category == shoes") ==
        "column 21: expected a value; text is written in double quotes (\"shoes\")");
  CHECK(parse_error("product.category == 'shoes'") == "column 21: strings are written in double quotes (\"shoes\")");
  CHECK(parse_error(R"(product.name == "abc)") == "column 17: unterminated string (a closing \" is missing)");
  CHECK(parse_error(R"(product.name == "a\qb")") == "column 17: invalid escape in string");
  CHECK(parse_error("cart.total > \"100\"") == "column 14: '>' compares numbers: expected a number");
  CHECK(parse_error("subscriber.locale in \"pl\"") == "column 22: 'in' needs a list, e.g. [\"pl\", \"cs\"]");
  CHECK(parse_error("cart.tags contains [1]") == "column 20: 'contains' needs a single value, not a list");
  CHECK(parse_error("x in [1, 2") == "column 11: unterminated list (a closing ] is missing)");
  CHECK(parse_error("x in [1 2]") == "column 9: expected , or ] in the list");
  CHECK(parse_error("product.image exists 1") == "column 22: unexpected text after 'exists' (it takes no value)");
  CHECK(parse_error("cart.total > 100 and cart.item_count > 1").find("column 18: unexpected text after the value") ==
        0);
  CHECK(parse_error("cart.total > 1,5") == "column 15: numbers use a decimal point (99.5), without thousands separators");
  CHECK(parse_error("cart.total > 100PLN") == "column 17: unexpected text in a number (write amounts without a currency)");
  CHECK(parse_error("cart.total > 1.") == "column 16: expected digits after the decimal point");
  CHECK(parse_error("cart.total > -x") == "column 14: expected a number");
}

TEST_CASE("resolve_path walks objects and list indexes") {
  REQUIRE(resolve_path(context, "cart.total") != nullptr);
  CHECK(*resolve_path(context, "cart.total") == 129);
  CHECK(*resolve_path(context, "cart.items.0.name") == "Red shoes");
  CHECK(resolve_path(context, "cart.items.2.name") == nullptr);
  CHECK(resolve_path(context, "cart.items.x") == nullptr);
  CHECK(resolve_path(context, "cart.total.x") == nullptr);
  CHECK(resolve_path(context, "nothing") == nullptr);
  CHECK(resolve_path(context, "cart..total") == nullptr);
  CHECK(resolve_path(context, "cart.items.99999999999999999999999") == nullptr);
  REQUIRE(resolve_path(context, "cart.coupon") != nullptr);
  CHECK(resolve_path(context, "cart.coupon")->is_null());
}

TEST_CASE("numbers compare by value, int against double included") {
  CHECK(eval("cart.total >= 100", context));
  CHECK(eval("cart.total >= 129", context));
  CHECK(eval("cart.total == 129.0", context));
  CHECK(eval("cart.total > 128.99", context));
  CHECK_FALSE(eval("cart.total > 129", context));
  CHECK(eval("cart.total < 129.5", context));
  CHECK(eval("cart.total <= 129", context));
  CHECK(eval("product.price == 99.5", context));
  CHECK(eval("product.price != 99", context));
  CHECK(eval("cart.total > -5", context));
  CHECK(eval("cart.items.0.price < 100", context));
  CHECK(holds(parse_ok("x > -1"), json{{"x", 18446744073709551615ULL}}));
  CHECK(holds(parse_ok("x == 18446744073709551615"), json{{"x", 18446744073709551615ULL}}));
  CHECK_FALSE(holds(parse_ok("x < -1"), json{{"x", 3U}}));
  CHECK(holds(parse_ok("x == 9007199254740993"), json{{"x", 9007199254740993LL}}));
  CHECK_FALSE(holds(parse_ok("x == 9007199254740992"), json{{"x", 9007199254740993LL}}));
}

TEST_CASE("strings: ==, !=, in, contains") {
  CHECK(eval(R"(product.category == "shoes")", context));
  CHECK_FALSE(eval(R"(product.category == "Shoes")", context));
  CHECK(eval(R"(product.category != "bags")", context));
  CHECK(eval(R"(subscriber.locale in ["pl", "cs"])", context));
  CHECK_FALSE(eval(R"(subscriber.locale in ["de"])", context));
  CHECK_FALSE(eval("subscriber.locale in []", context));
  CHECK(eval(R"(cart.items.0.name contains "shoe")", context));
  CHECK_FALSE(eval(R"(cart.items.0.name contains "boot")", context));
  CHECK(eval(R"(cart.tags contains "gift")", context));
  CHECK_FALSE(eval(R"(cart.tags contains "new")", context));
  CHECK(eval("flag == true", context));
  CHECK(eval("flag != false", context));
  CHECK(eval("cart.item_count in [1, 2.0]", context));
}

TEST_CASE("a missing field or a mismatched type never holds, except for missing") {
  CHECK_FALSE(eval("cart.discount > 0", context));
  CHECK_FALSE(eval("cart.discount == 0", context));
  CHECK_FALSE(eval("cart.discount != 0", context));
  CHECK_FALSE(eval(R"(cart.discount in [0])", context));
  CHECK_FALSE(eval(R"(cart.discount contains "x")", context));
  CHECK(eval("cart.discount missing", context));
  CHECK_FALSE(eval("cart.discount exists", context));
  CHECK(eval("cart.total exists", context));
  CHECK_FALSE(eval("cart.total missing", context));
  // null counts as missing for exists/missing, and equals null for ==.
  CHECK(eval("cart.coupon missing", context));
  CHECK(eval("cart.coupon == null", context));
  CHECK_FALSE(eval("cart.coupon > 0", context));
  // a number against a string is neither equal nor unequal
  CHECK_FALSE(eval(R"(cart.total == "129")", context));
  CHECK_FALSE(eval(R"(cart.total != "129")", context));
  CHECK_FALSE(eval(R"(product.category > 1)", context));
  CHECK_FALSE(eval(R"(cart.total contains "1")", context));
}
