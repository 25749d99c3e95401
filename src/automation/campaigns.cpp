// One-off campaigns: request validation, the stored definition, the chunked
// fan-out and the service the API calls (campaigns.hpp).

#include "webpushd/automation/campaigns.hpp"
#include "webpushd/automation/variants.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "webpushd/core/text.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/tracking/beacons.hpp"
#include "webpushd/webpush/content_encryption.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;

constexpr std::size_t max_name_size = 200;
constexpr std::size_t max_template_size = 4000;
constexpr std::size_t max_utm_size = 200;
constexpr std::size_t max_locales = 100;
constexpr std::size_t max_actions = 2;
constexpr std::size_t max_audience_locales = 100;
constexpr std::chrono::seconds max_ttl{std::chrono::hours{24 * 28}};
// The earliest zone is UTC+14 (Pacific/Kiritimati): a wall-clock time comes
// there first, 14 hours before it comes in UTC.
constexpr std::chrono::hours earliest_zone_offset{14};
// Due campaigns one run_due call looks at; more are taken by the next call.
constexpr std::size_t due_batch = 32;

// ---------------------------------------------------------------- small checks

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_lower(c) || is_digit(c) || (c >= 'A' && c <= 'Z'); }

// ^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$, as the scenario schema's locales.
bool valid_locale_tag(std::string_view tag) {
  std::size_t i = 0;
  while (i < tag.size() && is_lower(tag[i])) ++i;
  if (i < 2 || i > 3) return false;
  while (i < tag.size()) {
    if (tag[i] != '-') return false;
    const std::size_t start = ++i;
    while (i < tag.size() && is_alnum(tag[i])) ++i;
    if (i - start < 2 || i - start > 8) return false;
  }
  return true;
}

// ^[a-z][a-z0-9_]{0,63}$
bool valid_action_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || !is_lower(id.front())) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return is_lower(c) || is_digit(c) || c == '_'; });
}

// ^cmp_[A-Za-z0-9_-]{1,64}$
bool valid_campaign_id(std::string_view id) {
  if (!id.starts_with("cmp_") || id.size() < 5 || id.size() > 68) return false;
  return std::all_of(id.begin() + 4, id.end(), [](char c) { return is_alnum(c) || c == '_' || c == '-'; });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "24h", "90m", "3600s", "7d": digits and one unit.
std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.size() < 2 || text.size() > 10) return std::nullopt;
  const char unit = text.back();
  const auto digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  std::int64_t n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  switch (unit) {
    case 's': return std::chrono::seconds{n};
    case 'm': return std::chrono::seconds{n * 60};
    case 'h': return std::chrono::seconds{n * 3600};
    case 'd': return std::chrono::seconds{n * 86400};
    default: return std::nullopt;
  }
}

const char* type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

std::string join_path(const std::string& at, std::string_view key) {
  return at.empty() ? std::string(key) : at + "." + std::string(key);
}

// A wall-clock time without offset: "2026-11-27T09:00:00".
std::string local_text(time_point t) { return date::format("%FT%T", std::chrono::floor<std::chrono::seconds>(t)); }

json time_or_null(const std::optional<time_point>& t) { return t ? json(format_rfc3339(*t)) : json(nullptr); }

const char* to_string(customer_filter f) {
  switch (f) {
    case customer_filter::any: return "any";
    case customer_filter::linked: return "linked";
    case customer_filter::anonymous: return "anonymous";
  }
  return "any";
}

// ---------------------------------------------------------------- templates

// What a campaign context holds (campaigns.hpp, "Templates").
const std::set<std::string, std::less<>>& campaign_fields() {
  static const std::set<std::string, std::less<>> fields{
      "subscriber", "subscriber.locale", "subscriber.timezone", "shop", "shop.name", "shop.url",
      "campaign",   "campaign.id",       "campaign.name",       "variant"};
  return fields;
}

constexpr std::string_view available_fields =
    "subscriber.locale, subscriber.timezone, shop.name, shop.url, campaign.id, campaign.name, variant";

// Syntax, then the fields it reads. Variables inside a section may name a
// member of the section's value, so only top-level names are checked.
result<void> check_campaign_template(const std::string& text, const std::string& field) {
  if (text.empty()) return {};
  if (auto ok = check_template(text); !ok) return fail("invalid_template", field + ": " + ok.error().message, field);
  for (const auto& v : template_variables(text)) {
    if (!v.sections.empty() || v.name == "." || campaign_fields().count(v.name) != 0) continue;
    if (v.name == "subscriber.customer_id") {
      return fail("field_not_allowed",
                  field + ": {{subscriber.customer_id}} is not available in a campaign: its message is rendered "
                          "once per language for all its subscribers (a scenario can use it)",
                  field);
    }
    return fail("invalid_template",
                field + ": {{" + v.name + "}} is never present in a campaign message (it has no event); "
                        "available: " + std::string(available_fields),
                field);
  }
  return {};
}

bool reads_timezone(const std::string& text) {
  for (const auto& v : template_variables(text)) {
    if (v.name == "subscriber.timezone" || v.name == "subscriber" || v.name == "timezone") return true;
  }
  return false;
}

// Whether a rendering depends on the subscriber's time zone (then the
// fan-out renders per locale and zone instead of per locale).
bool uses_timezone(const campaign_spec& spec) {
  const auto fields_use = [](const message_fields& f) {
    for (const auto* t : {&f.title, &f.body, &f.icon, &f.image, &f.badge, &f.url}) {
      if (reads_timezone(*t)) return true;
    }
    return std::any_of(f.actions.begin(), f.actions.end(),
                       [](const action_def& a) { return reads_timezone(a.title) || reads_timezone(a.url); });
  };
  const auto message_uses = [&fields_use](const message_def& m) {
    return fields_use(m.fields) ||
           std::any_of(m.locales.begin(), m.locales.end(), [&fields_use](const auto& l) { return fields_use(l.second); });
  };
  if (message_uses(spec.message)) return true;
  if (std::any_of(spec.variants.begin(), spec.variants.end(),
                  [&message_uses](const variant_def& v) { return message_uses(v.message); })) {
    return true;
  }
  return reads_timezone(spec.utm.source) || reads_timezone(spec.utm.medium) || reads_timezone(spec.utm.campaign) ||
         reads_timezone(spec.utm.content);
}

