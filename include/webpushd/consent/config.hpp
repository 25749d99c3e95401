#pragma once
/// @file
/// @brief What consent is asked for: the categories a shopper can grant,
/// the texts shown for each, and the version of those texts. Filled from the
/// `consent:` section of the daemon's config by the app module.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/error.hpp"

namespace webpushd::consent {

/// @brief The words shown to a shopper for one category in one language.
struct category_text {
  std::string label;        ///< e.g. "Cart reminders"
  std::string description;  ///< e.g. "We remind you of items left in your cart."
};

/// @brief One consent category.
struct category_def {
  std::string name;  ///< `^[a-z][a-z0-9_]{0,63}$`, e.g. "cart_reminders"
  /// @brief Texts by locale tag ("en", "pl", "pl-PL"); "en" is required.
  std::map<std::string, category_text> texts;
};

/// @brief The consent section of the configuration.
struct consent_config {
  std::string text_version;            ///< version of the consent texts now shown (≤ 64 characters)
  std::vector<category_def> categories;  ///< in display order; at least one
  std::string default_timezone = "UTC";  ///< for a subscriber who sent none
  std::string default_locale = "en";     ///< for a subscriber who sent none
};

/// @brief Checks a configuration at start-up. Error `config_invalid` with a
/// field path such as "consent.categories[1].name": a name not matching the
/// pattern or used twice, no categories, a category without "en" texts or
/// with an empty label, an empty or too long text_version, an unknown
/// default_timezone or malformed default_locale.
result<void> validate_consent_config(const consent_config& config);

/// @brief The category's texts for `locale`: localize() with "en" as the
/// fallback. `category` must be valid.
const category_text& text_for(const category_def& category, std::string_view locale);

/// @brief A category's texts in the best language for a shopper, and which
/// language tag that was.
struct localized_text {
  const category_text* text = nullptr;
  std::string locale;  ///< the key of `category.texts` that was used
};

/// @brief Picks the texts for `locale`, matching tags case-insensitively:
/// the exact tag, else its language ("pl" for "pl-PL"), else the shop's
/// `fallback_locale` (exact, then its language), else "en" (always present).
localized_text localize(const category_def& category, std::string_view locale, std::string_view fallback_locale);

/// @brief Whether `name` is a known category of `config`.
bool is_known_category(const consent_config& config, std::string_view name) noexcept;

}  // namespace webpushd::consent
