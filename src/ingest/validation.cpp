// Validation of one shop event: the envelope by hand (so each error names
// its field and code precisely), the properties against the type's embedded
// JSON Schema with valijson.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <regex>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "webpushd/ingest/event_schemas.hpp"
#include "webpushd/ingest/events.hpp"

namespace webpushd::ingest {
namespace {

using nlohmann::json;

constexpr std::size_t max_id_bytes = 128;
constexpr std::string_view schema_suffix = ".schema.json";

// Parsed once: the schemas are embedded and cannot change while running.
// Read-only afterwards, so I/O threads validate concurrently (each with its
// own valijson::Validator).
const std::map<std::string, std::unique_ptr<valijson::Schema>, std::less<>>& compiled_schemas() {
  static const auto schemas = [] {
    std::map<std::string, std::unique_ptr<valijson::Schema>, std::less<>> out;
    for (const auto& file : embedded_event_schemas()) {
      if (!file.path.ends_with(schema_suffix)) continue;
      const auto type = file.path.substr(0, file.path.size() - schema_suffix.size());
      auto schema = std::make_unique<valijson::Schema>();
      const json doc = json::parse(file.text);
      valijson::adapters::NlohmannJsonAdapter adapter(doc);
      valijson::SchemaParser parser;
      parser.populateSchema(adapter, *schema);
      out.emplace(std::string(type), std::move(schema));
    }
    return out;
  }();
  return schemas;
}

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

// valijson names where an error is as {"<root>", "[items]", "[0]", "[price]"}:
// the same brackets for keys and indexes. Walking the document tells which
// is which, giving "items[0].price".
std::string context_to_field(const std::vector<std::string>& context, const json& doc, const std::string& base,
                             std::size_t& depth) {
  std::string field = base;
  const json* node = &doc;
  depth = 0;
  for (const auto& part : context) {
    if (part.size() < 2 || part.front() != '[' || part.back() != ']') continue;
    const auto name = part.substr(1, part.size() - 2);
    if (node != nullptr && node->is_array()) {
      field += "[" + name + "]";
      const auto i = static_cast<std::size_t>(std::strtoull(name.c_str(), nullptr, 10));
      node = i < node->size() ? &(*node)[i] : nullptr;
    } else {
      field = join(field, name);
      node = node != nullptr && node->is_object() && node->contains(name) ? &node->at(name) : nullptr;
    }
    ++depth;
  }
  return field;
}

// The name valijson quotes last in a message ('name'), or "".
std::string quoted_name(const std::string& description) {
  const auto close = description.rfind('\'');
  if (close == std::string::npos || close == 0) return {};
  const auto open = description.rfind('\'', close - 1);
  if (open == std::string::npos) return {};
  return description.substr(open + 1, close - open - 1);
}

// Against the type's schema; the deepest error (the one a sender can act on).
result<void> check_properties(const valijson::Schema& schema, const json& properties, const std::string& field,
                              std::string_view declared_in = "schemas/events/") {
  // One validator per thread, kept: it caches the std::regex of every
  // `pattern` it meets, which a validator per call compiled again for every
  // event (`^[A-Z]{3}$` for each currency). Keyed by the pattern's text, so
  // the cache is bounded by the patterns the schemas hold.
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(properties);
  bool valid = false;
  try {
    valid = validator.validate(schema, adapter, &results);
  } catch (const std::exception& e) {
    // Only a configured schema can get here (compile() tries its regular
    // expressions, the built-in ones are tested): refuse the event rather
    // than take the I/O thread down.
    return fail("invalid_property", std::string{"the event type's schema could not be applied: "} + e.what(), field);
  }
  if (valid) return {};
  std::optional<error> best;
  std::size_t best_depth = 0;
  for (const auto& e : results) {
    std::size_t depth = 0;
    auto at = context_to_field(e.context, properties, field, depth);
    std::string code = "invalid_property";
    std::string message = e.description;
    if (message.starts_with("Object contains a property that could not be validated")) {
      at = join(at, quoted_name(message));
      code = "field_not_allowed";
      message = "unknown property (the allowed ones are in " + std::string{declared_in} + ")";
      ++depth;
    } else if (message.starts_with("Missing required property")) {
      at = join(at, quoted_name(message));
      code = "missing_field";
      message = "required";
      ++depth;
    } else if (message.starts_with("Failed to validate against")) {
      continue;  // a summary valijson adds above the real error
    }
    if (!best || depth > best_depth) {
      best = error{code, message, at};
      best_depth = depth;
    }
  }
  if (!best) best = error{"invalid_property", "does not match the event type's schema", field};
  return tl::unexpected(*best);
}

// valijson compiles `pattern` and `patternProperties` with std::regex only
// while validating; a configured schema's expressions are tried here, so a
// broken one stops the start instead of refusing every event. Values that
// are data (enum, const, default, examples) are not schemas.
std::optional<std::string> bad_pattern(const json& schema) {
  if (schema.is_array()) {
    for (const auto& item : schema) {
      if (auto bad = bad_pattern(item)) return bad;
    }
    return std::nullopt;
  }
  if (!schema.is_object()) return std::nullopt;
  const auto try_regex = [](const std::string& pattern) -> std::optional<std::string> {
    try {
      std::regex compiled(pattern);
      (void)compiled;
      return std::nullopt;
    } catch (const std::regex_error& e) {
      return "pattern '" + pattern + "' is not a valid regular expression (" + e.what() + ")";
    }
  };
  for (const auto& [key, value] : schema.items()) {
    if (key == "enum" || key == "const" || key == "default" || key == "examples") continue;
    if (key == "pattern" && value.is_string()) {
      if (auto bad = try_regex(value.get<std::string>())) return bad;
    } else if (key == "patternProperties" && value.is_object()) {
      for (const auto& [pattern, sub] : value.items()) {
        if (auto bad = try_regex(pattern)) return bad;
      }
    }
    if (auto bad = bad_pattern(value)) return bad;
  }
  return std::nullopt;
}

bool valid_type_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() < 'a' || name.front() > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// An optional id-like string member: empty when absent or null.
result<std::string> optional_id(const json& obj, const char* name, const std::string& path) {
  const auto field = join(path, name);
  if (!obj.contains(name) || obj.at(name).is_null()) return std::string{};
  const auto& v = obj.at(name);
  if (!v.is_string()) return fail("invalid_type", "must be a string", field);
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > max_id_bytes || has_control_char(s)) {
    return fail("invalid_" + std::string(name), "must be 1–128 bytes without control characters", field);
  }
  return s;
}

bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : days[static_cast<std::size_t>(m - 1)];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

}  // namespace

