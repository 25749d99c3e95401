#pragma once
/// @file
/// @brief Conditions marketers write in scenarios: `cart.total >= 100`,
/// `product.category == "shoes"`, `cart.item_count > 0`,
/// `subscriber.locale in ["pl", "cs"]`, `product.image exists`.
///
/// Grammar (whitespace between tokens is free):
///   condition := path op literal | path "exists" | path "missing"
///   path      := name ("." (name | index))*       name: [a-z_][a-z0-9_]*, index: [0-9]+
///   op        := "==" | "!=" | ">" | ">=" | "<" | "<=" | "in" | "contains"
///   literal   := number | "string" (JSON escapes) | true | false | null | [literal, …]
/// `in` needs a list; `contains` holds when the value (a string or list)
/// contains the literal. Comparing a missing value, or a number with a
/// string, is false (never an error at send time): a condition over a field
/// an event may lack simply does not hold.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "webpushd/core/error.hpp"

namespace webpushd::automation {

/// @brief A parsed condition.
struct condition {
  enum class op { eq, ne, gt, ge, lt, le, in, contains, exists, missing };
  std::string path;         ///< dotted, e.g. "cart.total"
  op oper = op::exists;
  nlohmann::json value;     ///< the literal (null for exists/missing)
  std::string text;         ///< as written, for messages and simulate output
};

/// @brief Parses one condition. Error `invalid_condition` with a message that
/// says what was expected where (`column 12: expected an operator (==, !=,
/// >, >=, <, <=, in, contains, exists, missing)`).
result<condition> parse_condition(std::string_view text);

/// @brief The value at a dotted path ("cart.items.0.name"), or nullptr when
/// any part is missing.
const nlohmann::json* resolve_path(const nlohmann::json& context, std::string_view path);

/// @brief Whether `c` holds over `context`.
bool holds(const condition& c, const nlohmann::json& context);

}  // namespace webpushd::automation