json campaign_context(const campaign_spec& spec, const campaign_options& options, const std::string& locale,
                      const std::string& timezone, std::string_view variant) {
  return json{{"subscriber", {{"locale", locale}, {"timezone", timezone}}},
              {"shop", {{"name", options.shop.name}, {"url", options.shop.url}}},
              {"campaign", {{"id", spec.id}, {"name", spec.name}}},
              {"variant", variant}};
}

// ---------------------------------------------------------------- reading a definition

enum class reading { request, stored };

class spec_reader {
 public:
  spec_reader(const campaign_options& options, reading mode) : options_(options), mode_(mode) {}

  result<campaign_spec> read(const json& body, std::string id, time_point now) {
    if (!body.is_object()) return fail("invalid_type", "the campaign must be a JSON object", "");
    campaign_spec spec;
    if (auto r = only_keys(body, {"id", "name", "category", "message", "variants", "audience", "send_at", "local_time",
                                  "ttl", "urgency", "utm", "priority", "on_cap", "defer_max"},
                           "");
        !r) {
      return tl::unexpected(std::move(r.error()));
    }

    auto given_id = string_member(body, "id", "id", false, 68);
    if (!given_id) return tl::unexpected(std::move(given_id.error()));
    spec.id = given_id->empty() ? std::move(id) : std::move(*given_id);
    if (!valid_campaign_id(spec.id)) {
      return fail("invalid_campaign_id", "id must be cmp_ followed by 1 to 64 letters, digits, '_' or '-'", "id");
    }

    auto name = string_member(body, "name", "name", true, max_name_size);
    if (!name) return tl::unexpected(std::move(name.error()));
    spec.name = std::move(*name);

    auto category = string_member(body, "category", "category", true, 64);
    if (!category) return tl::unexpected(std::move(category.error()));
    spec.category = std::move(*category);
    if (mode_ == reading::request &&
        std::find(options_.categories.begin(), options_.categories.end(), spec.category) ==
            options_.categories.end()) {
      return fail("unknown_category", "no consent category '" + spec.category + "' is configured", "category");
    }

    if (auto r = read_audience(body, spec); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = read_timing(body, spec, now); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = read_utm(body, spec); !r) return tl::unexpected(std::move(r.error()));

    const auto message = body.find("message");
    const auto variants = body.find("variants");
    const bool has_message = message != body.end() && !message->is_null();
    const bool has_variants = variants != body.end() && !variants->is_null();
    if (has_message && has_variants) {
      return fail("invalid_variants", "give either message or variants, not both (the first variant is the baseline)",
                  "variants");
    }
    if (has_variants) {
      auto read = read_variants(*variants);
      if (!read) return tl::unexpected(std::move(read.error()));
      spec.variants = std::move(*read);
    } else {
      if (!has_message) return fail("missing_field", "message (or variants) is required", "message");
      auto read = read_message(*message, "message");
      if (!read) return tl::unexpected(std::move(read.error()));
      spec.message = std::move(*read);
    }
    if (mode_ == reading::request) {
      if (auto r = trial_render(spec); !r) return tl::unexpected(std::move(r.error()));
    }
    return spec;
  }