std::vector<std::string> builtin_event_types() {
  std::vector<std::string> out;
  for (const auto& [type, schema] : compiled_schemas()) out.push_back(type);
  return out;
}

struct custom_event_types::compiled {
  std::map<std::string, std::unique_ptr<valijson::Schema>, std::less<>> schemas;
};

result<custom_event_types> custom_event_types::compile(const std::map<std::string, json>& schemas) {
  auto out = std::make_shared<compiled>();
  const auto& builtin = compiled_schemas();
  for (const auto& [name, doc] : schemas) {
    // The messages name the config path themselves: start-up errors are
    // printed by message alone.
    const auto field = "events.custom_types." + name;
    if (!valid_type_name(name)) {
      return fail("config_invalid",
                  field + ": a custom event type's name is 1–64 of a-z, 0-9 and _, starting with a letter", field);
    }
    if (builtin.contains(name)) {
      return fail("config_invalid", field + ": '" + name + "' is a built-in event type; a custom type needs another name",
                  field);
    }
    if (std::find(reserved_event_types.begin(), reserved_event_types.end(), name) != reserved_event_types.end()) {
      return fail("config_invalid", field + ": '" + name + "' is reserved for the scenario engine; choose another name",
                  field);
    }
    if (!doc.is_object()) {
      return fail("config_invalid", field + ": must be a JSON Schema (an object) for the event's properties", field);
    }
    if (auto bad = bad_pattern(doc)) return fail("config_invalid", field + ": not a usable JSON Schema: " + *bad, field);
    auto schema = std::make_unique<valijson::Schema>();
    try {
      valijson::adapters::NlohmannJsonAdapter adapter(doc);
      valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
      parser.populateSchema(adapter, *schema);
    } catch (const std::exception& e) {
      return fail("config_invalid", field + ": not a usable JSON Schema (draft 7): " + e.what(), field);
    }
    out->schemas.emplace(name, std::move(schema));
  }
  custom_event_types types;
  types.compiled_ = std::move(out);
  return types;
}

