#include "webpushd/app/config.hpp"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "schema_validation.hpp"
#include "webpushd/app/scenario_files.hpp"
#include "webpushd/automation/message.hpp"
#include "webpushd/crypto/password.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"
#include "yaml_to_json.hpp"

namespace webpushd::app {

// ---------------------------------------------------------------- schema validation
// Shared with the scenario files (schema_validation.hpp).

namespace {

using nlohmann::json;

// valijson reports where an error is as {"<root>", "[delivery]", "[retry]"};
// the positions map is keyed by JSON Pointer (member names escaped).
std::string context_to_pointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const auto& part : context) {
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      pointer += "/";
      for (const char c : part.substr(1, part.size() - 2)) {
        if (c == '~') pointer += "~0";
        else if (c == '/') pointer += "~1";
        else pointer += c;
      }
    }
  }
  return pointer;
}

std::vector<std::string> pointer_tokens(const std::string& pointer) {
  std::vector<std::string> tokens;
  std::size_t at = 0;
  while (at < pointer.size()) {
    const auto next = pointer.find('/', at + 1);
    std::string token = pointer.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    std::string plain;
    for (std::size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size()) {
        plain += token[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        plain += token[i];
      }
    }
    tokens.push_back(std::move(plain));
    if (next == std::string::npos) break;
    at = next;
  }
  return tokens;
}

// valijson names a stray property last in its message, in quotes. Point at
// the property itself (that is where the user has to look) and say plainly
// that the key is unknown: most often it is a typo.
constexpr std::string_view stray_property_message = "Object contains a property that could not be validated";

std::string stray_property(const std::string& description) {
  if (description.rfind(stray_property_message, 0) != 0) return {};
  const auto close = description.rfind('\'');
  const auto open = close == std::string::npos ? close : description.rfind('\'', close - 1);
  if (open == std::string::npos) return {};
  return description.substr(open + 1, close - open - 1);
}


constexpr std::string_view member_failed_message = "Failed to validate against schema associated with property name";

// The last 'quoted' name of a valijson message that starts with `prefix`.
std::string quoted_name(const std::string& description, std::string_view prefix) {
  if (!description.starts_with(prefix)) return {};
  const auto close = description.rfind('\'');
  const auto open = close == std::string::npos ? close : description.rfind('\'', close - 1);
  if (open == std::string::npos) return {};
  return description.substr(open + 1, close - open - 1);
}

std::string missing_property(const std::string& description) {
  if (!description.starts_with("Missing required property")) return {};
  const auto close = description.rfind('\'');
  const auto open = close == std::string::npos ? close : description.rfind('\'', close - 1);
  if (open == std::string::npos) return {};
  return description.substr(open + 1, close - open - 1);
}

// Follows local "$ref"s ("#/definitions/duration"); anything else stays as is.
const json* resolve_ref(const json& root, const json* node) {
  for (int depth = 0; node != nullptr && depth < 16; ++depth) {
    if (!node->is_object()) return node;
    const auto ref = node->find("$ref");
    if (ref == node->end() || !ref->is_string()) return node;
    const auto& target = ref->get_ref<const std::string&>();
    if (!target.starts_with("#")) return nullptr;
    const json::json_pointer where(target.substr(1));
    if (!root.contains(where)) return nullptr;
    node = &root.at(where);
  }
  return nullptr;
}

// The subschema that governs the value at `pointer` (unresolved, so a
// property's own description beside its "$ref" stays visible), or nullptr
// where the schema branches (oneOf and friends) or ends.
const json* subschema_at(const json& root, const std::string& pointer) {
  const json* node = &root;
  for (const auto& token : pointer_tokens(pointer)) {
    node = resolve_ref(root, node);
    if (node == nullptr || !node->is_object()) return nullptr;
    if (const auto props = node->find("properties"); props != node->end() && props->contains(token)) {
      node = &props->at(token);
    } else if (const auto extra = node->find("additionalProperties"); extra != node->end() && extra->is_object()) {
      node = &*extra;
    } else if (const auto items = node->find("items"); items != node->end() && items->is_object()) {
      node = &*items;
    } else {
      return nullptr;
    }
  }
  return node;
}

