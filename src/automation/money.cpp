// Locale-aware money through ICU's NumberFormatter. ICU stays inside this
// file: the public header speaks std::string only.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

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

}  // namespace

std::string format_money(double amount, std::string_view currency, std::string_view locale) {
  // ICU accepts any three ASCII letters as a currency (unknown ones print as
  // the code itself); anything else it refuses, and the plain form is used.
  UErrorCode status = U_ZERO_ERROR;
  const std::string code{currency};
  const icu::CurrencyUnit unit{icu::StringPiece{code.data(), static_cast<int32_t>(code.size())}, status};
  if (U_FAILURE(status)) return plain(amount, currency);

  const auto formatted =
      icu::number::NumberFormatter::withLocale(locale_for(locale)).unit(unit).formatDouble(amount, status);
  if (U_FAILURE(status)) return plain(amount, currency);
  const icu::UnicodeString text = formatted.toString(status);
  if (U_FAILURE(status)) return plain(amount, currency);
  std::string out;
  text.toUTF8String(out);
  return out;
}

}  // namespace webpushd::automation