std::vector<std::string> custom_event_types::names() const {
  std::vector<std::string> out;
  if (compiled_) {
    for (const auto& [name, schema] : compiled_->schemas) out.push_back(name);
  }
  return out;
}

bool custom_event_types::contains(std::string_view type) const {
  return compiled_ && compiled_->schemas.find(type) != compiled_->schemas.end();
}

bool custom_event_types::empty() const { return !compiled_ || compiled_->schemas.empty(); }

result<void> custom_event_types::check_properties(std::string_view type, const json& properties,
                                                  const std::string& field) const {
  if (!contains(type)) return fail("unknown_event_type", "not a configured custom event type", field);
  return ingest::check_properties(*compiled_->schemas.find(type)->second, properties, field,
                                  "events.custom_types in the daemon's config");
}

result<void> check_custom_types(const std::map<std::string, json>& schemas) {
  auto compiled = custom_event_types::compile(schemas);
  if (!compiled) return tl::unexpected(std::move(compiled.error()));
  return {};
}

std::optional<time_point> parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  const auto digits = [&](std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = s[pos + i];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    pos += n;
    return v;
  };
  const auto expect = [&](std::string_view any_of) {
    if (pos >= s.size() || any_of.find(s[pos]) == std::string_view::npos) return false;
    ++pos;
    return true;
  };
  const auto year = digits(4);
  if (!year || !expect("-")) return std::nullopt;
  const auto month = digits(2);
  if (!month || !expect("-")) return std::nullopt;
  const auto day = digits(2);
  if (!day || !expect("Tt")) return std::nullopt;
  const auto hour = digits(2);
  if (!hour || !expect(":")) return std::nullopt;
  const auto minute = digits(2);
  if (!minute || !expect(":")) return std::nullopt;
  const auto second = digits(2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) return std::nullopt;
  if (*hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3) millis = millis * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t n = pos - start; n < 3; ++n) millis *= 10;
  }
  int offset_minutes = 0;
  if (expect("Zz")) {
    // UTC
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    const auto oh = digits(2);
    if (!oh || !expect(":")) return std::nullopt;
    const auto om = digits(2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset_minutes = sign * (*oh * 60 + *om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::int64_t seconds = days_from_civil(*year, *month, *day) * 86400 + *hour * 3600 + *minute * 60 +
                               *second - static_cast<std::int64_t>(offset_minutes) * 60;
  return from_unix_millis(seconds * 1000 + millis);
}

result<event> validate_event(const json& value, const std::string& path, const custom_event_types& custom) {
  if (!value.is_object()) return fail("invalid_type", "an event must be a JSON object", path);
  static constexpr std::array<std::string_view, 6> envelope{"id", "type", "customer_id", "subscription_id",
                                                            "occurred_at", "properties"};
  for (const auto& [key, member] : value.items()) {
    if (std::find(envelope.begin(), envelope.end(), key) == envelope.end()) {
      return fail("field_not_allowed", "unknown field (an event has id, type, customer_id, subscription_id, "
                                       "occurred_at, properties)",
                  join(path, key));
    }
  }
  event out;

  if (!value.contains("id")) return fail("missing_field", "required", join(path, "id"));
  if (!value.at("id").is_string()) return fail("invalid_type", "must be a string", join(path, "id"));
  out.id = value.at("id").get<std::string>();
  if (out.id.empty() || out.id.size() > max_id_bytes || has_control_char(out.id)) {
    return fail("invalid_event_id", "must be 1–128 bytes without control characters", join(path, "id"));
  }

  if (!value.contains("type")) return fail("missing_field", "required", join(path, "type"));
  if (!value.at("type").is_string()) return fail("invalid_type", "must be a string", join(path, "type"));
  out.type = value.at("type").get<std::string>();
  const auto& schemas = compiled_schemas();
  const auto schema = schemas.find(out.type);
  const bool is_custom = schema == schemas.end() && custom.contains(out.type);
  if (schema == schemas.end() && !is_custom) {
    std::string known;
    for (const auto& [type, s] : schemas) known += (known.empty() ? "" : ", ") + type;
    if (custom.empty()) {
      return fail("unknown_event_type", "not a built-in event type (" + known + ")", join(path, "type"));
    }
    std::string configured;
    for (const auto& type : custom.names()) configured += (configured.empty() ? "" : ", ") + type;
    return fail("unknown_event_type",
                "neither a built-in event type (" + known + ") nor a custom one (events.custom_types: " + configured +
                    ")",
                join(path, "type"));
  }

  auto customer = optional_id(value, "customer_id", path);
  if (!customer) return tl::unexpected(customer.error());
  out.customer_id = std::move(*customer);
  auto subscription = optional_id(value, "subscription_id", path);
  if (!subscription) return tl::unexpected(subscription.error());
  out.subscription_id = std::move(*subscription);

  if (!value.contains("occurred_at")) return fail("missing_field", "required", join(path, "occurred_at"));
  const auto& occurred = value.at("occurred_at");
  if (!occurred.is_string()) return fail("invalid_type", "must be an RFC 3339 date-time string", join(path, "occurred_at"));
  const auto at = parse_rfc3339(occurred.get_ref<const std::string&>());
  if (!at) {
    return fail("invalid_timestamp", "must be an RFC 3339 date-time such as 2026-11-23T13:10:00Z",
                join(path, "occurred_at"));
  }
  // The engine and the stores add and subtract windows, delays and
  // retention (days to months) to an event's time; far from now that
  // overflows the clock's nanoseconds (±292 years around 1970), and a year
  // such as 1013 already saturated here (found by the event_json fuzzer).
  // No shop event happened before 1970 or will after 2199.
  static const time_point earliest = from_unix_millis(0);
  static const time_point latest = from_unix_millis(days_from_civil(2200, 1, 1) * 86400 * 1000);
  if (*at < earliest || *at >= latest) {
    return fail("invalid_timestamp", "must be between 1970-01-01T00:00:00Z and 2199-12-31T23:59:59Z",
                join(path, "occurred_at"));
  }
  out.occurred_at = *at;

  const auto props_field = join(path, "properties");
  if (!value.contains("properties")) return fail("missing_field", "required", props_field);
  const auto& props = value.at("properties");
  if (!props.is_object()) return fail("invalid_type", "must be an object", props_field);
  if (is_custom) {
    if (auto ok = custom.check_properties(out.type, props, props_field); !ok) return tl::unexpected(ok.error());
    out.properties = props.dump();
    return out;
  }
  if (auto ok = check_properties(*schema->second, props, props_field); !ok) return tl::unexpected(ok.error());
  // A schema cannot compare two properties; a "drop" that is none would
  // send shoppers a misleading notification.
  if (out.type == "price_dropped" && props.at("new_price").get<double>() >= props.at("old_price").get<double>()) {
    return fail("invalid_price", "must be below old_price", join(props_field, "new_price"));
  }
  out.properties = props.dump();
  return out;
}

}  // namespace webpushd::ingest