std::string string_at(const json* node, const char* key) {
  if (node == nullptr || !node->is_object()) return {};
  const auto it = node->find(key);
  return it != node->end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string shown(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return "'" + text + "'";
}

std::string kind_of(const json& value) {
  switch (value.type()) {
    case json::value_t::string: return "text";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::boolean: return "true/false";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "keys and values";
    default: return "nothing";
  }
}

std::string type_words(const json& type) {
  const auto one = [](const std::string& t) -> std::string {
    if (t == "string") return "text";
    if (t == "integer") return "a whole number";
    if (t == "number") return "a number";
    if (t == "boolean") return "true or false";
    if (t == "array") return "a list";
    if (t == "object") return "keys and values";
    return t;
  };
  if (type.is_string()) return one(type.get<std::string>());
  std::string out;
  if (type.is_array()) {
    for (const auto& t : type) {
      if (t.is_string()) out += (out.empty() ? "" : " or ") + one(t.get<std::string>());
    }
  }
  return out;
}

struct phrased {
  std::string pointer;
  bool at_key = false;
  std::string message;
};

// valijson's messages name constraints ("Failed to match regex specified by
// 'pattern' constraint."); say instead what the value should look like,
// with the schema's own description of it.
phrased phrase(const std::string& pointer, const std::string& description, const json& instance,
               const compiled_schema& schema) {
  const json& root = schema.document();
  const json::json_pointer where(pointer);
  const json* value = instance.contains(where) ? &instance.at(where) : nullptr;
  const json* sub = subschema_at(root, pointer);
  const json* resolved = resolve_ref(root, sub);
  // The form of a value is described where it is defined; its meaning beside the reference.
  std::string form = string_at(resolved, "description");
  if (form.empty()) form = string_at(sub, "description");

  if (const auto key = stray_property(description); !key.empty()) {
    std::string allowed;
    if (const json* parent = resolve_ref(root, subschema_at(root, pointer)); parent != nullptr && parent->is_object()) {
      if (const auto props = parent->find("properties"); props != parent->end() && props->is_object()) {
        for (const auto& [name, unused] : props->items()) allowed += (allowed.empty() ? "" : ", ") + name;
      }
    }
    return {pointer + "/" + json_pointer_token(key), true,
            "unknown key" + (allowed.empty() ? " (see " + schema.file_name() + ")" : " (allowed here: " + allowed + ")")};
  }
  if (description.starts_with("Failed to match regex")) {
    return {pointer, false,
            (value != nullptr ? shown(*value) + " is not valid" : std::string("not valid")) +
                (form.empty() ? "" : ": " + form)};
  }
  if (description.starts_with("Failed to match against any enum values") && resolved != nullptr &&
      resolved->contains("enum")) {
    std::string options;
    for (const auto& o : resolved->at("enum")) options += (options.empty() ? "" : ", ") + (o.is_string() ? o.get<std::string>() : o.dump());
    return {pointer, false, (value != nullptr ? shown(*value) : std::string("the value")) + " is not one of: " + options};
  }
  if (description.starts_with("Failed to match expected value set by 'const'") && resolved != nullptr &&
      resolved->contains("const")) {
    return {pointer, false, "must be " + resolved->at("const").dump()};
  }
  if (description.starts_with("Value type not permitted") && resolved != nullptr && resolved->contains("type")) {
    std::string m = "expected " + type_words(resolved->at("type"));
    if (value != nullptr) m += ", found " + kind_of(*value);
    if (resolved->contains("pattern") && !form.empty()) m += ": " + form;
    return {pointer, false, m};
  }
  if (const auto key = missing_property(description); !key.empty()) {
    return {pointer, false, "missing required key '" + key + "'"};
  }
  // A number out of its range, a list too short or too long: say what the
  // value is and what it should be, in the schema's words.
  if (description.starts_with("Expected number greater than") || description.starts_with("Expected number less than")) {
    return {pointer, false,
            (value != nullptr ? shown(*value) + " is out of range" : std::string("out of range")) +
                (form.empty() ? "" : ": " + form)};
  }
  if (const bool few = description.starts_with("Array should contain no fewer than");
      (few || description.starts_with("Array should contain no more than")) && resolved != nullptr) {
    const json& bound = resolved->value(few ? "minItems" : "maxItems", json());
    const auto n = value != nullptr && value->is_array() ? value->size() : 0;
    return {pointer, false,
            std::to_string(n) + (n == 1 ? " entry" : " entries") + (few ? ", at least " : ", at most ") + bound.dump() +
                (form.empty() ? "" : ": " + form)};
  }
  if (!quoted_name(description, member_failed_message).empty()) {
    // Nothing deeper was reported: the object's keys broke its propertyNames.
    const json* names = resolved != nullptr && resolved->is_object() && resolved->contains("propertyNames")
                            ? resolve_ref(root, &resolved->at("propertyNames"))
                            : nullptr;
    const std::string pattern = string_at(names, "pattern");
    if (!pattern.empty() && value != nullptr && value->is_object()) {
      const std::regex re(pattern);
      for (const auto& [key, unused] : value->items()) {
        if (std::regex_search(key, re)) continue;
        const std::string hint = string_at(names, "description");
        return {pointer + "/" + json_pointer_token(key), true,
                "'" + key + "' is not a valid key here" + (hint.empty() ? "" : ": " + hint)};
      }
    }
    return {pointer, false, "does not match " + schema.file_name()};
  }
  return {pointer, false, description};
}

}  // namespace

