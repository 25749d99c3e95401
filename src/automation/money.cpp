// Locale-aware money through ICU's NumberFormatter. ICU stays inside this
// file: the public header speaks std::string only.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <unicode/currunit.h>
#include <unicode/locid.h>
#include <unicode/numberformatter.h>
#include <unicode/unistr.h>

#include "webpushd/automation/message.hpp"

namespace webpushd::automation {
namespace {

// The locale for a BCP 47 tag; "pl_PL" is accepted too (ICU's own spelling).
// A tag ICU cannot parse falls back to the root locale, whose format is
// neutral ("PLN 129.00") rather than wrong for some language.
icu::Locale locale_for(std::string_view tag) {
  std::string text{tag};
  std::replace(text.begin(), text.end(), '_', '-');
  UErrorCode status = U_ZERO_ERROR;
  icu::Locale locale = icu::Locale::forLanguageTag(text, status);
  if (U_FAILURE(status) || locale.isBogus()) return icu::Locale::getRoot();
  return locale;
}

std::string plain(double amount, std::string_view currency) {
  char number[64];
  std::snprintf(number, sizeof number, "%.2f", amount);
  return currency.empty() ? std::string{number} : std::string{number} + " " + std::string{currency};
}

// Building a formatter loads the locale's symbols and patterns — several
// times the cost of formatting with it (measured: most of a scenario step's
// CPU). Each thread keeps the ones it made, by locale and currency; a shop
// has few of either. nullopt remembers a currency ICU refused.
const std::optional<icu::number::LocalizedNumberFormatter>& formatter_for(std::string_view locale,
                                                                            std::string_view currency) {
  thread_local std::map<std::pair<std::string, std::string>, std::optional<icu::number::LocalizedNumberFormatter>,
                        std::less<>>
      cache;
  auto key = std::make_pair(std::string{locale}, std::string{currency});
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= 1024) cache.clear();  // bounded: locale tags come from subscribers
  // ICU accepts any three ASCII letters as a currency (unknown ones print as
  // the code itself); anything else it refuses, and the plain form is used.
  UErrorCode status = U_ZERO_ERROR;
  const icu::CurrencyUnit unit{icu::StringPiece{key.second.data(), static_cast<int32_t>(key.second.size())}, status};
  std::optional<icu::number::LocalizedNumberFormatter> made;
  if (U_SUCCESS(status)) made = icu::number::NumberFormatter::withLocale(locale_for(locale)).unit(unit);
  return cache.emplace(std::move(key), std::move(made)).first->second;
}

}  // namespace

std::string format_money(double amount, std::string_view currency, std::string_view locale) {
  const auto& formatter = formatter_for(locale, currency);
  if (!formatter) return plain(amount, currency);
  UErrorCode status = U_ZERO_ERROR;
  const auto formatted = formatter->formatDouble(amount, status);
  if (U_FAILURE(status)) return plain(amount, currency);
  const icu::UnicodeString text = formatted.toString(status);
  if (U_FAILURE(status)) return plain(amount, currency);
  std::string out;
  text.toUTF8String(out);
  return out;
}

}  // namespace webpushd::automation