 private:
  result<void> only_keys(const json& obj, std::initializer_list<std::string_view> keys, const std::string& at) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        return fail("field_not_allowed", join_path(at, key) + " is not a field of a campaign", join_path(at, key));
      }
    }
    return {};
  }

  // A string member; absent or null gives "" (an error when required).
  result<std::string> string_member(const json& obj, std::string_view key, const std::string& field, bool required,
                                    std::size_t max_size) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) return fail("missing_field", field + " is required", field);
      return std::string{};
    }
    if (!it->is_string()) return fail("invalid_type", field + " must be a string, not " + type_name(*it), field);
    auto value = it->get<std::string>();
    if (required && value.empty()) return fail("missing_field", field + " must not be empty", field);
    if (value.size() > max_size) {
      return fail("invalid_type", field + " is longer than " + std::to_string(max_size) + " bytes", field);
    }
    return value;
  }

  // A message at `at` ("message", "variants[1].message"): its fields and translations.
  result<message_def> read_message(const json& obj, const std::string& at) {
    if (!obj.is_object()) return fail("invalid_type", at + " must be an object", at);
    message_def m;
    auto fields = read_fields(obj, at, true);
    if (!fields) return tl::unexpected(std::move(fields.error()));
    m.fields = std::move(*fields);
    const auto locales = obj.find("locales");
    if (locales == obj.end()) return m;
    const std::string locales_at = at + ".locales";
    if (!locales->is_object()) return fail("invalid_type", locales_at + " must be an object", locales_at);
    if (locales->size() > max_locales) {
      return fail("invalid_message", "at most " + std::to_string(max_locales) + " translations", locales_at);
    }
    for (const auto& [tag, translation] : locales->items()) {
      const std::string here = locales_at + "." + tag;
      if (!valid_locale_tag(tag)) {
        return fail("invalid_locale", "'" + tag + "' is not a locale tag such as pl or pl-PL", here);
      }
      if (!translation.is_object()) return fail("invalid_type", here + " must be an object", here);
      auto t = read_fields(translation, here, false);
      if (!t) return tl::unexpected(std::move(t.error()));
      m.locales[tag] = std::move(*t);
    }
    return m;
  }

  // `variants`: 2–10 of {name, weight, message}, names unique.
  result<std::vector<variant_def>> read_variants(const json& list) {
    if (!list.is_array()) return fail("invalid_type", "variants must be a list", "variants");
    if (list.size() < min_variants || list.size() > max_variants) {
      return fail("invalid_variants",
                  "variants must have " + std::to_string(min_variants) + " to " + std::to_string(max_variants) +
                      " entries, not " + std::to_string(list.size()),
                  "variants");
    }
    std::vector<variant_def> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& item = list[i];
      const std::string at = "variants[" + std::to_string(i) + "]";
      if (!item.is_object()) return fail("invalid_type", at + " must be an object", at);
      if (auto r = only_keys(item, {"name", "weight", "message"}, at); !r) return tl::unexpected(std::move(r.error()));
      variant_def v;
      auto name = string_member(item, "name", at + ".name", true, 32);
      if (!name) return tl::unexpected(std::move(name.error()));
      if (!valid_variant_name(*name)) {
        return fail("invalid_variants", at + ".name must be 1 to 32 lower-case letters, digits, '_' or '-'",
                    at + ".name");
      }
      for (const auto& other : out) {
        if (other.name == *name) {
          return fail("invalid_variants", "variant name '" + *name + "' is used twice; names must be unique",
                      at + ".name");
        }
      }
      v.name = std::move(*name);
      const auto weight = item.find("weight");
      if (weight == item.end() || weight->is_null()) return fail("missing_field", at + ".weight is required", at + ".weight");
      if (!weight->is_number() || !(weight->get<double>() > 0) || weight->get<double>() > max_variant_weight) {
        return fail("invalid_variants",
                    at + ".weight must be a positive number up to 1000000 (shares are weight ÷ the sum of the weights)",
                    at + ".weight");
      }
      v.weight = weight->get<double>();
      const auto message = item.find("message");
      if (message == item.end() || message->is_null()) {
        return fail("missing_field", at + ".message is required", at + ".message");
      }
      auto m = read_message(*message, at + ".message");
      if (!m) return tl::unexpected(std::move(m.error()));
      v.message = std::move(*m);
      out.push_back(std::move(v));
    }
    return out;
  }

  // A template member: syntax and fields checked (a stored definition was
  // checked when it was accepted).
  result<std::string> template_member(const json& obj, std::string_view key, const std::string& at, bool link) {
    const std::string field = join_path(at, key);
    auto text = string_member(obj, key, field, false, max_template_size);
    if (!text) return text;
    if (mode_ == reading::stored) return text;
    if (auto r = check_campaign_template(*text, field); !r) return tl::unexpected(std::move(r.error()));
    if (link && !text->empty() && !text->starts_with("{{") && !text->starts_with("https://") &&
        !text->starts_with("http://")) {
      return fail("invalid_template",
                  field + ": '" + *text + "' is not a link: write an absolute https:// address or a template such as "
                                          "{{shop.url}}",
                  field);
    }
    return text;
  }

  result<message_fields> read_fields(const json& obj, const std::string& at, bool base) {
    if (base) {
      if (auto r = only_keys(obj, {"title", "body", "icon", "image", "badge", "url", "actions", "locales"}, at); !r) {
        return tl::unexpected(std::move(r.error()));
      }
    } else if (auto r = only_keys(obj, {"title", "body", "icon", "image", "badge", "url", "actions"}, at); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    message_fields m;
    const std::array<std::pair<const char*, std::string*>, 6> parts{{{"title", &m.title},
                                                                     {"body", &m.body},
                                                                     {"icon", &m.icon},
                                                                     {"image", &m.image},
                                                                     {"badge", &m.badge},
                                                                     {"url", &m.url}}};
    for (const auto& [key, into] : parts) {
      const std::string_view k{key};
      auto text = template_member(obj, k, at, k != "title" && k != "body");
      if (!text) return tl::unexpected(std::move(text.error()));
      *into = std::move(*text);
    }
    if (base && m.title.empty()) return fail("missing_field", at + ".title is required", at + ".title");
    const auto actions = obj.find("actions");
    if (actions == obj.end() || actions->is_null()) return m;
    const std::string list_at = at + ".actions";
    if (!actions->is_array()) return fail("invalid_type", list_at + " must be a list", list_at);
    if (actions->size() > max_actions) {
      return fail("invalid_message", "at most " + std::to_string(max_actions) + " actions: browsers show no more",
                  list_at);
    }
    for (std::size_t i = 0; i < actions->size(); ++i) {
      const auto& a = (*actions)[i];
      const std::string here = list_at + "[" + std::to_string(i) + "]";
      if (!a.is_object()) return fail("invalid_type", here + " must be an object", here);
      if (auto r = only_keys(a, {"action", "title", "url"}, here); !r) return tl::unexpected(std::move(r.error()));
      auto id = string_member(a, "action", here + ".action", true, 64);
      if (!id) return tl::unexpected(std::move(id.error()));
      if (!valid_action_id(*id)) {
        return fail("invalid_message", here + ".action must be lower-case letters, digits and '_' (e.g. view_offer)",
                    here + ".action");
      }
      for (const auto& other : m.actions) {
        if (other.action == *id) {
          return fail("invalid_message", "action '" + *id + "' appears twice in this message", here + ".action");
        }
      }
      auto title = template_member(a, "title", here, false);
      if (!title) return tl::unexpected(std::move(title.error()));
      if (title->empty()) return fail("missing_field", here + ".title is required", here + ".title");
      auto url = template_member(a, "url", here, true);
      if (!url) return tl::unexpected(std::move(url.error()));
      m.actions.push_back({std::move(*id), std::move(*title), std::move(*url)});
    }
    return m;
  }

  result<void> read_audience(const json& body, campaign_spec& spec) {
    const auto audience = body.find("audience");
    if (audience == body.end() || audience->is_null()) return {};
    if (!audience->is_object()) return fail("invalid_type", "audience must be an object", "audience");
    if (auto r = only_keys(*audience, {"locales", "customer"}, "audience"); !r) return r;
    if (const auto locales = audience->find("locales"); locales != audience->end() && !locales->is_null()) {
      if (!locales->is_array()) return fail("invalid_type", "audience.locales must be a list", "audience.locales");
      if (locales->size() > max_audience_locales) {
        return fail("invalid_audience", "at most " + std::to_string(max_audience_locales) + " locales",
                    "audience.locales");
      }
      for (std::size_t i = 0; i < locales->size(); ++i) {
        const auto& tag = (*locales)[i];
        const std::string here = "audience.locales[" + std::to_string(i) + "]";
        if (!tag.is_string() || !valid_locale_tag(lower(tag.get<std::string>()))) {
          return fail("invalid_locale", here + " must be a locale tag such as pl or pl-PL", here);
        }
        spec.audience.locales.push_back(tag.get<std::string>());
      }
    }
    auto customer = string_member(*audience, "customer", "audience.customer", false, 16);
    if (!customer) return tl::unexpected(std::move(customer.error()));
    if (customer->empty() || *customer == "any") {
      spec.audience.customer = customer_filter::any;
    } else if (*customer == "linked") {
      spec.audience.customer = customer_filter::linked;
    } else if (*customer == "anonymous") {
      spec.audience.customer = customer_filter::anonymous;
    } else {
      return fail("invalid_audience", "audience.customer must be linked, anonymous or any", "audience.customer");
    }
    return {};
  }

  result<void> read_timing(const json& body, campaign_spec& spec, time_point now) {
    if (const auto local = body.find("local_time"); local != body.end() && !local->is_null()) {
      if (!local->is_boolean()) return fail("invalid_type", "local_time must be true or false", "local_time");
      spec.local_time = local->get<bool>();
    }
    auto send_at = string_member(body, "send_at", "send_at", false, 64);
    if (!send_at) return tl::unexpected(std::move(send_at.error()));
    spec.send_at_text = std::move(*send_at);
    if (mode_ == reading::request) {
      if (spec.send_at_text.empty()) {
        if (spec.local_time) {
          return fail("missing_field", "local_time needs send_at: the wall-clock time to send at, e.g. "
                                       "2026-11-27T09:00:00",
                      "send_at");
        }
        spec.send_at = now;
      } else if (spec.local_time) {
        if (ingest::parse_rfc3339(spec.send_at_text)) {
          return fail("invalid_send_at",
                      "with local_time, send_at is a wall-clock time without offset, e.g. 2026-11-27T09:00:00",
                      "send_at");
        }
        const auto t = ingest::parse_rfc3339(spec.send_at_text + "Z");
        if (!t) return fail("invalid_send_at", "send_at must be a time such as 2026-11-27T09:00:00", "send_at");
        spec.send_at = *t;
      } else {
        const auto t = ingest::parse_rfc3339(spec.send_at_text);
        if (!t) {
          return fail("invalid_send_at",
                      "send_at must be an RFC 3339 time with offset, e.g. 2026-11-27T09:00:00+01:00 (or give "
                      "local_time: true for each subscriber's own time zone)",
                      "send_at");
        }
        spec.send_at = *t;
      }
      // A local time may lie up to 14 h ahead of the same time in UTC.
      const auto latest = now + options_.max_schedule_ahead + (spec.local_time ? earliest_zone_offset : std::chrono::hours{0});
      if (spec.send_at > latest) {
        return fail("invalid_send_at",
                    "send_at is more than " + std::to_string(options_.max_schedule_ahead.count() / 24) +
                        " days ahead",
                    "send_at");
      }
    }
    auto ttl = string_member(body, "ttl", "ttl", false, 16);
    if (!ttl) return tl::unexpected(std::move(ttl.error()));
    if (!ttl->empty()) {
      const auto d = parse_duration(*ttl);
      if (!d) return fail("invalid_ttl", "ttl must be a duration such as 30m, 24h or 7d", "ttl");
      if (*d > max_ttl) return fail("invalid_ttl", "ttl is at most 28d: push services keep a message at most four weeks", "ttl");
      spec.ttl = *d;
      spec.ttl_text = std::move(*ttl);
    }
    auto urgency = string_member(body, "urgency", "urgency", false, 16);
    if (!urgency) return tl::unexpected(std::move(urgency.error()));
    if (!urgency->empty()) {
      if (*urgency != "very-low" && *urgency != "low" && *urgency != "normal" && *urgency != "high") {
        return fail("invalid_urgency", "urgency must be very-low, low, normal or high", "urgency");
      }
      spec.urgency = std::move(*urgency);
    }
    return read_pacing(body, spec);
  }

  result<void> read_pacing(const json& body, campaign_spec& spec) {
    if (body.contains("priority")) {
      const json& p = body["priority"];
      if (!p.is_number_integer() || p.get<std::int64_t>() < 0 || p.get<std::int64_t>() > 100) {
        return fail("invalid_priority", "priority must be an integer from 0 to 100", "priority");
      }
      spec.priority = p.get<int>();
    }
    auto on_cap = string_member(body, "on_cap", "on_cap", false, 8);
    if (!on_cap) return tl::unexpected(std::move(on_cap.error()));
    if (!on_cap->empty() && *on_cap != "defer" && *on_cap != "drop") {
      return fail("invalid_on_cap", "on_cap must be defer or drop", "on_cap");
    }
    auto defer_max = string_member(body, "defer_max", "defer_max", false, 16);
    if (!defer_max) return tl::unexpected(std::move(defer_max.error()));
    if (!defer_max->empty()) {
      const auto d = parse_duration(*defer_max);
      if (!d || *d > max_ttl) return fail("invalid_defer_max", "defer_max must be a duration up to 28d, e.g. 6h", "defer_max");
      spec.defer_max = *d;
      spec.defer_max_text = std::move(*defer_max);
    }
    if (*on_cap == "drop") {
      spec.defer_max.reset();
      spec.defer_max_text.clear();
    }
    return {};
  }

  result<void> read_utm(const json& body, campaign_spec& spec) {
    // The shop's source, medium and switch; the scenario defaults for
    // campaign and content ({{scenario.name}}, {{step.name}}) mean nothing
    // here. utm_content names the A/B variant (empty, so left out, without).
    spec.utm.source = options_.utm.source;
    spec.utm.medium = options_.utm.medium;
    spec.utm.enabled = options_.utm.enabled;
    spec.utm.campaign = "{{campaign.name}}";
    spec.utm.content = "{{variant}}";
    const auto utm = body.find("utm");
    if (utm == body.end() || utm->is_null()) return {};
    if (!utm->is_object()) return fail("invalid_type", "utm must be an object", "utm");
    if (auto r = only_keys(*utm, {"source", "medium", "campaign", "content", "enabled"}, "utm"); !r) return r;
    const std::array<std::pair<const char*, std::string*>, 4> parts{{{"source", &spec.utm.source},
                                                                     {"medium", &spec.utm.medium},
                                                                     {"campaign", &spec.utm.campaign},
                                                                     {"content", &spec.utm.content}}};
    for (const auto& [key, into] : parts) {
      if (!utm->contains(key)) continue;
      const std::string field = std::string("utm.") + key;
      auto text = string_member(*utm, key, field, false, max_utm_size);
      if (!text) return tl::unexpected(std::move(text.error()));
      if (mode_ == reading::request) {
        if (auto r = check_campaign_template(*text, field); !r) return r;
      }
      *into = std::move(*text);
    }
    if (const auto enabled = utm->find("enabled"); enabled != utm->end() && !enabled->is_null()) {
      if (!enabled->is_boolean()) return fail("invalid_type", "utm.enabled must be true or false", "utm.enabled");
      spec.utm.enabled = enabled->get<bool>();
    }
    return {};
  }

  // Where a rendering error of the translation `tag` of the message at
  // `base` ("message", "variants[1].message") points: the translation's own
  // field when it sets it, else the default texts'.
  static std::string error_field(const message_def& message, const std::string& base, const std::string& tag,
                                 const std::string& field) {
    if (field.starts_with("utm.")) return field;
    const std::string translation = tag.empty() ? base : base + ".locales." + tag;
    if (field.empty()) return translation;
    if (tag.empty()) return base + "." + field;
    const auto& v = message.locales.at(tag);
    const auto name = field.substr(0, field.find_first_of(".["));
    const bool own = (name == "title" && !v.title.empty()) || (name == "body" && !v.body.empty()) ||
                     (name == "icon" && !v.icon.empty()) || (name == "image" && !v.image.empty()) ||
                     (name == "badge" && !v.badge.empty()) || (name == "url" && !v.url.empty()) ||
                     (name == "actions" && !v.actions.empty());
    return (own ? translation : base) + "." + field;
  }

  // Renders every translation of every variant as a subscriber of that
  // locale would get it, and checks the payload fits a push message.
  result<void> trial_render(const campaign_spec& spec) {
    const std::string sample_id = tracking::delivery_signer::new_delivery_id();
    const delivery_block block{sample_id, std::string(22, 'x'),
                               options_.public_url + "/v1/deliveries/" + sample_id + "/events"};
    if (spec.utm.enabled) {
      // The link decoration first, so a field it lacks is named as its own.
      const auto ctx = campaign_context(spec, options_, options_.default_locale, options_.default_timezone,
                                        spec.variants.empty() ? "" : spec.variants.front().name);
      const std::array<std::pair<const char*, const std::string*>, 4> parts{{{"utm.source", &spec.utm.source},
                                                                             {"utm.medium", &spec.utm.medium},
                                                                             {"utm.campaign", &spec.utm.campaign},
                                                                             {"utm.content", &spec.utm.content}}};
      for (const auto& [field, text] : parts) {
        if (auto r = render_template(*text, ctx); !r) {
          return fail("invalid_template", std::string(field) + ": " + r.error().message, field);
        }
      }
    }
    for (std::size_t i = 0; i < std::max<std::size_t>(spec.variants.size(), 1); ++i) {
      const bool plain = spec.variants.empty();
      const message_def& message = plain ? spec.message : spec.variants[i].message;
      const std::string base = plain ? "message" : "variants[" + std::to_string(i) + "].message";
      const std::string variant = plain ? "" : spec.variants[i].name;
      std::vector<std::string> tags{""};
      for (const auto& [tag, v] : message.locales) tags.push_back(tag);
      for (const auto& tag : tags) {
        const std::string locale = tag.empty() ? options_.default_locale : tag;
        const auto ctx = campaign_context(spec, options_, locale, options_.default_timezone, variant);
        auto rendered = render_message(message, ctx, locale, options_.default_locale, spec.utm);
        const std::string where = tag.empty() ? base : base + ".locales." + tag;
        if (!rendered) {
          const auto& e = rendered.error();
          if (e.code == "missing_field" && e.field == "title") {
            return fail("invalid_message", where + ": the title is empty after rendering",
                        error_field(message, base, tag, "title"));
          }
          if (e.code == "missing_field") {
            return fail("invalid_template", where + ": {{" + e.field + "}} is missing when rendered", where);
          }
          return fail(e.code, where + ": " + e.message, error_field(message, base, tag, e.field));
        }
        const auto size = to_payload(*rendered, block, "").size();
        if (size > webpush::max_plaintext_size) {
          return fail("invalid_message",
                      where + " makes a push payload of " + std::to_string(size) + " bytes; at most " +
                          std::to_string(webpush::max_plaintext_size) + " fit: shorten its texts or links",
                      where);
        }
      }
    }
    return {};
  }

  const campaign_options& options_;
  reading mode_;
};

