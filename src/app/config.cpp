#include "webpushd/app/config.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "yaml_to_json.hpp"

namespace webpushd::app {
namespace {

using nlohmann::json;

// valijson reports where an error is as {"<root>", "[delivery]", "[retry]"};
// the positions map is keyed by JSON Pointer.
std::string context_to_pointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const auto& part : context) {
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      pointer += "/" + part.substr(1, part.size() - 2);
    }
  }
  return pointer;
}

std::string pointer_to_dotted(const std::string& pointer) {
  if (pointer.empty()) return "(top level)";
  std::string out = pointer.substr(1);
  for (auto& c : out) {
    if (c == '/') c = '.';
  }
  return out;
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

std::string position_prefix(const std::string& source, const std::string& pointer,
                            const std::map<std::string, source_position>& positions) {
  // A missing key has no position of its own: fall back to its nearest parent.
  std::string p = pointer;
  while (true) {
    const auto it = positions.find(p);
    if (it != positions.end()) {
      return source + ":" + std::to_string(it->second.line) + ":" + std::to_string(it->second.column);
    }
    if (p.empty()) return source;
    p = p.substr(0, p.rfind('/'));
  }
}

// Parsed once: the schema is embedded and cannot change while running.
const valijson::Schema& compiled_schema() {
  static const std::unique_ptr<valijson::Schema> schema = [] {
    auto s = std::make_unique<valijson::Schema>();
    const json doc = json::parse(config_schema_text());
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    valijson::SchemaParser parser;
    parser.populateSchema(adapter, *s);
    return s;
  }();
  return *schema;
}

result<void> validate_against_schema(const located_json& doc, const std::string& source) {
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(doc.value);
  if (validator.validate(compiled_schema(), adapter, &results)) return {};

  // valijson reports an error at every level above the real one
  // ("failed to validate property 'delivery'"); keep only the deepest.
  std::vector<std::pair<std::string, std::string>> errors;
  for (const auto& e : results) errors.emplace_back(context_to_pointer(e.context), e.description);
  std::vector<std::string> lines;
  std::set<std::string> seen;
  for (const auto& [pointer, description] : errors) {
    bool has_deeper = false;
    for (const auto& other : errors) {
      if (other.first.size() > pointer.size() && other.first.rfind(pointer + "/", 0) == 0) has_deeper = true;
    }
    if (has_deeper) continue;
    if (description.rfind("Failed to validate against", 0) == 0 && errors.size() > 1) continue;
    std::string at = pointer;
    std::string what = description;
    if (const auto key = stray_property(description); !key.empty()) {
      at = pointer + "/" + key;
      what = "unknown key (allowed keys are listed in schemas/config.schema.json)";
    }
    const auto& where = at == pointer ? doc.positions : doc.key_positions;
    std::string line = position_prefix(source, at, where) + ": " + pointer_to_dotted(at) + ": " + what;
    if (seen.insert(line).second) lines.push_back(std::move(line));
  }
  std::string message;
  for (const auto& l : lines) message += (message.empty() ? "" : "\n") + l;
  if (message.empty()) message = source + ": does not match the configuration schema";
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
  if (c.delivery.request_timeout < c.delivery.connect_timeout) {
    return fail("config_invalid", at("/delivery/request_timeout") +
                                      ": delivery.request_timeout: must be at least connect_timeout");
  }
  return {};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  const long long n = std::stoll(std::string(text.substr(0, digits)));
  const auto unit = text.substr(digits);
  using namespace std::chrono;
  if (unit == "ms") return milliseconds{n};
  if (unit == "s") return duration_cast<milliseconds>(seconds{n});
  if (unit == "m") return duration_cast<milliseconds>(minutes{n});
  if (unit == "h") return duration_cast<milliseconds>(hours{n});
  if (unit == "d") return duration_cast<milliseconds>(hours{24 * n});
  return std::nullopt;
}

result<config> parse_config(std::string_view text, const std::string& source_name,
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
  // consent categories and event types): see load_scenarios in scenario_files.cpp.
  c.automation.scenarios = std::make_shared<const automation::scenario_set>();

  const json& logging = section(root, "logging");
  c.logging.format = value_at<std::string>(logging, "format", "auto");
  c.logging.level = value_at<std::string>(logging, "level", "info");

  if (auto ok = check_ranges(c, source_name, *doc); !ok) return tl::unexpected(ok.error());
  return c;
}

result<config> load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("config_unreadable", file.string() + ": cannot be read", "config");
  std::ostringstream text;
  text << in.rdbuf();
  const auto base = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  return parse_config(text.str(), file.string(), base);
}

}  // namespace webpushd::app
