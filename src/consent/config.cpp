#include "webpushd/consent/config.hpp"

#include <set>

#include "webpushd/consent/validation.hpp"

namespace webpushd::consent {

result<void> validate_consent_config(const consent_config& config) {
  const auto invalid = [](std::string message, std::string field) {
    return fail("config_invalid", std::move(message), std::move(field));
  };
  if (!validate_text_version(config.text_version)) {
    return invalid("text_version must be 1 to 64 printable characters", "consent.text_version");
  }
  if (config.categories.empty()) return invalid("at least one consent category is required", "consent.categories");
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < config.categories.size(); ++i) {
    const auto& c = config.categories[i];
    const std::string path = "consent.categories[" + std::to_string(i) + "]";
    if (!is_valid_category_name(c.name)) {
      return invalid("category names must match ^[a-z][a-z0-9_]{0,63}$", path + ".name");
    }
    if (!names.insert(c.name).second) return invalid("category '" + c.name + "' is defined twice", path + ".name");
    const auto en = c.texts.find("en");
    if (en == c.texts.end()) return invalid("category '" + c.name + "' needs texts for \"en\"", path + ".texts");
    for (const auto& [locale, text] : c.texts) {
      if (!validate_locale(locale, {})) return invalid("'" + locale + "' is not a language tag", path + ".texts");
      if (text.label.empty()) return invalid("empty label", path + ".texts." + locale + ".label");
    }
  }
  if (!validate_timezone(config.default_timezone, {})) {
    return invalid("not an IANA time zone name", "consent.default_timezone");
  }
  if (!validate_locale(config.default_locale, {})) return invalid("not a language tag", "consent.default_locale");
  return {};
}

namespace {

std::string lower(std::string_view tag) {
  std::string out{tag};
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return out;
}

// The texts stored under `tag` (compared case-insensitively), or nullptr.
const std::pair<const std::string, category_text>* find_tag(const category_def& category, std::string_view tag) {
  if (tag.empty()) return nullptr;
  const auto wanted = lower(tag);
  for (const auto& entry : category.texts) {
    if (lower(entry.first) == wanted) return &entry;
  }
  return nullptr;
}

}  // namespace

localized_text localize(const category_def& category, std::string_view locale, std::string_view fallback_locale) {
  const auto language = [](std::string_view tag) { return tag.substr(0, tag.find('-')); };
  for (const auto tag : {locale, language(locale), fallback_locale, language(fallback_locale), std::string_view{"en"}}) {
    if (const auto* found = find_tag(category, tag)) return {&found->second, found->first};
  }
  // Config validation guarantees "en"; a category without it is a programming error.
  return {&category.texts.at("en"), "en"};
}

const category_text& text_for(const category_def& category, std::string_view locale) {
  return *localize(category, locale, "en").text;
}

bool is_known_category(const consent_config& config, std::string_view name) noexcept {
  for (const auto& c : config.categories) {
    if (c.name == name) return true;
  }
  return false;
}

}  // namespace webpushd::consent