json fields_json(const message_fields& f, bool base) {
  json out = json::object();
  const auto put = [&out](const char* key, const std::string& v) {
    if (!v.empty()) out[key] = v;
  };
  if (base || !f.title.empty()) out["title"] = f.title;
  put("body", f.body);
  put("icon", f.icon);
  put("image", f.image);
  put("badge", f.badge);
  put("url", f.url);
  if (!f.actions.empty()) {
    json list = json::array();
    for (const auto& a : f.actions) {
      json one = {{"action", a.action}, {"title", a.title}};
      if (!a.url.empty()) one["url"] = a.url;
      list.push_back(std::move(one));
    }
    out["actions"] = std::move(list);
  }
  return out;
}

// ---------------------------------------------------------------- fan-out

// A rendered message as a payload with holes for the delivery id (twice:
// the id and the report URL) and its signature, so each subscriber costs
// an id, a signature and a few appends instead of a JSON serialisation.
struct payload_template {
  std::string skip_reason;  // non-empty: subscribers of this rendering are skipped for it
  std::vector<std::string> pieces;
  std::vector<bool> hole_is_sig;  // pieces.size() - 1 holes
  std::size_t size = 0;           // with real id and signature lengths
  bool fast = true;               // false: the markers were ambiguous, use to_payload per subscriber
  rendered_message rendered;
};

