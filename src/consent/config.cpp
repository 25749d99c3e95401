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

const category_text& text_for(const category_def& category, std::string_view locale) {
  if (const auto exact = category.texts.find(std::string{locale}); exact != category.texts.end()) return exact->second;
  const std::string language{locale.substr(0, locale.find('-'))};
  if (const auto lang = category.texts.find(language); lang != category.texts.end()) return lang->second;
  return category.texts.at("en");
}

bool is_known_category(const consent_config& config, std::string_view name) noexcept {
  for (const auto& c : config.categories) {
    if (c.name == name) return true;
  }
  return false;
}

}  // namespace webpushd::consent