compiled_schema::compiled_schema(std::string_view text, std::string file_name)
    : document_(json::parse(text)), file_name_(std::move(file_name)) {
  auto s = std::make_shared<valijson::Schema>();
  valijson::adapters::NlohmannJsonAdapter adapter(document_);
  valijson::SchemaParser parser;
  parser.populateSchema(adapter, *s);
  schema_ = std::move(s);
}

source_position position_of(const std::string& pointer, const std::map<std::string, source_position>& positions) {
  // A missing key has no position of its own: fall back to its nearest parent.
  std::string p = pointer;
  while (true) {
    const auto it = positions.find(p);
    if (it != positions.end()) return it->second;
    if (p.empty()) return {};
    p = p.substr(0, p.rfind('/'));
  }
}

std::string location_text(const std::string& source, source_position position) {
  if (position.line <= 0) return source;
  return source + ":" + std::to_string(position.line) + ":" + std::to_string(position.column);
}

std::string pointer_to_dotted(const std::string& pointer) {
  if (pointer.empty()) return "(top level)";
  std::string out;
  for (const auto& token : pointer_tokens(pointer)) out += (out.empty() ? "" : ".") + token;
  return out;
}

std::vector<schema_violation> schema_violations(const located_json& doc, const compiled_schema& schema) {
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(doc.value);
  if (validator.validate(schema.schema(), adapter, &results)) return {};

  // valijson reports an error at every level above the real one
  // ("failed to validate property 'delivery'"); keep only the deepest. An
  // unknown or missing key is reported at its object but is about the key,
  // so it counts as one level deeper: it must not hide behind an error
  // elsewhere in the same object.
  struct reported {
    std::string pointer;
    std::string depth_pointer;
    std::string description;
  };
  std::vector<reported> errors;
  for (const auto& e : results) {
    auto pointer = context_to_pointer(e.context);
    // "Failed to validate against schema associated with property name 'x'"
    // is about member x; valijson says nothing deeper when what failed was
    // x's propertyNames (phrase() finds the key itself).
    if (const auto member = quoted_name(e.description, member_failed_message); !member.empty()) {
      pointer += "/" + json_pointer_token(member);
    }
    std::string key = stray_property(e.description);
    if (key.empty()) key = missing_property(e.description);
    errors.push_back({pointer, key.empty() ? pointer : pointer + "/" + json_pointer_token(key), e.description});
  }
  std::vector<schema_violation> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& [pointer, depth_pointer, description] : errors) {
    // A member's "failed to validate" yields to any error about that member itself.
    const bool summary = !quoted_name(description, member_failed_message).empty();
    bool has_deeper = false;
    for (const auto& other : errors) {
      if (other.depth_pointer.size() > depth_pointer.size() &&
          other.depth_pointer.rfind(depth_pointer + "/", 0) == 0) {
        has_deeper = true;
      }
      if (summary && other.depth_pointer == depth_pointer &&
          quoted_name(other.description, member_failed_message).empty()) {
        has_deeper = true;
      }
    }
    if (has_deeper) continue;
    if (description.rfind("Failed to validate against", 0) == 0 && errors.size() > 1 &&
        quoted_name(description, member_failed_message).empty()) {
      continue;
    }
    auto p = phrase(pointer, description, doc.value, schema);
    if (!seen.insert({p.pointer, p.message}).second) continue;
    const auto position = position_of(p.pointer, p.at_key ? doc.key_positions : doc.positions);
    out.push_back({std::move(p.pointer), position, std::move(p.message)});
  }
  if (out.empty()) out.push_back({"", {}, "does not match " + schema.file_name()});
  std::stable_sort(out.begin(), out.end(), [](const schema_violation& a, const schema_violation& b) {
    return std::pair(a.position.line, a.position.column) < std::pair(b.position.line, b.position.column);
  });
  return out;
}