constexpr std::string_view id_marker = "@@webpushd-delivery-id@@";
constexpr std::string_view sig_marker = "@@webpushd-delivery-sig@@";

payload_template make_template(rendered_message rendered, const std::string& public_url, std::size_t id_size,
                               std::size_t sig_size) {
  payload_template t;
  const std::string id{id_marker};
  const std::string probe =
      to_payload(rendered, {id, std::string{sig_marker}, public_url + "/v1/deliveries/" + id + "/events"}, "");
  std::size_t start = 0;
  std::size_t ids = 0;
  std::size_t sigs = 0;
  while (true) {
    const auto at_id = probe.find(id_marker, start);
    const auto at_sig = probe.find(sig_marker, start);
    const auto at = std::min(at_id, at_sig);
    if (at == std::string::npos) break;
    const bool sig = at == at_sig;
    t.pieces.push_back(probe.substr(start, at - start));
    t.hole_is_sig.push_back(sig);
    (sig ? sigs : ids) += 1;
    start = at + (sig ? sig_marker.size() : id_marker.size());
  }
  t.pieces.push_back(probe.substr(start));
  // A message text that itself holds a marker would be filled too: then
  // build each payload the slow way.
  t.fast = ids == 2 && sigs == 1;
  t.size = probe.size() - ids * id_marker.size() - sigs * sig_marker.size() + ids * id_size + sigs * sig_size;
  t.rendered = std::move(rendered);
  return t;
}

std::string fill(const payload_template& t, const std::string& id, const std::string& sig,
                 const std::string& public_url) {
  if (!t.fast) return to_payload(t.rendered, {id, sig, public_url + "/v1/deliveries/" + id + "/events"}, "");
  std::string out;
  out.reserve(t.size);
  for (std::size_t i = 0; i < t.pieces.size(); ++i) {
    out.append(t.pieces[i]);
    if (i < t.hole_is_sig.size()) out.append(t.hole_is_sig[i] ? sig : id);
  }
  return out;
}

bool locale_matches(const std::vector<std::string>& wanted, const std::string& locale) {
  if (wanted.empty()) return true;
  const std::string have = lower(locale);
  for (const auto& tag : wanted) {
    const std::string w = lower(tag);
    if (have == w) return true;
    if (have.size() > w.size() && have.starts_with(w) && (have[w.size()] == '-' || have[w.size()] == '_')) return true;
  }
  return false;
}

bool customer_matches(customer_filter f, bool linked) {
  switch (f) {
    case customer_filter::any: return true;
    case customer_filter::linked: return linked;
    case customer_filter::anonymous: return !linked;
  }
  return true;
}

// The UTC moment of a wall-clock time (stored as if UTC) in `zone`.
std::optional<time_point> local_moment(time_point wall_clock_as_utc, const std::string& zone) {
  try {
    const auto* tz = date::locate_zone(zone);
    const date::local_time<std::chrono::milliseconds> local{
        std::chrono::floor<std::chrono::milliseconds>(wall_clock_as_utc.time_since_epoch())};
    // earliest: an ambiguous time (autumn) is its first occurrence; a
    // nonexistent one (spring) is the moment the clocks jump.
    const date::zoned_time<std::chrono::milliseconds> zoned{tz, local, date::choose::earliest};
    return time_point{std::chrono::duration_cast<time_point::duration>(zoned.get_sys_time().time_since_epoch())};
  } catch (const std::exception&) {
    return std::nullopt;  // a zone the OS database does not know
  }
}

std::map<std::string, std::int64_t> read_reasons(const std::string& text) {
  std::map<std::string, std::int64_t> out;
  const auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number_integer()) out[k] = v.get<std::int64_t>();
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- spec

time_point campaign_spec::due_at() const { return local_time ? send_at - earliest_zone_offset : send_at; }

result<campaign_spec> parse_campaign(const nlohmann::json& body, const campaign_options& options, std::string id,
                                     time_point now) {
  return spec_reader(options, reading::request).read(body, std::move(id), now);
}

nlohmann::json definition_json(const campaign_spec& spec) {
  const auto message_json = [](const message_def& m) {
    json out = fields_json(m.fields, true);
    if (!m.locales.empty()) {
      json locales = json::object();
      for (const auto& [tag, f] : m.locales) locales[tag] = fields_json(f, false);
      out["locales"] = std::move(locales);
    }
    return out;
  };
  json out = {{"id", spec.id},
              {"name", spec.name},
              {"category", spec.category},
              {"audience", {{"locales", spec.audience.locales}, {"customer", to_string(spec.audience.customer)}}},
              {"local_time", spec.local_time},
              {"ttl", spec.ttl_text},
              {"urgency", spec.urgency},
              {"priority", spec.priority},
              {"on_cap", spec.defer_max ? "defer" : "drop"},
              {"utm",
               {{"source", spec.utm.source},
                {"medium", spec.utm.medium},
                {"campaign", spec.utm.campaign},
                {"content", spec.utm.content},
                {"enabled", spec.utm.enabled}}}};
  if (!spec.send_at_text.empty()) out["send_at"] = spec.send_at_text;
  if (spec.defer_max) out["defer_max"] = spec.defer_max_text;
  // The variants as given, so a restart continues the same split.
  if (spec.variants.empty()) {
    out["message"] = message_json(spec.message);
  } else {
    json variants = json::array();
    for (const auto& v : spec.variants) {
      variants.push_back({{"name", v.name}, {"weight", v.weight}, {"message", message_json(v.message)}});
    }
    out["variants"] = std::move(variants);
  }
  return out;
}

result<campaign_spec> parse_stored_campaign(const storage::campaign_row& row, const campaign_options& options) {
  const auto doc = json::parse(row.definition, nullptr, false);
  if (doc.is_discarded()) return fail("storage_error", "campaign " + row.id + ": its definition is not JSON");
  auto spec = spec_reader(options, reading::stored).read(doc, row.id, row.created_at);
  if (!spec) return spec;
  spec->id = row.id;
  spec->name = row.name;
  spec->category = row.category;
  spec->send_at = row.send_at;
  spec->local_time = row.local_time;
  return spec;
}

// ---------------------------------------------------------------- runner

struct campaign_runner::impl {
  campaign_options options;
  const tracking::delivery_signer& signer;
  std::size_t id_size = 0;
  std::size_t sig_size = 0;

  struct chunk_result {
    std::size_t examined = 0;  // audience rows read
    std::size_t enqueued = 0;
  };