// ---------------------------------------------------------------- the config

namespace {

std::string position_prefix(const std::string& source, const std::string& pointer,
                            const std::map<std::string, source_position>& positions) {
  return location_text(source, position_of(pointer, positions));
}

// Parsed once: the schema is embedded and cannot change while running.
const compiled_schema& config_schema() {
  static const compiled_schema schema(config_schema_text(), "schemas/config.schema.json");
  return schema;
}

result<void> validate_against_schema(const located_json& doc, const std::string& source) {
  const auto violations = schema_violations(doc, config_schema());
  if (violations.empty()) return {};
  std::string message;
  for (const auto& v : violations) {
    message += (message.empty() ? "" : "\n") + location_text(source, v.position) + ": " + pointer_to_dotted(v.pointer) +
               ": " + v.message;
  }
  return fail("config_invalid", message);
}

std::chrono::milliseconds duration_at(const json& obj, const char* key, std::chrono::milliseconds fallback) {
  if (!obj.contains(key)) return fallback;
  // The schema's pattern already guarantees the form.
  return parse_duration(obj.at(key).get<std::string>()).value_or(fallback);
}

template <class T>
T value_at(const json& obj, const char* key, T fallback) {
  return obj.contains(key) ? obj.at(key).get<T>() : fallback;
}

// `pacing:`. The schema checked every form; what is left is meaning.
result<void> read_pacing(const json& root, config& c, const std::string& source, const located_json& doc) {
  c.pacing.configured = root.contains("pacing");
  static const json empty = json::object();
  const json& p = c.pacing.configured ? root.at("pacing") : empty;
  auto& policy = c.pacing.policy;
  const auto caps_at = [&](const json& list, const std::string& pointer) -> result<std::vector<pacing::cap>> {
    std::vector<pacing::cap> caps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto cap = pacing::parse_cap(list[i].get<std::string>());
      if (!cap) {
        return fail("config_invalid", position_prefix(source, pointer + "/" + std::to_string(i), doc.positions) +
                                          ": the window must be longer than 0");
      }
      caps.push_back(*cap);
    }
    return caps;
  };
  auto global = caps_at(p.value("caps", json::array()), "/pacing/caps");
  if (!global) return tl::unexpected(global.error());
  policy.caps = std::move(*global);
  policy.min_gap = duration_at(p, "min_gap", std::chrono::milliseconds{0});
  if (p.contains("category_caps")) {
    for (const auto& item : p.at("category_caps").items()) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
      const std::string category = item.key();
      const auto& list = item.value();
      const std::string pointer = "/pacing/category_caps/" + json_pointer_token(category);
      if (std::none_of(c.consent.categories.begin(), c.consent.categories.end(),
                       [&](const auto& k) { return k.name == category; })) {
        return fail("config_invalid", position_prefix(source, pointer, doc.key_positions) + ": pacing.category_caps: '" +
                                          category + "' is not one of consent.categories");
      }
      auto caps = caps_at(list, pointer);
      if (!caps) return tl::unexpected(caps.error());
      policy.category_caps[category] = std::move(*caps);
    }
  }
  if (p.contains("quiet_hours")) {
    const json& q = p.at("quiet_hours");
    policy.quiet = pacing::quiet_hours{*pacing::parse_clock_time(q.at("from").get<std::string>()),
                                       *pacing::parse_clock_time(q.at("to").get<std::string>())};
  }
  policy.default_timezone = c.consent.default_timezone;
  policy.unsubscribe_window = duration_at(p, "unsubscribe_window", policy.unsubscribe_window);
  c.pacing.adaptive_interval = duration_at(p, "adaptive_interval", c.pacing.adaptive_interval);
  return {};
}