  // One chunk of one campaign; updates `row` (the caller saves it).
  result<chunk_result> fan_out(storage::campaign_store& store, storage::campaign_row& row, const campaign_spec& spec, time_point now,
                               std::size_t limit) const {
    auto recipients = store.recipients(row.category, row.cursor, limit);
    if (!recipients) return tl::unexpected(std::move(recipients.error()));
    if (recipients->empty()) return chunk_result{};

    const bool by_zone = uses_timezone(spec);
    std::unordered_map<std::string, payload_template> renderings;
    std::unordered_map<std::string, time_point> moments;  // local_time: by zone
    auto reasons = read_reasons(row.skipped_reasons);
    const storage::campaign_message_batch batch{row.id,         row.category, static_cast<std::int32_t>(spec.ttl.count()),
                                                spec.urgency,   spec.priority, spec.defer_max};

    std::vector<storage::campaign_message> messages;
    messages.reserve(recipients->size());
    const std::string source = "campaign:" + spec.id;  // the variant rule's source (variants.hpp)
    std::string key;
    for (const auto& r : *recipients) {
      const std::string& locale = r.locale.empty() ? options.default_locale : r.locale;
      if (!customer_matches(spec.audience.customer, r.linked) || !locale_matches(spec.audience.locales, locale)) {
        continue;
      }
      ++row.targeted;
      const std::string& zone = r.timezone.empty() ? options.default_timezone : r.timezone;
      const variant_def* variant =
          spec.variants.empty() ? nullptr : &assign_variant(spec.variants, source, r.public_id, "");
      const std::string_view variant_name = variant ? std::string_view{variant->name} : std::string_view{};
      key.assign(variant_name).append("\n").append(locale);
      if (by_zone) key.append("\n").append(zone);
      auto found = renderings.find(key);
      if (found == renderings.end()) {
        auto rendered = render_message(variant ? variant->message : spec.message,
                                       campaign_context(spec, options, locale, zone, variant_name), locale,
                                       options.default_locale, spec.utm);
        payload_template t;
        if (!rendered) {
          t.skip_reason = rendered.error().code == "missing_field" ? "missing field: " + rendered.error().field
                                                                   : rendered.error().code;
        } else {
          t = make_template(std::move(*rendered), options.public_url, id_size, sig_size);
          if (t.size > webpush::max_plaintext_size) t.skip_reason = "message too large";
        }
        found = renderings.emplace(key, std::move(t)).first;
      }
      const payload_template& t = found->second;
      if (!t.skip_reason.empty()) {
        ++row.skipped;
        ++reasons[t.skip_reason];
        continue;
      }

      storage::campaign_message m;
      if (spec.local_time) {
        auto moment = moments.find(zone);
        if (moment == moments.end()) {
          // An unknown zone (validated at subscribe, so only after a tz
          // database change) falls back to the default, then to UTC.
          auto at = local_moment(spec.send_at, zone);
          if (!at) at = local_moment(spec.send_at, options.default_timezone);
          moment = moments.emplace(zone, at.value_or(spec.send_at)).first;
        }
        if (moment->second > now) m.not_before = moment->second;
      }
      m.subscription_id = r.subscription_id;
      m.variant = variant_name;
      m.delivery_id = tracking::delivery_signer::new_delivery_id();
      m.payload = fill(t, m.delivery_id, signer.sign(m.delivery_id), options.public_url);
      messages.push_back(std::move(m));
    }
    row.cursor = recipients->back().subscription_id;
    if (auto r = store.enqueue_messages(batch, messages, now); !r) return tl::unexpected(std::move(r.error()));
    row.enqueued += static_cast<std::int64_t>(messages.size());
    json reasons_json = json::object();
    for (const auto& [k, v] : reasons) reasons_json[k] = v;
    row.skipped_reasons = reasons_json.dump();
    return chunk_result{recipients->size(), messages.size()};
  }
};

campaign_runner::campaign_runner(campaign_options options, const tracking::delivery_signer& signer) {
  auto i = std::make_shared<impl>(impl{std::move(options), signer, 0, 0});
  const auto sample = tracking::delivery_signer::new_delivery_id();
  i->id_size = sample.size();
  i->sig_size = signer.sign(sample).size();
  impl_ = std::move(i);
}

result<campaign_tick> campaign_runner::run_due(storage::database& db, time_point now, std::size_t max_messages) {
  auto store = storage::make_sqlite_campaign_store(db);
  auto due = store->due(now, due_batch);
  if (!due) return tl::unexpected(std::move(due.error()));
  campaign_tick tick;
  std::size_t budget = std::max<std::size_t>(max_messages, 1);
  for (auto& row : *due) {
    if (budget == 0) {
      tick.more = true;
      break;
    }
    ++tick.campaigns;
    auto spec = parse_stored_campaign(row, impl_->options);
    if (!spec) {
      // Only a database edited by hand gets here; one broken campaign must
      // not stop the others, so it ends, with the reason to read.
      spdlog::error("campaign {}: cannot read its definition ({}); cancelled", row.id, spec.error().message);
      row.state = storage::campaign_state::cancelled;
      row.finished_at = now;
      row.end_reason = "unreadable definition: " + spec.error().message;
      if (auto r = store->save_progress(row); !r) return tl::unexpected(std::move(r.error()));
      continue;
    }
    if (row.state == storage::campaign_state::scheduled) {
      row.state = storage::campaign_state::running;
      row.started_at = now;
    }
    auto chunk = impl_->fan_out(*store, row, *spec, now, budget);
    if (!chunk) return tl::unexpected(std::move(chunk.error()));
    tick.enqueued += chunk->enqueued;
    tick.examined += chunk->examined;
    // The budget counts audience rows read, filtered ones included, so a
    // call's time is bounded whatever the filters. Fewer rows than asked
    // for means the audience ended.
    if (chunk->examined < budget) {
      row.state = storage::campaign_state::completed;
      row.finished_at = now;
      ++tick.completed;
    }
    budget -= chunk->examined;
    if (auto r = store->save_progress(row); !r) return tl::unexpected(std::move(r.error()));
  }
  // With budget left, every due campaign was looked at and ended; more is
  // due now only if more campaigns were due than one call takes.
  if (budget == 0 || due->size() == due_batch) tick.more = true;
  return tick;
}

result<std::optional<time_point>> campaign_runner::next_due(storage::database& db) {
  return storage::make_sqlite_campaign_store(db)->next_due();
}

// ---------------------------------------------------------------- view

nlohmann::json to_json(const campaign_view& view, bool detailed) {
  const auto& row = view.row;
  const auto def = json::parse(row.definition, nullptr, false);
  const auto member = [&def](const char* key, json fallback) {
    if (def.is_object() && def.contains(key)) return def.at(key);
    return fallback;
  };
  json out = {{"id", row.id},
              {"name", row.name},
              {"category", row.category},
              {"state", storage::to_string(row.state)},
              {"send_at", row.local_time ? local_text(row.send_at) : format_rfc3339(row.send_at)},
              {"local_time", row.local_time},
              {"due_at", format_rfc3339(row.due_at)},
              {"ttl", member("ttl", "24h")},
              {"urgency", member("urgency", "normal")},
              {"priority", member("priority", 10)},
              {"on_cap", member("on_cap", "defer")},
              {"audience", member("audience", json{{"locales", json::array()}, {"customer", "any"}})},
              {"created_at", format_rfc3339(row.created_at)},
              {"created_by", row.created_by},
              {"started_at", time_or_null(row.started_at)},
              {"finished_at", time_or_null(row.finished_at)},
              {"end_reason", row.end_reason},
              {"targeted", row.targeted},
              {"enqueued", row.enqueued},
              {"skipped", row.skipped},
              {"skipped_reasons", json::parse(row.skipped_reasons, nullptr, false)}};
  if (out["skipped_reasons"].is_discarded()) out["skipped_reasons"] = json::object();
  if (detailed) {
    if (def.is_object() && def.contains("variants")) {
      out["variants"] = def.at("variants");
    } else {
      out["message"] = member("message", json::object());
    }
    out["utm"] = member("utm", json::object());
    if (view.messages) {
      const auto& c = *view.messages;
      out["messages"] = {{"queued", c.queued}, {"sending", c.sending}, {"sent", c.sent},
                         {"gone", c.gone},     {"failed", c.failed},   {"dead", c.dead},
                         {"expired", c.expired}, {"cancelled", c.cancelled}, {"suppressed", c.suppressed}};
    }
  }
  if (view.messages_cancelled) out["messages_cancelled"] = *view.messages_cancelled;
  if (view.recalls_requested) out["recalls_requested"] = *view.recalls_requested;
  return out;
}

// ---------------------------------------------------------------- service

campaign_service::campaign_service(campaign_options options, storage::write_queue& writer, storage::database reader,
                                   const clock& clk)
    : options_(std::move(options)), writer_(writer), clock_(clk), reader_(std::move(reader)) {}

void campaign_service::set_on_created(std::function<void()> hook) { on_created_ = std::move(hook); }

void campaign_service::create(const nlohmann::json& body, std::string created_by, callback<campaign_created> done) {
  const auto now = clock_.now();
  auto spec = parse_campaign(body, options_, "cmp_" + crypto::random_token(12), now);
  if (!spec) return done(tl::unexpected(std::move(spec.error())));

  storage::campaign_row row;
  row.id = spec->id;
  row.name = spec->name;
  row.category = spec->category;
  row.definition = definition_json(*spec).dump();
  row.send_at = spec->send_at;
  row.local_time = spec->local_time;
  row.due_at = spec->due_at();
  row.state = storage::campaign_state::scheduled;
  row.created_by = std::move(created_by);
  row.created_at = now;

  auto hook = on_created_;
  auto submitted = writer_.submit_value<campaign_created>(
      [row](storage::database& db) -> result<campaign_created> {
        auto store = storage::make_sqlite_campaign_store(db);
        auto existing = store->get(row.id);
        if (!existing) return tl::unexpected(std::move(existing.error()));
        if (*existing) {
          // A retried request (same client id) answers what it made.
          const auto& e = **existing;
          if (e.name == row.name && e.category == row.category && e.definition == row.definition) {
            return campaign_created{e.id, e.state, false};
          }
          return fail("campaign_conflict", "a different campaign with id " + row.id + " exists", "id");
        }
        if (auto r = store->insert(row); !r) return tl::unexpected(std::move(r.error()));
        return campaign_created{row.id, row.state, true};
      },
      [done, hook](result<campaign_created> out) {
        const bool wake = out && out->created;
        done(std::move(out));
        if (wake && hook) hook();
      });
  if (!submitted) done(tl::unexpected(std::move(submitted.error())));
}

result<campaign_view> campaign_service::get(std::string_view id) {
  std::lock_guard lock(reader_mutex_);
  auto store = storage::make_sqlite_campaign_store(reader_);
  auto row = store->get(id);
  if (!row) return tl::unexpected(std::move(row.error()));
  if (!*row) return fail("not_found", "no campaign " + std::string(id), "id");
  auto counts = store->message_counts(id);
  if (!counts) return tl::unexpected(std::move(counts.error()));
  return campaign_view{std::move(**row), *counts, std::nullopt, std::nullopt};
}

result<std::vector<campaign_view>> campaign_service::list(std::size_t limit) {
  std::lock_guard lock(reader_mutex_);
  auto rows = storage::make_sqlite_campaign_store(reader_)->list(std::clamp<std::size_t>(limit, 1, 1000));
  if (!rows) return tl::unexpected(std::move(rows.error()));
  std::vector<campaign_view> out;
  out.reserve(rows->size());
  for (auto& r : *rows) out.push_back({std::move(r), std::nullopt, std::nullopt, std::nullopt});
  return out;
}

result<campaign_stats> campaign_service::stats(std::string_view id, const stats_query& query) {
  const std::lock_guard lock(reader_mutex_);
  return read_campaign_stats(reader_, id, query, clock_.now());
}

void campaign_service::cancel(std::string id, std::string by, callback<campaign_view> done) {
  const auto now = clock_.now();
  auto submitted = writer_.submit_value<campaign_view>(
      [id, by, now](storage::database& db) -> result<campaign_view> {
        auto store = storage::make_sqlite_campaign_store(db);
        auto outcome = store->cancel(id, "cancelled by " + (by.empty() ? std::string("the backend") : by), now);
        if (!outcome) return tl::unexpected(std::move(outcome.error()));
        if (!*outcome) return fail("not_found", "no campaign " + id, "id");
        auto recalled =
            storage::make_sqlite_recall_store(db)->request_for_campaign(id, storage::campaign_cancelled_reason, now);
        if (!recalled) return tl::unexpected(std::move(recalled.error()));
        auto row = store->get(id);
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row) return fail("not_found", "no campaign " + id, "id");
        auto counts = store->message_counts(id);
        if (!counts) return tl::unexpected(std::move(counts.error()));
        return campaign_view{std::move(**row), *counts, (*outcome)->messages_cancelled, *recalled};
      },
      done);
  if (!submitted) done(tl::unexpected(std::move(submitted.error())));
}

}  // namespace webpushd::automation