// `dashboard:`. A password hash that does not parse would lock everyone out
// at the first login: refuse it here, at its line.
result<void> read_dashboard(const json& root, config& c, const std::string& source, const located_json& doc) {
  if (!root.contains("dashboard")) return {};
  const json& d = root.at("dashboard");
  c.dashboard.session_lifetime = duration_at(d, "session_lifetime", c.dashboard.session_lifetime);
  if (c.dashboard.session_lifetime < std::chrono::minutes{5} || c.dashboard.session_lifetime > std::chrono::hours{24 * 30}) {
    return fail("config_invalid", position_prefix(source, "/dashboard/session_lifetime", doc.positions) +
                                      ": dashboard.session_lifetime: must be between 5m and 30d");
  }
  const json users = d.value("users", json::array());
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string at = "/dashboard/users/" + std::to_string(i);
    dashboard_user_config u{users[i].at("name").get<std::string>(), users[i].at("password_hash").get<std::string>()};
    if (auto parsed = crypto::parse_password_hash(u.password_hash); !parsed) {
      return fail("config_invalid", position_prefix(source, at + "/password_hash", doc.positions) + ": dashboard.users." +
                                        std::to_string(i) + ".password_hash: " + parsed.error().message);
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (c.dashboard.users[j].name == u.name) {
        return fail("config_invalid", position_prefix(source, at + "/name", doc.positions) + ": dashboard.users." +
                                          std::to_string(i) + ".name: '" + u.name + "' repeats entry " +
                                          std::to_string(j));
      }
    }
    c.dashboard.users.push_back(std::move(u));
  }
  return {};
}

result<void> check_ranges(const config& c, const std::string& source, const located_json& doc) {
  const auto at = [&](const std::string& pointer) { return position_prefix(source, pointer, doc.positions); };
  const auto lifetime = c.vapid.token_lifetime;
  if (lifetime < std::chrono::minutes{1} || lifetime > std::chrono::hours{24}) {
    return fail("config_invalid", at("/vapid/token_lifetime") +
                                      ": vapid.token_lifetime: must be between 1m and 24h (push services refuse "
                                      "tokens that live longer than a day)");
  }
  if (c.delivery.retry.base_delay > c.delivery.retry.max_delay) {
    return fail("config_invalid",
                at("/delivery/retry/base_delay") + ": delivery.retry.base_delay: must not exceed max_delay");
  }
  if (c.server.read_timeout <= std::chrono::milliseconds{0}) {
    return fail("config_invalid", at("/server/read_timeout") + ": server.read_timeout: must be more than 0");
  }
  if (c.server.idle_timeout <= std::chrono::milliseconds{0}) {
    return fail("config_invalid", at("/server/idle_timeout") + ": server.idle_timeout: must be more than 0");
  }
  // Below a second, Retry-After (whole seconds) would overstate the wait; past
  // a day, one bad deploy would lock a backend out for longer than anyone waits.
  if (c.server.api_key_window < std::chrono::seconds{1} || c.server.api_key_window > std::chrono::hours{24}) {
    return fail("config_invalid",
                at("/server/api_key_limit/window") + ": server.api_key_limit.window: must be from 1s to 1d");
  }
  // Names appear in logs as the caller's identity; a key must name one caller.
  // (The messages never quote a key.)
  for (std::size_t i = 0; i < c.server.api_keys.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const auto& a = c.server.api_keys[i];
      const auto& b = c.server.api_keys[j];
      if (a.name == b.name || a.key == b.key) {
        return fail("config_invalid", at("/server/api_keys/" + std::to_string(i)) + ": server.api_keys." +
                                          std::to_string(i) + ": " +
                                          (a.name == b.name ? "name" : "key") + " repeats entry " + std::to_string(j));
      }
    }
  }
  // A window of 0 would credit only purchases in the very millisecond of
  // the click; one of weeks credits pushes with purchases they hardly caused.
  for (const auto& [key, window] : {std::pair{"click_window", c.tracking.click}, std::pair{"view_window", c.tracking.view}}) {
    if (window <= std::chrono::milliseconds{0} || window > tracking::max_attribution_window) {
      return fail("config_invalid", at(std::string{"/tracking/"} + key) + ": tracking." + key +
                                        ": must be more than 0 and at most " + format_duration(tracking::max_attribution_window));
    }
  }
  if (c.delivery.request_timeout < c.delivery.connect_timeout) {
    return fail("config_invalid", at("/delivery/request_timeout") +
                                      ": delivery.request_timeout: must be at least connect_timeout");
  }
  return {};
}

// UTM values are templates like message texts; a broken one would fail
// every message of every scenario at send time.
result<void> check_utm_templates(const config& c, const std::string& source, const located_json& doc) {
  const std::pair<const char*, const std::string*> values[] = {{"source", &c.automation.utm.source},
                                                               {"medium", &c.automation.utm.medium},
                                                               {"campaign", &c.automation.utm.campaign},
                                                               {"content", &c.automation.utm.content}};
  for (const auto& [key, value] : values) {
    if (auto ok = automation::check_template(*value); !ok) {
      const std::string pointer = std::string("/automation/utm/") + key;
      return fail("config_invalid", position_prefix(source, pointer, doc.positions) + ": automation.utm." + key +
                                        ": " + ok.error().message);
    }
  }
  return {};
}

}  // namespace


namespace {

// Everything but the scenario files.
result<config> parse_config_base(std::string_view text, const std::string& source_name,
                                 const std::filesystem::path& base_dir) {
  auto doc = parse_yaml_located(text, source_name);
  if (!doc) return fail("config_invalid", doc.error().message);
  if (doc->value.is_null()) doc->value = json::object();  // an empty file is an empty config
  if (auto ok = validate_against_schema(*doc, source_name); !ok) return tl::unexpected(ok.error());

  const json& root = doc->value;
  const json empty = json::object();
  const auto section = [&](const json& parent, const char* key) -> const json& {
    return parent.contains(key) ? parent.at(key) : empty;
  };

  config c;
  c.source = source_name;
  const json& server = section(root, "server");
  if (server.contains("listen")) {
    const auto listen = server.at("listen").get<std::string>();
    const auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const long port = std::stol(listen.substr(colon + 1));
    if (port > 65535) {
      return fail("config_invalid",
                  position_prefix(source_name, "/server/listen", doc->positions) + ": server.listen: port above 65535");
    }
    c.server.listen_host = host;
    c.server.listen_port = static_cast<std::uint16_t>(port);
  }
  c.server.threads = value_at<unsigned>(server, "threads", 0);
  c.server.body_limit = value_at<std::size_t>(server, "body_limit", 1024 * 1024);
  c.server.header_limit = value_at<std::size_t>(server, "header_limit", 16 * 1024);
  c.server.read_timeout = duration_at(server, "read_timeout", std::chrono::seconds{10});
  c.server.idle_timeout = duration_at(server, "idle_timeout", std::chrono::seconds{60});
  c.server.max_connections = value_at<std::size_t>(server, "max_connections", 10000);
  c.server.max_batch_events = value_at<std::size_t>(server, "max_batch_events", 1000);
  c.server.trust_forwarded_for = value_at<bool>(server, "trust_forwarded_for", false);
  if (server.contains("api_key_limit")) {
    const auto& limit = server.at("api_key_limit");
    c.server.api_key_max_failures = value_at<unsigned>(limit, "max_failures", c.server.api_key_max_failures);
    c.server.api_key_window = duration_at(limit, "window", c.server.api_key_window);
  }
  c.server.cors_origins = value_at<std::vector<std::string>>(server, "cors_origins", {});
  if (server.contains("api_keys")) {
    for (const auto& k : server.at("api_keys")) {
      c.server.api_keys.push_back({k.at("name").get<std::string>(), k.at("key").get<std::string>()});
    }
  }

  const json& storage = section(root, "storage");
  c.data_dir = base_dir / value_at<std::string>(storage, "data_dir", "data");
  c.data_dir = c.data_dir.lexically_normal();

  c.server.identify_secret = value_at<std::string>(server, "identify_secret", "");
  c.server.public_url = value_at<std::string>(server, "public_url", "");
  while (!c.server.public_url.empty() && c.server.public_url.back() == '/') c.server.public_url.pop_back();

  const json& consent = section(root, "consent");
  c.consent.text_version = value_at<std::string>(consent, "text_version", "v1");
  c.consent.default_timezone = value_at<std::string>(consent, "default_timezone", "UTC");
  c.consent.default_locale = value_at<std::string>(consent, "default_locale", "en");
  if (consent.contains("categories")) {
    for (const auto& item : consent.at("categories")) {
      consent::category_def def;
      def.name = item.at("name").get<std::string>();
      for (const auto& [locale, words] : item.at("texts").items()) {
        def.texts[locale] = {words.at("label").get<std::string>(), value_at<std::string>(words, "description", "")};
      }
      c.consent.categories.push_back(std::move(def));
    }
  } else {
    // A shop that configured nothing still gets one honest category.
    c.consent.categories.push_back(
        {"updates", {{"en", {"Updates from this shop", "Reminders and news about products you looked at."}}}});
  }
  // The consent module knows its own rules (unique names, real time zone).
  if (auto ok = consent::validate_consent_config(c.consent); !ok) {
    std::string pointer = "/" + ok.error().field;
    for (auto& ch : pointer) {
      if (ch == '.') ch = '/';
    }
    pointer = std::regex_replace(pointer, std::regex(R"(\[(\d+)\])"), "/$1");
    return fail("config_invalid", position_prefix(source_name, pointer, doc->positions) + ": " + ok.error().field +
                                      ": " + ok.error().message);
  }

  const json& vapid = section(root, "vapid");
  c.vapid.subject = value_at<std::string>(vapid, "subject", "");
  c.vapid.private_key_file = value_at<std::string>(vapid, "private_key_file", "vapid_private.pem");
  c.vapid.token_lifetime = std::chrono::duration_cast<std::chrono::seconds>(
      duration_at(vapid, "token_lifetime", std::chrono::hours{12}));

  const json& delivery = section(root, "delivery");
  c.delivery.workers = value_at<unsigned>(delivery, "workers", 0);
  c.delivery.max_in_flight = value_at<std::size_t>(delivery, "max_in_flight", 2000);
  c.delivery.max_connections_per_host = value_at<long>(delivery, "max_connections_per_host", 32);
  c.delivery.http2 = value_at<bool>(delivery, "http2", true);
  c.delivery.connect_timeout = duration_at(delivery, "connect_timeout", std::chrono::seconds{5});
  c.delivery.request_timeout = duration_at(delivery, "request_timeout", std::chrono::seconds{30});
  c.delivery.poll_interval = duration_at(delivery, "poll_interval", std::chrono::milliseconds{500});
  const json& retry = section(delivery, "retry");
  c.delivery.retry.max_attempts = value_at<int>(retry, "max_attempts", 8);
  c.delivery.retry.base_delay = duration_at(retry, "base_delay", std::chrono::seconds{1});
  c.delivery.retry.max_delay = duration_at(retry, "max_delay", std::chrono::hours{1});
  const json& endpoints = section(delivery, "endpoints");
  c.delivery.endpoints.allowed_hosts = value_at<std::vector<std::string>>(endpoints, "allowed_hosts", {});
  c.delivery.endpoints.allow_http = value_at<bool>(endpoints, "allow_http", false);
  c.delivery.endpoints.allow_private_addresses = value_at<bool>(endpoints, "allow_private_addresses", false);

  const json& events = section(root, "events");
  c.events.retention = duration_at(events, "retention", std::chrono::hours{24 * 180});
  c.events.unknown_retention = duration_at(events, "unknown_retention", std::chrono::hours{24 * 30});
  if (events.contains("custom_types")) {
    for (const auto& [name, schema] : events.at("custom_types").items()) c.events.custom_types[name] = schema;
  }
  // A custom type that shadows a built-in one or whose schema does not
  // compile is caught here, so `config check` and a reload see it too.
  if (auto ok = ingest::check_custom_types(c.events.custom_types); !ok) {
    const auto name = ok.error().field.substr(ok.error().field.rfind('.') + 1);
    return fail("config_invalid", position_prefix(source_name, "/events/custom_types/" + name, doc->key_positions) +
                                      ": " + ok.error().message);
  }

  const json& automation = section(root, "automation");
  for (const auto& file : value_at<std::vector<std::string>>(automation, "scenario_files", {})) {
    c.automation.scenario_files.push_back((base_dir / file).lexically_normal());
  }
  const json& shop = section(automation, "shop");
  c.automation.shop_name = value_at<std::string>(shop, "name", "");
  c.automation.shop_url = value_at<std::string>(shop, "url", "");
  const json& utm = section(automation, "utm");
  c.automation.utm.enabled = value_at<bool>(utm, "enabled", true);
  c.automation.utm.source = value_at<std::string>(utm, "source", c.automation.utm.source);
  c.automation.utm.medium = value_at<std::string>(utm, "medium", c.automation.utm.medium);
  c.automation.utm.campaign = value_at<std::string>(utm, "campaign", c.automation.utm.campaign);
  c.automation.utm.content = value_at<std::string>(utm, "content", c.automation.utm.content);
  // Scenario files are read and checked after the rest (they refer to
  // consent categories and event types): see load_scenarios below.
  c.automation.scenarios = std::make_shared<const automation::scenario_set>(automation::scenario_set{{}, c.automation.utm});

  if (auto ok = read_pacing(root, c, source_name, *doc); !ok) return tl::unexpected(ok.error());
  if (auto ok = read_dashboard(root, c, source_name, *doc); !ok) return tl::unexpected(ok.error());

  const json& tracking = section(root, "tracking");
  c.tracking.click = duration_at(tracking, "click_window", c.tracking.click);
  c.tracking.view = duration_at(tracking, "view_window", c.tracking.view);

  const json& logging = section(root, "logging");
  c.logging.format = value_at<std::string>(logging, "format", "auto");
  c.logging.level = value_at<std::string>(logging, "level", "info");

  if (auto ok = check_ranges(c, source_name, *doc); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_utm_templates(c, source_name, *doc); !ok) return tl::unexpected(ok.error());
  return c;
}

// The scenario files are read last: they refer to the consent categories
// and the event types configured above. All their errors are reported at
// once, each as FILE:LINE:COL: path: message.
result<void> load_scenarios(config& c) {
  auto set = std::make_shared<automation::scenario_set>();
  set->utm = c.automation.utm;
  if (!c.automation.scenario_files.empty()) {
    auto loaded = load_scenario_files(c.automation.scenario_files, scenario_environment_for(c));
    std::string errors;
    for (const auto& f : loaded.findings) {
      if (f.is_error()) {
        errors += (errors.empty() ? "" : "\n") + f.to_string();
      } else {
        c.automation.warnings.push_back(f.to_string());
      }
    }
    if (!loaded.ok()) return fail("config_invalid", errors);
    set->scenarios = std::move(loaded.scenarios);
  }
  c.pacing.policy.scenarios.clear();
  for (const auto& sc : set->scenarios) c.pacing.policy.scenarios[sc.name] = sc.pacing;
  c.automation.scenarios = std::move(set);
  return {};
}

result<std::pair<std::string, std::filesystem::path>> read_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("config_unreadable", file.string() + ": cannot be read", "config");
  std::ostringstream text;
  text << in.rdbuf();
  const auto base = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  return std::pair(text.str(), base);
}

}  // namespace

result<config> parse_config(std::string_view text, const std::string& source_name,
                            const std::filesystem::path& base_dir) {
  auto c = parse_config_base(text, source_name, base_dir);
  if (!c) return c;
  if (auto ok = load_scenarios(*c); !ok) return tl::unexpected(ok.error());
  return c;
}

result<config> load_config(const std::filesystem::path& file) {
  const auto read = read_config_file(file);
  if (!read) return tl::unexpected(read.error());
  return parse_config(read->first, file.string(), read->second);
}

result<config> load_config_without_scenarios(const std::filesystem::path& file) {
  const auto read = read_config_file(file);
  if (!read) return tl::unexpected(read.error());
  return parse_config_base(read->first, file.string(), read->second);
}

}  // namespace webpushd::app
